/**
 * The PRNG (pinned golden outputs, an independent BigInt re-implementation, MurmurHash3 reference vectors) and
 * the mask patterns (exact counts, per-row and N:M invariants, Bernoulli within 4σ, Floyd uniformity by χ²).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { murmur3_32, Rng } from '../src/passes/rng.js';
import { drawMask, keptCount, nmForDensity, type MaskSpec } from '../src/passes/mask-patterns.js';
import { UserInputError } from '../src/errors.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const sum = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);

test('murmur3_32 matches the published reference vectors', () => {
  assert.equal(murmur3_32(utf8(''), 0), 0);
  assert.equal(murmur3_32(utf8(''), 1), 0x514e28b7);
  assert.equal(murmur3_32(utf8('test'), 0), 0xba6bd213);
  assert.equal(murmur3_32(utf8('Hello, world!'), 0x9747b28c), 0x24884cba);
  assert.equal(murmur3_32(utf8('The quick brown fox jumps over the lazy dog'), 0x9747b28c), 0x2fa826cd);
});

test('golden: first 8 u32 outputs for seed 0, tensor "w", purpose "mask"', () => {
  // Pinned when supar-rng-1 was written; any change here changes every user's masks (bump RNG_VERSION).
  const rng = Rng.forTensor(0, 'w', 'mask');
  const got = Array.from({ length: 8 }, () => rng.nextU32());
  assert.deepEqual(got, [811877634, 673249406, 869656931, 4078543084, 427775744, 1365410731, 993793918, 3887894147]);
});

/** Independent reference: splitmix32 + sfc32 in BigInt arithmetic mod 2^32, straight from the header's text. */
function referenceStream(key: string, count: number): number[] {
  const M = 0xffffffffn;
  const mul = (a: bigint, b: bigint) => (a * b) & M;
  const splitmix = (seed: number) => {
    let s = BigInt(seed);
    return () => {
      s = (s + 0x9e3779b9n) & M;
      let z = s;
      z ^= z >> 16n; z = mul(z, 0x21f0aaadn);
      z ^= z >> 15n; z = mul(z, 0x735a2d97n);
      return z ^ (z >> 15n);
    };
  };
  const bytes = utf8(key);
  const f = splitmix(murmur3_32(bytes, 0));
  const g = splitmix(murmur3_32(bytes, 0x9e3779b9));
  let [a, b, c, d] = [f(), f(), g(), 1n];
  const step = () => {
    const t = (a + b + d) & M;
    d = (d + 1n) & M;
    a = b ^ (b >> 9n);
    b = (c + (c << 3n)) & M;
    c = ((((c << 21n) | (c >> 11n)) & M) + t) & M;
    return Number(t);
  };
  for (let i = 0; i < 15; i++) step();
  return Array.from({ length: count }, step);
}

test('the Rng equals the BigInt reference of the documented algorithm', () => {
  for (const [seed, name, purpose] of [[0, 'w', 'mask'], [7, 'transformer.h.0.attn.c_attn.weight', 'init'], [123456789, 'µ/é', 'mask']] as const) {
    const rng = Rng.forTensor(seed, name, purpose);
    const got = Array.from({ length: 1000 }, () => rng.nextU32());
    assert.deepEqual(got, referenceStream(`supar-rng-1\0${seed}\0${name}\0${purpose}`, 1000));
  }
});

test('uniform53 and normal: moments', () => {
  const rng = Rng.forTensor(1, 'moments', 'test');
  const n = 200_000;
  let s = 0, s2 = 0, min = 1, max = 0;
  for (let i = 0; i < n; i++) {
    const u = rng.uniform53();
    s += u; s2 += u * u; min = Math.min(min, u); max = Math.max(max, u);
  }
  assert.ok(min >= 0 && max < 1);
  assert.ok(Math.abs(s / n - 0.5) < 4 * Math.sqrt(1 / 12 / n));
  let m = 0, v = 0;
  for (let i = 0; i < n; i++) { const z = rng.normal(); m += z; v += z * z; }
  assert.ok(Math.abs(m / n) < 4 / Math.sqrt(n), `mean ${m / n}`);
  assert.ok(Math.abs(v / n - 1) < 4 * Math.sqrt(2 / n), `var ${v / n}`);
});

test('fillNormals: the same values, bit for bit, as one normal() per entry, dense or at indices, across an odd split', () => {
  const std = 0.0173;
  for (const counts of [[1], [2], [7, 8, 1], [1000, 3, 999]]) {
    for (const scattered of [false, true]) {
      const one = Rng.forTensor(3, 'w', 'init');
      const many = Rng.forTensor(3, 'w', 'init');
      one.normal(); many.fillNormals(new Float32Array(1), 1, 1); // both start with a cached second value
      for (const count of counts) {
        const size = scattered ? 3 * count + 2 : count;
        const indices = Int32Array.from({ length: count }, (_, j) => 3 * j + (j % 3));
        const want = new Float32Array(size);
        for (let j = 0; j < count; j++) want[scattered ? indices[j]! : j] = 0 + std * one.normal();
        const got = new Float32Array(size);
        many.fillNormals(got, std, count, scattered ? indices : undefined);
        assert.deepEqual(got, want, `counts ${counts}, ${scattered ? 'scattered' : 'dense'}, count ${count}`);
      }
      assert.equal(many.nextU32(), one.nextU32(), 'the streams end in the same state');
    }
  }
});

test('streams: same key same bytes, independent of other draws; seed and name change them', () => {
  const spec: MaskSpec = { shape: [64, 48], density: 0.25, mode: 'exact', inputAxis: 0, outputAxis: 1 };
  const first = drawMask(spec, Rng.forTensor(0, 'a', 'mask'));
  drawMask(spec, Rng.forTensor(0, 'b', 'mask')); // another tensor drawn in between
  const again = drawMask(spec, Rng.forTensor(0, 'a', 'mask'));
  assert.deepEqual(again, first);
  assert.notDeepEqual(drawMask(spec, Rng.forTensor(1, 'a', 'mask')), first);
  assert.notDeepEqual(drawMask(spec, Rng.forTensor(0, 'b', 'mask')), first);
  assert.throws(() => Rng.forTensor(-1, 'a', 'mask'), UserInputError);
});

test('exact: round(ρ·n) ones per tensor, both Floyd branches', () => {
  for (const [shape, density] of [[[768, 2304], 0.125], [[100, 7], 0.5], [[33, 3], 0.9], [[5], 0.01], [[64, 64], 1]] as const) {
    const n = shape.reduce((a, b) => a * b, 1);
    const mask = drawMask({ shape: [...shape], density, mode: 'exact', inputAxis: 0, outputAxis: shape.length - 1 }, Rng.forTensor(3, `t${n}`, 'mask'));
    assert.equal(mask.length, n);
    assert.equal(sum(mask), keptCount(n, density));
    assert.ok(mask.every((v) => v === 0 || v === 1));
  }
  assert.equal(keptCount(768 * 2304, 0.125), 221184);
  assert.equal(keptCount(5, 0.01), 1);
});

test('exact: Floyd draws uniform subsets (χ² on per-position inclusion)', () => {
  for (const k of [3, 8]) {
    const n = 10, trials = 20_000;
    const hits = new Array<number>(n).fill(0);
    const rng = Rng.forTensor(0, `chi2-${k}`, 'mask');
    for (let t = 0; t < trials; t++) {
      drawMask({ shape: [n], density: k / n, mode: 'exact', inputAxis: 0, outputAxis: 0 }, rng).forEach((v, i) => { hits[i]! += v; });
    }
    const expected = (trials * k) / n;
    const chi2 = hits.reduce((a, h) => a + ((h - expected) ** 2) / expected, 0);
    assert.ok(chi2 < 27.9, `k=${k} chi2 ${chi2}`); // χ²(9) 99.9th percentile = 27.88
  }
});

test('bernoulli: density within 4σ, σ = sqrt(ρ(1−ρ)/n)', () => {
  const n = 1_000_000, rho = 0.125;
  const mask = drawMask({ shape: [1000, 1000], density: rho, mode: 'bernoulli', inputAxis: 0, outputAxis: 1 }, Rng.forTensor(0, 'bern', 'mask'));
  const got = sum(mask) / n;
  assert.ok(Math.abs(got - rho) < 4 * Math.sqrt((rho * (1 - rho)) / n), `density ${got}`);
});

test('per-row: every output unit keeps exactly round(ρ·fan_in)', () => {
  // MatMul weight [in, out]: the fan-in of column o runs down axis 0.
  const [din, dout] = [96, 40];
  const m = drawMask({ shape: [din, dout], density: 0.25, mode: 'per-row', inputAxis: 0, outputAxis: 1 }, Rng.forTensor(0, 'pr', 'mask'));
  for (let o = 0; o < dout; o++) {
    let c = 0;
    for (let i = 0; i < din; i++) c += m[i * dout + o]!;
    assert.equal(c, 24);
  }
  // Conv weight [out, in, kh, kw]: fan-in block is in·kh·kw = 54, round(0.3·54) = 16.
  const conv = drawMask({ shape: [8, 6, 3, 3], density: 0.3, mode: 'per-row', inputAxis: 1, outputAxis: 0 }, Rng.forTensor(0, 'conv', 'mask'));
  for (let o = 0; o < 8; o++) assert.equal(sum(conv.subarray(o * 54, (o + 1) * 54)), 16);
  // Different rows get different patterns.
  assert.notDeepEqual(conv.subarray(0, 54), conv.subarray(54, 108));
});

test('n:m: exactly n of every m consecutive entries along the input axis', () => {
  // [in=16, out=12], input along axis 0 (MatMul).
  const a = drawMask({ shape: [16, 12], density: 0.5, mode: 'n:m', inputAxis: 0, outputAxis: 1 }, Rng.forTensor(0, 'nm', 'mask'));
  for (let o = 0; o < 12; o++) for (let g = 0; g < 16; g += 4) {
    let c = 0;
    for (let i = g; i < g + 4; i++) c += a[i * 12 + o]!;
    assert.equal(c, 2);
  }
  // [out=5, in=16] (Gemm transB=1), explicit 1:8.
  const b = drawMask({ shape: [5, 16], density: 0, n: 1, m: 8, mode: 'n:m', inputAxis: 1, outputAxis: 0 }, Rng.forTensor(0, 'nmT', 'mask'));
  for (let o = 0; o < 5; o++) for (let g = 0; g < 16; g += 8) assert.equal(sum(b.subarray(o * 16 + g, o * 16 + g + 8)), 1);
  // Conv [out=4, in=8, 3, 3]: groups of 4 along the input channels for each (o, kh, kw).
  const c = drawMask({ shape: [4, 8, 3, 3], density: 0.5, mode: 'n:m', inputAxis: 1, outputAxis: 0 }, Rng.forTensor(0, 'nmC', 'mask'));
  for (let o = 0; o < 4; o++) for (let s = 0; s < 9; s++) for (let g = 0; g < 8; g += 4) {
    let cnt = 0;
    for (let ch = g; ch < g + 4; ch++) cnt += c[o * 72 + ch * 9 + s]!;
    assert.equal(cnt, 2);
  }
  assert.deepEqual(nmForDensity(0.5), { n: 2, m: 4 });
  assert.deepEqual(nmForDensity(0.125), { n: 1, m: 8 });
  assert.equal(nmForDensity(0.3), undefined);
});

test('bad specs fail with the tensor named', () => {
  assert.throws(
    () => drawMask({ shape: [6, 4], density: 0.5, mode: 'n:m', inputAxis: 0, outputAxis: 1, name: 'h.0.mlp.w' }, Rng.forTensor(0, 'x', 'mask')),
    (e: unknown) => e instanceof UserInputError && /tensor 'h\.0\.mlp\.w': N:M 2:4 needs M to divide the input dimension \(axis 0, size 6\)/.test(e.message),
  );
  for (const density of [0, -0.1, 1.5, NaN]) {
    assert.throws(() => drawMask({ shape: [4, 4], density, mode: 'exact', inputAxis: 0, outputAxis: 1, name: 'w' }, Rng.forTensor(0, 'x', 'mask')), /tensor 'w': density .* is outside \(0, 1\]/);
  }
  assert.throws(() => drawMask({ shape: [4, 4], density: 0.3, mode: 'n:m', inputAxis: 0, outputAxis: 1 }, Rng.forTensor(0, 'x', 'mask')), /not n\/m for a small m/);
});
