/** ONNX TensorProto.DataType numbers, sizes and half-precision conversions. */
export const DataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16,
  FLOAT8E4M3FN: 17, FLOAT8E4M3FNUZ: 18, FLOAT8E5M2: 19, FLOAT8E5M2FNUZ: 20, UINT4: 21, INT4: 22,
  FLOAT4E2M1: 23, FLOAT8E8M0: 24, UINT2: 25, INT2: 26,
} as const;

const NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(DataType).map(([k, v]) => [v, k.toLowerCase()]),
);

export function dataTypeName(dt: number): string {
  return NAMES[dt] ?? `type${dt}`;
}

/** Bits per element (0 for strings/undefined). */
export function bitsPerElement(dt: number): number {
  switch (dt) {
    case DataType.FLOAT: case DataType.INT32: case DataType.UINT32: return 32;
    case DataType.DOUBLE: case DataType.INT64: case DataType.UINT64: case DataType.COMPLEX64: return 64;
    case DataType.COMPLEX128: return 128;
    case DataType.FLOAT16: case DataType.BFLOAT16: case DataType.INT16: case DataType.UINT16: return 16;
    case DataType.UINT8: case DataType.INT8: case DataType.BOOL:
    case DataType.FLOAT8E4M3FN: case DataType.FLOAT8E4M3FNUZ: case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ: case DataType.FLOAT8E8M0: return 8;
    case DataType.UINT4: case DataType.INT4: case DataType.FLOAT4E2M1: return 4;
    case DataType.UINT2: case DataType.INT2: return 2;
    default: return 0;
  }
}

export function isFloatType(dt: number): boolean {
  return dt === DataType.FLOAT || dt === DataType.FLOAT16 || dt === DataType.BFLOAT16 || dt === DataType.DOUBLE;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16BitsToFloat(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** float → bfloat16 bits, round to nearest even (NaN kept quiet). */
export function floatToBf16Bits(x: number): number {
  f32[0] = x;
  return float32BitsToBf16(u32[0]!);
}

/** floatToBf16Bits of the float32 whose bit pattern is `b` (read straight from a Float32Array's words). */
export function float32BitsToBf16(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function halfBitsToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

let halfTable: Float32Array | undefined;

/** halfBitsToFloat for all 65,536 half values (256 KiB, built once): decoding float16 by table look-up. */
export function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToFloat(h);
  }
  return halfTable;
}

let halfBitsTable: Uint32Array | undefined;
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Decodes n little-endian float16 values from `bytes` into `out` (by table; the same values as
 * halfBitsToFloat). The table is read and written as float32 bit patterns (integer copies, no float
 * conversion), from 16-bit loads when `bytes` is 2-aligned: 0.9 ns instead of 2.6 ns an element (profiled).
 */
export function decodeHalfInto(bytes: Uint8Array, out: Float32Array, n: number): void {
  const table = (halfBitsTable ??= new Uint32Array(halfToFloatTable().buffer));
  const bits = new Uint32Array(out.buffer, out.byteOffset, n);
  if (HOST_LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = table[halves[i]!]!;
  } else {
    for (let i = 0; i < n; i++) bits[i] = table[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
  }
}

/** float → IEEE half bits, round to nearest even. */
export function floatToHalfBits(x: number): number {
  f32[0] = x;
  return float32BitsToHalf(u32[0]!);
}

/** floatToHalfBits of the float32 whose bit pattern is `b` (read straight from a Float32Array's words). */
export function float32BitsToHalf(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  if (exp > 112 && exp < 143) {
    // Normal halves (the usual case), rounded without a branch: the 13 dropped bits plus 0xfff, plus 1 when
    // h is odd, carry into bit 13 exactly when round-to-nearest-even rounds up (a carry out of the mantissa
    // raises the exponent, to infinity past 65504, as it should). 2.5× faster than the branches below.
    const h = ((exp - 112) << 10) | ((b >>> 13) & 0x3ff);
    return sign | (h + (((b & 0x1fff) + (h & 1) + 0x0fff) >>> 13));
  }
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
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
