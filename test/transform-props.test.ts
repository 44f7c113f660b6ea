/**
 * Properties of the transform with numerical oracles (issue 3 "Show"):
 * identity (SP, density 1, --init keep: ORT outputs equal the input model's), µP at m_d = 1 changes only the
 * attention scale (equal to the input with its √d_head constant patched by hand), the logit multiplier is
 * exactly α_output/m_d, LR groups follow the formulas, init std of the non-zeros is σ_base/√(m_d·m_ρ) within
 * 2 % on tensors ≥ 64k entries, outputs are byte-identical for the same seed, masks reach subgraph uses.
 */
import { test } from 'node:test';
import type { NodeProto } from 'onnx-buf';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeModel, readModel, writeModel } from '../src/onnx/codec.js';
import { makeScalarFloat, tensorToFloat32 } from '../src/onnx/tensor.js';
import { nonZeroStats } from '../src/passes/init-sampling.js';
import { transform, writeTransformOutputs } from '../src/transform.js';
import { maskEntries } from '../src/passes/mask-storage.js';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { tempDir } from './helpers.js';
import { floats, GPT_TINY, initializerBytes, LMS, REAL, runOrt, sameBytes } from './transform-helpers.js';

const lm = (name: string) => LMS.find((l) => l.name === name)!;

test('identity: --rules sp --density 1 --init keep gives the input model\'s outputs exactly', async () => {
  for (const name of ['gpt-tiny', 'hf_gpt2_w32_dynamo', 'hf_llama_w32_tied_dynamo', 'ort_gpt2_megatron']) {
    const input = readModel(lm(name).file);
    const r = await transform(input, { rules: 'sp', density: 1, init: 'keep' });
    const feeds = lm(name).feeds();
    const [a, b] = [await runOrt(input.model, feeds), await runOrt(r.model, feeds)];
    for (const k of Object.keys(a)) assert.deepEqual(floats(b[k]!), floats(a[k]!), `${name}: output ${k}`);
    assert.equal(r.report.attention.filter((s) => s.rewrite !== 'unchanged').length, 0, `${name}: SP rewrites no attention site`);
    assert.equal(r.report.multipliers.length, 0, `${name}: α = 1 inserts no multiplier`);
  }
});

test('µP and SµPar at m_d = 1, density 1, α = 1 change only the attention scale (gpt-tiny: Div by 16 instead of 4)', async () => {
  const input = readModel(GPT_TINY);
  const patched = readModel(GPT_TINY);
  const g = patched.model.graph!;
  const i = g.initializer.findIndex((t) => t.name === 'const.sqrt_dh');
  assert.equal(tensorToFloat32(g.initializer[i]!, '.')[0], 4, 'fixture divides QKᵀ by √16');
  g.initializer[i] = makeScalarFloat('const.sqrt_dh', 16);
  const feeds = lm('gpt-tiny').feeds();
  const expected = floats((await runOrt(patched.model, feeds)).logits!);
  const inBytes = initializerBytes(input.model, input.baseDir);
  for (const rules of ['mup', 'supar']) {
    const r = await transform(input, { rules, density: 1, init: 'keep' });
    assert.deepEqual(floats((await runOrt(r.model, feeds)).logits!), expected, `${rules}: logits equal the hand-patched model's`);
    const outBytes = initializerBytes(r.model, input.baseDir);
    for (const [name, bytes] of inBytes) {
      if (name === 'const.sqrt_dh') continue;
      assert.ok(outBytes.has(name) && sameBytes(outBytes.get(name)!, bytes), `${rules}: initializer ${name} changed`);
    }
    const sites = r.report.attention;
    assert.equal(sites.length, 2);
    for (const s of sites) assert.deepEqual([s.before, s.after, s.rewrite], [0.25, 0.0625, 'constant']);
  }
});

test('µP and SµPar at m_d = 1, density 1, α = 1 on every LM: initializers bit-identical except attention scales and folded tie copies', async () => {
  for (const l of LMS) {
    for (const rules of ['mup', 'supar']) {
      const input = readModel(l.file);
      const r = await transform(input, { rules, density: 1, init: 'keep' });
      // Old scale constants may go once nothing reads them; tie copies are folded into their table.
      const allowedGone = new Set([...r.plan.attention.flatMap((a) => a.site.constants), ...r.report.ties.map((t) => t.copy)]);
      const outBytes = initializerBytes(r.model, input.baseDir);
      for (const [name, bytes] of initializerBytes(input.model, input.baseDir)) {
        if (!outBytes.has(name)) {
          assert.ok(allowedGone.has(name), `${l.name}/${rules}: ${name} removed`);
          continue;
        }
        assert.ok(sameBytes(outBytes.get(name)!, bytes), `${l.name}/${rules}: ${name} changed`);
      }
      const added = [...outBytes.keys()].filter((n) => !input.model.graph!.initializer.some((t) => t.name === n));
      assert.ok(added.every((n) => n.startsWith('supar.attn_scale.')), `${l.name}/${rules}: only attention scales added (${added.join(', ')})`);
      assert.equal(r.report.multipliers.length, 0);
      assert.equal(r.report.summary.masked, 0);
    }
  }
});

test('µP on GPT-2 (dynamo): the 0.5 shared by Q, K and GELU is cloned; only attention changes', async () => {
  const input = readModel(lm('hf_gpt2_w32_dynamo').file);
  const r = await transform(input, { rules: 'mup', density: 1, init: 'keep' });
  const inBytes = initializerBytes(input.model, input.baseDir);
  const outBytes = initializerBytes(r.model, input.baseDir);
  for (const [name, bytes] of inBytes) {
    if (!outBytes.has(name)) continue; // the transposed tied copy is folded into the table
    assert.ok(sameBytes(outBytes.get(name)!, bytes), `initializer ${name} changed`);
  }
  for (const s of r.report.attention) {
    assert.equal(s.after, 1 / s.d_head);
    for (const c of s.carriers) assert.equal(tensorToFloat32(r.model.graph!.initializer.find((t) => t.name === c)!, '.')[0], 0.25);
  }
  const gelu = r.model.graph!.node.filter((n) => n.opType === 'Mul' && n.input.includes('val_132'));
  assert.ok(gelu.length >= 2, 'GELU still reads the original 0.5');
});

test('logits scale by exactly α_output/m_d against the un-multiplied graph', async () => {
  for (const name of ['gpt-tiny', 'hf_llama_w32_tied_dynamo']) {
    const input = readModel(lm(name).file);
    const feeds = lm(name).feeds();
    const plain = await transform(input, { rules: 'mup', density: 1, init: 'keep' });
    const scaled = await transform(input, { rules: 'mup', density: 1, init: 'keep', widthMult: 2, hyperparameters: { alpha_output: 3 } });
    const a = floats((await runOrt(plain.model, feeds)).logits!);
    const b = floats((await runOrt(scaled.model, feeds)).logits!);
    assert.equal(scaled.report.multipliers.find((m) => m.kind === 'output')?.multiplier, 1.5);
    assert.deepEqual(b, a.map((x) => Math.fround(x * 1.5)), `${name}: logits × 1.5`);
  }
});

test('LR groups: hidden 1/(m_d·m_ρ) (Adam) and 1/m_ρ (SGD); embeddings, readout, norms, biases 1', async () => {
  const r = await transform(readModel(GPT_TINY), { density: 0.125, widthMult: 2 });
  const groups = r.lrGroups.groups;
  const roles = new Set(groups.map((g) => g.role));
  for (const role of ['embedding', 'hidden', 'readout', 'bias', 'norm_scale', 'norm_bias']) assert.ok(roles.has(role as never), `role ${role} present`);
  for (const g of groups) {
    if (g.role === 'hidden') {
      assert.equal(g.lr_adam, 1 / (2 * 0.125), g.name);
      assert.equal(g.lr_sgd, 1 / 0.125, g.name);
      assert.equal(g.density, 0.125);
      assert.equal(g.mask, `${g.name}__mask`);
    } else {
      assert.deepEqual([g.lr_adam, g.lr_sgd, g.mask], [1, 1, null], g.name);
    }
  }
  const meta = new Map(r.model.metadataProps.map((e) => [e.key, e.value]));
  assert.deepEqual(JSON.parse(meta.get('supar.lr_groups')!), r.lrGroups);
  assert.equal(meta.get('supar.m_d'), '2');
  assert.equal(meta.get('supar.density'), '0.125');
});

test('init: the non-zeros\' std is σ_base/√(m_d·m_ρ) within 2 % on tensors ≥ 64k entries', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'gpt-wide.onnx');
  writeModel(buildGpt({ vocab: 256, dModel: 256, layers: 1, heads: 4, maxPos: 16, seed: 7 }), file);
  const r = await transform(readModel(file), { density: 0.125, widthMult: 2, hyperparameters: { sigma_base: 0.08 } });
  const target = 0.08 / Math.sqrt(2 * 0.125);
  const big = r.plan.params.filter((p) => p.role === 'hidden' && p.elements >= 65536);
  assert.ok(big.length >= 3);
  for (const p of big) {
    const t = r.model.graph!.initializer.find((x) => x.name === p.name)!;
    const s = nonZeroStats(tensorToFloat32(t, dir)).std;
    assert.ok(Math.abs(s / target - 1) < 0.02, `${p.name}: std ${s} vs ${target}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('determinism: same input, options and seed give byte-identical outputs; another seed other masks', async () => {
  const dir = tempDir();
  const outs = [];
  for (const [k, seed] of [['a', 0], ['b', 0], ['c', 1]] as const) {
    const r = await transform(readModel(GPT_TINY), { density: 0.125, seed });
    const files = await writeTransformOutputs(r, path.join(dir, `${k}.supar.onnx`));
    outs.push([files.model, files.lrGroups, files.report].map((f) => fs.readFileSync(f)));
  }
  for (let i = 0; i < 3; i++) assert.ok(outs[0]![i]!.equals(outs[1]![i]!), `file ${i} differs between equal runs`);
  assert.ok(!outs[0]![0]!.equals(outs[2]![0]!), 'seed 1 gives another model');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('N:M 2:4 and per-row masks hold exactly through the transform', async () => {
  const r = await transform(readModel(GPT_TINY), { mask: 'n:m', nm: { n: 2, m: 4 }, density: 0.5 });
  const inits = new Map(r.model.graph!.initializer.map((t) => [t.name, t]));
  for (const t of r.report.tensors.filter((x) => x.mask)) {
    const bits = maskEntries(inits.get(t.mask!)!, t.shape, '.');
    const [rows, cols] = t.shape as [number, number];
    // MatMul weights are [in, out]: groups of 4 consecutive inputs for each output column.
    for (let c = 0; c < cols; c++) {
      for (let g = 0; g < rows; g += 4) {
        let k = 0;
        for (let j = 0; j < 4; j++) k += bits[(g + j) * cols + c]!;
        assert.equal(k, 2, `${t.name}: column ${c} group ${g}`);
      }
    }
  }
  const pr = await transform(readModel(GPT_TINY), { mask: 'per-row', density: 0.25 });
  const pinits = new Map(pr.model.graph!.initializer.map((t) => [t.name, t]));
  for (const t of pr.report.tensors.filter((x) => x.mask)) {
    const bits = maskEntries(pinits.get(t.mask!)!, t.shape, '.');
    const [rows, cols] = t.shape as [number, number];
    for (let c = 0; c < cols; c++) {
      let k = 0;
      for (let i = 0; i < rows; i++) k += bits[i * cols + c]!;
      assert.equal(k, Math.round(0.25 * rows), `${t.name}: output unit ${c}`);
    }
  }
});

test('masks reach uses inside Loop bodies (LSTM weights read by outer scope)', async () => {
  const file = path.join(REAL, 'ort_nuphar_tiny_model_with_loop.onnx');
  const r = await transform(readModel(file), { density: 0.5, sparsify: ['rnn.weight_*'] });
  const masked = r.report.tensors.filter((t) => t.mask);
  assert.ok(masked.some((t) => t.name.startsWith('rnn.weight_')), 'LSTM weights masked');
  const text = new TextDecoder().decode(encodeModel(r.model));
  for (const t of masked) {
    // The only reader of W left is the Mul that applies its mask.
    let readers = 0;
    const count = (nodes: NodeProto[]) => {
      for (const n of nodes) {
        readers += n.input.filter((i) => i === t.name).length;
        for (const a of n.attribute) if (a.g) count(a.g.node);
      }
    };
    count(r.model.graph!.node);
    assert.equal(readers, 1, `${t.name}: read only by its mask Mul`);
    assert.ok(text.includes(`${t.name}__masked`));
  }
  const feeds = {
    input: new (await import('onnxruntime-node')).Tensor('float32', new Float32Array(3 * 10).fill(0.1), [3, 1, 10]),
    hi0: new (await import('onnxruntime-node')).Tensor('float32', new Float32Array(80), [4, 1, 20]),
    ci0: new (await import('onnxruntime-node')).Tensor('float32', new Float32Array(80), [4, 1, 20]),
  };
  const out = await runOrt(r.model, feeds);
  assert.ok(floats(out.output!).every(Number.isFinite));
});

test('inPlace: the rewritten values land in the input\'s own buffers, and the result equals the copying mode', async () => {
  const copying = await transform(readModel(GPT_TINY), { density: 0.125 });
  const input = readModel(GPT_TINY);
  const inPlace = await transform(input, { density: 0.125, inPlace: true });
  assert.ok(Buffer.from(encodeModel(inPlace.model)).equals(Buffer.from(encodeModel(copying.model))));
  const w = input.model.graph!.initializer.find((t) => t.name === 'transformer.h.0.attn.c_attn.weight')!;
  assert.equal(nonZeroStats(tensorToFloat32(w, '.')).count, 1536, 'input tensor now holds the masked values');
});

test('width: --base-model (shapes compared tensor by tensor) and --base-width give m_d = 2', async () => {
  const dir = tempDir();
  const [narrow, wide] = [path.join(dir, 'narrow.onnx'), path.join(dir, 'wide.onnx')];
  writeModel(buildGpt({ vocab: 64, dModel: 32, layers: 1, heads: 2, maxPos: 8, seed: 1 }), narrow);
  writeModel(buildGpt({ vocab: 64, dModel: 64, layers: 1, heads: 2, maxPos: 8, seed: 1 }), wide);
  const byBase = await transform(readModel(wide), { density: 0.25, baseModel: readModel(narrow) });
  const byWidth = await transform(readModel(wide), { density: 0.25, baseWidth: 32 });
  for (const r of [byBase, byWidth]) {
    assert.equal(r.report.settings.m_d, 2, r.report.settings.width_source);
    const hidden = r.lrGroups.groups.filter((g) => g.role === 'hidden');
    assert.ok(hidden.length === 4 && hidden.every((g) => g.lr_adam === 1 / (2 * 0.25) && g.lr_sgd === 4));
  }
  await assert.rejects(transform(readModel(wide), { widthMult: 2, baseWidth: 32 }), /give only one way/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('depth factor: residual output projections get std × 1/√(2L); others unchanged', async () => {
  const r = await transform(readModel(GPT_TINY), { density: 0.125, depthFactor: true });
  const base = 0.02 / Math.sqrt(0.125);
  for (const p of r.plan.params.filter((x) => x.role === 'hidden')) {
    const residual = /c_proj/.test(p.name);
    assert.equal(p.residualOutput ?? false, residual, `${p.name}: residual output detected`);
    assert.ok(Math.abs(p.initStd! - (residual ? base / 2 : base)) < 1e-15, `${p.name}: ${p.initStd}`);
  }
  assert.equal(r.report.settings.depth_factor, '1/sqrt(2*n_layers)');
});

test('--strict refuses unclassified tensors; without it they are left untouched and reported', async () => {
  const roles = [{ pattern: 'lm_head.weight', role: 'unknown' as const }];
  await assert.rejects(transform(readModel(GPT_TINY), { density: 0.5, roles, strict: true }), (e: Error & { exitCode?: number }) => e.exitCode === 7 && /lm_head\.weight/.test(e.message));
  const r = await transform(readModel(GPT_TINY), { density: 0.5, roles });
  const t = r.report.tensors.find((x) => x.name === 'lm_head.weight')!;
  assert.deepEqual([t.role, t.trained, t.init.action], ['unknown', false, 'kept']);
  assert.ok(r.report.warnings.some((w) => w.includes('lm_head.weight')), 'a warning names it');
  assert.equal(r.report.summary.unclassified, 1);
});

test('external data: an input with a data file gives an output with its own data file that ORT loads', async () => {
  const dir = tempDir();
  const input = path.join(dir, 'ext.onnx');
  writeModel(readModel(GPT_TINY).model, input, { externalData: 'always', externalThreshold: 0 });
  assert.ok(fs.existsSync(`${input}.data`));
  const r = await transform(readModel(input), { density: 0.25 });
  const files = await writeTransformOutputs(r, path.join(dir, 'ext.supar.onnx'));
  assert.ok(files.data && fs.existsSync(files.data), 'output data file');
  const out = await runOrt(files.model, lm('gpt-tiny').feeds());
  assert.ok(floats(out.logits!).every(Number.isFinite));
  const inline = await transform(readModel(GPT_TINY), { density: 0.25 });
  assert.deepEqual(floats(out.logits!), floats((await runOrt(inline.model, lm('gpt-tiny').feeds())).logits!), 'same model as from the inline input');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('density map, --sparsify and --dense globs set per-tensor densities (map first, then globs, then rules)', async () => {
  const r = await transform(readModel(GPT_TINY), {
    density: 0.125,
    densityMap: [{ pattern: 'transformer.h.*.mlp.*.weight', density: 0.5 }],
    dense: ['transformer.h.1.attn.c_proj.weight'],
    sparsify: ['lm_head.weight'],
  });
  const d = new Map(r.report.tensors.map((t) => [t.name, [t.density, t.non_zeros]]));
  assert.deepEqual(d.get('transformer.h.0.mlp.c_fc.weight'), [0.5, 8192]);
  assert.deepEqual(d.get('transformer.h.1.mlp.c_proj.weight'), [0.5, 8192]);
  assert.deepEqual(d.get('transformer.h.0.attn.c_attn.weight'), [0.125, 1536]);
  assert.deepEqual(d.get('transformer.h.1.attn.c_proj.weight'), [1, 4096]);
  assert.deepEqual(d.get('lm_head.weight'), [0.125, 2048]);
  const mlp = r.plan.params.find((p) => p.name === 'transformer.h.0.mlp.c_fc.weight')!;
  assert.equal(mlp.lrAdam, 1 / 0.5, 'm_ρ is the tensor\'s own density');
  assert.equal(r.plan.params.find((p) => p.name === 'transformer.h.1.attn.c_proj.weight')!.lrAdam, 1, 'dense hidden: m_ρ = 1');
});

test('float16 model: masks cast to fp16, multipliers and scales are fp16 scalars, ORT runs with finite logits', async () => {
  const { makeFloatTensor } = await import('../src/onnx/tensor.js');
  const { DataType, halfBitsToFloat } = await import('../src/onnx/dtype.js');
  const input = readModel(GPT_TINY);
  const g = input.model.graph!;
  g.initializer = g.initializer.map((t) => (t.dataType === DataType.FLOAT ? makeFloatTensor(t.name, t.dims.map(Number), tensorToFloat32(t, '.').map((x) => Math.max(-6e4, x)), DataType.FLOAT16) : t));
  for (const o of g.output) if (o.type?.value.case === 'tensorType') o.type.value.value.elemType = DataType.FLOAT16;
  const r = await transform(input, { density: 0.125, hyperparameters: { alpha_input: 2, alpha_output: 3 } });
  const out = r.model.graph!;
  for (const n of out.node.filter((x) => x.opType === 'Cast' && x.name.startsWith('supar.mask_cast'))) assert.equal(Number(n.attribute[0]!.i), DataType.FLOAT16);
  for (const c of ['supar.embedding_mult', 'supar.output_mult', 'supar.attn_scale.L0']) assert.equal(out.initializer.find((t) => t.name === c)?.dataType, DataType.FLOAT16, c);
  const logits = (await runOrt(r.model, lm('gpt-tiny').feeds())).logits!;
  assert.equal(logits.type, 'float16');
  assert.ok(Array.from(logits.data as Uint16Array).every((b) => Number.isFinite(halfBitsToFloat(b))));
});

test('the report ties each inserted multiplier to its tensor (α_input on embedding tables, α_output/m_d on the readout)', async () => {
  const r = await transform(readModel(GPT_TINY), { density: 0.5, widthMult: 2, hyperparameters: { alpha_input: 4, alpha_output: 3 } });
  const fm = new Map(r.report.tensors.filter((t) => t.forward_multiplier).map((t) => [t.name, t.forward_multiplier]));
  assert.deepEqual([...fm.keys()].sort(), ['lm_head.weight', 'transformer.wpe.weight', 'transformer.wte.weight']);
  assert.deepEqual(fm.get('transformer.wte.weight'), { kind: 'embedding', value: 4, at: 'inputs_embeds' });
  assert.deepEqual(fm.get('lm_head.weight'), { kind: 'output', value: 1.5, at: 'logits' });
});

test('with α_input 2, α_output 0.5 and m_d 2 every LM gets its multipliers and still runs with finite outputs', async () => {
  for (const l of LMS) {
    const r = await transform(readModel(l.file), { density: 0.25, widthMult: 2, hyperparameters: { alpha_input: 2, alpha_output: 0.5 } });
    const kinds = r.report.multipliers.map((m) => `${m.kind}×${m.multiplier}`);
    assert.ok(kinds.includes('embedding×2') && kinds.includes('output×0.25'), `${l.name}: ${kinds.join(', ')}`);
    const out = await runOrt(r.model, l.feeds());
    for (const [k, t] of Object.entries(out)) if (t.type === 'float32') assert.ok(floats(t).every(Number.isFinite), `${l.name}: ${k}`);
  }
});
