/**
 * Autodiff on real exported LMs (shared/fixtures-real: HF GPT-2 and tied-embedding Llama, torch dynamo
 * exports, opset 20): every float parameter's gradient is checked against a central finite difference of
 * the directional derivative, g·v ≈ (L(θ + h·v) − L(θ − h·v)) / 2h, for a seeded random direction v.
 * The models are converted to float64 first (they hold no Cast), so the check is tight: relative error < 1e-6.
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
import { SHARED } from './helpers.js';
import { rng } from './grad-rules-harness.js';

/** Float32 initializers and value types → float64 (in place). */
function toDouble(model: ModelProto): Map<string, Float64Array> {
  const g = model.graph!;
  const params = new Map<string, Float64Array>();
  g.initializer = g.initializer.map((t): TensorProto => {
    if (t.dataType !== DataType.FLOAT) return t;
    const v = Float64Array.from(tensorToFloat32(t, '.'));
    params.set(t.name, v);
    return floatConstTensor(t.name, dimsOf(t), Array.from(v), DataType.DOUBLE);
  });
  for (const vi of [...g.input, ...g.output, ...g.valueInfo]) {
    if (vi.type?.value.case === 'tensorType' && vi.type.value.value.elemType === DataType.FLOAT) vi.type.value.value.elemType = DataType.DOUBLE;
  }
  return params;
}

async function checkRealModel(file: string): Promise<Record<string, number>> {
  const { model } = readModel(path.join(SHARED, 'fixtures-real', file));
  const params = toDouble(model);
  const g = model.graph!;
  const trainable = g.initializer.filter((t) => t.dataType === DataType.DOUBLE && t.dims.length > 0).map((t) => t.name);
  const rand = rng(99);
  const ids = BigInt64Array.from({ length: 16 }, () => BigInt(Math.floor(rand() * 256)));
  const feeds = { input_ids: new ort.Tensor('int64', ids, [2, 8]) };
  const logitsCount = 2 * 8 * 256;
  g.initializer.push(floatConstTensor('R_logits', [2, 8, 256], Array.from({ length: logitsCount }, () => rand() - 0.5), DataType.DOUBLE));
  g.node.push(node('Mul', ['logits', 'R_logits'], ['wl']), node('ReduceSum', ['wl'], ['loss'], { keepdims: 0 }));
  g.output = [tensorValueInfo('loss', DataType.DOUBLE, [])];

  // FD model: the parameters become graph inputs (onnxruntime-node cannot override initializers).
  const fdModel: ModelProto = { ...model, graph: { ...g, initializer: g.initializer.filter((t) => !trainable.includes(t.name)),
    input: [...g.input, ...trainable.map((n) => tensorValueInfo(n, DataType.DOUBLE, params.get(n) ? dimsOfInit(model, n) : undefined))] } };
  const back = buildBackward(g, { loss: 'loss', wrt: trainable, names: new NameAuthority(model), opset: opsetVersion(model)! });
  const bwdModel: ModelProto = { ...model, graph: { ...g, node: [...g.node, ...back.nodes], initializer: [...g.initializer, ...back.initializers],
    output: [...g.output, ...trainable.map((n) => tensorValueInfo(back.grads.get(n)!, DataType.DOUBLE))] } };
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic' }; // extended fusions (QuickGelu) are float-only
  const bwd = await ort.InferenceSession.create(encodeModel(bwdModel), opts);
  const grads = await bwd.run(feeds);
  const fd = await ort.InferenceSession.create(encodeModel(fdModel), opts);
  const paramFeeds = (over?: { name: string; v: Float64Array }) => Object.fromEntries(trainable.map((n) =>
    [n, new ort.Tensor('float64', over?.name === n ? over.v : params.get(n)!, dimsOfInit(model, n))]));
  const h = 1e-5;
  const errors: Record<string, number> = {};
  for (const n of trainable) {
    const theta = params.get(n)!;
    const v = Float64Array.from(theta, () => rand() - 0.5);
    const g0 = grads[back.grads.get(n)!]!.data as Float64Array;
    const analytic = g0.reduce((s, gi, i) => s + gi * v[i]!, 0);
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

for (const file of ['hf_gpt2_w32_dynamo.onnx', 'hf_llama_w32_tied_dynamo.onnx']) {
  test(`${file}: every parameter's directional derivative matches FD (float64)`, async (t) => {
    const errors = await checkRealModel(file);
    assert.ok(Object.keys(errors).length >= 10, `parameters checked: ${Object.keys(errors).join(', ')}`);
    const worst = Math.max(...Object.values(errors));
    t.diagnostic(`${Object.keys(errors).length} parameters, worst relative error ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-6, `worst relative error ${worst.toExponential(2)}: ${JSON.stringify(errors)}`);
  });
}
