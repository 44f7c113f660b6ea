/**
 * Whole-graph autodiff against central finite differences (float64, onnxruntime-node CPU): a small MLP and
 * a tiny causal attention block (embedding + positions, fused QKV Split, heads via runtime-shape Reshape,
 * masked Softmax, LayerNorm, SiLU MLP, tied readout, LogSoftmax). Plus the API's edges: unused parameters,
 * vector-Jacobian seeds, bad names, low opsets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type GraphProto, type NodeProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { encodeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority } from '../src/onnx/ir.js';
import { makeByteTensor, makeInt64Tensor } from '../src/onnx/tensor.js';
import { buildBackward, MIN_OPSET } from '../src/train/autodiff.js';
import { floatConstTensor } from '../src/train/grad-helpers.js';
import { UserInputError } from '../src/errors.js';
import { checkGradient, rng } from './grad-rules-harness.js';

const TOL = 1e-6;

test('MLP (MatMul+bias, Tanh, Gemm transB, Relu, Softmax): all gradients match FD', async () => {
  const r = await checkGradient({
    nodes: [
      node('MatMul', ['x', 'W1'], ['h']), node('Add', ['h', 'b1'], ['hb']), node('Tanh', ['hb'], ['a']),
      node('Gemm', ['a', 'W2', 'b2'], ['z'], { transB: 1 }), node('Relu', ['z'], ['r']), node('Softmax', ['r'], ['y']),
    ],
    inputs: [
      { name: 'x', shape: [5, 6] }, { name: 'W1', shape: [6, 8], asInitializer: true }, { name: 'b1', shape: [8], asInitializer: true },
      { name: 'W2', shape: [3, 8], asInitializer: true }, { name: 'b2', shape: [3], asInitializer: true },
    ],
  });
  assert.ok(r.relError < TOL, JSON.stringify(r.perInput));
  assert.deepEqual(Object.keys(r.perInput).sort(), ['W1', 'W2', 'b1', 'b2', 'x']);
});

function attentionBlock(): NodeProto[] {
  const n = node;
  return [
    n('Gather', ['E', 'ids'], ['tok']),
    n('Shape', ['ids'], ['ids_shape']), n('Gather', ['ids_shape', 'one_v'], ['T']),
    n('Slice', ['P', 'zero_v', 'T', 'zero_v'], ['pos']), n('Add', ['tok', 'pos'], ['h0']),
    n('MatMul', ['h0', 'Wqkv'], ['qkv']), n('Add', ['qkv', 'bqkv'], ['qkvb']),
    n('Split', ['qkvb', 'split3'], ['q', 'k', 'v'], { axis: -1 }),
    n('Shape', ['h0'], ['h_shape']), n('Slice', ['h_shape', 'zero_v', 'two_v'], ['bt']), n('Concat', ['bt', 'heads'], ['hs'], { axis: 0 }),
    n('Reshape', ['q', 'hs'], ['q3']), n('Transpose', ['q3'], ['q4'], { perm: [0, 2, 1, 3] }),
    n('Reshape', ['k', 'hs'], ['k3']), n('Transpose', ['k3'], ['k4'], { perm: [0, 2, 3, 1] }),
    n('Reshape', ['v', 'hs'], ['v3']), n('Transpose', ['v3'], ['v4'], { perm: [0, 2, 1, 3] }),
    n('MatMul', ['q4', 'k4'], ['s']), n('Mul', ['s', 'scale'], ['ss']),
    n('Concat', ['T', 'T'], ['TT'], { axis: 0 }), n('Slice', ['causal', 'zero2', 'TT', 'axes01'], ['mask']),
    n('Where', ['mask', 'ss', 'neg_inf'], ['sm']), n('Softmax', ['sm'], ['att'], { axis: -1 }),
    n('MatMul', ['att', 'v4'], ['o4']), n('Transpose', ['o4'], ['o3'], { perm: [0, 2, 1, 3] }),
    n('Reshape', ['o3', 'h_shape'], ['o']), n('MatMul', ['o', 'Wo'], ['proj']), n('Add', ['h0', 'proj'], ['r1']),
    n('LayerNormalization', ['r1', 'ln_s', 'ln_b'], ['n1'], { axis: -1, epsilon: { float: 1e-5 } }),
    n('MatMul', ['n1', 'W1'], ['f']), n('Sigmoid', ['f'], ['fs']), n('Mul', ['f', 'fs'], ['silu']),
    n('MatMul', ['silu', 'W2'], ['f2']), n('Add', ['r1', 'f2'], ['r2']),
    n('Transpose', ['E'], ['Et'], { perm: [1, 0] }), n('MatMul', ['r2', 'Et'], ['logits']), n('LogSoftmax', ['logits'], ['y'], { axis: -1 }),
  ];
}

test('tiny causal attention block, symbolic batch/sequence dims: all parameter gradients match FD', async () => {
  const causal = Uint8Array.from({ length: 25 }, (_, i) => (i % 5 <= Math.floor(i / 5) ? 1 : 0));
  const r = await checkGradient({
    symbolic: true,
    nodes: attentionBlock(),
    inputs: [
      { name: 'ids', shape: [2, 3], ints: [0, 4, 6, 6, 2, 0] },
      ...[['E', [7, 4]], ['P', [5, 4]], ['Wqkv', [4, 12]], ['bqkv', [12]], ['Wo', [4, 4]], ['ln_s', [4]], ['ln_b', [4]], ['W1', [4, 8]], ['W2', [8, 4]]]
        .map(([name, shape]) => ({ name: name as string, shape: shape as number[], asInitializer: true, fixedShape: true })),
      { name: 'scale', shape: [], values: [1 / Math.SQRT2], constant: true }, { name: 'neg_inf', shape: [], values: [-1e9], constant: true },
    ],
    initializers: [
      makeInt64Tensor('one_v', [1], [1]), makeInt64Tensor('zero_v', [1], [0]), makeInt64Tensor('two_v', [1], [2]),
      makeInt64Tensor('split3', [3], [4, 4, 4]), makeInt64Tensor('heads', [2], [2, 2]), makeInt64Tensor('zero2', [2], [0, 0]),
      makeInt64Tensor('axes01', [2], [0, 1]), makeByteTensor('causal', [5, 5], causal, DataType.BOOL),
    ],
  });
  assert.ok(r.relError < TOL, JSON.stringify(r.perInput));
  assert.equal(Object.keys(r.perInput).length, 9);
  // Embedding scatter-add, the runtime-length position Slice (scatter form), the QKV Split (Concat back).
  for (const op of ['ScatterND', 'ScatterElements', 'Concat']) assert.ok(r.backwardOps.includes(op), `backward uses ${op}: ${r.backwardOps.join(',')}`);
});

function tinyGraph(): { graph: GraphProto; names: NameAuthority } {
  const graph = create(GraphProtoSchema, {
    node: [node('MatMul', ['x', 'W'], ['y'], {}, 'mm'), node('ReduceSum', ['y'], ['loss'], { keepdims: 0 }, 'sum')],
    input: [tensorValueInfo('x', DataType.DOUBLE, [2, 3])],
    output: [tensorValueInfo('loss', DataType.DOUBLE, [])],
    initializer: [floatConstTensor('W', [3, 4], Array.from({ length: 12 }, (_, i) => i / 10), DataType.DOUBLE), floatConstTensor('unused', [2], [1, 2], DataType.DOUBLE)],
  });
  const model = create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })], graph });
  return { graph, names: new NameAuthority(model) };
}

async function run(graph: GraphProto, outputs: string[], feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
  const g: GraphProto = { ...graph, output: outputs.map((o) => tensorValueInfo(o, DataType.DOUBLE)) };
  const model = create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })], graph: g });
  const s = await ort.InferenceSession.create(encodeModel(model));
  return s.run(feeds);
}

test('a parameter off the loss path gets a zero gradient of its shape', async () => {
  const { graph, names } = tinyGraph();
  const back = buildBackward(graph, { loss: 'loss', wrt: ['W', 'unused'], names, opset: 17 });
  const full = { ...graph, node: [...graph.node, ...back.nodes], initializer: [...graph.initializer, ...back.initializers] };
  const x = Float64Array.from({ length: 6 }, (_, i) => i - 2);
  const out = await run(full, [back.grads.get('W')!, back.grads.get('unused')!], { x: new ort.Tensor('float64', x, [2, 3]) });
  assert.deepEqual(Array.from(out[back.grads.get('unused')!]!.data as Float64Array), [0, 0]);
  // d/dW Σ (xW) = xᵀ·1: row k of the gradient is the column sum of x.
  const colSum = [0, 1, 2].map((k) => x[k]! + x[k + 3]!);
  assert.deepEqual(Array.from(out[back.grads.get('W')!]!.data as Float64Array), colSum.flatMap((v) => [v, v, v, v]));
});

test('seeds: the backward of a given output gradient equals the gradient of Σ y ⊙ S', async () => {
  const { graph, names } = tinyGraph();
  graph.input.push(tensorValueInfo('S', DataType.DOUBLE, [2, 4]));
  const back = buildBackward(graph, { loss: 'y', wrt: ['W'], names, opset: 17, seeds: new Map([['y', 'S']]) });
  const full = { ...graph, node: [...graph.node, ...back.nodes], initializer: [...graph.initializer, ...back.initializers] };
  const rand = rng(7);
  const x = Float64Array.from({ length: 6 }, () => rand() - 0.5), S = Float64Array.from({ length: 8 }, () => rand() - 0.5);
  const out = await run(full, [back.grads.get('W')!], { x: new ort.Tensor('float64', x, [2, 3]), S: new ort.Tensor('float64', S, [2, 4]) });
  const got = out[back.grads.get('W')!]!.data as Float64Array;
  for (let k = 0; k < 3; k++) {
    for (let j = 0; j < 4; j++) assert.ok(Math.abs(got[k * 4 + j]! - (x[k]! * S[j]! + x[k + 3]! * S[j + 4]!)) < 1e-12);
  }
});

test('bad names and low opsets are one-line user errors', () => {
  const { graph, names } = tinyGraph();
  const oneLine = (re: RegExp) => (err: unknown) => err instanceof UserInputError && re.test(err.message) && !err.message.includes('\n');
  assert.throws(() => buildBackward(graph, { loss: 'nope', wrt: ['W'], names, opset: 17 }), oneLine(/loss 'nope' is not a value/));
  assert.throws(() => buildBackward(graph, { loss: 'loss', wrt: ['Wx'], names, opset: 17 }), oneLine(/'Wx' .* not an initializer or input/));
  assert.throws(() => buildBackward(graph, { loss: 'loss', wrt: ['W'], names, opset: MIN_OPSET - 1 }), oneLine(new RegExp(`opset ${MIN_OPSET - 1} is below ${MIN_OPSET}`)));
});

test('integer and shape subgraphs are not differentiated', () => {
  const { graph, names } = tinyGraph();
  // loss2 = Σ y · Cast(Shape(W)[0]): the Shape path carries no gradient, so no rule is needed for Shape/Gather/Cast of ints.
  graph.node.push(
    node('Shape', ['W'], ['wshape']), node('Gather', ['wshape', 'zero'], ['rows']), node('Cast', ['rows'], ['rowsf'], { to: DataType.DOUBLE }),
    node('Mul', ['loss', 'rowsf'], ['loss2']),
  );
  graph.initializer.push(makeInt64Tensor('zero', [], [0]));
  const back = buildBackward(graph, { loss: 'loss2', wrt: ['W'], names, opset: 17 });
  assert.ok(!back.nodes.some((n) => n.opType === 'ScatterND'), 'no Gather gradient emitted for the shape path');
});
