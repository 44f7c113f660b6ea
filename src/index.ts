/**
 * supar-transform as a library (package.json "main"/"types"/"exports" → dist/src/index.js):
 *
 *     import { readModel, transform, writeTransformOutputs } from 'supar-transform';
 *     const result = await transform(readModel('model.onnx'), { density: 0.125, rules: 'supar' });
 *     await writeTransformOutputs(result, 'model.supar.onnx'); // each model is loaded by onnxruntime before it is renamed into place
 */
export { transform, writeTransformOutputs, outputPaths, defaultOutputPath, PASSES } from './transform.js';
export type { TransformOptions, TransformResult, WriteOutputsOptions, WrittenOutputs } from './transform.js';
export { buildPlan } from './plan.js';
export type { TransformPlan, ParamPlan, AttentionPlan, MaskMode, InitMode, DensityEntry, PlanOptions } from './plan.js';
export { buildReport, reportJson, summaryText, REPORT_FORMAT } from './report.js';
export type { TransformReport, TensorReport } from './report.js';
export { reportHtml } from './pages/report-page.js';
export { studyIndexHtml, readStudyFolder, writeStudyIndex } from './pages/study-index.js';
export { readModel, writeModel, decodeModel, encodeModel } from './onnx/codec.js';
export { checkLoads, writeModelChecked } from './onnx/load-check.js';
export type { LoadedModel, WriteOptions } from './onnx/codec.js';
export { UserInputError, UsageError, InvariantError, ExitCode } from './errors.js';
export type { Role, ParamInfo, AttentionSite, Analysis } from './analysis/types.js';
export type { RuleSet, RoleRule, Hyperparameters } from './rules/types.js';
export { DEFAULT_HYPERPARAMETERS } from './rules/types.js';
export { LR_GROUPS_FORMAT } from './train/types.js';
export type { LrGroup, LrGroupsFile } from './train/types.js';
export { VERSION } from './version.js';
export { buildTrainStep } from './train/train-step.js';
export type { TrainStep, TrainStepOptions, TrainIO } from './train/train-step.js';
export { buildBackward } from './train/autodiff.js';
// The runner loads onnxruntime-node's native library; import it from here only when training.
export { createTrainer, feedsForBatch } from './train/runner.js';
export type { Trainer, TrainerInit, StepResult, EpChoice } from './train/runner.js';
export { openSession, sessionOptions, DeviceState, softwareVulkanEnv, findWebGpuProblem, checkKernels, checkWebGpuKernels } from './runtime/index.js';
export type { Ep, RuntimeSession, SessionRequest, KernelReport } from './runtime/index.js';
export { chooseObjective, objectiveOfModel, describeObjective } from './train/objective.js';
export type { Objective, ObjectiveKind } from './train/objective.js';
export { openFeedSource } from './train/feeds.js';
export type { FeedOptions, FeedSource } from './train/feeds.js';
export { readNpyFile, writeNpyFile, parseNpy, encodeNpy } from './train/npy.js';
export type { NpyArray, NpyDtype } from './train/npy.js';
