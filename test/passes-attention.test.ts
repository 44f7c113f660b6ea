/**
 * Attention-scale rewrites on small hand-built graphs whose exact output is computed here in JS
 * (softmax(QKᵀ·s)·V): a scale computed at run time (Div by Sqrt(Cast(Shape…)))) gets a Mul by target/current,
 * and a fused ONNX Attention op (opset 23) gets its `scale` attribute; after µP both compute s = 1/d_head.
 * Also: α_input after the embeddings equals scaling the embedding tables (gpt-tiny), and metadata keys are
 * replaced, not duplicated, when a transformed model is transformed again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto, type NodeProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeFloatTensor, makeInt64Tensor } from '../src/onnx/tensor.js';
import { readModel } from '../src/onnx/codec.js';
import { transform } from '../src/transform.js';
import { floats, GPT_TINY, LMS, runOrt } from './transform-helpers.js';

const [B, H, S, D] = [1, 2, 4, 8];
const dims = [B, H, S, D];

function model(nodes: NodeProto[], opset: number, inits = [makeInt64Tensor('last', [], [3])]): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: 10n, producerName: 'test', opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })],
    graph: create(GraphProtoSchema, {
      name: 'attn', node: nodes, initializer: inits,
      input: ['q', 'k', 'v'].map((n) => tensorValueInfo(n, DataType.FLOAT, dims)),
      output: [tensorValueInfo('y', DataType.FLOAT, dims)],
    }),
  });
}

function feeds(): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  let s = 7;
  for (const name of ['q', 'k', 'v']) {
    const a = new Float32Array(B * H * S * D);
    for (let i = 0; i < a.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; a[i] = (s / 2 ** 32) * 4 - 2; }
    out[name] = new ort.Tensor('float32', a, dims);
  }
  return out;
}

/** softmax(QKᵀ·scale)·V per head, in float64. */
function reference(f: Record<string, ort.Tensor>, scale: number): Float64Array {
  const [q, k, v] = ['q', 'k', 'v'].map((n) => floats(f[n]!));
  const y = new Float64Array(B * H * S * D);
  for (let h = 0; h < B * H; h++) {
    const o = h * S * D;
    for (let i = 0; i < S; i++) {
      const logits = Array.from({ length: S }, (_, j) => {
        let dot = 0;
        for (let c = 0; c < D; c++) dot += q![o + i * D + c]! * k![o + j * D + c]!;
        return dot * scale;
      });
      const m = Math.max(...logits);
      const e = logits.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < D; c++) y[o + i * D + c] = e.reduce((acc, w, j) => acc + (w / z) * v![o + j * D + c]!, 0);
    }
  }
  return y;
}

function maxDiff(a: Float32Array, b: Float64Array): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
}

async function checkSite(m: ModelProto, kind: string, rewrite: string): Promise<void> {
  const f = feeds();
  assert.ok(maxDiff(floats((await runOrt(m, f)).y!), reference(f, 1 / Math.sqrt(D))) < 1e-5, 'input computes 1/√d');
  const r = await transform({ model: m, path: `/virtual/${kind}.onnx`, baseDir: '.', fileBytes: 0 }, { rules: 'mup', density: 1, init: 'keep' });
  assert.equal(r.report.attention.length, 1, `${kind}: one site found`);
  const site = r.report.attention[0]!;
  assert.deepEqual([site.kind, site.rewrite, site.d_head, site.after], [kind, rewrite, D, 1 / D]);
  assert.ok(maxDiff(floats((await runOrt(r.model, f)).y!), reference(f, 1 / D)) < 1e-5, `${kind}: output computes 1/d after µP`);
}

test('runtime √d (Div by Sqrt(Cast(Gather(Shape(q))))) gets a Mul so that the logits scale is 1/d', async () => {
  const m = model([
    node('Transpose', ['k'], ['kt'], { perm: [0, 1, 3, 2] }, 'kt'),
    node('MatMul', ['q', 'kt'], ['s'], {}, 'qk'),
    node('Shape', ['q'], ['shp'], {}, 'shape'),
    node('Gather', ['shp', 'last'], ['dh'], { axis: 0 }, 'gather'),
    node('Cast', ['dh'], ['dhf'], { to: DataType.FLOAT }, 'cast'),
    node('Sqrt', ['dhf'], ['sq'], {}, 'sqrt'),
    node('Div', ['s', 'sq'], ['sd'], {}, 'div'),
    node('Softmax', ['sd'], ['p'], { axis: -1 }, 'softmax'),
    node('MatMul', ['p', 'v'], ['y'], {}, 'pv'),
  ], 17);
  await checkSite(m, 'runtime-sqrt', 'mul');
});

test('a fused ONNX Attention (opset 23) gets its scale attribute set to 1/d', async () => {
  const m = model([node('Attention', ['q', 'k', 'v'], ['y'], {}, 'attention')], 23, []);
  await checkSite(m, 'scale-attribute', 'attribute');
});

test('α_input after each embedding output equals scaling the embedding tables by α (gpt-tiny)', async () => {
  const lm = LMS.find((l) => l.name === 'gpt-tiny')!;
  const scaled = await transform(readModel(GPT_TINY), { rules: 'mup', density: 1, init: 'keep', hyperparameters: { alpha_input: 3 } });
  assert.deepEqual(scaled.report.multipliers.map((m) => [m.kind, m.value, m.multiplier]), [['embedding', 'inputs_embeds', 3], ['embedding', 'position_embeds', 3]]);
  const patched = readModel(GPT_TINY);
  for (const t of patched.model.graph!.initializer) {
    if (t.name !== 'transformer.wte.weight' && t.name !== 'transformer.wpe.weight') continue;
    const i = patched.model.graph!.initializer.indexOf(t);
    const { tensorToFloat32 } = await import('../src/onnx/tensor.js');
    patched.model.graph!.initializer[i] = makeFloatTensor(t.name, t.dims.map(Number), tensorToFloat32(t, '.').map((x) => x * 3));
  }
  const plain = await transform(patched, { rules: 'mup', density: 1, init: 'keep' });
  const f = lm.feeds();
  assert.deepEqual(floats((await runOrt(scaled.model, f)).logits!), floats((await runOrt(plain.model, f)).logits!));
});

test('transforming a transformed model replaces the supar.* metadata keys and keeps the others', async () => {
  const once = await transform(readModel(GPT_TINY), { density: 0.5 });
  once.model.metadataProps.push(create((await import('onnx-buf')).StringStringEntryProtoSchema, { key: 'user.note', value: 'keep me' }));
  const twice = await transform({ model: once.model, path: '/virtual/once.onnx', baseDir: '.', fileBytes: 0 }, { rules: 'sp', density: 1, init: 'keep' });
  const keys = twice.model.metadataProps.map((e) => e.key);
  assert.equal(new Set(keys).size, keys.length, 'no duplicate keys');
  assert.ok(keys.includes('user.note'));
  assert.equal(twice.model.metadataProps.find((e) => e.key === 'supar.rules')!.value, 'sp');
});
