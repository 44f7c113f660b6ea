/**
 * Softmax family and normalization layers, as ai.onnx subgraphs replacing ORT's training-only
 * SoftmaxGrad_13 / LogSoftmaxGrad_13 / LayerNormalizationGrad (docs/notes/autodiff.md §3).
 * The forward node is left untouched: LayerNorm's x̂ and 1/σ come from a second LayerNormalization with
 * unit scale (float types) or are recomputed from ReduceMean (double).
 */
import { attrFloat, attrInt } from '../../onnx/build.js';
import { DataType } from '../../onnx/dtype.js';
import { floatConstTensor } from '../grad-helpers.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

function gradY(ctx: GradContext): string {
  return ctx.gradOut(0) ?? ctx.fail('output 0 has no gradient');
}

/**
 * Axes a Softmax normalizes over: [axis] from opset 13 (default −1); before 13 the input is coerced to 2-D
 * at `axis` (default 1), i.e. the normalization runs over all axes [axis, rank).
 */
function softmaxAxes(ctx: GradContext): number[] {
  if (ctx.opset >= 13) return [attrInt(ctx.node, 'axis', -1)];
  const axis = attrInt(ctx.node, 'axis', 1);
  if (axis < 0) return Array.from({ length: -axis }, (_, i) => axis + i);
  const rank = ctx.getRank(ctx.input(0));
  return Array.from({ length: rank - axis }, (_, i) => axis + i);
}

/** Softmax: dX = Y ⊙ (dY − ReduceSum(dY ⊙ Y, axes, keepdims)). */
function softmaxGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e, y = ctx.output(0), dY = gradY(ctx);
  const dot = e.reduce('ReduceSum', e.op('Mul', [dY, y]), softmaxAxes(ctx), true);
  return [e.op('Mul', [y, e.op('Sub', [dY, dot])])];
}

/** LogSoftmax: dX = dY − Exp(Y) ⊙ ReduceSum(dY, axes, keepdims). */
function logSoftmaxGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e, y = ctx.output(0), dY = gradY(ctx);
  const total = e.reduce('ReduceSum', dY, softmaxAxes(ctx), true);
  return [e.op('Sub', [dY, e.op('Mul', [e.op('Exp', [y]), total])])];
}

/** The normalized axes [axis, rank): negative form when the axis is negative (no rank needed). */
function normalizedAxes(ctx: GradContext): number[] {
  const axis = attrInt(ctx.node, 'axis', -1);
  if (axis < 0) return Array.from({ length: -axis }, (_, i) => axis + i);
  const rank = ctx.getRank(ctx.input(0));
  return Array.from({ length: rank - axis }, (_, i) => axis + i);
}

function reduceMean(ctx: GradContext, x: string, axes: number[]): string {
  return ctx.e.reduce('ReduceMean', x, axes, true);
}

/**
 * LayerNormalization: x̂ = (X − μ)·r, r = 1/√(σ² + ε), Y = x̂·scale + bias.
 * g = dY·scale; dX = r·(g − mean(g) − x̂·mean(g·x̂)); dScale = Σ dY·x̂, dBias = Σ dY over the other axes.
 * RMS variant (center = false): x̂ = X·r, r = 1/√(mean(X²) + ε); dX = r·(g − x̂·mean(g·x̂)).
 */
function normGrad(center: boolean) {
  return (ctx: GradContext): InputGrads => {
    for (let i = 1; i < ctx.node.output.length; i++) if (ctx.gradOut(i)) ctx.fail(`a gradient through output ${i} (statistics) is not supported`);
    const e = ctx.e, scale = ctx.input(1), dY = gradY(ctx);
    const axes = normalizedAxes(ctx);
    const { xhat, r } = center && ctx.elemType(ctx.input(0)) !== DataType.DOUBLE ? unitLayerNorm(ctx) : recomputedStats(ctx, center, axes);
    const yShape = ctx.shape(ctx.output(0));
    const out: InputGrads = [];
    if (ctx.needsGrad(0)) {
      const g = e.op('Mul', [dY, scale]);
      const proj = e.op('Mul', [xhat, reduceMean(ctx, e.op('Mul', [g, xhat]), axes)]);
      const centered = center ? e.op('Sub', [e.op('Sub', [g, reduceMean(ctx, g, axes)]), proj]) : e.op('Sub', [g, proj]);
      out[0] = e.op('Mul', [r, centered]);
    }
    if (ctx.needsGrad(1)) out[1] = e.unbroadcast(e.op('Mul', [dY, xhat]), yShape, scale, ctx.shape(scale));
    if (center && ctx.needsGrad(2)) out[2] = e.unbroadcast(dY, yShape, ctx.input(2), ctx.shape(ctx.input(2)));
    return out;
  };
}

/** x̂ and r = 1/√(σ² + ε) recomputed with ReduceMean/Sub/Mul/Add/Sqrt/Reciprocal in the input's type. */
function recomputedStats(ctx: GradContext, center: boolean, axes: number[]): { xhat: string; r: string } {
  const e = ctx.e, x = ctx.input(0);
  const eps = e.constFloat(attrFloat(ctx.node, 'epsilon', 1e-5), ctx.elemType(x));
  const xc = center ? e.op('Sub', [x, reduceMean(ctx, x, axes)]) : x;
  const variance = reduceMean(ctx, e.op('Mul', [xc, xc]), axes);
  const r = e.op('Reciprocal', [e.op('Sqrt', [e.op('Add', [variance, eps])])]);
  return { xhat: e.op('Mul', [xc, r]), r };
}

/**
 * x̂ and r from one LayerNormalization with unit scale and no bias: its Y is x̂ and its optional InvStdDev
 * output is r (computed in float, stash_type = 1, and cast back for float16/bfloat16). Used for float,
 * float16 and bfloat16 (ORT's CPU kernel computes the statistics only in float, so double recomputes).
 */
function unitLayerNorm(ctx: GradContext): { xhat: string; r: string } {
  const e = ctx.e, x = ctx.input(0), scale = ctx.input(1), type = ctx.elemType(x);
  const scaleShape = ctx.shape(scale);
  const ones = scaleShape && scaleShape.every((d) => typeof d === 'number')
    ? e.constFloat(new Array<number>((scaleShape as number[]).reduce((a, b) => a * b, 1)).fill(1), type, scaleShape as number[])
    : e.op('ConstantOfShape', [e.shapeOf(scale)], { value: floatConstTensor('', [1], [1], type) });
  const attrs = { axis: attrInt(ctx.node, 'axis', -1), epsilon: { float: attrFloat(ctx.node, 'epsilon', 1e-5) } };
  const [xhat, , invStd] = e.opN('LayerNormalization', [x, ones], attrs, 3);
  return { xhat: xhat!, r: type === DataType.FLOAT ? invStd! : e.op('Cast', [invStd!], { to: type }) };
}

/**
 * BatchNormalization in inference form (running statistics as inputs, training_mode = 0):
 * Y = scale·(X − μ)·r + B, r = 1/√(σ² + ε), per channel (axis 1).
 * dX = dY·scale·r; dScale = Σ dY·x̂; dB = Σ dY; dμ = −Σ dY·scale·r; dσ² = −½·Σ dY·scale·(X − μ)·r³.
 */
function batchNormGrad(ctx: GradContext): InputGrads {
  if (attrInt(ctx.node, 'training_mode', 0) === 1) ctx.fail('training_mode=1 (batch statistics) is not supported; export the model in eval mode');
  const e = ctx.e, x = ctx.input(0), dY = gradY(ctx);
  const rank = ctx.getRank(x);
  const spatial = Array.from({ length: rank - 2 }, (_, i) => i + 1);
  const perChannel = (v: string) => (spatial.length ? e.unsqueeze(v, spatial) : v);
  const reduceAxes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  const [scale, mean, variance] = [ctx.input(1), ctx.input(3), ctx.input(4)];
  const r = e.op('Reciprocal', [e.op('Sqrt', [e.op('Add', [variance, e.constFloat(attrFloat(ctx.node, 'epsilon', 1e-5), ctx.elemType(x))])])]);
  const scaleR = e.op('Mul', [scale, r]);
  const xc = e.op('Sub', [x, perChannel(mean)]);
  const sum = (v: string) => e.reduce('ReduceSum', v, reduceAxes, false);
  const out: InputGrads = [];
  if (ctx.needsGrad(0)) out[0] = e.op('Mul', [dY, perChannel(scaleR)]);
  if (ctx.needsGrad(1)) out[1] = e.op('Mul', [sum(e.op('Mul', [dY, xc])), r]);
  if (ctx.needsGrad(2)) out[2] = sum(dY);
  if (ctx.needsGrad(3)) out[3] = e.op('Neg', [e.op('Mul', [sum(dY), scaleR])]);
  if (ctx.needsGrad(4)) {
    const r3 = e.op('Mul', [e.op('Mul', [r, r]), r]);
    out[4] = e.op('Mul', [e.op('Mul', [sum(e.op('Mul', [dY, xc])), e.op('Mul', [scale, r3])]), e.constFloat(-0.5, ctx.elemType(x))]);
  }
  return out;
}

/**
 * InstanceNormalization: LayerNorm of each (n, c) plane over the spatial axes with a per-channel scale and
 * bias: g = dY·scale_c; dX = r·(g − mean(g) − x̂·mean(g·x̂)); dScale = Σ_{n,spatial} dY·x̂; dB = Σ dY.
 */
function instanceNormGrad(ctx: GradContext): InputGrads {
  const e = ctx.e, x = ctx.input(0), dY = gradY(ctx);
  const rank = ctx.getRank(x);
  const spatial = Array.from({ length: rank - 2 }, (_, i) => i + 2);
  const perChannel = (v: string) => e.unsqueeze(v, Array.from({ length: rank - 2 }, (_, i) => i + 1));
  const eps = e.constFloat(attrFloat(ctx.node, 'epsilon', 1e-5), ctx.elemType(x));
  const xc = e.op('Sub', [x, reduceMean(ctx, x, spatial)]);
  const r = e.op('Reciprocal', [e.op('Sqrt', [e.op('Add', [reduceMean(ctx, e.op('Mul', [xc, xc]), spatial), eps])])]);
  const xhat = e.op('Mul', [xc, r]);
  const sum = (v: string) => e.reduce('ReduceSum', v, [0, ...spatial], false);
  const out: InputGrads = [];
  if (ctx.needsGrad(0)) {
    const g = e.op('Mul', [dY, perChannel(ctx.input(1))]);
    const proj = e.op('Mul', [xhat, reduceMean(ctx, e.op('Mul', [g, xhat]), spatial)]);
    out[0] = e.op('Mul', [r, e.op('Sub', [e.op('Sub', [g, reduceMean(ctx, g, spatial)]), proj])]);
  }
  if (ctx.needsGrad(1)) out[1] = sum(e.op('Mul', [dY, xhat]));
  if (ctx.needsGrad(2)) out[2] = sum(dY);
  return out;
}

export const normalizationRules: GradRule[] = [
  { op: 'InstanceNormalization', inputs: [0, 1, 2], doc: 'per-(n, c) LayerNorm over spatial axes: dX = r·(g − mean g − x̂·mean(g·x̂)); dScale = Σ dY·x̂; dB = Σ dY', build: instanceNormGrad },
  { op: 'BatchNormalization', inputs: [0, 1, 2, 3, 4], doc: 'inference form: dX = dY·scale·r; dScale = Σ dY·x̂; dB = Σ dY (running stats also differentiable)', build: batchNormGrad },
  { op: 'Softmax', inputs: [0], doc: 'dX = Y·(dY − ReduceSum(dY·Y, axis))', build: softmaxGrad },
  { op: 'LogSoftmax', inputs: [0], doc: 'dX = dY − Exp(Y)·ReduceSum(dY, axis)', build: logSoftmaxGrad },
  { op: 'LayerNormalization', inputs: [0, 1, 2], doc: 'recomputed x̂; dX = r·(g − mean g − x̂·mean(g·x̂)), g = dY·scale; dScale = Σ dY·x̂; dBias = Σ dY', build: normGrad(true) },
  { op: 'SimplifiedLayerNormalization', inputs: [0, 1], doc: 'RMSNorm: dX = r·(g − x̂·mean(g·x̂)); dScale = Σ dY·x̂', build: normGrad(false) },
  { op: 'RMSNormalization', inputs: [0, 1], doc: 'RMSNorm (opset 23): dX = r·(g − x̂·mean(g·x̂)); dScale = Σ dY·x̂', build: normGrad(false) },
];
