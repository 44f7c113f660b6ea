/**
 * De-fusing: onnxruntime's contrib ops (com.microsoft FusedMatMul, SkipLayerNormalization, Attention, …,
 * which its transformer optimizer writes into inference graphs) become the ai.onnx ops that compute the
 * same values, so that analysis sees ordinary MatMuls, norms and attention, and autodiff sees ops it has
 * gradients for. One rule per op (defuse-rules/); a node whose form a rule does not support is left as it
 * is and listed with the reason (the caller decides whether that is fatal: training refuses it).
 * Only the main graph is rewritten; tensors are shared with the input, which is never modified.
 */
import { GraphProtoSchema, ModelProtoSchema, type GraphProto, type ModelProto, type NodeProto } from 'onnx-buf';
import { DataType, dataTypeName } from '../onnx/dtype.js';
import { NameAuthority, opsetVersion } from '../onnx/ir.js';
import { forEachGraph } from '../onnx/walk.js';
import { copyWith, findValueShape, valueInfoElemType, type Dim } from '../train/graph-util.js';
import { ACTIVATION_RULES } from './defuse-rules/activations.js';
import { ATTENTION_RULES } from './defuse-rules/attention.js';
import { EMBEDDING_RULES } from './defuse-rules/embeddings.js';
import { MATMUL_RULES } from './defuse-rules/matmul.js';
import { NORM_RULES } from './defuse-rules/norms.js';
import type { DefuseRule, RuleContext } from './defuse-rules/types.js';
import { NodeSink } from './node-sink.js';

export const DEFUSE_RULES: readonly DefuseRule[] = [...MATMUL_RULES, ...NORM_RULES, ...ACTIVATION_RULES, ...ATTENTION_RULES, ...EMBEDDING_RULES];

export interface DefusedNode {
  node: string;
  op: string;
  rule: string;
  /** The ai.onnx ops that replace it, in order, e.g. "Add, LayerNormalization". */
  into: string;
}

export interface NotDefused {
  node: string;
  op: string;
  rule: string;
  reason: string;
}

export interface DefuseResult {
  /** The input model itself when nothing was de-fused, else a rewritten copy (tensors shared). */
  model: ModelProto;
  defused: DefusedNode[];
  notDefused: NotDefused[];
}

export function findDefuseRule(n: NodeProto): DefuseRule | undefined {
  return DEFUSE_RULES.find((r) => r.opType === n.opType && r.domains.includes(n.domain));
}

/** `node 'name' (com.microsoft Attention)`: how messages and the report name a node. */
export function nodeLabel(n: NodeProto): string {
  return `node '${n.name || n.output[0]}' (${n.domain ? `${n.domain} ` : ''}${n.opType})`;
}

export function defuseContribOps(model: ModelProto, names = new NameAuthority(model)): DefuseResult {
  const g = model.graph;
  if (!g || !g.node.some((n) => findDefuseRule(n))) return { model, defused: [], notDefused: [] };
  const ctx = ruleContext(model, g);
  const defused: DefusedNode[] = [];
  const notDefused: NotDefused[] = [];
  const nodes: NodeProto[] = [];
  const initializers = [...g.initializer];
  for (const n of g.node) {
    const found = findDefuseRule(n);
    const rule = found && (!found.appliesTo || found.appliesTo(n, ctx)) ? found : undefined;
    const match = rule ? matchWithType(rule, n, ctx) : undefined;
    if (!rule || !match) { nodes.push(n); continue; }
    if (!match.ok) {
      notDefused.push({ node: n.name || n.output[0]!, op: n.opType, rule: rule.id, reason: match.reason });
      nodes.push(n);
      continue;
    }
    const sink = new NodeSink(names, ctx.opset, n.name || n.opType);
    rule.rewrite(n, ctx, sink);
    nodes.push(...sink.nodes);
    initializers.push(...sink.initializers);
    defused.push({ node: n.name || n.output[0]!, op: n.opType, rule: rule.id, into: sink.nodes.map((x) => x.opType).join(', ') });
  }
  if (defused.length === 0) return { model, defused, notDefused };
  const graph = copyWith(GraphProtoSchema, g, { node: nodes, initializer: initializers });
  const out = copyWith(ModelProtoSchema, model, { graph });
  out.opsetImport = model.opsetImport.filter((o) => o.domain !== 'com.microsoft' || usesDomain(out, 'com.microsoft'));
  return { model: out, defused, notDefused };
}

/** The rule's match, after the check every rule shares: float inputs must be float32 (constants are). */
function matchWithType(rule: DefuseRule, n: NodeProto, ctx: RuleContext): ReturnType<DefuseRule['match']> {
  const slot = rule.floatInput ?? 0;
  const t = ctx.elemType(n.input[slot]!);
  if (t !== undefined && t !== DataType.FLOAT) return { ok: false, reason: `input ${slot} '${n.input[slot]}' is ${dataTypeName(t)}; only float32 graphs are de-fused` };
  return rule.match(n, ctx);
}

const SHAPE_PRESERVING = new Set(['Cast', 'Identity']);

function ruleContext(model: ModelProto, g: GraphProto): RuleContext {
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const used = new Set<string>(g.output.map((v) => v.name));
  forEachGraph(g, (sub) => sub.node.forEach((n) => n.input.forEach((i) => i && used.add(i))));
  const valueInfos = [...g.input, ...g.output, ...g.valueInfo];
  const producers = new Map<string, NodeProto>();
  for (const n of g.node) n.output.forEach((o) => o && producers.set(o, n));
  const noted = new Map<string, Dim[]>();
  const shape = (v: string): Dim[] | undefined => {
    const t = inits.get(v);
    if (t) return t.dims.map(Number);
    if (noted.has(v)) return noted.get(v);
    const recorded = findValueShape(g, v);
    if (recorded) return recorded;
    // Casts keep the shape (onnxruntime's optimizer casts the mask to int32 without value_info).
    const p = producers.get(v);
    return p && SHAPE_PRESERVING.has(p.opType) && !p.domain ? shape(p.input[0]!) : undefined;
  };
  return {
    graph: g,
    opset: opsetVersion(model) ?? 1,
    shape,
    elemType: (v) => {
      const t = inits.get(v);
      if (t) return t.dataType;
      const vi = valueInfos.find((x) => x.name === v);
      return vi ? valueInfoElemType(vi) : undefined;
    },
    isUsed: (v) => used.has(v),
    noteShape: (v, s) => { noted.set(v, s); },
  };
}

function usesDomain(model: ModelProto, domain: string): boolean {
  let found = model.functions.some((f) => f.domain === domain || f.node.some((n) => n.domain === domain));
  if (model.graph) forEachGraph(model.graph, (sub) => { found ||= sub.node.some((n) => n.domain === domain); });
  return found;
}
