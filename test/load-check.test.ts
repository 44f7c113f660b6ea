/**
 * Every graph the tool writes is loaded by onnxruntime before it is renamed into place
 * (src/onnx/load-check.ts): a refused graph is an internal error naming it and onnxruntime's message, and
 * nothing is written — no model, no data file, no temp file, and with the transform none of its outputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { NodeProtoSchema, type ModelProto } from 'onnx-buf';
import { InvariantError } from '../src/errors.js';
import { node } from '../src/onnx/build.js';
import { readModel } from '../src/onnx/codec.js';
import { writeModelChecked } from '../src/onnx/load-check.js';
import { transform, writeTransformOutputs } from '../src/transform.js';
import { tempDir } from './helpers.js';
import { mlpModel } from './model-builders.js';
import { runOrt } from './transform-helpers.js';
import * as ort from 'onnxruntime-node';

/** The MLP with one node reading a value nothing produces (what a builder that drops a producer writes). */
function dangling(m: ModelProto): ModelProto {
  const g = m.graph!;
  g.node.push(node('Add', ['y', 'query.1'], ['y2'], {}, 'dangling'));
  g.output[0]!.name = 'y2';
  return m;
}

const feeds = () => ({ x: new ort.Tensor('float32', Float32Array.from({ length: 2 * 32 }, (_, i) => Math.sin(i)), [2, 32]) });

test('load check: a valid model is written (inline and external data) and runs', async () => {
  const dir = tempDir();
  for (const mode of ['never', 'always'] as const) {
    const file = path.join(dir, `ok-${mode}.onnx`);
    const w = await writeModelChecked(mlpModel(), file, { externalData: mode, graph: 'test model' });
    assert.equal(w.model, file);
    assert.equal(fs.existsSync(`${file}.data`), mode === 'always');
    const out = await runOrt(file, feeds());
    assert.equal(out.y!.dims.join(','), '2,8');
  }
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('load check: a model onnxruntime refuses is an InvariantError naming it and the cause; nothing is written', async () => {
  const dir = tempDir();
  for (const mode of ['never', 'always'] as const) {
    const file = path.join(dir, `bad-${mode}.onnx`);
    await assert.rejects(writeModelChecked(dangling(mlpModel()), file, { externalData: mode, graph: 'train-step graph' }), (e: Error) => {
      assert.ok(e instanceof InvariantError, `${mode}: ${e.constructor.name}`);
      assert.match(e.message, new RegExp(`^train-step graph bad-${mode}\\.onnx: onnxruntime cannot load.*query\\.1.*nothing was written`));
      return true;
    });
  }
  assert.deepEqual(fs.readdirSync(dir), [], 'no model, data or temp file');
});

test('load check: the transform writes none of its outputs when one of its graphs is refused', async () => {
  const dir = tempDir();
  const src = path.join(dir, 'mlp.onnx');
  await writeModelChecked(mlpModel(), src, { graph: 'test model' });
  const r = await transform(readModel(src), { density: 0.5, emitTrain: { loss: 'mse' } });
  assert.ok(r.train);
  // The train graph is broken after a valid forward model: the forward model must not be written either.
  r.train.train.graph!.node.push(create(NodeProtoSchema, { opType: 'Identity', input: ['query.1'], output: ['orphan'], name: 'dangling' }));
  r.train.train.graph!.output.push({ ...r.train.train.graph!.output[0]!, name: 'orphan' });
  const out = path.join(dir, 'mlp.supar.onnx');
  await assert.rejects(writeTransformOutputs(r, out), (e: Error) => e instanceof InvariantError && /train-step graph mlp\.supar\.train\.onnx: onnxruntime cannot load/.test(e.message));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['mlp.onnx']);
});

test('load check: an op of a custom domain (the user registers its kernels at run time) does not fail the check', async () => {
  const dir = tempDir();
  const m = mlpModel();
  m.graph!.node.push(node('MyOp', ['y'], ['y2'], {}, 'custom', 'my.domain'));
  m.graph!.output[0]!.name = 'y2';
  m.opsetImport.push({ ...m.opsetImport[0]!, domain: 'my.domain', version: 1n });
  const file = path.join(dir, 'custom.onnx');
  await writeModelChecked(m, file, { graph: 'test model' });
  assert.ok(fs.existsSync(file));
  // A standard op onnxruntime lacks is still refused.
  const bad = mlpModel();
  bad.graph!.node.push(node('NoSuchOp', ['y'], ['y2'], {}, 'nosuch'));
  bad.graph!.output[0]!.name = 'y2';
  await assert.rejects(writeModelChecked(bad, path.join(dir, 'bad.onnx'), { graph: 'test model' }), InvariantError);
});
