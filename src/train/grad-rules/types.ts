/**
 * A gradient rule is a data-like entry: which forward op it covers, which inputs it can differentiate,
 * and a `build` that emits standard ai.onnx nodes computing the input gradients (vector-Jacobian product)
 * from the output gradients. Modelled on ORT's gradient builder registry (GO(i) → GI(i)), without its
 * training-only ops (docs/notes/autodiff.md §3).
 */
import type { NodeProto } from 'onnx-buf';
import type { GradEmitter } from '../grad-helpers.js';
import type { Dim, Shape, ShapeTable } from '../../shapes/infer.js';

export interface GradContext {
  readonly node: NodeProto;
  /** ai.onnx opset of the model: rules read forward attributes with these semantics and emit ops valid at it. */
  readonly opset: number;
  readonly e: GradEmitter;
  readonly shapes: ShapeTable;
  /** Forward input / output names ('' when absent). */
  input(i: number): string;
  output(i: number): string;
  /** Incoming gradient of output i, or undefined when nothing downstream reaches the loss. */
  gradOut(i: number): string | undefined;
  /** Whether the gradient of input i is wanted (it lies on a path from a `wrt` value). */
  needsGrad(i: number): boolean;
  /** Known shape of a value (may hold null / symbolic dims). */
  shape(name: string): Shape | undefined;
  /** Rank of a value, or a UserInputError naming the node (the rule cannot proceed without it). */
  getRank(name: string): number;
  /** Float element type of a value (defaults to the loss type when unknown). */
  elemType(name: string): number;
  /** Constant integer values of an input (initializer, Constant node or folded shape arithmetic). */
  ints(name: string): Dim[] | undefined;
  /** Throws a one-line UserInputError naming the op and node. */
  fail(what: string): never;
}

/** Gradients per forward input index (undefined = none: not wanted or not differentiable). */
export type InputGrads = (string | undefined)[];

export interface GradRule {
  op: string;
  /** '' (ai.onnx, default) or a contrib domain such as 'com.microsoft'. */
  domain?: string;
  /** Indices of the inputs this rule can differentiate ('all' for variadic ops such as Concat and Sum). */
  inputs: number[] | 'all';
  /** One line: the maths / formulation, for the report and docs. */
  doc: string;
  build(ctx: GradContext): InputGrads;
}
