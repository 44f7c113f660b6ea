/**
 * Shared parameters stored more than once, constant norm vectors an exporter made, and elementwise affine
 * layers (src/analysis/sharing.ts, norms.ts; passes/ties.ts). On the test-built `sharedLmModel` (three
 * layers sharing one weight, stored once per use — equal bytes and a transposed copy — against the same model
 * storing it once) and on a dynamo ALBERT export (fixtures/forms): one parameter, one mask, one LR group
 * listing the copies, the same outputs as the model that stores it once, and after 3 train steps every
 * layer still reads bitwise the same weight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, ValueInfoProtoSchema, type ModelProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeFloatTensor, makeInt64Tensor } from '../src/onnx/tensor.js';
import { analyzeModel } from '../src/analysis/index.js';
import { sameUpToView } from '../src/analysis/sharing.js';
import { readModel } from '../src/onnx/codec.js';
import { transform, type TransformResult } from '../src/transform.js';
import { openBatchSource } from '../src/train/data.js';
import { createTrainer, feedsForBatch, withWeights } from '../src/train/runner.js';
import { buildTrainStep } from '../src/train/train-step.js';
import { ROOT } from './helpers.js';
import { randomFloats, seededRandom, sharedLmModel } from './model-builders.js';
import { floats, runOrt } from './transform-helpers.js';

const virtual = (model: ModelProto, name: string) => ({ model, path: `/virtual/${name}.onnx`, baseDir: '.', fileBytes: 0 });
const tokens = () => new ort.Tensor('int64', BigInt64Array.from({ length: 12 }, (_, i) => BigInt((i * 7 + 3) % 16)), [2, 6]);

async function supar(model: ModelProto, name: string, emitTrain = false): Promise<TransformResult> {
  return transform(virtual(model, name), { rules: 'supar', density: 0.5, seed: 4, ...(emitTrain ? { emitTrain: { loss: 'cross_entropy' } } : {}) });
}

/** The values every layer's MatMul reads as its weight (masked, after the Transpose of the copy). */
async function layerWeights(model: ModelProto, feeds: Record<string, ort.Tensor>): Promise<Float32Array[]> {
  const m = structuredClone(model);
  const reads = [0, 1, 2].map((l) => m.graph!.node.find((n) => n.name === `blocks.${l}/mm`)!.input[1]!);
  m.graph!.output.push(...reads.map((r) => create(ValueInfoProtoSchema, { name: r })));
  const out = await runOrt(m, feeds);
  return reads.map((r) => floats(out[r]!));
}

test('analysis: copies of a shared weight and bias are one parameter; equal module-named vectors and constant vectors are not', () => {
  const a = analyzeModel(sharedLmModel({ copies: true }), '.', { overrides: [{ match: 'onnx::Add_3*', role: 'bias' }] });
  const p = (n: string) => a.params.find((x) => x.name === n)!;
  assert.deepEqual(p('blocks.0.w').copies, ['onnx::MatMul_11', 'onnx::MatMul_12']);
  assert.deepEqual([p('onnx::MatMul_11').tie, p('onnx::MatMul_11').tiedWith], ['value', 'blocks.0.w']);
  assert.deepEqual([p('onnx::MatMul_12').tie, p('onnx::MatMul_12').tiedWith], ['value-transposed', 'blocks.0.w']);
  assert.deepEqual(p('blocks.0.b').copies, ['onnx::Add_21'], 'a vector copy needs an exporter name: blocks.2.b stays its own');
  assert.equal(p('blocks.2.b').tiedWith, undefined);
  // Two all-zeros biases with exporter names are equal by chance.
  assert.equal(p('onnx::Add_30').role, 'bias');
  assert.equal(p('onnx::Add_30').tiedWith ?? p('onnx::Add_31').tiedWith, undefined);
});

test('sameUpToView: equal, reshaped and transposed copies; a near-miss is not one', () => {
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  assert.equal(sameUpToView([2, 3], a, [2, 3], a.slice()), 'value');
  assert.equal(sameUpToView([2, 3], a, [1, 6], a.slice()), 'value-reshaped');
  assert.equal(sameUpToView([2, 3], a, [3, 2], new Float32Array([1, 4, 2, 5, 3, 6])), 'value-transposed');
  assert.equal(sameUpToView([2, 3], a, [2, 3], new Float32Array([1, 2, 3, 4, 5, 6.000001])), undefined);
});

test('norms: the ones gain an exporter made is a buffer; an elementwise affine layer gets norm roles', () => {
  const a = analyzeModel(sharedLmModel({ copies: false }), '.');
  const role = (n: string) => a.params.find((x) => x.name === n)!.role;
  assert.equal(role('val_8'), 'buffer');
  assert.deepEqual([role('affine.alpha'), role('affine.beta')], ['norm_scale', 'norm_bias']);
});

test('transform: one mask, one init, one LR group listing the copies; outputs equal the model storing the weight once', async () => {
  const shared = await supar(sharedLmModel({ copies: true }), 'copies');
  const once = await supar(sharedLmModel({ copies: false }), 'once');
  const g = shared.lrGroups.groups.find((x) => x.name === 'blocks.0.w')!;
  assert.deepEqual(g.copies, ['onnx::MatMul_11', 'onnx::MatMul_12']);
  assert.equal(g.mask, 'blocks.0.w__mask');
  assert.deepEqual(shared.lrGroups.groups.filter((x) => x.mask).map((x) => x.name), ['blocks.0.w'], 'one mask');
  const names = new Set(shared.model.graph!.initializer.map((t) => t.name));
  for (const c of ['onnx::MatMul_11', 'onnx::MatMul_12', 'onnx::Add_21']) {
    assert.ok(!names.has(c), `${c} folded`);
    assert.ok(!shared.lrGroups.groups.some((x) => x.name === c), `${c}: no LR group of its own`);
  }
  assert.ok(!shared.lrGroups.groups.some((x) => x.name === 'val_8'), 'the ones gain is not trained');
  assert.deepEqual(shared.report.ties.map((t) => [t.copy, t.tie]), [['onnx::MatMul_11', 'value'], ['onnx::MatMul_12', 'value-transposed'], ['onnx::Add_21', 'value']]);
  const feeds = { input_ids: tokens() };
  const [w0, w1, w2] = await layerWeights(shared.model, feeds);
  assert.deepEqual(w1, w0, 'layer 1 reads the same masked weight');
  assert.deepEqual(w2, w0, 'layer 2 reads the same masked weight (through the Transpose)');
  assert.ok(w0!.some((x) => x === 0) && w0!.some((x) => x !== 0), 'masked at density 0.5');
  assert.deepEqual(floats((await runOrt(shared.model, feeds)).logits!), floats((await runOrt(once.model, feeds)).logits!), 'same logits as one stored weight');
});

test('train: after 3 steps every layer still reads bitwise the same weight, one update for all copies', async () => {
  const r = await supar(sharedLmModel({ copies: true }), 'train');
  const ts = buildTrainStep(r.model, '.', r.lrGroups, { loss: 'cross_entropy', optimizer: { kind: 'adamw' } });
  assert.equal(ts.io.params.filter((p) => /blocks\.0\.w|onnx::MatMul_1[12]/.test(p.name)).length, 1, 'one trained tensor');
  const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model: r.model, baseDir: '.' }, threads: 1 });
  const before = tr.param('blocks.0.w').slice();
  const batch = openBatchSource('synthetic:count:16', { batch: 2, seq: 6, seed: 0, vocab: 16 }).next();
  const losses: number[] = [];
  try {
    for (let i = 0; i < 3; i++) losses.push((await tr.step(feedsForBatch(ts.io, batch), 1e-2)).loss);
    const after = tr.param('blocks.0.w');
    assert.ok(after.some((x, i) => x !== before[i]), 'the shared weight was updated');
    assert.ok(losses[2]! < losses[0]!, `loss falls: ${losses.join(', ')}`);
    const [w0, w1, w2] = await layerWeights(withWeights(r.model, new Map([['blocks.0.w', after]])), { input_ids: tokens() });
    assert.deepEqual(w1, w0);
    assert.deepEqual(w2, w0);
  } finally {
    await tr.release();
  }
});

test('dynamo ALBERT (fixtures/forms): the FFN weights stored once per layer are one parameter each', async () => {
  const file = path.join(ROOT, 'fixtures', 'forms', 'albert_dynamo.onnx');
  const r = await transform(readModel(file), { rules: 'supar', density: 0.5 });
  const withCopies = r.lrGroups.groups.filter((g) => g.copies);
  assert.equal(withCopies.length, 2, 'ffn and ffn_output');
  for (const g of withCopies) assert.equal(g.copies!.length, 2, `${g.name}: three layers, two copies`);
  assert.equal(r.report.ties.length, 4);
  // Every hidden group has its own mask; the copies none.
  assert.equal(r.lrGroups.groups.filter((g) => g.mask).length, r.lrGroups.groups.filter((g) => g.role === 'hidden').length);
});

test('dynamo LayerNorm(elementwise_affine=False) (fixtures/forms): the ones Scale the exporter wrote is a buffer, untrained', async () => {
  const r = await transform(readModel(path.join(ROOT, 'fixtures', 'forms', 'lnfree_dynamo.onnx')), { rules: 'supar', density: 0.5 });
  const ones = r.report.tensors.find((t) => t.name === 'val_8')!;
  assert.equal(ones.role, 'buffer');
  assert.match(ones.reason, /constant ones gain the exporter wrote/);
  assert.ok(!r.lrGroups.groups.some((g) => g.name === 'val_8'));
  assert.ok(!r.lrGroups.groups.some((g) => g.role === 'norm_scale'), 'no norm gains at all');
});

test('a reshaped copy ([1, 4, 8] = [4, 8]) is folded through a Reshape; GroupNorm-style InstanceNormalization(ones, zeros) → Reshape → ·w + b gets norm roles', async () => {
  const rand = seededRandom(9);
  const mid = randomFloats(64, rand, 0.5);
  // onnx::MatMul_5 [1, 8, 8] holds mid.weight's values; each is read by its own branch.
  const model = create(ModelProtoSchema, {
    irVersion: 10n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
    graph: create(GraphProtoSchema, {
      name: 'g',
      node: [
        node('MatMul', ['x', 'l0.weight'], ['h0'], {}, 'mm0'), node('Relu', ['h0'], ['r0'], {}, 'relu'),
        node('Reshape', ['r0', 'to3d'], ['r3'], {}, 'to3d'),
        node('InstanceNormalization', ['r3', 'val_1', 'val_2'], ['in'], {}, 'gn/in'),
        node('Reshape', ['in', 'to2d'], ['n'], {}, 'gn/back'),
        node('Mul', ['n', 'gn.weight'], ['nw'], {}, 'gn/mul'), node('Add', ['nw', 'gn.bias'], ['nb'], {}, 'gn/add'),
        node('MatMul', ['nb', 'onnx::MatMul_5'], ['h1'], {}, 'mm1'), node('MatMul', ['h1', 'head.weight'], ['y'], {}, 'head'),
        node('MatMul', ['nb', 'mid.weight'], ['h2'], {}, 'mm2'), node('MatMul', ['h2', 'head.weight'], ['y2'], {}, 'head2'),
      ],
      initializer: [
        makeFloatTensor('l0.weight', [4, 8], randomFloats(32, rand, 0.5)),
        makeInt64Tensor('to3d', [3], [0, 8, 1]), makeInt64Tensor('to2d', [2], [-1, 8]),
        makeFloatTensor('val_1', [8], new Float32Array(8).fill(1)), makeFloatTensor('val_2', [8], new Float32Array(8)),
        makeFloatTensor('gn.weight', [8], randomFloats(8, rand, 0.2).map((v) => 1 + v)), makeFloatTensor('gn.bias', [8], randomFloats(8, rand, 0.1)),
        makeFloatTensor('mid.weight', [8, 8], mid), makeFloatTensor('onnx::MatMul_5', [1, 8, 8], mid),
        makeFloatTensor('head.weight', [8, 3], randomFloats(24, rand, 0.5)),
      ],
      input: [tensorValueInfo('x', DataType.FLOAT, ['batch', 4])],
      output: [tensorValueInfo('y', DataType.FLOAT, undefined), tensorValueInfo('y2', DataType.FLOAT, undefined)],
    }),
  });
  const a = analyzeModel(model, '.');
  const role = (n: string) => a.params.find((p) => p.name === n)!;
  assert.deepEqual(['val_1', 'val_2', 'gn.weight', 'gn.bias'].map((n) => role(n).role), ['buffer', 'buffer', 'norm_scale', 'norm_bias']);
  assert.deepEqual([role('onnx::MatMul_5').tie, role('onnx::MatMul_5').tiedWith], ['value-reshaped', 'mid.weight']);
  const feeds = { x: new ort.Tensor('float32', randomFloats(8, seededRandom(2), 1), [2, 4]) };
  const sp = await transform(virtual(model, 'reshaped'), { rules: 'sp', density: 1, init: 'keep' });
  assert.ok(!sp.model.graph!.initializer.some((t) => t.name === 'onnx::MatMul_5'), 'copy folded');
  const [want, got] = await Promise.all([runOrt(model, feeds), runOrt(sp.model, feeds)]);
  assert.deepEqual(floats(got.y!), floats(want.y!), 'the folded copy computes the same (SP, density 1, keep)');
  assert.deepEqual(floats(got.y2!), floats(want.y2!));
});

test('two-valued weights (identity inits) equal by construction are not taken for copies', () => {
  const m = sharedLmModel({ copies: true });
  const eye = new Float32Array(64).map((_, i) => (i % 9 === 0 ? 1 : 0));
  for (const name of ['blocks.0.w', 'onnx::MatMul_11', 'onnx::MatMul_12']) {
    const i = m.graph!.initializer.findIndex((t) => t.name === name);
    m.graph!.initializer[i] = makeFloatTensor(name, [8, 8], eye);
  }
  const a = analyzeModel(m, '.');
  assert.equal(a.params.find((p) => p.name === 'blocks.0.w')!.copies, undefined);
  assert.ok(a.params.filter((p) => p.role === 'hidden').every((p) => p.tiedWith === undefined));
});
