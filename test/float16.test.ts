/**
 * float32 → float16 conversion (src/onnx/dtype.ts `float32BitsToHalf`, with its branch-free rounding of normal
 * halves) against a reference written case by case, on every float16 neighbourhood: each of the 65,536 upper
 * halves of a float32 bit pattern with the low bits that decide rounding (ties to even, just below and above a
 * tie, carries into the exponent and to infinity), and every float16 value round-tripped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { float32BitsToHalf, floatToHalfBits, halfBitsToFloat } from '../src/onnx/dtype.js';

/** IEEE 754 binary32 → binary16, round to nearest even, one case at a time. */
function referenceHalf(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

test('float32BitsToHalf equals the case-by-case reference around every float16 value', () => {
  const lows = [0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x5a5a, 0xe000, 0xefff, 0xf000, 0xf001, 0xffff];
  let checked = 0;
  for (let high = 0; high < 65536; high++) {
    for (const low of lows) {
      const b = ((high << 16) | low) >>> 0;
      const got = float32BitsToHalf(b);
      const want = referenceHalf(b);
      if (got !== want) assert.fail(`bits 0x${b.toString(16)}: 0x${got.toString(16)}, want 0x${want.toString(16)}`);
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
