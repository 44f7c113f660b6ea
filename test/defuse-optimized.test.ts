/**
 * Graphs written by onnxruntime's transformer optimizer (fixtures/ort-optimized, com.microsoft Attention,
 * SkipLayerNormalization, BiasGelu / FastGelu): de-fused they compute what the fused graph computes
 * (onnxruntime runs both); transformed, the hidden weights are found inside the de-fused Attention's QKV
 * weight, the norm gains inside SkipLayerNormalization, both attention scales are rewritten; the written
 * model holds ai.onnx ops only; 5 train steps lower the loss, both from the transformed model and from the
 * fused model handed straight to the train-step builder.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { normalizeForAnalysis } from '../src/normalize/index.js';
import { readModel } from '../src/onnx/codec.js';
import { transform } from '../src/transform.js';
import { openBatchSource } from '../src/train/data.js';
import { createTrainer, feedsForBatch } from '../src/train/runner.js';
import { buildTrainStep } from '../src/train/train-step.js';
import type { ModelProto } from 'onnx-buf';
import { ROOT } from './helpers.js';
import { floats, ids, runOrt } from './transform-helpers.js';

const DIR = path.join(ROOT, 'fixtures', 'ort-optimized');
const [B, S, VOCAB] = [2, 8, 128];

function feedsFor(name: string): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = { input_ids: ids(VOCAB, [B, S], 3) };
  // Second sequence padded after 5 tokens: the mask path of the de-fused Attention is exercised.
  if (name === 'bert') feeds.attention_mask = new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, (_, i) => (i < S || i % S < 5 ? 1n : 0n)), [B, S]);
  return feeds;
}

const FIXTURES = [
  { name: 'bert', file: 'bert_ort_opt.onnx', fused: { Attention: 2, SkipLayerNormalization: 4, BiasGelu: 2 }, qkv: ['Attention_0_qkv_weight', 'Attention_1_qkv_weight'] },
  { name: 'bert', file: 'bert_ort_opt_defaults.onnx', fused: { EmbedLayerNormalization: 1, Attention: 2, SkipLayerNormalization: 4, BiasGelu: 2 }, qkv: ['Attention_0_qkv_weight', 'Attention_1_qkv_weight'] },
  { name: 'gpt2', file: 'gpt2_ort_opt.onnx', fused: { Attention: 2, SkipLayerNormalization: 4, FastGelu: 2 }, qkv: ['h.0.c_attn.weight', 'h.1.c_attn.weight'] },
];

async function trainFiveSteps(model: ModelProto, baseDir: string, lrGroups: Parameters<typeof buildTrainStep>[2], name: string): Promise<number[]> {
  const ts = buildTrainStep(model, baseDir, lrGroups, { loss: 'cross_entropy', optimizer: { kind: 'adamw' } });
  const batch = openBatchSource('synthetic:count:16', { batch: B, seq: S, seed: 0, vocab: VOCAB }).next();
  const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model, baseDir }, threads: 1 });
  const losses: number[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const feeds = feedsForBatch(ts.io, batch);
      if (name === 'bert') feeds.attention_mask = new ort.Tensor('int64', new BigInt64Array(B * S).fill(1n), [B, S]);
      losses.push((await tr.step(feeds, 1e-2)).loss);
    }
  } finally {
    await tr.release();
  }
  return losses;
}

for (const fx of FIXTURES) {
  test(`onnxruntime-optimized ${fx.file}: de-fused graph equals the fused one; transform finds roles inside fused ops; 5 train steps lower the loss`, async () => {
    const input = readModel(path.join(DIR, fx.file));
    const counts: Record<string, number> = {};
    for (const n of input.model.graph!.node) if (n.domain === 'com.microsoft') counts[n.opType] = (counts[n.opType] ?? 0) + 1;
    assert.deepEqual(counts, fx.fused, 'the fixture holds the fused ops');

    const norm = normalizeForAnalysis(input.model);
    assert.deepEqual(norm.warnings, []);
    const [fused, plain] = [await runOrt(input.model, feedsFor(fx.name)), await runOrt(norm.model, feedsFor(fx.name))];
    const [a, b] = [floats(fused['logits']!), floats(plain['logits']!)];
    let worst = 0;
    a.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - b[i]!)); });
    assert.ok(worst < 1e-4, `${fx.name}: de-fused logits differ by ${worst}`);

    const r = await transform(input, { density: 0.25 });
    const nFused = Object.values(fx.fused).reduce((a, b) => a + b, 0);
    assert.equal(r.report.defused?.length, nFused);
    assert.ok(r.report.defused!.every((d) => d.rule.startsWith('defuse/') && d.into.length > 0));
    assert.match(r.summaryText, new RegExp(`de-fused ${nFused} onnxruntime contrib node\\(s\\) into ai\\.onnx ops`));
    assert.ok(r.model.graph!.node.every((n) => n.domain === ''), 'written model: ai.onnx ops only');
    const role = (name: string) => r.report.tensors.find((t) => t.name === name);
    for (const w of fx.qkv) {
      assert.equal(role(w)?.role, 'hidden', `${w} is the QKV weight of a de-fused Attention`);
      assert.equal(role(w)?.fan_in, 32);
      assert.equal(role(w)?.density, 0.25);
    }
    assert.equal(r.report.tensors.filter((t) => t.role === 'hidden').length, 8);
    assert.equal(r.report.tensors.filter((t) => t.role === 'norm_scale').length, 5, 'SkipLayerNormalization gains and the embedding / final norm');
    assert.equal(r.report.tensors.filter((t) => t.role === 'unknown').length, 0);
    assert.equal(role(fx.name === 'bert' ? 'word.weight' : 'wte.weight')?.role, 'embedding');
    assert.equal(role(fx.name === 'bert' ? 'pos.weight' : 'wpe.weight')?.role, 'position_embedding');
    assert.equal(r.report.attention.length, 2);
    for (const s of r.report.attention) {
      assert.equal(s.d_head, 8);
      assert.ok(Math.abs(s.before - 1 / Math.sqrt(8)) < 1e-6 && s.after === 1 / 8, `scale ${s.before} → ${s.after}`);
    }
    const out = await runOrt(r.model, feedsFor(fx.name));
    assert.ok(floats(out['logits']!).every(Number.isFinite));

    const fromTransformed = await trainFiveSteps(r.model, input.baseDir, r.lrGroups, fx.name);
    assert.ok(fromTransformed[4]! < fromTransformed[0]! - 0.05, `${fx.name}: loss ${fromTransformed.join(', ')} should fall`);
    // The train-step builder normalizes too: the fused model itself trains (dense SP groups: no masks to find).
    const sp = await transform(input, { rules: 'sp' });
    const fromFused = await trainFiveSteps(input.model, input.baseDir, sp.lrGroups, fx.name);
    assert.ok(fromFused.every(Number.isFinite) && fromFused[4]! < fromFused[0]! - 0.05, `${fx.name} (fused input): loss ${fromFused.join(', ')} should fall`);
  });
}
