/**
 * CUDA readiness check against the shipped kernel table (data/ort-kernels.json, transcribed from
 * onnxruntime docs/OperatorKernels.md): fallbacks for a missing op, an opset outside every registration,
 * an input type the kernel lacks, a foreign domain; element types inferred through Cast/Shape/Equal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto, type NodeProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeInt64Tensor } from '../src/onnx/tensor.js';
import { inferElemTypes } from '../src/train/infer-types.js';
import { checkCudaKernels, getCudaKernelTable } from '../src/train/kernels.js';

function model(nodes: NodeProto[], opset = 17, inputs = [tensorValueInfo('x', DataType.FLOAT, [2, 3]), tensorValueInfo('i8', DataType.INT8, [2, 3]), tensorValueInfo('ids', DataType.INT64, [2])]): ModelProto {
  const graph = create(GraphProtoSchema, { name: 'g', node: nodes, input: inputs, initializer: [makeInt64Tensor('shape', [1], [-1])] });
  return create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })], graph });
}

test('the shipped table says where it came from and lists the CUDA kernels the train graph uses', () => {
  const t = getCudaKernelTable();
  for (const op of ['MatMul', 'LogSoftmax', 'GatherElements', 'ScatterElements', 'Where', 'Pow', 'Sqrt', 'LayerNormalization']) assert.ok(t['ai.onnx']![op]!.length > 0, op);
  assert.equal(t['ai.onnx']!['SoftmaxCrossEntropyLoss'], undefined, 'SoftmaxCrossEntropyLoss has no CUDA kernel (why the loss is built from LogSoftmax)');
});

test('a clean graph has no fallbacks; Constant needs no kernel', () => {
  const r = checkCudaKernels(model([
    node('Relu', ['x'], ['r'], {}, 'relu'), node('Softmax', ['r'], ['s'], { axis: -1 }, 'sm'),
    node('Reshape', ['s', 'shape'], ['flat'], {}, 'reshape'), node('Constant', [], ['c'], { value: makeInt64Tensor('', [], [1]) }, 'const'),
  ]));
  assert.deepEqual(r.fallbacks, []);
  assert.equal(r.nodes, 4);
  assert.equal(r.typesUnknown, 0);
});

test('fallbacks: op without a CUDA kernel, unsupported input type, foreign domain', () => {
  const r = checkCudaKernels(model([
    node('SoftmaxCrossEntropyLoss', ['x', 'ids'], ['l'], {}, 'sce'),
    node('Where', ['b', 'i8', 'i8'], ['w'], {}, 'where_int8'),
    node('Equal', ['x', 'x'], ['b'], {}, 'eq'),
    node('MyOp', ['x'], ['y'], {}, 'custom', 'com.example'),
    node('Abs', ['i8'], ['a'], {}, 'abs_int8'),
  ]));
  const byNode = Object.fromEntries(r.fallbacks.map((f) => [f.node, f.reason]));
  assert.deepEqual(Object.keys(byNode).sort(), ['custom', 'sce', 'where_int8']);
  assert.match(byNode['sce']!, /no CUDA kernel for ai\.onnx::SoftmaxCrossEntropyLoss/);
  assert.match(byNode['where_int8']!, /no tensor\(int8\) kernel for input 1/);
  assert.match(byNode['custom']!, /com\.example::MyOp/);
});

test('opset outside every registration is a fallback (LayerNormalization in ai.onnx at opset 17 is fine)', () => {
  const r = checkCudaKernels(model([node('Gelu', ['x'], ['g'], {}, 'gelu')], 17));
  assert.equal(r.fallbacks.length, 1);
  assert.match(r.fallbacks[0]!.reason, /Gelu/);
  const ln = checkCudaKernels(model([node('LayerNormalization', ['x', 'x', 'x'], ['y'], { axis: -1 }, 'ln')], 17));
  assert.deepEqual(ln.fallbacks, []);
});

test('element types: Cast → to, Shape → int64, Equal → bool, Where → its data type', () => {
  const m = model([
    node('Cast', ['ids'], ['f'], { to: DataType.FLOAT }), node('Shape', ['x'], ['s']),
    node('Equal', ['ids', 'ids'], ['b']), node('Where', ['b', 'f', 'f'], ['w']), node('Add', ['w', 'w'], ['a']),
  ]);
  const t = inferElemTypes(m.graph!);
  assert.deepEqual(['f', 's', 'b', 'w', 'a'].map((n) => t.get(n)), [DataType.FLOAT, DataType.INT64, DataType.BOOL, DataType.FLOAT, DataType.FLOAT]);
});
