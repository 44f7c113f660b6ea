/**
 * analyzeModel on real exported models (fixtures/real, see its CATALOG.md) and on the fixture GPT.
 * Golden role tables live in test/golden/roles/<fixture>.json; regenerate with
 *   UPDATE_GOLDEN=1 node --import tsx --test test/analysis.test.ts
 * and review the diff against CATALOG.md before committing (each role was checked by hand there).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readModel } from '../src/onnx/codec.js';
import { analyzeModel, type Analysis } from '../src/analysis/index.js';
import { ROOT, REAL_FIXTURES } from './helpers.js';

const REAL = path.join(REAL_FIXTURES);
const GOLDEN_DIR = path.join(ROOT, 'test', 'golden', 'roles');
const GOLDEN_LMS = ['hf_gpt2_w32_dynamo', 'hf_llama_w32_tied_dynamo', 'optimum_tiny_distilbert_cls', 'ort_gpt2_megatron', 'ort_gpt2_one_layer'];

function analyze(file: string): Analysis {
  const { model, baseDir } = readModel(file);
  return analyzeModel(model, baseDir);
}

/** The reviewed part of an analysis, in a stable order. */
function roleTable(fixture: string, a: Analysis): unknown {
  return {
    source: `fixtures/real/${fixture}.onnx, analyzed by src/analysis (regenerate: UPDATE_GOLDEN=1 node --import tsx --test test/analysis.test.ts)`,
    dModel: a.dModel ?? null, dHead: a.dHead ?? null, nLayers: a.nLayers ?? null,
    logits: a.logits ?? null,
    params: a.params.map((p) => ({
      name: p.name, role: p.role, reason: p.reason, shape: p.shape, fanIn: p.fanIn ?? null, fanOut: p.fanOut ?? null,
      inputAxis: p.inputAxis ?? null, layer: p.layer ?? null, residualOutput: p.residualOutput ?? false,
      tie: p.tie ?? null, tiedWith: p.tiedWith ?? null,
    })),
    attention: a.attention,
    embeddingOutputs: a.embeddingOutputs,
    blocks: a.blocks,
    warnings: a.warnings,
  };
}

for (const fixture of GOLDEN_LMS) {
  test(`golden role table: ${fixture}`, () => {
    const table = roleTable(fixture, analyze(path.join(REAL, `${fixture}.onnx`)));
    const file = path.join(GOLDEN_DIR, `${fixture}.json`);
    if (process.env.UPDATE_GOLDEN === '1') {
      fs.mkdirSync(GOLDEN_DIR, { recursive: true });
      fs.writeFileSync(file, JSON.stringify(table, null, 2) + '\n');
    }
    assert.deepEqual(table, JSON.parse(fs.readFileSync(file, 'utf8')));
  });
}

const byName = (a: Analysis) => new Map(a.params.map((p) => [p.name, p]));
const roleOf = (a: Analysis, name: string) => byName(a).get(name)?.role;

test('GPT-2 (dynamo): wte tied by value to the transposed LM head copy; split Q/K scale 0.5·0.5 = 1/√16', () => {
  const a = analyze(path.join(REAL, 'hf_gpt2_w32_dynamo.onnx'));
  const p = byName(a);
  assert.equal(p.get('m.lm_head.weight')!.role, 'embedding');
  assert.equal(p.get('val_278')!.role, 'readout');
  assert.deepEqual([p.get('val_278')!.tie, p.get('val_278')!.tiedWith], ['value-transposed', 'm.lm_head.weight']);
  assert.equal(p.get('embedding_1')!.role, 'position_embedding');
  assert.equal(p.get('val_138')!.role, 'buffer');
  assert.deepEqual(a.attention.map((s) => [s.kind, s.currentScale, s.dHead, s.layer]), [['split-qk', 0.25, 16, 0], ['split-qk', 0.25, 16, 1]]);
  // The 0.5 constant is also GELU's 0.5: a rewrite must clone it.
  assert.deepEqual(a.attention[0]!.sharedConstants, ['val_132']);
  const hidden = a.params.filter((x) => x.role === 'hidden');
  assert.equal(hidden.length, 8);
  assert.deepEqual(hidden.filter((x) => x.residualOutput).map((x) => x.name), [
    'm.transformer.h.0.attn.c_proj.weight', 'm.transformer.h.0.mlp.c_proj.weight', 'm.transformer.h.1.attn.c_proj.weight', 'm.transformer.h.1.mlp.c_proj.weight',
  ]);
});

test('Llama (dynamo, tied): auto-named GQA projections by graph order, RMSNorm gain, rotary tables are buffers', () => {
  const a = analyze(path.join(REAL, 'hf_llama_w32_tied_dynamo.onnx'));
  const p = byName(a);
  assert.equal(p.get('m.model.layers.0.input_layernorm.weight')!.role, 'norm_scale');
  assert.equal(p.get('unsqueeze_16')!.role, 'buffer');
  assert.match(p.get('unsqueeze_16')!.reason, /rotary/);
  assert.deepEqual([p.get('val_357')!.role, p.get('val_357')!.tie], ['readout', 'value-transposed']);
  // GQA: 2 query heads × 16, 1 KV head × 16 → q [32,32], k/v [32,16].
  assert.deepEqual(['val_93', 'val_100', 'val_107', 'val_227'].map((n) => [p.get(n)!.shape, p.get(n)!.layer]), [[[32, 32], 0], [[32, 16], 0], [[32, 16], 0], [[32, 32], 1]]);
  assert.deepEqual([a.dModel, a.dHead, a.nLayers], [32, 16, 2]);
});

test('megatron GPT-2: LM head `223` = word_embeddings.weightᵀ by value; Q and K each divided by √√4', () => {
  const a = analyze(path.join(REAL, 'ort_gpt2_megatron.onnx'));
  const p = byName(a);
  assert.deepEqual([p.get('223')!.role, p.get('223')!.tie, p.get('223')!.tiedWith], ['readout', 'value-transposed', 'word_embeddings.weight']);
  assert.equal(p.get('position_embeddings.weight')!.role, 'position_embedding');
  assert.deepEqual(['209', '220', '221', '222'].map((n) => [p.get(n)!.role, p.get(n)!.fanIn]), [['hidden', 8], ['hidden', 8], ['hidden', 8], ['hidden', 32]]);
  const s = a.attention[0]!;
  assert.equal(s.kind, 'split-qk');
  assert.ok(Math.abs(s.currentScale - 0.5) < 1e-6, `scale ${s.currentScale}`);
  assert.equal(s.dHead, 4);
});

test('DistilBERT: Div by 1 before QKᵀ is a site (d_head 1); classifier Gemm transB=1 is the readout', () => {
  const a = analyze(path.join(REAL, 'optimum_tiny_distilbert_cls.onnx'));
  assert.deepEqual(a.attention.map((s) => [s.kind, s.currentScale, s.dHead]), [['scale-before-qk', 1, 1], ['scale-before-qk', 1, 1]]);
  const c = byName(a).get('classifier.weight')!;
  assert.deepEqual([c.role, c.inputAxis, c.fanIn], ['readout', 1, 2]);
  assert.equal(roleOf(a, 'distilbert.embeddings.position_embeddings.weight'), 'position_embedding');
  assert.equal(a.params.filter((x) => x.role === 'hidden').length, 13); // 2 × (q,k,v,out,lin1,lin2) + pre_classifier
});

test('GPT-2 one layer (ORT): attn.bias_resize is a causal-mask buffer, no LM head is reported', () => {
  const a = analyze(path.join(REAL, 'ort_gpt2_one_layer.onnx'));
  assert.equal(roleOf(a, 'h.0.attn.bias_resize'), 'buffer');
  assert.equal(roleOf(a, 'wpe.weight_resize'), 'position_embedding');
  assert.equal(a.logits, undefined);
  assert.ok(a.warnings.some((w) => /no readout/.test(w)));
  assert.deepEqual(a.attention.map((s) => [s.kind, s.dHead]), [['div-after-qk', 2]]);
  assert.ok(Math.abs(a.attention[0]!.currentScale - 1 / Math.SQRT2) < 1e-6);
});

/** Sanity rules every analysis must satisfy, whatever the model. */
function assertSane(name: string, a: Analysis): void {
  for (const p of a.params) {
    assert.ok(p.reason.length > 0, `${name}/${p.name}: empty reason`);
    if (p.role === 'hidden' || p.role === 'readout') {
      assert.ok(p.shape.length >= 2 && p.fanIn! > 0 && p.fanOut! > 0, `${name}/${p.name}: weight without fan-in`);
      assert.notEqual(p.inputAxis, p.outputAxis);
    }
    if (p.role === 'bias' || p.role === 'norm_scale' || p.role === 'norm_bias') assert.equal(p.elements, p.shape.at(-1), `${name}/${p.name}: not vector-like`);
    if (p.role === 'unknown') assert.ok(a.warnings.some((w) => w.includes(`'${p.name}'`)), `${name}/${p.name}: unknown but not warned`);
  }
  for (const s of a.attention) assert.ok(s.currentScale > 0 && s.dHead > 0 && s.nodes.length > 0, `${name}: bad site ${s.reason}`);
  if (a.logits?.readout) assert.ok(['readout', 'embedding'].includes(roleOf(a, a.logits.readout)!));
}

test('every real fixture analyzes without crashing and its roles are sane', () => {
  const files = fs.readdirSync(REAL).flatMap((f) => (f.endsWith('.onnx') ? [path.join(REAL, f)] : fs.existsSync(path.join(REAL, f, 'model.onnx')) ? [path.join(REAL, f, 'model.onnx')] : []));
  assert.equal(files.length, 13);
  for (const f of files) assertSane(path.basename(f), analyze(f));
});

test('the other real fixtures: expected roles', () => {
  const mlp = analyze(path.join(REAL, 'owwjs_hello_deepa_mlp.onnx'));
  // layer1 reads the flattened graph input (2400 features): an input layer, i.e. an embedding in µP terms.
  assert.deepEqual(['layer1.weight', 'blocks.0.fcn_layer.weight', 'last_layer.weight', 'layernorm1.bias'].map((n) => roleOf(mlp, n)), ['embedding', 'hidden', 'readout', 'norm_bias']);
  assert.equal(byName(mlp).get('layer1.weight')!.fanIn, 2400);
  const cnn = analyze(path.join(REAL, 'ortext_pytorch_super_resolution.onnx'));
  assert.deepEqual(cnn.params.filter((p) => p.name.endsWith('weight')).map((p) => [p.role, p.fanIn, p.inputAxis]), [['embedding', 25, 1], ['hidden', 576, 1], ['hidden', 576, 1], ['readout', 288, 1]]);
  const rnn = analyze(path.join(REAL, 'ort_nuphar_tiny_model_with_loop.onnx'));
  assert.deepEqual([roleOf(rnn, 'rnn.weight_ih_l1'), byName(rnn).get('rnn.weight_ih_l1')!.fanIn, roleOf(rnn, 'rnn.bias_hh_l0'), roleOf(rnn, '207')], ['hidden', 40, 'bias', 'readout']);
  // Layer 0 reads the normalised graph input inside its Loop bodies (through Gather/Slice): input layers.
  assert.deepEqual(['rnn.weight_ih_l0', 'rnn.weight_ih_l0_reverse', 'rnn.weight_hh_l0'].map((n) => roleOf(rnn, n)), ['embedding', 'embedding', 'hidden']);
  assert.equal(rnn.dModel, 20);
  const attn = analyze(path.join(REAL, 'ort_attention_mask1d_fp32.onnx'));
  assert.deepEqual(attn.attention.map((s) => [s.kind, s.currentScale, s.dHead]), [['div-after-qk', 0.125, 64]]);
  assert.equal(attn.params.filter((p) => p.role === 'hidden').length, 0);
  const lin = analyze(path.join(REAL, 'burn_linear_dynamo.onnx'));
  assert.deepEqual(['linear1_with_gemm.weight', 'linear2_with_matmul.weight', 'val_0'].map((n) => byName(lin).get(n)!.inputAxis), [1, 1, 0]);
  const noBias = analyze(path.join(REAL, 'onnx_pytorch-converted_test_Linear_no_bias', 'model.onnx'));
  assert.deepEqual([noBias.params[0]!.fanIn, noBias.params[0]!.inputAxis], [10, 1]); // Transpose(W[8,10]) → MatMul
  const emb = analyze(path.join(REAL, 'onnx_pytorch-converted_test_Embedding', 'model.onnx'));
  assert.deepEqual([emb.params[0]!.role, emb.params[0]!.fanOut], ['embedding', 3]);
});

test('fixtures/gpt-tiny.onnx analyzes fully: every initializer classified, one site per layer', () => {
  const a = analyze(path.join(ROOT, 'fixtures', 'gpt-tiny.onnx'));
  assertSane('gpt-tiny', a);
  assert.deepEqual(a.params.filter((p) => p.role === 'unknown').map((p) => p.name), []);
  assert.equal(a.nLayers, 2);
  assert.deepEqual(a.attention.map((s) => s.layer), [0, 1]);
  for (const s of a.attention) assert.ok(Math.abs(s.currentScale - 1 / Math.sqrt(s.dHead)) < 1e-6);
  assert.equal(a.logits?.readout, 'lm_head.weight');
  assert.deepEqual(a.embeddingOutputs.map((e) => roleOf(a, e.param)), ['embedding', 'position_embedding']);
  const hidden = a.params.filter((p) => p.role === 'hidden');
  assert.equal(hidden.length, 8);
  for (const h of hidden) assert.equal(h.layer, Number(/h\.(\d+)\./.exec(h.name)![1]));
  assert.deepEqual(a.blocks.filter((b) => b.kind === 'attention' || b.kind === 'mlp').map((b) => `${b.kind}${b.layer}`), ['attention0', 'mlp0', 'attention1', 'mlp1']);
});
