/**
 * Small synthetic models for tests, built with the project's own builders, and a seeded PRNG
 * (mulberry32: same numbers on every platform) for weights and inputs.
 */
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeFloatTensor } from '../src/onnx/tensor.js';
import { mulberry32 } from '../src/passes/rng.js';

/** Seeded uniforms in [0, 1). */
export const seededRandom = mulberry32;

export function randomFloats(n: number, rand: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}

/**
 * y = Relu(x·W1 + b1)·W2 with x [batch, d], W1 [d, h], W2 [h, o]; `batch` is symbolic.
 * W1 and W2 exceed 1 KiB (externalized by the writer); b1 stays small (kept inline).
 */
export function mlpModel(d = 32, h = 64, o = 8, seed = 1): ModelProto {
  const rand = seededRandom(seed);
  const graph = create(GraphProtoSchema, {
    name: 'mlp',
    node: [
      node('MatMul', ['x', 'W1'], ['xw'], {}, 'mm1'),
      node('Add', ['xw', 'b1'], ['xwb'], {}, 'add1'),
      node('Relu', ['xwb'], ['hid'], {}, 'relu'),
      node('MatMul', ['hid', 'W2'], ['y'], {}, 'mm2'),
    ],
    initializer: [
      makeFloatTensor('W1', [d, h], randomFloats(d * h, rand, 0.2)),
      makeFloatTensor('b1', [h], randomFloats(h, rand, 0.1)),
      makeFloatTensor('W2', [h, o], randomFloats(h * o, rand, 0.2)),
    ],
    input: [tensorValueInfo('x', DataType.FLOAT, ['batch', d])],
    output: [tensorValueInfo('y', DataType.FLOAT, ['batch', o])],
  });
  return create(ModelProtoSchema, {
    irVersion: 10n,
    producerName: 'supar-transform-tests',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
    graph,
  });
}

export interface SharedLmOptions {
  /** Store the shared layer weight once per use (as exporters do) or once (the identity-shared form). */
  copies: boolean;
  seed?: number;
}

/**
 * A tiny token LM whose three residual layers share one weight A [d, d] and one bias b [d]
 * (x ← x + Relu(LN(x)·A + b)), a parameter-free LayerNormalization whose ones gain `val_8` the exporter
 * made, an elementwise affine layer x·α + β (ResMLP/CaiT `Affine`) before an untied readout.
 * With `copies`, layer 1 reads A again as `onnx::MatMul_11` (equal bytes), layer 2 reads `onnx::MatMul_12`
 * = Aᵀ through a Transpose, and layer 1's bias is `onnx::Add_21` (equal to b); layer 2's bias `blocks.2.b` is
 * equal to b too but, as two module-named vectors, is not taken for a copy. Two all-zeros vectors with
 * exporter names (`onnx::Add_30`, `onnx::Add_31`) are added after the affine layer: equal by chance, not shared.
 */
export function sharedLmModel(o: SharedLmOptions): ModelProto {
  const [V, d] = [16, 8];
  const rand = seededRandom(o.seed ?? 3);
  const A = randomFloats(d * d, rand, 0.3);
  const At = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) At[j * d + i] = A[i * d + j]!;
  const b = randomFloats(d, rand, 0.1);
  const nodes = [node('Gather', ['emb', 'input_ids'], ['x0'], { axis: 0 }, 'embed')];
  const weightOf = ['blocks.0.w', o.copies ? 'onnx::MatMul_11' : 'blocks.0.w', o.copies ? 'onnx::MatMul_12' : 'blocks.0.w'];
  const biasOf = ['blocks.0.b', o.copies ? 'onnx::Add_21' : 'blocks.0.b', o.copies ? 'blocks.2.b' : 'blocks.0.b'];
  for (let l = 0; l < 3; l++) {
    const x = `x${l}`;
    nodes.push(node('LayerNormalization', [x, 'val_8'], [`n${l}`], { axis: -1 }, `blocks.${l}/ln`));
    let w = weightOf[l]!;
    if (o.copies && l === 2) {
      nodes.push(node('Transpose', [w], [`wt${l}`], { perm: [1, 0] }, `blocks.${l}/t`));
      w = `wt${l}`;
    }
    nodes.push(
      node('MatMul', [`n${l}`, w], [`m${l}`], {}, `blocks.${l}/mm`),
      node('Add', [`m${l}`, biasOf[l]!], [`a${l}`], {}, `blocks.${l}/bias`),
      node('Relu', [`a${l}`], [`r${l}`], {}, `blocks.${l}/relu`),
      node('Add', [x, `r${l}`], [`x${l + 1}`], {}, `blocks.${l}/residual`),
    );
  }
  nodes.push(
    node('Mul', ['x3', 'affine.alpha'], ['s'], {}, 'affine/mul'),
    node('Add', ['s', 'affine.beta'], ['t'], {}, 'affine/add'),
    node('Add', ['t', 'onnx::Add_30'], ['t1'], {}, 'zeros_a'),
    node('Add', ['t1', 'onnx::Add_31'], ['t2'], {}, 'zeros_b'),
    node('MatMul', ['t2', 'head.weight'], ['logits'], {}, 'head'),
  );
  const alpha = randomFloats(d, rand, 0.2).map((x) => 1 + x);
  const inits = [
    makeFloatTensor('emb', [V, d], randomFloats(V * d, rand, 1)),
    makeFloatTensor('val_8', [d], new Float32Array(d).fill(1)),
    makeFloatTensor('blocks.0.w', [d, d], A),
    makeFloatTensor('blocks.0.b', [d], b),
    ...(o.copies ? [makeFloatTensor('onnx::MatMul_11', [d, d], A), makeFloatTensor('onnx::MatMul_12', [d, d], At), makeFloatTensor('onnx::Add_21', [d], b), makeFloatTensor('blocks.2.b', [d], b)] : []),
    makeFloatTensor('affine.alpha', [d], alpha),
    makeFloatTensor('affine.beta', [d], randomFloats(d, rand, 0.1)),
    makeFloatTensor('onnx::Add_30', [d], new Float32Array(d)),
    makeFloatTensor('onnx::Add_31', [d], new Float32Array(d)),
    makeFloatTensor('head.weight', [d, V], randomFloats(d * V, rand, 0.3)),
  ];
  return create(ModelProtoSchema, {
    irVersion: 10n, producerName: 'supar-transform-tests',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
    graph: create(GraphProtoSchema, {
      name: 'shared_lm', node: nodes, initializer: inits,
      input: [tensorValueInfo('input_ids', DataType.INT64, ['batch', 'seq'])],
      output: [tensorValueInfo('logits', DataType.FLOAT, ['batch', 'seq', V])],
    }),
  });
}
