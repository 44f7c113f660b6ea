/**
 * What the shape inference knows about each value: element type, shape, and for small tensors their
 * values (int64 shape vectors with symbolic entries; float/bool constants). Sources: value_info, graph
 * inputs/outputs, initializers and Constant nodes; `merge` lets declared facts win over inferred ones.
 */
import type { TensorProto, ValueInfoProto } from 'onnx-buf';
import { DataType, isFloatType } from '../onnx/dtype.js';
import { dimsOf, elementCount, tensorToNumbers } from '../onnx/tensor.js';
import type { Dim, Shape } from './dims.js';

export interface ValueFacts {
  elemType?: number;
  shape?: Shape;
  /** Values of a small integer tensor (≤ 64 elements, row-major), when known (entries may be symbolic or null). */
  ints?: Dim[];
  /** Values of a small float or bool constant (≤ 64 elements), when known. */
  floats?: number[];
}

export const MAX_TRACKED_INTS = 64;

export function valueInfoFacts(v: ValueInfoProto): ValueFacts {
  if (v.type?.value.case !== 'tensorType') return {};
  const tt = v.type.value.value;
  const facts: ValueFacts = {};
  if (tt.elemType) facts.elemType = tt.elemType;
  if (tt.shape) {
    facts.shape = tt.shape.dim.map((d) => d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' && d.value.value ? d.value.value : null);
  }
  return facts;
}

export function isIntType(dt: number | undefined): boolean {
  return dt === DataType.INT64 || dt === DataType.INT32 || dt === DataType.INT16 || dt === DataType.INT8 || dt === DataType.UINT8;
}

export function tensorFacts(t: TensorProto): ValueFacts {
  const shape = dimsOf(t);
  const facts: ValueFacts = { elemType: t.dataType, shape };
  const small = elementCount(shape) <= MAX_TRACKED_INTS && t.externalData.length === 0;
  if (!small) return facts;
  if (isIntType(t.dataType)) facts.ints = tensorToNumbers(t, '.');
  else if (isFloatType(t.dataType) || t.dataType === DataType.BOOL) facts.floats = tensorToNumbers(t, '.');
  return facts;
}

export class ShapeTable {
  private readonly facts = new Map<string, ValueFacts>();

  /** `outer`: the enclosing graph's table, for names a subgraph body reads from outer scopes. */
  constructor(private readonly outer?: ShapeTable) {}

  get(name: string): ValueFacts {
    return this.facts.get(name) ?? this.outer?.get(name) ?? {};
  }
  has(name: string): boolean {
    return this.facts.has(name) || (this.outer?.has(name) ?? false);
  }
  shape(name: string): Shape | undefined {
    return this.get(name).shape;
  }
  rank(name: string): number | undefined {
    return this.get(name).shape?.length;
  }
  elemType(name: string): number | undefined {
    return this.get(name).elemType;
  }
  ints(name: string): Dim[] | undefined {
    return this.get(name).ints;
  }
  /** Known int values, only when every entry is a number (a constant after folding). */
  constInts(name: string): number[] | undefined {
    const v = this.ints(name);
    return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
  }
  /** Merges facts; known information already recorded (e.g. from value_info) wins over inferred. */
  merge(name: string, f: ValueFacts): void {
    const old = this.facts.get(name) ?? {};
    const shape = old.shape && f.shape && old.shape.length === f.shape.length
      ? old.shape.map((d, i) => (d === null ? f.shape![i]! : d))
      : old.shape ?? f.shape;
    const ints = old.ints && f.ints && old.ints.length === f.ints.length ? old.ints.map((d, i) => (d === null ? f.ints![i]! : d)) : old.ints ?? f.ints;
    this.facts.set(name, { elemType: old.elemType ?? f.elemType, shape, ints, floats: old.floats ?? f.floats });
  }
}
