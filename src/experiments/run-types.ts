/**
 * What the experiment orchestration (coord check, LR sweep) needs from training: one run of `steps`
 * optimizer steps of a transformed model on a fixed data stream. The real implementation is
 * `makeOnnxTrainRun` (train-run.ts: transform → train-step graph → onnxruntime); tests pass fakes.
 */
import type { BlockOutput } from '../analysis/types.js';

export interface RunConfig {
  /** Rule set id or path (sp, mup, supar, ...). */
  rules: string;
  density: number;
  /** Base learning rate η (group multipliers from the rules apply on top). */
  lr: number;
  steps: number;
  seed: number;
  /** Record the block outputs' mean |activation| at every step (coord check). */
  recordActivations: boolean;
  /** Which model of a several-model study (`--models`; index into the study's models); absent = the only one. */
  model?: number;
}

/**
 * One model of a several-model study (the same architecture at several widths or depths, `--models`): its
 * label (file name), width and depth, as the x axis of plots and the rows of tables.
 */
export interface StudyModel {
  label: string;
  dModel: number | null;
  nLayers: number | null;
}

/** The dimension a several-model study sweeps: width if the models' d_model differ, else depth. */
export function sweptDimension(models: StudyModel[]): { name: 'width' | 'depth'; value: (m: StudyModel) => number } {
  const widths = new Set(models.map((m) => m.dModel));
  return widths.size > 1 || models.every((m) => m.nLayers === models[0]!.nLayers)
    ? { name: 'width', value: (m) => m.dModel ?? NaN }
    : { name: 'depth', value: (m) => m.nLayers ?? NaN };
}

export interface RunResult {
  /** Training loss of each step (forward pass before that step's update); NaN/±Inf kept as they came. */
  losses: number[];
  /** Per step: block output value name → mean |activation| in that step's forward pass (step 0 = at init). */
  activations: Record<string, number>[];
  /** The blocks the activations refer to (from the analysis of the transformed model). */
  blocks: BlockOutput[];
}

export type TrainRun = (cfg: RunConfig) => Promise<RunResult>;

/** Progress lines go to a sink the caller chooses (stderr in the CLI, nothing in tests). */
export type Progress = (line: string) => void;

/** Mean of |x| over a tensor's elements (mup's `l1` coordinate statistic). */
export function meanAbs(data: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += Math.abs(data[i]);
  return data.length ? s / data.length : NaN;
}

/**
 * Mean |x| of attention logits, leaving out causal-mask fills: exporters write masked positions as
 * −1e4, −1e9, the float minimum or −inf, none of which is a logit. Entries with |x| ≥ 1e4 are skipped
 * (a real attention logit that large would have saturated the softmax long before).
 */
export function meanAbsUnmasked(data: ArrayLike<number>, fill = 1e4): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (a < fill) { s += a; n++; } else if (Number.isNaN(a)) return NaN;
  }
  return n ? s / n : NaN;
}

export type LrSchedule = 'constant' | 'warmup-decay';

/**
 * Base LR at step t of n. 'warmup-decay' follows the paper's LR-sweep runs (App. E, Table 4: linear
 * warm-up, then "10× linear decay"): linear warm-up over the first 10 % of steps (at least one), then a
 * linear decay to lr/10 at the last step.
 */
export function lrAt(schedule: LrSchedule, lr: number, t: number, n: number): number {
  if (schedule === 'constant') return lr;
  const warm = Math.max(1, Math.round(n / 10));
  if (t < warm) return (lr * (t + 1)) / warm;
  const span = Math.max(1, n - 1 - warm);
  return lr * (1 - (0.9 * (t - warm)) / span);
}

/**
 * A run has diverged at a step whose loss is NaN/±Inf, or more than `DIVERGENCE_FACTOR` × the first
 * step's loss (a language model starts near ln V; a loss that triples has blown up, even if still finite).
 */
export const DIVERGENCE_FACTOR = 3;

export function isDivergedLoss(loss: number, firstLoss: number): boolean {
  return !Number.isFinite(loss) || (Number.isFinite(firstLoss) && firstLoss > 0 && loss > DIVERGENCE_FACTOR * firstLoss);
}
