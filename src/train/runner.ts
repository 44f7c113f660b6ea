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
import { copyWith, type Dim } from './graph-util.js';
import { ortFailure } from './ort-errors.js';
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
    // Failures come back once, as one line (ortFailure): onnxruntime's own error log would repeat them.
    ep: init.ep ?? 'cpu', threads: init.threads, warn: init.warn, say: init.say, label: 'the train-step graph', logSeverityLevel: 4,
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
      let out: ort.InferenceSession.ReturnType;
      try {
        out = await session.run(all, fetches);
      } catch (e) {
        throw ortFailure(e, `train step ${steps + 1}`);
      }
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


// Feeds of a token batch moved to feeds.ts (one place fills every model input); re-exported for callers of the runner.
export { feedsForBatch, findTokenInput } from './feeds.js';
