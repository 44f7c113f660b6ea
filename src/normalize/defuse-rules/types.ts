/**
 * The shape of a de-fuse rule (STYLE.md, after onnxscript's rewriter): a stable id, a one-line doc of the
 * rewrite, a match that either accepts the node or says why not, and a rewrite into ai.onnx nodes that
 * compute the same values (written to a NodeSink; the node's own output names are kept).
 */
import type { GraphProto, NodeProto } from 'onnx-buf';
import type { Dim } from '../../train/graph-util.js';
import type { NodeSink } from '../node-sink.js';

export interface RuleContext {
  graph: GraphProto;
  /** ai.onnx opset of the graph (decides how the replacement is spelled). */
  opset: number;
  /** Shape from value_info, inputs/outputs or an initializer; undefined when unknown. */
  shape(value: string): Dim[] | undefined;
  /** Element type when known (DataType code). */
  elemType(value: string): number | undefined;
  /** Whether a value is read by some node or is a graph output. */
  isUsed(value: string): boolean;
  /** Records the shape of a value a rewrite produced, for the rules that match later nodes. */
  noteShape(value: string, shape: Dim[]): void;
}

/** `{ ok: true }` when the rule applies; else the reason, naming the attribute or input. */
export type Match = { ok: true } | { ok: false; reason: string };

export interface DefuseRule {
  /** Stable id, e.g. `defuse/fast-gelu`: shown in the report. */
  id: string;
  opType: string;
  /** Domains the op is registered in by onnxruntime ('' for its default-domain contrib ops). */
  domains: string[];
  doc: string;
  /** The input whose element type must be float32 (the replacement's constants are); default 0. */
  floatInput?: number;
  /** When given and false, the node is already standard (e.g. an op ONNX adopted at the graph's opset): kept, not listed. */
  appliesTo?(n: NodeProto, ctx: RuleContext): boolean;
  match(n: NodeProto, ctx: RuleContext): Match;
  rewrite(n: NodeProto, ctx: RuleContext, out: NodeSink): void;
}

export const OK: Match = { ok: true };
export const fail = (reason: string): Match => ({ ok: false, reason });

/** The node's optional input `i` ('' and absent read as not given). */
export function optionalInput(n: NodeProto, i: number): string | undefined {
  const v = n.input[i];
  return v ? v : undefined;
}

/** The first output index ≥ `from` that is named and used, for refusing outputs a rewrite does not produce. */
export function usedOutputFrom(n: NodeProto, from: number, ctx: RuleContext): number | undefined {
  for (let i = from; i < n.output.length; i++) if (n.output[i] && ctx.isUsed(n.output[i]!)) return i;
  return undefined;
}
