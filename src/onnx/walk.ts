/** Traversal of every graph (main, subgraphs of If/Loop/Scan, functions' bodies) and every stored tensor. */
import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto } from 'onnx-buf';

/** Subgraphs held by a node's attributes (`g` and `graphs`). */
export function subgraphsOf(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.g) out.push(a.g);
    out.push(...a.graphs);
  }
  return out;
}

/** Visits `graph` and every nested subgraph, depth first; `depth` is 0 for the root. */
export function forEachGraph(graph: GraphProto, fn: (g: GraphProto, depth: number, owner?: NodeProto) => void, depth = 0, owner?: NodeProto): void {
  fn(graph, depth, owner);
  for (const n of graph.node) for (const g of subgraphsOf(n)) forEachGraph(g, fn, depth + 1, n);
}

function attributeTensors(a: AttributeProto): TensorProto[] {
  const out: TensorProto[] = [];
  if (a.t) out.push(a.t);
  out.push(...a.tensors);
  if (a.sparseTensor?.values) out.push(a.sparseTensor.values);
  if (a.sparseTensor?.indices) out.push(a.sparseTensor.indices);
  for (const s of a.sparseTensors) {
    if (s.values) out.push(s.values);
    if (s.indices) out.push(s.indices);
  }
  return out;
}

/** Every TensorProto stored in the model: initializers, sparse initializers, tensor attributes, in all graphs and functions. */
export function forEachTensor(model: ModelProto, fn: (t: TensorProto) => void): void {
  const visitNodes = (nodes: NodeProto[]) => {
    for (const n of nodes) for (const a of n.attribute) attributeTensors(a).forEach(fn);
  };
  const visitGraph = (g: GraphProto) => {
    g.initializer.forEach(fn);
    for (const s of g.sparseInitializer) {
      if (s.values) fn(s.values);
      if (s.indices) fn(s.indices);
    }
    visitNodes(g.node);
  };
  if (model.graph) forEachGraph(model.graph, visitGraph);
  for (const f of model.functions) {
    visitNodes(f.node);
    for (const n of f.node) for (const g of subgraphsOf(n)) forEachGraph(g, visitGraph);
  }
  for (const ti of model.trainingInfo) {
    for (const g of [ti.initialization, ti.algorithm]) if (g) forEachGraph(g, visitGraph);
  }
}
