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
  if (!s || !s.every((d) => typeof d === 'number')) return ctx.fail(`the shape of '${name}' must be static for this gradient; run shape inference with fixed input sizes`);
  return s as number[];
}

/** Pad (constant mode): dX = Slice(dY, max(begin, 0), −max(end, 0)), then zero-Pad what negative pads cropped. */
function padGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e;
  if (attrString(ctx.node, 'mode', 'constant') !== 'constant') ctx.fail('only mode=constant Pad has a gradient rule');
  const pads = attrInts(ctx.node, 'pads') ?? constInts(ctx, ctx.input(1), 'Pad pads');
  const k = pads.length / 2;
  const axes = ctx.input(3) ? constInts(ctx, ctx.input(3), 'Pad axes') : Array.from({ length: k }, (_, i) => i);
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

/** Tile: Y = X repeated r_i times on axis i; dX = Σ over the copies. */
function tileGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e;
  const repeats = constInts(ctx, ctx.input(1), 'Tile repeats');
  const dims = staticShape(ctx, ctx.input(0));
  const split = repeats.flatMap((r, i) => [r, dims[i]!]);
  const grouped = e.op('Reshape', [gradY(ctx), e.constInts(split)]);
  return [e.reduce('ReduceSum', grouped, repeats.map((_, i) => 2 * i), false)];
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
  { op: 'Pad', inputs: [0], doc: 'constant mode: dX = Slice(dY, begin pads, −end pads) (+ zero Pad for negative pads)', build: padGrad },
  { op: 'Tile', inputs: [0], doc: 'dX = ReduceSum(Reshape(dY, [r0, d0, r1, d1, …]), even axes)', build: tileGrad },
  { op: 'DepthToSpace', inputs: [0], doc: 'DCR: SpaceToDepth(dY); CRD: Reshape/Transpose/Reshape inverse', build: depthToSpaceGrad },
  {
    op: 'SpaceToDepth', inputs: [0], doc: 'dX = DepthToSpace(dY, mode=DCR)',
    build: (ctx) => [ctx.needsGrad(0) ? ctx.e.op('DepthToSpace', [gradY(ctx)], { blocksize: attrInt(ctx.node, 'blocksize', 0), mode: 'DCR' }) : undefined],
  },
];
