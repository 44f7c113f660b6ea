/**
 * A light IR over the decoded ModelProto: use-def index (producers and consumers of every value name,
 * including outer-scope uses from If/Loop/Scan bodies), initializer look-up, Constant nodes as weights,
 * and a name authority for new unique names. The ModelProto stays the source of truth.
 */
import type { GraphProto, ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { InvariantError } from '../errors.js';
import { makeFloatTensor, makeInt64Tensor } from './tensor.js';
import { forEachGraph, subgraphsOf } from './walk.js';

export interface Use {
  node: NodeProto;
  /** Input slot of `node` that reads the value. For an outer-scope use, the top-level node that owns the subgraph. */
  index: number;
  graph: GraphProto;
  /** The main-graph node whose subgraph holds this use (undefined for a direct use). */
  via?: NodeProto;
}

export interface Producer {
  node: NodeProto;
  index: number;
  graph: GraphProto;
}

export class GraphIndex {
  readonly initializers = new Map<string, TensorProto>();
  readonly producers = new Map<string, Producer>();
  readonly consumers = new Map<string, Use[]>();
  readonly graphInputs = new Set<string>();
  readonly graphOutputs = new Set<string>();

  constructor(readonly model: ModelProto) {
    const g = model.graph;
    if (!g) throw new InvariantError('model has no graph');
    for (const t of g.initializer) this.initializers.set(t.name, t);
    for (const v of g.input) this.graphInputs.add(v.name);
    for (const v of g.output) this.graphOutputs.add(v.name);
    for (const node of g.node) {
      node.output.forEach((o, index) => {
        if (o) this.producers.set(o, { node, index, graph: g });
      });
      node.input.forEach((i, index) => {
        if (i) this.addUse(i, { node, index, graph: g });
      });
      for (const sub of subgraphsOf(node)) this.indexOuterScope(sub, node);
    }
  }

  private addUse(name: string, use: Use): void {
    const list = this.consumers.get(name);
    if (list) list.push(use);
    else this.consumers.set(name, [use]);
  }

  /** Records uses inside `sub` (and deeper) of names that `sub` does not define itself. */
  private indexOuterScope(sub: GraphProto, owner: NodeProto): void {
    const walk = (g: GraphProto, inherited: Set<string>) => {
      const local = new Set(inherited);
      g.input.forEach((v) => local.add(v.name));
      g.initializer.forEach((t) => local.add(t.name));
      for (const n of g.node) {
        n.input.forEach((i, index) => {
          if (i && !local.has(i)) this.addUse(i, { node: n, index, graph: g, via: owner });
        });
        for (const s of subgraphsOf(n)) walk(s, local);
        n.output.forEach((o) => local.add(o));
      }
    };
    walk(sub, new Set());
  }

  findInitializer(name: string): TensorProto | undefined {
    return this.initializers.get(name);
  }

  getInitializer(name: string): TensorProto {
    const t = this.initializers.get(name);
    if (!t) throw new InvariantError(`no initializer named '${name}'`);
    return t;
  }

  findProducer(name: string): Producer | undefined {
    return this.producers.get(name);
  }

  usesOf(name: string): Use[] {
    return this.consumers.get(name) ?? [];
  }

  /** The tensor held by a value: an initializer, or the `value` of the Constant node producing it. */
  findConstant(name: string): TensorProto | undefined {
    const init = this.initializers.get(name);
    if (init) return init;
    const p = this.producers.get(name);
    if (p && p.node.opType === 'Constant' && (p.node.domain === '' || p.node.domain === 'ai.onnx')) {
      return constantNodeTensor(p.node);
    }
    return undefined;
  }
}

/**
 * The tensor a Constant node holds: its `value`, or one built from `value_float(s)` / `value_int(s)`
 * (opset ≥ 12 spellings; ONNX Operators.md, Constant). Sparse and string forms give undefined.
 */
export function constantNodeTensor(node: NodeProto): TensorProto | undefined {
  const a = node.attribute.find((x) => x.name.startsWith('value'));
  const out = node.output[0] ?? '';
  switch (a?.name) {
    case 'value': return a.t;
    case 'value_float': return makeFloatTensor(out, [], Float32Array.of(a.f));
    case 'value_floats': return makeFloatTensor(out, [a.floats.length], Float32Array.from(a.floats));
    case 'value_int': return makeInt64Tensor(out, [], [Number(a.i)]);
    case 'value_ints': return makeInt64Tensor(out, [a.ints.length], a.ints.map(Number));
    default: return undefined;
  }
}

/** Hands out names not used anywhere in the model (values, nodes, initializers, in every graph). */
export class NameAuthority {
  private readonly taken = new Set<string>();

  constructor(model: ModelProto) {
    if (model.graph) {
      forEachGraph(model.graph, (g) => {
        g.input.forEach((v) => this.taken.add(v.name));
        g.output.forEach((v) => this.taken.add(v.name));
        g.initializer.forEach((t) => this.taken.add(t.name));
        g.sparseInitializer.forEach((s) => s.values && this.taken.add(s.values.name));
        g.valueInfo.forEach((v) => this.taken.add(v.name));
        for (const n of g.node) {
          n.input.forEach((i) => this.taken.add(i));
          n.output.forEach((o) => this.taken.add(o));
          if (n.name) this.taken.add(n.name);
        }
      });
    }
  }

  /** `base` itself when free, else `base_1`, `base_2`, … (deterministic). */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  isTaken(name: string): boolean {
    return this.taken.has(name);
  }
}

export function opsetVersion(model: ModelProto, domain = ''): number | undefined {
  const o = model.opsetImport.find((x) => x.domain === domain || (domain === '' && x.domain === 'ai.onnx'));
  return o === undefined ? undefined : Number(o.version);
}
