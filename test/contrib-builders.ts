/**
 * One-node models around an onnxruntime contrib op (or any op), and the check that its de-fused graph
 * computes the same: onnxruntime runs the model with the contrib kernel, then the rewritten model, on the
 * same seeded random inputs.
 */
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto } from 'onnx-buf';
import { node, tensorValueInfo, type AttrValue } from '../src/onnx/build.js';
import { encodeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { randomFloats, seededRandom } from './model-builders.js';

export interface InputSpec {
  name: string;
  dims: (number | string)[];
  /** Feed value dims (symbolic dims resolved); defaults to `dims`. */
  feedDims?: number[];
  type?: 'float32' | 'int32' | 'int64';
  /** Integer values for int inputs (masks, lengths). */
  values?: number[];
}

export interface OneNodeSpec {
  op: string;
  domain?: string;
  attrs?: Record<string, AttrValue>;
  inputs: (InputSpec | '')[];
  /** Output names; '' leaves an optional output out. Shapes are not declared (ORT infers). */
  outputs: string[];
  /** Element types of outputs that are not float32. */
  outTypes?: Record<string, number>;
  opset?: number;
}

const TYPE_CODE = { float32: DataType.FLOAT, int32: DataType.INT32, int64: DataType.INT64 } as const;

export function oneNodeModel(s: OneNodeSpec): ModelProto {
  const inputs = s.inputs.filter((i): i is InputSpec => i !== '');
  const graph = create(GraphProtoSchema, {
    name: s.op,
    node: [node(s.op, s.inputs.map((i) => (i === '' ? '' : i.name)), s.outputs, s.attrs ?? {}, `${s.op}_0`, s.domain ?? 'com.microsoft')],
    input: inputs.map((i) => tensorValueInfo(i.name, TYPE_CODE[i.type ?? 'float32'], i.dims)),
    output: s.outputs.filter((o) => o).map((o) => tensorValueInfo(o, s.outTypes?.[o] ?? DataType.FLOAT)),
  });
  return create(ModelProtoSchema, {
    irVersion: 8n, producerName: 'supar-transform-tests',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(s.opset ?? 17) }), create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n })],
    graph,
  });
}

export function randomFeeds(s: OneNodeSpec, seed: number): Record<string, ort.Tensor> {
  const rand = seededRandom(seed);
  const feeds: Record<string, ort.Tensor> = {};
  for (const i of s.inputs) {
    if (i === '') continue;
    const dims = i.feedDims ?? (i.dims as number[]);
    const n = dims.reduce((a, b) => a * b, 1);
    const type = i.type ?? 'float32';
    if (type === 'float32') feeds[i.name] = new ort.Tensor('float32', randomFloats(n, rand, 2), dims);
    else if (type === 'int32') feeds[i.name] = new ort.Tensor('int32', Int32Array.from(i.values!), dims);
    else feeds[i.name] = new ort.Tensor('int64', BigInt64Array.from(i.values!.map(BigInt)), dims);
  }
  return feeds;
}

export async function runModel(model: ModelProto, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array | Int32Array>> {
  const session = await ort.InferenceSession.create(encodeModel(model));
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array | Int32Array]));
  } finally {
    await session.release();
  }
}

/** Max |a − b| / (1 + |a|) over all outputs; asserts equal lengths. */
export function maxRelDiff(a: Record<string, Float32Array | Int32Array>, b: Record<string, Float32Array | Int32Array>): number {
  let worst = 0;
  for (const [k, va] of Object.entries(a)) {
    const vb = b[k];
    assert.ok(vb, `output ${k} missing after de-fusing`);
    assert.equal(vb.length, va.length, `output ${k} length`);
    for (let i = 0; i < va.length; i++) worst = Math.max(worst, Math.abs(va[i]! - vb[i]!) / (1 + Math.abs(va[i]!)));
  }
  return worst;
}
