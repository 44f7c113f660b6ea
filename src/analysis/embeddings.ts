/**
 * Embedding tables: the data input of a Gather whose output feeds the network. A table indexed by token
 * ids is a token embedding; one indexed by positions (Range/constant/shape-derived indices, a `position_ids`
 * input) or named like one (`wpe`, `position_embeddings`) is a position embedding. Exporters that fold the
 * position lookup into a constant (torch dynamo: `embedding_1[1, T, d]` added to the token embedding) leave
 * a float constant added to the token embedding's output: that is the position embedding too.
 */
import type { NodeProto } from 'onnx-buf';
import { dimsOf } from '../onnx/tensor.js';
import type { AnalysisGraph } from './graph.js';
import { isFloatTensor } from './weights.js';

export interface EmbeddingUse {
  weight: string;
  position: boolean;
  /** The value right after the lookup (where α_input multiplies). */
  value: string;
  node?: NodeProto;
  why: string;
}

const POSITION_NAME = /(^|[._/])(wpe|pos|position|positions|pos_emb|pos_embed|position_embeddings?|positional_embeddings?|embed_positions)([._/]|$)/i;
const POSITION_INPUT = /pos/i;
const TOKEN_TYPE_NAME = /token_type|segment|type_vocab/i;

export function findEmbeddings(g: AnalysisGraph): EmbeddingUse[] {
  const out: EmbeddingUse[] = [];
  for (const n of g.order) {
    if (n.opType !== 'Gather' || !n.input[0] || !n.input[1]) continue;
    const data = g.viewSource(n.input[0]).value;
    const t = g.index.findInitializer(data);
    if (!t || !isFloatTensor(t.dataType) || t.dims.length < 2) continue;
    if (Number(n.attribute.find((a) => a.name === 'axis')?.i ?? 0n) !== 0) continue;
    const idx = n.input[1];
    const position = positionEvidence(g, data, idx);
    const gather = `Gather ${g.label(n)}`;
    out.push({
      weight: data, node: n, value: n.output[0]!, position: position !== undefined,
      why: position ? `data of ${gather}, indexed by ${position}` : `data of ${gather}, indexed by input data (${describeIndex(g, idx)})`,
    });
  }
  return out;
}

/** Why the lookup reads positions, or undefined for a token lookup. */
function positionEvidence(g: AnalysisGraph, table: string, index: string): string | undefined {
  if (TOKEN_TYPE_NAME.test(table)) return undefined; // token types may be all-zero constants, still not positions
  if (!g.dynamic.has(index)) return `positions computed from constants/shapes (${describeIndex(g, index)}), not from input data`;
  const input = rootInputs(g, index).find((i) => POSITION_INPUT.test(i));
  if (input) return `graph input '${input}'`;
  if (POSITION_NAME.test(table)) return `its name '${table}' (a position table)`;
  return undefined;
}

function describeIndex(g: AnalysisGraph, index: string): string {
  const roots = rootInputs(g, index);
  if (roots.length > 0) return `from graph input ${roots.map((r) => `'${r}'`).join(', ')}`;
  const p = g.producer(index);
  return p ? `${p.opType} ${g.label(p)}` : `'${index}'`;
}

/** Graph inputs a value is computed from (data dependence only, bounded walk). */
function rootInputs(g: AnalysisGraph, value: string): string[] {
  const inputs = new Set(g.model.graph!.input.map((v) => v.name));
  const found = new Set<string>();
  const seen = new Set<string>();
  const stack = [value];
  while (stack.length > 0 && seen.size < 64) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (inputs.has(v) && !g.isInitializer(v)) found.add(v);
    const p = g.producer(v);
    if (p) for (const i of p.input) if (i && g.dynamic.has(i)) stack.push(i);
  }
  return [...found].sort();
}

/** Ops between an embedding output and the Add of a position table / the Concat of a class token. */
const SEQUENCE_OPS = new Set(['Reshape', 'Flatten', 'Transpose', 'Cast', 'Identity', 'Squeeze', 'Unsqueeze', 'Concat', 'Add']);
const CLASS_TOKEN_NAME = /(^|[._/])(cls|class|dist|distillation|register|reg)_?tokens?([._/]|$)/i;

/**
 * Learned tensors that join the embeddings without a lookup: a float constant [.., T, d] added to an
 * embedding's output (a position table — torch dynamo folds `wpe[arange(T)]` into such a constant; ViT adds
 * its `position_embeddings` after the patch Conv), and a class token concatenated to the sequence.
 * `width` gives each embedding's output width.
 */
export function joinedEmbeddings(g: AnalysisGraph, lookups: EmbeddingUse[], width: (e: EmbeddingUse) => number | undefined): EmbeddingUse[] {
  const out: EmbeddingUse[] = [];
  const known = new Set(lookups.map((x) => x.weight));
  for (const e of lookups.filter((x) => !x.position && !g.isInitializer(x.value))) {
    const d = width(e);
    const seen = new Set<string>();
    const stack: { v: string; depth: number }[] = [{ v: e.value, depth: 0 }];
    while (stack.length > 0) {
      const { v, depth } = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      for (const u of g.directUses(v)) {
        const n = u.node;
        if (n.opType === 'Add' || n.opType === 'Concat') {
          for (const other of n.input) {
            if (other === v || known.has(other)) continue;
            const src = g.viewSourceOrExpand(other);
            const t = g.index.findInitializer(src);
            if (!t || !isFloatTensor(t.dataType) || t.dims.length < 2 || Number(t.dims.at(-1)) !== d || known.has(src)) continue;
            known.add(src);
            if (n.opType === 'Add') {
              const why = e.node?.opType === 'Gather'
                ? `constant added to the token embedding by Add ${g.label(n)} (a position lookup folded at export)`
                : `constant [.., T, d] added to the embedded sequence by Add ${g.label(n)} (a position table)`;
              out.push({ weight: src, value: other, position: true, node: n, why });
            } else if (CLASS_TOKEN_NAME.test(src) || Number(t.dims.at(-2)) <= 16) {
              out.push({ weight: src, value: other, position: false, node: n, why: `learned token concatenated to the embedded sequence by Concat ${g.label(n)}` });
            }
          }
        }
        if (depth < 4 && SEQUENCE_OPS.has(n.opType)) stack.push({ v: n.output[0]!, depth: depth + 1 });
      }
    }
  }
  return out;
}
