/**
 * Autodiff on real exported LMs (fixtures/real: HF GPT-2 and tied-embedding Llama, torch dynamo
 * exports, opset 20; Megatron GPT-2 at opset 12 and DistilBERT at opset 11 without value_info; an MLP):
 * every float initializer's gradient is checked against a central finite difference of the directional
 * derivative, g·v ≈ (L(θ + h·v) − L(θ − h·v)) / 2h, for a seeded random direction v. Models are converted to
 * float64 where their ops allow it (relative error < 1e-6); DistilBERT's Erf keeps it in float32 (< 2e-2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelProto, TensorProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority, opsetVersion } from '../src/onnx/ir.js';
import { dimsOf, tensorToFloat32 } from '../src/onnx/tensor.js';
import { buildBackward } from '../src/train/autodiff.js';
import { floatConstTensor } from '../src/train/grad-helpers.js';
import { REAL_FIXTURES } from './helpers.js';
import { rng } from './grad-rules-harness.js';

/**
 * Float32 → float64 in place: initializers, value types, Cast(to=float) targets and float Constant /
 * ConstantOfShape values. Returns the float initializers' values.
 */
function toDouble(model: ModelProto): Map<string, Float64Array> {
  const g = model.graph!;
  const params = new Map<string, Float64Array>();
  const conv = (t: TensorProto, record: boolean): TensorProto => {
    if (t.dataType !== DataType.FLOAT) return t;
    const v = Float64Array.from(tensorToFloat32(t, '.'));
    if (record) params.set(t.name, v);
    return floatConstTensor(t.name, dimsOf(t), Array.from(v), DataType.DOUBLE);
  };
  g.initializer = g.initializer.map((t) => conv(t, true));
  for (const n of g.node) {
    for (const a of n.attribute) {
      if (n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DataType.FLOAT) a.i = BigInt(DataType.DOUBLE);
      if (a.t && (n.opType === 'Constant' || n.opType === 'ConstantOfShape')) a.t = conv(a.t, false);
    }
  }
  for (const vi of [...g.input, ...g.output, ...g.valueInfo]) {
    if (vi.type?.value.case === 'tensorType' && vi.type.value.value.elemType === DataType.FLOAT) vi.type.value.value.elemType = DataType.DOUBLE;
  }
  return params;
}

interface RealCase {
  file: string;
  /** Model inputs (float inputs given as float64 when `double`). */
  feeds: (rand: () => number, double: boolean) => Record<string, ort.Tensor>;
  /** float64 (ops allow it) or float32 (the model holds float-only kernels such as Erf). */
  double: boolean;
  tol: number;
  /** Relax the declared input dims (to feed a smaller input than the export's static size). */
  relaxInputs?: boolean;
  /** FD step (float32 cases). */
  h?: number;
}

async function checkRealModel(c: RealCase): Promise<Record<string, number>> {
  const { model } = readModel(path.join(REAL_FIXTURES, c.file));
  const type = c.double ? DataType.DOUBLE : DataType.FLOAT;
  const ortType = c.double ? 'float64' : 'float32';
  if (c.relaxInputs) {
    for (const v of model.graph!.input) {
      if (v.type?.value.case === 'tensorType') v.type.value.value.shape = undefined;
    }
  }
  const params = c.double ? toDouble(model) : new Map(model.graph!.initializer.filter((t) => t.dataType === DataType.FLOAT).map((t) => [t.name, Float64Array.from(tensorToFloat32(t, '.'))]));
  const g = model.graph!;
  const trainable = g.initializer.filter((t) => t.dataType === type && t.dims.length > 0).map((t) => t.name);
  const rand = rng(99);
  const feeds = c.feeds(rand, c.double);
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic' }; // extended fusions (QuickGelu) are float-only
  const out = g.output[0]!.name;
  const fwd = await ort.InferenceSession.create(encodeModel(model), opts);
  const dims = (await fwd.run(feeds))[out]!.dims.map(Number);
  g.initializer.push(floatConstTensor('R_out', dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() - 0.5), type));
  g.node.push(node('Mul', [out, 'R_out'], ['wl']), node('ReduceSum', ['wl'], ['loss'], { keepdims: 0 }));
  g.output = [tensorValueInfo('loss', type, [])];

  // FD model: the parameters become graph inputs (onnxruntime-node cannot override initializers).
  const fdModel: ModelProto = { ...model, graph: { ...g, initializer: g.initializer.filter((t) => !trainable.includes(t.name)),
    input: [...g.input, ...trainable.map((n) => tensorValueInfo(n, type, dimsOfInit(model, n)))] } };
  const back = buildBackward(g, { loss: 'loss', wrt: trainable, names: new NameAuthority(model), opset: opsetVersion(model)! });
  const bwdModel: ModelProto = { ...model, graph: { ...g, node: [...g.node, ...back.nodes], initializer: [...g.initializer, ...back.initializers],
    output: [...g.output, ...trainable.map((n) => tensorValueInfo(back.grads.get(n)!, type))] } };
  const bwd = await ort.InferenceSession.create(encodeModel(bwdModel), opts);
  const grads = await bwd.run(feeds);
  const fd = await ort.InferenceSession.create(encodeModel(fdModel), opts);
  const asTensor = (v: Float64Array, d: number[]) => new ort.Tensor(ortType, c.double ? v : Float32Array.from(v), d);
  const paramFeeds = (over?: { name: string; v: Float64Array }) => Object.fromEntries(trainable.map((n) =>
    [n, asTensor(over?.name === n ? over.v : params.get(n)!, dimsOfInit(model, n))]));
  const h = c.double ? 1e-5 : c.h ?? 1e-2;
  const errors: Record<string, number> = {};
  for (const n of trainable) {
    const theta = params.get(n)!;
    const v = Float64Array.from(theta, () => rand() - 0.5);
    const g0 = grads[back.grads.get(n)!]!.data as Float64Array | Float32Array;
    let analytic = 0;
    g0.forEach((gi: number, i: number) => { analytic += gi * v[i]!; });
    const plus = Float64Array.from(theta, (t, i) => t + h * v[i]!), minus = Float64Array.from(theta, (t, i) => t - h * v[i]!);
    const lp = Number((await fd.run({ ...feeds, ...paramFeeds({ name: n, v: plus }) })).loss!.data[0]);
    const lm = Number((await fd.run({ ...feeds, ...paramFeeds({ name: n, v: minus }) })).loss!.data[0]);
    const numeric = (lp - lm) / (2 * h);
    errors[n] = Math.abs(analytic - numeric) / Math.max(Math.abs(numeric), 1e-6);
  }
  return errors;
}

function dimsOfInit(model: ModelProto, name: string): number[] {
  return dimsOf(model.graph!.initializer.find((t) => t.name === name)!);
}

const ids = (rand: () => number, n: number, vocab: number) => BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * vocab)));
const floats = (double: boolean, v: number[], dims: number[]) => new ort.Tensor(double ? 'float64' : 'float32', double ? Float64Array.from(v) : Float32Array.from(v), dims);

const CASES: RealCase[] = [
  { file: 'hf_gpt2_w32_dynamo.onnx', double: true, tol: 1e-6, feeds: (r) => ({ input_ids: new ort.Tensor('int64', ids(r, 16, 256), [2, 8]) }) },
  { file: 'hf_llama_w32_tied_dynamo.onnx', double: true, tol: 1e-6, feeds: (r) => ({ input_ids: new ort.Tensor('int64', ids(r, 16, 256), [2, 8]) }) },
  {
    // opset 12, no value_info, dynamic dims, past state: exercises shape inference and the opset < 13 forms.
    file: 'ort_gpt2_megatron.onnx', double: true, tol: 1e-6, feeds: (r, d) => ({
      input_ids: new ort.Tensor('int64', ids(r, 6, 8), [2, 3]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from([1n, 2n, 3n, 1n, 2n, 3n]), [2, 3]),
      attention_mask: floats(d, Array.from({ length: 2 * 64 * 64 }, (_, i) => ((i % 64) <= Math.floor(i / 64) % 64 ? 1 : 0)), [2, 1, 64, 64]),
      past_0: floats(d, Array.from({ length: 2 * 2 * 2 * 1 * 4 }, () => r() - 0.5), [2, 2, 2, 1, 4]),
    }),
  },
  {
    // opset 11 BERT-style classifier with Erf GELU (float-only CPU kernel): float32, h = 1e-2.
    file: 'optimum_tiny_distilbert_cls.onnx', double: false, tol: 2e-2, feeds: (r) => ({
      input_ids: new ort.Tensor('int64', ids(r, 10, 50), [2, 5]), attention_mask: new ort.Tensor('int64', BigInt64Array.from([1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 0n, 0n]), [2, 5]),
    }),
  },
  {
    // opset 15 CNN: Conv + Relu + DepthToSpace CRD (pixel shuffle); CPU Conv is float-only. ReLU kinks make
    // FD step-sensitive (worst error 0.23 at h = 1e-2, 0.029 at 1e-3, 0.010 at 3e-4: it falls with h, so it is
    // the FD, not the gradient); float32 round-off floors it near 1e-2.
    file: 'ortext_pytorch_super_resolution.onnx', double: false, tol: 3e-2, relaxInputs: true, h: 3e-4,
    feeds: (r) => ({ input: new ort.Tensor('float32', Float32Array.from({ length: 8 * 8 }, () => r()), [1, 1, 8, 8]) }),
  },
  { file: 'owwjs_hello_deepa_mlp.onnx', double: true, tol: 1e-6, feeds: (r, d) => ({ 'onnx::Flatten_0': floats(d, Array.from({ length: 25 * 96 }, () => r() - 0.5), [1, 25, 96]) }) },
];

for (const c of CASES) {
  test(`${c.file}: every parameter's directional derivative matches FD (${c.double ? 'float64' : 'float32'})`, async (t) => {
    const errors = await checkRealModel(c);
    assert.ok(Object.keys(errors).length >= 5, `parameters checked: ${Object.keys(errors).join(', ')}`);
    const worst = Math.max(...Object.values(errors));
    t.diagnostic(`${Object.keys(errors).length} parameters, worst relative error ${worst.toExponential(2)}`);
    assert.ok(worst < c.tol, `worst relative error ${worst.toExponential(2)}: ${JSON.stringify(errors)}`);
  });
}
