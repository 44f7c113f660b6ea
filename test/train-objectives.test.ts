/**
 * Objectives beyond next-token and the model's own shapes (src/train/objective.ts, feeds.ts, sizes.ts):
 * - the objective picked from inputs and outputs of real exports (fixtures/objectives, fixtures/hf);
 * - the loss each objective's graph computes equals a hand computation on the forward model's own output
 *   (class CE = −mean log-softmax[label]; MSE = mean (y − t)²; MLM CE over the masked positions only);
 * - `--emit-train` writes the loss graph of the objective `train` picks;
 * - the CLI: a static-shape export trains with default flags, a conflicting --batch is one exact line, a ViT,
 *   a float-audio classifier, a pooled-output encoder and a GPT-2 with KV-cache inputs train 5 steps with
 *   falling loss, .npy inputs and labels train, and an onnxruntime run-time failure is exit 6 without a stack.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../src/analysis/index.js';
import { encodeModel, readModel, writeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { transform } from '../src/transform.js';
import { openFeedSource } from '../src/train/feeds.js';
import { probeCausal } from '../src/train/forward-probe.js';
import { resolveSizes } from '../src/train/sizes.js';
import { writeNpyFile } from '../src/train/npy.js';
import { objectiveOfModel, type ObjectiveKind } from '../src/train/objective.js';
import { describeOrtMessage } from '../src/train/ort-errors.js';
import { createTrainer, trainIOFromMetadata, type Feeds } from '../src/train/runner.js';
import { buildTrainStep } from '../src/train/train-step.js';
import { runCli } from './cli-helpers.js';
import { ROOT, tempDir } from './helpers.js';

const OBJ = path.join(ROOT, 'fixtures', 'objectives');
const HF = path.join(ROOT, 'fixtures', 'hf');

function objectiveOf(file: string, requested?: ObjectiveKind) {
  const loaded = readModel(file);
  return objectiveOfModel(loaded.model, { requested, readoutOutput: analyzeModel(loaded.model, loaded.baseDir).logits?.output });
}

test('objective from the model: next-token for LMs (static, KV cache), class for ViT and wav2vec2, MSE for pooled and hidden states', () => {
  const cases: [string, ObjectiveKind, string, number | undefined][] = [
    [path.join(OBJ, 'gpt2_static.onnx'), 'next-token', 'logits', 128],
    [path.join(OBJ, 'gpt2_kv.onnx'), 'next-token', 'logits', 128],
    [path.join(HF, 'bert_ts.onnx'), 'next-token', 'logits', 128],
    [path.join(HF, 'vit_ts.onnx'), 'class', 'logits', 10],
    [path.join(HF, 'vit_dynamo.onnx'), 'class', 'logits', 10],
    [path.join(OBJ, 'wav2vec2_cls.onnx'), 'class', 'logits', 3],
    [path.join(OBJ, 'bert_pooled.onnx'), 'mse', 'pooler_output', undefined],
    [path.join(HF, 't5_encoder_ts.onnx'), 'mse', 'last_hidden_state', undefined],
  ];
  for (const [file, kind, output, classes] of cases) {
    const o = objectiveOf(file);
    assert.equal(o.kind, kind, path.basename(file));
    assert.equal(o.output, output, path.basename(file));
    if (classes !== undefined) assert.equal(o.classes, classes, path.basename(file));
  }
  assert.equal(objectiveOf(path.join(HF, 'bert_ts.onnx'), 'mlm').kind, 'mlm');
  assert.throws(() => objectiveOf(path.join(HF, 'vit_ts.onnx'), 'next-token'), /--objective next-token: the model has no integer token input \(inputs: pixel_values\); use --objective class or mse/);
  assert.throws(() => objectiveOf(path.join(OBJ, 'bert_pooled.onnx'), 'mlm'), /--objective mlm: output 'pooler_output' \[batch, 32\] is not per-token logits/);
});

async function transformed(file: string): Promise<{ model: ReturnType<typeof readModel>['model']; baseDir: string; lrGroups: Awaited<ReturnType<typeof transform>>['lrGroups']; readout?: string }> {
  const loaded = readModel(file);
  const r = await transform(loaded, { density: 0.5, seed: 1 });
  return { model: r.model, baseDir: loaded.baseDir, lrGroups: r.lrGroups, readout: r.analysis.logits?.output };
}

/** The loss of the first train step (the forward before the update) and the forward model's output on the same feeds. */
async function lossAndOutput(file: string, requested?: ObjectiveKind): Promise<{ loss: number; y: Float32Array; dims: readonly number[]; feeds: Feeds; targets: string }> {
  const t = await transformed(file);
  const objective = objectiveOfModel(t.model, { requested, readoutOutput: t.readout });
  const ts = buildTrainStep(t.model, t.baseDir, t.lrGroups, { objective, optimizer: { kind: 'adamw' } });
  const feeds = openFeedSource(ts.io, objective, { seed: 3, batch: 3, seq: 8 }).next();
  const trainer = await createTrainer({ train: ts.train, io: ts.io, forward: t, threads: 1 });
  const { loss } = await trainer.step(feeds, 1e-3);
  await trainer.release();
  const fwd = await ort.InferenceSession.create(encodeModel(t.model), { executionProviders: ['cpu'] });
  const inputs = Object.fromEntries(Object.entries(feeds).filter(([k]) => fwd.inputNames.includes(k)));
  const out = (await fwd.run(inputs, [objective.output]))[objective.output]!;
  await fwd.release();
  return { loss, y: out.data as Float32Array, dims: out.dims, feeds, targets: ts.io.targets.name };
}

/** −mean over rows with a target ≠ −100 of log-softmax(z_row)[target], in float64. */
function crossEntropy(z: Float32Array, classes: number, targets: ArrayLike<bigint>): number {
  let sum = 0;
  let n = 0;
  for (let r = 0; r < targets.length; r++) {
    const t = Number(targets[r]);
    if (t === -100) continue;
    const row = Array.from(z.subarray(r * classes, (r + 1) * classes));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    sum += lse - row[t]!;
    n++;
  }
  return sum / n;
}

test('class CE on a ViT equals −mean log-softmax of its own logits at the labels; labels are the seeded cluster ids', async () => {
  const r = await lossAndOutput(path.join(HF, 'vit_ts.onnx'));
  assert.deepEqual(r.dims, [3, 10]);
  const labels = r.feeds[r.targets]!.data as BigInt64Array;
  assert.equal(labels.length, 3);
  assert.ok(labels.every((y) => y >= 0n && y < 10n));
  const hand = crossEntropy(r.y, 10, labels);
  assert.ok(Math.abs(r.loss - hand) <= 1e-5 * hand, `graph ${r.loss} vs hand ${hand}`);
  assert.ok(hand > 1 && hand < 4, `near ln 10 at init (${hand})`);
});

test('MSE on a pooled-output encoder equals mean (y − t)² of its own pooled vectors', async () => {
  const r = await lossAndOutput(path.join(OBJ, 'bert_pooled.onnx'));
  assert.deepEqual(r.dims, [3, 32]);
  const t = r.feeds[r.targets]!.data as Float32Array;
  assert.equal(t.length, 96);
  let s = 0;
  for (let i = 0; i < t.length; i++) s += (r.y[i]! - t[i]!) ** 2;
  const hand = s / t.length;
  assert.ok(Math.abs(r.loss - hand) <= 1e-5 * hand, `graph ${r.loss} vs hand ${hand}`);
  assert.deepEqual(Array.from(r.feeds.attention_mask!.data as BigInt64Array), new Array(24).fill(1n), 'attention_mask all ones');
  assert.deepEqual(Array.from(r.feeds.token_type_ids!.data as BigInt64Array), new Array(24).fill(0n), 'token_type_ids zeros');
});

test('MLM: the loss is CE over the masked positions only (15 %, ≥ 1 per row), the inputs carry the mask token there', async () => {
  const r = await lossAndOutput(path.join(HF, 'bert_ts.onnx'), 'mlm');
  const targets = r.feeds[r.targets]!.data as BigInt64Array;
  const input = r.feeds.input_ids!.data as BigInt64Array;
  const masked = [...targets.keys()].filter((i) => targets[i] !== -100n);
  for (let row = 0; row < 3; row++) assert.ok(masked.some((i) => Math.floor(i / 8) === row), `row ${row} has a masked position`);
  assert.ok(masked.some((i) => input[i] === 127n), 'mask token 127 (the last id) appears at a masked position');
  for (let i = 0; i < targets.length; i++) if (targets[i] === -100n) assert.ok(input[i]! < 16n, 'unmasked positions keep the synthetic tokens');
  const hand = crossEntropy(r.y, 128, targets);
  assert.ok(Math.abs(r.loss - hand) <= 1e-5 * hand, `graph ${r.loss} vs hand ${hand}`);
});

test('causality probe: BERT (MLM) is not causal, GPT-2 is; the mlm hint rests on it', async () => {
  for (const [file, causal] of [[path.join(HF, 'bert_ts.onnx'), false], [path.join(OBJ, 'gpt2_static.onnx'), true]] as const) {
    const loaded = readModel(file);
    const o = objectiveOfModel(loaded.model);
    const ts = buildTrainStep(loaded.model, loaded.baseDir, { format: 'supar-lr-groups/1', rules: 'none', hyperparameters: { sigma_base: 0.02, eta_base: 1, alpha_input: 1, alpha_output: 1 }, m_d: 1, density: 1, seed: 0, groups: [] }, { objective: o, optimizer: { kind: 'adamw' } });
    const feeds = openFeedSource(ts.io, o, { seed: 0, batch: 2, seq: 8 }).next();
    assert.equal(await probeCausal(loaded.model, feeds, o.tokenInput!, o.output, o.classes!), causal, path.basename(file));
  }
});

test('--emit-train writes the loss graph of the objective train picks (class targets int64 [batch], MSE float of the output shape)', async () => {
  const cases: [string, ObjectiveKind, number, string][] = [
    [path.join(HF, 'vit_ts.onnx'), 'class', DataType.INT64, 'batch'],
    [path.join(OBJ, 'bert_pooled.onnx'), 'mse', DataType.FLOAT, 'batch,32'],
    [path.join(OBJ, 'gpt2_static.onnx'), 'next-token', DataType.INT64, '2,8'],
  ];
  for (const [file, kind, elemType, shape] of cases) {
    const r = await transform(readModel(file), { density: 0.5, seed: 1, emitTrain: true });
    const io = trainIOFromMetadata(r.train!.train, file);
    assert.equal(io.objective, kind, path.basename(file));
    assert.equal(io.lossKind, kind === 'mse' ? 'mse' : 'cross_entropy');
    assert.equal(io.targets.elemType, elemType, path.basename(file));
    assert.equal(io.targets.shape.join(','), shape, path.basename(file));
  }
  const mlm = await transform(readModel(path.join(HF, 'bert_ts.onnx')), { density: 0.5, seed: 1, emitTrain: { objectiveKind: 'mlm' } });
  assert.equal(trainIOFromMetadata(mlm.train!.train, 'bert').objective, 'mlm');
});

async function transformedFile(file: string, dir: string): Promise<string> {
  const loaded = readModel(file);
  const r = await transform(loaded, { density: 0.5, seed: 1 });
  const out = path.join(dir, path.basename(file).replace(/\.onnx$/, '.supar.onnx'));
  writeModel(r.model, out);
  return out;
}

function losses(csv: string): number[] {
  return fs.readFileSync(csv, 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[1]));
}

test('CLI: a static-shape export trains with default flags; a conflicting --batch is one line naming the model\'s size (train and coord-check)', async () => {
  const dir = tempDir();
  const model = await transformedFile(path.join(OBJ, 'gpt2_static.onnx'), dir);
  const csv = path.join(dir, 'loss.csv');
  const r = await runCli(['train', model, '--steps', '5', '--log', csv]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /batch 2×8/);
  assert.match(r.stderr, /^objective: next-token cross-entropy on 'logits' \(token input 'input_ids' and per-token logits 'logits' \[2, 8, 128\]/m);
  const l = losses(csv);
  assert.ok(l[4]! < l[0]!, `loss falls: ${l}`);
  const bad = await runCli(['train', model, '--steps', '1', '--batch', '8']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "error: --batch 8: the model's input 'input_ids' [2, 8] has a fixed batch of 2; omit --batch or pass --batch 2\n");
  const cc = await runCli(['coord-check', path.join(OBJ, 'gpt2_static.onnx'), '--batch', '8', '--out', path.join(dir, 'cc')]);
  assert.equal(cc.code, 2);
  assert.match(cc.stderr, /^error: --batch 8: the model's input 'input_ids' \[2, 8\] has a fixed batch of 2; omit --batch or pass --batch 2$/m);
  assert.doesNotMatch(cc.stderr, /unexpected error|at .*\.ts:\d+/);
  const ccOk = await runCli(['coord-check', path.join(OBJ, 'gpt2_static.onnx'), '--densities', '1,0.5', '--rules', 'supar', '--steps', '2', '--out', path.join(dir, 'cc')]);
  assert.equal(ccOk.code, 0, ccOk.stderr);
  assert.match(ccOk.stderr, /^objective: next-token cross-entropy on 'logits'/m, 'coord-check says which objective');
  const cc1 = JSON.parse(fs.readFileSync(path.join(dir, 'cc', 'coord-check.json'), 'utf8')) as { losses: { losses: number[] }[] };
  assert.ok(cc1.losses.every((r) => r.losses.length === 2 && r.losses.every(Number.isFinite)), 'coord-check ran on the static export');
});

test('sizes: symbolic sums (past + sequence) resolve, an empty past is fed, a fixed past is refused, dynamic image dims ask for --seq', () => {
  const kv = [
    { name: 'input_ids', elemType: DataType.INT64, shape: ['batch', 'sequence'] },
    { name: 'attention_mask', elemType: DataType.INT64, shape: ['batch', 'past_sequence + sequence'] },
    { name: 'past_key_values.0.key', elemType: DataType.FLOAT, shape: ['batch', 4, 'past_sequence', 8] },
  ];
  const s = resolveSizes(kv, 'input_ids', { batch: 3, seq: 5 });
  assert.deepEqual(Object.fromEntries(s.inputShapes), { input_ids: [3, 5], attention_mask: [3, 5], 'past_key_values.0.key': [3, 4, 0, 8] });
  const fixedPast = [kv[0]!, { name: 'past_key_values.0.key', elemType: DataType.FLOAT, shape: [2, 4, 3, 8] }];
  assert.throws(() => resolveSizes(fixedPast, 'input_ids', {}), /input 'past_key_values\.0\.key' \[2, 4, 3, 8\] is a KV cache with a fixed past length; training runs with an empty past \(length 0\)/);
  assert.throws(() => resolveSizes([{ name: 'input_ids', elemType: DataType.INT64, shape: [2, 8] }], 'input_ids', { seq: 4 }),
    /^UsageError: --seq 4: the model's input 'input_ids' \[2, 8\] has a fixed length of 8; omit --seq or pass --seq 8$/);
  const audio = resolveSizes([{ name: 'input_values', elemType: DataType.FLOAT, shape: ['batch', 'samples'] }], undefined, {});
  assert.deepEqual(audio.inputShapes.get('input_values'), [8, 1600], 'audio defaults: batch 8, 1600 samples');
  assert.throws(() => resolveSizes([{ name: 'pixel_values', elemType: DataType.FLOAT, shape: ['batch', 3, 'height', 'width'] }], undefined, {}),
    /input 'pixel_values' \[batch, 3, height, width\]: dim 'height' is dynamic and nothing sets it; pass --seq N/);
});

test('CLI: ViT and a float-audio classifier train 5 steps with default flags on seeded synthetic inputs, the loss falling every step', async () => {
  const dir = tempDir();
  for (const file of [path.join(HF, 'vit_ts.onnx'), path.join(OBJ, 'wav2vec2_cls.onnx')]) {
    const model = await transformedFile(file, dir);
    const csv = path.join(dir, 'loss.csv');
    const r = await runCli(['train', model, '--steps', '5', '--log', csv]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^objective: class cross-entropy on 'logits'/m);
    const l = losses(csv);
    assert.ok(l.every((x, i) => Number.isFinite(x) && (i === 0 || x < l[i - 1]!)), `${path.basename(file)}: loss falls at every step: ${l}`);
  }
});

test('CLI: a pooled-output encoder trains with MSE and a GPT-2 with KV-cache inputs trains on an empty past, losses falling', async () => {
  const dir = tempDir();
  for (const [file, objective] of [['bert_pooled.onnx', 'MSE to targets'], ['gpt2_kv.onnx', 'next-token cross-entropy']]) {
    const model = await transformedFile(path.join(OBJ, file), dir);
    const csv = path.join(dir, 'loss.csv');
    const r = await runCli(['train', model, '--steps', '5', '--batch', '4', '--seq', '16', '--log', csv]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`^objective: ${objective}`, 'm'));
    const l = losses(csv);
    assert.ok(l[4]! < l[0]!, `${file}: loss falls: ${l}`);
  }
});

test('CLI: .npy inputs and labels train a ViT; mismatched rows are one line; an onnxruntime failure is exit 6 without a stack', async () => {
  const dir = tempDir();
  const model = await transformedFile(path.join(HF, 'vit_ts.onnx'), dir);
  const x = new Float32Array(16 * 3 * 32 * 32).map((_, i) => Math.sin(i * 0.37));
  writeNpyFile(path.join(dir, 'x.npy'), { dtype: 'float32', shape: [16, 3, 32, 32], data: x });
  writeNpyFile(path.join(dir, 'y.npy'), { dtype: 'int64', shape: [16], data: BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i % 10)) });
  writeNpyFile(path.join(dir, 'y5.npy'), { dtype: 'int64', shape: [5], data: new BigInt64Array(5) });
  const ok = await runCli(['train', model, '--steps', '2', '--batch', '4', '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /\(x\.npy \+ y\.npy \(16 rows\), batch 4,/);
  const bad = await runCli(['train', model, '--steps', '1', '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y5.npy')]);
  assert.equal(bad.code, 3);
  assert.match(bad.stderr, /^error: --labels .*y5\.npy: 5 rows, but --data .*x\.npy has 16; give one label row per input row\n$/);
  const kv = await transformedFile(path.join(OBJ, 'gpt2_kv.onnx'), dir);
  const fail = await runCli(['train', kv, '--steps', '1', '--batch', '1', '--seq', '100']);
  assert.equal(fail.code, 6, fail.stderr);
  assert.match(fail.stderr, /^error: train step 1: onnxruntime failed in node '\/m\/transformer\/wpe\/Gather' \(Gather\): indices element out of data bounds, idx=64 .*; an index is outside a table: token ids must be below the model's vocabulary, and --seq no longer than its positions$/m);
  assert.doesNotMatch(fail.stderr, /unexpected error|onnxruntime:|\n\s+at /);
});

test('onnxruntime messages: invalid dimensions and ranks name the input and what to do', () => {
  assert.equal(describeOrtMessage('Got invalid dimensions for input: input_ids for the following indices\n index: 0 Got: 8 Expected: 2\n Please fix either the inputs/outputs or the model.'),
    "onnxruntime refused input 'input_ids': dim 0 is 8, the model expects 2; feed the model's fixed sizes (omit --batch/--seq to use them) or re-export with dynamic axes");
  assert.match(describeOrtMessage('Invalid rank for input: targets Got: 2 Expected: 1 Please fix either the inputs/outputs or the model.'), /^onnxruntime refused input 'targets': rank 2, the graph expects rank 1;/);
  assert.match(describeOrtMessage("Non-zero status code returned while running Conv node. Name:'c1' Status Message: Invalid input shape: {1}"), /^onnxruntime failed in node 'c1' \(Conv\): Invalid input shape: \{1\}; the input is too short/);
});
