/**
 * onnxruntime's fused attention ops (docs/ContribOperators.md) in their standard forms, as the ai.onnx
 * graph an exporter writes for multi-head attention:
 *
 *   Attention(x[B,S,Din], W[Din, Dq+Dk+Dv], b?, mask_index?, –, attention_bias?)
 *     q|k|v = Split(x·W + b);  MHA(q, k, v)
 *   MultiHeadAttention(q[B,S,D], k[B,L,D], v[B,L,Dv], b?, key_padding_mask?, attention_bias?)
 *     q|k|v += Split(b);       MHA(q, k, v)
 *   MHA: per head h (H = num_heads, d = D/H):
 *     P = Softmax(scale·Q_h·K_hᵀ + mask + attention_bias + causal),  out = concat_h(P·V_h)
 *     scale = attribute `scale`, or 1/√d when absent (0); mask = mask_filter_value (default −10000) at
 *     masked keys; causal = mask_filter_value above the diagonal when `unidirectional` = 1.
 *   mask_index / key_padding_mask: [B, T] 0/1 (0 = masked), [B, S, T] 0/1, or [B] right-padding lengths
 *   (keys j ≥ len[b] masked; Attention only).
 * Refused with the input or attribute named: KV-cache state (past / present / past_sequence_length),
 * rotary (do_rotary), shared past/present buffers, packed QKV or KV (query or key of rank ≠ 3), masks of
 * other ranks, float16 inputs.
 */
import type { NodeProto } from 'onnx-buf';
import { attrFloat, attrInt, attrInts } from '../../onnx/build.js';
import { DataType } from '../../onnx/dtype.js';
import type { NodeSink } from '../node-sink.js';
import { fail, OK, optionalInput, usedOutputFrom, type DefuseRule, type Match, type RuleContext } from './types.js';

const DEFAULT_MASK_FILTER = -10000;

interface HeadLayout { heads: number; dQk: number; dV: number }

/** Attention: Dq, Dk, Dv from qkv_hidden_sizes or W[Din, 3·D]; undefined with the reason when unknown. */
function attentionSizes(n: NodeProto, ctx: RuleContext): { sizes: [number, number, number] } | { reason: string } {
  const given = attrInts(n, 'qkv_hidden_sizes');
  if (given && given.length > 0) {
    if (given.length !== 3 || given[0] !== given[1]) return { reason: `attribute qkv_hidden_sizes=[${given}] must be 3 sizes with Dq = Dk` };
    return { sizes: [given[0]!, given[1]!, given[2]!] };
  }
  const cols = ctx.shape(n.input[1]!)?.[1];
  if (typeof cols !== 'number') return { reason: `the shape of input 1 (weights) '${n.input[1]}' is unknown` };
  if (cols % 3 !== 0) return { reason: `input 1 (weights) has ${cols} columns, not 3 equal Q, K, V blocks; give qkv_hidden_sizes` };
  return { sizes: [cols / 3, cols / 3, cols / 3] };
}

function layout(n: NodeProto, dQk: number, dV: number): HeadLayout | string {
  const heads = attrInt(n, 'num_heads', 0);
  if (!(heads > 0)) return 'attribute num_heads is missing or not positive';
  if (dQk % heads || dV % heads) return `attribute num_heads=${heads} does not divide the hidden sizes ${dQk}/${dV}`;
  return { heads, dQk: dQk / heads, dV: dV / heads };
}

function refuseCommon(n: NodeProto, ctx: RuleContext, stateInputs: [number, string][], maskSlot: number, allowLengths: boolean): Match {
  for (const [slot, what] of stateInputs) {
    if (optionalInput(n, slot)) return fail(`input ${slot} (${what}) is given: KV-cache state is not supported; export the model without past inputs`);
  }
  const present = usedOutputFrom(n, 1, ctx);
  if (present !== undefined) return fail(`output ${present} ('${n.output[present]}', present state) is used: KV-cache state is not supported`);
  for (const a of ['do_rotary', 'past_present_share_buffer']) {
    if (attrInt(n, a, 0) !== 0) return fail(`attribute ${a}=${attrInt(n, a, 0)} is not supported`);
  }
  const x = n.input[0]!;
  const t = ctx.elemType(x);
  if (t !== undefined && t !== DataType.FLOAT) return fail(`input 0 '${x}' is not float32; only float32 attention is de-fused`);
  const rank = ctx.shape(x)?.length;
  if (rank !== undefined && rank !== 3) return fail(`input 0 '${x}' has rank ${rank} (packed QKV or BNSH layout); only [batch, seq, hidden] is supported`);
  const mask = optionalInput(n, maskSlot);
  if (mask) {
    const mRank = ctx.shape(mask)?.length;
    if (mRank === undefined) return fail(`input ${maskSlot} (mask) '${mask}' has unknown rank`);
    if (!(mRank === 2 || mRank === 3 || (mRank === 1 && allowLengths))) return fail(`input ${maskSlot} (mask) '${mask}' has rank ${mRank}; supported: [B, T] or [B, S, T] 0/1 masks${allowLengths ? ', [B] lengths' : ''}`);
    if (mRank === 1) {
      const [len, batch] = [ctx.shape(mask)![0], ctx.shape(x)?.[0]];
      if (typeof len === 'number' && typeof batch === 'number' && len !== batch) return fail(`input ${maskSlot} (mask_index) '${mask}' has ${len} entries for batch ${batch} (start-and-end form); only [B] end positions are supported`);
    }
  }
  return OK;
}

/** The additive mask [B, 1, 1|S, T] (0 where attended, mask_filter_value where masked). */
function emitMaskBias(s: NodeSink, mask: string, rank: number, seqSource: string, filter: number): string {
  let keep: string;
  if (rank === 1) {
    // Right padding: key j is valid when j < len[b].
    const seq = s.op('Gather', [s.op('Shape', [seqSource]), s.i64([1], [])], { axis: 0 });
    const positions = s.op('Range', [s.i64([0], []), seq, s.i64([1], [])]);
    const lengths = s.op('Cast', [mask], { to: DataType.INT64 });
    keep = s.op('Less', [s.unsqueeze(positions, [0]), s.unsqueeze(lengths, [1])]);
  } else {
    keep = s.op('Greater', [s.op('Cast', [mask], { to: DataType.INT64 }), s.i64([0], [])]);
  }
  const bias = s.op('Where', [keep, s.f32(0), s.f32(filter)]);
  return s.unsqueeze(bias, rank === 3 ? [1] : [1, 2]);
}

/** mask_filter_value above the diagonal of [S, T] (query i may see keys j ≤ i), computed from the shapes. */
function emitCausalBias(s: NodeSink, q: string, filter: number): string {
  const seq = s.op('Gather', [s.op('Shape', [q]), s.i64([1], [])], { axis: 0 });
  const positions = s.op('Range', [s.i64([0], []), seq, s.i64([1], [])]);
  const future = s.op('Greater', [s.unsqueeze(positions, [0]), s.unsqueeze(positions, [1])]);
  return s.op('Where', [future, s.f32(filter), s.f32(0)]);
}

interface CoreInputs {
  q: string; k: string; v: string; heads: HeadLayout; scale: number;
  additive: string[]; out: string;
}

/** Softmax(scale·Q_hK_hᵀ + Σ additive)·V_h over heads, [B, S, H·dV] into `out`. */
function emitMultiHead(s: NodeSink, c: CoreInputs): void {
  const { heads: h } = c;
  const split = (x: string, d: number, perm: number[]) => s.op('Transpose', [s.op('Reshape', [x, s.i64([0, 0, h.heads, d])])], { perm });
  const q = split(c.q, h.dQk, [0, 2, 1, 3]);
  const kT = split(c.k, h.dQk, [0, 2, 3, 1]);
  const v = split(c.v, h.dV, [0, 2, 1, 3]);
  let logits = s.op('Mul', [s.op('MatMul', [q, kT]), s.f32(c.scale)]);
  for (const a of c.additive) logits = s.op('Add', [logits, a]);
  const probs = s.op('Softmax', [logits], { axis: 3 });
  const ctx = s.op('Transpose', [s.op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] });
  s.op('Reshape', [ctx, s.i64([0, 0, h.heads * h.dV])], {}, c.out);
}

function scaleOf(n: NodeProto, dHead: number): number {
  const scale = attrFloat(n, 'scale', 0);
  return scale === 0 ? 1 / Math.sqrt(dHead) : scale;
}

function additiveTerms(n: NodeProto, ctx: RuleContext, s: NodeSink, maskSlot: number, biasSlot: number, query: string): string[] {
  const filter = attrFloat(n, 'mask_filter_value', DEFAULT_MASK_FILTER);
  const terms: string[] = [];
  const mask = optionalInput(n, maskSlot);
  if (mask) terms.push(emitMaskBias(s, mask, ctx.shape(mask)!.length, query, filter));
  const bias = optionalInput(n, biasSlot);
  if (bias) terms.push(bias);
  if (attrInt(n, 'unidirectional', 0)) terms.push(emitCausalBias(s, query, filter));
  return terms;
}

const attentionRule: DefuseRule = {
  id: 'defuse/attention', opType: 'Attention', domains: ['com.microsoft'],
  doc: 'Attention(x, W[D, 3D], b, mask, –, bias) → Split(x·W + b) into Q, K, V; per-head Softmax(scale·QKᵀ + masks)·V',
  match: (n, ctx) => {
    const sizes = attentionSizes(n, ctx);
    if ('reason' in sizes) return fail(sizes.reason);
    const l = layout(n, sizes.sizes[0], sizes.sizes[2]);
    if (typeof l === 'string') return fail(l);
    return refuseCommon(n, ctx, [[4, 'past'], [6, 'past_sequence_length']], 3, true);
  },
  rewrite: (n, ctx, s) => {
    const sizes = (attentionSizes(n, ctx) as { sizes: [number, number, number] }).sizes;
    const heads = layout(n, sizes[0], sizes[2]) as HeadLayout;
    const x = n.input[0]!;
    const bias = optionalInput(n, 2);
    const proj = s.op('MatMul', [x, n.input[1]!]);
    const qkv = bias ? s.op('Add', [proj, bias]) : proj;
    const [q, k, v] = s.split(qkv, sizes, 2);
    emitMultiHead(s, { q: q!, k: k!, v: v!, heads, scale: scaleOf(n, heads.dQk), additive: additiveTerms(n, ctx, s, 3, 5, x), out: n.output[0]! });
  },
};

const multiHeadAttentionRule: DefuseRule = {
  id: 'defuse/multi-head-attention', opType: 'MultiHeadAttention', domains: ['com.microsoft'],
  doc: 'MultiHeadAttention(q, k, v, b, mask, bias) → (q, k, v) + Split(b); per-head Softmax(scale·QKᵀ + masks)·V',
  match: (n, ctx) => {
    for (const [slot, what] of [[1, 'key'], [2, 'value']] as const) {
      const x = optionalInput(n, slot);
      if (!x) return fail(`input ${slot} (${what}) is absent (packed QKV in the query); only separate query, key and value are supported`);
      const rank = ctx.shape(x)?.length;
      if (rank !== undefined && rank !== 3) return fail(`input ${slot} (${what}) '${x}' has rank ${rank} (packed KV or BNSH layout); only [batch, seq, hidden] is supported`);
    }
    const [dQ, dV] = [ctx.shape(n.input[0]!)?.[2], ctx.shape(n.input[2]!)?.[2]];
    if (typeof dQ !== 'number' || typeof dV !== 'number') return fail(`the hidden size of input 0 (query) or 2 (value) is unknown`);
    const l = layout(n, dQ, dV);
    if (typeof l === 'string') return fail(l);
    return refuseCommon(n, ctx, [[6, 'past_key'], [7, 'past_value'], [8, 'past_sequence_length'], [9, 'cache_indirection']], 4, false);
  },
  rewrite: (n, ctx, s) => {
    const [dQ, dV] = [ctx.shape(n.input[0]!)![2] as number, ctx.shape(n.input[2]!)![2] as number];
    const heads = layout(n, dQ, dV) as HeadLayout;
    let [q, k, v] = [n.input[0]!, n.input[1]!, n.input[2]!];
    const bias = optionalInput(n, 3);
    if (bias) {
      const [bq, bk, bv] = s.split(bias, [dQ, dQ, dV], 0);
      [q, k, v] = [s.op('Add', [q, bq!]), s.op('Add', [k, bk!]), s.op('Add', [v, bv!])];
    }
    emitMultiHead(s, { q, k, v, heads, scale: scaleOf(n, heads.dQk), additive: additiveTerms(n, ctx, s, 4, 5, n.input[0]!), out: n.output[0]! });
  },
};

export const ATTENTION_RULES: DefuseRule[] = [attentionRule, multiHeadAttentionRule];
