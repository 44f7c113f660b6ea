/**
 * Non-parameters: tensors the model reads but training must not touch. Integer/bool tensors (indices,
 * shapes, masks), scalars (eps, GELU constants, scale constants), causal-mask buffers (GPT-2's `attn.bias`,
 * sliced and cast to bool for a Where; or a float additive mask on the attention logits), rotary tables
 * (multiplied into Q or K before QKᵀ), and constants applied to a raw graph input (feature normalisation).
 */
import { VIEW_OPS, type AnalysisGraph } from './graph.js';
import type { FoundSite } from './attention.js';
import type { ParamInfo } from './types.js';
import { feedsCosSin, isFloatTensor } from './weights.js';
import { dataTypeName } from '../onnx/dtype.js';

const MASK_NAME = /(^|[._/])(attn\.(masked_)?bias|causal_mask|attention_mask|mask)([._/]|$)|bias_resize$/i;
const ROTARY_NAME = /inv_freq|rotary|rope|(^|[._/])(cos|sin)(_cached|_table)?([._/]|$)/i;
const VIEWISH = new Set(['Slice', 'Cast', 'Reshape', 'Expand', 'Unsqueeze', 'Squeeze', 'Identity', 'Transpose', 'Gather']);

export function classifyBuffer(g: AnalysisGraph, p: ParamInfo, sites: FoundSite[]): string | undefined {
  if (g.uses(p.name).length === 0) return 'not read by any node';
  if (p.shape.length >= 2) {
    const mask = maskEvidence(g, p.name, sites);
    if (mask) return mask;
  }
  if (!isFloatTensor(p.dataType)) return `${dataTypeName(p.dataType)} tensor (indices, shapes or masks): not a trainable parameter`;
  if (p.elements <= 1) return `scalar constant read by ${p.consumers.slice(0, 3).join(', ')}`;
  const rotary = rotaryEvidence(g, p.name, sites);
  if (rotary) return rotary;
  const trig = g.directUses(p.name).find((u) => feedsCosSin(g, u.node));
  if (trig) return `rotary frequencies: ${trig.node.opType} ${g.label(trig.node)} feeds Cos/Sin`;
  if (ROTARY_NAME.test(p.name)) return `rotary-embedding table (by name '${p.name}')`;
  if (MASK_NAME.test(p.name) && p.shape.length >= 3) return `attention-mask buffer (by name '${p.name}', rank ${p.shape.length})`;
  const input = appliedToGraphInput(g, p.name);
  if (input) return input;
  return undefined;
}

/** Used (through slices/casts) as a Where condition or cast to bool, or added onto attention logits. */
function maskEvidence(g: AnalysisGraph, name: string, sites: FoundSite[]): string | undefined {
  const onPath = new Set(sites.flatMap((s) => s.logitPath));
  const stack: { value: string; depth: number }[] = [{ value: name, depth: 0 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    for (const u of g.directUses(value)) {
      const n = u.node;
      if (onPath.has(n) && (n.opType === 'Add' || n.opType === 'Where' || n.opType === 'Sub')) {
        return `attention mask: read by ${n.opType} ${g.label(n)} on the attention logits (before Softmax)`;
      }
      if (n.opType === 'Where' && u.index === 0) return `causal-mask buffer: condition of Where ${g.label(n)}`;
      if (n.opType === 'Cast' && Number(n.attribute.find((a) => a.name === 'to')?.i ?? 0n) === 9) {
        return `causal-mask buffer: cast to bool by ${g.label(n)}`;
      }
      if (VIEWISH.has(n.opType) && u.index === 0 && depth < 4) stack.push({ value: n.output[0]!, depth: depth + 1 });
    }
  }
  return undefined;
}

/** Multiplied into Q or K (a rotary cos/sin table) before an attention site's QKᵀ. */
function rotaryEvidence(g: AnalysisGraph, name: string, sites: FoundSite[]): string | undefined {
  for (const { use } of g.viewUses(name)) {
    if (use.node.opType !== 'Mul' || use.via) continue;
    const out = use.node.output[0]!;
    const site = sites.find((s) => s.qk && s.qk.input.some((i) => g.dependsOn(i, out, 120)));
    if (site) return `rotary table: Mul ${g.label(use.node)} into the Q/K path of QKᵀ ${g.label(site.qk!)}`;
  }
  return undefined;
}

/** Sub/Mul/Div/Add applied to a graph input, or to an elementwise chain of one (input normalisation statistics). */
function appliedToGraphInput(g: AnalysisGraph, name: string): string | undefined {
  const inputs = new Set(g.model.graph!.input.map((v) => v.name).filter((v) => !g.isInitializer(v)));
  const rootInput = (value: string): string | undefined => {
    let v = value;
    for (let hops = 0; hops < 4; hops++) {
      if (inputs.has(v)) return v;
      const p = g.producer(v);
      if (!p || !(ELEMENTWISE.has(p.opType) || VIEW_OPS.has(p.opType))) return undefined;
      const dyn = p.input.filter((i) => i && g.dynamic.has(i));
      if (dyn.length !== 1) return undefined;
      v = dyn[0]!;
    }
    return undefined;
  };
  for (const u of g.directUses(name)) {
    const other = u.node.input[1 - u.index];
    const input = ELEMENTWISE.has(u.node.opType) && other ? rootInput(other) : undefined;
    if (input) return `constant applied by ${u.node.opType} ${g.label(u.node)} to graph input '${input}' (input normalisation)`;
  }
  return undefined;
}

const ELEMENTWISE = new Set(['Sub', 'Mul', 'Div', 'Add']);
