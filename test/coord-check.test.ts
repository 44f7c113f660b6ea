import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { coordCsv, coordFigure, coordVerdicts, runCoordCheck, spreadRatio, verdictLines, type CoordRecord } from '../src/experiments/coord-check.js';
import { figureSvg } from '../src/experiments/plot.js';
import { meanAbs, type RunConfig, type RunResult } from '../src/experiments/run-types.js';
import type { BlockOutput } from '../src/analysis/types.js';
import { byClass, findAll, parseXml } from './svg-xml.js';

test('meanAbs and the max/min spread', () => {
  assert.equal(meanAbs(Float32Array.of(1, -2, 3, -4)), 2.5);
  assert.equal(spreadRatio([0.5, 1, 2]), 4);
  assert.equal(spreadRatio([1, 0]), Infinity);
  assert.equal(spreadRatio([1, NaN]), Infinity);
});

test('verdicts take the worst step of the max/min ratio across densities, per rule set and block', () => {
  const rec = (rules: string, density: number, step: number, meanAbs: number): CoordRecord =>
    ({ rules, density, step, block: 'b', kind: 'mlp', layer: 0, meanAbs });
  const records = [
    rec('a', 1, 0, 1), rec('a', 0.5, 0, 1.2), rec('a', 0.25, 0, 1.1),
    rec('a', 1, 1, 1), rec('a', 0.5, 1, 1.4), rec('a', 0.25, 1, 0.9),
    rec('b', 1, 0, 1), rec('b', 0.5, 0, 0.5), rec('b', 1, 1, 2), rec('b', 0.5, 1, 0),
  ];
  const v = coordVerdicts(records, 1.5);
  assert.equal(v.length, 2);
  assert.ok(Math.abs(v[0].maxRatio - 1.4 / 0.9) < 1e-12);
  assert.equal(v[0].worstStep, 1);
  assert.equal(v[0].pass, false);
  assert.equal(v[1].maxRatio, Infinity);
  assert.equal(v[1].worstStep, 1);
  assert.equal(coordVerdicts(records.slice(0, 3), 1.5)[0].pass, true);
});

const BLOCKS: BlockOutput[] = [
  { value: 'h.0.attn.out', kind: 'attention', layer: 0 },
  { value: 'h.0.mlp.out', kind: 'mlp', layer: 0 },
  { value: 'h.0.attn.logits', kind: 'attention_logits', layer: 0 },
  { value: 'logits', kind: 'output_logits' },
  { value: 'embed', kind: 'embedding' },
];

/** A fake run: "sp" activations scale like √density (the init-variance effect), "supar" ones do not. */
function fakeTrain(cfg: RunConfig): Promise<RunResult> {
  assert.equal(cfg.recordActivations, true);
  const scale = cfg.rules === 'sp' ? Math.sqrt(cfg.density) : 1;
  const activations = Array.from({ length: cfg.steps }, (_, t) =>
    Object.fromEntries(BLOCKS.map((b, i) => [b.value, (1 + i) * scale * (1 + 0.01 * t)])));
  return Promise.resolve({ losses: Array.from({ length: cfg.steps }, (_, t) => 5 - t * 0.1), activations, blocks: BLOCKS });
}

test('a coord check over fake runs: records, verdicts, CSV and a figure per rule set', async () => {
  const opts = { rules: ['sp', 'supar'], densities: [1, 0.25, 0.0625], steps: 3, lr: 0.01, seed: 0, threshold: 1.5 };
  const res = await runCoordCheck(opts, fakeTrain);
  // 2 rules × 3 densities × 3 steps × 4 judged blocks (embedding outputs are not judged).
  assert.equal(res.records.length, 72);
  const sp = res.verdicts.filter((v) => v.rules === 'sp');
  assert.equal(sp.length, 4);
  for (const v of sp) { assert.ok(Math.abs(v.maxRatio - 4) < 1e-12); assert.equal(v.pass, false); }
  for (const v of res.verdicts.filter((x) => x.rules === 'supar')) { assert.ok(Math.abs(v.maxRatio - 1) < 1e-12); assert.equal(v.pass, true); }
  const lines = verdictLines(res);
  assert.match(lines[0], /^sp +layer 0 attention +max\/min across densities +4\.000 \(worst at step 0\) +DRIFTS/);
  const csv = coordCsv(res).trim().split('\n');
  assert.equal(csv[0], 'rules,density,step,block,kind,layer,mean_abs');
  assert.equal(csv[1], 'sp,1,0,h.0.attn.out,attention,0,1');
  const root = parseXml(figureSvg(coordFigure(res, 'sp')));
  assert.equal(findAll(root, byClass('panel')).length, 4);
  assert.equal(findAll(root, byClass('series')).length, 4 * 3);
  assert.equal(findAll(root, byClass('legend-entry')).length, 3);
});
