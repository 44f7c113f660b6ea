/**
 * Test-side bridge between ONNX TensorProto (test_data_set_N/*.pb, initializers) and onnxruntime-node
 * tensors, plus a dtype-aware comparison. Unsupported element types throw `FeedSkip` with a reason that
 * the caller counts.
 */
import * as ort from 'onnxruntime-node';
import type { TensorProto, TypeProto } from 'onnx-buf';
import { DataType, dataTypeName, halfBitsToFloat as halfToFloat } from '../src/onnx/dtype.js';
import { dimsOf, elementCount, tensorRawBytes } from '../src/onnx/tensor.js';

/** A case the node binding cannot feed or compare; `reason` is grouped and counted by callers. */
export class FeedSkip extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

type OrtType = ort.Tensor.Type;
const ORT_TYPE: Partial<Record<number, OrtType>> = {
  [DataType.FLOAT]: 'float32', [DataType.DOUBLE]: 'float64', [DataType.FLOAT16]: 'float16',
  [DataType.INT8]: 'int8', [DataType.UINT8]: 'uint8', [DataType.INT16]: 'int16', [DataType.UINT16]: 'uint16',
  [DataType.INT32]: 'int32', [DataType.UINT32]: 'uint32', [DataType.INT64]: 'int64', [DataType.UINT64]: 'uint64',
  [DataType.BOOL]: 'bool', [DataType.STRING]: 'string', [DataType.INT4]: 'int4', [DataType.UINT4]: 'uint4',
};

export function ortTypeOf(dataType: number): OrtType {
  const t = ORT_TYPE[dataType];
  if (!t) throw new FeedSkip(`element type ${dataTypeName(dataType)} has no onnxruntime-node tensor type`);
  return t;
}

/** The kind of a graph input/output type: only dense tensors can be fed through the node binding. */
export function valueKind(t: TypeProto | undefined): 'tensor' | 'sequence' | 'optional' | 'map' | 'sparse' | 'unknown' {
  switch (t?.value.case) {
    case 'tensorType': return 'tensor';
    case 'sequenceType': return 'sequence';
    case 'optionalType': return 'optional';
    case 'mapType': return 'map';
    case 'sparseTensorType': return 'sparse';
    default: return 'unknown';
  }
}

/** An ORT tensor holding a copy of `t`'s values (any storage form; `baseDir` resolves external data). */
export function tensorProtoToOrt(t: TensorProto, baseDir = '.'): ort.Tensor {
  const type = ortTypeOf(t.dataType);
  const dims = dimsOf(t);
  const n = elementCount(dims);
  if (type === 'string') {
    const dec = new TextDecoder();
    return new ort.Tensor('string', t.stringData.map((b) => dec.decode(b)), dims);
  }
  const raw = tensorRawBytes(t, baseDir);
  const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  switch (type) {
    case 'float32': return new ort.Tensor(type, new Float32Array(buf, 0, n), dims);
    case 'float64': return new ort.Tensor(type, new Float64Array(buf, 0, n), dims);
    case 'float16': case 'uint16': return new ort.Tensor(type, new Uint16Array(buf, 0, n), dims);
    case 'int16': return new ort.Tensor(type, new Int16Array(buf, 0, n), dims);
    case 'int8': return new ort.Tensor(type, new Int8Array(buf, 0, n), dims);
    case 'uint8': case 'bool': return new ort.Tensor(type, new Uint8Array(buf, 0, n), dims);
    case 'int32': return new ort.Tensor(type, new Int32Array(buf, 0, n), dims);
    case 'uint32': return new ort.Tensor(type, new Uint32Array(buf, 0, n), dims);
    case 'int64': return new ort.Tensor(type, new BigInt64Array(buf, 0, n), dims);
    case 'uint64': return new ort.Tensor(type, new BigUint64Array(buf, 0, n), dims);
    case 'int4': return new ort.Tensor(type, new Uint8Array(buf, 0, Math.ceil(n / 2)) as unknown as Int8Array, dims);
    case 'uint4': return new ort.Tensor(type, new Uint8Array(buf, 0, Math.ceil(n / 2)), dims);
    default: throw new FeedSkip(`element type ${type} not handled`);
  }
}

/** Tolerances by element type: exact for integers/bool/strings, relative for floats (ONNX backend uses rtol 1e-3). */
export function toleranceFor(type: string): { rtol: number; atol: number } {
  if (type === 'float16') return { rtol: 1e-2, atol: 1e-3 };
  if (type === 'float32' || type === 'float64') return { rtol: 1e-3, atol: 1e-5 };
  return { rtol: 0, atol: 0 };
}

function asNumbers(t: ort.Tensor): ArrayLike<number | bigint | string> {
  if (t.type === 'float16') {
    const u = t.data as Uint16Array;
    return Array.from(u, halfToFloat);
  }
  return t.data as ArrayLike<number | bigint | string>;
}


function maxAbs(values: ArrayLike<number | bigint | string>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'number' && Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  }
  return m;
}

/** undefined when `actual` matches `expected` within the type's tolerance, else a one-line description. */
export function compareOrt(actual: ort.Tensor, expected: ort.Tensor, tol = toleranceFor(expected.type)): string | undefined {
  if (actual.type !== expected.type) return `type ${actual.type} != ${expected.type}`;
  if (actual.dims.join(',') !== expected.dims.join(',')) return `shape [${actual.dims}] != [${expected.dims}]`;
  const a = asNumbers(actual);
  const e = asNumbers(expected);
  if (a.length !== e.length) return `length ${a.length} != ${e.length}`;
  // Absolute tolerance scales with the output's magnitude (sums such as DFT carry error ∝ max|x|).
  const atol = tol.atol * Math.max(1, maxAbs(e));
  for (let i = 0; i < e.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    if (typeof y === 'number' && typeof x === 'number') {
      if (Number.isNaN(y) && Number.isNaN(x)) continue;
      if (x === y) continue;
      if (!(Math.abs(x - y) <= atol + tol.rtol * Math.abs(y))) return `element ${i}: ${x} vs ${y}`;
    } else if (x !== y) {
      return `element ${i}: ${String(x)} vs ${String(y)}`;
    }
  }
  return undefined;
}
