/**
 * The analysis view of a model: the use-def index, a topological order of the main graph, which values
 * carry data derived from the graph inputs ("dynamic"), and small look-ups shared by the role, attention
 * and layer detectors (node labels, scalar constants, pass-through walks).
 */
import { topologicalOrder as sortNodes } from '../onnx/topo.js';
import type { ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { GraphIndex, type Use } from '../onnx/ir.js';
import { dimsOf, elementCount, tensorToFloat32 } from '../onnx/tensor.js';
import { DataType } from '../onnx/dtype.js';
import { forEachGraph, subgraphsOf } from '../onnx/walk.js';
import { inferShapes, type ShapeTable } from '../shapes/infer.js';
import { staticDim } from '../shapes/dims.js';

/** Dims of a value as the analysis reads them: symbolic and unknown dims are undefined. */
export type Dims = (number | undefined)[];

/** Ops that only move or re-type data: a weight reached through them is still that weight. */
export const VIEW_OPS = new Set(['Transpose', 'Cast', 'Identity', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'CastLike']);

export class AnalysisGraph {
  readonly index: GraphIndex;
  /** Position of every main-graph node in a topological order (the file's order need not be one). */
  readonly position = new Map<NodeProto, number>();
  readonly order: NodeProto[];
  /** Values whose content depends on graph-input data (not only on constants or on input shapes). */
  readonly dynamic = new Set<string>();
  private readonly labels = new Map<NodeProto, string>();
  /** Producers of values defined inside If/Loop/Scan bodies (the GraphIndex holds the main graph's). */
  private readonly bodyProducers = new Map<string, NodeProto>();
  private shapeTable: ShapeTable | undefined;

  constructor(readonly model: ModelProto, readonly baseDir: string) {
    this.index = new GraphIndex(model);
    this.order = topologicalOrder(this.index);
    this.order.forEach((n, i) => this.position.set(n, i));
    forEachGraph(model.graph!, (g, depth) => g.node.forEach((n, i) => {
      this.labels.set(n, n.name || `${n.opType}#${i}`);
      if (depth > 0) n.output.forEach((o) => o && !this.bodyProducers.has(o) && this.bodyProducers.set(o, n));
    }));
    this.markDynamic();
  }

  /** The node's name, or `Op#index` (index in its own graph) for unnamed nodes. */
  label(n: NodeProto): string {
    return this.labels.get(n) ?? (n.name || n.opType);
  }

  isInitializer(name: string): boolean {
    return this.index.initializers.has(name);
  }

  producer(value: string): NodeProto | undefined {
    return this.index.findProducer(value)?.node ?? this.bodyProducers.get(value);
  }

  uses(value: string): Use[] {
    return this.index.usesOf(value);
  }

  /** Direct main-graph consumers (outer-scope uses excluded). */
  directUses(value: string): Use[] {
    return this.uses(value).filter((u) => !u.via);
  }

  /** The shared shape inference over the main graph (src/shapes), computed on first use. */
  get shapes(): ShapeTable {
    this.shapeTable ??= inferShapes(this.model.graph!);
    return this.shapeTable;
  }

  /** Static dims of a value (value_info, initializers, or the shape inference); symbolic and unknown dims are undefined. */
  dims(value: string): Dims | undefined {
    return this.shapes.shape(value)?.map(staticDim);
  }

  /** A constant float value when `value` is an initializer or Constant output with exactly one element. */
  scalarConstant(value: string): number | undefined {
    const t = this.index.findConstant(value);
    if (!t || elementCount(dimsOf(t)) !== 1) return undefined;
    if (t.dataType === DataType.STRING) return undefined;
    try {
      return tensorToFloat32AsNumber(t, this.baseDir);
    } catch {
      return undefined;
    }
  }

  /** Integer values of a small constant (shape vectors); undefined when not a constant. */
  intConstant(value: string): number[] | undefined {
    const t = this.index.findConstant(value);
    if (!t || elementCount(dimsOf(t)) > 64) return undefined;
    try {
      return Array.from(tensorToFloat32(t, this.baseDir));
    } catch {
      return undefined;
    }
  }

  /** Follows `value` back through view ops (Transpose, Cast, Reshape…) to the value they started from. */
  viewSource(value: string): { value: string; through: NodeProto[] } {
    const through: NodeProto[] = [];
    let v = value;
    for (let p = this.producer(v); p && VIEW_OPS.has(p.opType) && p.input[0]; p = this.producer(v)) {
      through.push(p);
      v = p.input[0];
    }
    return { value: v, through };
  }

  /** Like viewSource, also through Expand (a broadcast of a learned token). */
  viewSourceOrExpand(value: string): string {
    let v = value;
    for (let p = this.producer(v); p && (VIEW_OPS.has(p.opType) || p.opType === 'Expand' || p.opType === 'Tile') && p.input[0]; p = this.producer(v)) v = p.input[0];
    return v;
  }

  /** The values `value` flows into through view ops only, with the first non-view uses. */
  viewUses(value: string): { use: Use; through: NodeProto[] }[] {
    const out: { use: Use; through: NodeProto[] }[] = [];
    const visit = (v: string, through: NodeProto[], depth: number) => {
      for (const u of this.uses(v)) {
        if (VIEW_OPS.has(u.node.opType) && u.index === 0 && depth < 6 && !u.via) {
          visit(u.node.output[0], [...through, u.node], depth + 1);
        } else out.push({ use: u, through });
      }
    };
    visit(value, [], 0);
    return out;
  }

  /** True when `ancestor` is reached walking back from `value` (bounded by topological position). */
  dependsOn(value: string, ancestor: string, limit = 400): boolean {
    const target = this.producer(ancestor);
    const floor = target ? (this.position.get(target) ?? -1) : -1;
    const seen = new Set<string>();
    const stack = [value];
    while (stack.length > 0 && seen.size < limit) {
      const v = stack.pop()!;
      if (v === ancestor) return true;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = this.producer(v);
      if (!p || (this.position.get(p) ?? -1) < floor) continue;
      for (const i of p.input) if (i && this.dynamic.has(i)) stack.push(i);
    }
    return false;
  }

  private markDynamic(): void {
    const g = this.model.graph!;
    for (const v of g.input) if (!this.isInitializer(v.name)) this.dynamic.add(v.name);
    const visit = (nodes: NodeProto[]) => {
      for (const n of nodes) {
        const subs = subgraphsOf(n);
        for (const s of subs) for (const v of s.input) this.dynamic.add(v.name);
        subs.forEach((s) => visit(sortNodes(s.node)));
        if (n.opType === 'Shape' || n.opType === 'Size') continue;
        const outerDynamic = subs.length > 0 && this.bodyReadsDynamic(n);
        if (outerDynamic || n.input.some((i) => i && this.dynamic.has(i))) n.output.forEach((o) => o && this.dynamic.add(o));
      }
    };
    visit(this.order);
  }

  private bodyReadsDynamic(n: NodeProto): boolean {
    let found = false;
    for (const s of subgraphsOf(n)) forEachGraph(s, (g) => {
      for (const m of g.node) if (m.output.some((o) => this.dynamic.has(o))) found = true;
    });
    return found;
  }
}

function tensorToFloat32AsNumber(t: TensorProto, baseDir: string): number {
  return tensorToFloat32(t, baseDir)[0]!;
}

/** The main graph's nodes in topological order (src/onnx/topo.ts), as a copy. */
function topologicalOrder(index: GraphIndex): NodeProto[] {
  return [...sortNodes(index.model.graph!.node)];
}
