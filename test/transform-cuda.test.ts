/** The report's CUDA readiness section: forward graph always, train/eval graphs with emitTrain. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { node } from '../src/onnx/build.js';
import { transform } from '../src/transform.js';
import { tempDir } from './helpers.js';
import { mlpModel } from './model-builders.js';
import { GPT_TINY } from './transform-helpers.js';

test('cuda readiness: every graph of the fixture GPT has CUDA kernels (forward, train, eval)', async () => {
  const r = await transform(readModel(GPT_TINY), { density: 0.25, emitTrain: true });
  assert.deepEqual(r.report.cuda!.map((c) => [c.graph, c.fallbacks.length]), [['forward', 0], ['train', 0], ['eval', 0]]);
  assert.equal(r.report.cuda![0]!.nodes, r.model.graph!.node.length);
  assert.match(r.summaryText, /cuda: train graph, all \d+ nodes have CUDA kernels/);
});

test('cuda readiness: a node without a CUDA kernel is named in the report and the summary', async () => {
  const m = mlpModel();
  // Hardmax has CPU kernels only (onnxruntime OperatorKernels.md); put it on the output.
  const g = m.graph!;
  g.node.push(node('Hardmax', ['y'], ['y_hard'], { axis: -1 }, 'hardmax_out'));
  g.output[0]!.name = 'y_hard';
  const dir = tempDir();
  const file = path.join(dir, 'mlp.onnx');
  fs.writeFileSync(file, encodeModel(m));
  const r = await transform(readModel(file), { density: 0.5 });
  const fwd = r.report.cuda!.find((c) => c.graph === 'forward')!;
  assert.deepEqual(fwd.fallbacks.map((f) => [f.op, f.node]), [['Hardmax', 'hardmax_out']]);
  assert.match(r.summaryText, /cuda: forward graph, 1 of \d+ nodes would fall back to CPU: Hardmax \(hardmax_out/);
});
