/** Small graph helpers for the train-step builder: value shapes, dead-node pruning, opset/IR upgrade. */
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from 'onnx-buf';
import { create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { OperatorSetIdProtoSchema } from 'onnx-buf';
import { findShape } from '../shapes/index.js';

export type Dim = number | string;

/**
 * Shape of a value: the graph's inputs, outputs or value_info, else the shared shape inference (src/shapes);
 * unknown dims are named `d<i>`. Undefined when even the rank is unknown.
 */
export function findValueShape(graph: GraphProto, name: string): Dim[] | undefined {
  return findShape(graph, name)?.map((d, i) => d ?? `d${i}`);
}

export function valueInfoShape(vi: ValueInfoProto): Dim[] | undefined {
  const t = vi.type?.value;
  if (t?.case !== 'tensorType' || !t.value.shape) return undefined;
  return t.value.shape.dim.map((d, i) => {
    if (d.value.case === 'dimValue') return Number(d.value.value);
    if (d.value.case === 'dimParam') return d.value.value;
    return `d${i}`;
  });
}

export function valueInfoElemType(vi: ValueInfoProto): number | undefined {
  const t = vi.type?.value;
  return t?.case === 'tensorType' ? t.value.elemType : undefined;
}

/**
 * Keeps the nodes needed to compute `outputs` (reverse reachability, including names used inside
 * subgraphs) and the initializers they read. Order is preserved (topological in, topological out).
 */
export function pruneToOutputs(nodes: NodeProto[], initializers: TensorProto[], outputs: string[]): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const needed = new Set(outputs);
  const kept: NodeProto[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.output.some((o) => o && needed.has(o))) continue;
    kept.push(n);
    for (const name of nodeReads(n)) needed.add(name);
  }
  kept.reverse();
  return { nodes: kept, initializers: initializers.filter((t) => needed.has(t.name)) };
}

/** Every value name a node reads, including outer-scope names read inside its subgraphs. */
function nodeReads(n: NodeProto): string[] {
  const names = n.input.filter((x) => x);
  for (const a of n.attribute) {
    for (const g of a.g ? [a.g, ...a.graphs] : a.graphs) names.push(...subgraphReads(g));
  }
  return names;
}

function subgraphReads(g: GraphProto): string[] {
  const local = new Set([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  const reads: string[] = [];
  for (const n of g.node) {
    for (const name of nodeReads(n)) if (!local.has(name)) reads.push(name);
    n.output.forEach((o) => local.add(o));
  }
  return reads;
}

/** The IR version that the ONNX release introducing `opset` shipped with (onnx/onnx docs/Versioning.md). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 10) return 5;
  if (opset <= 12) return 7;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

/** Raises the ai.onnx opset import to at least `min` (and the IR version with it). Returns the new opset. */
export function ensureOpset(model: ModelProto, min: number): number {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  const current = entry ? Number(entry.version) : 0;
  if (current >= min) return current;
  if (entry) entry.version = BigInt(min);
  else model.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(min) }));
  const ir = irVersionForOpset(min);
  if (model.irVersion < BigInt(ir)) model.irVersion = BigInt(ir);
  return min;
}

/**
 * A copy of message `msg` with `changes` applied. onnx.proto is proto2: protobuf-es keeps unset fields'
 * defaults on the prototype, so a plain `{ ...msg }` loses them (`domain` reads undefined, not '').
 */
export function copyWith<Desc extends DescMessage>(schema: Desc, msg: MessageShape<Desc>, changes: Partial<MessageShape<Desc>> = {}): MessageShape<Desc> {
  return Object.assign(create(schema), msg, changes);
}
