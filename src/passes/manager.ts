/**
 * The pass manager (STYLE.md, after onnxscript's rewriter): each pass is a small object with a stable id,
 * a one-line doc and a `run` that takes the model and the shared context and returns `{model, report}`;
 * the manager runs them in order and checks after each that the main graph is still well formed
 * (every node input is defined before use), so a faulty rewrite is caught at the pass that made it.
 */
import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';
import { InvariantError } from '../errors.js';
import type { Analysis } from '../analysis/types.js';
import type { TransformPlan } from '../plan.js';
import { subgraphsOf } from '../onnx/walk.js';
import type { DeferredValues } from './deferred.js';
import type { MaskSpec } from './mask-patterns.js';
import type { TensorJob } from './tensor-jobs.js';
import type { MaskStorage } from './mask-storage.js';

/** A planned mask, shared between the mask pass (which stores it) and the init pass (which zeroes). */
export interface DrawnMask {
  /** Initializer name of the stored mask. */
  name: string;
  /** What to draw (mask-patterns.ts), from the weight's seeded "mask" stream. */
  spec: MaskSpec;
  /** The job that computes the mask's bytes (shared with the weight's init, one draw for both). */
  job: TensorJob;
}

export interface PassContext {
  readonly baseDir: string;
  readonly plan: TransformPlan;
  readonly analysis: Analysis;
  readonly seed: number;
  /**
   * Write new float32 values into the tensors' existing bytes (shared with the input model) instead of new
   * arrays: the input model's tensors change too. For callers that drop the input afterwards (the CLI),
   * it keeps peak memory near one copy of the model.
   */
  readonly inPlace: boolean;
  /** Masks by weight name (filled by the mask pass). */
  readonly masks: Map<string, DrawnMask>;
  /** Values the mask and init passes leave to be computed (by the writer, or all at once): deferred.ts. */
  readonly deferred: DeferredValues;
  /** How the mask pass stores masks (default: DEFAULT_MASK_STORAGE in ./mask-storage.ts). */
  readonly maskStorage?: MaskStorage;
  /**
   * Main-graph nodes by the analysis's labels (name, or `Op#index` in the input's order), taken before any
   * pass inserts nodes, so that site references stay valid.
   */
  readonly nodes: ReadonlyMap<string, NodeProto>;
}

/** Labels as the analysis writes them: the node's name, or `Op#index` for an unnamed node. */
export function labelNodes(model: ModelProto): Map<string, NodeProto> {
  const out = new Map<string, NodeProto>();
  model.graph!.node.forEach((n, i) => {
    const label = n.name || `${n.opType}#${i}`;
    if (!out.has(label)) out.set(label, n);
  });
  return out;
}

export interface PassResult<R> {
  model: ModelProto;
  report: R;
}

export interface Pass<R = unknown> {
  readonly id: string;
  readonly doc: string;
  run(model: ModelProto, ctx: PassContext): PassResult<R>;
}

export interface PipelineResult {
  model: ModelProto;
  /** Each pass's report part, by pass id, in run order. */
  reports: Map<string, unknown>;
}

/** `onPass` observes progress only (called before each pass); it cannot change what the passes do. */
export function runPasses(model: ModelProto, ctx: PassContext, passes: readonly Pass[], onPass?: (id: string) => void): PipelineResult {
  const reports = new Map<string, unknown>();
  let current = model;
  // An input that is already out of order (some exporters) is not checked again after each pass.
  let check = true;
  try {
    checkWellFormed(model, 'input');
  } catch {
    check = false;
  }
  for (const pass of passes) {
    onPass?.(pass.id);
    const out = pass.run(current, ctx);
    if (check) checkWellFormed(out.model, pass.id);
    reports.set(pass.id, out.report);
    current = out.model;
  }
  return { model: current, reports };
}

/** Every node input in the main graph (and outer-scope reads in subgraphs) is defined before it is used. */
export function checkWellFormed(model: ModelProto, after: string): void {
  const g = model.graph;
  if (!g) throw new InvariantError(`after pass ${after}: model has no graph`);
  const defined = new Set<string>(['']);
  g.input.forEach((v) => defined.add(v.name));
  g.initializer.forEach((t) => defined.add(t.name));
  checkGraph(g, defined, after);
}

function checkGraph(g: GraphProto, outer: Set<string>, after: string): void {
  const defined = new Set(outer);
  g.input.forEach((v) => defined.add(v.name));
  g.initializer.forEach((t) => defined.add(t.name));
  for (const n of g.node) {
    for (const i of n.input) {
      if (!defined.has(i)) {
        throw new InvariantError(`after pass ${after}: node '${n.name || n.opType}' reads '${i}' before it is defined`);
      }
    }
    for (const sub of subgraphsOf(n)) checkGraph(sub, defined, after);
    n.output.forEach((o) => defined.add(o));
  }
}
