/**
 * Checks a study's model before it is planned (in the CLI process, once): the objective `train` would pick
 * and the feed sizes the flags give against the model's fixed sizes. A conflicting --batch or an objective
 * the model cannot take is then one line, instead of a failure recorded by every run of the study. Reads
 * the input model only (the transform keeps its inputs and outputs); loads no onnxruntime.
 */
import { analyzeModel } from '../analysis/index.js';
import { readModel } from '../onnx/codec.js';
import { DataType } from '../onnx/dtype.js';
import { findValueShape, valueInfoElemType } from '../train/graph-util.js';
import { describeObjective, objectiveOfModel, type ObjectiveKind } from '../train/objective.js';
import { EXPERIMENT_SIZE_DEFAULTS, resolveSizes } from '../train/sizes.js';

/** The objective line to print; throws the one-line error of a conflicting size or objective. */
export function preflightTrainRun(modelPath: string, train: { batch?: number; seq?: number; objective?: ObjectiveKind }): string {
  const loaded = readModel(modelPath);
  const g = loaded.model.graph!;
  const objective = objectiveOfModel(loaded.model, { requested: train.objective, readoutOutput: analyzeModel(loaded.model, loaded.baseDir).logits?.output });
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((v) => !inits.has(v.name)).map((v) => ({ name: v.name, elemType: valueInfoElemType(v) ?? DataType.FLOAT, shape: findValueShape(g, v.name) ?? [] }));
  resolveSizes(inputs, objective.tokenInput, train, EXPERIMENT_SIZE_DEFAULTS);
  return describeObjective(objective);
}
