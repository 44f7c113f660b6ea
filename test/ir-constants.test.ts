import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema } from 'onnx-buf';
import { node } from '../src/onnx/build.js';
import { GraphIndex } from '../src/onnx/ir.js';
import { dimsOf, tensorToNumbers } from '../src/onnx/tensor.js';

test('findConstant reads Constant nodes in every value_* spelling', () => {
  const graph = create(GraphProtoSchema, {
    node: [
      node('Constant', [], ['f'], { value_float: { float: 0.125 } }),
      node('Constant', [], ['fs'], { value_floats: { floats: [1.5, -2] } }),
      node('Constant', [], ['i'], { value_int: 7 }),
      node('Constant', [], ['is'], { value_ints: { ints: [2, -1, 64] } }),
      node('Constant', [], ['s'], { value_string: 'x' }),
    ],
  });
  const index = new GraphIndex(create(ModelProtoSchema, { graph }));
  const get = (n: string) => index.findConstant(n)!;
  assert.deepEqual([dimsOf(get('f')), tensorToNumbers(get('f'), '.')], [[], [0.125]]);
  assert.deepEqual([dimsOf(get('fs')), tensorToNumbers(get('fs'), '.')], [[2], [1.5, -2]]);
  assert.deepEqual([dimsOf(get('i')), tensorToNumbers(get('i'), '.')], [[], [7]]);
  assert.deepEqual([dimsOf(get('is')), tensorToNumbers(get('is'), '.')], [[3], [2, -1, 64]]);
  assert.equal(index.findConstant('s'), undefined);
  assert.equal(index.findConstant('nothing'), undefined);
});
