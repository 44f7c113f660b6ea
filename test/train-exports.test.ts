/**
 * Exports that used to stop before training now build a train step that onnxruntime loads and runs:
 * - TorchScript rotary LMs with the default (sdpa) attention, dynamic and static shapes, and GPT-2 with
 *   past key/value inputs (fixtures/shapes, no value_info: ranks come from the shared shape inference);
 * - a graph whose node list is not topologically sorted (onnxruntime's gpt2_one_layer test model, which
 *   reads `query.1` before its producer; and GPT-2-with-past with its Transposes moved to the end): the
 *   train-step builder sorts first, so no node input dangles, and the loss equals the sorted graph's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { LoadedModel } from '../src/onnx/codec.js';
import { readModel } from '../src/onnx/codec.js';
import { openBatchSource } from '../src/train/data.js';
import { createTrainer, feedsForBatch } from '../src/train/runner.js';
import { buildTrainStep } from '../src/train/train-step.js';
import { transform } from '../src/transform.js';
import { checkLoads } from '../src/onnx/load-check.js';
import { encodeModel } from '../src/onnx/codec.js';
import { REAL_FIXTURES, ROOT } from './helpers.js';

const SHAPES = path.join(ROOT, 'fixtures', 'shapes');

async function losses(input: LoadedModel, steps: number, vocab: number, seq: number): Promise<number[]> {
  const r = await transform(input, { density: 0.25, seed: 0 });
  const ts = buildTrainStep(r.model, input.baseDir, r.lrGroups, { loss: 'cross_entropy', optimizer: { kind: 'adamw' } });
  await checkLoads(encodeModel(ts.train), 'train-step graph');
  await checkLoads(encodeModel(ts.eval), 'eval graph');
  const batch = openBatchSource(`synthetic:count:${Math.min(16, vocab)}`, { batch: 2, seq, seed: 0, vocab }).next();
  const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { ...input, model: r.model }, threads: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < steps; i++) out.push((await tr.step(feedsForBatch(ts.io, batch), 1e-2)).loss);
  } finally {
    await tr.release();
  }
  return out;
}

for (const f of ['llama_sdpa_ts', 'mistral_sdpa_ts', 'qwen2_sdpa_ts', 'llama_static_ts', 'gpt2_past_ts']) {
  test(`${f}: --emit-train builds a train step without value_info; 5 steps, the loss falls from ≈ ln 128`, async () => {
    const l = await losses(readModel(path.join(SHAPES, `${f}.onnx`)), 5, 128, 8);
    assert.ok(l.every(Number.isFinite), l.join(', '));
    assert.ok(Math.abs(l[0]! - Math.log(128)) < 0.5, `first loss ${l[0]}`);
    assert.ok(l[4]! < l[0]! - 0.05, `loss ${l[0]} → ${l[4]}`);
  });
}

test('unsorted node list: the train step reads no dangling input and trains as the sorted graph does', async () => {
  const sorted = readModel(path.join(SHAPES, 'gpt2_past_ts.onnx'));
  const shuffled = readModel(path.join(SHAPES, 'gpt2_past_ts.onnx'));
  const g = shuffled.model.graph!;
  const moved = g.node.filter((n) => n.opType === 'Transpose').reverse();
  g.node = [...g.node.filter((n) => n.opType !== 'Transpose'), ...moved];
  const a = await losses(sorted, 3, 128, 8);
  const b = await losses(shuffled, 3, 128, 8);
  b.forEach((x, i) => assert.ok(Math.abs(x - a[i]!) < 1e-5, `step ${i}: ${x} vs ${a[i]}`));
});

test("ort_gpt2_one_layer (reads 'query.1' before its producer, past input, opset 11): train step loads and runs", async () => {
  const l = await losses(readModel(path.join(REAL_FIXTURES, 'ort_gpt2_one_layer.onnx')), 2, 4, 4);
  assert.ok(l.every(Number.isFinite), l.join(', '));
});
