/**
 * NumPy `.npy` files (format spec: numpy.lib.format, versions 1.0–3.0): inputs and labels for `train`.
 *
 *   bytes 0–5  "\x93NUMPY";  6  major version;  7  minor version
 *   v1: uint16 LE header length;  v2/v3: uint32 LE header length (v3: the header is UTF-8)
 *   header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, padded with
 *   spaces and ended by '\n' so that the data starts on a 64-byte boundary (16 in old files); then the data.
 *
 * Supported element types: little-endian float32, float64, int64, int32 and bool (`|b1`). Fortran order
 * and big-endian data are refused with a line saying how to convert.
 */
import * as fs from 'node:fs';
import { ExitCode, UserInputError } from '../errors.js';

export type NpyDtype = 'float32' | 'float64' | 'int64' | 'int32' | 'bool';

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const DESCR: Record<string, NpyDtype> = { '<f4': 'float32', '<f8': 'float64', '<i8': 'int64', '<i4': 'int32', '|b1': 'bool' };
const DESCR_OF: Record<NpyDtype, string> = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', bool: '|b1' };
const ITEM_BYTES: Record<NpyDtype, number> = { float32: 4, float64: 8, int64: 8, int32: 4, bool: 1 };

export function readNpyFile(file: string): NpyArray {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new UserInputError(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, ExitCode.io);
  }
  return parseNpy(buf, file);
}

export function parseNpy(buf: Uint8Array, label: string): NpyArray {
  if (buf.length < 10 || !MAGIC.every((b, i) => buf[i] === b)) throw new UserInputError(`${label}: not a .npy file (no \\x93NUMPY magic); save it with numpy.save`);
  const major = buf[6]!;
  if (major < 1 || major > 3) throw new UserInputError(`${label}: .npy format version ${major}.${buf[7]} is not supported (1.0–3.0); save it with numpy.save`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) throw new UserInputError(`${label}: truncated .npy header`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(start, start + headerLen));
  const { descr, fortran, shape } = parseHeader(header, label);
  const dtype = DESCR[descr] ?? (descr === '<b1' || descr === '=b1' || descr === 'b1' ? 'bool' : undefined);
  if (!dtype) {
    const hint = descr.startsWith('>') ? 'big-endian data: convert with a.astype(a.dtype.newbyteorder("<"))' : 'convert with a.astype(numpy.float32) (inputs, regression targets) or numpy.int64 (labels, token ids)';
    throw new UserInputError(`${label}: element type '${descr}' is not supported (float32, float64, int64, int32, bool); ${hint}`);
  }
  if (fortran) throw new UserInputError(`${label}: Fortran-ordered array; save numpy.ascontiguousarray(a) instead`);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const bytes = count * ITEM_BYTES[dtype];
  if (buf.length - offset < bytes) throw new UserInputError(`${label}: ${buf.length - offset} data bytes, fewer than shape (${shape.join(', ')}) of ${dtype} needs (${bytes}); the file is truncated`);
  // Copy: decoded buffers are unaligned views (DESIGN.md, measured facts).
  const raw = new Uint8Array(buf.subarray(offset, offset + bytes));
  return { dtype, shape, data: typedArray(dtype, raw.buffer) };
}

function typedArray(dtype: NpyDtype, b: ArrayBuffer): NpyArray['data'] {
  switch (dtype) {
    case 'float32': return new Float32Array(b);
    case 'float64': return new Float64Array(b);
    case 'int64': return new BigInt64Array(b);
    case 'int32': return new Int32Array(b);
    case 'bool': return new Uint8Array(b);
  }
}

function parseHeader(header: string, label: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new UserInputError(`${label}: unreadable .npy header ${JSON.stringify(header.trim())}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new UserInputError(`${label}: bad shape (${shapeText}) in the .npy header`);
  return { descr, fortran: fortran === 'True', shape };
}

/** The bytes of a version-1.0 .npy file (version 2.0 when the header does not fit 65535 bytes); data 64-byte aligned. */
export function encodeNpy(a: NpyArray): Uint8Array {
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  const dict = `{'descr': '${DESCR_OF[a.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  let prefix = 10;
  let padded = pad(dict, prefix);
  if (padded.length > 0xffff) { prefix = 12; padded = pad(dict, prefix); }
  const data = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const out = new Uint8Array(prefix + padded.length + data.length);
  out.set(MAGIC, 0);
  out[6] = prefix === 10 ? 1 : 2;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (prefix === 10) dv.setUint16(8, padded.length, true); else dv.setUint32(8, padded.length, true);
  out.set(new TextEncoder().encode(padded), prefix);
  out.set(data, prefix + padded.length);
  return out;
}

function pad(dict: string, prefix: number): string {
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  return dict + ' '.repeat(total - prefix - dict.length - 1) + '\n';
}

export function writeNpyFile(file: string, a: NpyArray): void {
  fs.writeFileSync(file, encodeNpy(a));
}

/** The values as float64 (bigints converted; exact below 2^53). */
export function npyToFloat64(a: NpyArray): Float64Array {
  return a.data instanceof BigInt64Array ? Float64Array.from(a.data, Number) : Float64Array.from(a.data as ArrayLike<number>);
}
