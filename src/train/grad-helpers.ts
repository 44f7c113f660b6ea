/**
 * Emission helpers shared by the gradient rules: fresh names, cached constants and Shape nodes,
 * opset-aware forms of ops whose signature changed (ReduceSum/ReduceMean axes, Squeeze/Unsqueeze axes,
 * Split sizes), and the broadcast reduction `unbroadcast` (ORT gradient_builder_base.cc `HandleBroadcasting`,
 * rewritten with ai.onnx ops only).
 */
import { create } from '@bufbuild/protobuf';
import { TensorProtoSchema, type NodeProto, type TensorProto } from 'onnx-buf';
import { node, type AttrValue } from '../onnx/build.js';
import { DataType, floatToBf16Bits, floatToHalfBits } from '../onnx/dtype.js';
import type { NameAuthority } from '../onnx/ir.js';
import { makeInt64Tensor } from '../onnx/tensor.js';
import { ExitCode, InvariantError, UserInputError } from '../errors.js';
import { sameDim, type Shape } from '../shapes/infer.js';

/** A scalar (or shaped) constant tensor of a float element type, encoded without precision loss. */
export function floatConstTensor(name: string, dims: number[], values: number[], dataType: number): TensorProto {
  let raw: Uint8Array;
  switch (dataType) {
    case DataType.DOUBLE: raw = new Uint8Array(Float64Array.from(values).buffer); break;
    case DataType.FLOAT: raw = new Uint8Array(Float32Array.from(values).buffer); break;
    case DataType.FLOAT16: raw = new Uint8Array(Uint16Array.from(values.map(floatToHalfBits)).buffer); break;
    case DataType.BFLOAT16: raw = new Uint8Array(Uint16Array.from(values.map(floatToBf16Bits)).buffer); break;
    default: throw new InvariantError(`float constant of non-float type ${dataType}`);
  }
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType, rawData: raw as Uint8Array<ArrayBuffer> });
}

export class GradEmitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly constCache = new Map<string, string>();
  private readonly shapeCache = new Map<string, string>();
  /** Name prefix for the values and nodes emitted now (set per forward node by the driver). */
  scope = 'grad';

  constructor(readonly names: NameAuthority, readonly opset: number) {}

  /** Emits one node with `outputs` fresh outputs; returns their names. */
  opN(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, domain = ''): string[] {
    const outs = Array.from({ length: outputs }, () => this.names.fresh(`${this.scope}/${opType}_out`));
    this.nodes.push(node(opType, inputs, outs, attrs, this.names.fresh(`${this.scope}/${opType}`), domain));
    return outs;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.opN(opType, inputs, attrs, 1)[0]!;
  }

  /** Emits a node writing to a given output name (used for the final, named gradients). */
  opInto(opType: string, inputs: string[], output: string, attrs: Record<string, AttrValue> = {}): void {
    this.nodes.push(node(opType, inputs, [output], attrs, this.names.fresh(`${this.scope}/${opType}`)));
  }

  /** A float constant of `dataType` (scalar unless dims given); shared across the backward graph. */
  constFloat(value: number | number[], dataType: number, dims: number[] = []): string {
    const values = typeof value === 'number' ? [value] : value;
    const key = `f${dataType}:${dims.join('x')}:${values.join(',')}`;
    return this.cached(key, 'grad_const', (name) => floatConstTensor(name, dims, values, dataType));
  }

  /** A 1-D int64 constant (or scalar with `scalar`). */
  constInts(values: number[], scalar = false): string {
    const key = `i:${scalar ? 's' : 'v'}:${values.join(',')}`;
    return this.cached(key, 'grad_ints', (name) => makeInt64Tensor(name, scalar ? [] : [values.length], values));
  }

  private cached(key: string, base: string, make: (name: string) => TensorProto): string {
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.names.fresh(base);
    this.initializers.push(make(name));
    this.constCache.set(key, name);
    return name;
  }

  /** Shape(x), emitted once per value. */
  shapeOf(x: string): string {
    let s = this.shapeCache.get(x);
    if (!s) {
      s = this.op('Shape', [x]);
      this.shapeCache.set(x, s);
    }
    return s;
  }

  /** Reshape x to the shape of `like` (a constant when the shape is static). */
  reshapeLike(x: string, like: string, likeShape?: Shape): string {
    const target = likeShape && likeShape.every((d) => typeof d === 'number') ? this.constInts(likeShape as number[]) : this.shapeOf(like);
    return this.op('Reshape', [x, target]);
  }

  reduce(op: 'ReduceSum' | 'ReduceMean', x: string, axes: number[] | string, keepdims: boolean): string {
    const axesAsInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    if (typeof axes === 'string') {
      if (!axesAsInput) throw new InvariantError(`${op} with runtime axes needs opset ${op === 'ReduceSum' ? 13 : 18}`);
      return this.op(op, [x, axes], { keepdims: keepdims ? 1 : 0, noop_with_empty_axes: 1 });
    }
    if (axes.length === 0) return x;
    if (axesAsInput) return this.op(op, [x, this.constInts(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.op(op, [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  unsqueeze(x: string, axes: number[] | string): string {
    if (typeof axes === 'string') return this.op('Unsqueeze', [x, axes]);
    return this.opset >= 13 ? this.op('Unsqueeze', [x, this.constInts(axes)]) : this.op('Unsqueeze', [x], { axes });
  }

  squeeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.op('Squeeze', [x, this.constInts(axes)]) : this.op('Squeeze', [x], { axes });
  }

  /** Split along `axis` into static sizes, or runtime sizes (a 1-D int64 value name, opset ≥ 13). */
  split(x: string, axis: number, sizes: number[] | string, count: number): string[] {
    if (typeof sizes === 'string') return this.opN('Split', [x, sizes], { axis }, count);
    if (this.opset >= 13) return this.opN('Split', [x, this.constInts(sizes)], { axis }, count);
    return this.opN('Split', [x], { axis, split: sizes }, count);
  }

  /** Zeros shaped like `x`, of element type `dataType`. */
  zerosLike(x: string, dataType: number): string {
    return this.op('ConstantOfShape', [this.shapeOf(x)], { value: floatConstTensor('', [1], [0], dataType) });
  }

  /**
   * Sum of gradient contributions: the value itself, else a chain of Adds (Sum has no WebGPU kernel in
   * onnxruntime 1.30, data/ort-kernels-webgpu.json; Add has one on every provider).
   */
  sum(parts: string[]): string {
    return parts.slice(1).reduce((acc, p) => this.op('Add', [acc, p]), parts[0]!);
  }

  /**
   * Reduces a gradient `g` (shape gShape, the broadcast result) to the shape of input `x` (xShape):
   * sum over the leading axes x lacks and over axes where x has 1 and g does not, then restore x's shape.
   * Static axes when both shapes decide it. Otherwise, from opset 13 the axes come at run time:
   *   pad = ConstantOfShape(rank(g) − rank(x), 1); axes = NonZero(Concat(pad, Shape(x)) == 1)
   *   ReduceSum(g, axes, keepdims=1, noop_with_empty_axes=1) → Reshape(Shape(x));
   * below 13 (ReduceSum axes are attributes) each undecided axis j is resolved at run time with
   *   Slice(Where(x_j == 1, ReduceSum(g, [j], keepdims=1), g), 0, x_j, axis j).
   */
  unbroadcast(g: string, gShape: Shape | undefined, x: string, xShape: Shape | undefined): string {
    if (gShape && xShape) {
      const plan = staticReducePlan(gShape, xShape);
      if (plan.lead.length === 0 && plan.inner.length === 0 && plan.undecided.length === 0) return g;
      if (plan.undecided.length === 0 || this.opset < 13) {
        let h = g;
        for (const j of plan.undecided) h = this.reduceIfOne(h, j, x, j - plan.lead.length);
        const exact = plan.undecided.length === 0;
        if (plan.inner.length === 0 && exact) return this.reduce('ReduceSum', h, plan.lead, false);
        const reduced = this.reduce('ReduceSum', h, [...plan.lead, ...plan.inner], true);
        return exact ? this.reshapeLike(reduced, x, xShape) : this.op('Reshape', [reduced, this.shapeOf(x)]);
      }
    }
    if (this.opset < 13) {
      throw new UserInputError(`autodiff (${this.scope}): the rank of '${x}' is unknown, and below opset 13 a broadcast gradient needs it; re-export the model at opset 13 or newer`, ExitCode.unsupported);
    }
    const gRank = this.op('Shape', [this.shapeOf(g)]);
    const xRank = this.op('Shape', [this.shapeOf(x)]);
    const ones = this.op('ConstantOfShape', [this.op('Sub', [gRank, xRank])], { value: makeInt64Tensor('', [1], [1]) });
    const padded = this.op('Concat', [ones, this.shapeOf(x)], { axis: 0 });
    const isOne = this.op('Equal', [padded, this.constInts([1])]);
    const axes = this.op('Reshape', [this.op('NonZero', [isOne]), this.constInts([-1])]);
    const reduced = this.reduce('ReduceSum', g, axes, true);
    return this.op('Reshape', [reduced, this.shapeOf(x)]);
  }

  /** Axis j of g summed (kept as size 1) when x's axis i has size 1 at run time, else unchanged. */
  private reduceIfOne(g: string, j: number, x: string, i: number): string {
    const xDim = this.op('Gather', [this.shapeOf(x), this.constInts([i])], { axis: 0 });
    const isOne = this.op('Equal', [xDim, this.constInts([1])]);
    const picked = this.op('Where', [isOne, this.reduce('ReduceSum', g, [j], true), g]);
    return this.op('Slice', [picked, this.constInts([0]), xDim, this.constInts([j])]);
  }
}

/** Axes of g (rank r) to sum to match x: leading axes x lacks, axes where x is 1, and axes not decidable statically. */
interface ReducePlan { lead: number[]; inner: number[]; undecided: number[] }

export function staticReducePlan(gShape: Shape, xShape: Shape): ReducePlan {
  const r = gShape.length, k = xShape.length;
  if (k > r) throw new InvariantError(`gradient rank ${r} below input rank ${k}`);
  const plan: ReducePlan = { lead: Array.from({ length: r - k }, (_, i) => i), inner: [], undecided: [] };
  for (let i = 0; i < k; i++) {
    const xd = xShape[i]!, gd = gShape[r - k + i]!;
    if (sameDim(xd, gd) || (typeof xd === 'number' && xd !== 1)) continue;
    if (xd === 1) {
      if (gd !== 1) plan.inner.push(r - k + i);
      continue;
    }
    // x's dim is symbolic or unknown and differs from g's: it may be 1 (broadcast) or equal to g's.
    plan.undecided.push(r - k + i);
  }
  return plan;
}
