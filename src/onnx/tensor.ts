/**
 * Tensor views. Every reader returns a fresh, aligned copy (decoded byte fields are unaligned views into
 * the file buffer; never reinterpret them in place). Data may live in raw_data, the typed repeated fields,
 * or an external file (resolved against the model's folder).
 */
import { create } from '@bufbuild/protobuf';
import { TensorProtoSchema, type TensorProto } from 'onnx-buf';
import { UserInputError } from '../errors.js';
import { bf16BitsToFloat, bitsPerElement, DataType, dataTypeName, floatToBf16Bits, floatToHalfBits, halfBitsToFloat } from './dtype.js';
import { clearExternal, isExternal, readExternalBytes } from './external.js';

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
    case DataType.FLOAT16: for (let i = 0; i < n; i++) out[i] = halfBitsToFloat(dv.getUint16(i * 2, true)); break;
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
