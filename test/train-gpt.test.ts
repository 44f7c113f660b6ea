/**
 * End to end: the fixture GPT and a real exported LM (Hugging Face GPT-2, dynamo export), transformed at
 * density 0.25 (SµPar rules), trained by the train-step graph on onnxruntime CPU. Checks: loss falls on a
 * learnable synthetic task; masked weights are exactly 0 after 50 steps; the first AdamW step moves each
 * entry by lr × its group's multiplier (m̂/√v̂ = sign(g) at t = 1); identical losses run to run; the
 * graphs need no CPU fallback on CUDA; `save` writes a model whose ORT forward reproduces the loss.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { encodeModel, readModel, writeModel, type LoadedModel } from '../src/onnx/codec.js';
import { tensorToFloat32 } from '../src/onnx/tensor.js';
import { maskEntries } from '../src/passes/mask-storage.js';
import { transform } from '../src/transform.js';
import { openBatchSource, type TokenBatch } from '../src/train/data.js';
import { findValueShape } from '../src/train/graph-util.js';
import { formatKernelReport } from '../src/train/kernels.js';
import { createTrainer, feedsForBatch } from '../src/train/runner.js';
import { buildTrainStep, type TrainStep, type TrainStepOptions } from '../src/train/train-step.js';
import { ROOT, REAL_FIXTURES, tempDir } from './helpers.js';

interface Prepared { forward: LoadedModel; ts: TrainStep; batch: number; seq: number }

async function prepare(file: string, opts: Partial<TrainStepOptions> = {}, batch = 4, seq = 16): Promise<Prepared> {
  const loaded = readModel(file);
  const r = await transform(loaded, { density: 0.25, seed: 1 });
  const forward = { ...loaded, model: r.model };
  const ts = buildTrainStep(r.model, loaded.baseDir, r.lrGroups, { loss: 'cross_entropy', optimizer: { kind: 'adamw' }, ...opts });
  const [b, s] = ts.io.modelInputs[0]!.shape;
  return { forward, ts, batch: typeof b === 'number' ? b : batch, seq: typeof s === 'number' ? s : seq };
}

function batches(p: Prepared, n: number, seed = 0): TokenBatch[] {
  const vocab = Number(findValueShape(p.forward.model.graph!, p.ts.io.output)!.at(-1));
  const src = openBatchSource(`synthetic:count:${Math.min(16, vocab)}`, { batch: p.batch, seq: p.seq, seed, vocab });
  return Array.from({ length: n }, () => src.next());
}

async function trainLosses(p: Prepared, data: TokenBatch[], lr: number): Promise<{ losses: number[]; params: Map<string, Float32Array> }> {
  const tr = await createTrainer({ train: p.ts.train, io: p.ts.io, forward: p.forward, threads: 1 });
  const losses: number[] = [];
  for (const b of data) losses.push((await tr.step(feedsForBatch(p.ts.io, b), lr)).loss);
  const params = new Map(p.ts.io.params.map((x) => [x.name, Float32Array.from(tr.param(x.name))]));
  await tr.release();
  return { losses, params };
}

/** Loss falls, masked entries are exactly zero after 50 steps, no CUDA fallbacks, same losses twice. */
async function checkEndToEnd(p: Prepared, lr: number, minMasked = 8): Promise<void> {
  assert.equal(p.ts.kernelReport.train.fallbacks.length, 0, formatKernelReport(p.ts.kernelReport.train));
  assert.equal(p.ts.kernelReport.eval.fallbacks.length, 0, formatKernelReport(p.ts.kernelReport.eval));
  const data = batches(p, 50);
  const { losses, params } = await trainLosses(p, data, lr);
  const first = losses[0]!;
  const last5 = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  const vocab = Number(findValueShape(p.forward.model.graph!, p.ts.io.output)!.at(-1));
  assert.ok(Math.abs(first - Math.log(vocab)) < 0.3, `initial loss ${first} ≈ ln ${vocab}`);
  assert.ok(last5 < 0.6 * first, `loss ${first.toFixed(3)} → ${last5.toFixed(3)} (mean of last 5)`);
  const masked = p.ts.io.params.filter((x) => x.mask);
  assert.ok(masked.length >= minMasked, `${masked.length} masked parameters`);
  for (const x of masked) {
    const mask = maskEntries(p.forward.model.graph!.initializer.find((t) => t.name === x.mask)!, x.shape, p.forward.baseDir); // bool or bit-packed
    const w = params.get(x.name)!;
    let pruned = 0; let movedKept = 0;
    mask.forEach((m, i) => { if (!m) { assert.ok(w[i] === 0, `${x.name}[${i}] = ${w[i]} under the mask`); pruned++; } else if (w[i] !== 0) movedKept++; });
    assert.ok(Math.abs(pruned / mask.length - 0.75) < 0.01 && movedKept > 0.9 * (mask.length - pruned), x.name);
  }
  const again = await trainLosses(p, data.slice(0, 5), lr);
  assert.deepEqual(again.losses, losses.slice(0, 5), 'same seed and data → bitwise identical losses');
}

/** First AdamW step with wd = 0: |Δp| = lr·mult·|g|/(|g| + ε) ≈ lr·mult wherever |g| ≫ ε. */
async function checkFirstAdamStep(file: string): Promise<void> {
  const p = await prepare(file, { exposeGradients: true, optimizer: { kind: 'adamw', weightDecay: 0, eps: 1e-8 } });
  const tr = await createTrainer({ train: p.ts.train, io: p.ts.io, forward: p.forward, threads: 1 });
  const before = new Map(p.ts.io.params.map((x) => [x.name, Float32Array.from(tr.param(x.name))]));
  const lr = 1e-3;
  const r = await tr.step(feedsForBatch(p.ts.io, batches(p, 1)[0]!), lr);
  const mults = new Set<number>();
  for (const x of p.ts.io.params) {
    const g = r.grads[x.name]!;
    const after = tr.param(x.name);
    const old = before.get(x.name)!;
    let checked = 0;
    for (let i = 0; i < g.length; i++) {
      if (Math.abs(g[i]!) < 1e-4) continue;
      const ratio = Math.abs(after[i]! - old[i]!) / (lr * x.group.lr_adam);
      assert.ok(Math.abs(ratio - 1) < 2e-3, `${x.name}[${i}]: |Δp|/(lr·${x.group.lr_adam}) = ${ratio}`);
      checked++;
    }
    if (checked > 0) mults.add(x.group.lr_adam);
  }
  assert.ok(mults.size >= 2, `multipliers exercised: ${[...mults].join(', ')}`);
  await tr.release();
}

const GPT_TINY = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');
const HF_GPT2 = path.join(REAL_FIXTURES, 'hf_gpt2_w32_dynamo.onnx');

test('fixture GPT at density 0.25: 50 AdamW steps lower the loss, pruned weights stay 0, deterministic, CUDA-clean', async () => {
  await checkEndToEnd(await prepare(GPT_TINY), 3e-3);
});

test('fixture GPT: the first AdamW step moves each entry by lr × its LR-group multiplier', async () => {
  await checkFirstAdamStep(GPT_TINY);
});

test('real export (HF GPT-2, torch dynamo, fixed [2, 8] input): trains, stays sparse, deterministic, CUDA-clean', async () => {
  await checkEndToEnd(await prepare(HF_GPT2), 3e-3);
});

test('real export (HF GPT-2): first AdamW step follows the LR groups', async () => {
  await checkFirstAdamStep(HF_GPT2);
});

test('more real exports: Llama (tied, RMSNorm, rotary, GQA) and Megatron GPT-2 (opset 12, upgraded to 13; 4 inputs) train', async () => {
  await checkEndToEnd(await prepare(path.join(REAL_FIXTURES, 'hf_llama_w32_tied_dynamo.onnx')), 3e-3);
  const megatron = await prepare(path.join(REAL_FIXTURES, 'ort_gpt2_megatron.onnx'), {}, 4, 16);
  assert.deepEqual(megatron.ts.io.modelInputs.map((v) => v.name), ['input_ids', 'position_ids', 'attention_mask', 'past_0']);
  assert.equal(megatron.ts.opsetUpgrade.from, 12);
  await checkEndToEnd(megatron, 1e-2, 4);
});

test('save() writes the forward model with trained weights: its ORT forward reproduces the next step\'s loss and extra output; masks intact', async () => {
  const p = await prepare(GPT_TINY, { extraOutputs: ['logits'] }, 2, 8);
  const data = batches(p, 6);
  const tr = await createTrainer({ train: p.ts.train, io: p.ts.io, forward: p.forward, threads: 1 });
  for (const b of data.slice(0, 5)) await tr.step(feedsForBatch(p.ts.io, b), 3e-3);
  const file = path.join(tempDir(), 'trained.onnx');
  await tr.save(file);
  const next = await tr.step(feedsForBatch(p.ts.io, data[5]!), 3e-3); // loss with the saved weights
  await tr.release();
  const saved = readModel(file);
  for (const t of p.forward.model.graph!.initializer.filter((x) => x.name.endsWith('__mask'))) {
    const s = saved.model.graph!.initializer.find((x) => x.name === t.name)!;
    assert.deepEqual(tensorToFloat32(s, saved.baseDir), tensorToFloat32(t, p.forward.baseDir), t.name);
  }
  const session = await ort.InferenceSession.create(file);
  const b = data[5]!;
  const out = await session.run({ input_ids: new ort.Tensor('int64', b.input, [b.batch, b.seq]) });
  await session.release();
  const z = out['logits']!.data as Float32Array;
  let loss = 0;
  for (let r = 0; r < b.batch * b.seq; r++) {
    const row = Array.from(z.subarray(r * 256, (r + 1) * 256), Number);
    const m = Math.max(...row);
    loss += m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[Number(b.target[r])]!;
  }
  loss /= b.batch * b.seq;
  assert.ok(Math.abs(loss - next.loss) < 1e-4, `saved model loss ${loss} vs train step ${next.loss}`);
  // extraOutputs: the train step exposes the forward value it computed before the update.
  const extra = next.extras['logits']!.data as Float32Array;
  assert.deepEqual(next.extras['logits']!.dims, [b.batch, b.seq, 256]);
  let worst = 0;
  extra.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - z[i]!)); });
  assert.ok(worst < 1e-4, `extra 'logits' vs saved model forward: max diff ${worst}`);
});

test('MSE regression on a real MLP export (wake-word head: Gemm, decomposed LayerNorm, Relu, Sigmoid): loss falls 10×', async () => {
  const loaded = readModel(path.join(REAL_FIXTURES, 'owwjs_hello_deepa_mlp.onnx'));
  const r = await transform(loaded, { density: 0.25, seed: 1 });
  const ts = buildTrainStep(r.model, loaded.baseDir, r.lrGroups, { loss: 'mse', optimizer: { kind: 'adamw' } });
  assert.equal(ts.kernelReport.train.fallbacks.length, 0, formatKernelReport(ts.kernelReport.train));
  const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model: r.model, baseDir: loaded.baseDir }, threads: 1 });
  const input = ts.io.modelInputs[0]!;
  const x = new ort.Tensor('float32', Float32Array.from({ length: 25 * 96 }, (_, i) => Math.sin(i * 0.37)), [1, 25, 96]);
  const feeds = { [input.name]: x, [ts.io.targets.name]: new ort.Tensor('float32', Float32Array.of(0.9), [1, 1]) };
  const losses: number[] = [];
  for (let t = 0; t < 50; t++) losses.push((await tr.step(feeds, 3e-3)).loss);
  await tr.release();
  assert.ok(losses.at(-1)! < losses[0]! / 10, `MSE ${losses[0]} → ${losses.at(-1)}`);
});

test('a written train graph runs from its file: I/O names come from its supar.train_io metadata; same losses', async () => {
  const p = await prepare(GPT_TINY, {}, 2, 8);
  const file = path.join(tempDir(), 'gpt.train.onnx');
  writeModel(p.ts.train, file);
  const data = batches(p, 3);
  const fromFile = await createTrainer({ train: file, forward: p.forward, threads: 1 });
  const losses: number[] = [];
  for (const b of data) losses.push((await fromFile.step(feedsForBatch(p.ts.io, b), 3e-3)).loss);
  await fromFile.release();
  assert.deepEqual(losses, (await trainLosses(p, data, 3e-3)).losses);
});

test('fixture GPT: train-graph gradients (loss head seed + autodiff + masks) match central differences of the eval graph', async () => {
  const p = await prepare(GPT_TINY, { exposeGradients: true, optimizer: { kind: 'sgd' } }, 2, 8);
  const b = batches(p, 1)[0]!;
  const feeds = feedsForBatch(p.ts.io, b);
  const tr = await createTrainer({ train: p.ts.train, io: p.ts.io, forward: p.forward, threads: 1 });
  const params = new Map(p.ts.io.params.map((x) => [x.name, Float32Array.from(tr.param(x.name))]));
  const { grads } = await tr.step(feeds, 0);
  await tr.release();
  const evalSession = await ort.InferenceSession.create(encodeModel(p.ts.eval), { intraOpNumThreads: 1 });
  const lossWith = async (name: string, i: number, delta: number): Promise<number> => {
    const all: Record<string, ort.Tensor> = { ...feeds };
    for (const x of p.ts.io.params) {
      const v = Float32Array.from(params.get(x.name)!);
      if (x.name === name) v[i]! += delta;
      all[x.name] = new ort.Tensor('float32', v, x.shape);
    }
    return ((await evalSession.run(all))[p.ts.io.loss]!.data as Float32Array)[0]!;
  };
  const picks = ['transformer.wte.weight', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.1.mlp.c_proj.weight', 'transformer.ln_f.weight', 'lm_head.weight'];
  for (const name of picks) {
    const g = grads[name]!;
    let i = 0;
    g.forEach((v, k) => { if (Math.abs(v) > Math.abs(g[i]!)) i = k; });
    const h = 1e-2;
    const fd = ((await lossWith(name, i, h)) - (await lossWith(name, i, -h))) / (2 * h);
    assert.ok(Math.abs(g[i]!) > 1e-3, `${name}: largest gradient ${g[i]} is not informative`);
    assert.ok(Math.abs(fd - g[i]!) < 0.01 * Math.abs(g[i]!) + 2e-5, `${name}[${i}]: grad ${g[i]} vs FD ${fd}`);
  }
  await evalSession.release();
});
