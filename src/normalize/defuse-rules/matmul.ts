/**
 * FusedMatMul(A, B) = α·op(A)·op(B), op = transpose of the last two axes when transA / transB is set
 * (onnxruntime docs/ContribOperators.md) → Transpose, MatMul, Mul. transBatchA / transBatchB (batch axes
 * moved past the matrix axes) are refused.
 */
import type { NodeProto } from 'onnx-buf';
import { attrFloat, attrInt } from '../../onnx/build.js';
import type { NodeSink } from '../node-sink.js';
import { fail, OK, type DefuseRule, type Match, type RuleContext } from './types.js';

/** perm swapping the last two axes of a rank-r tensor. */
export function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return perm;
}

function matchFusedMatMul(n: NodeProto, ctx: RuleContext): Match {
  for (const a of ['transBatchA', 'transBatchB']) {
    if (attrInt(n, a, 0) !== 0) return fail(`attribute ${a}=1 (batch axes transposed) is not supported`);
  }
  for (const [flag, slot] of [['transA', 0], ['transB', 1]] as const) {
    if (attrInt(n, flag, 0) === 0) continue;
    const rank = ctx.shape(n.input[slot]!)?.length;
    if (rank === undefined) return fail(`attribute ${flag}=1 but the rank of input ${slot} '${n.input[slot]}' is unknown`);
    if (rank < 2) return fail(`attribute ${flag}=1 on input ${slot} of rank ${rank}`);
  }
  return OK;
}

export const MATMUL_RULES: DefuseRule[] = [{
  id: 'defuse/fused-matmul', opType: 'FusedMatMul', domains: ['com.microsoft'],
  doc: 'FusedMatMul(A, B) → MatMul(transA ? Aᵀ : A, transB ? Bᵀ : B)·α',
  match: matchFusedMatMul,
  rewrite: (n, ctx, s) => {
    const operand = (flag: string, slot: number) => {
      const x = n.input[slot]!;
      return attrInt(n, flag, 0) ? s.op('Transpose', [x], { perm: swapLastTwo(ctx.shape(x)!.length) }) : x;
    };
    const a = operand('transA', 0);
    const b = operand('transB', 1);
    const alpha = attrFloat(n, 'alpha', 1);
    if (alpha === 1) s.op('MatMul', [a, b], {}, n.output[0]!);
    else s.op('Mul', [s.op('MatMul', [a, b]), s.f32(alpha)], {}, n.output[0]!);
  },
}];
