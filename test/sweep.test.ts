import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findOptima, optimaMarkdown, parseDensities, parseLrGrid, runSweep, summarizeLosses, sweepCsv } from '../src/experiments/sweep.js';
import { sweepFigure } from '../src/experiments/sweep-figures.js';
import { figureSvg } from '../src/experiments/plot.js';
import { lrAt, type RunConfig, type RunResult } from '../src/experiments/run-types.js';
import { makeOnnxTrainRun } from '../src/experiments/train-run.js';
import { writeSweepOutputs } from '../src/experiments/outputs.js';
import { ROOT, tempDir } from './helpers.js';
import { runCli } from './cli-helpers.js';
import { UsageError } from '../src/errors.js';
import { byClass, findAll, parseXml } from './svg-xml.js';

test('LR grids: log2 ranges with step 1 or a given step, lists of powers and decimals', () => {
  assert.deepEqual(parseLrGrid('2^-12:2^-4'), [-12, -11, -10, -9, -8, -7, -6, -5, -4].map((k) => 2 ** k));
  assert.deepEqual(parseLrGrid('2^-6:2^-5:0.5'), [2 ** -6, 2 ** -5.5, 2 ** -5]);
  assert.deepEqual(parseLrGrid('0.01,2^-8,1e-3,0.01'), [1e-3, 2 ** -8, 0.01]);
  assert.throws(() => parseLrGrid('2^-4:2^-12'), UsageError);
  assert.throws(() => parseLrGrid('abc'), /--lrs: 'abc'/);
  assert.throws(() => parseLrGrid('-1,2'), UsageError);
  assert.deepEqual(parseDensities('1,0.5,1/4,0.125,1/16'), [1, 0.5, 0.25, 0.125, 0.0625]);
  assert.throws(() => parseDensities('1,0'), /--densities: '0'/);
  assert.throws(() => parseDensities('1.5'), UsageError);
});

test('final loss is the mean of the last k steps; any non-finite loss marks the run diverged', () => {
  assert.deepEqual(summarizeLosses([5, 4, 3, 2], 2), { status: 'ok', finalLoss: 2.5, divergedAtStep: null });
  assert.deepEqual(summarizeLosses([5, 4, NaN, NaN], 2), { status: 'diverged', finalLoss: null, divergedAtStep: 2 });
  assert.deepEqual(summarizeLosses([5, Infinity, 3], 1), { status: 'diverged', finalLoss: null, divergedAtStep: 1 });
});

/**
 * A fake trainer whose loss is a parabola in log2(lr) with its minimum at log2 η* = -8 + shift(density);
 * for "sp" the optimum moves one step per halving of density, for "supar" it stays. LRs ≥ 2^-5 diverge.
 */
function fakeTrain(cfg: RunConfig): Promise<RunResult> {
  const shift = cfg.rules === 'sp' ? -Math.log2(cfg.density) : 0;
  const x = Math.log2(cfg.lr);
  const final = 2 + 0.1 * (x - (-8 + shift)) ** 2;
  const losses = Array.from({ length: cfg.steps }, (_, t) => (x >= -5 && t >= 2 ? NaN : final + (cfg.steps - 1 - t) * 0.5));
  return Promise.resolve({ losses, activations: [], blocks: [] });
}

test('a sweep finds each density optimum, measures the spread, keeps diverged runs, writes CSV/markdown/SVG', async () => {
  const opts = { rules: ['sp', 'supar'], densities: [1, 0.5, 0.25], lrs: parseLrGrid('2^-10:2^-5'), steps: 4, seed: 0, lastK: 1 };
  const lines: string[] = [];
  const res = await runSweep(opts, fakeTrain, (l) => lines.push(l));
  assert.equal(res.points.length, 2 * 3 * 6);
  assert.equal(lines.length, 36);
  assert.match(lines[5], /^\[6\/36\] sp density 1 lr 2\^-5: DIVERGED at step 2$/);
  const diverged = res.points.filter((p) => p.status === 'diverged');
  assert.equal(diverged.length, 6);
  for (const p of diverged) assert.equal(p.lr, 2 ** -5);
  const opt = (r: string, d: number) => res.optima.find((o) => o.rules === r && o.density === d)!;
  assert.equal(opt('sp', 1).log2Lr, -8);
  assert.equal(opt('sp', 0.5).log2Lr, -7);
  assert.equal(opt('sp', 0.25).log2Lr, -6);
  assert.equal(opt('sp', 0.25).atEdge, false);
  assert.equal(opt('supar', 0.25).log2Lr, -8);
  assert.equal(opt('supar', 0.25).finalLoss, 2);
  assert.deepEqual(res.optimumSpreadLog2, { sp: 2, supar: 0 });

  const csv = sweepCsv(res).trim().split('\n');
  assert.equal(csv.length, 37);
  assert.equal(csv[0], 'rules,density,lr,log2_lr,status,final_loss,diverged_at_step,loss_0,loss_1,loss_2,loss_3');
  assert.ok(csv.includes(`sp,1,${2 ** -5},-5,diverged,,2,4.4,3.9,NaN,NaN`), csv.slice(0, 8).join('\n'));

  const md = optimaMarkdown(res);
  assert.match(md, /\| 1\/4 \| 2\^-6 \(loss 2\.000\) \| 2\^-8 \(loss 2\.000\) \|/);
  assert.match(md, /\| optimum moves by \| 2 steps \(×4\) \| 0 steps \(×1\) \|/);

  const root = parseXml(figureSvg(sweepFigure(res)));
  assert.equal(findAll(root, byClass('panel')).length, 2);
  assert.equal(findAll(root, byClass('series')).length, 6);
  assert.equal(findAll(root, byClass('legend-entry')).length, 3);
  assert.equal(findAll(root, byClass('mark')).length, 6);
  assert.equal(findAll(root, byClass('diverged')).length, 6);
});

test('a density where every LR diverged has no optimum and says so', async () => {
  const opts = { rules: ['sp'], densities: [1], lrs: [2 ** -5, 2 ** -4], steps: 3, seed: 0, lastK: 1 };
  const res = await runSweep(opts, fakeTrain);
  assert.deepEqual(findOptima(res.points, ['sp'], [1])[0], { rules: 'sp', density: 1, lr: null, log2Lr: null, finalLoss: null, atEdge: false });
  assert.deepEqual(res.optimumSpreadLog2, { sp: null });
  assert.match(optimaMarkdown(res), /\| 1 \| all diverged \|/);
  const dir = tempDir();
  const file = path.join(dir, 'x.svg');
  fs.writeFileSync(file, figureSvg(sweepFigure(res)));
  assert.equal(findAll(parseXml(fs.readFileSync(file, 'utf8')), byClass('diverged')).length, 2);
});

test('warmup-decay LR: linear warm-up over 10 % of steps, then linear decay to lr/10 at the last step', () => {
  const lrs = Array.from({ length: 20 }, (_, t) => lrAt('warmup-decay', 1, t, 20));
  assert.deepEqual(lrs.slice(0, 4), [0.5, 1, 1, 1 - 0.9 / 17]);
  assert.ok(Math.abs(lrs[19] - 0.1) < 1e-12);
  for (let t = 3; t < 20; t++) assert.ok(lrs[t] < lrs[t - 1]);
  assert.equal(lrAt('constant', 0.3, 7, 20), 0.3);
});

test('a finite loss that more than triples the first one counts as diverged', () => {
  assert.deepEqual(summarizeLosses([5, 9, 16, 12], 2), { status: 'diverged', finalLoss: null, divergedAtStep: 2 });
  assert.deepEqual(summarizeLosses([5, 14.9, 4], 1), { status: 'ok', finalLoss: 4, divergedAtStep: null });
});

test('a tiny real sweep on the fixture GPT: writes JSON/CSV/SVG/markdown, marks optima, records the diverged LR', async () => {
  const train = await makeOnnxTrainRun({ modelPath: path.join(ROOT, 'fixtures', 'gpt-tiny.onnx'), batch: 2, seq: 16, fixedBatch: false });
  const opts = { rules: ['sp', 'supar'], densities: [1, 0.25], lrs: parseLrGrid('2^-9,2^-5,2^0'), steps: 6, seed: 0, lastK: 2 };
  const res = await runSweep(opts, train);
  assert.equal(res.points.length, 12);
  // LR 1 blows the loss up (more than ×3 the first loss) under both rule sets; the others train.
  for (const p of res.points) assert.equal(p.status, p.lr === 1 ? 'diverged' : 'ok', `${p.rules} ${p.density} ${p.lr}: ${p.losses}`);
  for (const o of res.optima) {
    const ok = res.points.filter((p) => p.rules === o.rules && p.density === o.density && p.finalLoss !== null);
    assert.equal(o.finalLoss, Math.min(...ok.map((p) => p.finalLoss as number)));
    assert.notEqual(o.lr, 1);
  }
  const dir = tempDir();
  const files = writeSweepOutputs(res, dir);
  assert.deepEqual(files.map((f) => path.basename(f)), ['sweep.json', 'sweep.csv', 'sweep.svg', 'sweep.optima.svg', 'sweep.optima.md', 'index.html']);
  const json = JSON.parse(fs.readFileSync(files[0], 'utf8'));
  assert.equal(json.points.filter((p: { status: string }) => p.status === 'diverged').length, 4);
  const root = parseXml(fs.readFileSync(files[2], 'utf8'));
  assert.equal(findAll(root, byClass('mark')).length, 4);
  assert.equal(findAll(root, byClass('diverged')).length, 4);
  assert.equal(findAll(root, byClass('legend-entry')).length, 2);
});

test('CLI: sweep and coord-check write their files, print the table / verdicts, and reject bad flags in one line', async () => {
  const dir = tempDir();
  const model = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');
  const sweep = await runCli(['sweep', model, '--densities', '1,1/4', '--lrs', '2^-9:2^-8', '--steps', '3', '--last-k', '1', '--rules', 'supar', '--batch', '2', '--seq', '8', '--out', path.join(dir, 's')], { timeoutMs: 120_000 });
  assert.equal(sweep.code, 0, sweep.stderr);
  assert.match(sweep.stdout, /^\| density \| supar: optimal LR \|$/m);
  assert.match(sweep.stderr, /\[4\/4\] supar density 1\/4 lr 2\^-8: final loss \d/);
  assert.deepEqual(fs.readdirSync(path.join(dir, 's')).sort(), ['index.html', 'study', 'sweep.csv', 'sweep.json', 'sweep.optima.md', 'sweep.optima.svg', 'sweep.svg']);
  const index = fs.readFileSync(path.join(dir, 's', 'index.html'), 'utf8');
  assert.ok(index.includes('<a href="study/study.json">study/study.json</a>') && index.includes('4 run result file(s)'), 'the index links the plan and its 4 runs');
  assert.equal((index.match(/<a href="study\/results\/\d+\.json">/g) ?? []).length, 4);
  const cc = await runCli(['coord-check', model, '--densities', '1,0.5', '--steps', '2', '--rules', 'sp', '--batch', '2', '--seq', '8', '--out', path.join(dir, 'c')], { timeoutMs: 120_000 });
  assert.equal(cc.code, 0, cc.stderr);
  assert.match(cc.stdout, /^sp +layer 0 attention +max\/min across densities +\d+\.\d{3} \(worst at step \d\)/m);
  assert.match(cc.stdout, /pairs flat within ×1\.5 over steps 0–1$/m);
  assert.ok(fs.existsSync(path.join(dir, 'c', 'coord-check.sp.svg')));
  const bad = await runCli(['sweep', model, '--lrs', '2^-4:2^-9', '--out', path.join(dir, 'b')]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim(), "error: --lrs: '2^-4:2^-9' needs LO ≤ HI and a positive log2 step");
  assert.ok(!fs.existsSync(path.join(dir, 'b')));
});
