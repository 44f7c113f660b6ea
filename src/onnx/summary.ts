/**
 * The `inspect` data model: what a model holds, as plain JSON-ready data (numbers, strings, arrays in a
 * fixed order), so the text view and `--json` show the same facts and reports diff cleanly.
 * Pure: reads only the decoded model (external data is summarised from its references, see
 * `externalDataSummary` in external.ts for the file checks).
 */
import type { GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto } from 'onnx-buf';
import { dataTypeName, DataType } from './dtype.js';
import { isExternal, externalInfo } from './external.js';
import { constantNodeTensor } from './ir.js';
import { dimsOf, elementCount, tensorDataBytes } from './tensor.js';
import { forEachGraph, forEachTensor, subgraphsOf } from './walk.js';

/** A dimension: a number, a symbolic name, or null when the model leaves it unknown. */
export type Dim = number | string | null;

export interface ValueSummary {
  name: string;
  /** `float32`, `int64`, …; `seq(float32)`, `optional(…)`, `map(int64,float32)`; `?` when untyped. */
  type: string;
  /** null when the rank is unknown. */
  shape: Dim[] | null;
}

export interface TensorTally {
  count: number;
  parameters: number;
  bytes: number;
}

export interface DtypeTally extends TensorTally {
  dtype: string;
}

export interface ModelSummary {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: { name: string; version: string };
  modelDomain: string;
  modelVersion: number;
  graphName: string;
  /** Nodes of the main graph, and of every graph (main + If/Loop/Scan bodies, nested). */
  nodes: { main: number; total: number };
  /** Op histogram over all graphs (not function bodies): count desc, then name. Non-default domains as `domain::Op`. */
  ops: { op: string; count: number }[];
  initializers: TensorTally & { byDtype: DtypeTally[] };
  sparseInitializers: number;
  /** Constant nodes holding a numeric tensor (`value`, `value_float(s)`, `value_int(s)`): weights stored as node attributes. */
  constants: TensorTally;
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  /** Graph inputs that are also initializers (IR < 4 exporters list them): counted, not listed. */
  initializerInputs: number;
  metadataProps: { key: string; value: string }[];
  functions: { count: number; names: string[] };
  subgraphs: number;
  externalData: { used: boolean; files: string[]; tensors: number; bytes: number };
}

const DEFAULT_DOMAINS = new Set(['', 'ai.onnx']);
/** ONNX element type names as users know them (numpy/ORT spelling). */
const FRIENDLY: Record<string, string> = { float: 'float32', double: 'float64', float16: 'float16', bfloat16: 'bfloat16' };

export function elemTypeName(dt: number): string {
  const n = dataTypeName(dt);
  return FRIENDLY[n] ?? n;
}

export function opKey(node: NodeProto): string {
  return DEFAULT_DOMAINS.has(node.domain) ? node.opType : `${node.domain}::${node.opType}`;
}

function typeName(t: TypeProto | undefined): string {
  switch (t?.value.case) {
    case 'tensorType': return elemTypeName(t.value.value.elemType);
    case 'sparseTensorType': return `sparse(${elemTypeName(t.value.value.elemType)})`;
    case 'sequenceType': return `seq(${typeName(t.value.value.elemType)})`;
    case 'optionalType': return `optional(${typeName(t.value.value.elemType)})`;
    case 'mapType': return `map(${elemTypeName(t.value.value.keyType)},${typeName(t.value.value.valueType)})`;
    default: return '?';
  }
}

function shapeOf(t: TypeProto | undefined): Dim[] | null {
  const v = t?.value;
  const shape = v?.case === 'tensorType' || v?.case === 'sparseTensorType' ? v.value.shape : undefined;
  if (!shape) return null;
  return shape.dim.map((d) => {
    if (d.value.case === 'dimValue') return Number(d.value.value);
    if (d.value.case === 'dimParam' && d.value.value !== '') return d.value.value;
    return null;
  });
}

export function summarizeValue(v: ValueInfoProto): ValueSummary {
  return { name: v.name, type: typeName(v.type), shape: shapeOf(v.type) };
}

/** Bytes a tensor's values occupy (strings: the sum of their lengths). */
function tensorBytes(t: TensorProto): number {
  if (t.dataType === DataType.STRING) return t.stringData.reduce((s, b) => s + b.byteLength, 0);
  return tensorDataBytes(t);
}

function tally(tensors: readonly TensorProto[]): TensorTally {
  return {
    count: tensors.length,
    parameters: tensors.reduce((s, t) => s + elementCount(dimsOf(t)), 0),
    bytes: tensors.reduce((s, t) => s + tensorBytes(t), 0),
  };
}

function tallyByDtype(tensors: readonly TensorProto[]): DtypeTally[] {
  const groups = new Map<string, TensorProto[]>();
  for (const t of tensors) {
    const k = elemTypeName(t.dataType);
    groups.set(k, [...(groups.get(k) ?? []), t]);
  }
  return [...groups].map(([dtype, ts]) => ({ dtype, ...tally(ts) })).sort((a, b) => b.bytes - a.bytes || a.dtype.localeCompare(b.dtype));
}

function opHistogram(graph: GraphProto): { op: string; count: number }[] {
  const counts = new Map<string, number>();
  forEachGraph(graph, (g) => {
    for (const n of g.node) counts.set(opKey(n), (counts.get(opKey(n)) ?? 0) + 1);
  });
  return [...counts].map(([op, count]) => ({ op, count })).sort((a, b) => b.count - a.count || (a.op < b.op ? -1 : a.op > b.op ? 1 : 0));
}

function constantTensors(graph: GraphProto): TensorProto[] {
  const out: TensorProto[] = [];
  forEachGraph(graph, (g) => {
    for (const n of g.node) {
      if (n.opType !== 'Constant' || !DEFAULT_DOMAINS.has(n.domain)) continue;
      const t = constantNodeTensor(n);
      if (t) out.push(t);
    }
  });
  return out;
}

function externalSummary(model: ModelProto): ModelSummary['externalData'] {
  const files = new Set<string>();
  let tensors = 0;
  let bytes = 0;
  forEachTensor(model, (t) => {
    if (!isExternal(t)) return;
    tensors++;
    bytes += tensorDataBytes(t);
    files.add(externalInfo(t).location);
  });
  return { used: tensors > 0, files: [...files].sort(), tensors, bytes };
}

function countSubgraphs(model: ModelProto): number {
  let n = 0;
  if (model.graph) forEachGraph(model.graph, (_g, depth) => { if (depth > 0) n++; });
  for (const f of model.functions) for (const node of f.node) n += subgraphsOf(node).length;
  return n;
}

/** Everything `inspect` shows, from a decoded model. */
export function summarizeModel(model: ModelProto): ModelSummary {
  const g = model.graph!;
  const initNames = new Set(g.initializer.map((t) => t.name));
  let total = 0;
  forEachGraph(g, (sg) => { total += sg.node.length; });
  return {
    irVersion: Number(model.irVersion),
    opsets: model.opsetImport.map((o) => ({ domain: o.domain === '' ? 'ai.onnx' : o.domain, version: Number(o.version) })),
    producer: { name: model.producerName, version: model.producerVersion },
    modelDomain: model.domain,
    modelVersion: Number(model.modelVersion),
    graphName: g.name,
    nodes: { main: g.node.length, total },
    ops: opHistogram(g),
    initializers: { ...tally(g.initializer), byDtype: tallyByDtype(g.initializer) },
    sparseInitializers: g.sparseInitializer.length,
    constants: tally(constantTensors(g)),
    inputs: g.input.filter((v) => !initNames.has(v.name)).map(summarizeValue),
    outputs: g.output.map(summarizeValue),
    initializerInputs: g.input.filter((v) => initNames.has(v.name)).length,
    metadataProps: model.metadataProps.map((p) => ({ key: p.key, value: p.value })),
    functions: { count: model.functions.length, names: model.functions.map((f) => (f.domain ? `${f.domain}::${f.name}` : f.name)) },
    subgraphs: countSubgraphs(model),
    externalData: externalSummary(model),
  };
}
