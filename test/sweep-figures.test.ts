/**
 * The sweep's figures (src/experiments/sweep-figures.ts): loss vs LR with a panel per rule set and a curve
 * per density or model, and the optimal LR against the swept dimension (density, width or depth). The SVG
 * is parsed and each point's position checked against the axis ticks, so a wrong optimum or a wrong x value
 * fails the test.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { assembleSweep, optimaMarkdown, parseLrGrid, runSweep, type SweepOptions } from '../src/experiments/sweep.js';
import { optimaFigure, sweepFigure } from '../src/experiments/sweep-figures.js';
import { figureSvg, plainLabel } from '../src/experiments/plot.js';
import type { RunConfig, RunResult, StudyModel } from '../src/experiments/run-types.js';
import { byClass, findAll, parseXml, textOf, type XmlElement } from './svg-xml.js';

/**
 * Loss = 2 + 0.1·(log2 lr − log2 η*)² with η* = 2^-8 moved by `shift(cfg)` grid steps; LRs ≥ 2^-4 diverge
 * (NaN from step 1), and so does every LR of "bad" at density 1/4.
 */
function fakeTrain(shift: (cfg: RunConfig) => number) {
  return (cfg: RunConfig): Promise<RunResult> => {
    const x = Math.log2(cfg.lr);
    const final = 2 + 0.1 * (x - (-8 + shift(cfg))) ** 2;
    const blowUp = x >= -4 || (cfg.rules === 'bad' && cfg.density === 0.25);
    return Promise.resolve({ losses: [5, blowUp ? NaN : final], activations: [], blocks: [] });
  };
}

/** The vertices of a series path, in SVG units. */
function vertices(path: XmlElement): [number, number][] {
  return [...path.attrs.d.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

/** Position of the tick at `value` on an axis ('x-tick' → its x, 'y-tick' → its y). */
function tickAt(panel: XmlElement, kind: 'x-tick' | 'y-tick', value: number): number {
  const t = findAll(panel, byClass(kind)).find((e) => Math.abs(Number(e.attrs['data-value']) - value) < 1e-12);
  assert.ok(t, `no ${kind} at ${value}`);
  const line = t.children[0]!;
  return Number(kind === 'x-tick' ? line.attrs.x1 : line.attrs.y1);
}

test('optimal LR vs density: a line per rule set, each vertex at (density, optimal LR) on the axes, the spread in the legend', async () => {
  const opts: SweepOptions = { rules: ['sp', 'supar', 'bad'], densities: [1, 0.5, 0.25, 0.125], lrs: parseLrGrid('2^-10:2^-4'), steps: 2, seed: 0, lastK: 1 };
  // sp: the optimum climbs a step per halving of density (2^-8 … 2^-5); supar stays at 2^-8; bad: 2^-7 at 1/2, all diverged at 1/4.
  const res = await runSweep(opts, fakeTrain((c) => (c.rules === 'supar' ? 0 : c.rules === 'bad' ? Number(c.density === 0.5) : -Math.log2(c.density))));
  const root = parseXml(figureSvg(optimaFigure(res)));
  const [panel, ...more] = findAll(root, byClass('panel'));
  assert.equal(more.length, 0);
  assert.deepEqual(findAll(root, byClass('legend-entry')).map(textOf), ['sp (moves 3 steps)', 'supar (moves 0 steps)', 'bad (moves 1 step)']);
  // x ticks are the densities, labelled as fractions.
  assert.deepEqual(findAll(panel!, byClass('x-tick')).map(textOf), ['1/8', '1/4', '1/2', '1']);
  const series = findAll(panel!, byClass('series'));
  const expected: Record<string, [number, number][]> = {
    'sp (moves 3 steps)': [[0.125, -5], [0.25, -6], [0.5, -7], [1, -8]],
    'supar (moves 0 steps)': [[0.125, -8], [0.25, -8], [0.5, -8], [1, -8]],
    'bad (moves 1 step)': [[0.125, -8], [0.5, -7], [1, -8]],
  };
  for (const s of series) {
    const want = expected[s.attrs['data-series']]!;
    const got = vertices(s);
    assert.equal(got.length, want.length, s.attrs['data-series']);
    want.forEach(([d, k], i) => {
      assert.ok(Math.abs(got[i]![0] - tickAt(panel!, 'x-tick', d)) < 0.02, `${s.attrs['data-series']} x at density ${d}`);
      assert.ok(Math.abs(got[i]![1] - tickAt(panel!, 'y-tick', 2 ** k)) < 0.02, `${s.attrs['data-series']} y 2^${k} at density ${d}`);
    });
  }
  // The y axis spans the LR grid (2^-10 … 2^-4) and no further than half a step beyond it.
  assert.deepEqual(findAll(panel!, byClass('y-tick')).map((t) => Math.log2(Number(t.attrs['data-value']))), [-10, -9, -8, -7, -6, -5, -4]);
  // No optimum on the grid's edge here (2^-10 and 2^-4 are never best); bad's density 1/4 is a cross.
  assert.equal(findAll(panel!, byClass('mark')).length, 0);
  const crosses = findAll(panel!, byClass('diverged'));
  assert.equal(crosses.length, 1);
  assert.ok(Math.abs(Number(/^M([\d.]+)/.exec(crosses[0]!.attrs.d)![1]) + 4 - tickAt(panel!, 'x-tick', 0.25)) < 0.02);
});

test('a several-model sweep: loss vs LR has a curve per depth in a panel per rule set; the optimum plot has depth on x', async () => {
  const models: StudyModel[] = [2, 4, 8].map((L) => ({ label: `gpt-L${L}`, dModel: 128, nLayers: L }));
  const opts: SweepOptions = { rules: ['completep', 'mup'], densities: [1, 0.5], lrs: parseLrGrid('2^-11:2^-5'), steps: 2, seed: 0, lastK: 1, models };
  // µP's optimum falls a step per doubling of depth, and the edge 2^-11 is reached at depth 8; CompleteP's stays.
  const depth = (c: RunConfig) => models[c.model!]!.nLayers!;
  const res = await runSweep(opts, fakeTrain((c) => (c.rules === 'mup' ? -Math.log2(depth(c)) - 0.4 : 0)));
  const loss = parseXml(figureSvg(sweepFigure(res)));
  assert.deepEqual(findAll(loss, byClass('panel-title')).map(textOf), ['completep', 'mup']);
  assert.deepEqual(findAll(loss, byClass('legend-entry')).map(textOf), ['depth 2, density 1', 'depth 2, density 1/2', 'depth 4, density 1', 'depth 4, density 1/2', 'depth 8, density 1', 'depth 8, density 1/2']);
  assert.equal(findAll(loss, byClass('series')).length, 12);

  const root = parseXml(figureSvg(optimaFigure(res)));
  const panel = findAll(root, byClass('panel'))[0]!;
  assert.match(textOf(root), /Loss-optimal learning rate vs depth/);
  assert.deepEqual(findAll(panel, byClass('x-tick')).map(textOf), ['2', '4', '8']);
  assert.deepEqual(findAll(root, byClass('legend-entry')).map(textOf), ['completep, density 1', 'completep, density 1/2', 'mup, density 1', 'mup, density 1/2']);
  const mup = findAll(panel, byClass('series')).find((s) => s.attrs['data-series'] === 'mup, density 1')!;
  // round(-8 - log2 L - 0.4) on the grid: 2^-9 at depth 2, 2^-10 at 4, 2^-11 (the edge) at 8.
  const want: [number, number][] = [[2, -9], [4, -10], [8, -11]];
  vertices(mup).forEach(([x, y], i) => {
    assert.ok(Math.abs(x - tickAt(panel, 'x-tick', want[i]![0])) < 0.02);
    assert.ok(Math.abs(y - tickAt(panel, 'y-tick', 2 ** want[i]![1])) < 0.02);
  });
  // The two µP edge optima (depth 8, both densities) are ringed.
  assert.equal(findAll(panel, byClass('mark')).length, 2);
});

test('plain tick labels: fractions for reciprocals of integers, numbers otherwise', () => {
  assert.deepEqual([1 / 8, 0.5, 1, 128, 0.3, 2 ** -0.5].map(plainLabel), ['1/8', '1/2', '1', '128', '0.3', '0.707']);
});

test('an iso-parameter study (each width paired with one density, merged): one line per rule set over width, no empty rows', async () => {
  const models: StudyModel[] = [{ label: 'w128', dModel: 128, nLayers: 2 }, { label: 'w256', dModel: 256, nLayers: 2 }];
  const pairs = [[0, 1], [1, 0.25]] as const;
  const lrs = parseLrGrid('2^-10:2^-6');
  const base = { rules: ['supar', 'sp'], lrs, steps: 2, seed: 0, lastK: 1 };
  // supar's optimum stays at 2^-8; sp's climbs two steps at density 1/4.
  const train = fakeTrain((c) => (c.rules === 'sp' ? -Math.log2(c.density) : 0));
  const parts = await Promise.all(pairs.map(([model, density]) => runSweep({ ...base, densities: [density], models }, (c) => train({ ...c, model }))));
  const points = parts.flatMap((r, i) => r.points.filter((p) => p.model === models[pairs[i]![0]]!.label));
  const res = assembleSweep({ ...base, densities: [1, 0.25], models }, points);
  assert.deepEqual(res.optimumSpreadLog2, { supar: 0, sp: 2 });
  const md = optimaMarkdown(res);
  assert.equal(md.split('\n').filter((l) => l.startsWith('| w')).length, 2, md);
  assert.doesNotMatch(md, /all diverged/);
  const loss = parseXml(figureSvg(sweepFigure(res)));
  assert.deepEqual(findAll(loss, byClass('legend-entry')).map(textOf), ['width 128, density 1', 'width 256, density 1/4']);
  const root = parseXml(figureSvg(optimaFigure(res)));
  const panel = findAll(root, byClass('panel'))[0]!;
  assert.deepEqual(findAll(root, byClass('legend-entry')).map(textOf), ['supar (moves 0 steps)', 'sp (moves 2 steps)']);
  assert.equal(findAll(panel, byClass('diverged')).length, 0);
  const sp = findAll(panel, byClass('series')).find((s) => s.attrs['data-series'] === 'sp (moves 2 steps)')!;
  const want: [number, number][] = [[128, -8], [256, -6]];
  vertices(sp).forEach(([x, y], i) => {
    assert.ok(Math.abs(x - tickAt(panel, 'x-tick', want[i]![0])) < 0.02, `x ${x}`);
    assert.ok(Math.abs(y - tickAt(panel, 'y-tick', 2 ** want[i]![1])) < 0.02, `y ${y}`);
  });
});
