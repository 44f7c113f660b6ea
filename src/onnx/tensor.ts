/**
 * Tensor views. Every reader returns a fresh, aligned copy (decoded byte fields are unaligned views into
 * the file buffer; never reinterpret them in place). Data may live in raw_data, the typed repeated fields,
 * or an external file (resolved against the model's folder).
 */
import { create } from '@bufbuild/protobuf';
import { TensorProtoSchema, type TensorProto } from 'onnx-buf';
import { UserInputError } from '../errors.js';
import { bf16BitsToFloat, bitsPerElement, DataType, dataTypeName, decodeHalfInto, floatToBf16Bits, floatToHalfBits } from './dtype.js';
import * as fs from 'node:fs';
import { clearExternal, isExternal, openExternal, readExternalBytes, readExternalInto } from './external.js';

export function dimsOf(t: TensorProto): number[] {
  return t.dims.map(Number);
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Bytes the tensor's data occupies once encoded as raw little-endian data. */
export function tensorDataBytes(t: TensorProto): number {
  return Math.ceil((elementCount(dimsOf(t)) * bitsPerElement(t.dataType)) / 8);
}

/**
 * The tensor's data as little-endian raw bytes (a fresh, 8-byte-aligned copy), whatever the storage form.
 * `baseDir` resolves external data.
 */
export function tensorRawBytes(t: TensorProto, baseDir: string): Uint8Array {
  if (isExternal(t)) return readExternalBytes(t, baseDir);
  if (t.rawData.byteLength > 0 || t.dataType === DataType.STRING) return new Uint8Array(t.rawData);
  const n = elementCount(dimsOf(t));
  const out = new Uint8Array(tensorDataBytes(t));
  const dv = new DataView(out.buffer);
  switch (t.dataType) {
    case DataType.FLOAT: t.floatData.forEach((v, i) => dv.setFloat32(i * 4, v, true)); break;
    case DataType.DOUBLE: t.doubleData.forEach((v, i) => dv.setFloat64(i * 8, v, true)); break;
    case DataType.INT64: t.int64Data.forEach((v, i) => dv.setBigInt64(i * 8, v, true)); break;
    case DataType.UINT64: t.uint64Data.forEach((v, i) => dv.setBigUint64(i * 8, v, true)); break;
    case DataType.UINT32: t.uint64Data.forEach((v, i) => dv.setUint32(i * 4, Number(v), true)); break;
    case DataType.INT32: t.int32Data.forEach((v, i) => dv.setInt32(i * 4, v, true)); break;
    case DataType.INT16: case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16:
      t.int32Data.forEach((v, i) => dv.setUint16(i * 2, v & 0xffff, true)); break;
    case DataType.INT8: case DataType.UINT8: case DataType.BOOL:
    case DataType.FLOAT8E4M3FN: case DataType.FLOAT8E4M3FNUZ: case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ: case DataType.FLOAT8E8M0:
      t.int32Data.forEach((v, i) => { out[i] = v & 0xff; }); break;
    case DataType.INT4: case DataType.UINT4: case DataType.FLOAT4E2M1:
      // int32_data holds one packed pair per element (spec: two 4-bit values per int32 entry).
      t.int32Data.forEach((v, i) => { out[i] = v & 0xff; }); break;
    default:
      if (n > 0) throw new UserInputError(`tensor '${t.name}': data type ${dataTypeName(t.dataType)} in typed fields is not supported`);
  }
  return out;
}

/** Values as float32 (decoding float16/bfloat16/double/ints). */
export function tensorToFloat32(t: TensorProto, baseDir: string): Float32Array {
  const raw = tensorRawBytes(t, baseDir);
  const n = elementCount(dimsOf(t));
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(n);
  const need = tensorDataBytes(t);
  if (raw.byteLength < need) {
    throw new UserInputError(`tensor '${t.name}': holds ${raw.byteLength} bytes but its shape needs ${need}; the file is damaged`);
  }
  switch (t.dataType) {
    case DataType.FLOAT: for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true); break;
    case DataType.DOUBLE: for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true); break;
    case DataType.FLOAT16: decodeHalfInto(raw, out, n); break;
    case DataType.BFLOAT16: for (let i = 0; i < n; i++) out[i] = bf16BitsToFloat(dv.getUint16(i * 2, true)); break;
    case DataType.INT8: for (let i = 0; i < n; i++) out[i] = dv.getInt8(i); break;
    case DataType.UINT8: case DataType.BOOL: for (let i = 0; i < n; i++) out[i] = dv.getUint8(i); break;
    case DataType.INT16: for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true); break;
    case DataType.UINT16: for (let i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, true); break;
    case DataType.INT32: for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true); break;
    case DataType.UINT32: for (let i = 0; i < n; i++) out[i] = dv.getUint32(i * 4, true); break;
    case DataType.INT64: for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(i * 8, true)); break;
    case DataType.UINT64: for (let i = 0; i < n; i++) out[i] = Number(dv.getBigUint64(i * 8, true)); break;
    default:
      throw new UserInputError(`tensor '${t.name}': cannot read ${dataTypeName(t.dataType)} values as numbers`);
  }
  return out;
}

const FLOAT_WIDTH: Record<number, number> = { [DataType.FLOAT]: 4, [DataType.FLOAT16]: 2, [DataType.BFLOAT16]: 2, [DataType.DOUBLE]: 8 };

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes `n` little-endian values of a float type at `dv` into `out` (tensorToFloat32's conversions). */
function decodeFloatsInto(dv: DataView, dataType: number, out: Float32Array, n: number): void {
  if (dataType === DataType.FLOAT && LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset, n * 4).set(new Uint8Array(dv.buffer, dv.byteOffset, n * 4));
    return;
  }
  if (dataType === DataType.FLOAT16) {
    decodeHalfInto(new Uint8Array(dv.buffer, dv.byteOffset, n * 2), out, n);
    return;
  }
  switch (dataType) {
    case DataType.FLOAT: for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true); break;
    case DataType.DOUBLE: for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true); break;
    case DataType.BFLOAT16: for (let i = 0; i < n; i++) out[i] = bf16BitsToFloat(dv.getUint16(i * 2, true)); break;
  }
}

/**
 * Calls `fn` with the tensor's values as float32, `chunk` entries at a time (the last one shorter), reading
 * external data piece by piece: a tensor of any size costs one chunk of memory. The array passed is reused.
 * Raw float types only; other storage forms (typed fields, integer types) come as one tensorToFloat32 chunk.
 */
export function forEachFloat32Chunk(t: TensorProto, baseDir: string, fn: (values: Float32Array, start: number) => void, chunk = 1 << 20): void {
  const width = FLOAT_WIDTH[t.dataType];
  const n = elementCount(dimsOf(t));
  const raw = !isExternal(t) && t.rawData.byteLength >= n * (width ?? Infinity);
  if (width === undefined || (!isExternal(t) && !raw)) {
    fn(tensorToFloat32(t, baseDir), 0);
    return;
  }
  const out = new Float32Array(Math.min(chunk, n));
  const file = isExternal(t) ? openExternal(t, baseDir) : undefined;
  try {
    const direct = t.dataType === DataType.FLOAT && LITTLE_ENDIAN;
    const scratch = file && !direct ? new Uint8Array(Math.min(chunk, n) * width) : undefined;
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      let bytes: Uint8Array | undefined;
      if (file && direct) {
        // Little-endian float32 from a file: read straight into the values, nothing to decode.
        readExternalInto(t, file, new Uint8Array(out.buffer, out.byteOffset, count * 4), start * width);
      } else if (file) {
        bytes = scratch!.subarray(0, count * width);
        readExternalInto(t, file, bytes, start * width);
      } else {
        bytes = t.rawData.subarray(start * width, (start + count) * width);
      }
      if (bytes) decodeFloatsInto(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), t.dataType, out, count);
      fn(count === out.length ? out : out.subarray(0, count), start);
    }
  } finally {
    if (file) fs.closeSync(file.fd);
  }
}

/** The values at `indices` (float types only, any storage), without reading the rest of the tensor. */
export function float32At(t: TensorProto, baseDir: string, indices: readonly number[]): Float32Array | undefined {
  const width = FLOAT_WIDTH[t.dataType];
  if (width === undefined) return undefined;
  const n = elementCount(dimsOf(t));
  const out = new Float32Array(indices.length);
  if (!isExternal(t)) {
    if (t.rawData.byteLength < n * width) return undefined;
    const dv = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    indices.forEach((k, i) => decodeFloatsInto(new DataView(dv.buffer, dv.byteOffset + k * width, width), t.dataType, out.subarray(i, i + 1), 1));
    return out;
  }
  const file = openExternal(t, baseDir);
  try {
    const bytes = new Uint8Array(width);
    indices.forEach((k, i) => {
      readExternalInto(t, file, bytes, k * width);
      decodeFloatsInto(new DataView(bytes.buffer), t.dataType, out.subarray(i, i + 1), 1);
    });
    return out;
  } finally {
    fs.closeSync(file.fd);
  }
}

/** Integer values (shape constants, indices) as JS numbers. */
export function tensorToNumbers(t: TensorProto, baseDir: string): number[] {
  return Array.from(tensorToFloat32AsF64(t, baseDir));
}

function tensorToFloat32AsF64(t: TensorProto, baseDir: string): Float64Array {
  if (t.dataType === DataType.INT64 || t.dataType === DataType.DOUBLE) {
    const raw = tensorRawBytes(t, baseDir);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const n = elementCount(dimsOf(t));
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = t.dataType === DataType.INT64 ? Number(dv.getBigInt64(i * 8, true)) : dv.getFloat64(i * 8, true);
    return out;
  }
  return Float64Array.from(tensorToFloat32(t, baseDir));
}

/** Encodes float values as raw data of `dataType` (float, float16, bfloat16 or double). */
export function encodeFloats(values: Float32Array, dataType: number): Uint8Array {
  const n = values.length;
  switch (dataType) {
    case DataType.FLOAT:
      return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + n * 4));
    case DataType.DOUBLE: {
      const out = new Float64Array(n);
      out.set(values);
      return new Uint8Array(out.buffer);
    }
    case DataType.FLOAT16: case DataType.BFLOAT16: {
      const out = new Uint16Array(n);
      const conv = dataType === DataType.FLOAT16 ? floatToHalfBits : floatToBf16Bits;
      for (let i = 0; i < n; i++) out[i] = conv(values[i]!);
      return new Uint8Array(out.buffer);
    }
    default:
      throw new UserInputError(`cannot write float values as ${dataTypeName(dataType)}`);
  }
}

/** A new float tensor (raw data). */
export function makeFloatTensor(name: string, dims: readonly number[], values: Float32Array, dataType: number = DataType.FLOAT): TensorProto {
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType, rawData: encodeFloats(values, dataType) as Uint8Array<ArrayBuffer> });
}

export function makeScalarFloat(name: string, value: number, dataType: number = DataType.FLOAT): TensorProto {
  return makeFloatTensor(name, [], Float32Array.of(value), dataType);
}

/** A new uint8 or bool tensor. */
export function makeByteTensor(name: string, dims: readonly number[], values: Uint8Array, dataType: number = DataType.UINT8): TensorProto {
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType, rawData: values as Uint8Array<ArrayBuffer> });
}

export function makeInt64Tensor(name: string, dims: readonly number[], values: readonly number[]): TensorProto {
  const out = new BigInt64Array(values.map(BigInt));
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: DataType.INT64, rawData: new Uint8Array(out.buffer) });
}

/**
 * Replaces a tensor's values in place with `values` in its own data type, stored as raw data
 * (typed fields and external references are cleared; unknown fields and metadata are kept).
 */
export function setTensorFloats(t: TensorProto, values: Float32Array): void {
  t.rawData = encodeFloats(values, t.dataType) as Uint8Array<ArrayBuffer>;
  t.floatData = [];
  t.doubleData = [];
  t.int32Data = [];
  t.int64Data = [];
  t.uint64Data = [];
  clearExternal(t);
}
