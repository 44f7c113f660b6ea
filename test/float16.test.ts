/**
 * float32 → float16 conversion (src/onnx/dtype.ts `float32BitsToHalf`, with its branch-free rounding of normal
 * halves) against a reference that rounds by the definition (nearest half, ties to even), on every float16
 * neighbourhood: each of the 65,536 upper halves of a float32 bit pattern with the low bits that decide rounding (ties to even, just below and above a
 * tie, carries into the exponent and to infinity, subnormals), and every float16 value round-tripped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { float32BitsToHalf, floatToHalfBits, halfBitsToFloat } from '../src/onnx/dtype.js';

const view = new DataView(new ArrayBuffer(4));

/**
 * IEEE 754 binary32 → binary16 by its definition, independent of the bit manipulation under test: the two
 * halves around |x| (a binary search over the ordered finite halves, decoded by halfBitsToFloat), the nearer
 * one, a tie to the even one; beyond the largest half's rounding boundary (65520) infinity; NaN stays NaN.
 */
function referenceHalf(b: number): number {
  view.setUint32(0, b);
  const x = view.getFloat32(0);
  const sign = b >>> 31 ? 0x8000 : 0;
  if (Number.isNaN(x)) return -1; // checked apart: any NaN half
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0, hi = 0x7bff; // halfBitsToFloat(lo) <= a < halfBitsToFloat(hi + 1)
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (halfBitsToFloat(mid) <= a) lo = mid; else hi = mid - 1;
  }
  if (lo === 0x7bff) return sign | lo; // below 65520, the boundary to infinity
  const below = a - halfBitsToFloat(lo), above = halfBitsToFloat(lo + 1) - a;
  const h = below < above ? lo : above < below ? lo + 1 : (lo & 1 ? lo + 1 : lo);
  return sign | h;
}

test('float32BitsToHalf equals rounding by the definition around every float16 value', () => {
  const lows = [0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x5a5a, 0xe000, 0xefff, 0xf000, 0xf001, 0xffff];
  let checked = 0;
  for (let high = 0; high < 65536; high++) {
    for (const low of lows) {
      const b = ((high << 16) | low) >>> 0;
      const got = float32BitsToHalf(b);
      const want = referenceHalf(b);
      if (want === -1 ? (got & 0x7c00) !== 0x7c00 || (got & 0x3ff) === 0 : got !== want) assert.fail(`bits 0x${b.toString(16)}: 0x${got.toString(16)}, want 0x${want.toString(16)}`);
      checked++;
    }
  }
  assert.equal(checked, 65536 * lows.length);
});

test('every float16 value survives float → half → float, and floatToHalfBits rounds doubles through float32', () => {
  for (let h = 0; h < 65536; h++) {
    const x = halfBitsToFloat(h);
    if (Number.isNaN(x)) { assert.equal(floatToHalfBits(x) & 0x7c00, 0x7c00); continue; }
    assert.equal(floatToHalfBits(x), h, `half 0x${h.toString(16)}`);
  }
  assert.equal(floatToHalfBits(65504), 0x7bff);
  assert.equal(floatToHalfBits(65520), 0x7c00); // the tie above the largest half rounds to infinity
  assert.equal(floatToHalfBits(1 + 2 ** -11), 0x3c00); // a tie to even (down)
  assert.equal(floatToHalfBits(1 + 3 * 2 ** -11), 0x3c02); // a tie to even (up)
});
