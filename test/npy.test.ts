/**
 * The .npy reader and writer (src/train/npy.ts) against files numpy itself wrote
 * (fixtures/objectives/npy/make_npy.py): values and shapes read back exactly, the encoder writes numpy's
 * bytes for the same arrays (v1 header padded to 64), the v2 header parses, and big-endian or Fortran-order
 * files are refused with one line saying how to convert.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { encodeNpy, parseNpy, readNpyFile, type NpyArray } from '../src/train/npy.js';
import { ROOT } from './helpers.js';

const DIR = path.join(ROOT, 'fixtures', 'objectives', 'npy');
const file = (n: string) => path.join(DIR, n);

const CASES: { name: string; expected: NpyArray }[] = [
  { name: 'f32_2x3.npy', expected: { dtype: 'float32', shape: [2, 3], data: Float32Array.of(0.5, -1.25, 3.0, 1e-3, 2.5e6, -0) } },
  { name: 'f64_4.npy', expected: { dtype: 'float64', shape: [4], data: Float64Array.of(1, -2, Math.PI, 1e-300) } },
  { name: 'i64_3.npy', expected: { dtype: 'int64', shape: [3], data: BigInt64Array.of(0n, 7n, -9007199254740991n) } },
  { name: 'i32_2x2.npy', expected: { dtype: 'int32', shape: [2, 2], data: Int32Array.of(1, -2, 3, 2147483647) } },
  { name: 'bool_2x2.npy', expected: { dtype: 'bool', shape: [2, 2], data: Uint8Array.of(1, 0, 0, 1) } },
  { name: 'scalar_f32.npy', expected: { dtype: 'float32', shape: [], data: Float32Array.of(4.5) } },
];

test('npy: numpy-written files of every supported dtype read back exactly, and encode to numpy\'s bytes', () => {
  for (const c of CASES) {
    const a = readNpyFile(file(c.name));
    assert.equal(a.dtype, c.expected.dtype, c.name);
    assert.deepEqual(a.shape, c.expected.shape, c.name);
    assert.deepEqual(Array.from(a.data as ArrayLike<unknown>), Array.from(c.expected.data as ArrayLike<unknown>), c.name);
    assert.ok(Object.is((readNpyFile(file('f32_2x3.npy')).data as Float32Array)[5], -0), 'negative zero kept');
    assert.deepEqual(Buffer.from(encodeNpy(c.expected)), fs.readFileSync(file(c.name)), `${c.name}: same bytes as numpy.save`);
  }
});

test('npy: a version 2.0 header (uint32 length) parses; round trip of a wide header switches to v2', () => {
  const a = readNpyFile(file('v2_f32_3.npy'));
  assert.equal(fs.readFileSync(file('v2_f32_3.npy'))[6], 2);
  assert.deepEqual(Array.from(a.data as Float32Array), [1, 2, 3]);
  const wide: NpyArray = { dtype: 'float32', shape: Array.from({ length: 25000 }, () => 1), data: Float32Array.of(7) };
  const bytes = encodeNpy(wide);
  assert.equal(bytes[6], 2, 'a header over 65535 bytes needs version 2');
  assert.equal((bytes.length - 4) % 64, 0, 'data starts on a 64-byte boundary');
  const back = parseNpy(bytes, 'wide');
  assert.equal(back.shape.length, 25000);
  assert.equal((back.data as Float32Array)[0], 7);
});

test('npy: big-endian, Fortran order, bad magic and truncated data are one-line errors that say what to do', () => {
  assert.throws(() => readNpyFile(file('big_endian_f4.npy')), /big_endian_f4\.npy: element type '>f4' is not supported .*big-endian data: convert with a\.astype/);
  assert.throws(() => readNpyFile(file('fortran_2x2.npy')), /Fortran-ordered array; save numpy\.ascontiguousarray\(a\) instead/);
  assert.throws(() => parseNpy(Buffer.from('not a numpy file'), 'x.npy'), /x\.npy: not a \.npy file/);
  const whole = fs.readFileSync(file('f64_4.npy'));
  assert.throws(() => parseNpy(whole.subarray(0, whole.length - 8), 't.npy'), /t\.npy: 24 data bytes, fewer than shape \(4\) of float64 needs \(32\); the file is truncated/);
  assert.throws(() => readNpyFile(file('missing.npy')), (e: Error & { exitCode?: number }) => /cannot read it \(ENOENT\)/.test(e.message) && e.exitCode === 5);
});
