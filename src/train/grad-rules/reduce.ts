/**
 * ReduceSum / ReduceMean: dX = Expand(Unsqueeze(dY, axes) when keepdims = 0, Shape(X)) [÷ N for the mean,
 * N = Size(X)/Size(Y)]. Axes come from the attribute (ReduceSum < 13, ReduceMean < 18) or the input.
 */
import { attrInt, attrInts } from '../../onnx/build.js';
import { elementCount } from '../../onnx/tensor.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

function reduceGrad(mean: boolean) {
  return (ctx: GradContext): InputGrads => {
    if (!ctx.needsGrad(0)) return [];
    const e = ctx.e, x = ctx.input(0), y = ctx.output(0);
    let g = ctx.gradOut(0) ?? ctx.fail('output has no gradient');
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    const attrAxes = attrInts(ctx.node, 'axes');
    const axesInput = ctx.input(1);
    const noop = attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1;
    const noAxes = attrAxes === undefined && axesInput === '';
    if (noAxes && noop) return [g]; // identity
    if (!keep && !noAxes) g = e.unsqueeze(g, attrAxes ?? axesInput);
    if (mean) g = e.op('Div', [g, meanCount(ctx, x, y)]);
    return [e.op('Expand', [g, e.shapeOf(x)])];
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

export const reduceRules: GradRule[] = [
  { op: 'ReduceSum', inputs: [0], doc: 'dX = Expand(Unsqueeze(dY, axes) if keepdims=0, Shape(X))', build: reduceGrad(false) },
  { op: 'ReduceMean', inputs: [0], doc: 'dX = Expand(Unsqueeze(dY, axes) if keepdims=0, Shape(X)) / N', build: reduceGrad(true) },
];
