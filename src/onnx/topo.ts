/**
 * Topological order of a graph's nodes. ONNX requires the node list to be sorted (onnx.proto: "nodes
 * ... MUST be topologically sorted"), but onnxruntime sorts on load and accepts files that are not, and
 * some exporters write them (onnxruntime's own gpt2_one_layer test model reads `query.1` before the
 * node that makes it). Every pass that walks nodes in order (shape inference, autodiff, pruning) sorts
 * first. Outer-scope names read inside If/Loop/Scan bodies count as reads of the owning node.
 */
import type { NodeProto } from 'onnx-buf';
import { forEachGraph, subgraphsOf } from './walk.js';

/** Every value a node reads, including names its subgraphs read from outer scopes (over-approximated). */
function reads(n: NodeProto): string[] {
  const out = n.input.filter((v) => v);
  for (const s of subgraphsOf(n)) forEachGraph(s, (g) => g.node.forEach((m) => out.push(...m.input.filter((v) => v))));
  return out;
}

export function isTopologicallySorted(nodes: readonly NodeProto[]): boolean {
  const producedAt = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => o && producedAt.set(o, i)));
  return nodes.every((n, i) => reads(n).every((v) => (producedAt.get(v) ?? -1) <= i));
}

/**
 * Kahn's algorithm; among ready nodes the earliest in file order goes first, so a sorted list comes back
 * as it was (same array). Nodes on a cycle (invalid ONNX) keep their file order at the end.
 */
export function topologicalOrder(nodes: NodeProto[]): NodeProto[] {
  if (isTopologicallySorted(nodes)) return nodes;
  const producedBy = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => o && producedBy.set(o, i)));
  const indegree = nodes.map(() => 0);
  const dependents: number[][] = nodes.map(() => []);
  nodes.forEach((n, i) => new Set(reads(n).map((v) => producedBy.get(v))).forEach((j) => {
    if (j === undefined || j === i) return;
    dependents[j]!.push(i);
    indegree[i]!++;
  }));
  const ready = indegree.flatMap((d, i) => (d === 0 ? [i] : []));
  const out: NodeProto[] = [];
  const done = new Set<number>();
  while (ready.length > 0) {
    ready.sort((a, b) => b - a);
    const i = ready.pop()!;
    out.push(nodes[i]!);
    done.add(i);
    for (const j of dependents[i]!) if (--indegree[j]! === 0) ready.push(j);
  }
  nodes.forEach((n, i) => !done.has(i) && out.push(n));
  return out;
}
