/**
 * Studies as data (src/experiments/study/): a plan of run specs, an idempotent runner of one spec, and a
 * merge. Checked with a deterministic fake trainer (fast) and, end to end, with the CLI on the fixture GPT:
 * a study run spec by spec in any order merges into byte-identical JSON/CSV to the local sweep; the
 * runner skips finished runs, leaves a failure record (never a half result), and refuses a changed model.
 * The Kubernetes manifest parses as an Indexed Job. (The Slurm cluster test is test/slurm.test.ts.)
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { resultJson } from '../src/experiments/outputs.js';
import { runSweep, sweepCsv, type SweepOptions } from '../src/experiments/sweep.js';
import { runCoordCheck, coordCsv, type CoordCheckOptions } from '../src/experiments/coord-check.js';
import type { RunConfig, RunResult, TrainRun } from '../src/experiments/run-types.js';
import { planStudy, readSpec, writePlan, type StudyKind } from '../src/experiments/study/plan.js';
import { DEFAULT_SCHEDULER } from '../src/experiments/study/schedulers.js';
import { failurePath, resolveIndices, resultPath, StudyRunner, type TrainRunFactory } from '../src/experiments/study/run.js';
import { indexList, mergeStudy } from '../src/experiments/study/merge.js';
import { slices } from '../src/experiments/study/local.js';
import { ROOT, tempDir } from './helpers.js';
import { runCli } from './cli-helpers.js';

const MODEL = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');

/** Losses and activations that depend only on the run's config (as a real seeded run's do). */
function fakeRun(cfg: RunConfig): RunResult {
  const x = Math.log2(cfg.lr);
  const base = 2 + 0.1 * (x + 8 + (cfg.rules === 'sp' ? Math.log2(cfg.density) : 0)) ** 2;
  const losses = Array.from({ length: cfg.steps }, (_, t) => (x >= -5 && t >= 1 ? NaN : base + (cfg.steps - 1 - t) / 3));
  const blocks = [{ value: 'h0', kind: 'mlp' as const, layer: 0 }, { value: 'logits', kind: 'output_logits' as const }];
  const activations = cfg.recordActivations ? losses.map((_, t) => ({ h0: (1 + t / 7) / Math.sqrt(cfg.density), logits: 0.5 + t / 11 })) : [];
  return { losses, activations, blocks: cfg.recordActivations ? blocks : [] };
}

function countingFactory(): { factory: TrainRunFactory; calls: RunConfig[] } {
  const calls: RunConfig[] = [];
  const train: TrainRun = (cfg) => { calls.push(cfg); return Promise.resolve(fakeRun(cfg)); };
  return { factory: () => Promise.resolve(train), calls };
}

const SWEEP: SweepOptions = { rules: ['sp', 'supar'], densities: [1, 0.25], lrs: [2 ** -9, 2 ** -8, 2 ** -5], steps: 4, seed: 3, lastK: 2 };
const COORD: CoordCheckOptions = { rules: ['sp', 'supar'], densities: [1, 0.5, 0.25], steps: 3, lr: 2 ** -10, seed: 0, threshold: 1.5 };
const TRAIN = { batch: 2, seq: 8, fixedBatch: false };

function plan(study: StudyKind, dir: string): ReturnType<typeof planStudy> {
  const p = planStudy(study, MODEL, undefined, TRAIN, ['node', 'supar-transform.js']);
  writePlan(p, dir, DEFAULT_SCHEDULER);
  return p;
}

/** Fisher–Yates with a fixed LCG: a reproducible "any order". */
function shuffled(n: number, seed: number): number[] {
  const xs = Array.from({ length: n }, (_, i) => i);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

test('a sweep run spec by spec in any order merges into byte-identical JSON and CSV to the in-process sweep', async () => {
  const local = await runSweep(SWEEP, (c) => Promise.resolve(fakeRun(c)));
  for (const seed of [1, 2]) {
    const dir = tempDir();
    const p = plan({ kind: 'sweep', options: SWEEP }, dir);
    assert.equal(p.specs.length, 12);
    const { factory } = countingFactory();
    const runner = new StudyRunner(dir, factory);
    for (const i of shuffled(12, seed)) assert.equal((await runner.run(i)).status, 'done');
    const merged = mergeStudy(dir);
    assert.equal(merged.merged.kind, 'sweep');
    if (merged.merged.kind !== 'sweep') return;
    assert.equal(resultJson(merged.merged.result), resultJson(local));
    assert.equal(sweepCsv(merged.merged.result), sweepCsv(local));
    assert.equal(merged.merged.result.points.filter((x) => x.status === 'diverged').length, 4);
  }
});

test('a coord check merges its runs (activations, verdicts) identically to the in-process one', async () => {
  const local = await runCoordCheck(COORD, (c) => Promise.resolve(fakeRun(c)));
  const dir = tempDir();
  plan({ kind: 'coord-check', options: COORD }, dir);
  const runner = new StudyRunner(dir, countingFactory().factory);
  for (const i of shuffled(6, 9)) await runner.run(i);
  const m = mergeStudy(dir);
  if (m.merged.kind !== 'coord-check') throw new Error('kind');
  assert.equal(resultJson(m.merged.result), resultJson(local));
  assert.equal(coordCsv(m.merged.result), coordCsv(local));
  assert.equal(m.merged.result.verdicts.find((v) => v.block === 'h0' && v.rules === 'sp')?.pass, false);
});

test('runs are idempotent, failures leave a record and no result, a changed model is refused', async () => {
  const dir = tempDir();
  plan({ kind: 'sweep', options: SWEEP }, dir);
  const { factory, calls } = countingFactory();
  const runner = new StudyRunner(dir, factory);
  assert.equal((await runner.run(4)).status, 'done');
  assert.equal((await new StudyRunner(dir, factory).run(4)).status, 'skipped');
  assert.equal(calls.length, 1);
  // A failing run: a failure record with the message and exit code, no result file.
  const failing: TrainRunFactory = () => Promise.resolve(() => Promise.reject(new Error('out of memory')));
  const f = await new StudyRunner(dir, failing).run(5);
  assert.equal(f.status, 'failed');
  assert.equal(fs.existsSync(resultPath(dir, 5)), false);
  assert.equal(JSON.parse(fs.readFileSync(failurePath(dir, 5), 'utf8')).error, 'out of memory');
  assert.throws(() => mergeStudy(dir), /10 missing, 1 failed \(first: run 5: out of memory\) of 12 runs; run them \(sbatch --array=0-3,5-11 slurm\.sbatch/);
  const partial = mergeStudy(dir, { allowPartial: true });
  assert.deepEqual([partial.missing.length, partial.failed.map((x) => x.index)], [10, [5]]);
  // The next attempt succeeds and removes the failure record.
  assert.equal((await runner.run(5)).status, 'done');
  assert.equal(fs.existsSync(failurePath(dir, 5)), false);
  // No temp files are left in results/.
  assert.deepEqual(fs.readdirSync(path.join(dir, 'results')).sort(), ['00004.json', '00005.json']);
  // An edited spec is refused by hash.
  const specFile = path.join(dir, 'runs', '00006.json');
  fs.writeFileSync(specFile, fs.readFileSync(specFile, 'utf8').replace('"steps": 4', '"steps": 5'));
  assert.throws(() => readSpec(dir, 6), /runs\/00006\.json: the run spec was edited or damaged/);
  // A model that changed since planning is refused (the run fails with that message).
  const copy = path.join(dir, 'model.onnx');
  fs.copyFileSync(MODEL, copy);
  const dir2 = tempDir();
  writePlan(planStudy({ kind: 'sweep', options: SWEEP }, copy, undefined, TRAIN, ['node']), dir2, DEFAULT_SCHEDULER);
  fs.appendFileSync(copy, Buffer.from([0]));
  const changed = await new StudyRunner(dir2, factory).run(0);
  assert.equal(changed.status === 'failed' && changed.failure.error, `${copy}: its content changed since the study was planned (sha256 differs); re-plan the study or restore the file`);
});

test('index lists, scheduler environment variables, worker slices', () => {
  assert.deepEqual(resolveIndices('3', {}, 12), [3]);
  assert.deepEqual(resolveIndices('0,4-6,4', {}, 12), [0, 4, 5, 6]);
  assert.deepEqual(resolveIndices(undefined, { SLURM_ARRAY_TASK_ID: '7' }, 12), [7]);
  assert.deepEqual(resolveIndices(undefined, { JOB_COMPLETION_INDEX: '11' }, 12), [11]);
  assert.throws(() => resolveIndices('12', {}, 12), /--index: '12' is not a run index or list in 0…11/);
  assert.throws(() => resolveIndices(undefined, {}, 12), /pass --index i/);
  assert.equal(indexList([0, 1, 2, 3, 5, 7, 8]), '0-3,5,7-8');
  assert.deepEqual(slices(5, 2), [[0, 1], [2, 3, 4]]);
  assert.deepEqual(slices(2, 8), [[0], [1]]);
});

test('the job files: a Slurm array over every run and a Kubernetes Indexed Job of the same size', () => {
  const dir = tempDir();
  const p = planStudy({ kind: 'sweep', options: SWEEP }, MODEL, undefined, TRAIN, ['/usr/bin/node', '/opt/supar transform/bin/supar-transform.js']);
  writePlan(p, dir, { ...DEFAULT_SCHEDULER, parallel: 3, partition: 'gpu' });
  const sbatch = fs.readFileSync(path.join(dir, 'slurm.sbatch'), 'utf8');
  assert.match(sbatch, /^#SBATCH --array=0-11%3$/m);
  assert.match(sbatch, /^#SBATCH --partition=gpu$/m);
  assert.match(sbatch, new RegExp(`^exec /usr/bin/node '/opt/supar transform/bin/supar-transform.js' run ${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
  assert.equal(fs.statSync(path.join(dir, 'slurm.sbatch')).mode & 0o111, 0o111);
  const job = parseYaml(fs.readFileSync(path.join(dir, 'k8s-indexed-job.yaml'), 'utf8')) as Record<string, any>;
  assert.equal(job.apiVersion, 'batch/v1');
  assert.equal(job.kind, 'Job');
  assert.equal(job.spec.completionMode, 'Indexed');
  assert.equal(job.spec.completions, 12);
  assert.equal(job.spec.parallelism, 3);
  assert.match(job.metadata.name, /^[a-z0-9-]{1,63}$/);
  const pod = job.spec.template.spec;
  assert.equal(pod.restartPolicy, 'Never');
  assert.deepEqual(pod.containers[0].command.slice(-2), ['run', dir]);
  assert.equal(pod.containers[0].volumeMounts[0].mountPath, dir);
  assert.equal(pod.volumes[0].persistentVolumeClaim.claimName, 'supar-study');
  // Same study planned twice: the same spec hashes (a re-plan keeps finished results).
  const again = planStudy({ kind: 'sweep', options: SWEEP }, MODEL, undefined, TRAIN, ['x']);
  assert.deepEqual(again.specs.map((s) => s.hash), p.specs.map((s) => s.hash));
  assert.notEqual(planStudy({ kind: 'sweep', options: { ...SWEEP, seed: 4 } }, MODEL, undefined, TRAIN, ['x']).specs[0].hash, p.specs[0].hash);
});

test('CLI: sweep --plan, then run each index in reverse order and merge = the local sweep, byte for byte', async () => {
  const dir = tempDir();
  const args = ['--densities', '1,1/4', '--lrs', '2^-9:2^-8', '--steps', '3', '--last-k', '1', '--rules', 'supar', '--batch', '2', '--seq', '8'];
  const local = await runCli(['sweep', MODEL, ...args, '--out', path.join(dir, 'local'), '--jobs', '2'], { timeoutMs: 120_000 });
  assert.equal(local.code, 0, local.stderr);
  assert.match(local.stderr, /\[4\/4\] supar density 1\/4 lr 2\^-8: final loss/);
  const planned = await runCli(['sweep', MODEL, ...args, '--plan', path.join(dir, 'plan')]);
  assert.equal(planned.code, 0, planned.stderr);
  assert.match(planned.stdout, /^planned 4 runs in /);
  const early = await runCli(['merge', path.join(dir, 'plan')]);
  assert.equal(early.code, 3);
  assert.match(early.stderr, /^error: .*plan: 4 missing of 4 runs; run them \(sbatch --array=0-3 slurm\.sbatch/);
  const run = await runCli(['run', path.join(dir, 'plan'), '--index', '3,2'], { timeoutMs: 120_000 });
  assert.equal(run.code, 0, run.stderr);
  const rest = await runCli(['run', path.join(dir, 'plan')], { env: { SLURM_ARRAY_TASK_ID: '1' }, timeoutMs: 120_000 });
  assert.equal(rest.code, 0, rest.stderr);
  const last = await runCli(['run', path.join(dir, 'plan')], { env: { JOB_COMPLETION_INDEX: '0' }, timeoutMs: 120_000 });
  assert.equal(last.code, 0, last.stderr);
  const again = await runCli(['run', path.join(dir, 'plan'), '--index', '0'], { timeoutMs: 120_000 });
  assert.match(again.stderr, /\(already done\)$/m);
  const merged = await runCli(['merge', path.join(dir, 'plan')]);
  assert.equal(merged.code, 0, merged.stderr);
  for (const f of ['sweep.json', 'sweep.csv', 'sweep.optima.md', 'sweep.svg']) {
    assert.ok(fs.readFileSync(path.join(dir, 'plan', f)).equals(fs.readFileSync(path.join(dir, 'local', f))), f);
  }
});
