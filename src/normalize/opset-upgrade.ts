/**
 * Raises an ai.onnx graph of opset 6–12 to opset 13, the lowest opset the backward pass emits (axes and
 * split sizes as inputs). Only the operators whose signature or meaning changed on the way are rewritten,
 * one rule each (opset-rules.ts); every other op keeps its semantics under the new opset. A node whose old
 * form has no opset-13 equivalent is refused, naming the node and the attribute. Subgraphs are upgraded too.
 */
import {
  AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, OperatorSetIdProtoSchema,
  type GraphProto, type ModelProto, type NodeProto, type TensorProto,
} from 'onnx-buf';
import { ExitCode, UserInputError } from '../errors.js';
import { opsetVersion, type NameAuthority } from '../onnx/ir.js';
import { copyWith, ensureOpset } from '../train/graph-util.js';
import { elemTypeLookup, findUpgradeRule, type UpgradeContext } from './opset-rules.js';

export const TRAIN_OPSET = 13;
/** Opset 6 has no legacy attributes left on most ops (consumed_inputs went at 6); older graphs are refused. */
export const OLDEST_UPGRADED_OPSET = 6;

export interface OpsetUpgrade {
  model: ModelProto;
  from: number;
  /** One line per rewritten node kind, e.g. "Unsqueeze ×13: axes attribute → input (opset/unsqueeze-axes)". */
  changes: string[];
}

/** The model itself when its opset is already ≥ 13, else an upgraded copy (tensors shared, not copied). */
export function upgradeToOpset13(model: ModelProto, names: NameAuthority): OpsetUpgrade {
  const from = opsetVersion(model) ?? 0;
  if (from >= TRAIN_OPSET) return { model, from, changes: [] };
  if (from < OLDEST_UPGRADED_OPSET) {
    throw new UserInputError(`the model uses ai.onnx opset ${from}; training needs opset ${TRAIN_OPSET} and opsets ${OLDEST_UPGRADED_OPSET}–12 are upgraded automatically; re-export the model with opset ≥ ${OLDEST_UPGRADED_OPSET}`, ExitCode.unsupported);
  }
  const counts = new Map<string, { k: number; doc: string }>();
  const constants: TensorProto[] = [];
  const upgradeGraph = (g: GraphProto): GraphProto => {
    const ctx: UpgradeContext = { graph: g, names, constants, elemType: elemTypeLookup(g) };
    const nodes: NodeProto[] = [];
    for (const n of g.node) {
      const withSubs = n.attribute.some((a) => a.g || a.graphs.length)
        ? copyWith(NodeProtoSchema, n, { attribute: n.attribute.map((a) => copyWith(AttributeProtoSchema, a, { g: a.g ? upgradeGraph(a.g) : a.g, graphs: a.graphs.map(upgradeGraph) })) })
        : n;
      const rule = findUpgradeRule(withSubs, from);
      if (!rule) { nodes.push(withSubs); continue; }
      const m = rule.match(withSubs, ctx);
      if (!m.ok) {
        throw new UserInputError(`node '${n.name || n.output[0]}' (${n.opType}, opset ${from}): ${m.reason}; cannot upgrade it to opset ${TRAIN_OPSET} for training`, ExitCode.unsupported);
      }
      const rewritten = rule.rewrite(withSubs, ctx);
      if (rewritten.length !== 1 || rewritten[0] !== withSubs) {
        const c = counts.get(n.opType) ?? { k: 0, doc: `${rule.doc.replace(/^[A-Za-z]+: /, '')} (${rule.id})` };
        counts.set(n.opType, { ...c, k: c.k + 1 });
      }
      nodes.push(...rewritten);
    }
    return copyWith(GraphProtoSchema, g, { node: nodes });
  };
  const graph = upgradeGraph(model.graph!);
  graph.initializer = [...graph.initializer, ...constants];
  const out = copyWith(ModelProtoSchema, model, { graph, opsetImport: model.opsetImport.map((o) => copyWith(OperatorSetIdProtoSchema, o)) });
  ensureOpset(out, TRAIN_OPSET);
  const changes = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([op, c]) => `${op} ×${c.k}: ${c.doc}`);
  return { model: out, from, changes };
}
