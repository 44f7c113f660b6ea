/**
 * Models from old converters train: TorchScript exports at opsets 7, 9 and 10 (fixtures/old-opset, static
 * shapes as those exporters wrote them) and an ONNX backend model at opset 6 (fixtures/real) are transformed,
 * upgraded to opset 13 by the train-step builder (src/normalize), and 5 AdamW steps on one batch lower the
 * loss (next-token cross-entropy for the LMs, MSE to seeded targets for the float-input models).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { readModel } from '../src/onnx/codec.js';
import { transform } from '../src/transform.js';
import { openBatchSource } from '../src/train/data.js';
import { createTrainer, feedsForBatch, type Feeds } from '../src/train/runner.js';
import { buildTrainStep, type TrainIO } from '../src/train/train-step.js';
import { REAL_FIXTURES, ROOT } from './helpers.js';

const OLD = path.join(ROOT, 'fixtures', 'old-opset');

function floatFeeds(io: TrainIO): Feeds {
  const t = (name: string, dims: number[], f: (i: number) => number) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => f(i)), dims);
  const x = io.modelInputs[0]!;
  return { [x.name]: t(x.name, x.shape as number[], Math.sin), [io.targets.name]: t(io.targets.name, io.targets.shape as number[], Math.cos) };
}

const CASES = [
  { file: path.join(OLD, 'lm_opset7.onnx'), loss: 'cross_entropy' as const, opset: 7, upgraded: ['Slice', 'Softmax', 'Split', 'Unsqueeze'] },
  { file: path.join(OLD, 'lm_opset9.onnx'), loss: 'cross_entropy' as const, opset: 9, upgraded: ['Softmax', 'Split'] },
  { file: path.join(OLD, 'cnn_opset10.onnx'), loss: 'mse' as const, opset: 10, upgraded: ['Clip', 'Pad'] },
  { file: path.join(REAL_FIXTURES, 'onnx_pytorch-converted_test_Linear_no_bias', 'model.onnx'), loss: 'mse' as const, opset: 6, upgraded: [] },
];

for (const c of CASES) {
  test(`opset ${c.opset}: ${path.basename(path.dirname(c.file)) === 'old-opset' ? path.basename(c.file) : 'test_Linear_no_bias'} transforms, upgrades to 13 and trains 5 steps with falling loss`, async () => {
    const input = readModel(c.file);
    const r = await transform(input, { density: 0.5 });
    const ts = buildTrainStep(r.model, input.baseDir, r.lrGroups, { loss: c.loss, optimizer: { kind: 'adamw' } });
    assert.equal(ts.opsetUpgrade.from, c.opset);
    assert.deepEqual(ts.opsetUpgrade.changes.map((l) => l.split(' ')[0]), c.upgraded);
    const feeds = c.loss === 'mse' ? floatFeeds(ts.io) : feedsForBatch(ts.io, openBatchSource('synthetic:count:16', { batch: 2, seq: 8, seed: 0, vocab: 64 }).next());
    const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model: r.model, baseDir: input.baseDir }, threads: 1 });
    const losses: number[] = [];
    try {
      for (let i = 0; i < 5; i++) losses.push((await tr.step(feeds, 1e-2)).loss);
    } finally {
      await tr.release();
    }
    assert.ok(losses.every(Number.isFinite), `losses ${losses.join(', ')}`);
    if (c.loss === 'cross_entropy') assert.ok(Math.abs(losses[0]! - Math.log(64)) < 0.5, `first loss ${losses[0]} ≈ ln 64`);
    assert.ok(losses[4]! < losses[0]! * 0.95, `loss ${losses.join(' → ')} should fall`);
  });
}

test('--emit-train on an opset-7 model: the report and summary list the opset upgrade of the train graph', async () => {
  const r = await transform(readModel(path.join(OLD, 'lm_opset7.onnx')), { density: 0.5, emitTrain: true });
  assert.deepEqual({ ...r.report.train_opset_upgrade, changes: r.report.train_opset_upgrade?.changes.map((c) => c.split(':')[0]) }, { from: 7, to: 13, changes: ['Slice ×3', 'Softmax ×1', 'Split ×1', 'Unsqueeze ×15'] });
  assert.match(r.summaryText, /train graph: opset 7 upgraded to 13: Slice ×3, Softmax ×1, Split ×1, Unsqueeze ×15/);
});
