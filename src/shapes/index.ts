/**
 * The shape inference's entry points (one module for analysis, train and the runners):
 *
 * - `inferShapes(graph)` → `ShapeTable`: per value `shape(name)` (dims: number | symbol | null), `rank`,
 *   `elemType`, `ints` (values of small int tensors, folded shape arithmetic), `constInts`.
 * - `shapesOf(graph)`: the same table, computed once per graph object (recomputed when its node list changes).
 * - `findShape(graph, name)` / `getShape(graph, name, what)`: declared value_info first, else inferred.
 * - `findElemType(graph, name)`: declared element type, else inferred.
 */
import type { GraphProto } from 'onnx-buf';
import { ExitCode, UserInputError } from '../errors.js';
import { inferShapes, ShapeTable } from './infer.js';
import { valueInfoFacts } from './table.js';
import type { Shape } from './dims.js';

export { inferShapes, ShapeTable, type ValueFacts } from './infer.js';
export { broadcastShapes, matmulShape, normAxis, product, sameDim, staticDim, sumDims, type Dim, type Shape } from './dims.js';

const cache = new WeakMap<GraphProto, { nodes: unknown; count: number; table: ShapeTable }>();

export function shapesOf(graph: GraphProto): ShapeTable {
  const hit = cache.get(graph);
  if (hit && hit.nodes === graph.node && hit.count === graph.node.length) return hit.table;
  const table = inferShapes(graph);
  cache.set(graph, { nodes: graph.node, count: graph.node.length, table });
  return table;
}

function declared(graph: GraphProto, name: string) {
  const vi = graph.input.find((v) => v.name === name) ?? graph.output.find((v) => v.name === name) ?? graph.valueInfo.find((v) => v.name === name);
  return vi ? valueInfoFacts(vi) : undefined;
}

/** Shape of a value: its value_info when that has a shape, else the inferred one (undefined when unknown). */
export function findShape(graph: GraphProto, name: string): Shape | undefined {
  const d = declared(graph, name);
  if (d?.shape && d.shape.every((x) => x !== null)) return d.shape;
  return shapesOf(graph).shape(name) ?? d?.shape;
}

export function getShape(graph: GraphProto, name: string, what: string): Shape {
  const s = findShape(graph, name);
  if (!s) throw new UserInputError(`${what} '${name}': its shape cannot be inferred from the graph; please report the model`, ExitCode.unsupported);
  return s;
}

export function findElemType(graph: GraphProto, name: string): number | undefined {
  return declared(graph, name)?.elemType ?? shapesOf(graph).elemType(name);
}
