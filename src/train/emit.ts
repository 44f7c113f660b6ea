/**
 * A small node emitter for the train-step builder: appends nodes and constant initializers with fresh
 * names, and spells the opset-dependent forms of the few ops whose signature changed (ReduceSum axes
 * became an input at opset 13; Unsqueeze/Squeeze axes at 13). Only ai.onnx ops.
 */
import type { NodeProto, TensorProto } from 'onnx-buf';
import { node, type AttrValue } from '../onnx/build.js';
import type { NameAuthority } from '../onnx/ir.js';
import { makeFloatTensor, makeInt64Tensor } from '../onnx/tensor.js';

export class Emitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly int64Consts = new Map<string, string>();
  private readonly floatConsts = new Map<number, string>();

  constructor(readonly names: NameAuthority, readonly opset: number, readonly prefix: string) {}

  fresh(base: string): string {
    return this.names.fresh(base);
  }

  /** Appends `op(inputs)` and returns its single output (named from `base`). */
  op(opType: string, inputs: string[], base: string, attrs: Record<string, AttrValue> = {}): string {
    const out = this.fresh(base);
    this.nodes.push(node(opType, inputs, [out], attrs, this.fresh(`${this.prefix}/${opType}`)));
    return out;
  }

  /** Appends a node with given output names (e.g. graph outputs that must keep a fixed name). */
  opTo(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}): void {
    this.nodes.push(node(opType, inputs, outputs, attrs, this.fresh(`${this.prefix}/${opType}`)));
  }

  /** A float32 scalar constant (shared by value). */
  scalar(value: number): string {
    const hit = this.floatConsts.get(value);
    if (hit) return hit;
    const name = this.fresh(`${this.prefix}/const_f`);
    this.initializers.push(makeFloatTensor(name, [], Float32Array.of(value)));
    this.floatConsts.set(value, name);
    return name;
  }

  /** A float32 scalar constant under a readable name (not shared). */
  namedScalar(base: string, value: number): string {
    const name = this.fresh(base);
    this.initializers.push(makeFloatTensor(name, [], Float32Array.of(value)));
    return name;
  }

  /** An int64 constant (1-D unless `dims` says otherwise), shared by value. */
  int64(values: number[], dims: number[] = [values.length]): string {
    const key = `${dims.join('x')}:${values.join(',')}`;
    const hit = this.int64Consts.get(key);
    if (hit) return hit;
    const name = this.fresh(`${this.prefix}/const_i`);
    this.initializers.push(makeInt64Tensor(name, dims, values));
    this.int64Consts.set(key, name);
    return name;
  }

  /** ReduceSum over `axes` (all axes when undefined). Axes are an input from opset 13 on. */
  reduceSum(x: string, axes: number[] | undefined, keepdims: boolean, base: string): string {
    const kd = keepdims ? 1 : 0;
    if (axes === undefined) return this.op('ReduceSum', [x], base, { keepdims: kd });
    if (this.opset >= 13) return this.op('ReduceSum', [x, this.int64(axes)], base, { keepdims: kd });
    return this.op('ReduceSum', [x], base, { keepdims: kd, axes });
  }

  unsqueeze(x: string, axes: number[], base: string): string {
    if (this.opset >= 13) return this.op('Unsqueeze', [x, this.int64(axes)], base);
    return this.op('Unsqueeze', [x], base, { axes });
  }
}
