/**
 * Opset 11/12 → 13 upgrade before training: the upgraded graph computes what the original computes
 * (onnxruntime runs both, each under its own opset), including Softmax on a non-last axis, whose meaning
 * changed at opset 13; opsets below 6 are refused (opsets 6–10: test/opset-upgrade.test.ts).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority, opsetVersion } from '../src/onnx/ir.js';
import { upgradeToOpset13 } from '../src/normalize/opset-upgrade.js';
import { REAL_FIXTURES } from './helpers.js';

async function runBoth(model: ModelProto, feeds: Record<string, ort.Tensor>): Promise<[Record<string, ort.Tensor>, Record<string, ort.Tensor>, string[]]> {
  const up = upgradeToOpset13(model, new NameAuthority(model));
  assert.equal(opsetVersion(up.model), 13);
  const a = await ort.InferenceSession.create(encodeModel(model));
  const b = await ort.InferenceSession.create(encodeModel(up.model));
  const ra = await a.run(feeds);
  const rb = await b.run(feeds);
  await a.release(); await b.release();
  return [ra, rb, up.changes];
}

test('Megatron GPT-2 (opset 12): upgraded graph gives identical logits; Unsqueeze/Squeeze/Split/Softmax rewritten', async () => {
  const { model } = readModel(path.join(REAL_FIXTURES, 'ort_gpt2_megatron.onnx'));
  const [B, S] = [2, 5];
  const ids = BigInt64Array.from({ length: B * S }, (_, i) => BigInt((i * 7) % 10));
  const feeds = {
    input_ids: new ort.Tensor('int64', ids, [B, S]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, (_, i) => BigInt(i % S)), [B, S]),
    attention_mask: new ort.Tensor('float32', new Float32Array(B * 64 * 64).fill(1), [B, 1, 64, 64]),
    past_0: new ort.Tensor('float32', new Float32Array(0), [2, B, 2, 0, 4]),
  };
  const [ra, rb, changes] = await runBoth(model, feeds);
  assert.deepEqual(Array.from(rb['logits']!.data as Float32Array), Array.from(ra['logits']!.data as Float32Array));
  assert.deepEqual(changes.map((c) => c.split(':')[0]), ['Softmax ×1', 'Split ×2', 'Squeeze ×2', 'Unsqueeze ×13']);
});

test('DistilBERT classifier (opset 11): upgraded graph gives identical logits', async () => {
  const { model } = readModel(path.join(REAL_FIXTURES, 'optimum_tiny_distilbert_cls.onnx'));
  const inputs = model.graph!.input.map((v) => v.name);
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of inputs) feeds[name] = new ort.Tensor('int64', BigInt64Array.from({ length: 6 }, (_, i) => (name.includes('mask') ? 1n : BigInt(100 + i * 37))), [1, 6]);
  const [ra, rb] = await runBoth(model, feeds);
  const out = model.graph!.output[0]!.name;
  assert.deepEqual(Array.from(rb[out]!.data as Float32Array), Array.from(ra[out]!.data as Float32Array));
});

function softmaxModel(opset: number, axis: number, op = 'Softmax'): ModelProto {
  const graph = create(GraphProtoSchema, {
    name: 'sm', node: [node(op, ['x'], ['y'], { axis })],
    input: [tensorValueInfo('x', DataType.FLOAT, [2, 3, 4])], output: [tensorValueInfo('y', DataType.FLOAT, [2, 3, 4])],
  });
  return create(ModelProtoSchema, { irVersion: 7n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })], graph });
}

test('Softmax/LogSoftmax-12 on axis 1 of a rank-3 tensor keeps its coerce-to-2-D meaning at opset 13', async () => {
  const x = new ort.Tensor('float32', Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * 3), [2, 3, 4]);
  for (const op of ['Softmax', 'LogSoftmax']) {
    const [ra, rb, changes] = await runBoth(softmaxModel(12, 1, op), { x });
    const a = Array.from(ra['y']!.data as Float32Array);
    const b = Array.from(rb['y']!.data as Float32Array);
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-6, `${op}[${i}] ${v} vs ${b[i]}`));
    assert.equal(changes.length, 1);
    // Under opset-13 meaning the same axis would normalise over 3 values only: the rewrite matters.
    if (op === 'Softmax') assert.ok(Math.abs(a.slice(0, 12).reduce((s, v) => s + v, 0) - 1) < 1e-5, 'sums to 1 over the flattened [3, 4] block');
  }
  const last = upgradeToOpset13(softmaxModel(12, 2), new NameAuthority(softmaxModel(12, 2)));
  assert.deepEqual(last.model.graph!.node.map((n) => n.opType), ['Softmax'], 'last axis: no rewrite needed');
});

test('opset below 6 is refused with the fix', () => {
  const m = softmaxModel(5, 1);
  assert.throws(() => upgradeToOpset13(m, new NameAuthority(m)), /opset 5; training needs opset 13 .* re-export the model with opset ≥ 6/);
});
