import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema, FunctionProtoSchema, GraphProtoSchema, ModelProtoSchema, SparseTensorProtoSchema, TrainingInfoProtoSchema, type TensorProto,
} from 'onnx-buf';
import { node } from '../src/onnx/build.js';
import { makeFloatTensor, makeInt64Tensor } from '../src/onnx/tensor.js';
import { forEachGraph, forEachTensor } from '../src/onnx/walk.js';

const f = (name: string) => makeFloatTensor(name, [1], Float32Array.of(1));

test('forEachTensor reaches every stored tensor; forEachGraph every nested graph with its depth', () => {
  const inner = create(GraphProtoSchema, { name: 'inner', initializer: [f('inner_init')], node: [node('Constant', [], ['c2'], { value: f('inner_const') })] });
  const loopNode = node('Loop', ['n', 'c'], ['o']);
  loopNode.attribute.push(create(AttributeProtoSchema, { name: 'body', type: 5, g: inner }));
  const thenBranch = create(GraphProtoSchema, { name: 'then', initializer: [f('then_init')], node: [loopNode] });
  const elseBranch = create(GraphProtoSchema, { name: 'else' });
  const ifNode = node('If', ['cond'], ['y'], {});
  const GRAPH = 5; // AttributeProto.AttributeType.GRAPH
  ifNode.attribute.push(
    create(AttributeProtoSchema, { name: 'then_branch', type: GRAPH, g: thenBranch }),
    create(AttributeProtoSchema, { name: 'else_branch', type: GRAPH, g: elseBranch }),
  );
  const main = create(GraphProtoSchema, {
    name: 'main',
    initializer: [f('main_init')],
    sparseInitializer: [create(SparseTensorProtoSchema, { values: f('sparse_values'), indices: makeInt64Tensor('sparse_indices', [1], [0]), dims: [4n] })],
    node: [node('Constant', [], ['c'], { value: f('main_const') }), ifNode],
  });
  const model = create(ModelProtoSchema, {
    graph: main,
    functions: [create(FunctionProtoSchema, { name: 'fn', node: [node('Constant', [], ['k'], { value: f('fn_const') })] })],
    trainingInfo: [create(TrainingInfoProtoSchema, { initialization: create(GraphProtoSchema, { initializer: [f('train_init')] }) })],
  });
  const seen: string[] = [];
  forEachTensor(model, (t: TensorProto) => seen.push(t.name));
  assert.deepEqual(seen.sort(), ['fn_const', 'inner_const', 'inner_init', 'main_const', 'main_init', 'sparse_indices', 'sparse_values', 'then_init', 'train_init']);
  const graphs: string[] = [];
  forEachGraph(main, (g, depth, owner) => graphs.push(`${g.name}@${depth}${owner ? `<${owner.opType}` : ''}`));
  assert.deepEqual(graphs, ['main@0', 'then@1<If', 'inner@2<Loop', 'else@1<If']);
});
