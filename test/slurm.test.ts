/**
 * On a real Slurm cluster (one node, started and stopped here: test/slurm-cluster.ts): a planned sweep is
 * submitted as a job array with the plan's own slurm.sbatch, cancelled mid-run with scancel, resubmitted,
 * and merged. The merge equals the local sweep byte for byte, no run trained twice, none is lost, and the
 * cancel left no half-written result. Skipped, with the reason, where slurmctld cannot start (not
 * installed, not root): .ci/run installs slurm-wlm and munge, so CI runs it.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, tempDir } from './helpers.js';
import { runCli } from './cli-helpers.js';
import { startCluster } from './slurm-cluster.js';

const MODEL = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');
const ARGS = ['--densities', '1,1/2,1/4', '--lrs', '2^-9:2^-8', '--steps', '4', '--last-k', '2', '--rules', 'supar', '--batch', '2', '--seq', '8'];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

test('Slurm job array: submit, scancel mid-run, resubmit, merge = the local sweep', { timeout: 240_000 }, async (t) => {
  const cluster = startCluster();
  if (typeof cluster === 'string') { t.skip(`no Slurm cluster: ${cluster}`); return; }
  try {
    const dir = tempDir();
    const plan = path.join(dir, 'plan');
    const local = await runCli(['sweep', MODEL, ...ARGS, '--out', path.join(dir, 'local'), '--jobs', '1'], { timeoutMs: 120_000 });
    assert.equal(local.code, 0, local.stderr);
    assert.equal((await runCli(['sweep', MODEL, ...ARGS, '--plan', plan, '--max-parallel', '1', '--slurm-mem', '1G'])).code, 0);
    const results = (): string[] => fs.readdirSync(path.join(plan, 'results')).sort();
    const queued = (id: string): boolean => cluster.client('squeue', ['-h', '-j', id, '-o', '%i']).trim() !== '';
    // First submission: cancel it once two runs are finished and the next one is running.
    const first = cluster.client('sbatch', ['--parsable', 'slurm.sbatch'], plan).trim();
    const deadline = Date.now() + 120_000;
    while (results().filter((f) => f.endsWith('.json')).length < 2 && Date.now() < deadline) await sleep(200);
    await sleep(800);
    cluster.client('scancel', [first]);
    while (queued(first) && Date.now() < deadline) await sleep(300);
    const afterCancel = results();
    assert.ok(afterCancel.length >= 2 && afterCancel.length < 6, `cancelled with ${afterCancel.length} of 6 results`);
    for (const f of afterCancel) {
      assert.match(f, /^\d{5}\.json$/, 'only whole results, no temp or failure files');
      assert.equal(JSON.parse(fs.readFileSync(path.join(plan, 'results', f), 'utf8')).format, 'supar-study-result/1');
    }
    const before = new Map(afterCancel.map((f) => [f, fs.readFileSync(path.join(plan, 'results', f), 'utf8')]));
    // Resubmit the whole array: finished runs are skipped, the rest complete.
    const second = cluster.client('sbatch', ['--parsable', 'slurm.sbatch'], plan).trim();
    while (queued(second) && Date.now() < deadline + 60_000) await sleep(300);
    assert.deepEqual(results(), ['00000.json', '00001.json', '00002.json', '00003.json', '00004.json', '00005.json']);
    for (const [f, text] of before) assert.equal(fs.readFileSync(path.join(plan, 'results', f), 'utf8'), text, `${f} kept as it was`);
    const logs = fs.readdirSync(path.join(plan, 'logs')).map((f) => fs.readFileSync(path.join(plan, 'logs', f), 'utf8')).join('\n');
    const trained = (logs.match(/final loss \d+\.\d+$/gm) ?? []).length;
    const skipped = (logs.match(/\(already done\)$/gm) ?? []).length;
    assert.equal(trained, 6, 'each run trained to the end exactly once');
    assert.equal(skipped, afterCancel.length, 'the resubmission skipped every finished run');
    const merged = await runCli(['merge', plan]);
    assert.equal(merged.code, 0, merged.stderr);
    for (const f of ['sweep.json', 'sweep.csv', 'sweep.optima.md']) {
      assert.ok(fs.readFileSync(path.join(plan, f)).equals(fs.readFileSync(path.join(dir, 'local', f))), f);
    }
  } finally {
    cluster.stop();
  }
});
