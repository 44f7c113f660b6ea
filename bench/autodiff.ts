/**
 * Backward cost on CPU: `node --import tsx bench/autodiff.ts [model.onnx ...]`.
 * For each model (default: the real exported LMs in fixtures/real, plus a synthetic 2-layer
 * pre-LN transformer, d 256, 4 heads, batch 8×128, tanh GELU), times one onnxruntime-node session computing
 * the forward loss and a second computing loss + every float initializer's gradient (buildBackward), median
 * of 15 alternating runs after 3 warm-ups. Prints a markdown table; not a test.
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto, type NodeProto, type TensorProto } from 'onnx-buf';
import { makeInt64Tensor } from '../src/onnx/tensor.js';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority, opsetVersion } from '../src/onnx/ir.js';
import { buildBackward } from '../src/train/autodiff.js';
import { floatConstTensor } from '../src/train/grad-helpers.js';

const REAL_FIXTURES = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'fixtures', 'real');
const files = process.argv.slice(2).length ? process.argv.slice(2) : ['hf_gpt2_w32_dynamo.onnx', 'hf_llama_w32_tied_dynamo.onnx'].map((f) => path.join(REAL_FIXTURES, f));

async function timeRuns(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await s.run(feeds);
    out.push(performance.now() - t0);
  }
  return out;
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

/** A synthetic pre-LN transformer (loss = Σ h², built in-graph). */
function syntheticTransformer(): { model: ModelProto; feeds: Record<string, ort.Tensor> } {
  const B = 8, T = 128, D = 256, H = 4, L = 2;
  const n = node; const nodes: NodeProto[] = []; const inits: TensorProto[] = [];
  const rnd = (k: number, s: number) => Array.from({ length: k }, (_, i) => Math.sin(i * 12.9898 + s) * 0.05);
  let h = 'x';
  inits.push(makeInt64Tensor('hs', [4], [B, T, H, D / H]), makeInt64Tensor('bs', [3], [B, T, D]));
  for (let l = 0; l < L; l++) {
    const p = (s: string) => `l${l}_${s}`;
    inits.push(floatConstTensor(p('ln_s'), [D], Array(D).fill(1), 1), floatConstTensor(p('ln_b'), [D], Array(D).fill(0), 1));
    inits.push(floatConstTensor(p('Wqkv'), [D, 3 * D], rnd(3 * D * D, l), 1), floatConstTensor(p('Wo'), [D, D], rnd(D * D, l + 1), 1));
    inits.push(floatConstTensor(p('W1'), [D, 4 * D], rnd(4 * D * D, l + 2), 1), floatConstTensor(p('W2'), [4 * D, D], rnd(4 * D * D, l + 3), 1));
    nodes.push(n('LayerNormalization', [h, p('ln_s'), p('ln_b')], [p('n')]), n('MatMul', [p('n'), p('Wqkv')], [p('qkv')]),
      n('Split', [p('qkv')], [p('q'), p('k'), p('v')], { axis: -1, num_outputs: 3 }),
      n('Reshape', [p('q'), 'hs'], [p('q3')]), n('Transpose', [p('q3')], [p('q4')], { perm: [0, 2, 1, 3] }),
      n('Reshape', [p('k'), 'hs'], [p('k3')]), n('Transpose', [p('k3')], [p('k4')], { perm: [0, 2, 3, 1] }),
      n('Reshape', [p('v'), 'hs'], [p('v3')]), n('Transpose', [p('v3')], [p('v4')], { perm: [0, 2, 1, 3] }),
      n('MatMul', [p('q4'), p('k4')], [p('s')]), n('Softmax', [p('s')], [p('a')]), n('MatMul', [p('a'), p('v4')], [p('o4')]),
      n('Transpose', [p('o4')], [p('o3')], { perm: [0, 2, 1, 3] }), n('Reshape', [p('o3'), 'bs'], [p('o')]), n('MatMul', [p('o'), p('Wo')], [p('pr')]),
      n('Add', [h, p('pr')], [p('r1')]), n('LayerNormalization', [p('r1'), p('ln_s'), p('ln_b')], [p('n2')]),
      n('MatMul', [p('n2'), p('W1')], [p('f')]), n('Gelu', [p('f')], [p('g')], { approximate: 'tanh' }), n('MatMul', [p('g'), p('W2')], [p('f2')]), n('Add', [p('r1'), p('f2')], [p('r2')]));
    h = p('r2');
  }
  nodes.push(n('ReduceSumSquare', [h], ['loss'], { keepdims: 0 }));
  const graph = create(GraphProtoSchema, { node: nodes, initializer: inits, input: [tensorValueInfo('x', 1, [B, T, D])], output: [tensorValueInfo('loss', 1, [])] });
  const model = create(ModelProtoSchema, { irVersion: 9n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 20n })], graph });
  return { model, feeds: { x: new ort.Tensor('float32', Float32Array.from(rnd(B * T * D, 9)), [B, T, D]) } };
}

async function timePair(label: string, fwdModel: ModelProto, fullModel: ModelProto, feeds: Record<string, ort.Tensor>, backwardNodes: number): Promise<void> {
  const so: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 2 };
  const fwd = await ort.InferenceSession.create(encodeModel(fwdModel), so);
  const bwd = await ort.InferenceSession.create(encodeModel(fullModel), so);
  await timeRuns(fwd, feeds, 3);
  await timeRuns(bwd, feeds, 3);
  const tf: number[] = [], tb: number[] = [];
  for (let i = 0; i < 15; i++) {
    tf.push(...(await timeRuns(fwd, feeds, 1)));
    tb.push(...(await timeRuns(bwd, feeds, 1)));
  }
  console.log(`| ${label} | ${backwardNodes} | ${median(tf).toFixed(2)} | ${median(tb).toFixed(2)} | ${(median(tb) / median(tf)).toFixed(2)}× |`);
}

console.log('| model | backward nodes | forward+loss ms | forward+loss+backward ms | ratio |\n|---|---:|---:|---:|---:|');
for (const file of files) {
  const { model } = readModel(file);
  const g = model.graph!;
  const inputs = g.input.filter((v) => !g.initializer.some((t) => t.name === v.name));
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of inputs) {
    const tt = v.type!.value.value as { elemType: number; shape?: { dim: { value: { case?: string; value?: unknown } }[] } };
    const dims = tt.shape!.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : 4));
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[v.name] = tt.elemType === DataType.INT64 ? new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 7)), dims) : new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(i)), dims);
  }
  const out = g.output[0]!.name;
  const probe = await ort.InferenceSession.create(encodeModel(model));
  const dims = (await probe.run(feeds))[out]!.dims.map(Number);
  g.initializer.push(floatConstTensor('R_bench', dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i)), DataType.FLOAT));
  g.node.push(node('Mul', [out, 'R_bench'], ['wl_bench']), node('ReduceSum', ['wl_bench'], ['loss_bench'], { keepdims: 0 }));
  g.output = [tensorValueInfo('loss_bench', DataType.FLOAT, [])];
  const wrt = g.initializer.filter((t) => t.dataType === DataType.FLOAT && t.dims.length > 0 && t.name !== 'R_bench').map((t) => t.name);
  const back = buildBackward(g, { loss: 'loss_bench', wrt, names: new NameAuthority(model), opset: opsetVersion(model)! });
  const full: ModelProto = { ...model, graph: { ...g, node: [...g.node, ...back.nodes], initializer: [...g.initializer, ...back.initializers],
    output: [...g.output, ...wrt.map((w) => tensorValueInfo(back.grads.get(w)!, DataType.FLOAT))] } };
  await timePair(path.basename(file), model, full, feeds, back.nodes.length);
}
{
  const { model, feeds } = syntheticTransformer();
  const g = model.graph!;
  const wrt = g.initializer.filter((t) => t.dataType === DataType.FLOAT).map((t) => t.name);
  const back = buildBackward(g, { loss: 'loss', wrt, names: new NameAuthority(model), opset: 20 });
  const full: ModelProto = { ...model, graph: { ...g, node: [...g.node, ...back.nodes], initializer: [...g.initializer, ...back.initializers],
    output: [...g.output, ...wrt.map((w) => tensorValueInfo(back.grads.get(w)!, DataType.FLOAT))] } };
  await timePair('synthetic pre-LN transformer d256 ×2, batch 8×128', model, full, feeds, back.nodes.length);
}
