/**
 * Reductions. With g = dY and y = Y unsqueezed back to keepdims form (Unsqueeze(·, axes) when keepdims = 0;
 * axes from the attribute — ReduceSum < 13, the others < 18 — or the input), every rule is element-wise
 * against X with broadcasting, then Expand to Shape(X) where needed:
 *   Sum: Expand(g)   Mean: Expand(g / N), N = Size(X)/Size(Y)   SumSquare: g·2X   L2: g·X/y
 *   LogSumExp: g·exp(X − y)   Max/Min: g·[X = y] (ties all receive the gradient)
 */
import { attrInt, attrInts } from '../../onnx/build.js';
import { elementCount } from '../../onnx/tensor.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

interface Kept { g: string; y: string }

/** dY and Y in keepdims form, or undefined for a reduction over no axes that is the identity. */
function keptForm(ctx: GradContext): Kept | 'identity' {
  const e = ctx.e;
  const g = ctx.gradOut(0) ?? ctx.fail('output has no gradient');
  const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
  const attrAxes = attrInts(ctx.node, 'axes');
  const axesInput = ctx.input(1);
  const noAxes = attrAxes === undefined && axesInput === '';
  if (noAxes && attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1) return 'identity';
  if (keep || noAxes) return { g, y: ctx.output(0) };
  const axes = attrAxes ?? axesInput;
  return { g: e.unsqueeze(g, axes), y: e.unsqueeze(ctx.output(0), axes) };
}

function reduceRule(op: string, doc: string, build: (ctx: GradContext, k: Kept) => string): GradRule {
  return {
    op, inputs: [0], doc,
    build: (ctx): InputGrads => {
      if (!ctx.needsGrad(0)) return [];
      const k = keptForm(ctx);
      if (k === 'identity') {
        if (op === 'ReduceSum' || op === 'ReduceMean' || op === 'ReduceMax' || op === 'ReduceMin') return [ctx.gradOut(0)];
        ctx.fail('a reduction over no axes with noop_with_empty_axes=1 is not supported');
      }
      return [build(ctx, k as Kept)];
    },
  };
}

/** N = elements averaged per output: static when both shapes are, else Size(X)/Size(Y) at run time. */
export function meanCount(ctx: GradContext, x: string, y: string): string {
  const e = ctx.e, type = ctx.elemType(x);
  const xs = ctx.shape(x), ys = ctx.shape(y);
  const isStatic = (s?: unknown[]): s is number[] => !!s && s.every((d) => typeof d === 'number');
  if (isStatic(xs) && isStatic(ys)) return e.constFloat(elementCount(xs) / elementCount(ys), type);
  const n = e.op('Div', [e.op('Size', [x]), e.op('Size', [y])]);
  return e.op('Cast', [n], { to: type });
}

const c = (ctx: GradContext, v: number) => ctx.e.constFloat(v, ctx.elemType(ctx.input(0)));

export const reduceRules: GradRule[] = [
  reduceRule('ReduceSum', 'dX = Expand(dY, Shape(X))', (ctx, k) => ctx.e.op('Expand', [k.g, ctx.e.shapeOf(ctx.input(0))])),
  reduceRule('ReduceMean', 'dX = Expand(dY / N, Shape(X))', (ctx, k) =>
    ctx.e.op('Expand', [ctx.e.op('Div', [k.g, meanCount(ctx, ctx.input(0), ctx.output(0))]), ctx.e.shapeOf(ctx.input(0))])),
  reduceRule('ReduceSumSquare', 'dX = dY·2X', (ctx, k) => ctx.e.op('Mul', [k.g, ctx.e.op('Mul', [ctx.input(0), c(ctx, 2)])])),
  reduceRule('ReduceL2', 'dX = dY·X/Y', (ctx, k) => ctx.e.op('Mul', [k.g, ctx.e.op('Div', [ctx.input(0), k.y])])),
  reduceRule('ReduceLogSumExp', 'dX = dY·exp(X − Y)', (ctx, k) => ctx.e.op('Mul', [k.g, ctx.e.op('Exp', [ctx.e.op('Sub', [ctx.input(0), k.y])])])),
  reduceRule('ReduceMax', 'dX = dY·[X = Y]', (ctx, k) => selected(ctx, k)),
  reduceRule('ReduceMin', 'dX = dY·[X = Y]', (ctx, k) => selected(ctx, k)),
];

function selected(ctx: GradContext, k: Kept): string {
  const x = ctx.input(0);
  return ctx.e.op('Mul', [k.g, ctx.e.op('Cast', [ctx.e.op('Equal', [x, k.y])], { to: ctx.elemType(x) })]);
}
