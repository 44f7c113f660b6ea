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
