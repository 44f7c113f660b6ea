/**
 * Opset 6–10 → 13 upgrade rules (src/normalize/opset-rules.ts), each checked by running both versions:
 * a one-node model at the old opset and its upgraded form run in onnxruntime on seeded random inputs and
 * give equal outputs; ONNX backend cases at opsets 9–10 (fixtures/onnx-node-old) reproduce their reference
 * outputs after the upgrade; forms with no opset-13 equivalent are refused with the node and attribute named.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { create, fromBinary } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, TensorProtoSchema, type ModelProto, type TensorProto } from 'onnx-buf';
import { UPGRADE_RULES } from '../src/normalize/opset-rules.js';
import { upgradeToOpset13 } from '../src/normalize/opset-upgrade.js';
import { node, tensorValueInfo, type AttrValue } from '../src/onnx/build.js';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority, opsetVersion } from '../src/onnx/ir.js';
import { makeFloatTensor } from '../src/onnx/tensor.js';
import { randomFloats, seededRandom } from './model-builders.js';
import { compareOrt, tensorProtoToOrt } from './ort-tensors.js';
import { ROOT } from './helpers.js';

interface OldOp {
  op: string;
  opset: number;
  attrs?: Record<string, AttrValue>;
  /** Random float graph inputs. */
  inputs: { name: string; dims: number[] }[];
  /** Constant inputs (after the graph inputs), as initializers. */
  constants?: TensorProto[];
  outputs: string[];
  /** Element types of outputs that are not float32. */
  outTypes?: Record<string, number>;
}

function oldModel(s: OldOp): ModelProto {
  const graph = create(GraphProtoSchema, {
    name: s.op,
    node: [node(s.op, [...s.inputs.map((i) => i.name), ...(s.constants ?? []).map((t) => t.name)], s.outputs, s.attrs ?? {}, `${s.op}_0`)],
    input: s.inputs.map((i) => tensorValueInfo(i.name, DataType.FLOAT, i.dims)),
    output: s.outputs.map((o) => tensorValueInfo(o, s.outTypes?.[o] ?? DataType.FLOAT)),
    initializer: s.constants ?? [],
  });
  return create(ModelProtoSchema, { irVersion: s.opset <= 8 ? 3n : 5n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(s.opset) })], graph });
}

async function run(model: ModelProto, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(encodeModel(model));
  try { return await s.run(feeds); } finally { await s.release(); }
}

/** Runs the old model and the upgraded one on the same random inputs; returns the upgrade's change lines. */
async function checkUpgrade(s: OldOp, seed = 1): Promise<string[]> {
  const model = oldModel(s);
  const up = upgradeToOpset13(model, new NameAuthority(model));
  assert.equal(opsetVersion(up.model), 13);
  const rand = seededRandom(seed);
  const feeds = Object.fromEntries(s.inputs.map((i) => [i.name, new ort.Tensor('float32', randomFloats(i.dims.reduce((a, b) => a * b, 1), rand, 3), i.dims)]));
  const [before, after] = [await run(model, feeds), await run(up.model, feeds)];
  for (const o of s.outputs) {
    const diff = compareOrt(after[o]!, before[o]!, { rtol: 1e-6, atol: 1e-6 });
    assert.equal(diff, undefined, `${s.op}-${s.opset} ${JSON.stringify(s.attrs ?? {})}: output ${o}: ${diff}`);
  }
  assert.equal(Number(model.opsetImport[0]!.version), s.opset, 'input model left as it was');
  return up.changes;
}

const x = (dims: number[]) => ({ name: 'x', dims });

test('Slice-9 (starts/ends/axes attributes → inputs), with and without axes, negative indices', async () => {
  const c = await checkUpgrade({ op: 'Slice', opset: 9, attrs: { starts: [1, 0], ends: [3, -1], axes: [0, 2] }, inputs: [x([3, 4, 5])], outputs: ['y'] });
  assert.match(c[0]!, /^Slice ×1: starts\/ends\/axes attributes → int64 inputs .*opset\/slice-inputs/);
  await checkUpgrade({ op: 'Slice', opset: 7, attrs: { starts: [0, 1, 1], ends: [2, 100, 4] }, inputs: [x([3, 4, 5])], outputs: ['y'] });
});

test('TopK-9 (k attribute → input): values and indices', async () => {
  await checkUpgrade({ op: 'TopK', opset: 9, attrs: { k: 2, axis: 1 }, inputs: [x([3, 5, 2])], outputs: ['v', 'i'], outTypes: { i: DataType.INT64 } });
  await checkUpgrade({ op: 'TopK', opset: 7, attrs: { k: 3 }, inputs: [x([4, 6])], outputs: ['v', 'i'], outTypes: { i: DataType.INT64 } });
});

test('Pad-10 (pads/value attributes → inputs): constant with a value, reflect, edge', async () => {
  await checkUpgrade({ op: 'Pad', opset: 10, attrs: { pads: [0, 1, 2, 0, 2, 1], value: { float: 1.5 } }, inputs: [x([2, 3, 4])], outputs: ['y'] });
  await checkUpgrade({ op: 'Pad', opset: 7, attrs: { pads: [0, 0, 1, 2, 0, 0, 2, 1], mode: 'reflect' }, inputs: [x([1, 2, 4, 5])], outputs: ['y'] });
  await checkUpgrade({ op: 'Pad', opset: 9, attrs: { pads: [1, 1, 1, 1], mode: 'edge' }, inputs: [x([3, 4])], outputs: ['y'] });
});

test('Clip-6/10 (min/max attributes → inputs): both bounds, only max (ReLU6-style), only min, none', async () => {
  await checkUpgrade({ op: 'Clip', opset: 10, attrs: { min: { float: -0.5 }, max: { float: 1.25 } }, inputs: [x([2, 8])], outputs: ['y'] });
  await checkUpgrade({ op: 'Clip', opset: 9, attrs: { max: { float: 0.5 } }, inputs: [x([2, 8])], outputs: ['y'] });
  await checkUpgrade({ op: 'Clip', opset: 6, attrs: { min: { float: 0.25 } }, inputs: [x([2, 8])], outputs: ['y'] });
  await checkUpgrade({ op: 'Clip', opset: 8, inputs: [x([2, 8])], outputs: ['y'] });
});

test('Upsample-7 (scales attribute) / Upsample-9 (scales input) and Resize-10 → Resize-13: nearest and linear', async () => {
  await checkUpgrade({ op: 'Upsample', opset: 7, attrs: { scales: { floats: [1, 1, 2, 3] }, mode: 'nearest' }, inputs: [x([1, 2, 3, 4])], outputs: ['y'] });
  await checkUpgrade({ op: 'Upsample', opset: 8, attrs: { scales: { floats: [1, 1, 2, 2] }, mode: 'linear' }, inputs: [x([1, 2, 3, 4])], outputs: ['y'] });
  const scales = makeFloatTensor('scales', [4], Float32Array.of(1, 1, 3, 2));
  await checkUpgrade({ op: 'Upsample', opset: 9, attrs: { mode: 'linear' }, inputs: [x([2, 1, 3, 4])], constants: [scales], outputs: ['y'] });
  for (const mode of ['nearest', 'linear']) {
    const c = await checkUpgrade({ op: 'Resize', opset: 10, attrs: { mode }, inputs: [x([1, 2, 3, 4])], constants: [makeFloatTensor('s', [4], Float32Array.of(1, 1, 2, 1.5))], outputs: ['y'] });
    assert.match(c[0]!, /opset\/resize10-to-resize13/);
  }
});

test('BatchNormalization-7 (spatial = 1 dropped), Dropout-10 (ratio dropped)', async () => {
  const ch = 3;
  const stats = ['scale', 'bias', 'mean', 'var'].map((n, i) => makeFloatTensor(n, [ch], Float32Array.from({ length: ch }, (_, j) => (n === 'var' ? 0.5 + j : i - j * 0.3))));
  await checkUpgrade({ op: 'BatchNormalization', opset: 7, attrs: { spatial: 1, epsilon: { float: 1e-3 } }, inputs: [x([2, ch, 4])], constants: stats, outputs: ['y'] });
  await checkUpgrade({ op: 'Dropout', opset: 10, attrs: { ratio: { float: 0.3 } }, inputs: [x([4, 5])], outputs: ['y'] });
});

test('Squeeze/Unsqueeze/ReduceSum/Split-10 (attributes → inputs at 13) and Softmax-9 on a non-last axis', async () => {
  await checkUpgrade({ op: 'Unsqueeze', opset: 10, attrs: { axes: [0, 3] }, inputs: [x([2, 3])], outputs: ['y'] });
  await checkUpgrade({ op: 'Squeeze', opset: 9, attrs: { axes: [1] }, inputs: [x([2, 1, 3])], outputs: ['y'] });
  await checkUpgrade({ op: 'ReduceSum', opset: 8, attrs: { axes: [1], keepdims: 0 }, inputs: [x([2, 3, 4])], outputs: ['y'] });
  await checkUpgrade({ op: 'Split', opset: 7, attrs: { axis: 1, split: [1, 3] }, inputs: [x([2, 4])], outputs: ['a', 'b'] });
  const c = await checkUpgrade({ op: 'Softmax', opset: 9, attrs: { axis: 1 }, inputs: [x([2, 3, 4])], outputs: ['y'] });
  assert.match(c[0]!, /^Softmax ×1: coerce-to-2-D/);
});

function backendCase(name: string): { model: ModelProto; feeds: Record<string, ort.Tensor>; expected: ort.Tensor } {
  const dir = path.join(ROOT, 'fixtures', 'onnx-node-old', name);
  const { model } = readModel(path.join(dir, 'model.onnx'));
  const pb = (f: string) => tensorProtoToOrt(fromBinary(TensorProtoSchema, fs.readFileSync(path.join(dir, 'test_data_set_0', f))));
  const feeds = Object.fromEntries(model.graph!.input.map((v, i) => [v.name, pb(`input_${i}.pb`)]));
  return { model, feeds, expected: pb('output_0.pb') };
}

test('ONNX backend cases at opsets 9–10: upgraded Upsample and Scatter reproduce the reference outputs', async () => {
  for (const [name, rule] of [['test_upsample_nearest', 'opset/upsample-to-resize'], ['test_scatter_with_axis', 'opset/scatter-to-scatter-elements'], ['test_scatter_without_axis', 'opset/scatter-to-scatter-elements']]) {
    const c = backendCase(name!);
    const up = upgradeToOpset13(c.model, new NameAuthority(c.model));
    assert.ok(up.changes[0]!.includes(rule!), `${name}: ${up.changes}`);
    const out = Object.values(await run(up.model, c.feeds))[0]!;
    assert.equal(compareOrt(out, c.expected), undefined, name);
  }
});

test('refusals name the node and attribute: Scan-8, BatchNormalization spatial=0, opset-6 broadcast, opset below 6', () => {
  const scan = backendCase('test_scan_sum').model;
  assert.throws(() => upgradeToOpset13(scan, new NameAuthority(scan)), /node '.*' \(Scan, opset 8\): Scan-8 batches over axis 0/);
  const stats = ['s', 'b', 'm', 'v'].map((n) => makeFloatTensor(n, [3], Float32Array.of(1, 1, 1)));
  const bn = oldModel({ op: 'BatchNormalization', opset: 7, attrs: { spatial: 0 }, inputs: [x([2, 3, 4])], constants: stats, outputs: ['y'] });
  assert.throws(() => upgradeToOpset13(bn, new NameAuthority(bn)), /node 'BatchNormalization_0' \(BatchNormalization, opset 7\): attribute spatial=0/);
  const add = oldModel({ op: 'Add', opset: 6, attrs: { broadcast: 1, axis: 1 }, inputs: [x([2, 3, 4]), { name: 'b', dims: [3] }], outputs: ['y'] });
  assert.throws(() => upgradeToOpset13(add, new NameAuthority(add)), /\(Add, opset 6\): attribute broadcast=1/);
  const old = oldModel({ op: 'Relu', opset: 5, inputs: [x([2])], outputs: ['y'] });
  assert.throws(() => upgradeToOpset13(old, new NameAuthority(old)), /opset 5; training needs opset 13 and opsets 6–12 are upgraded automatically; re-export/);
});

test('every upgrade rule has a stable id and a one-line doc', () => {
  const ids = UPGRADE_RULES.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const r of UPGRADE_RULES) assert.ok(/^opset\/[a-z0-9-]+$/.test(r.id) && r.doc.length > 10 && !r.doc.includes('\n'), r.id);
});
