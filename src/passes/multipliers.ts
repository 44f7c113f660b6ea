/**
 * Forward multipliers (DESIGN.md "Semantics"; paper Table 1):
 * - embedding: `Mul` by α_input after each embedding output (X⁰W_emb → α_input·X⁰W_emb);
 * - readout: `Mul` by α_output/m_d on the logits (Cerebras places it there; for a tied readout it must go
 *   on the logits, since the shared table also feeds the embedding);
 * - attention logits: each detected site is rewritten so that the product on QKᵀ equals the rule's
 *   attentionScale (1/d_head for µP and SµPar instead of 1/√d_head). A constant is replaced by a new named
 *   scalar initializer (the old one may be shared, e.g. GPT-2's 0.5 also feeds GELU), an attribute is set,
 *   and a scale computed at run time gets a `Mul` by target/current after it.
 * Every constant inserted is a named scalar initializer (`supar.embedding_mult`, `supar.output_mult`,
 * `supar.attn_scale.L<layer>`). A multiplier equal to 1 (or a site already at its target) is left out.
 */
import type { ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { InvariantError } from '../errors.js';
import { attr, node, getAttr } from '../onnx/build.js';
import { DataType } from '../onnx/dtype.js';
import { GraphIndex, NameAuthority } from '../onnx/ir.js';
import { makeScalarFloat, tensorToFloat32 } from '../onnx/tensor.js';
import type { AttentionPlan } from '../plan.js';
import { addInitializer, insertAfterProducer, redirectUses, removeIfUnused } from './graph-edit.js';
import type { Pass, PassContext, PassResult } from './manager.js';

export interface MultiplierReportEntry {
  kind: 'embedding' | 'output' | 'branch';
  /** The value multiplied (its consumers now read the product). */
  value: string;
  constant: string;
  multiplier: number;
  node: string;
}

export interface AttentionReportEntry {
  kind: string;
  layer: number | null;
  d_head: number;
  nodes: string[];
  before: number;
  after: number;
  rewrite: 'constant' | 'attribute' | 'mul' | 'unchanged' | 'skipped';
  /** Constants that now carry the scale (new named initializers), or the attribute / node changed. */
  carriers: string[];
  reason: string;
}

export interface MultiplierPassReport {
  multipliers: MultiplierReportEntry[];
  attention: AttentionReportEntry[];
}

/**
 * Relative tolerance under which a multiplier counts as 1 (no rewrite): exporters print constants to about 7
 * digits (Megatron's √√4 is 1.414214), so a site within float32 rounding of its target is left as it is.
 */
const UNIT_TOLERANCE = 1e-6;
const isUnit = (x: number) => Math.abs(x - 1) <= UNIT_TOLERANCE;

export const multiplierPass: Pass<MultiplierPassReport> = {
  id: 'multipliers',
  doc: 'insert the embedding and output multipliers and rewrite every attention-logit scale to the rule\'s',
  run(model: ModelProto, ctx: PassContext): PassResult<MultiplierPassReport> {
    const names = new NameAuthority(model);
    const report: MultiplierPassReport = { multipliers: [], attention: [] };
    const { plan, analysis } = ctx;
    if (!isUnit(plan.embeddingMultiplier)) {
      const seen = new Set<string>();
      for (const e of analysis.embeddingOutputs) {
        if (seen.has(e.value)) continue;
        seen.add(e.value);
        report.multipliers.push(multiplyValue(model, names, e.value, plan.embeddingMultiplier, 'embedding', 'supar.embedding_mult'));
      }
    }
    if (!isUnit(plan.outputMultiplier) && analysis.logits) {
      report.multipliers.push(multiplyValue(model, names, analysis.logits.output, plan.outputMultiplier, 'output', 'supar.output_mult'));
    }
    for (const a of plan.attention) report.attention.push(rewriteAttention(model, names, a, ctx));
    return { model, report };
  },
};

/**
 * Element type of a value: from its value_info / graph input / output / initializer; otherwise the type of
 * the model's largest float initializer (an fp16 model multiplies in fp16), float when there is none.
 */
function elemTypeOf(model: ModelProto, value: string): number {
  const g = model.graph!;
  const init = g.initializer.find((t) => t.name === value);
  if (init) return init.dataType;
  for (const v of [...g.valueInfo, ...g.output, ...g.input]) {
    if (v.name === value && v.type?.value.case === 'tensorType' && v.type.value.value.elemType) return v.type.value.value.elemType;
  }
  let best: TensorProto | undefined;
  let bestSize = -1;
  for (const t of g.initializer) {
    if (!FLOAT_TYPES.has(t.dataType)) continue;
    const size = t.dims.reduce((a, b) => a * Number(b), 1);
    if (size > bestSize) [best, bestSize] = [t, size];
  }
  return best?.dataType ?? DataType.FLOAT;
}

const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/**
 * Multiplies `value` by a constant. A node's output is renamed to `<value>__supar_pre` and the Mul takes the
 * original name, so every reader (subgraphs and graph outputs included) sees the product and the graph's
 * interface keeps its names. A value with no producer (initializer, graph input) gets a new product value and
 * its readers are redirected.
 */
export function multiplyValue(model: ModelProto, names: NameAuthority, value: string, k: number, kind: MultiplierReportEntry['kind'], constBase: string): MultiplierReportEntry {
  const g = model.graph!;
  const constant = names.fresh(constBase);
  addInitializer(g, makeScalarFloat(constant, k, elemTypeOf(model, value)));
  const nodeName = names.fresh(`${constBase}.mul`);
  const producer = g.node.find((n) => n.output.includes(value));
  if (producer) {
    const pre = names.fresh(`${value}__supar_pre`);
    producer.output[producer.output.indexOf(value)] = pre;
    insertAfterProducer(g, pre, [node('Mul', [pre, constant], [value], {}, nodeName)]);
  } else {
    const index = new GraphIndex(model);
    const product = names.fresh(`${value}__supar_scaled`);
    const mul = node('Mul', [value, constant], [product], {}, nodeName);
    redirectUses(index, value, product);
    g.node.unshift(mul);
  }
  return { kind, value, constant, multiplier: k, node: nodeName };
}

function rewriteAttention(model: ModelProto, names: NameAuthority, a: AttentionPlan, ctx: PassContext): AttentionReportEntry {
  const findNode = (ref: string) => getSiteNode(ctx, ref);
  const { site, targetScale } = a;
  const base: AttentionReportEntry = {
    kind: site.kind, layer: site.layer ?? null, d_head: site.dHead, nodes: site.nodes, before: site.currentScale,
    after: targetScale ?? site.currentScale, rewrite: 'unchanged', carriers: [], reason: site.reason,
  };
  if (targetScale === null || isUnit(targetScale / site.currentScale)) return base;
  try {
    return rewriteSite(model, names, a, targetScale / site.currentScale, base, findNode, ctx);
  } catch (e) {
    if (!(e instanceof InvariantError)) throw e;
    // A site the analysis found but this pass cannot edit (e.g. inside a subgraph): left alone, reported.
    return { ...base, after: site.currentScale, rewrite: 'skipped', reason: `${site.reason}; not rewritten: ${e.message}` };
  }
}

function rewriteSite(
  model: ModelProto, names: NameAuthority, a: AttentionPlan, ratio: number, base: AttentionReportEntry,
  findNode: (ref: string) => NodeProto, ctx: PassContext,
): AttentionReportEntry {
  const { site } = a;
  const tag = `supar.attn_scale.L${site.layer ?? 'x'}`;
  if (site.kind === 'scale-attribute') return { ...base, rewrite: 'attribute', carriers: setScaleAttributes(site.nodes.map(findNode), ratio, site.currentScale) };
  if (site.kind === 'runtime-sqrt' || site.constants.length === 0) {
    const after = site.nodes.length > 0 ? site.nodes[site.nodes.length - 1]! : site.qkMatMul;
    if (!after) throw new InvariantError(`attention site (${site.reason}) names no node to scale after`);
    return { ...base, rewrite: 'mul', carriers: [multiplyValue(model, names, findNode(after).output[0]!, ratio, 'output', tag).constant] };
  }
  return { ...base, rewrite: 'constant', carriers: rewriteConstants(model, names, site.nodes.map(findNode), site.constants, ratio, tag, ctx.baseDir, site.kind === 'split-qk') };
}

function getSiteNode(ctx: PassContext, ref: string): NodeProto {
  const n = ctx.nodes.get(ref);
  if (!n) throw new InvariantError(`attention site names node '${ref}', which is not in the main graph`);
  return n;
}

/**
 * Replaces each site node's scale constant c by a new named scalar: Div by c → c/r, Mul by c → c·r, where r
 * is the ratio target/current for the whole product; a scale split over Q and K gives each side √r.
 */
function rewriteConstants(model: ModelProto, names: NameAuthority, nodes: NodeProto[], constants: string[], ratio: number, tag: string, baseDir: string, qk: boolean): string[] {
  const index = new GraphIndex(model);
  const carriers: string[] = [];
  // k nodes each multiply QKᵀ by their factor; giving each r^(1/k) more makes the product r times larger.
  const perSide = Math.pow(ratio, 1 / nodes.length);
  const slots = nodes.map((n) => {
    const slot = n.input.findIndex((x) => constants.includes(x));
    if (slot < 0) throw new InvariantError(`attention node '${n.name}' reads none of the scale constants ${constants.join(', ')}`);
    return slot;
  });
  const keyOf = (n: NodeProto, slot: number) => `${n.input[slot]}\0${n.opType}\0${slot}`;
  const distinct = [...new Set(nodes.map((n, i) => keyOf(n, slots[i]!)))];
  const made = new Map<string, string>();
  nodes.forEach((n, i) => {
    const slot = slots[i]!;
    const key = keyOf(n, slot);
    const old = n.input[slot]!;
    let name = made.get(key);
    if (!name) {
      const t: TensorProto | undefined = index.findConstant(old);
      if (!t) throw new InvariantError(`attention scale '${old}' is not a constant`);
      const c = tensorToFloat32(t, baseDir)[0]!;
      // Div(x, c) divides by c; Mul (either slot) and Div(c, x) multiply by c.
      const next = n.opType === 'Div' && slot === 1 ? c / perSide : c * perSide;
      // Q and K sides for a split scale; else numbered in site order (OPT: a scale on Q, then × 1 after QKᵀ).
      const k = distinct.indexOf(key);
      name = names.fresh(distinct.length === 1 ? tag : `${tag}.${qk ? ['q', 'k'][k] ?? k : k}`);
      addInitializer(model.graph!, makeScalarFloat(name, next, t.dataType));
      made.set(key, name);
      carriers.push(name);
    }
    n.input[slot] = name;
  });
  for (const c of new Set(constants)) removeIfUnused(model, c);
  return carriers;
}

/** `scale` attribute (fused Attention ops): set it to the target; absent means 1/√head_size (current). */
function setScaleAttributes(nodes: NodeProto[], ratio: number, current: number): string[] {
  return nodes.map((n) => {
    const a = getAttr(n, 'scale');
    const now = a ? a.f : current;
    if (a) a.f = now * ratio;
    else n.attribute.push(attr('scale', { float: now * ratio }));
    return `${n.name || n.opType}.scale`;
  });
}
