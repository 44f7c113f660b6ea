/**
 * Runs a train-step graph with onnxruntime-node: parameters and optimizer state live as ORT tensors between
 * steps (each step's `P.new` outputs are the next step's `P` inputs), and `save` writes the trained
 * weights back into the original forward model (masks and every other field untouched).
 *
 * The session comes from the runtime seam (src/runtime/): `ep` 'cpu', 'cuda', 'webgpu' or 'auto'. On a GPU
 * provider the parameters and moments stay on the device between steps ('gpu-buffer' outputs fed back as
 * inputs); only the loss (and extras/gradients when asked for) come back each step. They are read back
 * for `save`, `readParam` and `download`.
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphProtoSchema, ModelProtoSchema, TensorProtoSchema, type ModelProto } from 'onnx-buf';
import { ExitCode, InvariantError, UserInputError } from '../errors.js';
import { encodeModel, readModel, type WrittenFiles } from '../onnx/codec.js';
import { writeModelChecked } from '../onnx/load-check.js';
import { isExternal } from '../onnx/external.js';
import { setTensorFloats, tensorRawBytes, tensorToFloat32 } from '../onnx/tensor.js';
import { DataType } from '../onnx/dtype.js';
import { DeviceState } from '../runtime/device-state.js';
import type { Ep, EpChoice } from '../runtime/providers.js';
import { openSession } from '../runtime/session.js';
import type { TokenBatch } from './data.js';
import { copyWith, type Dim } from './graph-util.js';
import { TRAIN_IO_KEY, type TrainIO } from './train-step.js';

export type { Ep, EpChoice } from '../runtime/providers.js';
export { CUDA_INSTALL_HINT, missingCudaLibraries } from '../runtime/providers.js';

export interface TrainerInit {
  /** The train-step graph (as built by buildTrainStep), or the path of a written one (`--emit-train`). */
  train: ModelProto | string;
  /** Its I/O names (default: read from the graph's `supar.train_io` metadata). */
  io?: TrainIO;
  /** The forward (transformed) model: initial parameter values, and the target of `save`. */
  forward: { model: ModelProto; baseDir: string };
  ep?: EpChoice;
  /** Keep parameters and moments on the device between steps (default true; ignored on CPU). */
  stateOnDevice?: boolean;
  /** Intra-op threads (default: onnxruntime's choice). */
  threads?: number;
  /** Receives one-line warnings (default: stderr). */
  warn?: (message: string) => void;
  /** Receives one-line notes, e.g. the provider `auto` chose (default: stderr). */
  say?: (message: string) => void;
}

export interface StepResult {
  loss: number;
  /** The `extraOutputs` values of this step (forward values before the update). */
  extras: Record<string, ort.Tensor>;
  /** Gradients, when the graph exposes them. */
  grads: Record<string, Float32Array>;
}

/** One batch: a tensor per model input (by name) plus the targets. */
export type Feeds = Record<string, ort.Tensor>;

export interface Trainer {
  readonly ep: Ep;
  /** Whether parameters and moments stay on the device between steps. */
  readonly stateOnDevice: boolean;
  /** Steps taken so far. */
  readonly steps: number;
  step(feeds: Feeds, lr: number): Promise<StepResult>;
  /** Current value of a parameter held on the host (CPU, or state not on the device); else use readParam. */
  param(name: string): Float32Array;
  /** Current value of a parameter, read back from the device when it lives there. */
  readParam(name: string): Promise<Float32Array>;
  /** Writes the forward model with the trained weights (read back from the device first; loaded by onnxruntime before the rename). */
  save(file: string): Promise<WrittenFiles>;
  release(): Promise<void>;
}

export async function createTrainer(init: TrainerInit): Promise<Trainer> {
  const trainModel = typeof init.train === 'string' ? readModel(init.train).model : init.train;
  const io = init.io ?? trainIOFromMetadata(trainModel, typeof init.train === 'string' ? init.train : 'train graph');
  const bytes = encodeModel(withInlinedExternalData(trainModel, typeof init.train === 'string' ? path.dirname(path.resolve(init.train)) : init.forward.baseDir));
  const stateOutputs = [...io.params.map((p) => p.updated), ...io.state.map((s) => s.output)];
  const { session, ep, deviceOutputs } = await openSession(bytes, {
    ep: init.ep ?? 'cpu', threads: init.threads, warn: init.warn, say: init.say, label: 'the train-step graph',
    deviceOutputs: init.stateOnDevice === false ? [] : stateOutputs,
  });
  const state = new DeviceState(ep);
  const initializers = new Map(init.forward.model.graph?.initializer.map((t) => [t.name, t]) ?? []);
  for (const p of io.params) {
    const t = initializers.get(p.name);
    if (!t) throw new UserInputError(`parameter '${p.name}' is not an initializer of the forward model; pass the model the train graph was built from`);
    state.set(p.name, new ort.Tensor('float32', tensorToFloat32(t, init.forward.baseDir), p.shape));
  }
  for (const s of io.state) {
    const shape = io.params.find((p) => p.name === s.param)!.shape;
    state.set(s.input, new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), shape));
  }
  const fetches = [io.loss, ...stateOutputs, ...io.extras, ...io.params.flatMap((p) => (p.grad ? [p.grad] : []))];
  const isParam = new Set(io.params.map((p) => p.name));
  const readAll = async () => new Map(await Promise.all(io.params.map(async (p) => [p.name, await state.read(p.name)] as const)));
  let steps = 0;

  return {
    ep,
    stateOnDevice: deviceOutputs.size > 0,
    get steps() { return steps; },
    async step(feeds: Feeds, lr: number): Promise<StepResult> {
      const all: Feeds = { ...feeds, [io.lr]: new ort.Tensor('float32', Float32Array.of(lr), []) };
      if (io.step) all[io.step] = new ort.Tensor('int64', BigInt64Array.of(BigInt(steps + 1)), []);
      for (const [name, t] of state.entries()) all[name] = t;
      const out = await session.run(all, fetches);
      const loss = (out[io.loss]!.data as Float32Array)[0]!;
      for (const p of io.params) state.set(p.name, out[p.updated]!);
      for (const s of io.state) state.set(s.input, out[s.output]!);
      steps++;
      const extras: Record<string, ort.Tensor> = {};
      for (const x of io.extras) extras[x] = out[x]!;
      const grads: Record<string, Float32Array> = {};
      for (const p of io.params) if (p.grad) grads[p.name] = out[p.grad]!.data as Float32Array;
      return { loss, extras, grads };
    },
    param(name: string): Float32Array {
      if (!isParam.has(name)) throw new InvariantError(`no trained parameter named '${name}'`);
      if (state.onDevice(name)) throw new InvariantError(`parameter '${name}' lives on the ${ep} device; read it with await trainer.readParam(name)`);
      return state.get(name).data as Float32Array;
    },
    async readParam(name: string): Promise<Float32Array> {
      if (!isParam.has(name)) throw new InvariantError(`no trained parameter named '${name}'`);
      return state.read(name);
    },
    async save(file: string): Promise<WrittenFiles> {
      const values = io.params.some((p) => state.onDevice(p.name)) ? await readAll() : new Map(io.params.map((p) => [p.name, state.get(p.name).data as Float32Array]));
      return writeModelChecked(withWeights(init.forward.model, values), file, { sourceBaseDir: init.forward.baseDir, graph: 'trained model' });
    },
    async release() {
      await state.release();
      await session.release();
    },
  };
}

/** The TrainIO stored by buildTrainStep in the train graph's metadata_props. */
export function trainIOFromMetadata(model: ModelProto, label: string): TrainIO {
  const entry = model.metadataProps.find((p) => p.key === TRAIN_IO_KEY);
  if (!entry) throw new UserInputError(`${label}: no ${TRAIN_IO_KEY} metadata; it is not a train-step graph written by supar-transform (use --emit-train)`);
  return JSON.parse(entry.value) as TrainIO;
}

/** A copy of `model` whose named initializers hold `values` (other tensors shared, not copied). */
export function withWeights(model: ModelProto, values: Map<string, Float32Array>): ModelProto {
  const g = model.graph;
  if (!g) throw new InvariantError('model has no graph');
  const initializer = g.initializer.map((t) => {
    const v = values.get(t.name);
    if (!v) return t;
    const copy = copyWith(TensorProtoSchema, t);
    setTensorFloats(copy, v);
    return copy;
  });
  return copyWith(ModelProtoSchema, model, { graph: copyWith(GraphProtoSchema, g, { initializer }) });
}

/** Session bytes carry no folder, so tensors stored in external files are inlined first. */
function withInlinedExternalData(model: ModelProto, baseDir: string): ModelProto {
  const g = model.graph;
  if (!g || !g.initializer.some(isExternal)) return model;
  const initializer = g.initializer.map((t) => (isExternal(t) ? copyWith(TensorProtoSchema, t, { rawData: tensorRawBytes(t, baseDir) as Uint8Array<ArrayBuffer>, externalData: [], dataLocation: 0 }) : t));
  return copyWith(ModelProtoSchema, model, { graph: copyWith(GraphProtoSchema, g, { initializer }) });
}

/**
 * Feeds for one token batch: the model's integer token input gets `batch.input`, the targets
 * `batch.target` (or the input ids in next-token mode). Other model inputs are filled the way an LM export
 * expects them at training time: integer `*position*` inputs with 0..seq−1 per row, `*mask*` inputs with
 * ones, any other input with zeros; symbolic dims take the batch/seq sizes of the token input, and other
 * symbolic dims (e.g. past_seq_len) are 0.
 */
export function feedsForBatch(io: TrainIO, batch: TokenBatch): Feeds {
  const tokenInput = findTokenInput(io);
  const [bDim, sDim] = tokenInput.shape;
  const resolve = (d: Dim, i: number): number => {
    if (typeof d === 'number') return d;
    if (d === bDim) return batch.batch;
    if (d === sDim) return batch.seq;
    return i === 0 ? batch.batch : 0;
  };
  const feeds: Feeds = {};
  for (const v of io.modelInputs) {
    if (v === tokenInput) {
      feeds[v.name] = intTensor(v.elemType, batch.input, [batch.batch, batch.seq]);
      continue;
    }
    const dims = v.shape.map(resolve);
    const n = dims.reduce((a, b) => a * b, 1);
    const values = new Float64Array(n);
    if (/mask/i.test(v.name)) values.fill(1);
    else if (/position/i.test(v.name) && v.elemType !== DataType.FLOAT) for (let i = 0; i < n; i++) values[i] = i % batch.seq;
    feeds[v.name] = numericTensor(v.elemType, values, dims);
  }
  const targets = io.nextToken ? batch.input : batch.target;
  feeds[io.targets.name] = intTensor(io.targets.elemType, targets, [batch.batch, batch.seq]);
  return feeds;
}

/** The model input that takes token ids: the first integer input. */
export function findTokenInput(io: TrainIO): TrainIO['modelInputs'][number] {
  const v = io.modelInputs.find((x) => x.elemType === DataType.INT64 || x.elemType === DataType.INT32);
  if (!v) throw new UserInputError(`the model has no integer token input (inputs: ${io.modelInputs.map((x) => x.name).join(', ')}); token data needs one`);
  return v;
}

function intTensor(elemType: number, values: BigInt64Array, dims: number[]): ort.Tensor {
  if (elemType === DataType.INT32) return new ort.Tensor('int32', Int32Array.from(values, Number), dims);
  return new ort.Tensor('int64', values, dims);
}

function numericTensor(elemType: number, values: Float64Array, dims: number[]): ort.Tensor {
  switch (elemType) {
    case DataType.INT64: return new ort.Tensor('int64', BigInt64Array.from(values, (x) => BigInt(x)), dims);
    case DataType.INT32: return new ort.Tensor('int32', Int32Array.from(values), dims);
    case DataType.BOOL: return new ort.Tensor('bool', Uint8Array.from(values), dims);
    case DataType.FLOAT: return new ort.Tensor('float32', Float32Array.from(values), dims);
    default: throw new UserInputError(`model input of element type ${elemType} cannot be filled for training; only float32, int32, int64 and bool inputs are supported`);
  }
}
