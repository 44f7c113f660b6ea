/**
 * Attention-logit scale sites (DESIGN.md "Semantics": QKᵀ/√d_head under SP → QKᵀ/d_head under µP/SµPar).
 *
 * Forms found:
 *  - `div-after-qk` / `mul-after-qk`: Div or Mul by a scalar constant between the QKᵀ MatMul and its Softmax
 *    (a mask Add/Where/Mul may sit in between);
 *  - `split-qk`: Q and K each scaled by a constant before QKᵀ (megatron: d_head^-¼ on each side);
 *  - `scale-before-qk`: only one side scaled before QKᵀ (DistilBERT: q / √dim_per_head);
 *  - `runtime-sqrt`: the divisor is computed at run time (Shape → Gather → Cast → Sqrt → Div);
 *  - `scale-attribute`: the `scale` attribute of a fused attention op (com.microsoft Attention,
 *    MultiHeadAttention, GroupQueryAttention; ai.onnx Attention, opset 23). Absent → 1/√head_size.
 * The QKᵀ MatMul is the MatMul whose two operands both carry activations and whose output reaches a Softmax.
 */
import type { NodeProto } from 'onnx-buf';
import { attrFloat, attrInt, attrInts, attrString, getAttr } from '../onnx/build.js';
import { evaluateStatic } from './evaluate.js';
import type { AnalysisGraph } from './graph.js';
import type { AttentionSite } from './types.js';

/** Ops allowed between QKᵀ and Softmax on the logits path (scale, mask, casts, views). */
const LOGIT_PATH_OPS = new Set(['Div', 'Mul', 'Add', 'Sub', 'Where', 'Cast', 'Reshape', 'Identity', 'Max', 'Min', 'Clip', 'Squeeze', 'Unsqueeze', 'Expand', 'Tanh']);
/** Ops walked back over from a QKᵀ operand when looking for a pre-scale on Q or K. */
const OPERAND_PATH_OPS = new Set(['Transpose', 'Reshape', 'Cast', 'Identity', 'Unsqueeze', 'Squeeze', 'Expand', 'Contiguous']);
const FUSED_ATTENTION = new Set(['Attention', 'MultiHeadAttention', 'GroupQueryAttention', 'PackedAttention', 'PackedMultiHeadAttention', 'DecoderMaskedMultiHeadAttention']);

/** An attention site plus the values the rest of the analysis needs (not part of the contract). */
export interface FoundSite {
  site: AttentionSite;
  qk?: NodeProto;
  softmax?: NodeProto;
  /** Nodes on the QKᵀ → Softmax path (mask Adds live here). */
  logitPath: NodeProto[];
  /** The fused attention node, for the fused form. */
  fused?: NodeProto;
  /** The head size is not from shapes but from assuming the current scale is 1/√d_head (warned). */
  headSizeGuessed?: boolean;
  /** Set when the site cannot be rewritten safely (head size unknown): reported, not listed as a site. */
  unresolved?: string;
}

export function findAttentionSites(g: AnalysisGraph): FoundSite[] {
  const found: FoundSite[] = [];
  for (const n of g.order) {
    if ((n.opType === 'MatMul' || n.opType === 'Einsum') && n.input.length === 2 && n.input.every((i) => g.dynamic.has(i))) {
      const s = siteAtQk(g, n);
      if (s) found.push(s);
    } else if (FUSED_ATTENTION.has(n.opType) || (n.opType === 'Attention' && (n.domain === '' || n.domain === 'ai.onnx'))) {
      found.push(fusedSite(g, n));
    }
  }
  return found;
}

/** The Softmax reached forward from the QKᵀ output through LOGIT_PATH_OPS, with the path (BFS, ≤ 8 hops). */
function pathToSoftmax(g: AnalysisGraph, qk: NodeProto): { softmax: NodeProto; path: NodeProto[] } | undefined {
  const queue: { value: string; path: NodeProto[] }[] = [{ value: qk.output[0]!, path: [] }];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const { value, path } = queue.shift()!;
    if (seen.has(value) || path.length > 8) continue;
    seen.add(value);
    for (const u of g.directUses(value)) {
      if (u.node.opType === 'Softmax' || u.node.opType === 'LogSoftmax') return { softmax: u.node, path };
      if (!LOGIT_PATH_OPS.has(u.node.opType)) continue;
      if (u.node.opType === 'Where' && u.index === 0) continue;
      queue.push({ value: u.node.output[0]!, path: [...path, u.node] });
    }
  }
  return undefined;
}

function siteAtQk(g: AnalysisGraph, qk: NodeProto): FoundSite | undefined {
  const found = describeSiteAtQk(g, qk);
  if (found && !(found.site.dHead > 0)) {
    found.unresolved = `attention at QKᵀ ${g.label(qk)}: head size unknown (shapes not inferable); left unchanged — ${found.site.reason}`;
  }
  return found;
}

function describeSiteAtQk(g: AnalysisGraph, qk: NodeProto): FoundSite | undefined {
  const reach = pathToSoftmax(g, qk);
  if (!reach) return undefined;
  const post = postScales(g, qk, reach.path);
  const sides = [0, 1].map((i) => preScales(g, qk.input[i]!, qk));
  const pre = sides.flat();
  const all = [...pre, ...post];
  const known = all.every((x) => x.factor !== undefined);
  const product = all.reduce((acc, x) => acc * (x.factor ?? 1), 1);
  const measured = headSizeOf(g, qk);
  const dHead = measured ?? (known && all.length > 0 ? headSizeFromScale(product) : undefined) ?? 0;
  const guessed = measured === undefined && dHead > 0;
  const nodes = all.map((x) => g.label(x.node));
  // The scaled logits: the output of the last scale node on the path (QKᵀ itself when the scale sits on Q/K),
  // so a coordinate check reads QKᵀ·scale rather than a mask's fill values.
  const lastPost = reach.path.filter((n) => post.some((x) => x.node === n)).at(-1);
  const logitsValue = (lastPost ?? qk).output[0]!;
  const terms = sharedScaleTerms(g, qk, reach.path, post);
  const make = (kind: AttentionSite['kind'], siteNodes: string[], constants: string[], scale: number, reason: string): FoundSite => {
    const found: FoundSite = {
      qk, softmax: reach.softmax, logitPath: reach.path,
      site: site(g, kind, siteNodes, constants, scale, dHead, qk, logitsValue, guessed ? `${reason}; head size ${dHead} guessed from the scale (shapes not inferable)` : reason),
      ...(guessed ? { headSizeGuessed: true } : {}),
    };
    setRewrite(g, found.site, qk, all, terms);
    return found;
  };
  if (all.length === 0) {
    // No scale at all (T5-style): the site is the QKᵀ MatMul itself; a rewrite multiplies its output.
    return make('mul-after-qk', [g.label(qk)], [], 1, `no scale between QKᵀ ${g.label(qk)} and Softmax (scale 1); a rewrite multiplies the QKᵀ output`);
  }
  if (all.some((x) => x.runtime)) {
    // Not evaluable from known shapes: assume the usual 1/√d_head.
    const scale = known ? product : dHead > 0 ? 1 / Math.sqrt(dHead) : 1;
    const how = known ? `evaluated from known shapes: ${describeScale(scale, dHead)}` : `assumed 1/√d_head = ${fmt(scale)}`;
    const what = all.map((x) => `${x.node.opType} ${g.label(x.node)}${x.value !== undefined ? ` by ${fmt(x.value)}` : ''}`).join(', ');
    return make('runtime-sqrt', nodes, [...new Set(all.filter((x) => x.constant).map((x) => x.constant!))], scale, `${what} by a scale computed at run time (${how})`);
  }
  const sidesScaled = sides.filter((s) => s.length > 0).length;
  const kind: AttentionSite['kind'] = sidesScaled === 2 ? 'split-qk'
    : sidesScaled === 1 && post.length === 0 ? 'scale-before-qk'
      : post[0]?.node.opType === 'Div' ? 'div-after-qk' : 'mul-after-qk';
  // A scale before QKᵀ next to one after it (OPT: q·s, then × 1 after QKᵀ) says which is which.
  const mixed = pre.length > 0 && post.length > 0;
  const what = all.map((x) => `${x.node.opType} ${g.label(x.node)} by ${x.constant}=${fmt(x.value!)}${mixed && pre.includes(x) ? ' on an operand before QKᵀ' : ''}`).join(', ');
  const where = kind === 'split-qk' ? 'on Q and on K before' : kind === 'scale-before-qk' ? 'on one operand before' : 'after';
  const constants = [...new Set(all.map((x) => x.constant!))];
  return make(kind, nodes, constants, product, `${what} ${where} QKᵀ ${g.label(qk)}; scale ${describeScale(product, dHead)}`);
}

/**
 * Where a rewrite puts the ratio target/current so that it changes the QKᵀ term and nothing else: the scale
 * constants of the clean factors (`rewriteNodes`), or, when a factor is computed at run time or none is
 * clean, a Mul after `mulAfter` (the last clean factor node, else QKᵀ itself). A factor is clean when
 * changing it changes only this QKᵀ: a pre-scale whose output reaches the QKᵀ operand and nothing else, a
 * post-scale with no other term added onto the logits before it. Terms that do share a factor are named
 * in the reason and keep their current scale exactly.
 */
function setRewrite(g: AnalysisGraph, s: AttentionSite, qk: NodeProto, all: ScaleFactor[], terms: string[]): void {
  const clean = all.filter((x) => x.clean);
  const constant = clean.filter((x) => x.constant !== undefined && !x.runtime);
  const runtime = all.some((x) => x.runtime);
  if (!runtime && constant.length > 0) {
    if (constant.length < all.length) s.rewriteNodes = constant.map((x) => g.label(x.node));
  } else if (all.length > 0) {
    const last = clean.filter((x) => !x.pre).at(-1) ?? clean.filter((x) => x.pre).at(-1);
    s.mulAfter = last ? g.label(last.node) : g.label(qk);
  }
  const unclean = all.filter((x) => !x.clean);
  if (unclean.length > 0) {
    const why = unclean.map((x) => `${x.node.opType} ${g.label(x.node)}${x.pre ? ' (its output is also read outside this QKᵀ)' : ' (other terms are added before it)'}`).join(', ');
    const at = s.rewriteNodes ? s.rewriteNodes.join(', ') : `a Mul after ${s.mulAfter}`;
    s.reason += `; ${why} also scales other terms, so a rewrite changes only ${at}`;
  }
  if (terms.length > 0) {
    s.sharedScaleTerms = terms;
    s.reason += `; ${terms.join(', ')} added onto the logits share part of the scale and keep it exactly (the rules set the QKᵀ product only)`;
  }
}

/** Dynamic or constant terms added onto the logits (Add/Sub) before a post-scale factor: they share it. */
function sharedScaleTerms(g: AnalysisGraph, qk: NodeProto, path: NodeProto[], post: ScaleFactor[]): string[] {
  const lastPost = post.map((x) => path.indexOf(x.node)).reduce((a, b) => Math.max(a, b), -1);
  const out: string[] = [];
  if (lastPost < 0) return out;
  path.slice(0, lastPost).forEach((n, i) => {
    if (n.opType !== 'Add' && n.opType !== 'Sub') return;
    const prev = i > 0 ? path[i - 1]!.output[0] : qk.output[0];
    for (const x of n.input) if (x && x !== prev) out.push(x);
  });
  return out;
}

/** The Div/Mul factors on the QKᵀ → Softmax path; clean until a term joins (Add/Sub/Where). */
function postScales(g: AnalysisGraph, qk: NodeProto, path: NodeProto[]): ScaleFactor[] {
  const out: ScaleFactor[] = [];
  let joined = false;
  const candidates = new Set(scaleCandidates(path));
  for (const n of path) {
    if (candidates.has(n)) {
      const f = scaleOn(g, n, chainInput(n, path, qk));
      if (f) out.push({ ...f, clean: !joined });
    }
    if (n.opType === 'Add' || n.opType === 'Sub' || n.opType === 'Where') joined = true;
  }
  return out;
}

/** "0.125 = 1/√64", or the scale and the head size when the scale is not 1/√d_head. */
function describeScale(scale: number, dHead: number): string {
  if (!(dHead > 0)) return `${fmt(scale)} (head size unknown)`;
  return Math.abs(scale * Math.sqrt(dHead) - 1) < 1e-5 ? `${fmt(scale)} = 1/√${dHead}` : `${fmt(scale)} (not 1/√d_head; d_head = ${dHead})`;
}

function site(g: AnalysisGraph, kind: AttentionSite['kind'], nodes: string[], constants: string[], currentScale: number, dHead: number, qk: NodeProto, logitsValue: string, reason: string): AttentionSite {
  const shared = constants.filter((c) => g.uses(c).some((u) => !nodes.includes(g.label(u.node))));
  const out: AttentionSite = { kind, nodes, constants, currentScale, dHead, reason, qkMatMul: g.label(qk), logitsValue };
  if (shared.length > 0) {
    out.sharedConstants = shared;
    out.reason += `; constant ${shared.join(', ')} is also read elsewhere (clone it before rewriting)`;
  }
  return out;
}

interface ScaleFactor {
  node: NodeProto;
  constant?: string;
  value?: number;
  /** Multiplier this node applies to QKᵀ; undefined when computed at run time and not evaluable. */
  factor?: number;
  /** The factor is computed at run time (from a shape). */
  runtime?: boolean;
  /** On Q or K before QKᵀ. */
  pre?: boolean;
  /** Changing this factor changes the QKᵀ term of this site only (see setRewrite). */
  clean?: boolean;
}

/**
 * Path nodes that may carry the QKᵀ scale: those before a soft-cap `c·tanh(x/c)` (Gemma 2), and not the
 * Div/Mul by c that belongs to the cap itself.
 */
function scaleCandidates(path: NodeProto[]): NodeProto[] {
  const tanh = path.findIndex((n) => n.opType === 'Tanh');
  if (tanh < 0) return path;
  const before = path.slice(0, tanh);
  const last = before.at(-1);
  return last && (last.opType === 'Div' || last.opType === 'Mul') ? before.slice(0, -1) : before;
}

/** The input of `n` that carries the QKᵀ chain. */
function chainInput(n: NodeProto, path: NodeProto[], qk: NodeProto): number {
  const idx = path.indexOf(n);
  const prev = idx > 0 ? path[idx - 1]!.output[0] : qk.output[0];
  return n.input.indexOf(prev!);
}

/** A Div/Mul node applying a scalar constant (or a run-time √) to its `slot` input. */
function scaleOn(g: AnalysisGraph, n: NodeProto, slot: number): ScaleFactor | undefined {
  if ((n.opType !== 'Div' && n.opType !== 'Mul') || slot < 0) return undefined;
  const other = n.input[1 - slot];
  if (!other || g.dynamic.has(other)) return undefined;
  const value = g.scalarConstant(other);
  if (value !== undefined) {
    if (value === 0) return undefined;
    const factor = n.opType === 'Mul' ? value : slot === 0 ? 1 / value : undefined;
    return factor === undefined ? undefined : { node: n, constant: other, value, factor };
  }
  // A static value computed by nodes (from shapes, or constant arithmetic such as Sqrt(scale)).
  const v = evaluateStatic(g, other);
  if (v?.length !== 1 && !computedFromShape(g, other)) return undefined;
  const factor = v?.length === 1 && v[0] !== 0 ? (n.opType === 'Mul' ? v[0] : slot === 0 ? 1 / v[0]! : undefined) : undefined;
  return { node: n, runtime: true, ...(factor !== undefined ? { factor } : {}) };
}

/** True when `value` is computed at run time from a shape through a Sqrt (e.g. Sqrt(Cast(Gather(Shape(k))))). */
function computedFromShape(g: AnalysisGraph, value: string): boolean {
  let sawSqrt = false;
  let sawShape = false;
  const stack = [value];
  for (let steps = 0; stack.length > 0 && steps < 12; steps++) {
    const p = g.producer(stack.pop()!);
    if (!p) continue;
    if (p.opType === 'Sqrt' || (p.opType === 'Pow' && g.scalarConstant(p.input[1] ?? '') === 0.5)) sawSqrt = true;
    if (p.opType === 'Shape' || p.opType === 'Size') { sawShape = true; continue; }
    stack.push(...p.input.filter(Boolean));
  }
  return sawSqrt && sawShape;
}

/**
 * Every Div/Mul by a scalar constant (or run-time scalar) walking back from a QKᵀ operand over view ops and
 * over those scales themselves (≤ 8 hops): a pre-scale by 1/√d_head followed by SDPA's own √scale on Q
 * (TorchScript: q·√1) is two factors. Each is clean when every value from it to the operand has one reader.
 */
function preScales(g: AnalysisGraph, operand: string, consumer: NodeProto): ScaleFactor[] {
  const out: ScaleFactor[] = [];
  let v = operand;
  // Readers of the shape only (Shape, Size: TorchScript SDPA reads q's last dim) do not see the values.
  const readers = (x: string) => g.uses(x).filter((u) => u.node.opType !== 'Shape' && u.node.opType !== 'Size');
  let single = readers(v).length === 1 && readers(v)[0]!.node === consumer;
  for (let hops = 0; hops < 8; hops++) {
    const p = g.producer(v);
    if (!p) break;
    if (p.opType === 'Div' || p.opType === 'Mul') {
      const slot = g.dynamic.has(p.input[0]!) ? 0 : 1;
      const f = scaleOn(g, p, slot);
      if (!f) break;
      out.push({ ...f, pre: true, clean: single });
      v = p.input[slot]!;
    } else if (OPERAND_PATH_OPS.has(p.opType)) {
      v = p.input[0]!;
    } else {
      break;
    }
    single &&= readers(v).length === 1;
  }
  return out;
}

/** n when the scale is 1/√n for an integer head size n ≤ 1024 (a guess used only when shapes are unknown). */
function headSizeFromScale(scale: number): number | undefined {
  const n = 1 / (scale * scale);
  // A scale of 1 is "no scale" (T5), not a head size of 1.
  return Math.abs(n - Math.round(n)) < 1e-3 && Math.round(n) >= 2 && Math.round(n) <= 1024 ? Math.round(n) : undefined;
}

/** d_head: the contracted dim of QKᵀ (Q's last dim, or Kᵀ's second-to-last). */
function headSizeOf(g: AnalysisGraph, qk: NodeProto): number | undefined {
  if (qk.opType === 'Einsum') return einsumContractedDim(g, qk);
  const q = dimsBeforeScale(g, qk.input[0]!);
  const qd = q?.[q.length - 1];
  if (qd !== undefined && qd > 0) return qd;
  const k = dimsBeforeScale(g, qk.input[1]!);
  const kd = k && k.length >= 2 ? k[k.length - 2] : undefined;
  if (kd !== undefined && kd > 0) return kd;
  // Rotary embeddings (q·cos + rotate(q)·sin, cos/sin of unknown shape) hide the rank, not the last dim.
  return trailingDim(g, qk.input[0]!, 1, 0) ?? trailingDim(g, qk.input[1]!, 2, 0);
}

/** Slice along the k-th axis from the end (negative axes), constant starts/ends/steps; else the data's dim. */
function slicedTrailingDim(g: AnalysisGraph, p: NodeProto, k: number, depth: number): number | undefined {
  const whole = trailingDim(g, p.input[0]!, k, depth + 1);
  if (whole === undefined) return undefined;
  const ints = (i: number) => (p.input[i] ? g.intConstant(p.input[i]!) ?? evaluateStatic(g, p.input[i]!) : undefined);
  const starts = ints(1), ends = ints(2), axes = ints(3), steps = ints(4);
  if (!starts || !ends) return undefined;
  const rank = g.dims(p.input[0]!)?.length;
  // Axes as counted from the end (default axes 0..n-1 and positive axes need the rank).
  const fromEnd = (axes ?? starts.map((_, i) => i)).map((a) => (a < 0 ? -a : rank !== undefined ? rank - a : undefined));
  if (fromEnd.some((a) => a === undefined)) return undefined;
  const at = fromEnd.indexOf(k);
  if (at < 0) return whole;
  const step = steps?.[at] ?? 1;
  if (step !== 1) return undefined;
  const clamp = (x: number) => Math.max(0, Math.min(whole, x < 0 ? whole + x : x));
  const n = clamp(ends[at]!) - clamp(starts[at]!);
  return n > 0 ? n : undefined;
}

const TRAILING_SAME = new Set(['Cast', 'Identity', 'Neg', 'Relu', 'Tanh', 'Sigmoid', 'Softmax', 'Dropout', 'Contiguous']);
const TRAILING_BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Where', 'Pow']);

/**
 * The k-th dim from the end of `value` (k = 1: the last), when the rank may be unknown. Sound for broadcasting
 * ops: an operand's trailing dim d ≠ 1 is the output's (a valid broadcast pairs it with 1 or d).
 */
function trailingDim(g: AnalysisGraph, value: string, k: number, depth: number): number | undefined {
  const d = g.dims(value);
  const known = d && d.length >= k ? d[d.length - k] : undefined;
  if (known !== undefined && known > 0) return known;
  if (depth > 10) return undefined;
  const p = g.producer(value);
  if (!p) return undefined;
  if (TRAILING_SAME.has(p.opType)) return trailingDim(g, p.input[0]!, k, depth + 1);
  if (TRAILING_BROADCAST.has(p.opType)) {
    for (const i of p.input.slice(p.opType === 'Where' ? 1 : 0)) {
      const x = i && g.dynamic.has(i) ? trailingDim(g, i, k, depth + 1) : undefined;
      if (x !== undefined && x !== 1) return x;
    }
    return undefined;
  }
  if (p.opType === 'Concat') {
    // Partial rotary: Concat(rotated part, pass-through part) along the last axis.
    const rank = p.input.map((i) => g.dims(i)?.length).find((r) => r !== undefined);
    const a = attrInt(p, 'axis', 0);
    const axis = a < 0 ? -a : rank !== undefined ? rank - a : undefined;
    if (axis === undefined) return undefined;
    const parts = p.input.filter(Boolean).map((i) => trailingDim(g, i, k, depth + 1));
    if (axis === k) return parts.every((x) => x !== undefined) ? parts.reduce((s, x) => s! + x!, 0) : undefined;
    return parts.find((x) => x !== undefined);
  }
  if (p.opType === 'Slice') return slicedTrailingDim(g, p, k, depth);
  if (p.opType === 'Transpose') {
    const perm = attrInts(p, 'perm');
    if (!perm || k > perm.length) return undefined;
    return trailingDim(g, p.input[0]!, perm.length - perm[perm.length - k]!, depth + 1);
  }
  return undefined;
}

/**
 * Dims of a QKᵀ operand; when its last two dims are unknown, those of the value it scales (Mul/Div by a
 * non-activation, e.g. a run-time √scale of unknown shape) or casts: these keep the operand's shape.
 */
function dimsBeforeScale(g: AnalysisGraph, operand: string): (number | undefined)[] | undefined {
  let v = operand;
  let first: (number | undefined)[] | undefined;
  for (let hops = 0; hops < 4; hops++) {
    const d = g.dims(v);
    first ??= d;
    if (d && d.length >= 2 && d[d.length - 1] !== undefined && d[d.length - 2] !== undefined) return d;
    const p = g.producer(v);
    if (!p || !['Mul', 'Div', 'Cast', 'Identity'].includes(p.opType)) break;
    const act = p.input.filter((i) => i && g.dynamic.has(i));
    if (act.length !== 1 || (p.opType === 'Div' && act[0] !== p.input[0])) break;
    v = act[0]!;
  }
  return first;
}

/** Einsum QKᵀ ('bhqd,bhkd->bhqk'): the size of the one index summed over (in both inputs, not in the output). */
function einsumContractedDim(g: AnalysisGraph, n: NodeProto): number | undefined {
  const eq = attrString(n, 'equation', '').replace(/\s/g, '');
  const m = /^([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]*)$/.exec(eq);
  if (!m) return undefined;
  const [, a, b, out] = m as unknown as [string, string, string, string];
  const summed = [...a].filter((c) => b.includes(c) && !out.includes(c));
  if (summed.length !== 1) return undefined;
  const d = g.dims(n.input[0]!)?.[a.indexOf(summed[0]!)] ?? g.dims(n.input[1]!)?.[b.indexOf(summed[0]!)];
  return d !== undefined && d > 0 ? d : undefined;
}

/** Fused ops whose inputs 0 and 1 are Q and K themselves (a pre-scale there scales QKᵀ). */
const FUSED_QK_INPUTS = new Set(['Attention', 'MultiHeadAttention', 'GroupQueryAttention', 'DecoderMaskedMultiHeadAttention']);

function fusedSite(g: AnalysisGraph, n: NodeProto): FoundSite {
  const heads = attrInt(n, 'num_heads', attrInt(n, 'q_num_heads', 0));
  const dHead = fusedHeadSize(g, n, heads) ?? 0;
  const hasScale = getAttr(n, 'scale') !== undefined;
  const attrScale = hasScale ? attrFloat(n, 'scale', 1) : dHead > 0 ? 1 / Math.sqrt(dHead) : 1;
  // com.microsoft Attention reads the hidden state and its packed QKV weights: no Q/K input to pre-scale.
  // A packed QKV in input 0 (no key input): a scale there would scale V too; not read as a pre-scale.
  const qkInputs = FUSED_QK_INPUTS.has(n.opType) && !(n.opType === 'Attention' && n.domain === 'com.microsoft') && Boolean(n.input[1]);
  const pre = qkInputs ? [0, 1].flatMap((i) => (n.input[i] && g.dynamic.has(n.input[i]!) ? preScales(g, n.input[i]!, n) : [])) : [];
  const known = pre.every((x) => x.factor !== undefined);
  const scale = pre.reduce((acc, x) => acc * (x.factor ?? 1), attrScale);
  const preText = pre.length > 0
    ? `; Q/K scaled before it by ${pre.map((x) => `${x.node.opType} ${g.label(x.node)}${x.factor !== undefined ? ` (×${fmt(x.factor)})` : ' (at run time)'}`).join(', ')}: scale on QKᵀ ${fmt(scale)}; a rewrite sets the attribute so that the product is the target`
    : '';
  const reason = `${n.domain ? n.domain + '::' : ''}${n.opType} ${g.label(n)}: ${hasScale ? `scale attribute ${fmt(attrScale)}` : `no scale attribute, default 1/√head_size = ${fmt(attrScale)}`}, head size ${dHead || '?'}${preText}`;
  const site: AttentionSite = { kind: 'scale-attribute', nodes: [g.label(n), ...pre.map((x) => g.label(x.node))], constants: [], currentScale: scale, dHead, reason };
  if (pre.length > 0) Object.assign(site, { rewriteNodes: [g.label(n)], attributeScale: attrScale });
  const unresolved = !(dHead > 0) ? `${reason}: head size unknown; left unchanged` : !known ? `${reason}: a pre-scale on Q/K is computed at run time; left unchanged` : undefined;
  return { site, logitPath: [], fused: n, ...(unresolved ? { unresolved } : {}) };
}

function fusedHeadSize(g: AnalysisGraph, n: NodeProto, heads: number): number | undefined {
  if (n.opType === 'Attention' && n.domain === 'com.microsoft') {
    const qkv = attrInts(n, 'qkv_hidden_sizes');
    const w = g.dims(n.input[1] ?? '');
    const hidden = qkv?.[0] ?? (w?.[1] !== undefined ? w[1] / 3 : undefined);
    return hidden !== undefined && heads > 0 ? hidden / heads : undefined;
  }
  const q = g.dims(n.input[0] ?? '');
  if (!q) return undefined;
  if (q.length === 4) return q[3];
  const last = q[q.length - 1];
  return last !== undefined && heads > 0 ? last / heads : undefined;
}

export function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(6).replace(/0+$/, '');
}
