/** The pass manager runs passes in order, collects their reports, and stops at the pass that breaks the graph. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { node } from '../src/onnx/build.js';
import { readModel } from '../src/onnx/codec.js';
import { InvariantError } from '../src/errors.js';
import { runPasses, type Pass, type PassContext } from '../src/passes/manager.js';
import { GPT_TINY } from './transform-helpers.js';

const ctx = {} as PassContext;

test('reports come back by pass id in run order; a pass that reads an undefined value is named', () => {
  const order: string[] = [];
  const ok = (id: string): Pass<{ id: string }> => ({ id, doc: id, run: (model) => { order.push(id); return { model, report: { id } }; } });
  const { reports } = runPasses(readModel(GPT_TINY).model, ctx, [ok('a'), ok('b')]);
  assert.deepEqual(order, ['a', 'b']);
  assert.deepEqual([...reports.entries()], [['a', { id: 'a' }], ['b', { id: 'b' }]]);

  const broken: Pass = {
    id: 'broken', doc: 'reads a value nobody defines',
    run: (model) => {
      model.graph!.node.unshift(node('Relu', ['nowhere'], ['x'], {}, 'bad'));
      return { model, report: {} };
    },
  };
  assert.throws(() => runPasses(readModel(GPT_TINY).model, ctx, [ok('a'), broken]), (e: Error) => e instanceof InvariantError && /after pass broken: node 'bad' reads 'nowhere'/.test(e.message));
});
