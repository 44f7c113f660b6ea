/**
 * Element-type inference over a graph (enough for the CUDA kernel check: float vs int64 vs bool).
 * Known types come from graph inputs, initializers and value_info; each node's outputs follow the op's
 * type rule (ONNX operator spec): fixed output types (Shape → int64, comparisons → bool, Cast → `to`),
 * or the type of the input that carries data (Where → input 1, OneHot → values), else input 0.
 */
import type { GraphProto, NodeProto } from 'onnx-buf';
import { DataType } from '../onnx/dtype.js';

const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin']);
const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);

export function inferElemTypes(graph: GraphProto, outer?: Map<string, number>): Map<string, number> {
  const types = new Map<string, number>(outer ?? []);
  const noteValueInfo = (v: GraphProto['input'][number]) => {
    const t = v.type?.value;
    if (t?.case === 'tensorType' && t.value.elemType) types.set(v.name, t.value.elemType);
  };
  graph.input.forEach(noteValueInfo);
  graph.valueInfo.forEach(noteValueInfo);
  graph.output.forEach(noteValueInfo);
  for (const t of graph.initializer) types.set(t.name, t.dataType);
  for (const n of graph.node) {
    n.output.forEach((o, i) => {
      if (!o || types.has(o)) return;
      const t = outputType(n, i, types);
      if (t !== undefined) types.set(o, t);
    });
  }
  return types;
}

function outputType(n: NodeProto, index: number, types: Map<string, number>): number | undefined {
  const inType = (i: number) => (n.input[i] ? types.get(n.input[i]!) : undefined);
  const attr = (name: string) => n.attribute.find((a) => a.name === name);
  if (n.domain && n.domain !== 'ai.onnx') return index === 0 ? inType(0) : undefined;
  if (INT64_OUT.has(n.opType)) return DataType.INT64;
  if (BOOL_OUT.has(n.opType)) return DataType.BOOL;
  switch (n.opType) {
    case 'Cast': return Number(attr('to')?.i ?? 0) || undefined;
    case 'CastLike': return inType(1);
    case 'Constant': return constantType(n);
    case 'ConstantOfShape': return attr('value')?.t?.dataType ?? DataType.FLOAT;
    case 'Where': return inType(1);
    case 'OneHot': return inType(2);
    case 'LayerNormalization': return index === 0 ? inType(0) : DataType.FLOAT;
    case 'TopK': case 'MaxPool': return index === 0 ? inType(0) : DataType.INT64;
    case 'Dropout': return index === 0 ? inType(0) : DataType.BOOL;
    case 'If': case 'Loop': case 'Scan': return undefined;
    default: return inType(0);
  }
}

function constantType(n: NodeProto): number | undefined {
  for (const a of n.attribute) {
    if (a.name === 'value' && a.t) return a.t.dataType;
    if (a.name === 'value_float' || a.name === 'value_floats') return DataType.FLOAT;
    if (a.name === 'value_int' || a.name === 'value_ints') return DataType.INT64;
  }
  return undefined;
}

/** ONNX type-string spelling used by the kernel table: `tensor(float)`. */
export function typeString(elemType: number): string {
  const names: Record<number, string> = {
    1: 'float', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
    10: 'float16', 11: 'double', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
  };
  return `tensor(${names[elemType] ?? `type${elemType}`})`;
}
