/** Init sampling: the non-zeros' std against the target (normal and truncated), masked entries exactly 0. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Rng } from '../src/passes/rng.js';
import { drawMask } from '../src/passes/mask-patterns.js';
import { applyMask, nonZeroStats, rescaleToStd, sampleInit, TRUNCATED_NORMAL_STD } from '../src/passes/init-sampling.js';
import { evalExpr } from '../src/rules/expr.js';

const SHAPE = [1024, 512]; // 524,288 entries; 65,536 kept at ρ = 0.125

function maskFor(density: number, name: string): Uint8Array {
  return drawMask({ shape: SHAPE, density, mode: 'exact', inputAxis: 0, outputAxis: 1 }, Rng.forTensor(0, name, 'mask'));
}

test('normal init: SµPar hidden std of the non-zeros within 2 %, masked entries exactly 0', () => {
  const std = evalExpr('sigma_base/sqrt(m_d*m_rho)', { sigma_base: 0.02, m_d: 2, m_rho: 0.125 });
  assert.equal(std, 0.04);
  for (const density of [1, 0.5, 0.125]) {
    const mask = density < 1 ? maskFor(density, `w${density}`) : undefined;
    const values = new Float32Array(SHAPE[0]! * SHAPE[1]!).fill(7);
    sampleInit(values, mask, std, Rng.forTensor(0, `w${density}`, 'init'));
    const stats = nonZeroStats(values, mask);
    assert.ok(Math.abs(stats.std / std - 1) < 0.02, `density ${density}: std ${stats.std}`);
    assert.ok(Math.abs(stats.mean) < 4 * std / Math.sqrt(stats.count));
    if (mask) {
      assert.ok(mask.every((m, i) => (m === 0 ? Object.is(values[i], 0) : values[i] !== 0)));
      assert.equal(stats.count, mask.reduce((a, b) => a + b, 0));
    }
  }
});

test('truncated init: bounded at ±2 underlying σ, non-zeros std within 2 % of the target', () => {
  const std = 0.02;
  const mask = maskFor(0.5, 'trunc');
  const values = new Float32Array(mask.length);
  sampleInit(values, mask, std, Rng.forTensor(0, 'trunc', 'init'), { truncated: true });
  const stats = nonZeroStats(values, mask);
  assert.ok(Math.abs(stats.std / std - 1) < 0.02, `std ${stats.std}`);
  const bound = (2 * std) / TRUNCATED_NORMAL_STD;
  let max = 0;
  for (const v of values) max = Math.max(max, Math.abs(v));
  assert.ok(max <= bound * (1 + 1e-6) && max > 0.98 * bound, `max ${max} bound ${bound}`);
  assert.ok(mask.every((m, i) => m === 1 || values[i] === 0));
});

test('TRUNCATED_NORMAL_STD equals the std of N(0,1) truncated to [−2, 2] (Simpson integration)', () => {
  const pdf = (z: number) => Math.exp(-z * z / 2);
  const steps = 20_000, h = 4 / steps;
  let mass = 0, second = 0;
  for (let i = 0; i <= steps; i++) {
    const z = -2 + i * h;
    const w = i === 0 || i === steps ? 1 : i % 2 ? 4 : 2;
    mass += w * pdf(z);
    second += w * z * z * pdf(z);
  }
  assert.ok(Math.abs(Math.sqrt(second / mass) - TRUNCATED_NORMAL_STD) < 1e-10);
});

test('same seed same values; other streams do not disturb them', () => {
  const draw = () => {
    const v = new Float32Array(1000);
    sampleInit(v, undefined, 1, Rng.forTensor(5, 'x', 'init'));
    return v;
  };
  const a = draw();
  sampleInit(new Float32Array(10), undefined, 1, Rng.forTensor(5, 'y', 'init'));
  assert.deepEqual(draw(), a);
  const other = new Float32Array(1000);
  sampleInit(other, undefined, 1, Rng.forTensor(6, 'x', 'init'));
  assert.notDeepEqual(other, a);
});

test('rescaleToStd and applyMask', () => {
  const mask = maskFor(0.25, 'resc');
  const values = new Float32Array(mask.length);
  sampleInit(values, undefined, 0.5, Rng.forTensor(0, 'resc', 'init'), { mean: 0.1 });
  const { scale, stdBefore } = rescaleToStd(values, mask, 0.01);
  assert.ok(Math.abs(stdBefore / 0.5 - 1) < 0.02);
  assert.ok(Math.abs(scale - 0.01 / stdBefore) < 1e-15);
  const after = nonZeroStats(values, mask);
  assert.ok(Math.abs(after.std / 0.01 - 1) < 1e-5, `${after.std}`);
  assert.ok(mask.every((m, i) => m === 1 || values[i] === 0));
  assert.throws(() => rescaleToStd(new Float32Array(4), undefined, 1, "tensor 'z'"), /tensor 'z': cannot rescale/);
  const v = Float32Array.from([1, 2, 3, 4]);
  applyMask(v, Uint8Array.from([1, 0, 0, 1]));
  assert.deepEqual([...v], [1, 0, 0, 4]);
});
