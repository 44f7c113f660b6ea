/** Small graph edits shared by the passes: redirect uses of a value, insert nodes, place new initializers. */
import type { GraphProto, ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { GraphIndex } from '../onnx/ir.js';

/**
 * Points every use of `from` (direct, and outer-scope reads inside If/Loop/Scan bodies) at `to`, except
 * uses by the nodes in `keep`. Returns the number of rewired inputs.
 */
export function redirectUses(index: GraphIndex, from: string, to: string, keep: ReadonlySet<NodeProto> = new Set()): number {
  let n = 0;
  for (const use of index.usesOf(from)) {
    if (keep.has(use.node)) continue;
    if (use.node.input[use.index] === from) {
      use.node.input[use.index] = to;
      n++;
    }
  }
  return n;
}

/** Inserts `nodes` right after the node producing `value`, or at the front when it has no producer. */
export function insertAfterProducer(graph: GraphProto, value: string, nodes: NodeProto[]): void {
  const at = graph.node.findIndex((n) => n.output.includes(value));
  graph.node.splice(at + 1, 0, ...nodes);
}

export function addInitializer(graph: GraphProto, t: TensorProto): void {
  graph.initializer.push(t);
}

/** Inserts `t` right after the initializer named `after` (at the end when there is none). */
export function addInitializerAfter(graph: GraphProto, after: string, t: TensorProto): void {
  const i = graph.initializer.findIndex((x) => x.name === after);
  if (i < 0) graph.initializer.push(t);
  else graph.initializer.splice(i + 1, 0, t);
}

/** Removes a Constant node or initializer named `name` when nothing reads it any more. */
export function removeIfUnused(model: ModelProto, name: string): boolean {
  const g = model.graph!;
  const index = new GraphIndex(model);
  if (index.usesOf(name).length > 0 || index.graphOutputs.has(name)) return false;
  const init = g.initializer.findIndex((t) => t.name === name);
  if (init >= 0 && !index.graphInputs.has(name)) {
    g.initializer.splice(init, 1);
    return true;
  }
  const producer = g.node.findIndex((n) => n.opType === 'Constant' && n.output.length === 1 && n.output[0] === name);
  if (producer >= 0) {
    g.node.splice(producer, 1);
    return true;
  }
  return false;
}
