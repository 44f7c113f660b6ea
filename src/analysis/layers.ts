/**
 * Transformer structure: layer index of each parameter, the projections writing into the residual stream,
 * and the values a coordinate check records (paper Fig. 5; mup's coord check).
 *
 * Layer index: from the name (`h.3.`, `layers.3.`, `layer.3`, `blocks.3`) when it has one; otherwise from
 * graph order — layer i starts at the first Q/K/V projection feeding the i-th attention site.
 */
import type { NodeProto } from 'onnx-buf';
import type { FoundSite } from './attention.js';
import type { AnalysisGraph } from './graph.js';
import type { RoleResult } from './roles.js';
import type { AttentionSite, BlockOutput, ParamInfo, ResidualBranch } from './types.js';

const LAYER_NAME = /(?:^|[./_])(?:h|layer|layers|block|blocks|blk|encoder_layer|decoder_layer|transformer_blocks)[./_](\d+)(?=[./_]|$)/;

export function layerFromName(name: string): number | undefined {
  const m = LAYER_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

export class LayerMap {
  /** Topological position where each layer starts (its first Q/K/V projection). */
  readonly starts: number[];
  /** Hidden weights projecting Q, K or V of each site. */
  readonly projections = new Map<FoundSite, string[]>();
  private readonly linearNodes: Map<NodeProto, string>;

  constructor(private readonly g: AnalysisGraph, sites: FoundSite[], private readonly roles: RoleResult) {
    this.linearNodes = new Map();
    for (const [w, uses] of roles.linear) {
      const role = roles.params.get(w)?.role;
      if (role === 'hidden') for (const u of uses) if (!u.via) this.linearNodes.set(u.node, w);
    }
    this.starts = sites.map((s) => this.projectionStart(s)).filter((x): x is number => x !== undefined);
    if (this.starts.some((x, i) => i > 0 && x < this.starts[i - 1]!)) this.starts.sort((a, b) => a - b);
  }

  /** Position of the last layer's last residual Add; nodes after it (final norm, heads) are in no layer. */
  lastEnd?: number;

  /** Layer of a node at topological position `pos` by graph order (undefined outside the layers). */
  layerAt(pos: number): number | undefined {
    let layer: number | undefined;
    this.starts.forEach((s, i) => { if (s <= pos) layer = i; });
    if (layer === this.starts.length - 1 && this.lastEnd !== undefined && pos > this.lastEnd) return undefined;
    return layer;
  }

  /** Earliest hidden linear node feeding Q, K or V of a site (walk back over activations). */
  private projectionStart(s: FoundSite): number | undefined {
    const anchor = s.qk ?? s.fused;
    if (!anchor) return undefined;
    const seeds = [...anchor.input];
    const av = s.softmax ? this.g.directUses(s.softmax.output[0]!).find((u) => u.node.opType === 'MatMul') : undefined;
    if (av) seeds.push(...av.node.input);
    let best: number | undefined;
    const weights: string[] = [];
    if (this.linearNodes.has(anchor)) weights.push(this.linearNodes.get(anchor)!);
    const seen = new Set<string>();
    const stack = seeds.filter((v) => v && this.g.dynamic.has(v));
    while (stack.length > 0 && seen.size < 200) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = this.g.producer(v);
      if (!p) continue;
      if (this.linearNodes.has(p)) {
        const pos = this.g.position.get(p)!;
        best = best === undefined ? pos : Math.min(best, pos);
        weights.push(this.linearNodes.get(p)!);
        continue;
      }
      if (p.opType === 'Softmax') continue;
      for (const i of p.input) if (i && this.g.dynamic.has(i)) stack.push(i);
    }
    this.projections.set(s, weights);
    return best;
  }

  isLinearNode(n: NodeProto): boolean {
    return this.linearNodes.has(n);
  }
}

/** Ops between a projection and the residual Add (bias, views). */
const TO_RESIDUAL_OPS = new Set(['Add', 'Reshape', 'Cast', 'Identity', 'Dropout', 'Squeeze', 'Unsqueeze', 'Transpose']);

/**
 * Where a projection's output enters the residual stream: the Add with two activation operands whose other
 * operand (the stream) is an ancestor of the projection's own input. A parallel block (GPT-NeoX, Phi:
 * x + attn(ln₁x) + mlp(ln₂x)) first adds the other branch, which is no ancestor: the walk goes on through
 * that Add, and the block value stays the projection's own output.
 */
export function residualEntry(g: AnalysisGraph, node: NodeProto): { add: NodeProto; value: string } | undefined {
  const input = node.input.find((i) => i && g.dynamic.has(i));
  if (!input) return undefined;
  let v = node.output[0]!;
  let own: string | undefined;
  for (let hops = 0; hops < 6; hops++) {
    const uses = g.directUses(v);
    if (uses.length !== 1) return undefined;
    const n = uses[0]!.node;
    if (!TO_RESIDUAL_OPS.has(n.opType)) return undefined;
    if (n.opType === 'Add') {
      const other = n.input[1 - uses[0]!.index];
      if (other && g.dynamic.has(other)) {
        if (g.dependsOn(input, other, 4000)) return { add: n, value: own ?? v };
        if (own !== undefined) return undefined; // one parallel branch at most
        own = v;
      }
    }
    v = n.output[0]!;
  }
  return undefined;
}

/** Walks back from `value` over activations, not crossing hidden projections: does it reach a Softmax? */
function readsAttention(g: AnalysisGraph, value: string, layers: LayerMap): boolean {
  const seen = new Set<string>();
  const stack = [value];
  while (stack.length > 0 && seen.size < 100) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = g.producer(v);
    if (!p || layers.isLinearNode(p)) continue;
    if (p.opType === 'Softmax' || p.opType.endsWith('Attention')) return true;
    for (const i of p.input) if (i && g.dynamic.has(i)) stack.push(i);
  }
  return false;
}

export interface Structure {
  blocks: BlockOutput[];
  branches: ResidualBranch[];
  nLayers?: number;
}

/** Sets `layer` and `residualOutput` on params and sites; returns the coordinate-check blocks. */
export function assignStructure(g: AnalysisGraph, sites: FoundSite[], roles: RoleResult): Structure {
  const layers = new LayerMap(g, sites, roles);
  const ordered = [...sites].sort((a, b) => anchorPos(g, a) - anchorPos(g, b));
  const entries = residualEntries(g, roles);
  const lastStart = layers.starts.at(-1);
  const addPositions = [...entries.values()].map((e) => g.position.get(e.add)!).filter((p) => lastStart !== undefined && p >= lastStart);
  if (addPositions.length > 0) layers.lastEnd = Math.max(...addPositions);
  const blocks: BlockOutput[] = [];
  const branches: ResidualBranch[] = [];
  for (const e of roles.embeddings) if (e.node && !g.isInitializer(e.value)) blocks.push({ value: e.value, kind: 'embedding' });
  for (const p of roles.params.values()) {
    const byName = layerFromName(p.name);
    let layer: number | undefined;
    if (p.role === 'hidden') {
      const use = roles.linear.get(p.name)?.find((u) => !u.via);
      const pos = use ? g.position.get(use.node) : undefined;
      layer = byName ?? (pos !== undefined ? layers.layerAt(pos) : undefined);
      const entry = entries.get(p.name);
      if (entry) {
        p.residualOutput = true;
        const kind = readsAttention(g, use!.node.input[0]!, layers) ? 'attention' : 'mlp';
        blocks.push({ value: entry.value, kind, ...(layer !== undefined ? { layer } : {}), point: 'pre-residual' });
        branches.push({ value: entry.value, kind, ...(layer !== undefined ? { layer } : {}), projection: p.name, add: g.label(entry.add), sum: entry.add.output[0]! });
      }
    } else if (['norm_scale', 'norm_bias', 'bias'].includes(p.role)) {
      layer = byName ?? layerOfSmallParam(g, p, layers, roles.logits?.node);
    } else if (p.role === 'buffer') {
      layer = byName;
    }
    if (layer !== undefined) p.layer = layer;
  }
  // A site's layer is its Q/K/V projections' layer (names first), else its rank in graph order.
  ordered.forEach((s, i) => {
    const fromWeights = (layers.projections.get(s) ?? []).map((w) => roles.params.get(w)?.layer).filter((l) => l !== undefined);
    s.site.layer = fromWeights.length > 0 ? Math.min(...fromWeights) : i;
  });
  for (const s of ordered) if (s.site.logitsValue) blocks.push({ value: s.site.logitsValue, kind: 'attention_logits', layer: s.site.layer! });
  // Named layers (an encoder-decoder has self- and cross-attention per layer), else one site per layer.
  const nLayers = namedLayerCount(roles) ?? (sites.length > 0 ? sites.length : undefined);
  branches.sort((a, b) => (g.position.get(g.producer(a.value)!) ?? 0) - (g.position.get(g.producer(b.value)!) ?? 0));
  return { blocks: sortBlocks(blocks), branches, ...(nLayers ? { nLayers } : {}) };
}

/** Hidden weights used once in the main graph whose output is added into the residual stream. */
function residualEntries(g: AnalysisGraph, roles: RoleResult): Map<string, { add: NodeProto; value: string }> {
  const out = new Map<string, { add: NodeProto; value: string }>();
  for (const [w, uses] of roles.linear) {
    if (roles.params.get(w)?.role !== 'hidden' || uses.length !== 1 || uses[0]!.via) continue;
    const e = residualEntry(g, uses[0]!.node);
    if (e) out.set(w, e);
  }
  return out;
}

function anchorPos(g: AnalysisGraph, s: FoundSite): number {
  const n = s.qk ?? s.fused;
  return n ? (g.position.get(n) ?? 0) : 0;
}

/** Norms and biases: the layer of the graph position of their first reader. */
function layerOfSmallParam(g: AnalysisGraph, p: ParamInfo, layers: LayerMap, readout: NodeProto | undefined): number | undefined {
  const reader = g.directUses(p.name)[0]?.node;
  const pos = reader ? g.position.get(reader) : undefined;
  if (pos === undefined) return undefined;
  if (p.role === 'norm_scale' || p.role === 'norm_bias') {
    if (readout && feedsReadoutDirectly(g, reader!, readout, layers)) return undefined;
    // A pre-LN norm feeds only its layer's projections: it belongs to the layer that starts next. A norm
    // whose output is the residual stream itself (embedding LN, post-LN) stays where it is.
    const next = layers.starts.findIndex((s) => s > pos);
    const cur = layers.layerAt(pos);
    if (next >= 0 && !feedsResidualAdd(g, reader!)) return next;
    return cur;
  }
  return layers.layerAt(pos);
}

/** A final norm: its output reaches the readout's input without crossing a hidden projection. */
function feedsReadoutDirectly(g: AnalysisGraph, reader: NodeProto, readout: NodeProto, layers: LayerMap): boolean {
  const target = reader.output[0]!;
  const seen = new Set<string>();
  const stack = readout.input.filter((i) => i && g.dynamic.has(i));
  while (stack.length > 0 && seen.size < 4000) {
    const v = stack.pop()!;
    if (v === target) return true;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = g.producer(v);
    if (!p || layers.isLinearNode(p)) continue;
    for (const i of p.input) if (i && g.dynamic.has(i)) stack.push(i);
  }
  return false;
}

/** The norm's output (after its gain/shift constants) is read by an Add of two activations. */
function feedsResidualAdd(g: AnalysisGraph, reader: NodeProto): boolean {
  let v = reader.output[0]!;
  for (let hops = 0; hops < 4; hops++) {
    const uses = g.directUses(v);
    if (uses.some((u) => u.node.opType === 'Add' && u.node.input.every((x) => x && g.dynamic.has(x)))) return true;
    const affine = uses.length === 1 && ['Mul', 'Add', 'Cast'].includes(uses[0]!.node.opType) && uses[0]!.node.input.filter((x) => x && g.dynamic.has(x)).length === 1;
    if (!affine) return false;
    v = uses[0]!.node.output[0]!;
  }
  return false;
}

function namedLayerCount(roles: RoleResult): number | undefined {
  const ls = [...roles.params.values()].filter((p) => p.role === 'hidden').map((p) => layerFromName(p.name)).filter((l) => l !== undefined);
  return ls.length ? Math.max(...ls) + 1 : undefined;
}

const KIND_ORDER: Record<BlockOutput['kind'], number> = { embedding: 0, attention_logits: 1, attention: 2, mlp: 3, residual_stream: 4, output_logits: 5 };

function sortBlocks(blocks: BlockOutput[]): BlockOutput[] {
  return blocks.sort((a, b) => (a.layer ?? -1) - (b.layer ?? -1) || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || a.value.localeCompare(b.value));
}

export type { AttentionSite };
