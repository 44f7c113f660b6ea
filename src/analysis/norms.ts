/**
 * Norm gains and biases. Fused ops name their inputs; decomposed norms are recognised by the normalised
 * value they produce — x·rsqrt(moment) or x/√(moment), the moment coming from a ReduceMean — and the
 * gain/bias are the constant operands of the Mul and Add right after it:
 *   LayerNorm: ((x − mean)/√(var + ε)) · γ + β        (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div)
 *   RMSNorm:   x · 1/√(mean(x²) + ε) · γ              (Pow, ReduceMean, Add, Sqrt, Reciprocal|Div, Mul)
 */
import type { NodeProto } from 'onnx-buf';
import type { AnalysisGraph } from './graph.js';

export interface NormParam {
  weight: string;
  role: 'norm_scale' | 'norm_bias' | 'bias' | 'embedding' | 'position_embedding' | 'buffer';
  node: NodeProto;
  why: string;
}

/** Fused norm ops: input slot → role. */
export const FUSED_NORM_OPS: Record<string, Record<number, NormParam['role']>> = {
  LayerNormalization: { 1: 'norm_scale', 2: 'norm_bias' },
  SimplifiedLayerNormalization: { 1: 'norm_scale' },
  RMSNormalization: { 1: 'norm_scale' },
  SkipLayerNormalization: { 2: 'norm_scale', 3: 'norm_bias', 4: 'bias' },
  SkipSimplifiedLayerNormalization: { 2: 'norm_scale', 3: 'bias' },
  GroupNormalization: { 1: 'norm_scale', 2: 'norm_bias' },
  InstanceNormalization: { 1: 'norm_scale', 2: 'norm_bias' },
  BatchNormalization: { 1: 'norm_scale', 2: 'norm_bias', 3: 'buffer', 4: 'buffer' },
  EmbedLayerNormalization: { 2: 'embedding', 3: 'position_embedding', 4: 'embedding', 5: 'norm_scale', 6: 'norm_bias' },
};

export function findNormParams(g: AnalysisGraph): NormParam[] {
  const out: NormParam[] = [];
  for (const n of g.order) {
    const slots = FUSED_NORM_OPS[n.opType];
    if (slots) {
      for (const [slot, role] of Object.entries(slots)) {
        const w = n.input[Number(slot)];
        if (w && g.isInitializer(w)) out.push({ weight: w, role, node: n, why: `input ${slot} of ${opName(n)} ${g.label(n)}` });
      }
    } else if (isNormalisedValue(g, n)) {
      out.push(...affineAfter(g, n));
    }
  }
  return out;
}

function opName(n: NodeProto): string {
  return n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.opType}` : n.opType;
}

/** Div(x, √moment) or Mul(x, rsqrt(moment)) where the moment comes from a ReduceMean of x. */
function isNormalisedValue(g: AnalysisGraph, n: NodeProto): boolean {
  if (n.opType === 'Div') return n.input.length === 2 && g.dynamic.has(n.input[0]!) && fromMoment(g, n.input[1]!, false);
  if (n.opType === 'Mul') return n.input.some((i, k) => g.dynamic.has(n.input[1 - k] ?? '') && fromMoment(g, i, true));
  return false;
}

/** `value` is √(ReduceMean(..)+ε) (inverse=false) or its reciprocal (inverse=true), through Cast/Add/Max. */
function fromMoment(g: AnalysisGraph, value: string, inverse: boolean): boolean {
  let v = value;
  let inverted = false;
  let sqrt = false;
  for (let hops = 0; hops < 6; hops++) {
    const p = g.producer(v);
    if (!p) return false;
    switch (p.opType) {
      case 'ReduceMean': case 'ReduceSumSquare': case 'ReduceL2':
        return sqrt && inverted === inverse;
      case 'Sqrt': sqrt = true; v = p.input[0]!; break;
      case 'Reciprocal': inverted = !inverted; v = p.input[0]!; break;
      case 'Pow': {
        const e = g.scalarConstant(p.input[1] ?? '');
        if (e === -0.5) { sqrt = true; inverted = !inverted; } else if (e === 0.5) sqrt = true; else return false;
        v = p.input[0]!;
        break;
      }
      case 'Div':
        if (g.scalarConstant(p.input[0] ?? '') !== 1) return false;
        inverted = !inverted;
        v = p.input[1]!;
        break;
      case 'Add': case 'Max': case 'Clip': case 'Cast': case 'Identity':
        v = p.input.find((i) => i && g.dynamic.has(i)) ?? p.input[0]!;
        break;
      default:
        return false;
    }
  }
  return false;
}

/** The γ of the Mul right after a normalised value (Casts skipped) and the β of the Add after that. */
function affineAfter(g: AnalysisGraph, norm: NodeProto): NormParam[] {
  const out: NormParam[] = [];
  let v = norm.output[0]!;
  let next = soleUse(g, v);
  while (next && (next.opType === 'Cast' || next.opType === 'Identity')) {
    v = next.output[0]!;
    next = soleUse(g, v);
  }
  const desc = `${norm.opType} ${g.label(norm)}`;
  if (next?.opType === 'Mul') {
    const w = constOperand(g, next, v);
    if (w) {
      out.push({ weight: w, role: 'norm_scale', node: next, why: `gain: Mul ${g.label(next)} right after the normalisation ${desc}` });
      v = next.output[0]!;
      next = soleUse(g, v);
    }
  }
  if (next?.opType === 'Add') {
    const b = constOperand(g, next, v);
    if (b) out.push({ weight: b, role: 'norm_bias', node: next, why: `shift: Add ${g.label(next)} after the normalisation ${desc}${out.length ? ' and its gain' : ''}` });
  }
  return out;
}

function soleUse(g: AnalysisGraph, value: string): NodeProto | undefined {
  const uses = g.directUses(value);
  return uses.length === 1 ? uses[0]!.node : undefined;
}

function constOperand(g: AnalysisGraph, n: NodeProto, data: string): string | undefined {
  const other = n.input.find((i) => i && i !== data);
  if (!other) return undefined;
  const src = g.viewSource(other).value;
  return g.isInitializer(src) ? src : undefined;
}

/**
 * Elementwise affine layers: `x·w (+ b)` with `w` (and `b`) a per-channel float vector (one dim > 1) and `x`
 * an activation — the gain and shift of a norm written as separate ops (after a parameter-free
 * LayerNormalization, a normalisation whose gain Mul is not right after it), or a norm replaced by an affine
 * layer (ResMLP/CaiT `Affine`, LayerScale). Used for tensors no other detector claimed.
 */
export function affineParams(g: AnalysisGraph, undecided: ReadonlySet<string>, afterNormOnly = false): NormParam[] {
  const out: NormParam[] = [];
  const claimed = new Set<string>();
  for (const n of g.order) {
    if (n.opType !== 'Mul' || n.input.length !== 2) continue;
    const slot = n.input.findIndex((i) => i && g.dynamic.has(i));
    const w = slot >= 0 ? channelVector(g, n.input[1 - slot]!, undecided) : undefined;
    if (!w || slot < 0 || g.dynamic.has(n.input[1 - slot]!)) continue;
    const after = normBefore(g, n.input[slot]!);
    if (afterNormOnly && !after) continue;
    const what = after ? `gain: Mul ${g.label(n)} after the normalisation ${after}` : `gain of an elementwise affine layer (x·w + b): Mul ${g.label(n)}`;
    if (!claimed.has(w)) out.push({ weight: w, role: 'norm_scale', node: n, why: what });
    claimed.add(w);
    const add = soleUse(g, n.output[0]!);
    if (add?.opType !== 'Add') continue;
    const b = channelVector(g, add.input.find((i) => i !== n.output[0]) ?? '', undecided);
    if (b && !claimed.has(b)) {
      out.push({ weight: b, role: 'norm_bias', node: add, why: `shift: Add ${g.label(add)} after the ${after ? 'normalisation gain' : 'elementwise affine gain'}` });
      claimed.add(b);
    }
  }
  return out;
}

/** An undecided float initializer (through views) with exactly one dim larger than 1: a per-channel vector. */
function channelVector(g: AnalysisGraph, value: string, undecided: ReadonlySet<string>): string | undefined {
  const src = g.viewSource(value).value;
  if (!undecided.has(src)) return undefined;
  const t = g.index.getInitializer(src);
  const dims = t.dims.map(Number);
  return dims.filter((d) => d > 1).length === 1 ? src : undefined;
}

/**
 * The norm producing `value` (a fused norm op, or a decomposed normalised value), through casts and views
 * (GroupNorm exports as Reshape → InstanceNormalization(ones, zeros) → Reshape → ·w + b).
 */
function normBefore(g: AnalysisGraph, value: string): string | undefined {
  let p = g.producer(value);
  while (p && NORM_TO_GAIN_OPS.has(p.opType)) p = g.producer(p.input[0]!);
  if (!p) return undefined;
  if (FUSED_NORM_OPS[p.opType] || isNormalisedValue(g, p)) return `${opName(p)} ${g.label(p)}`;
  return undefined;
}

const NORM_TO_GAIN_OPS = new Set(['Cast', 'Identity', 'Reshape', 'Squeeze', 'Unsqueeze', 'Transpose']);

/**
 * A gain of all ones or a shift of all zeros that the exporter made for a fused norm without parameters
 * (`LayerNorm(elementwise_affine=False)`: dynamo writes LayerNormalization(x, val_8 = ones)): not a parameter.
 * Only for exporter-named tensors (a module's own gain keeps its name, and at init may well be all ones).
 */
export function exporterNormConstant(name: string, role: NormParam['role'], values: Float32Array, generated: boolean): string | undefined {
  if (!generated || (role !== 'norm_scale' && role !== 'norm_bias')) return undefined;
  const fill = role === 'norm_scale' ? 1 : 0;
  if (!values.every((x) => x === fill)) return undefined;
  return `a constant ${fill === 1 ? 'ones gain' : 'zeros shift'} the exporter wrote for a norm without parameters ('${name}'): not a parameter`;
}
