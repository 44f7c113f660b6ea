/**
 * Layer norms onnxruntime fuses with the residual add (onnxruntime docs/ContribOperators.md), over the last
 * axis:
 *   SkipLayerNormalization(x, skip, γ, β?, b?)        s = x + skip (+ b);  y = (s − μ)/√(σ² + ε)·γ (+ β)
 *   SkipSimplifiedLayerNormalization(x, skip, γ, b?)  s = x + skip (+ b);  y = s/√(mean(s²) + ε)·γ
 *   SimplifiedLayerNormalization(x, γ) (RMSNorm)      y = x/√(mean(x²) + ε)·γ
 * Output 3 of the Skip forms is s itself (the next residual). Outputs mean / inv_std_var are refused.
 * LayerNorm is written as ai.onnx LayerNormalization from opset 17, decomposed below it (the forms
 * src/analysis/norms.ts recognises).
 */
import type { NodeProto } from 'onnx-buf';
import { attrFloat, attrInt } from '../../onnx/build.js';
import type { NodeSink } from '../node-sink.js';
import { fail, OK, optionalInput, usedOutputFrom, type DefuseRule, type Match, type RuleContext } from './types.js';

const SKIP_LN_EPSILON = 1e-12;
const SIMPLIFIED_LN_EPSILON = 1e-5;

/** (s − mean(s))/√(var(s) + ε)·γ + β over the last axis, into `out`. */
export function emitLayerNorm(s: NodeSink, x: string, gamma: string, beta: string | undefined, epsilon: number, out: string): void {
  if (s.opset >= 17) {
    s.op('LayerNormalization', beta ? [x, gamma, beta] : [x, gamma], { axis: -1, epsilon: { float: epsilon } }, out);
    return;
  }
  const centred = s.op('Sub', [x, s.reduceMean(x, [-1])]);
  const variance = s.reduceMean(s.op('Pow', [centred, s.f32(2)]), [-1]);
  const normed = s.op('Div', [centred, s.op('Sqrt', [s.op('Add', [variance, s.f32(epsilon)])])]);
  if (beta) s.op('Add', [s.op('Mul', [normed, gamma]), beta], {}, out);
  else s.op('Mul', [normed, gamma], {}, out);
}

/** x/√(mean(x²) + ε)·γ over the last axis, into `out`. */
export function emitRmsNorm(s: NodeSink, x: string, gamma: string, epsilon: number, out: string): void {
  const meanSquare = s.reduceMean(s.op('Pow', [x, s.f32(2)]), [-1]);
  const normed = s.op('Div', [x, s.op('Sqrt', [s.op('Add', [meanSquare, s.f32(epsilon)])])]);
  s.op('Mul', [normed, gamma], {}, out);
}

/** s = x + skip (+ bias), named as output 3 when that output is used. */
function emitResidualSum(s: NodeSink, n: NodeProto, biasSlot: number, ctx: RuleContext): string {
  const bias = optionalInput(n, biasSlot);
  const sumOut = n.output[3] && ctx.isUsed(n.output[3]) ? n.output[3] : undefined;
  if (!bias) return s.op('Add', [n.input[0]!, n.input[1]!], {}, sumOut);
  return s.op('Add', [s.op('Add', [n.input[0]!, n.input[1]!]), bias], {}, sumOut);
}

function statsOutputsUnused(n: NodeProto, ctx: RuleContext, names: string[]): Match {
  for (let i = 1; i <= names.length; i++) {
    if (n.output[i] && ctx.isUsed(n.output[i]!)) return fail(`output ${i} (${names[i - 1]}) is used; only the normalized output and the residual sum are supported`);
  }
  return OK;
}

function lastAxisOnly(n: NodeProto, ctx: RuleContext): Match {
  const axis = attrInt(n, 'axis', -1);
  const rank = ctx.shape(n.input[0]!)?.length;
  if (axis === -1 || (rank !== undefined && axis === rank - 1)) return OK;
  return fail(`attribute axis=${axis} normalizes over more than the last axis${rank === undefined ? ' (rank unknown)' : ''}; only the last axis is supported`);
}

export const NORM_RULES: DefuseRule[] = [
  {
    // onnxruntime registers LayerNormalization in the default domain for every opset; ONNX has it from 17.
    id: 'defuse/layer-norm-before-17', opType: 'LayerNormalization', domains: ['', 'ai.onnx'],
    doc: 'LayerNormalization in a graph below opset 17 (onnxruntime\'s own registration) → decomposed (x − μ)/√(σ² + ε)·γ + β',
    appliesTo: (_n, ctx) => ctx.opset < 17,
    match: (n, ctx) => {
      const axis = lastAxisOnly(n, ctx);
      if (!axis.ok) return axis;
      return statsOutputsUnused(n, ctx, ['mean', 'inv_std_var']);
    },
    rewrite: (n, _ctx, s) => emitLayerNorm(s, n.input[0]!, n.input[1]!, optionalInput(n, 2), attrFloat(n, 'epsilon', 1e-5), n.output[0]!),
  },
  {
    id: 'defuse/skip-layer-norm', opType: 'SkipLayerNormalization', domains: ['com.microsoft'],
    doc: 'SkipLayerNormalization(x, skip, γ, β, b) → s = x + skip + b; LayerNorm(s)·γ + β (output 3 = s)',
    match: (n, ctx) => statsOutputsUnused(n, ctx, ['mean', 'inv_std_var']),
    rewrite: (n, ctx, s) => {
      const sum = emitResidualSum(s, n, 4, ctx);
      emitLayerNorm(s, sum, n.input[2]!, optionalInput(n, 3), attrFloat(n, 'epsilon', SKIP_LN_EPSILON), n.output[0]!);
    },
  },
  {
    id: 'defuse/skip-simplified-layer-norm', opType: 'SkipSimplifiedLayerNormalization', domains: ['com.microsoft'],
    doc: 'SkipSimplifiedLayerNormalization(x, skip, γ, b) → s = x + skip + b; s/√(mean(s²) + ε)·γ (output 3 = s)',
    match: (n, ctx) => statsOutputsUnused(n, ctx, ['mean', 'inv_std_var']),
    rewrite: (n, ctx, s) => {
      const sum = emitResidualSum(s, n, 3, ctx);
      emitRmsNorm(s, sum, n.input[2]!, attrFloat(n, 'epsilon', SKIP_LN_EPSILON), n.output[0]!);
    },
  },
  {
    id: 'defuse/simplified-layer-norm', opType: 'SimplifiedLayerNormalization', domains: ['', 'ai.onnx', 'com.microsoft'],
    doc: 'SimplifiedLayerNormalization(x, γ) (RMSNorm) → x/√(mean(x²) + ε)·γ',
    match: (n, ctx) => {
      const axis = lastAxisOnly(n, ctx);
      if (!axis.ok) return axis;
      return n.output[1] && ctx.isUsed(n.output[1]) ? fail('output 1 (inv_std_var) is used; only the normalized output is supported') : OK;
    },
    rewrite: (n, _ctx, s) => emitRmsNorm(s, n.input[0]!, n.input[1]!, attrFloat(n, 'epsilon', SIMPLIFIED_LN_EPSILON), n.output[0]!),
  },
];
