/**
 * Loss heads for the train-step graph, each with its analytic gradient with respect to the model output
 * (the seed of the backward pass). Built from ai.onnx ops that have CUDA kernels: SoftmaxCrossEntropyLoss
 * and NegativeLogLikelihoodLoss have none (data/ort-kernels.json; ORT only inlines their function bodies).
 *
 * Cross-entropy (mean over non-ignored positions, PyTorch `F.cross_entropy(ignore_index=…)`):
 *   lp = LogSoftmax(z),  L = −Σᵢ wᵢ · lp[i, tᵢ],  wᵢ = [tᵢ ≠ ignore] / max(1, #non-ignored)
 *   ∂L/∂z[i, :] = wᵢ · (softmax(z[i]) − onehot(tᵢ))
 * The one-hot is never materialised: ScatterElements writes wᵢ·(p[i,tᵢ] − 1) into the target column.
 *
 * MSE (mean over all elements): L = mean((y − t)²),  ∂L/∂y = 2(y − t)/n.
 */
import type { Emitter } from './emit.js';

export type LossKind = 'cross_entropy' | 'mse';

export interface LossSpec {
  kind: LossKind;
  /** The model output the loss reads (logits for cross-entropy, predictions for MSE). */
  output: string;
  /** Rank of `output` (cross-entropy: the class axis is the last one). */
  outputRank: number;
  /** Graph input holding the targets (int32/int64 class ids for cross-entropy, float for MSE). */
  targets: string;
  /** Whether `targets` is int32 (cast to int64 in the graph). */
  targetsInt32?: boolean;
  ignoreIndex: number;
  /**
   * LM next-token mode: `targets` holds the same token ids as the model input, and position i is scored
   * against token i+1 (the last position of each row is ignored). Off: targets are already shifted.
   */
  nextToken: boolean;
}

export interface LossValues {
  /** Scalar float loss. */
  loss: string;
  /** ∂loss/∂output, same shape as the output. */
  dOutput: string;
}

export function emitLoss(e: Emitter, spec: LossSpec): LossValues {
  return spec.kind === 'mse' ? emitMse(e, spec) : emitCrossEntropy(e, spec);
}

function emitCrossEntropy(e: Emitter, spec: LossSpec): LossValues {
  const r = spec.outputRank;
  let targets = spec.targetsInt32 ? e.op('Cast', [spec.targets], 'ce/targets_i64', { to: 7 }) : spec.targets;
  if (spec.nextToken) targets = shiftLeft(e, targets, -1, spec.ignoreIndex);
  const z = e.op('Flatten', [spec.output], 'ce/logits_2d', { axis: r - 1 });
  const lp = logSoftmaxRows(e, z);
  const t = e.op('Reshape', [targets, e.int64([-1, 1])], 'ce/targets_col');
  const valid = e.op('Not', [e.op('Equal', [t, e.int64([spec.ignoreIndex], [])], 'ce/is_ignored')], 'ce/valid');
  const tSafe = e.op('Where', [valid, t, e.int64([0], [])], 'ce/targets_safe');
  const picked = e.op('GatherElements', [lp, tSafe], 'ce/target_log_prob', { axis: 1 });
  const validF = e.op('Cast', [valid], 'ce/valid_f', { to: 1 });
  const count = e.op('Max', [e.reduceSum(validF, undefined, false, 'ce/valid_count'), e.scalar(1)], 'ce/count');
  const w = e.op('Div', [validF, count], 'ce/weight');
  const loss = e.op('Neg', [e.reduceSum(e.op('Mul', [picked, w], 'ce/weighted'), undefined, false, 'ce/sum')], 'loss');
  // Gradient: w·softmax everywhere, then w·(p_t − 1) in the target column.
  const gAll = e.op('Mul', [e.op('Exp', [lp], 'ce/probs'), w], 'ce/grad_all');
  const gTarget = e.op('Mul', [e.op('Sub', [e.op('Exp', [picked], 'ce/target_prob'), e.scalar(1)], 'ce/p_minus_1'), w], 'ce/grad_target');
  const g2d = e.op('ScatterElements', [gAll, tSafe, gTarget], 'ce/grad_2d', { axis: 1 });
  const dOutput = e.op('Reshape', [g2d, e.op('Shape', [spec.output], 'ce/logits_shape')], 'ce/grad_logits');
  return { loss, dOutput };
}

/**
 * log softmax over axis 1 of [N, C]: s = z − max_c z, lp = s − log Σ_c exp(s). Spelled out rather than
 * LogSoftmax, which has no WebGPU kernel in onnxruntime 1.30 (data/ort-kernels-webgpu.json): as one op the
 * [N, C] logits would go to the CPU and back every step. Same maths as onnxruntime's CPU kernel.
 */
function logSoftmaxRows(e: Emitter, z: string): string {
  const max = e.opset >= 18
    ? e.op('ReduceMax', [z, e.int64([1])], 'ce/row_max', { keepdims: 1 })
    : e.op('ReduceMax', [z], 'ce/row_max', { axes: [1], keepdims: 1 });
  const s = e.op('Sub', [z, max], 'ce/shifted');
  const lse = e.op('Log', [e.reduceSum(e.op('Exp', [s], 'ce/exp'), [1], true, 'ce/sum_exp')], 'ce/log_sum_exp');
  return e.op('Sub', [s, lse], 'ce/log_probs');
}

/** t[..., 1:] followed by one `fill` column on `axis`: the next-token targets. */
function shiftLeft(e: Emitter, t: string, axis: number, fill: number): string {
  const big = 2 ** 62;
  const rest = e.op('Slice', [t, e.int64([1]), e.int64([big]), e.int64([axis])], 'ce/targets_next');
  const first = e.op('Slice', [t, e.int64([0]), e.int64([1]), e.int64([axis])], 'ce/targets_first');
  const pad = e.op('Add', [e.op('Mul', [first, e.int64([0], [])], 'ce/zeros'), e.int64([fill], [])], 'ce/pad');
  return e.op('Concat', [rest, pad], 'ce/targets_shifted', { axis });
}

function emitMse(e: Emitter, spec: LossSpec): LossValues {
  const diff = e.op('Sub', [spec.output, spec.targets], 'mse/diff');
  const loss = e.op('ReduceMean', [e.op('Mul', [diff, diff], 'mse/sq')], 'loss', { keepdims: 0 });
  const n = e.op('Cast', [e.op('Size', [diff], 'mse/size')], 'mse/n', { to: 1 });
  const dOutput = e.op('Div', [e.op('Mul', [diff, e.scalar(2)], 'mse/two_diff'), n], 'mse/grad');
  return { loss, dOutput };
}
