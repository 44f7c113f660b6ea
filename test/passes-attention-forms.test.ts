/**
 * The attention scale in every form it takes in exported graphs: the rules set the whole product of factors
 * on QKᵀ (pre-scales on Q and/or K, SDPA's √scale, a Div/Mul after, a `scale` attribute, a Mul by 1.0) to
 * their target exactly once. Each small graph is run in onnxruntime before and after the transform and the
 * logit scale is measured: the Softmax input divided by QKᵀ computed here in float64 (least squares over all
 * entries, residual checked). Terms added onto the logits before a factor they share (a relative-position
 * bias before the Div, DeBERTa's c2p product of the pre-scaled Q) keep their scale.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clearField, fromBinary, isFieldSet } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, TensorProtoSchema, ValueInfoProtoSchema, type ModelProto, type NodeProto, type TensorProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeFloatTensor, makeInt64Tensor, tensorToFloat32 } from '../src/onnx/tensor.js';
import { readModel } from '../src/onnx/codec.js';
import { forEachTensor } from '../src/onnx/walk.js';
import { transform, type TransformResult } from '../src/transform.js';
import { ROOT } from './helpers.js';
import { compareOrt, tensorProtoToOrt } from './ort-tensors.js';
import { floats, runOrt } from './transform-helpers.js';
import { randomFloats, seededRandom } from './model-builders.js';

const [B, H, S, D] = [1, 2, 4, 16];
const qkvDims = [B, H, S, D];
const scalar = (name: string, x: number) => makeFloatTensor(name, [], new Float32Array([x]));
/** A fixed relative-position key table [D, S] (a constant: its product with Q is not a QKᵀ site). */
const POS = makeFloatTensor('pos_k', [D, S], randomFloats(D * S, seededRandom(5), 1));

function model(nodes: NodeProto[], inits: TensorProto[], opts: { opset?: number; rel?: boolean } = {}): ModelProto {
  const inputs = ['q', 'k', 'v'].map((n) => tensorValueInfo(n, DataType.FLOAT, qkvDims));
  if (opts.rel) inputs.push(tensorValueInfo('rel', DataType.FLOAT, [B, H, S, S]));
  const fused = nodes.some((n) => n.opType === 'Attention');
  return create(ModelProtoSchema, {
    irVersion: 10n, producerName: 'test', opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opts.opset ?? 17) })],
    graph: create(GraphProtoSchema, {
      name: 'attn', node: fused ? nodes : [...nodes, node('Softmax', ['logits_in'], ['p'], { axis: -1 }, 'softmax'), node('MatMul', ['p', 'v'], ['y'], {}, 'pv'), node('Identity', ['logits_in'], ['logits'], {}, 'tap')],
      initializer: inits, input: inputs,
      output: [tensorValueInfo('y', DataType.FLOAT, qkvDims), ...(fused ? [] : [tensorValueInfo('logits', DataType.FLOAT, [B, H, S, S])])],
    }),
  });
}

function feeds(over: Partial<Record<'q' | 'k' | 'v' | 'rel', Float32Array>> = {}): Record<string, ort.Tensor> {
  const rand = seededRandom(11);
  const out: Record<string, ort.Tensor> = {};
  for (const name of ['q', 'k', 'v']) out[name] = new ort.Tensor('float32', over[name as 'q'] ?? randomFloats(B * H * S * D, rand, 2), qkvDims);
  out.rel = new ort.Tensor('float32', over.rel ?? randomFloats(B * H * S * S, rand, 3), [B, H, S, S]);
  return out;
}

/** QKᵀ per head in float64, [B·H, S, S] flattened. */
function qkT(q: Float32Array, k: Float32Array): Float64Array {
  const out = new Float64Array(B * H * S * S);
  for (let h = 0; h < B * H; h++) {
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < S; j++) {
        let dot = 0;
        for (let c = 0; c < D; c++) dot += q[h * S * D + i * D + c]! * k[h * S * D + j * D + c]!;
        out[h * S * S + i * S + j] = dot;
      }
    }
  }
  return out;
}

/** Q·P for the constant position table P [D, S]. */
function qP(q: Float32Array): Float64Array {
  const p = tensorToFloat32(POS, '.');
  const out = new Float64Array(B * H * S * S);
  for (let h = 0; h < B * H; h++) for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) {
    let dot = 0;
    for (let c = 0; c < D; c++) dot += q[h * S * D + i * D + c]! * p[c * S + j]!;
    out[h * S * S + i * S + j] = dot;
  }
  return out;
}

/** The scale s with logits ≈ s·ref (least squares), and the largest residual relative to max |logits|. */
function fitScale(logits: Float32Array, ref: Float64Array): { scale: number; residual: number } {
  let num = 0, den = 0, top = 0;
  ref.forEach((r, i) => { num += logits[i]! * r; den += r * r; top = Math.max(top, Math.abs(logits[i]!)); });
  const scale = num / den;
  const residual = ref.reduce((m, r, i) => Math.max(m, Math.abs(logits[i]! - scale * r)), 0) / top;
  return { scale, residual };
}

async function measuredScale(m: ModelProto, f = feeds({ rel: new Float32Array(B * H * S * S) })): Promise<number> {
  const logits = floats((await runOrt(m, f)).logits!);
  const { scale, residual } = fitScale(logits, qkT(floats(f.q!), floats(f.k!)));
  assert.ok(residual < 1e-5, `logits are a multiple of QKᵀ (residual ${residual})`);
  return scale;
}

async function run(m: ModelProto, rules: string): Promise<TransformResult> {
  return transform({ model: m, path: `/virtual/${rules}.onnx`, baseDir: '.', fileBytes: 0 }, { rules, density: 1, init: 'keep' });
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a / b - 1) < 1e-5, `${what}: ${a} vs ${b}`);

const kT = node('Transpose', ['k'], ['kt'], { perm: [0, 1, 3, 2] }, 'kt');
const SCALE_FORMS: { name: string; nodes: NodeProto[]; inits: TensorProto[]; kind: string }[] = [
  {
    // TorchScript SDPA(scale=1) after the model pre-scaled Q by 1/√d: q·(1/√d)·√1 and kᵀ·√1.
    name: 'Q pre-scaled by 1/√d, then SDPA with scale 1 (√1 on each side)', kind: 'runtime-sqrt',
    nodes: [node('Mul', ['q', 'c'], ['q1'], {}, 'prescale'), node('Sqrt', ['one'], ['sq'], {}, 'sqrt'), node('Mul', ['q1', 'sq'], ['q2'], {}, 'sdpa_q'), kT,
      node('Mul', ['kt', 'sq'], ['k2'], {}, 'sdpa_k'), node('MatMul', ['q2', 'k2'], ['logits_in'], {}, 'qk')],
    inits: [scalar('c', 1 / Math.sqrt(D)), scalar('one', 1)],
  },
  {
    name: 'Q and K each pre-scaled by d^-¼', kind: 'split-qk',
    nodes: [node('Mul', ['q', 'c'], ['q1'], {}, 'sq'), kT, node('Mul', ['kt', 'c'], ['k1'], {}, 'sk'), node('MatMul', ['q1', 'k1'], ['logits_in'], {}, 'qk')],
    inits: [scalar('c', D ** -0.25)],
  },
  {
    name: 'Q pre-scaled by d^-¼ and a Div by d^¼ after', kind: 'div-after-qk',
    nodes: [node('Mul', ['q', 'c'], ['q1'], {}, 'sq'), kT, node('MatMul', ['q1', 'kt'], ['s'], {}, 'qk'), node('Div', ['s', 'r'], ['logits_in'], {}, 'div')],
    inits: [scalar('c', D ** -0.25), scalar('r', D ** 0.25)],
  },
  {
    // OPT through TorchScript: q·(1/√d) and a Mul by 1.0 kept after QKᵀ.
    name: 'Q pre-scaled by 1/√d and a Mul by 1.0 after', kind: 'mul-after-qk',
    nodes: [node('Mul', ['q', 'c'], ['q1'], {}, 'sq'), kT, node('MatMul', ['q1', 'kt'], ['s'], {}, 'qk'), node('Mul', ['s', 'one'], ['logits_in'], {}, 'mul1')],
    inits: [scalar('c', 1 / Math.sqrt(D)), scalar('one', 1)],
  },
  {
    name: 'two pre-scales in a chain on Q (1/2 then 2/√d)', kind: 'scale-before-qk',
    nodes: [node('Mul', ['q', 'a'], ['q1'], {}, 'sa'), node('Reshape', ['q1', 'shape'], ['q2'], {}, 'view'), node('Mul', ['q2', 'b'], ['q3'], {}, 'sb'), kT, node('MatMul', ['q3', 'kt'], ['logits_in'], {}, 'qk')],
    inits: [scalar('a', 0.5), scalar('b', 2 / Math.sqrt(D)), makeInt64Tensor('shape', [4], qkvDims)],
  },
];

for (const f of SCALE_FORMS) {
  test(`scale form: ${f.name} — µP and SµPar set the product to 1/d_head, SP keeps 1/√d_head`, async () => {
    const m = model(f.nodes, f.inits);
    close(await measuredScale(m), 1 / Math.sqrt(D), 'input');
    for (const rules of ['mup', 'supar']) {
      const r = await run(m, rules);
      assert.equal(r.report.attention.length, 1);
      assert.deepEqual([r.report.attention[0]!.kind, r.report.attention[0]!.before, r.report.attention[0]!.d_head], [f.kind, r.report.attention[0]!.before, D]);
      close(r.report.attention[0]!.before, 1 / Math.sqrt(D), `${rules}: current scale is the whole product`);
      close(await measuredScale(r.model), 1 / D, `${rules}: measured logit scale`);
    }
    const sp = await run(m, 'sp');
    assert.equal(sp.report.attention[0]!.rewrite, 'unchanged');
    close(await measuredScale(sp.model), 1 / Math.sqrt(D), 'sp: measured logit scale');
  });
}

test('scale form: ai.onnx Attention(scale=1) after Q pre-scaled by 1/√d — the attribute makes the product 1/d_head', async () => {
  const m = model([node('Mul', ['q', 'c'], ['q1'], {}, 'prescale'), node('Attention', ['q1', 'k', 'v'], ['y'], { scale: { float: 1 } }, 'attention')], [scalar('c', 1 / Math.sqrt(D))], { opset: 23 });
  const f = feeds();
  const ref = (s: number) => reference(f, s);
  assert.ok(maxDiff(floats((await runOrt(m, f)).y!), ref(1 / Math.sqrt(D))) < 1e-5);
  const r = await run(m, 'mup');
  const a = r.report.attention[0]!;
  assert.deepEqual([a.kind, a.rewrite, a.d_head], ['scale-attribute', 'attribute', D]);
  close(a.before, 1 / Math.sqrt(D), 'current scale: pre-scale × attribute');
  assert.ok(maxDiff(floats((await runOrt(r.model, f)).y!), ref(1 / D)) < 1e-5, 'output computes softmax(QKᵀ/d)·V');
  assert.equal((await run(m, 'sp')).report.attention[0]!.rewrite, 'unchanged');
});

test('a relative-position bias added before the Div keeps its scale; QKᵀ alone gets 1/d_head', async () => {
  const m = model([kT, node('MatMul', ['q', 'kt'], ['s'], {}, 'qk'), node('Add', ['s', 'rel'], ['sb'], {}, 'add_rel'), node('Div', ['sb', 'r'], ['logits_in'], {}, 'div')], [scalar('r', Math.sqrt(D))], { rel: true });
  const r = await run(m, 'mup');
  const a = r.report.attention[0]!;
  assert.equal(a.rewrite, 'mul');
  assert.match(a.reason, /rel added onto the logits share part of the scale and keep it exactly/);
  close(await measuredScale(r.model), 1 / D, 'QKᵀ term (rel = 0)');
  // With Q = 0 the logits are the bias term alone: still rel/√d.
  const zeroQ = feeds({ q: new Float32Array(B * H * S * D) });
  const logits = floats((await runOrt(r.model, zeroQ)).logits!);
  const rel = floats(zeroQ.rel!);
  assert.ok(logits.every((x, i) => Math.abs(x - rel[i]! / Math.sqrt(D)) < 1e-6), 'bias term keeps 1/√d');
});

test('DeBERTa-style: the pre-scaled Q also feeds the c2p term — the rewrite leaves it and scales QKᵀ alone', async () => {
  const c = 1 / Math.sqrt(3 * D);
  const m = model([
    node('Mul', ['q', 'c'], ['qs'], {}, 'prescale'), kT, node('MatMul', ['qs', 'kt'], ['s'], {}, 'qk'),
    node('MatMul', ['qs', 'pos_k'], ['c2p'], {}, 'c2p'), node('Add', ['s', 'c2p'], ['logits_in'], {}, 'add_c2p'),
  ], [scalar('c', c), POS]);
  const r = await run(m, 'mup');
  const a = r.report.attention[0]!;
  assert.equal(a.rewrite, 'mul');
  assert.match(a.reason, /Mul prescale \(its output is also read outside this QKᵀ\)/);
  const f = feeds();
  const logits = floats((await runOrt(r.model, f)).logits!);
  const qk = qkT(floats(f.q!), floats(f.k!));
  const c2p = qP(floats(f.q!));
  const worst = logits.reduce((w, x, i) => Math.max(w, Math.abs(x - (qk[i]! / D + c * c2p[i]!))), 0);
  assert.ok(worst < 1e-5, `logits = QKᵀ/d + c·Q·P (max error ${worst})`);
});

test('a non-standard scale (1/16 at d_head 16·…) is rewritten to the target and warned about; no scale (T5) too', async () => {
  const custom = model([kT, node('MatMul', ['q', 'kt'], ['s'], {}, 'qk'), node('Mul', ['s', 'c'], ['logits_in'], {}, 'mul')], [scalar('c', 1 / 64)]);
  const r = await run(custom, 'mup');
  assert.ok(r.plan.warnings.some((w) => /scales QKᵀ by 0\.0156\d, not 1\/√d_head = 0\.25/.test(w)), r.plan.warnings.join('\n'));
  close(await measuredScale(r.model), 1 / D, 'custom → 1/d');
  const none = model([kT, node('MatMul', ['q', 'kt'], ['logits_in'], {}, 'qk')], []);
  const t5 = await run(none, 'mup');
  assert.ok(t5.analysis.warnings.some((w) => /no scale between QKᵀ/.test(w)));
  assert.ok(t5.plan.warnings.some((w) => /scales QKᵀ by 1, not 1\/√d_head/.test(w)));
  close(await measuredScale(t5.model), 1 / D, 'none → 1/d');
});

/** softmax(QKᵀ·scale)·V per head, in float64. */
function reference(f: Record<string, ort.Tensor>, scale: number): Float64Array {
  const [q, k, v] = ['q', 'k', 'v'].map((n) => floats(f[n]!));
  const logits = qkT(q!, k!);
  const y = new Float64Array(B * H * S * D);
  for (let h = 0; h < B * H; h++) {
    for (let i = 0; i < S; i++) {
      const row = Array.from({ length: S }, (_, j) => logits[h * S * S + i * S + j]! * scale);
      const mx = Math.max(...row);
      const e = row.map((x) => Math.exp(x - mx));
      const z = e.reduce((a2, b2) => a2 + b2, 0);
      for (let c = 0; c < D; c++) y[h * S * D + i * D + c] = e.reduce((acc, w, j) => acc + (w / z) * v![h * S * D + j * D + c]!, 0);
    }
  }
  return y;
}

function maxDiff(a: Float32Array, b: Float64Array): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
}

test('real exports (fixtures/forms): Q·(1/√d) then SDPA(scale=1) — TorchScript keeps √1 on Q and K, dynamo folds them; the rewritten logit scale is 1/d_head', async () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(FORMS, 'manifest.json'), 'utf8')) as { files: Record<string, { d_head: number; true_scale?: number }> };
  const ids = new ort.Tensor('int64', BigInt64Array.from({ length: 16 }, (_, i) => BigInt((i * 37 + 5) % 128)), [2, 8]);
  for (const file of ['prescale_ts.onnx', 'prescale_dynamo.onnx']) {
    const truth = manifest.files[file]!;
    const input = readModel(path.join(FORMS, file));
    const r = await transform(input, { rules: 'supar', density: 1, init: 'keep' });
    assert.equal(r.report.attention.length, 2, file);
    for (const a of r.report.attention) {
      close(a.before, truth.true_scale!, `${file}: the whole product is the model's true scale`);
      assert.equal(a.d_head, truth.d_head);
    }
    for (const s of r.analysis.attention) {
      // The logits L = QKᵀ·scale against QKᵀ of the unscaled operands, computed by a MatMul added to the graph.
      for (const [m, want, what] of [[input.model, truth.true_scale!, 'input'], [r.model, 1 / truth.d_head, 'rewritten']] as const) {
        const out = await runOrt(withRawQk(m, s.qkMatMul!, s.logitsValue!), { input_ids: ids });
        const { scale, residual } = fitScale(floats(out[s.logitsValue!]!), Float64Array.from(floats(out.raw_qk!)));
        assert.ok(residual < 1e-5, `${file} ${what}: logits are a multiple of QKᵀ (residual ${residual})`);
        close(scale, want, `${file} ${s.qkMatMul} ${what}: measured logit scale`);
      }
    }
  }
});

/**
 * `model` with outputs `logits` and `raw_qk` = MatMul of the QKᵀ node's operands taken before every Mul/Div
 * by a scalar constant on them (scalars commute with the views in between, so the layout is the MatMul's).
 */
function withRawQk(model: ModelProto, qkName: string, logits: string): ModelProto {
  const m = structuredClone(model);
  const g = m.graph!;
  const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const scalars = new Set([...g.initializer.filter((t) => t.dims.every((d) => d === 1n)).map((t) => t.name),
    ...g.node.filter((n) => n.opType === 'Constant' && n.attribute[0]?.t?.dims.every((d) => d === 1n)).map((n) => n.output[0]!)]);
  const raw = (v: string): string => {
    const p = producer.get(v);
    if (p && (p.opType === 'Mul' || (p.opType === 'Div' && scalars.has(p.input[1]!))) && p.input.some((i) => scalars.has(i))) return raw(p.input.find((i) => !scalars.has(i))!);
    return v;
  };
  const qk = g.node.find((n) => n.name === qkName)!;
  g.node.push(node('MatMul', qk.input.map(raw), ['raw_qk'], {}, 'test/raw_qk'));
  g.output.push(create(ValueInfoProtoSchema, { name: 'raw_qk' }), create(ValueInfoProtoSchema, { name: logits }));
  return m;
}

const FORMS = path.join(ROOT, 'fixtures', 'forms');


test('ai.onnx Attention and its expanded function body (fixtures/onnx-attention, 16 cases): rewritten to 1/d_head, both still compute the same', async () => {
  const dir = path.join(ROOT, 'fixtures', 'onnx-attention');
  const cases = fs.readdirSync(dir).filter((c) => fs.existsSync(path.join(dir, c, 'fused.onnx'))).sort();
  assert.equal(cases.length, 16);
  for (const c of cases) {
    const inputs = fs.readdirSync(path.join(dir, c)).filter((f) => /^input_\d+\.pb$/.test(f)).sort();
    const [fused, expanded] = await Promise.all(['fused', 'expanded'].map((k) => transform(readModel(path.join(dir, c, `${k}.onnx`)), { rules: 'mup', density: 1, init: 'keep' })));
    for (const r of [fused!, expanded!]) {
      assert.ok(r.report.attention.length >= 1, `${c}: a site`);
      for (const a of r.report.attention) close(a.after, 1 / a.d_head, `${c}: target 1/d_head`);
    }
    close(fused!.report.attention[0]!.before, expanded!.report.attention.reduce((p, a) => p * a.before, 1) ** (1 / expanded!.report.attention.length), `${c}: same current scale`);
    const feeds: Record<string, ort.Tensor> = {};
    const names = fused!.model.graph!.input.map((v) => v.name).filter((n) => n);
    inputs.forEach((f, i) => { feeds[names[i]!] = tensorProtoToOrt(fromBinary(TensorProtoSchema, fs.readFileSync(path.join(dir, c, f)))); });
    const [a, b] = await Promise.all([runOrt(withoutEmptyRawData(fused!.model), feeds), runOrt(withoutEmptyRawData(expanded!.model), feeds)]);
    const original = await runOrt(readModel(path.join(dir, c, 'fused.onnx')).model, feeds);
    assert.notEqual(compareOrt(a.Y!, original.Y!), undefined, `${c}: the rewrite changed the output`);
    for (const out of Object.keys(a)) {
      const diff = compareOrt(b[out]!, a[out]!);
      assert.equal(diff, undefined, `${c} ${out}: rewritten fused vs expanded: ${diff}`);
    }
  }
});

/**
 * The transform's structural copy gives typed-field tensors (int64_data of the expanded body's Constants) an
 * empty raw_data that onnxruntime rejects: issue 13 item 4, fixed on branch `shapes` (cf9a485). Until that is
 * merged, cleared here so that this test checks the scales; remove after the merge.
 */
function withoutEmptyRawData(model: ModelProto): ModelProto {
  forEachTensor(model, (t) => {
    if (t.rawData.byteLength === 0 && isFieldSet(t, TensorProtoSchema.field.rawData!)) clearField(t, TensorProtoSchema.field.rawData!);
  });
  return model;
}
