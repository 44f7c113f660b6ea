/**
 * The train-step graph: forward + loss + backward + optimizer update as ONE ai.onnx graph that a plain
 * onnxruntime inference session runs (docs/notes/autodiff.md §0, §4; DESIGN.md "Training-ready").
 *
 *   inputs:  model inputs, `targets`, every trainable parameter (the LR groups; no longer initializers),
 *            optimizer state (`P.m`, `P.v` for AdamW; `P.momentum` for SGD with momentum),
 *            `step` (int64 scalar t ≥ 1, AdamW only), `lr` (float scalar base LR)
 *   outputs: `loss`, `P.new` per parameter, `P.m.new`/`P.v.new` (or `P.momentum.new`), extra forward values
 *
 * Masks stay initializers (bit-packed ones are unpacked again for the optimizer's Where, ../passes/mask-storage.ts;
 * onnxruntime folds both unpacks into constants). The eval graph is forward + loss (inputs: model inputs, targets, parameters).
 */
import { create } from '@bufbuild/protobuf';
import {
  GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, StringStringEntryProtoSchema, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from 'onnx-buf';
import { UserInputError } from '../errors.js';
import { tensorValueInfo } from '../onnx/build.js';
import { DataType } from '../onnx/dtype.js';
import { NameAuthority, opsetVersion } from '../onnx/ir.js';
import { normalizeForTraining, type DefusedNode } from '../normalize/index.js';
import { buildBackward } from './autodiff.js';
import { Emitter } from './emit.js';
import { topologicalOrder } from '../onnx/topo.js';
import { findElemType } from '../shapes/index.js';
import { copyWith, findValueShape, pruneToOutputs, valueInfoElemType, type Dim } from './graph-util.js';
import { inferElemTypes } from './infer-types.js';
import { checkCudaKernels, type KernelReport } from '../runtime/kernels.js';
import { emitLoss, type LossKind } from './loss.js';
import { findBitTable, isPackedMask, MaskUseBuilder } from '../passes/mask-storage.js';
import { chooseObjective, type Objective, type ObjectiveKind } from './objective.js';
import { DEFAULT_OPTIMIZER, emitOptimizer, type OptimizerConfig, type ParamToUpdate, type StateSlot } from './optimizer.js';
import type { LrGroup, LrGroupsFile } from './types.js';

/** metadata_props key of the train graph holding its TrainIO (JSON): which input/output is what. */
export const TRAIN_IO_KEY = 'supar.train_io';

export interface TrainStepOptions {
  /** The objective (src/train/objective.ts): sets the loss and the output it reads. Wins over `loss`/`logits`. */
  objective?: Objective;
  /** Loss without an objective; when both are absent the objective is chosen from the model (`chooseObjective`). */
  loss?: LossKind;
  /** Model output the loss reads; detected when omitted (see `detectOutput`). */
  logits?: string;
  /** Cross-entropy target value to skip (default −100, as PyTorch). */
  ignoreIndex?: number;
  /** LM: targets are the input ids, shifted in the graph (see LossSpec.nextToken). Default false. */
  nextToken?: boolean;
  optimizer: Partial<OptimizerConfig> & { kind: OptimizerConfig['kind'] };
  /** Forward values to expose as outputs of the train graph (e.g. block activations). */
  extraOutputs?: string[];
  /** Also output each parameter's gradient as `P.grad` (tests, debugging). */
  exposeGradients?: boolean;
}

export interface TrainParamIO {
  name: string;
  shape: number[];
  /** Graph output holding the updated value. */
  updated: string;
  /** Graph output holding the gradient (only with exposeGradients). */
  grad?: string;
  mask: string | null;
  group: LrGroup;
}

export interface TrainIO {
  /** The original model's inputs the caller feeds (token ids, …), with element type and shape. */
  modelInputs: { name: string; elemType: number; shape: Dim[] }[];
  targets: { name: string; elemType: number; shape: Dim[] };
  params: TrainParamIO[];
  state: StateSlot[];
  step?: string;
  lr: string;
  loss: string;
  extras: string[];
  /** Model output the loss reads. */
  output: string;
  lossKind: LossKind;
  /** What the loss trains for (the data the host feeds follows it). */
  objective: ObjectiveKind;
  nextToken: boolean;
  optimizer: OptimizerConfig;
}

export interface TrainStep {
  train: ModelProto;
  eval: ModelProto;
  io: TrainIO;
  kernelReport: { train: KernelReport; eval: KernelReport };
  /** Opset the model had, and the rewrites that raised it to 13 (empty when it was ≥ 13). */
  opsetUpgrade: { from: number; changes: string[] };
  /** onnxruntime contrib nodes replaced by ai.onnx ops before differentiation (src/normalize). */
  defused: DefusedNode[];
}

export function buildTrainStep(model: ModelProto, baseDir: string, groups: LrGroupsFile, opts: TrainStepOptions): TrainStep {
  void baseDir; // parameters become inputs; masks and constants keep their storage (the runner inlines external data)
  if (!model.graph) throw new UserInputError('model has no graph');
  const optimizer: OptimizerConfig = { ...DEFAULT_OPTIMIZER, weightDecayMode: groups.weight_decay_mode ?? 'base_lr', ...opts.optimizer };
  const names = new NameAuthority(model);
  const normalized = normalizeForTraining(model, names);
  const upgrade = normalized.opsetUpgrade;
  // The autodiff and the pruning walk nodes in list order: an unsorted file (which onnxruntime accepts) would
  // leave a node reading a value whose producer was dropped or differentiated too late.
  const graph = sortedGraph(upgrade.model.graph!);
  const opset = opsetVersion(upgrade.model)!;
  const e = new Emitter(names, opset, 'train');

  const params = resolveParams(graph, groups);
  const paramNames = params.map((p) => p.group.name);
  const modelInputs = graph.input.filter((v) => !paramNames.includes(v.name) && !graph.initializer.some((t) => t.name === v.name));
  const objective = opts.objective ?? (opts.loss ? undefined : chooseObjective(graph, modelInputs, { output: opts.logits }));
  const lossKind: LossKind = objective?.loss ?? opts.loss!;
  const output = objective?.output ?? opts.logits ?? detectOutput(graph, lossKind);
  const outShape = findValueShape(graph, output);
  const targets = targetsInput(graph, names, lossKind, output, outShape, modelInputs);
  const lossVals = emitLoss(e, {
    kind: lossKind, output, outputRank: outShape?.length ?? targets.shape.length + 1, targets: targets.name,
    targetsInt32: targets.elemType === DataType.INT32, ignoreIndex: opts.ignoreIndex ?? -100, nextToken: opts.nextToken ?? false,
  });
  const lossNodes = e.nodes.splice(0);
  const backward = buildBackwardFromSeed(graph, output, lossVals.dOutput, paramNames, names, opset);

  const lr = names.fresh('lr');
  const step = optimizer.kind === 'adamw' ? names.fresh('step') : undefined;
  const maskUses = new MaskUseBuilder(names, opset, findBitTable(graph.initializer));
  const toUpdate: ParamToUpdate[] = params.map((p) => ({
    name: p.group.name, grad: backward.grads.get(p.group.name) ?? zeroGrad(e, p.group.name), group: p.group,
    maskBool: p.group.mask ? maskAsBool(e, graph, p.group.mask, p.group.name, p.shape, maskUses) : undefined,
  }));
  const upd = emitOptimizer(e, toUpdate, optimizer, lr, step);
  const io: TrainIO = {
    modelInputs: modelInputs.map((v) => ({ name: v.name, elemType: valueInfoElemType(v) ?? DataType.FLOAT, shape: findValueShape(graph, v.name) ?? [] })),
    targets, state: upd.state, step, lr, loss: lossVals.loss, extras: opts.extraOutputs ?? [], output,
    lossKind, objective: objective?.kind ?? legacyObjective(lossKind, outShape), nextToken: opts.nextToken ?? false, optimizer,
    params: params.map((p, i) => ({
      name: p.group.name, shape: p.shape, updated: upd.newParams.get(p.group.name)!, mask: p.group.mask, group: p.group,
      grad: opts.exposeGradients ? toUpdate[i]!.grad : undefined,
    })),
  };
  const inits = [...graph.initializer.filter((t) => !paramNames.includes(t.name)), ...backward.initializers, ...e.initializers, ...maskUses.initializers];
  const sig = signatures(graph, io, modelInputs);
  const train = modelWithGraph(upgrade.model, assembleGraph(graph, [...graph.node, ...lossNodes, ...backward.nodes, ...e.nodes], inits, sig.trainInputs, sig.trainOutputs, 'train_step'));
  const evalModel = modelWithGraph(upgrade.model, assembleGraph(graph, [...graph.node, ...lossNodes], inits, sig.evalInputs, sig.evalOutputs, 'eval'));
  train.metadataProps = [...model.metadataProps.filter((p) => p.key !== TRAIN_IO_KEY), create(StringStringEntryProtoSchema, { key: TRAIN_IO_KEY, value: JSON.stringify(io) })];
  return {
    train, eval: evalModel, io, kernelReport: { train: checkCudaKernels(train), eval: checkCudaKernels(evalModel) },
    opsetUpgrade: { from: upgrade.from, changes: upgrade.changes },
    defused: normalized.defused,
  };
}

function sortedGraph(g: GraphProto): GraphProto {
  const order = topologicalOrder(g.node);
  return order === g.node ? g : copyWith(GraphProtoSchema, g, { node: order });
}

/** Graph inputs and outputs of the train and eval graphs, in the documented order. */
function signatures(graph: GraphProto, io: TrainIO, modelInputs: ValueInfoProto[]) {
  const floatVI = (name: string, dims: Dim[]) => tensorValueInfo(name, DataType.FLOAT, dims);
  const shapeOf = (param: string) => io.params.find((p) => p.name === param)!.shape;
  const types = inferElemTypes(graph);
  const extras = io.extras.map((x) => valueOrTyped(graph, x, types));
  const lossVI = tensorValueInfo(io.loss, DataType.FLOAT, []);
  const evalInputs = [...modelInputs, tensorValueInfo(io.targets.name, io.targets.elemType, io.targets.shape), ...io.params.map((p) => floatVI(p.name, p.shape))];
  return {
    evalInputs,
    evalOutputs: [lossVI, ...extras],
    trainInputs: [...evalInputs, ...io.state.map((s) => floatVI(s.input, shapeOf(s.param))),
      ...(io.step ? [tensorValueInfo(io.step, DataType.INT64, [])] : []), tensorValueInfo(io.lr, DataType.FLOAT, [])],
    trainOutputs: [lossVI, ...io.params.map((p) => floatVI(p.updated, p.shape)), ...io.state.map((s) => floatVI(s.output, shapeOf(s.param))),
      ...extras, ...io.params.filter((p) => p.grad).map((p) => floatVI(p.grad!, p.shape))],
  };
}

function modelWithGraph(model: ModelProto, graph: GraphProto): ModelProto {
  return copyWith(ModelProtoSchema, model, { graph, opsetImport: model.opsetImport.map((o) => copyWith(OperatorSetIdProtoSchema, o)) });
}

interface ResolvedParam {
  group: LrGroup;
  shape: number[];
}

function resolveParams(graph: GraphProto, groups: LrGroupsFile): ResolvedParam[] {
  return groups.groups.map((group) => {
    const t = graph.initializer.find((x) => x.name === group.name);
    if (!t) throw new UserInputError(`LR group '${group.name}' names no initializer of the model; regenerate the LR groups for this model`);
    if (t.dataType !== DataType.FLOAT) {
      throw new UserInputError(`parameter '${group.name}' is ${t.dataType === DataType.FLOAT16 ? 'float16' : `type ${t.dataType}`}; training needs float32 parameters (convert the model to fp32)`);
    }
    if (group.mask && !graph.initializer.some((x) => x.name === group.mask)) {
      throw new UserInputError(`LR group '${group.name}' names mask '${group.mask}', which is not an initializer of the model`);
    }
    return { group, shape: t.dims.map(Number) };
  });
}

/**
 * The output the loss reads: the single float output, else the float output named `logits`, else the float
 * output whose last dimension is largest (cross-entropy: the class axis).
 */
export function detectOutput(graph: GraphProto, loss: LossKind): string {
  const floats = graph.output.filter((v) => findElemType(graph, v.name) === DataType.FLOAT);
  if (floats.length === 1) return floats[0]!.name;
  const named = floats.find((v) => /(^|[./_])logits$/.test(v.name));
  if (named) return named.name;
  const lastDim = (v: ValueInfoProto) => { const s = findValueShape(graph, v.name); const d = s?.[s.length - 1]; return typeof d === 'number' ? d : 0; };
  const best = loss === 'cross_entropy' ? [...floats].sort((a, b) => lastDim(b) - lastDim(a))[0] : undefined;
  if (best && lastDim(best) > 0) return best.name;
  throw new UserInputError(`cannot tell which output is the ${loss === 'mse' ? 'prediction' : 'logits'} (float outputs: ${floats.map((v) => v.name).join(', ') || 'none'}); pass --logits NAME`);
}

/** The objective a plain `loss` option means: MSE, class CE on [b, C] logits, else next-token CE. */
function legacyObjective(loss: LossKind, outShape: Dim[] | undefined): ObjectiveKind {
  if (loss === 'mse') return 'mse';
  return outShape?.length === 2 ? 'class' : 'next-token';
}

function targetsInput(graph: GraphProto, names: NameAuthority, loss: LossKind, output: string, outShape: Dim[] | undefined, modelInputs: ValueInfoProto[]): TrainIO['targets'] {
  const name = names.fresh('targets');
  if (loss === 'mse') return { name, elemType: DataType.FLOAT, shape: outShape ?? [] };
  if (outShape) return { name, elemType: DataType.INT64, shape: outShape.slice(0, -1) };
  const ids = modelInputs.find((v) => valueInfoElemType(v) === DataType.INT64 || valueInfoElemType(v) === DataType.INT32);
  if (ids) return { name, elemType: DataType.INT64, shape: findValueShape(graph, ids.name) ?? [] };
  throw new UserInputError(`output '${output}' has a shape the inference cannot determine, so the targets cannot be shaped; pass --logits NAME to choose another output`);
}

function valueOrTyped(graph: GraphProto, name: string, types: Map<string, number>): ValueInfoProto {
  if (!types.has(name)) throw new UserInputError(`extra output '${name}' is not a value of the model`);
  return tensorValueInfo(name, types.get(name)!, findValueShape(graph, name));
}

/** The mask as a BOOL value of the parameter's shape: the initializer itself, a Cast of 0/1 bytes, or the unpacked bits. */
function maskAsBool(e: Emitter, graph: GraphProto, mask: string, param: string, shape: number[], maskUses: MaskUseBuilder): string {
  const t = graph.initializer.find((x) => x.name === mask)!;
  if (t.dataType === DataType.BOOL) return mask;
  if (!isPackedMask(t, shape)) return e.op('Cast', [mask], `${mask}.bool`, { to: DataType.BOOL });
  const entries = e.fresh(`${mask}.entries`);
  e.nodes.push(...maskUses.nodes(t, param, shape, DataType.FLOAT, entries));
  return e.op('Cast', [entries], `${mask}.bool`, { to: DataType.BOOL });
}

/** A parameter the loss does not depend on gets a zero gradient (its update is then decay only). */
function zeroGrad(e: Emitter, param: string): string {
  return e.op('Mul', [param, e.scalar(0)], `${param}.grad_zero`);
}

/** Reverse-mode pass seeded with ∂loss/∂output = `seed` (a vector-Jacobian product from the loss head). */
function buildBackwardFromSeed(graph: GraphProto, output: string, seed: string, wrt: string[], names: NameAuthority, opset: number): { nodes: NodeProto[]; initializers: TensorProto[]; grads: Map<string, string> } {
  return buildBackward(graph, { loss: output, wrt, names, opset, seeds: new Map([[output, seed]]) });
}

function assembleGraph(graph: GraphProto, nodes: NodeProto[], inits: TensorProto[], inputs: ValueInfoProto[], outputs: ValueInfoProto[], name: string): GraphProto {
  const pruned = pruneToOutputs(nodes, inits, outputs.map((v) => v.name));
  return copyWith(GraphProtoSchema, graph, { name: `${graph.name || 'model'}_${name}`, node: pruned.nodes, initializer: pruned.initializers, input: inputs, output: outputs, valueInfo: [] });
}
