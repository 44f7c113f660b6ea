/**
 * Index-driven and contraction ops: GatherElements / GatherND (scatter-add back, opset ≥ 16), Trilu (same
 * mask on dY), CumSum (the reverse cumulative sum), Einsum (each operand's gradient is another Einsum), and
 * piecewise-constant ops (Floor, Ceil, Round, Sign: zero gradient almost everywhere).
 */
import { attrInt, attrString } from '../../onnx/build.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

function gradY(ctx: GradContext): string {
  return ctx.gradOut(0) ?? ctx.fail('output 0 has no gradient');
}

function needScatterReduction(ctx: GradContext): void {
  if (ctx.opset < 16) ctx.fail('this gradient needs opset 16 (scatter with reduction=add); convert the model to opset 16+');
}

/** GatherElements: dData = ScatterElements(zeros, idx, dY, axis, reduction = add). */
function gatherElementsGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  needScatterReduction(ctx);
  const e = ctx.e, data = ctx.input(0);
  const zeros = e.zerosLike(data, ctx.elemType(data));
  return [e.op('ScatterElements', [zeros, ctx.input(1), gradY(ctx)], { axis: attrInt(ctx.node, 'axis', 0), reduction: 'add' })];
}

/** GatherND (batch_dims = 0): dData = ScatterND(zeros, idx, dY, reduction = add). */
function gatherNdGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  if (attrInt(ctx.node, 'batch_dims', 0) !== 0) ctx.fail('GatherND with batch_dims > 0 is not supported');
  needScatterReduction(ctx);
  const e = ctx.e, data = ctx.input(0);
  return [e.op('ScatterND', [e.zerosLike(data, ctx.elemType(data)), ctx.input(1), gradY(ctx)], { reduction: 'add' })];
}

/** CumSum along an axis: dX = CumSum(dY, axis, reverse = !reverse, same exclusive). */
function cumSumGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const reverse = attrInt(ctx.node, 'reverse', 0) === 1 ? 0 : 1;
  return [ctx.e.op('CumSum', [gradY(ctx), ctx.input(1)], { exclusive: attrInt(ctx.node, 'exclusive', 0), reverse })];
}

/**
 * Einsum: for operand i with subscripts s_i, dX_i = Einsum(out, s_j≠i → s_i)(dY, X_j≠i). Valid when s_i has
 * no repeated letter and every letter of s_i occurs in the output or another operand (else the letter was
 * summed over X_i alone, which needs an Expand: not supported).
 */
function einsumGrad(ctx: GradContext): InputGrads {
  const eq = attrString(ctx.node, 'equation', '').replace(/\s/g, '');
  const [lhs, rhs] = eq.split('->');
  if (rhs === undefined || eq.includes('.')) ctx.fail('Einsum gradients need an explicit "->" output and no ellipsis');
  const terms = lhs!.split(',');
  return ctx.node.input.map((x, i) => {
    if (!ctx.needsGrad(i)) return undefined;
    const own = terms[i]!;
    const others = terms.filter((_, j) => j !== i);
    const available = new Set([...rhs!, ...others.join('')]);
    if (new Set(own).size !== own.length || [...own].some((c) => !available.has(c))) {
      ctx.fail(`the gradient of Einsum operand ${i} ('${own}' in '${eq}') is not supported`);
    }
    const inputs = [ctx.gradOut(0) ?? ctx.fail('output has no gradient'), ...ctx.node.input.filter((_, j) => j !== i)];
    return ctx.e.op('Einsum', inputs, { equation: `${[rhs, ...others].join(',')}->${own}` });
  });
}

const zeroGradient = (op: string): GradRule => ({ op, inputs: [0], doc: 'piecewise constant: zero gradient (no contribution)', build: () => [] });

export const indexingRules: GradRule[] = [
  { op: 'GatherElements', inputs: [0], doc: 'dData = ScatterElements(zeros, idx, dY, axis, reduction=add) (opset ≥ 16)', build: gatherElementsGrad },
  { op: 'GatherND', inputs: [0], doc: 'dData = ScatterND(zeros, idx, dY, reduction=add) (batch_dims 0, opset ≥ 16)', build: gatherNdGrad },
  {
    op: 'Trilu', inputs: [0], doc: 'dX = Trilu(dY, k, upper)',
    build: (ctx) => [ctx.needsGrad(0) ? ctx.e.op('Trilu', ctx.input(1) ? [gradY(ctx), ctx.input(1)] : [gradY(ctx)], { upper: attrInt(ctx.node, 'upper', 1) }) : undefined],
  },
  { op: 'CumSum', inputs: [0], doc: 'dX = CumSum(dY, axis, reverse = ¬reverse, exclusive)', build: cumSumGrad },
  { op: 'Einsum', inputs: 'all', doc: 'dXi = Einsum(dY, Xj≠i) with the equation rewritten to produce s_i', build: einsumGrad },
  zeroGradient('Floor'), zeroGradient('Ceil'), zeroGradient('Round'), zeroGradient('Sign'),
];
