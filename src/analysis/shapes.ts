/**
 * Just enough shape inference to read a head size off an attention graph: dims come from initializers,
 * value_info / graph inputs and outputs, and are propagated through Reshape (constant or Concat-of-constant
 * shapes), Transpose, Split, unary ops and elementwise ops. Unknown dims are `undefined`.
 */
import type { ValueInfoProto } from 'onnx-buf';
import { dimsOf } from '../onnx/tensor.js';
import { attrInt, attrInts } from '../onnx/build.js';
import { evaluateStatic } from './evaluate.js';
import type { AnalysisGraph } from './graph.js';

export type Dims = (number | undefined)[];

const SAME_SHAPE_OPS = new Set([
  'Cast', 'Identity', 'Softmax', 'Relu', 'Gelu', 'FastGelu', 'Erf', 'Tanh', 'Sigmoid', 'Neg', 'Sqrt', 'Dropout',
  'LayerNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization', 'CastLike',
]);
const ELEMENTWISE_OPS = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where']);

function fromValueInfo(v: ValueInfoProto): Dims | undefined {
  const t = v.type?.value;
  if (t?.case !== 'tensorType' || !t.value.shape) return undefined;
  return t.value.shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : undefined));
}

function declaredDims(g: AnalysisGraph, value: string): Dims | undefined {
  const init = g.index.findConstant(value);
  if (init) return dimsOf(init);
  const graph = g.model.graph!;
  for (const list of [graph.valueInfo, graph.input, graph.output]) {
    const v = list.find((x) => x.name === value);
    if (v) return fromValueInfo(v);
  }
  return undefined;
}

export function inferDims(g: AnalysisGraph, value: string): Dims | undefined {
  const declared = declaredDims(g, value);
  if (declared && declared.every((d) => d !== undefined)) return declared;
  const inferred = inferFromProducer(g, value);
  if (!declared) return inferred;
  if (!inferred || inferred.length !== declared.length) return declared;
  return declared.map((d, i) => d ?? inferred[i]);
}

function inferFromProducer(g: AnalysisGraph, value: string): Dims | undefined {
  const p = g.producer(value);
  if (!p) return undefined;
  const op = p.opType;
  if (SAME_SHAPE_OPS.has(op)) return g.dims(p.input[0]!);
  if (ELEMENTWISE_OPS.has(op)) return broadcast(p.input.filter(Boolean).map((i) => g.dims(i)));
  if (op === 'Transpose') {
    const d = g.dims(p.input[0]!);
    if (!d) return undefined;
    const perm = attrInts(p, 'perm') ?? d.map((_, i) => d.length - 1 - i);
    return perm.map((a) => d[a]);
  }
  if (op === 'Reshape') return reshapeDims(g, p.input[0]!, p.input[1]!);
  if (op === 'Gather') {
    // data[:axis] + indices + data[axis+1:] (an embedding lookup: [b, s] ids into [V, d] → [b, s, d]).
    const data = g.dims(p.input[0]!);
    const idx = g.dims(p.input[1]!);
    if (!data || !idx || data.length === 0) return undefined;
    const axis = ((attrInt(p, 'axis', 0) % data.length) + data.length) % data.length;
    return [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)];
  }
  if (op === 'Split') return splitDims(g, p, value);
  if (op === 'MatMul') {
    const a = g.dims(p.input[0]!);
    const b = g.dims(p.input[1]!);
    if (!a || !b || a.length < 2 || b.length < 2) return undefined;
    const batch = broadcast([a.slice(0, -2), b.slice(0, -2)]) ?? [];
    return [...batch, a[a.length - 2], b[b.length - 1]];
  }
  return undefined;
}

/**
 * Numpy broadcasting; an unknown dim against a known one ≠ 1 takes the known one. An operand of unknown rank
 * makes the result unknown: its rank may exceed the others' (LayerNorm gain [d] × activations [b, s, d]).
 */
function broadcast(shapes: (Dims | undefined)[]): Dims | undefined {
  if (shapes.length === 0 || shapes.some((s) => s === undefined)) return undefined;
  const known = shapes as Dims[];
  const rank = Math.max(...known.map((s) => s.length));
  const out: Dims = [];
  for (let i = 0; i < rank; i++) {
    let dim: number | undefined = 1;
    let unknown = false;
    for (const s of known) {
      const d = s[s.length - rank + i];
      if (d === undefined) {
        if (s.length - rank + i >= 0) unknown = true;
        continue;
      }
      if (d !== 1) dim = d;
    }
    out.push(unknown && dim === 1 ? undefined : dim);
  }
  return out;
}

/** Target shape of a Reshape: a constant, or a Concat of one-element pieces (constants or unknowns). */
function reshapeDims(g: AnalysisGraph, data: string, shapeValue: string): Dims | undefined {
  let target: Dims | undefined = g.intConstant(shapeValue);
  if (!target) {
    const c = g.producer(shapeValue);
    if (c?.opType !== 'Concat') return undefined;
    target = [];
    for (const piece of c.input) {
      const vals = g.intConstant(piece) ?? evaluateStatic(g, piece);
      if (vals) target.push(...vals);
      else target.push(undefined);
    }
  }
  const input = g.dims(data);
  return target.map((d, i) => {
    if (d === 0) return input?.[i];
    if (d === -1) return inferMinusOne(input, target!);
    return d;
  });
}

function inferMinusOne(input: Dims | undefined, target: Dims): number | undefined {
  if (!input || input.some((d) => d === undefined) || target.some((d) => d === undefined || d === 0)) return undefined;
  const total = (input as number[]).reduce((a, b) => a * b, 1);
  const rest = (target as number[]).filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  return rest > 0 ? total / rest : undefined;
}

function splitDims(g: AnalysisGraph, p: import('onnx-buf').NodeProto, value: string): Dims | undefined {
  const d = g.dims(p.input[0]!);
  if (!d) return undefined;
  const axis = ((attrInt(p, 'axis', 0) % d.length) + d.length) % d.length;
  const k = p.output.indexOf(value);
  const sizes = p.input[1] ? g.intConstant(p.input[1]) : attrInts(p, 'split');
  const out = [...d];
  if (sizes && sizes.length === p.output.length) out[axis] = sizes[k];
  else if (d[axis] !== undefined) out[axis] = d[axis]! / p.output.length;
  else out[axis] = undefined;
  return out;
}
