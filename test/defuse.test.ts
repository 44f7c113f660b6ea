/**
 * Each de-fuse rule against onnxruntime's own contrib kernel: a one-node model with the com.microsoft op
 * runs in onnxruntime, is de-fused, runs again; outputs agree within fp32 tolerance on seeded random inputs,
 * over several attribute combinations. Unsupported forms are listed with the attribute or input named.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { defuseContribOps, DEFUSE_RULES } from '../src/normalize/defuse.js';
import { normalizeForAnalysis, normalizeForTraining } from '../src/normalize/index.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority } from '../src/onnx/ir.js';
import { maxRelDiff, oneNodeModel, randomFeeds, runModel, type OneNodeSpec } from './contrib-builders.js';

const TOL = 2e-5;

async function checkDefuse(spec: OneNodeSpec, label: string, seed = 1): Promise<string> {
  const model = oneNodeModel(spec);
  const feeds = randomFeeds(spec, seed);
  const before = await runModel(model, feeds);
  const d = defuseContribOps(model);
  assert.deepEqual(d.notDefused, [], `${label}: not de-fused: ${d.notDefused.map((x) => x.reason).join('; ')}`);
  assert.equal(d.defused.length, 1, label);
  assert.ok(d.model.graph!.node.every((n) => n.domain === ''), `${label}: only ai.onnx ops remain`);
  assert.ok(!d.model.opsetImport.some((o) => o.domain === 'com.microsoft'), `${label}: com.microsoft import dropped`);
  const after = await runModel(d.model, feeds);
  const diff = maxRelDiff(before, after);
  assert.ok(diff < TOL, `${label}: max relative difference ${diff}`);
  assert.equal(model.graph!.node[0]!.domain, spec.domain ?? 'com.microsoft', 'input model left as it was');
  return d.defused[0]!.into;
}

const f = (name: string, dims: (number | string)[], feedDims?: number[]) => ({ name, dims, feedDims });

test('FusedMatMul: transA/transB/alpha combinations, batched and with a 2-D weight', async () => {
  await checkDefuse({ op: 'FusedMatMul', inputs: [f('a', [2, 3, 4, 5]), f('b', [2, 3, 5, 6])], outputs: ['y'] }, 'plain');
  await checkDefuse({ op: 'FusedMatMul', attrs: { transA: 1, transB: 1, alpha: { float: 0.5 } }, inputs: [f('a', [2, 3, 5, 4]), f('b', [2, 3, 6, 5])], outputs: ['y'] }, 'transA transB alpha');
  const into = await checkDefuse({ op: 'FusedMatMul', attrs: { transB: 1, alpha: { float: 0.125 } }, inputs: [f('a', ['batch', 3, 5], [2, 3, 5]), f('w', [6, 5])], outputs: ['y'] }, 'weight transB');
  assert.equal(into, 'Transpose, MatMul, Mul');
});

function normInputs(withBeta: boolean, withBias: boolean, simplified: boolean) {
  return [f('x', [2, 3, 8]), f('skip', [2, 3, 8]), f('gamma', [8]), ...(simplified ? [] : [withBeta ? f('beta', [8]) : '' as const]), ...(withBias ? [f('bias', [8])] : [])];
}

test('SkipLayerNormalization: with/without β and bias, default and set ε, residual sum output; decomposed below opset 17', async () => {
  for (const [beta, bias, eps, opset] of [[true, true, undefined, 17], [false, false, 1e-5, 17], [true, true, 1e-6, 13], [true, false, undefined, 13]] as const) {
    const into = await checkDefuse({
      op: 'SkipLayerNormalization', attrs: eps === undefined ? {} : { epsilon: { float: eps } }, opset,
      inputs: normInputs(beta, bias, false), outputs: ['y', '', '', 'sum'],
    }, `β ${beta} bias ${bias} ε ${eps} opset ${opset}`);
    assert.equal(into.includes('LayerNormalization'), opset >= 17);
  }
});

test('LayerNormalization below opset 17 (onnxruntime registers it in the default domain) is decomposed; from 17 it is kept', async () => {
  for (const [eps, beta] of [[undefined, true], [1e-3, false]] as const) {
    const into = await checkDefuse({ op: 'LayerNormalization', domain: '', opset: 13, attrs: eps === undefined ? {} : { epsilon: { float: eps } }, inputs: [f('x', [2, 3, 8]), f('gamma', [8]), ...(beta ? [f('beta', [8])] : [])], outputs: ['y'] }, `LayerNormalization-13 ε ${eps}`);
    assert.ok(!into.includes('LayerNormalization') && into.includes('ReduceMean'));
  }
  const standard = defuseContribOps(oneNodeModel({ op: 'LayerNormalization', domain: '', opset: 17, inputs: [f('x', [2, 8]), f('gamma', [8])], outputs: ['y'] }));
  assert.deepEqual([standard.defused.length, standard.notDefused.length], [0, 0]);
});

test('SkipSimplifiedLayerNormalization and SimplifiedLayerNormalization (RMSNorm)', async () => {
  for (const [bias, eps] of [[true, undefined], [false, 1e-3]] as const) {
    await checkDefuse({ op: 'SkipSimplifiedLayerNormalization', attrs: eps === undefined ? {} : { epsilon: { float: eps } }, inputs: normInputs(false, bias, true), outputs: ['y', '', '', 'sum'] }, `skip-simplified bias ${bias}`);
  }
  for (const eps of [undefined, 1e-2]) {
    await checkDefuse({ op: 'SimplifiedLayerNormalization', domain: '', attrs: eps === undefined ? {} : { epsilon: { float: eps } }, inputs: [f('x', [2, 3, 8]), f('gamma', [8])], outputs: ['y'] }, `simplified ε ${eps}`);
  }
});

test('GELU family: Gelu, BiasGelu, FastGelu (with and without bias), QuickGelu (default and set α)', async () => {
  const x = f('x', [2, 3, 8]);
  const b = f('b', [8]);
  await checkDefuse({ op: 'Gelu', inputs: [x], outputs: ['y'] }, 'Gelu');
  await checkDefuse({ op: 'BiasGelu', inputs: [x, b], outputs: ['y'] }, 'BiasGelu');
  await checkDefuse({ op: 'FastGelu', inputs: [x], outputs: ['y'] }, 'FastGelu');
  await checkDefuse({ op: 'FastGelu', inputs: [x, b], outputs: ['y'] }, 'FastGelu bias');
  await checkDefuse({ op: 'QuickGelu', inputs: [x], outputs: ['y'] }, 'QuickGelu');
  await checkDefuse({ op: 'QuickGelu', attrs: { alpha: { float: 1.0 } }, inputs: [x], outputs: ['y'] }, 'QuickGelu α 1');
});

test('BiasAdd (no CPU kernel in onnxruntime: checked against its definition x + b + skip)', async () => {
  const spec: OneNodeSpec = { op: 'BiasAdd', inputs: [f('x', [2, 3, 8]), f('b', [8]), f('skip', [2, 3, 8])], outputs: ['y'] };
  const feeds = randomFeeds(spec, 3);
  const d = defuseContribOps(oneNodeModel(spec));
  assert.equal(d.defused[0]!.into, 'Add, Add');
  const y = (await runModel(d.model, feeds))['y']!;
  const [x, b, skip] = ['x', 'b', 'skip'].map((k) => feeds[k]!.data as Float32Array);
  y.forEach((v, i) => assert.ok(Math.abs(v - (x![i]! + b![i % 8]! + skip![i]!)) < 1e-6, `y[${i}]`));
});

const B = 2, S = 4, D = 8;
const mask2d = { name: 'mask', dims: [B, S], type: 'int32' as const, values: [1, 1, 1, 0, 1, 0, 1, 1] };

test('Attention: fused QKV weight with bias, masks ([B,T], [B,S,T], [B] lengths), attention_bias, unidirectional, scale, qkv_hidden_sizes', async () => {
  const x = f('x', [B, S, D]);
  const w = f('w', [D, 3 * D]);
  const bias = f('bias', [3 * D]);
  const cases: [string, OneNodeSpec][] = [
    // (without a bias onnxruntime 1.30's CPU Attention kernel crashes: that form is checked against a zero bias below)
    ['bias, no mask', { op: 'Attention', attrs: { num_heads: 2 }, inputs: [x, w, bias], outputs: ['y'] }],
    ['bias, 2-D mask', { op: 'Attention', attrs: { num_heads: 2 }, inputs: [x, w, bias, mask2d], outputs: ['y'] }],
    ['unidirectional, 4 heads, mask_filter_value', { op: 'Attention', attrs: { num_heads: 4, unidirectional: 1, mask_filter_value: { float: -1e4 } }, inputs: [x, w, bias, mask2d], outputs: ['y'] }],
    ['[B] lengths', { op: 'Attention', attrs: { num_heads: 2 }, inputs: [x, w, bias, { name: 'len', dims: [B], type: 'int32', values: [3, 2] }], outputs: ['y'] }],
    ['[B,S,T] mask', { op: 'Attention', attrs: { num_heads: 2 }, inputs: [x, w, bias, { name: 'm3', dims: [B, S, S], type: 'int32', values: Array.from({ length: B * S * S }, (_, i) => (i % S === 0 || i % 3 ? 1 : 0)) }], outputs: ['y'] }],
    ['attention_bias, scale', { op: 'Attention', attrs: { num_heads: 2, scale: { float: 0.3 } }, inputs: [x, w, bias, '', '', f('ab', [B, 2, S, S])], outputs: ['y'] }],
    ['qkv_hidden_sizes Dv ≠ Dq, dynamic batch', { op: 'Attention', attrs: { num_heads: 2, qkv_hidden_sizes: [8, 8, 12] }, inputs: [f('x', ['b', 's', D], [B, S, D]), f('w', [D, 28]), f('bias', [28])], outputs: ['y'] }],
  ];
  for (const [label, spec] of cases) await checkDefuse(spec, `Attention ${label}`);
});

test('Attention without a bias (onnxruntime 1.30 CPU kernel crashes on it): equals the kernel run with a zero bias', async () => {
  const spec: OneNodeSpec = { op: 'Attention', attrs: { num_heads: 2, unidirectional: 1 }, inputs: [f('x', [B, S, D]), f('w', [D, 3 * D])], outputs: ['y'] };
  const withZeroBias: OneNodeSpec = { ...spec, inputs: [...spec.inputs, f('bias', [3 * D])] };
  const feeds = randomFeeds(spec, 5);
  const reference = await runModel(oneNodeModel(withZeroBias), { ...feeds, bias: new ort.Tensor('float32', new Float32Array(3 * D), [3 * D]) });
  const d = defuseContribOps(oneNodeModel(spec));
  assert.equal(d.defused[0]!.into.startsWith('MatMul, Split'), true, d.defused[0]!.into);
  const diff = maxRelDiff(reference, await runModel(d.model, feeds));
  assert.ok(diff < TOL, `max relative difference ${diff}`);
});

test('MultiHeadAttention: separate Q/K/V (cross-attention length), bias, key_padding_mask, attention_bias, unidirectional', async () => {
  const L = 5;
  const q = f('q', [B, S, D]);
  const k = f('k', [B, L, D]);
  const v = f('v', [B, L, 12]);
  const kpm = { name: 'kpm', dims: [B, L], type: 'int32' as const, values: [1, 1, 0, 1, 0, 1, 1, 1, 1, 0] };
  const cases: [string, OneNodeSpec][] = [
    ['plain', { op: 'MultiHeadAttention', attrs: { num_heads: 2 }, inputs: [q, k, v], outputs: ['y'] }],
    ['bias, mask, attention_bias, scale', { op: 'MultiHeadAttention', attrs: { num_heads: 2, scale: { float: 0.2 } }, inputs: [q, k, v, f('bias', [28]), kpm, f('ab', [B, 2, S, L])], outputs: ['y'] }],
    ['self, unidirectional', { op: 'MultiHeadAttention', attrs: { num_heads: 4, unidirectional: 1 }, inputs: [q, f('k', [B, S, D]), f('v', [B, S, D])], outputs: ['y'] }],
  ];
  for (const [label, spec] of cases) await checkDefuse(spec, `MultiHeadAttention ${label}`);
});

test('EmbedLayerNormalization: word + position (+ segment) embeddings, LayerNorm, mask_index and embedding sum outputs', async () => {
  const [V, P] = [11, 7];
  const ids = (name: string, mod: number) => ({ name, dims: [B, 5], type: 'int32' as const, values: Array.from({ length: B * 5 }, (_, i) => (i * 7 + 3) % mod) });
  const tables = [f('word', [V, D]), f('pos', [P, D])];
  const mask = { name: 'mask', dims: [B, 5], type: 'int32' as const, values: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0] };
  const full: OneNodeSpec = {
    op: 'EmbedLayerNormalization', attrs: { epsilon: { float: 1e-5 } },
    inputs: [ids('ids', V), ids('seg', 2), ...tables, f('segtab', [2, D]), f('gamma', [D]), f('beta', [D]), mask],
    outputs: ['y', 'mask_index', 'sum'], outTypes: { mask_index: DataType.INT32 },
  };
  await checkDefuse(full, 'segments, mask, all outputs');
  const positions = { name: 'posids', dims: [1, 5], type: 'int32' as const, values: [4, 3, 2, 1, 0] };
  await checkDefuse({ op: 'EmbedLayerNormalization', attrs: { mask_index_type: 0 }, inputs: [ids('ids', V), '', ...tables, '', f('gamma', [D]), f('beta', [D]), '', positions], outputs: ['y'] }, 'no segments, position_ids given, default ε');
});

test('unsupported forms are left fused and named: KV-cache state, rotary, packed QKV, float16', () => {
  const x = f('x', [B, S, D]);
  const w = f('w', [D, 3 * D]);
  const refused = (spec: OneNodeSpec) => {
    const d = defuseContribOps(oneNodeModel(spec));
    assert.equal(d.defused.length, 0);
    return d.notDefused.map((n) => `${n.node}: ${n.reason}`);
  };
  assert.match(refused({ op: 'Attention', attrs: { num_heads: 2 }, inputs: [x, w, '', '', f('past', [2, B, 2, 0, 4])], outputs: ['y', 'present'] })[0]!, /Attention_0: input 4 \(past\) is given: KV-cache state is not supported/);
  assert.match(refused({ op: 'Attention', attrs: { num_heads: 2, do_rotary: 1 }, inputs: [x, w], outputs: ['y'] })[0]!, /attribute do_rotary=1 is not supported/);
  assert.match(refused({ op: 'MultiHeadAttention', attrs: { num_heads: 2 }, inputs: [f('qkv', [B, S, 2, 3, 4])], outputs: ['y'] })[0]!, /input 1 \(key\) is absent \(packed QKV/);
  assert.match(refused({ op: 'FusedMatMul', attrs: { transBatchA: 1 }, inputs: [x, w], outputs: ['y'] })[0]!, /attribute transBatchA=1/);
});

test('not de-fused: a warning before analysis, a refusal (exit 4) before the train-step builder', () => {
  const m = oneNodeModel({ op: 'Attention', attrs: { num_heads: 2, do_rotary: 1 }, inputs: [f('x', [B, S, D]), f('w', [D, 3 * D])], outputs: ['y'] });
  assert.deepEqual(normalizeForAnalysis(m).warnings, ["node 'Attention_0' (Attention) is not de-fused (defuse/attention): attribute do_rotary=1 is not supported"]);
  assert.throws(() => normalizeForTraining(m, new NameAuthority(m)), (e: Error & { exitCode?: number }) => {
    assert.equal(e.message, "cannot build a train step: node 'Attention_0' (Attention) is not de-fused (defuse/attention): attribute do_rotary=1 is not supported; re-export the model without onnxruntime's fusions");
    assert.equal(e.exitCode, 4);
    return true;
  });
});

test('every rule has a stable id and a one-line doc', () => {
  const ids = DEFUSE_RULES.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const r of DEFUSE_RULES) {
    assert.match(r.id, /^defuse\/[a-z0-9-]+$/);
    assert.ok(r.doc.length > 10 && !r.doc.includes('\n'), r.id);
  }
  assert.deepEqual(DEFUSE_RULES.map((r) => r.opType).sort(), ['Attention', 'BiasAdd', 'BiasGelu', 'EmbedLayerNormalization', 'FastGelu', 'FusedMatMul', 'Gelu', 'LayerNormalization', 'MultiHeadAttention', 'QuickGelu', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization']);
});
