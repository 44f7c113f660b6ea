/**
 * Tensors whose values sit in a typed field (float_data, int32_data, int64_data, double_data, uint64_data,
 * string_data — older converters write these instead of raw_data) keep that field through the codec, the
 * transform's copy and the writer, and gain no raw_data: onnxruntime reads an empty raw_data as the values
 * and rejects the model ("does not have sufficient raw_data"). Model built here with the project's builders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { create, isFieldSet } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, TensorProtoSchema, type ModelProto, type TensorProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { decodeModel, encodeModel, readModel, writeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { cloneSharingData, transform, writeTransformOutputs } from '../src/transform.js';

const RAW = TensorProtoSchema.field.rawData!;
const D = 16, H = 32;

/** x [b, D] → Reshape(int64_data shape) → MatMul(W1 in float_data) → Add(b1 float_data) → Relu → MatMul(W2) → y; plus unused typed tensors of every other kind. */
function typedModel(): ModelProto {
  const floats = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(i * k) * 0.2);
  const t = (name: string, dims: number[], dataType: number, fields: Partial<Omit<TensorProto, '$typeName'>>) => create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType, ...fields } as Parameters<typeof create<typeof TensorProtoSchema>>[1]);
  const graph = create(GraphProtoSchema, {
    name: 'typed',
    node: [
      node('Reshape', ['x', 'shape'], ['xr'], {}, 'reshape'),
      node('MatMul', ['xr', 'W1'], ['h'], {}, 'mm1'),
      node('Add', ['h', 'b1'], ['hb'], {}, 'add'),
      node('Relu', ['hb'], ['r'], {}, 'relu'),
      node('MatMul', ['r', 'W2'], ['y0'], {}, 'mm2'),
      node('Cast', ['d'], ['dc'], { to: DataType.FLOAT }, 'cast_d'),
      node('Add', ['y0', 'dc'], ['y'], {}, 'add_d'),
      node('Constant', [], ['c64'], { value: t('c64v', [2], DataType.INT64, { int64Data: [-1n, BigInt(D)] }) }, 'const64'),
      node('Reshape', ['y', 'c64'], ['z'], {}, 'reshape2'),
    ],
    initializer: [
      t('shape', [2], DataType.INT64, { int64Data: [-1n, BigInt(D)] }),
      t('W1', [D, H], DataType.FLOAT, { floatData: floats(D * H, 1) }),
      t('b1', [H], DataType.FLOAT, { floatData: floats(H, 3) }),
      t('W2', [H, D], DataType.FLOAT, { floatData: floats(H * D, 7) }),
      t('d', [D], DataType.DOUBLE, { doubleData: floats(D, 5) }),
      t('i32', [3], DataType.INT32, { int32Data: [1, -2, 3] }),
      t('u64', [2], DataType.UINT64, { uint64Data: [1n, 2n] }),
      t('s', [2], DataType.STRING, { stringData: [new TextEncoder().encode('a'), new TextEncoder().encode('bc')] }),
    ],
    input: [tensorValueInfo('x', DataType.FLOAT, ['batch', D])],
    output: [tensorValueInfo('z', DataType.FLOAT, ['batch', D])],
  });
  return create(ModelProtoSchema, { irVersion: 8n, producerName: 'typed-fields-test', opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })], graph });
}

const TYPED: Record<string, keyof TensorProto> = { shape: 'int64Data', W1: 'floatData', b1: 'floatData', W2: 'floatData', d: 'doubleData', i32: 'int32Data', u64: 'uint64Data', s: 'stringData' };

function assertTypedKept(m: ModelProto, names: string[], label: string): void {
  for (const name of names) {
    const t = m.graph!.initializer.find((x) => x.name === name)!;
    assert.equal(isFieldSet(t, RAW), false, `${label}: '${name}' gained raw_data`);
    const field = t[TYPED[name]!] as unknown[];
    assert.ok(field.length > 0, `${label}: '${name}' lost its ${TYPED[name]}`);
  }
  const c = m.graph!.node.find((n) => n.name === 'const64')!.attribute[0]!.t!;
  assert.equal(isFieldSet(c, RAW), false, `${label}: Constant tensor gained raw_data`);
  assert.deepEqual(c.int64Data, [-1n, BigInt(D)]);
}

const feeds = () => ({ x: new ort.Tensor('float32', Float32Array.from({ length: 2 * D }, (_, i) => Math.cos(i)), [2, D]) });

test('typed-field tensors: codec round trip and the transform copy keep the field and add no raw_data', async () => {
  const model = typedModel();
  const back = decodeModel(encodeModel(model), 'typed');
  assertTypedKept(back, Object.keys(TYPED), 'round trip');
  const copy = cloneSharingData(back);
  assertTypedKept(copy, Object.keys(TYPED), 'clone');
  assertTypedKept(back, Object.keys(TYPED), 'clone source');
  assertTypedKept(decodeModel(encodeModel(copy), 'copy'), Object.keys(TYPED), 'clone written');
  // Values survive too: onnxruntime runs the round-tripped model to the same numbers as the original.
  const a = await (await ort.InferenceSession.create(encodeModel(model))).run(feeds());
  const b = await (await ort.InferenceSession.create(encodeModel(copy))).run(feeds());
  assert.deepEqual(Array.from(b.z!.data as Float32Array), Array.from(a.z!.data as Float32Array));
});

test('typed-field tensors: a set-but-empty raw_data beside a typed field is not written', () => {
  const model = typedModel();
  for (const t of model.graph!.initializer) t.rawData = new Uint8Array(0); // presence set, as a careless copy does
  const back = decodeModel(encodeModel(model), 'typed');
  assertTypedKept(back, Object.keys(TYPED), 'explicit empty raw_data');
});

test('typed-field tensors: transformed at density 0.5, the written model keeps untouched typed fields and loads', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'typed-'));
  const file = path.join(dir, 'typed.onnx');
  writeModel(typedModel(), file);
  const r = await transform(readModel(file), { density: 0.5 });
  const out = path.join(dir, 'typed.supar.onnx');
  await writeTransformOutputs(r, out);
  const written = readModel(out).model;
  assertTypedKept(written, ['shape', 'd', 'i32', 'u64', 's'], 'transform output');
  const run = await (await ort.InferenceSession.create(out)).run(feeds());
  assert.ok(Array.from(run.z!.data as Float32Array).every(Number.isFinite));
  fs.rmSync(dir, { recursive: true, force: true });
});
