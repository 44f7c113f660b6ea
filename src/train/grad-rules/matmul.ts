/**
 * MatMul (numpy semantics: batched, broadcast batch dims, 1-D operands promoted) and Gemm.
 * MatMul: dA = dY·Bᵀ, dB = Aᵀ·dY on the promoted operands, then summed over broadcast batch axes
 * (ORT gradient_builder.cc GetMatMulGradient, with ai.onnx MatMul/Transpose instead of FusedMatMul).
 */
import { attrFloat, attrInt } from '../../onnx/build.js';
import { matmulShape, type Shape } from '../../shapes/infer.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

/** Transpose swapping the last two axes of a rank-r value. */
function swapLast(ctx: GradContext, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return ctx.e.op('Transpose', [x], { perm });
}

function matmulGrad(ctx: GradContext): InputGrads {
  const e = ctx.e, a = ctx.input(0), b = ctx.input(1);
  const dY = ctx.gradOut(0) ?? ctx.fail('output has no gradient');
  const ra = ctx.getRank(a), rb = ctx.getRank(b);
  if (ra === 1 && rb === 1) {
    // Y = Σ a·b (a scalar): dA = dY·B, dB = dY·A.
    return [ctx.needsGrad(0) ? e.op('Mul', [dY, b]) : undefined, ctx.needsGrad(1) ? e.op('Mul', [dY, a]) : undefined];
  }
  const aShape = ctx.shape(a), bShape = ctx.shape(b);
  // Promote 1-D operands: A [K] → [1, K], B [K] → [K, 1]; dY gains the dropped axis back.
  const a2 = ra === 1 ? e.unsqueeze(a, [0]) : a;
  const b2 = rb === 1 ? e.unsqueeze(b, [1]) : b;
  const a2Shape: Shape | undefined = aShape && (ra === 1 ? [1, ...aShape] : aShape);
  const b2Shape: Shape | undefined = bShape && (rb === 1 ? [...bShape, 1] : bShape);
  const dY2 = ra === 1 ? e.unsqueeze(dY, [-2]) : rb === 1 ? e.unsqueeze(dY, [-1]) : dY;
  const y2Shape = matmulShape(a2Shape, b2Shape);
  const ra2 = Math.max(ra, 2), rb2 = Math.max(rb, 2), ry2 = Math.max(ra2, rb2);
  const out: InputGrads = [];
  if (ctx.needsGrad(0)) {
    const raw = e.op('MatMul', [dY2, swapLast(ctx, b2, rb2)]);
    const rawShape = y2Shape && a2Shape ? [...y2Shape.slice(0, ry2 - 2), ...a2Shape.slice(-2)] : undefined;
    const reduced = e.unbroadcast(raw, rawShape, a2, a2Shape);
    out[0] = ra === 1 ? e.reshapeLike(reduced, a, aShape) : reduced;
  }
  if (ctx.needsGrad(1)) {
    let reduced: string;
    if (rb2 === 2 && ra2 > 2) {
      // B shared across the batch: fold batch into rows, dB = Flatten(A)ᵀ · Flatten(dY) (one GEMM, no batch sum).
      const aFlat = e.op('Flatten', [a2], { axis: ra2 - 1 });
      const dyFlat = e.op('Flatten', [dY2], { axis: ry2 - 1 });
      reduced = e.op('MatMul', [e.op('Transpose', [aFlat], { perm: [1, 0] }), dyFlat]);
    } else {
      const raw = e.op('MatMul', [swapLast(ctx, a2, ra2), dY2]);
      const rawShape = y2Shape && b2Shape ? [...y2Shape.slice(0, ry2 - 2), ...b2Shape.slice(-2)] : undefined;
      reduced = e.unbroadcast(raw, rawShape, b2, b2Shape);
    }
    out[1] = rb === 1 ? e.reshapeLike(reduced, b, bShape) : reduced;
  }
  return out;
}

/**
 * Gemm: Y = α·A'·B' + β·C with A' = transA ? Aᵀ : A, B' likewise.
 * dA' = α·dY·B'ᵀ and dB' = α·A'ᵀ·dY, each written as one Gemm with the trans flags folded in;
 * dC = unbroadcast(β·dY).
 */
function gemmGrad(ctx: GradContext): InputGrads {
  const e = ctx.e, a = ctx.input(0), b = ctx.input(1);
  const dY = ctx.gradOut(0) ?? ctx.fail('output has no gradient');
  const alpha = attrFloat(ctx.node, 'alpha', 1), beta = attrFloat(ctx.node, 'beta', 1);
  const tA = attrInt(ctx.node, 'transA', 0), tB = attrInt(ctx.node, 'transB', 0);
  const gemm = (x: string, y: string, transA: number, transB: number) => e.op('Gemm', [x, y], { alpha: { float: alpha }, transA, transB });
  const out: InputGrads = [];
  if (ctx.needsGrad(0)) out[0] = tA ? gemm(b, dY, tB, 1) : gemm(dY, b, 0, tB ? 0 : 1);
  if (ctx.needsGrad(1)) out[1] = tB ? gemm(dY, a, 1, tA) : gemm(a, dY, tA ? 0 : 1, 0);
  if (ctx.needsGrad(2)) {
    const scaled = beta === 1 ? dY : e.op('Mul', [dY, e.constFloat(beta, ctx.elemType(a))]);
    out[2] = e.unbroadcast(scaled, ctx.shape(ctx.output(0)), ctx.input(2), ctx.shape(ctx.input(2)));
  }
  return out;
}

export const matmulRules: GradRule[] = [
  { op: 'MatMul', inputs: [0, 1], doc: 'dA = unbroadcast(dY·Bᵀ), dB = unbroadcast(Aᵀ·dY); 1-D operands promoted; shared 2-D B: Flatten(A)ᵀ·Flatten(dY)', build: matmulGrad },
  { op: 'Gemm', inputs: [0, 1, 2], doc: 'dA, dB as Gemm with folded trans flags and α; dC = unbroadcast(β·dY)', build: gemmGrad },
];
