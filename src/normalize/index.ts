/**
 * Normalization: the one step that brings a user's graph to the ops the rest of the tool reasons about,
 * run before analysis (transform) and before the train-step builder:
 *   1. de-fuse onnxruntime contrib ops into ai.onnx ops (defuse.ts);
 *   2. for training only, raise the ai.onnx opset to 13 (opset-upgrade.ts; the backward pass emits opset-13 ops).
 * The input model is never modified; tensors are shared with it.
 */
import type { ModelProto } from 'onnx-buf';
import { ExitCode, UserInputError } from '../errors.js';
import type { NameAuthority } from '../onnx/ir.js';
import { defuseContribOps, type DefusedNode, type NotDefused } from './defuse.js';
import { upgradeToOpset13, type OpsetUpgrade } from './opset-upgrade.js';

export type { DefusedNode, NotDefused } from './defuse.js';
export { TRAIN_OPSET, type OpsetUpgrade } from './opset-upgrade.js';

export interface AnalysisNormalization {
  model: ModelProto;
  defused: DefusedNode[];
  /** Contrib nodes left fused (their form is not supported): warnings of the transform report. */
  warnings: string[];
}

/** Before analysis: de-fuse what can be; what cannot stays fused (onnxruntime still runs it) and is warned. */
export function normalizeForAnalysis(model: ModelProto, names?: NameAuthority): AnalysisNormalization {
  const d = defuseContribOps(model, names);
  return { model: d.model, defused: d.defused, warnings: d.notDefused.map(notDefusedLine) };
}

export interface TrainingNormalization {
  model: ModelProto;
  defused: DefusedNode[];
  opsetUpgrade: OpsetUpgrade;
}

/** Before the train-step builder: de-fuse (a node that cannot be is refused: autodiff has no rule for it), then opset 13. */
export function normalizeForTraining(model: ModelProto, names: NameAuthority): TrainingNormalization {
  const d = defuseContribOps(model, names);
  if (d.notDefused.length > 0) {
    const first = d.notDefused[0]!;
    throw new UserInputError(`cannot build a train step: ${notDefusedLine(first)}${d.notDefused.length > 1 ? ` (and ${d.notDefused.length - 1} more)` : ''}; re-export the model without onnxruntime's fusions`, ExitCode.unsupported);
  }
  const opsetUpgrade = upgradeToOpset13(d.model, names);
  return { model: opsetUpgrade.model, defused: d.defused, opsetUpgrade };
}

function notDefusedLine(n: NotDefused): string {
  return `node '${n.node}' (${n.op}) is not de-fused (${n.rule}): ${n.reason}`;
}
