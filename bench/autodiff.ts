/**
 * Backward cost on CPU: `node --import tsx bench/autodiff.ts [model.onnx ...]`.
 * For each model (default: the real exported LMs in ../shared/fixtures-real), times one onnxruntime-node
 * session computing the forward loss Σ output ⊙ R and a second computing loss + every float initializer's
 * gradient (buildBackward), median of 15 alternating runs after 3 warm-ups. Prints a markdown table; not a test.
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority, opsetVersion } from '../src/onnx/ir.js';
import { buildBackward } from '../src/train/autodiff.js';
import { floatConstTensor } from '../src/train/grad-helpers.js';

const SHARED = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'shared');
const files = process.argv.slice(2).length ? process.argv.slice(2) : ['hf_gpt2_w32_dynamo.onnx', 'hf_llama_w32_tied_dynamo.onnx'].map((f) => path.join(SHARED, 'fixtures-real', f));

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
  const fwd = await ort.InferenceSession.create(encodeModel(model));
  const bwd = await ort.InferenceSession.create(encodeModel(full));
  await timeRuns(fwd, feeds, 3);
  await timeRuns(bwd, feeds, 3);
  const tf: number[] = [], tb: number[] = [];
  for (let i = 0; i < 15; i++) {
    tf.push(...(await timeRuns(fwd, feeds, 1)));
    tb.push(...(await timeRuns(bwd, feeds, 1)));
  }
  console.log(`| ${path.basename(file)} | ${back.nodes.length} | ${median(tf).toFixed(2)} | ${median(tb).toFixed(2)} | ${(median(tb) / median(tf)).toFixed(2)}× |`);
}
