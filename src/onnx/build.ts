/** Constructors for new nodes and attributes (the only place that spells protobuf shapes for new IR). */
import { create } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema, NodeProtoSchema, TensorProtoSchema, ValueInfoProtoSchema, TypeProtoSchema,
  TypeProto_TensorSchema, TensorShapeProtoSchema, TensorShapeProto_DimensionSchema,
  type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from 'onnx-buf';

export type AttrValue = number | string | number[] | string[] | TensorProto | { ints: number[] } | { float: number } | { floats: number[] };

const A = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** Integers become INT/INTS; use `{ float: x }` / `{ floats: [...] }` for float attributes. */
export function attr(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'number') {
    return Number.isInteger(v)
      ? create(AttributeProtoSchema, { name, type: A.INT, i: BigInt(v) })
      : create(AttributeProtoSchema, { name, type: A.FLOAT, f: v });
  }
  if (typeof v === 'string') return create(AttributeProtoSchema, { name, type: A.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) {
    if (v.length > 0 && typeof v[0] === 'string') {
      return create(AttributeProtoSchema, { name, type: A.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) });
    }
    return create(AttributeProtoSchema, { name, type: A.INTS, ints: (v as number[]).map(BigInt) });
  }
  if ('float' in v) return create(AttributeProtoSchema, { name, type: A.FLOAT, f: v.float });
  if ('floats' in v) return create(AttributeProtoSchema, { name, type: A.FLOATS, floats: v.floats });
  if ('ints' in v) return create(AttributeProtoSchema, { name, type: A.INTS, ints: v.ints.map(BigInt) });
  return create(AttributeProtoSchema, { name, type: A.TENSOR, t: v as TensorProto });
}

export function node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, name = '', domain = ''): NodeProto {
  return create(NodeProtoSchema, {
    opType, input: inputs, output: outputs, name, domain,
    attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
  });
}

/** A tensor value info; dims are numbers or symbolic names. */
export function tensorValueInfo(name: string, elemType: number, dims?: (number | string)[]): ValueInfoProto {
  const shape = dims === undefined ? undefined : create(TensorShapeProtoSchema, {
    dim: dims.map((d) => create(TensorShapeProto_DimensionSchema, typeof d === 'number'
      ? { value: { case: 'dimValue', value: BigInt(d) } }
      : { value: { case: 'dimParam', value: d } })),
  });
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType, shape }) } }),
  });
}

export function getAttr(n: NodeProto, name: string): AttributeProto | undefined {
  return n.attribute.find((a) => a.name === name);
}

export function attrInt(n: NodeProto, name: string, dflt: number): number {
  const a = getAttr(n, name);
  return a ? Number(a.i) : dflt;
}

export function attrFloat(n: NodeProto, name: string, dflt: number): number {
  const a = getAttr(n, name);
  return a ? a.f : dflt;
}

export function attrInts(n: NodeProto, name: string): number[] | undefined {
  const a = getAttr(n, name);
  return a ? a.ints.map(Number) : undefined;
}

export function attrString(n: NodeProto, name: string, dflt: string): string {
  const a = getAttr(n, name);
  return a ? new TextDecoder().decode(a.s) : dflt;
}

export { TensorProtoSchema };
