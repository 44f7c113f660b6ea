/**
 * Role of every main-graph initializer, each with the reason it was chosen. Detectors run in a fixed order
 * and the first one to claim a tensor wins: embeddings, linear weights (readout / hidden), norms, biases,
 * buffers; what is left is `unknown` and reported.
 */
import type { NodeProto } from 'onnx-buf';
import { dimsOf, elementCount } from '../onnx/tensor.js';
import type { FoundSite } from './attention.js';
import { findEmbeddings, joinedEmbeddings, type EmbeddingUse } from './embeddings.js';
import type { AnalysisGraph } from './graph.js';
import { affineParams, exporterNormConstant, findNormParams, FUSED_NORM_OPS } from './norms.js';
import { GENERATED_NAME } from './sharing.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { tieByValue } from './ties.js';
import { classifyBuffer } from './buffers.js';
import type { ParamInfo, Role } from './types.js';
import { findLogitsSource, isFloatTensor, linearUses, type LinearUse, type LogitsSource } from './weights.js';

export interface RoleResult {
  params: Map<string, ParamInfo>;
  embeddings: EmbeddingUse[];
  logits?: LogitsSource;
  /** Linear uses of every hidden/readout weight (for layers, residual detection and blocks). */
  linear: Map<string, LinearUse[]>;
  warnings: string[];
}

/** The params being classified: the first detector to claim a tensor sets its role. */
class RoleBook {
  readonly decided = new Set<string>();
  readonly warnings: string[] = [];
  constructor(readonly params: Map<string, ParamInfo>) {}

  set(name: string, role: Role, reason: string, extra: Partial<ParamInfo> = {}): void {
    const p = this.params.get(name);
    if (!p || this.decided.has(name)) return;
    Object.assign(p, { role, reason }, extra);
    this.decided.add(name);
  }

  setEmbedding(e: EmbeddingUse): void {
    const shape = this.params.get(e.weight)?.shape ?? [];
    this.set(e.weight, e.position ? 'position_embedding' : 'embedding', e.why, { fanIn: 1, fanOut: shape.at(-1), inputAxis: 0, outputAxis: shape.length - 1 });
  }

  undecided(): ParamInfo[] {
    return [...this.params.values()].filter((p) => !this.decided.has(p.name));
  }
}

export function classifyRoles(g: AnalysisGraph, sites: FoundSite[]): RoleResult {
  const book = new RoleBook(initialParams(g));
  const embeddings = findEmbeddings(g);
  embeddings.forEach((e) => book.setEmbedding(e));
  const logits = findLogitsSource(g);
  const linear = classifyLinear(g, book, logits, embeddings);
  const width = (e: EmbeddingUse) => (e.node?.opType === 'Gather' ? book.params.get(e.weight)?.shape.at(-1) : book.params.get(e.weight)?.fanOut);
  const joined = joinedEmbeddings(g, embeddings, width);
  joined.forEach((e) => book.setEmbedding(e));
  embeddings.push(...joined);
  if (logits) tieReadout(g, book.params, embeddings, logits, book.warnings);
  const norms = findNormParams(g);
  for (const n of norms) {
    const count = norms.filter((m) => m.weight === n.weight).length;
    const made = n.node.opType in FUSED_NORM_OPS ? exporterMade(g, n.weight, n.role) : undefined;
    if (made) book.set(n.weight, 'buffer', `${made}; input of ${n.node.opType} ${g.label(n.node)}`);
    else book.set(n.weight, n.role, count > 1 ? `${n.why} (and ${count - 1} more norms share it)` : n.why);
  }
  for (const p of book.undecided()) {
    const bias = biasReason(g, p);
    if (bias) book.set(p.name, 'bias', bias);
  }
  // x·w + b right after a normalisation is a norm's gain and shift, whatever else it feeds (checked before
  // buffers: everything upstream of QKᵀ looks like a rotary table's Mul); an affine layer alone, after them.
  for (const afterNormOnly of [true, false]) {
    if (!afterNormOnly) {
      for (const p of book.undecided()) {
        const buffer = classifyBuffer(g, p, sites);
        if (buffer) book.set(p.name, 'buffer', buffer);
      }
    }
    const floats = new Set(book.undecided().filter((p) => isFloatTensor(p.dataType) && p.elements > 1).map((p) => p.name));
    for (const n of affineParams(g, floats, afterNormOnly)) {
      const made = exporterMade(g, n.weight, n.role);
      book.set(n.weight, made ? 'buffer' : n.role, made ?? n.why);
    }
  }
  for (const p of book.undecided()) {
    p.reason = `not classified (consumers: ${p.consumers.slice(0, 3).join(', ') || 'none'}); left untouched`;
    book.warnings.push(`initializer '${p.name}' ${JSON.stringify(p.shape)}: ${p.reason}`);
  }
  return { params: book.params, embeddings, ...(logits ? { logits } : {}), linear, warnings: book.warnings };
}

/** The reason a norm vector is an exporter's constant (ones gain / zeros shift under a generated name), if it is. */
function exporterMade(g: AnalysisGraph, name: string, role: string): string | undefined {
  if (!GENERATED_NAME.test(name) || (role !== 'norm_scale' && role !== 'norm_bias')) return undefined;
  try {
    return exporterNormConstant(name, role, tensorToFloat32(g.index.getInitializer(name), g.baseDir), true);
  } catch {
    return undefined;
  }
}

function initialParams(g: AnalysisGraph): Map<string, ParamInfo> {
  const params = new Map<string, ParamInfo>();
  for (const t of g.model.graph!.initializer) {
    if (params.has(t.name)) continue;
    const shape = dimsOf(t);
    const consumers = g.uses(t.name).map((u) => (u.via ? `${g.label(u.node)} (in ${g.label(u.via)})` : g.label(u.node)));
    params.set(t.name, {
      name: t.name, role: 'unknown', reason: '', shape, dataType: t.dataType, elements: elementCount(shape),
      consumers: [...new Set(consumers)],
    });
  }
  return params;
}

function describeUses(g: AnalysisGraph, uses: LinearUse[]): string {
  const first = uses[0]!;
  const where = (u: LinearUse) => `${g.label(u.node)}${u.via ? ` inside ${u.via.opType} ${g.label(u.via)}` : ''}`;
  const more = uses.length > 1 ? ` (+${uses.length - 1} more)` : '';
  return `${first.form} at ${where(first)}${more}`;
}

/** Weights of MatMul/Gemm/Conv: the readout, input layers (role embedding), hidden weights. */
function classifyLinear(g: AnalysisGraph, book: RoleBook, logits: LogitsSource | undefined, embeddings: EmbeddingUse[]): Map<string, LinearUse[]> {
  const out = new Map<string, LinearUse[]>();
  for (const p of book.params.values()) {
    if (!isFloatTensor(p.dataType) || p.shape.length < 2) continue;
    const uses = linearUses(g, p.name, p.shape);
    if (uses.length === 0) continue;
    out.set(p.name, uses);
    const first = uses[0]!;
    const geo = { fanIn: first.fanIn, fanOut: first.fanOut, inputAxis: first.inputAxis, outputAxis: first.outputAxis };
    if (uses.some((u) => u.inputAxis !== geo.inputAxis)) {
      book.warnings.push(`initializer '${p.name}': used with different input axes by ${uses.map((u) => g.label(u.node)).join(', ')}; fan-in taken from the first use`);
    }
    if (logits && p.name === logits.weight) {
      if (book.decided.has(p.name)) {
        Object.assign(p, { tie: 'identity', tiedWith: p.name });
        p.reason += `; also the readout weight of ${g.label(logits.node)} producing '${logits.output}' (tied by identity)`;
      } else {
        book.set(p.name, 'readout', `${describeUses(g, uses)} producing graph output '${logits.output}'${tailText(logits.tail)}`, geo);
      }
      continue;
    }
    const input = uses.length === 1 ? inputLayerSource(g, first) : undefined;
    if (!input) {
      book.set(p.name, 'hidden', `${describeUses(g, uses)}, inside the network`, geo);
      continue;
    }
    const why = `input layer: ${describeUses(g, uses)} reads graph input '${input}' directly (µP input weight: its fan-in does not grow with width)`;
    book.set(p.name, 'embedding', why, geo);
    if (!first.via) embeddings.push({ weight: p.name, value: first.node.output[0]!, position: false, node: first.node, why });
    else book.warnings.push(`input layer '${p.name}' is used inside ${first.via.opType} ${g.label(first.via)}: no embedding output listed for α_input`);
  }
  return out;
}

/** Ops between a graph input and an input layer: views, picks, and elementwise ops with a constant. */
const INPUT_PATH_OPS = new Set(['Reshape', 'Flatten', 'Transpose', 'Cast', 'Identity', 'Squeeze', 'Unsqueeze', 'Gather', 'Slice', 'Sub', 'Mul', 'Div', 'Add']);

/**
 * The graph input a linear map reads with nothing but views and constant affine ops in between (a patch
 * embedding, the first layer of an MLP or RNN): in µP an input weight, like an embedding table.
 */
export function inputLayerSource(g: AnalysisGraph, use: LinearUse): string | undefined {
  const inputs = new Set(g.model.graph!.input.map((v) => v.name).filter((v) => !g.isInitializer(v)));
  const data = use.node.input.find((i, k) => k !== use.slot && k < 2 && i);
  let v = data;
  for (let hops = 0; v && hops < 8; hops++) {
    if (inputs.has(v)) return v;
    const p = g.producer(v);
    if (!p || !INPUT_PATH_OPS.has(p.opType)) return undefined;
    if (p.opType === 'Gather' || p.opType === 'Slice') {
      v = p.input[0]; // the data picked from; indices may be loop counters
      continue;
    }
    const dyn = p.input.filter((i) => i && g.dynamic.has(i));
    if (dyn.length !== 1 || (dyn[0] !== p.input[0] && !['Mul', 'Add'].includes(p.opType))) return undefined;
    v = dyn[0];
  }
  return undefined;
}

function tailText(tail: NodeProto[]): string {
  return tail.length ? ` through ${tail.map((n) => n.opType).reverse().join('→')}` : '';
}

/** A readout equal by value (or transposed value) to a token embedding is tied to it. */
function tieReadout(g: AnalysisGraph, params: Map<string, ParamInfo>, embeddings: EmbeddingUse[], logits: LogitsSource, warnings: string[]): void {
  const readout = params.get(logits.weight);
  if (!readout || readout.role !== 'readout') return;
  for (const e of embeddings.filter((x) => !x.position)) {
    const emb = params.get(e.weight)!;
    let tie;
    try {
      tie = tieByValue(g.index.getInitializer(e.weight), g.index.getInitializer(readout.name), g.baseDir);
    } catch (err) {
      warnings.push(`tie check '${readout.name}' vs '${e.weight}' skipped: ${(err as Error).message}`);
      continue;
    }
    if (!tie) continue;
    const how = tie === 'value' ? 'equal values' : `equal to the transpose of '${emb.name}'`;
    Object.assign(readout, { tie, tiedWith: emb.name });
    readout.reason += `; tied to embedding '${emb.name}' by value (${how}, within 1e-6)`;
    Object.assign(emb, { tie, tiedWith: readout.name });
    emb.reason += `; tied to readout '${readout.name}' by value`;
    return;
  }
}

/** Inputs that are biases by the op's definition (ONNX, and com.microsoft contrib ops). */
const BIAS_SLOTS: Record<string, number> = { Gemm: 2, Conv: 2, ConvTranspose: 2, Attention: 2, MultiHeadAttention: 3, FastGelu: 1, BiasGelu: 1, BiasAdd: 1, QuickGelu: 1 };

/** Ops between a linear map and the Add of its bias. */
const BIAS_PATH_OPS = new Set(['Add', 'Reshape', 'Cast', 'Identity', 'Transpose', 'Squeeze', 'Unsqueeze']);

/** A 1-D (or [1,…,1,n]) float constant added after a MatMul/Gemm/Conv with a weight, or Gemm's C / Conv's B. */
function biasReason(g: AnalysisGraph, p: ParamInfo): string | undefined {
  if (!isFloatTensor(p.dataType) || p.shape.length === 0 || p.elements !== p.shape.at(-1)) return undefined;
  for (const u of g.uses(p.name)) {
    const n = u.node;
    const contribOnly = n.opType.endsWith('Attention') && n.domain !== 'com.microsoft';
    if (BIAS_SLOTS[n.opType] === u.index && !contribOnly) {
      return `${n.opType} ${g.label(n)} input ${u.index} (bias)`;
    }
    if (n.opType !== 'Add') continue;
    const other = n.input[1 - u.index];
    const lin = other ? linearBehind(g, other) : undefined;
    if (lin) return `added by Add ${g.label(n)} after ${lin.opType} ${g.label(lin)}`;
  }
  return undefined;
}

function linearBehind(g: AnalysisGraph, value: string): NodeProto | undefined {
  let v = value;
  for (let hops = 0; hops < 5; hops++) {
    const p = g.producer(v) ?? undefined;
    if (!p) return undefined;
    if (['MatMul', 'Gemm', 'Conv', 'ConvTranspose'].includes(p.opType)) {
      return p.input.slice(0, 2).some((i) => g.isInitializer(g.viewSource(i).value)) ? p : undefined;
    }
    if (!BIAS_PATH_OPS.has(p.opType)) return undefined;
    const next = p.opType === 'Add' ? p.input.find((i) => i && g.dynamic.has(i) && linearBehind(g, i)) : p.input[0];
    if (!next) return undefined;
    v = next;
  }
  return undefined;
}
