/**
 * fixtures/llm-builder.ts (the models of bench/scale.ts): the presets have the Hugging Face models'
 * parameter counts; a tiny GPT-2 (float32, tied head) and a tiny LLaMA (float16, SwiGLU, RMSNorm) written
 * with external data load and run in onnxruntime, are byte-for-byte reproducible, carry N(0, 0.02²)
 * weights, get the decoder-LM roles from the analysis, and transform through the CLI with external data
 * into a model onnxruntime runs, with exact-count masks on the hidden projections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { LLM_PRESETS, llmSizes, shapeForSize, writeLlmModel, type LlmShape } from '../fixtures/llm-builder.js';
import { analyzeModel } from '../src/analysis/index.js';
import { readModel } from '../src/onnx/codec.js';
import { isExternal } from '../src/onnx/external.js';
import { tensorToFloat32 } from '../src/onnx/tensor.js';
import { runCli } from './cli-helpers.js';
import { tempDir } from './helpers.js';

const L = 2;
const TINY_GPT2: LlmShape = { family: 'gpt2', vocab: 96, dModel: 32, layers: L, heads: 4, dFf: 128, maxPos: 16, dtype: 'float32' };
const TINY_LLAMA: LlmShape = { family: 'llama', vocab: 96, dModel: 32, layers: L, heads: 4, dFf: 88, dtype: 'float16' };
const IDS = new ort.Tensor('int64', BigInt64Array.from([5, 17, 3, 90, 42, 0, 64, 8].map(BigInt)), [1, 8]);
const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

async function runLogits(file: string): Promise<number[]> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const y = (await s.run({ input_ids: IDS })).logits!;
    assert.deepEqual(y.dims, [1, 8, 96]);
    // float16 outputs arrive as their bit patterns (Uint16Array) in onnxruntime-node 1.30.
    return y.type === 'float16' ? Array.from(y.data as Uint16Array, halfToNumber) : Array.from(y.data as Float32Array);
  } finally {
    await s.release();
  }
}

function halfToNumber(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

function roleCounts(file: string): Record<string, number> {
  const a = analyzeModel(readModel(file).model, path.dirname(file));
  assert.deepEqual(a.warnings, []);
  assert.equal(a.attention.length, L, 'one QKᵀ scale site per block');
  assert.equal(a.dHead, 8);
  const out: Record<string, number> = {};
  for (const p of a.params) out[p.role] = (out[p.role] ?? 0) + 1;
  return out;
}

test('presets: the Hugging Face parameter counts, and sizes map to them', () => {
  assert.equal(llmSizes(LLM_PRESETS['gpt2-small']).params, 124_439_808);
  assert.equal(llmSizes(LLM_PRESETS['gpt2-large']).params, 774_030_080);
  assert.equal(llmSizes(LLM_PRESETS['llama-7b']).params, 6_738_415_616);
  assert.equal(llmSizes(LLM_PRESETS['llama-7b']).dataBytes, 2 * 6_738_415_616);
  assert.deepEqual([0.5, 3, 13.5].map((gb) => shapeForSize(gb).name), ['gpt2-small', 'gpt2-large', 'llama-7b']);
  const scaled = shapeForSize(1);
  assert.equal(scaled.name, 'gpt2-small-30L');
  assert.ok(Math.abs(llmSizes(scaled.shape).dataBytes / 1e9 - 1) < 0.02, 'scaled layer count hits the size');
});

test('tiny GPT-2 and LLaMA: external data, reproducible, N(0, 0.02²) weights, run in onnxruntime', async () => {
  const dir = tempDir();
  for (const shape of [TINY_GPT2, TINY_LLAMA]) {
    const a = writeLlmModel(shape, path.join(dir, `${shape.family}-a.onnx`), { seed: 3 });
    const b = writeLlmModel(shape, path.join(dir, `${shape.family}-b.onnx`), { seed: 3 });
    const c = writeLlmModel(shape, path.join(dir, `${shape.family}-c.onnx`), { seed: 4 });
    assert.equal(sha(a.data), sha(b.data), 'same seed, same bytes');
    assert.notEqual(sha(a.data), sha(c.data), 'another seed, other weights');
    const loaded = readModel(a.model);
    const params = loaded.model.graph!.initializer.filter(isExternal);
    assert.equal(params.length, shape.family === 'gpt2' ? 4 + 16 * L : 3 + 9 * L, 'every parameter is external');
    assert.equal(fs.statSync(a.model).size < 64 * 1024, true, 'the graph file holds no weights');
    const q = tensorToFloat32(params.find((t) => t.name.endsWith('.0.attn.q_proj.weight') || t.name.endsWith('.0.self_attn.q_proj.weight'))!, dir);
    const mean = q.reduce((s, x) => s + x, 0) / q.length;
    const std = Math.sqrt(q.reduce((s, x) => s + (x - mean) ** 2, 0) / q.length);
    assert.ok(Math.abs(mean) < 0.002 && Math.abs(std - 0.02) < 0.0015, `q_proj mean ${mean}, std ${std}`);
    const logits = await runLogits(a.model);
    assert.ok(logits.every(Number.isFinite), 'finite logits');
    const spread = Math.max(...logits) - Math.min(...logits);
    assert.ok(spread > 0.05, `logits vary (spread ${spread})`);
  }
});

test('analysis: the decoder-LM roles (tied GPT-2 head by identity, untied LLaMA head)', () => {
  const dir = tempDir();
  const gpt = writeLlmModel(TINY_GPT2, path.join(dir, 'gpt2.onnx'));
  assert.deepEqual(roleCounts(gpt.model), {
    embedding: 1, position_embedding: 1, hidden: 6 * L, bias: 6 * L, norm_scale: 2 * L + 1, norm_bias: 2 * L + 1, buffer: 11,
  });
  const llama = writeLlmModel(TINY_LLAMA, path.join(dir, 'llama.onnx'));
  assert.deepEqual(roleCounts(llama.model), { embedding: 1, hidden: 7 * L, readout: 1, norm_scale: 2 * L + 1, buffer: 8 });
});

test('CLI transform of the float16 LLaMA: external-data output runs in onnxruntime, exact-count masks on the hidden projections', async () => {
  const dir = tempDir();
  const w = writeLlmModel(TINY_LLAMA, path.join(dir, 'model.onnx'));
  const r = await runCli(['model.onnx', '--density', '0.125', '--json', '--no-html'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout).report;
  const hidden = report.tensors.filter((t: { role: string }) => t.role === 'hidden');
  assert.equal(hidden.length, 7 * L);
  const elements = hidden.reduce((s: number, t: { shape: number[] }) => s + t.shape[0]! * t.shape[1]!, 0);
  assert.equal(elements, w.hiddenElements);
  assert.equal(report.summary.masked, 7 * L);
  assert.equal(report.summary.mask_non_zeros, hidden.reduce((s: number, t: { shape: number[] }) => s + Math.round(0.125 * t.shape[0]! * t.shape[1]!), 0));
  const out = path.join(dir, 'model.supar.onnx');
  assert.ok(fs.existsSync(`${out}.data`), 'output keeps external data');
  assert.ok(readModel(out).model.graph!.initializer.some(isExternal));
  const logits = await runLogits(out);
  assert.ok(logits.every(Number.isFinite), 'transformed model gives finite logits');
});
