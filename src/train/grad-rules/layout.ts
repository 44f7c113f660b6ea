/**
 * Padding, tiling and space/depth rearrangements. Their gradients gather the padded/tiled/moved elements
 * back: Pad → Slice (and Pad for negative pads), Tile → Reshape to [r0, d0, r1, d1, …] + ReduceSum over the
 * repeat axes, DepthToSpace (DCR) ↔ SpaceToDepth, DepthToSpace (CRD) → Reshape/Transpose/Reshape.
 */
import { attrInt, attrInts, attrString } from '../../onnx/build.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

const BIG = 2 ** 62;

function gradY(ctx: GradContext): string {
  return ctx.gradOut(0) ?? ctx.fail('output 0 has no gradient');
}

function constInts(ctx: GradContext, name: string, what: string): number[] {
  const v = ctx.ints(name);
  if (!v || !v.every((d) => typeof d === 'number')) return ctx.fail(`${what} must be a constant for the gradient`);
  return v as number[];
}

export function staticShape(ctx: GradContext, name: string): number[] {
  const s = ctx.shape(name);
  if (!s || !s.every((d) => typeof d === 'number')) return ctx.fail(`the shape of '${name}' must be static for this gradient, and it is dynamic; export the model with fixed input sizes`);
  return s as number[];
}

/** Values of an int input when every entry is a number (folded by the shape inference), else undefined. */
function foldedInts(ctx: GradContext, name: string): number[] | undefined {
  const v = ctx.ints(name);
  return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
}

/** Pad (constant mode): dX = Slice(dY, max(begin, 0), −max(end, 0)), then zero-Pad what negative pads cropped. */
function padGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e;
  if (attrString(ctx.node, 'mode', 'constant') !== 'constant') ctx.fail('only mode=constant Pad has a gradient rule');
  const pads = attrInts(ctx.node, 'pads') ?? foldedInts(ctx, ctx.input(1));
  const rank = ctx.getRank(ctx.input(0));
  const axes = ctx.input(3) ? constInts(ctx, ctx.input(3), 'Pad axes') : Array.from({ length: pads ? pads.length / 2 : rank }, (_, i) => i);
  if (!pads) return [padGradRuntime(ctx, axes)];
  const k = pads.length / 2;
  const begin = pads.slice(0, k), end = pads.slice(k);
  const starts = begin.map((p) => Math.max(p, 0));
  const ends = end.map((p) => (p > 0 ? -p : BIG));
  let g = e.op('Slice', [gradY(ctx), e.constInts(starts), e.constInts(ends), e.constInts(axes)]);
  if (pads.some((p) => p < 0)) {
    const back = [...begin.map((p) => Math.max(-p, 0)), ...end.map((p) => Math.max(-p, 0))];
    const padInputs = [g, e.constInts(back), e.constFloat(0, ctx.elemType(ctx.input(0)))];
    g = e.op('Pad', ctx.input(3) ? [...padInputs, e.constInts(axes)] : padInputs);
  }
  return [g];
}

/**
 * Pad with pads computed at run time (P = [b₀…b_{k−1}, e₀…e_{k−1}] on `axes`), in-graph: the kept part of X
 * starts at s = max(b, 0) in Y and is n = dim_X − max(−b, 0) − max(−e, 0) long, so
 * dX = Pad(Slice(dY, s, s + n), [max(−b, 0), max(−e, 0)]) (the outer Pad restores what negative pads cropped).
 */
function padGradRuntime(ctx: GradContext, axes: number[]): string {
  const e = ctx.e, x = ctx.input(0), k = axes.length;
  const pads = ctx.input(1) || ctx.fail('Pad has neither a pads attribute nor a pads input');
  const zero = e.constInts([0]);
  const part = (from: number) => e.op('Slice', [pads, e.constInts([from]), e.constInts([from + k])]);
  const begin = part(0), end = part(k);
  const cropB = e.op('Max', [e.op('Neg', [begin]), zero]);
  const cropE = e.op('Max', [e.op('Neg', [end]), zero]);
  const dims = e.op('Gather', [e.shapeOf(x), e.constInts(axes)], { axis: 0 });
  const starts = e.op('Max', [begin, zero]);
  const ends = e.op('Add', [starts, e.op('Sub', [e.op('Sub', [dims, cropB]), cropE])]);
  const kept = e.op('Slice', [gradY(ctx), starts, ends, e.constInts(axes)]);
  const back = e.op('Concat', [cropB, cropE], { axis: 0 });
  const padInputs = [kept, back, e.constFloat(0, ctx.elemType(x))];
  return e.op('Pad', ctx.opset >= 18 ? [...padInputs, e.constInts(axes)] : padInputs);
}

/** Tile: Y = X repeated r_i times on axis i; dX = Σ over the copies. */
function tileGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e;
  const repeats = foldedInts(ctx, ctx.input(1));
  const shape = ctx.shape(ctx.input(0));
  const rank = ctx.getRank(ctx.input(0));
  const evenAxes = Array.from({ length: rank }, (_, i) => 2 * i);
  if (repeats && shape && shape.every((d) => typeof d === 'number')) {
    const split = repeats.flatMap((r, i) => [r, shape[i] as number]);
    return [e.reduce('ReduceSum', e.op('Reshape', [gradY(ctx), e.constInts(split)]), evenAxes, false)];
  }
  // Run-time repeats R or dims D: Reshape dY to [r₀, d₀, r₁, d₁, …] built in-graph by interleaving R and
  // Shape(X) (Concat of the two as columns of a [rank, 2] matrix, flattened), then ReduceSum the even axes.
  const col = (v: string) => e.unsqueeze(v, [1]);
  const reps = repeats ? e.constInts(repeats) : ctx.input(1);
  const interleaved = e.op('Reshape', [e.op('Concat', [col(reps), col(e.shapeOf(ctx.input(0)))], { axis: 1 }), e.constInts([-1])]);
  return [e.reduce('ReduceSum', e.op('Reshape', [gradY(ctx), interleaved]), evenAxes, false)];
}

function depthToSpaceGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e, b = attrInt(ctx.node, 'blocksize', 0);
  if (attrString(ctx.node, 'mode', 'DCR') === 'DCR') return [e.op('SpaceToDepth', [gradY(ctx)], { blocksize: b })];
  // CRD: X [N, C, H, W] → [N, C/b², b, b, H, W] → perm [0,1,4,2,5,3] → [N, C/b², H·b, W·b]; invert it.
  const x = ctx.input(0), dY = gradY(ctx);
  const gather = (v: string, idx: number[]) => e.op('Gather', [e.shapeOf(v), e.constInts(idx)], { axis: 0 });
  const blocks = e.constInts([b]);
  const target = e.op('Concat', [gather(dY, [0, 1]), gather(x, [2]), blocks, gather(x, [3]), blocks], { axis: 0 });
  const moved = e.op('Transpose', [e.op('Reshape', [dY, target])], { perm: [0, 1, 3, 5, 2, 4] });
  return [e.op('Reshape', [moved, e.shapeOf(x)])];
}

export const layoutRules: GradRule[] = [
  { op: 'Pad', inputs: [0], doc: 'constant mode: dX = Slice(dY, begin pads, −end pads) (+ zero Pad for negative pads); run-time pads: the same with starts/ends computed in-graph', build: padGrad },
  { op: 'Tile', inputs: [0], doc: 'dX = ReduceSum(Reshape(dY, [r0, d0, r1, d1, …]), even axes); run-time repeats or dims: that shape built in-graph', build: tileGrad },
  { op: 'DepthToSpace', inputs: [0], doc: 'DCR: SpaceToDepth(dY); CRD: Reshape/Transpose/Reshape inverse', build: depthToSpaceGrad },
  {
    op: 'SpaceToDepth', inputs: [0], doc: 'dX = DepthToSpace(dY, mode=DCR)',
    build: (ctx) => [ctx.needsGrad(0) ? ctx.e.op('DepthToSpace', [gradY(ctx)], { blocksize: attrInt(ctx.node, 'blocksize', 0), mode: 'DCR' }) : undefined],
  },
];
