/**
 * Where a normalization rule writes its replacement: ai.onnx nodes and constant initializers under fresh
 * names, spelled for the graph's own opset (the few ops whose signature changed: Split/Squeeze/Unsqueeze
 * take axes or sizes as inputs from opset 13, ReduceMean from 18).
 */
import type { NodeProto, TensorProto } from 'onnx-buf';
import { node, type AttrValue } from '../onnx/build.js';
import { DataType } from '../onnx/dtype.js';
import type { NameAuthority } from '../onnx/ir.js';
import { makeFloatTensor, makeInt64Tensor } from '../onnx/tensor.js';

export class NodeSink {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];

  /** `base` prefixes every new name (the replaced node's name, so the origin stays readable). */
  constructor(readonly names: NameAuthority, readonly opset: number, readonly base: string) {}

  fresh(suffix: string): string {
    return this.names.fresh(`${this.base}/${suffix}`);
  }

  /** Appends `op(inputs)` and returns its output; `out` names it (e.g. the replaced node's output). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, out?: string): string {
    const output = out ?? this.fresh(`${opType}_out`);
    this.nodes.push(node(opType, inputs, [output], attrs, this.fresh(opType)));
    return output;
  }

  /** A float32 constant (scalar unless `dims` says otherwise). */
  f32(value: number | Float32Array, dims: number[] = []): string {
    const name = this.fresh('const');
    this.initializers.push(makeFloatTensor(name, dims, typeof value === 'number' ? Float32Array.of(value) : value));
    return name;
  }

  /** An int64 constant, 1-D unless `dims` says otherwise. */
  i64(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('const');
    this.initializers.push(makeInt64Tensor(name, dims, values));
    return name;
  }

  /** Split along `axis` into pieces of the given sizes; `outs` names the pieces when given. */
  split(x: string, sizes: number[], axis: number, outs?: string[]): string[] {
    const outputs = outs ?? sizes.map((_, i) => this.fresh(`split_${i}`));
    const inputs = this.opset >= 13 ? [x, this.i64(sizes)] : [x];
    const attrs: Record<string, AttrValue> = this.opset >= 13 ? { axis } : { axis, split: sizes };
    this.nodes.push(node('Split', inputs, outputs, attrs, this.fresh('Split')));
    return outputs;
  }

  unsqueeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.op('Unsqueeze', [x, this.i64(axes)]) : this.op('Unsqueeze', [x], { axes });
  }

  reduceMean(x: string, axes: number[], out?: string): string {
    return this.opset >= 18
      ? this.op('ReduceMean', [x, this.i64(axes)], { keepdims: 1 }, out)
      : this.op('ReduceMean', [x], { axes, keepdims: 1 }, out);
  }

  reduceSum(x: string, axes: number[], keepdims: boolean, out?: string): string {
    const kd = keepdims ? 1 : 0;
    return this.opset >= 13 ? this.op('ReduceSum', [x, this.i64(axes)], { keepdims: kd }, out) : this.op('ReduceSum', [x], { axes, keepdims: kd }, out);
  }

  /** x cast to float32 (e.g. a 0/1 integer mask). */
  toFloat(x: string): string {
    return this.op('Cast', [x], { to: DataType.FLOAT });
  }
}
