/**
 * Convolution and pooling (N-D spatial, NCHW layout), with ai.onnx ops that have CUDA kernels.
 * Conv dX: ConvTranspose(dY, W) with the forward strides/pads/dilations/group, padded at the end to X's
 * size (output_padding when static). Conv dW: a Conv of X against dY with strides and dilations swapped;
 * groups fold into the batch axis (X' = [C/g, g·N, …], dY' = [M, N, …], group = g), then Transpose and
 * Slice to the kernel size. MaxPool: recompute with its Indices output, ScatterElements(add) into zeros.
 * AveragePool: ConvTranspose of dY/count with a ones kernel on [N·C, 1, …].
 */
import type { NodeProto } from 'onnx-buf';
import { attrInt, attrInts, attrString } from '../../onnx/build.js';
import { convGeometry, type AxisGeometry } from '../../shapes/op-params.js';
import { floatConstTensor } from '../grad-helpers.js';
import { meanCount } from './reduce.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

const BIG = 2 ** 62;

function gradY(ctx: GradContext): string {
  return ctx.gradOut(0) ?? ctx.fail('output 0 has no gradient');
}

/** Kernel spatial sizes from kernel_shape or the (static) weight shape. */
function kernelOf(ctx: GradContext, w?: string): number[] {
  const k = attrInts(ctx.node, 'kernel_shape') ?? (w ? ctx.shape(w)?.slice(2) : undefined);
  if (!k || !k.every((d) => typeof d === 'number')) return ctx.fail('the kernel size is unknown; give kernel_shape or a weight of static shape');
  return k as number[];
}

function geometry(ctx: GradContext, kernel: number[]): AxisGeometry[] {
  const xShape = ctx.shape(ctx.input(0));
  const sizes = xShape ? xShape.slice(2) : kernel.map(() => null);
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  if ((autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') && !sizes.every((d) => typeof d === 'number')) {
    ctx.fail(`auto_pad=${autoPad} needs static spatial sizes, and these are dynamic; export with explicit pads (or fixed input sizes)`);
  }
  return convGeometry(ctx.node, sizes, kernel);
}

/** Geometry attributes for an emitted Conv / ConvTranspose / pooling node. */
function geomAttrs(g: AxisGeometry[]) {
  return { strides: g.map((a) => a.stride), dilations: g.map((a) => a.dilation), pads: [...g.map((a) => a.padBegin), ...g.map((a) => a.padEnd)] };
}

/**
 * ConvTranspose(dY, kernel) whose output matches X's spatial size: the transposed conv yields
 * (out−1)·s − pads + d·(k−1) + 1, which is X's size minus r = (size + pads − d(k−1) − 1) mod s;
 * r goes to output_padding when static, else a Pad at the end computed from Shape(X).
 */
function transposeConvTo(ctx: GradContext, dY: string, kernel: string, g: AxisGeometry[], group: number, like: string): string {
  const e = ctx.e;
  const base = geomAttrs(g);
  const rem = g.map((a) => (typeof a.size === 'number' ? (a.size + a.padBegin + a.padEnd - a.dilation * (a.kernel - 1) - 1) % a.stride : null));
  if (rem.every((r) => r !== null)) {
    const attrs = rem.some((r) => r !== 0) ? { ...base, group, output_padding: rem as number[] } : { ...base, group };
    return e.op('ConvTranspose', [dY, kernel], attrs);
  }
  // Sizes unknown: crop only the begin pads, then cut at X's size (the end pad region may hold real rows
  // when the last window did not reach the end), and zero-pad rows no window read.
  const beginOnly = [...g.map((a) => a.padBegin), ...g.map(() => 0)];
  const ct = e.op('ConvTranspose', [dY, kernel], { ...base, pads: beginOnly, group });
  const spatial = (v: string) => e.op('Slice', [e.shapeOf(v), e.constInts([2]), e.constInts([BIG])]);
  const axes = g.map((_, i) => i + 2);
  const cut = e.op('Slice', [ct, e.constInts(axes.map(() => 0)), spatial(like), e.constInts(axes)]);
  const diff = e.op('Sub', [spatial(like), spatial(cut)]);
  const pads = e.op('Concat', [e.constInts(new Array<number>(g.length + 4).fill(0)), diff], { axis: 0 });
  return e.op('Pad', [cut, pads, e.constFloat(0, ctx.elemType(like))], { mode: 'constant' });
}

function convGrad(ctx: GradContext): InputGrads {
  const e = ctx.e, x = ctx.input(0), w = ctx.input(1), dY = gradY(ctx);
  const kernel = kernelOf(ctx, w);
  const g = geometry(ctx, kernel);
  const group = attrInt(ctx.node, 'group', 1);
  const out: InputGrads = [];
  if (ctx.needsGrad(0)) out[0] = transposeConvTo(ctx, dY, w, g, group, x);
  if (ctx.needsGrad(1)) out[1] = convWeightGrad(ctx, x, dY, g, group, kernel);
  if (ctx.needsGrad(2)) out[2] = e.reduce('ReduceSum', dY, [0, ...g.map((_, i) => i + 2)], false);
  return out;
}

/** dW[m, c, k] = Σ_{n, o} dY[n, m, o] · Xpad[n, c, o·s + k·d]: a Conv with stride d and dilation s. */
function convWeightGrad(ctx: GradContext, x: string, dY: string, g: AxisGeometry[], group: number, kernel: number[]): string {
  const e = ctx.e;
  const spatialPerm = g.map((_, i) => i + 2);
  let xT: string;
  if (group === 1) xT = e.op('Transpose', [x], { perm: [1, 0, ...spatialPerm] });
  else {
    const cg = ctx.shape(ctx.input(1))?.[1];
    if (typeof cg !== 'number') ctx.fail('grouped Conv needs a weight of static shape');
    const grouped = e.op('Transpose', [e.op('Reshape', [x, e.constInts([0, group, cg as number, -1])])], { perm: [2, 1, 0, 3] });
    const spatial = e.op('Slice', [e.shapeOf(x), e.constInts([2]), e.constInts([BIG])]);
    xT = e.op('Reshape', [grouped, e.op('Concat', [e.constInts([cg as number, -1]), spatial], { axis: 0 })]);
  }
  const dyT = e.op('Transpose', [dY], { perm: [1, 0, ...spatialPerm] });
  const attrs = { strides: g.map((a) => a.dilation), dilations: g.map((a) => a.stride), pads: geomAttrs(g).pads, group };
  const raw = e.op('Transpose', [e.op('Conv', [xT, dyT], attrs)], { perm: [1, 0, ...spatialPerm] });
  // The correlation can overrun the kernel by up to s−1 positions (rows never read by the forward).
  const axes = spatialPerm;
  return e.op('Slice', [raw, e.constInts(kernel.map(() => 0)), e.constInts(kernel), e.constInts(axes)]);
}

/** MaxPool: dX[argmax of each window] += dY (Indices of a recomputed MaxPool, flat over the whole X). */
function maxPoolGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e, x = ctx.input(0), dY = gradY(ctx);
  if (attrInt(ctx.node, 'storage_order', 0) !== 0) ctx.fail('storage_order=1 (column-major indices) is not supported');
  const indices = ctx.output(1) || e.opN('MaxPool', [x], attrsOf(ctx.node), 2)[1]!;
  const flatIdx = e.op('Reshape', [indices, e.constInts([-1])]);
  const flatG = e.op('Reshape', [dY, e.constInts([-1])]);
  const zeros = e.op('ConstantOfShape', [e.op('Reshape', [e.op('Size', [x]), e.constInts([1])])], { value: floatConstTensor('', [1], [0], ctx.elemType(x)) });
  let scattered: string;
  if (ctx.opset >= 16) scattered = e.op('ScatterElements', [zeros, flatIdx, flatG], { axis: 0, reduction: 'add' });
  else {
    const g = geometry(ctx, kernelOf(ctx));
    if (g.some((a) => a.stride < a.dilation * (a.kernel - 1) + 1)) ctx.fail('overlapping MaxPool windows need opset 16 (ScatterElements reduction=add)');
    scattered = e.op('ScatterElements', [zeros, flatIdx, flatG], { axis: 0 });
  }
  return [e.op('Reshape', [scattered, e.shapeOf(x)])];
}

function attrsOf(n: NodeProto) {
  const out: Record<string, number[] | number | string> = {};
  for (const a of n.attribute) {
    if (a.ints.length) out[a.name] = a.ints.map(Number);
    else if (a.s.length) out[a.name] = new TextDecoder().decode(a.s);
    else out[a.name] = Number(a.i);
  }
  return out;
}

/** AveragePool: dX = ConvTranspose(dY / count, ones kernel) per (n, c) plane. */
function averagePoolGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e, x = ctx.input(0), dY = gradY(ctx), type = ctx.elemType(x);
  const kernel = kernelOf(ctx);
  const g = geometry(ctx, kernel);
  if (attrInt(ctx.node, 'ceil_mode', 0) === 1 && !ceilSameAsFloor(g)) ctx.fail('ceil_mode=1 with a partial last window is not supported; export with ceil_mode=0');
  const ones = e.constFloat(new Array<number>(kernel.reduce((a, b) => a * b, 1)).fill(1), type, [1, 1, ...kernel]);
  const padded = g.some((a) => a.padBegin !== 0 || a.padEnd !== 0);
  let count: string;
  if (attrInt(ctx.node, 'count_include_pad', 0) === 1 || !padded) count = e.constFloat(kernel.reduce((a, b) => a * b, 1), type);
  else {
    // Non-pad elements per window: a Conv of ones over ones with the forward geometry.
    const spatial = e.op('Slice', [e.shapeOf(x), e.constInts([2]), e.constInts([BIG])]);
    const plane = e.op('ConstantOfShape', [e.op('Concat', [e.constInts([1, 1]), spatial], { axis: 0 })], { value: floatConstTensor('', [1], [1], type) });
    count = e.op('Conv', [plane, ones], geomAttrs(g));
  }
  const planes = e.op('Reshape', [e.op('Div', [dY, count]), e.constInts([-1, 1, ...g.map(() => 0)])]);
  const spread = transposeConvTo(ctx, planes, ones, g, 1, x);
  return [e.op('Reshape', [spread, e.shapeOf(x)])];
}

function ceilSameAsFloor(g: AxisGeometry[]): boolean {
  return g.every((a) => typeof a.size === 'number' && (a.size + a.padBegin + a.padEnd - a.dilation * (a.kernel - 1) - 1) % a.stride === 0);
}

export const convRules: GradRule[] = [
  { op: 'Conv', inputs: [0, 1, 2], doc: 'dX = ConvTranspose(dY, W); dW = Conv(Xᵀ, dYᵀ) with strides↔dilations, groups folded into batch; dB = Σ dY', build: convGrad },
  { op: 'MaxPool', inputs: [0], doc: 'ScatterElements(zeros, Indices, dY, reduction=add) with Indices from a recomputed MaxPool', build: maxPoolGrad },
  { op: 'AveragePool', inputs: [0], doc: 'ConvTranspose(dY / count, ones kernel) on [N·C, 1, …] planes', build: averagePoolGrad },
  {
    op: 'GlobalAveragePool', inputs: [0], doc: 'dX = Expand(dY / (H·W), Shape(X))',
    build: (ctx) => [ctx.needsGrad(0) ? ctx.e.op('Expand', [ctx.e.op('Div', [gradY(ctx), meanCount(ctx, ctx.input(0), ctx.output(0))]), ctx.e.shapeOf(ctx.input(0))]) : undefined],
  },
];
