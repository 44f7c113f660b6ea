/**
 * Runs a train-step graph with onnxruntime-node: parameters and optimizer state live as ORT tensors between
 * steps (each step's `P.new` outputs are the next step's `P` inputs), and `save` writes the trained
 * weights back into the original forward model (masks and every other field untouched).
 *
 * Execution provider: 'cpu'; 'cuda' needs onnxruntime-node's CUDA provider libraries, which the npm
 * package downloads only on request (shared/notes/deps.md §1): asking for CUDA without them is an error
 * naming the install command; 'auto' uses CUDA when it loads and falls back to CPU with a warning.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphProtoSchema, ModelProtoSchema, TensorProtoSchema, type ModelProto } from 'onnx-buf';
import { ExitCode, InvariantError, UserInputError } from '../errors.js';
import { encodeModel, readModel, writeModel, type WrittenFiles } from '../onnx/codec.js';
import { isExternal } from '../onnx/external.js';
import { setTensorFloats, tensorRawBytes, tensorToFloat32 } from '../onnx/tensor.js';
import { copyWith, type Dim } from './graph-util.js';
import { ortFailure } from './ort-errors.js';
import { TRAIN_IO_KEY, type TrainIO } from './train-step.js';

export type EpChoice = 'cpu' | 'cuda' | 'auto';

export const CUDA_INSTALL_HINT = 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node (needs CUDA 12 and cuDNN 9)';

export interface TrainerInit {
  /** The train-step graph (as built by buildTrainStep), or the path of a written one (`--emit-train`). */
  train: ModelProto | string;
  /** Its I/O names (default: read from the graph's `supar.train_io` metadata). */
  io?: TrainIO;
  /** The forward (transformed) model: initial parameter values, and the target of `save`. */
  forward: { model: ModelProto; baseDir: string };
  ep?: EpChoice;
  /** Intra-op threads (default: onnxruntime's choice). */
  threads?: number;
  /** Receives one-line warnings (default: stderr). */
  warn?: (message: string) => void;
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
  readonly ep: 'cpu' | 'cuda';
  /** Steps taken so far. */
  readonly steps: number;
  step(feeds: Feeds, lr: number): Promise<StepResult>;
  /** Current value of a parameter. */
  param(name: string): Float32Array;
  /** Writes the forward model with the current weights. */
  save(file: string): WrittenFiles;
  release(): Promise<void>;
}

export async function createTrainer(init: TrainerInit): Promise<Trainer> {
  const trainModel = typeof init.train === 'string' ? readModel(init.train).model : init.train;
  const io = init.io ?? trainIOFromMetadata(trainModel, typeof init.train === 'string' ? init.train : 'train graph');
  const bytes = encodeModel(withInlinedExternalData(trainModel, typeof init.train === 'string' ? path.dirname(path.resolve(init.train)) : init.forward.baseDir));
  const { session, ep } = await openSession(bytes, init.ep ?? 'cpu', init.threads, init.warn ?? ((m) => process.stderr.write(`warning: ${m}\n`)));
  const state = new Map<string, ort.Tensor>();
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
  const fetches = [io.loss, ...io.params.map((p) => p.updated), ...io.state.map((s) => s.output), ...io.extras,
    ...io.params.flatMap((p) => (p.grad ? [p.grad] : []))];
  let steps = 0;

  return {
    ep,
    get steps() { return steps; },
    async step(feeds: Feeds, lr: number): Promise<StepResult> {
      const all: Feeds = { ...feeds, [io.lr]: new ort.Tensor('float32', Float32Array.of(lr), []) };
      if (io.step) all[io.step] = new ort.Tensor('int64', BigInt64Array.of(BigInt(steps + 1)), []);
      for (const [name, t] of state) all[name] = t;
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
      const t = state.get(name);
      if (!t || !io.params.some((p) => p.name === name)) throw new InvariantError(`no trained parameter named '${name}'`);
      return t.data as Float32Array;
    },
    save(file: string): WrittenFiles {
      const values = new Map(io.params.map((p) => [p.name, state.get(p.name)!.data as Float32Array]));
      return writeModel(withWeights(init.forward.model, values), file, { sourceBaseDir: init.forward.baseDir });
    },
    release: () => session.release(),
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

async function openSession(bytes: Uint8Array, ep: EpChoice, threads: number | undefined, warn: (m: string) => void): Promise<{ session: ort.InferenceSession; ep: 'cpu' | 'cuda' }> {
  // Failures are reported once, as one line (ortFailure): onnxruntime's own error log would repeat them.
  const base: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', logSeverityLevel: 4, ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}) };
  if (ep !== 'cpu') {
    const missing = missingCudaLibraries();
    if (missing && ep === 'cuda') throw new UserInputError(`--ep cuda: onnxruntime-node's CUDA provider is not installed (${missing}); install it with ${CUDA_INSTALL_HINT}, or use --ep cpu`, ExitCode.runtime);
    if (missing) warn(`CUDA provider not installed (${missing}); training on CPU (install: ${CUDA_INSTALL_HINT})`);
    else {
      try {
        return { session: await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cuda', 'cpu'] }), ep: 'cuda' };
      } catch (e) {
        const why = firstLine((e as Error).message);
        if (ep === 'cuda') throw new UserInputError(`--ep cuda: onnxruntime could not load the CUDA provider (${why}); check CUDA 12 and cuDNN 9 are on the library path (install: ${CUDA_INSTALL_HINT}), or use --ep cpu`, ExitCode.runtime);
        warn(`CUDA provider failed to load (${why}); training on CPU`);
      }
    }
  }
  try {
    return { session: await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cpu'] }), ep: 'cpu' };
  } catch (e) {
    throw ortFailure(e, 'onnxruntime rejected the train-step graph');
  }
}

/** Undefined when the CUDA provider .so files are present, else which file is missing. */
export function missingCudaLibraries(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `no CUDA build of onnxruntime-node for ${process.platform}/${process.arch}`;
  let dir: string;
  try {
    const req = createRequire(import.meta.url);
    dir = path.join(path.dirname(req.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', 'linux', 'x64');
  } catch {
    return 'onnxruntime-node not found';
  }
  for (const lib of ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']) {
    if (!fs.existsSync(path.join(dir, lib))) return `no ${lib} in ${dir}`;
  }
  return undefined;
}

function firstLine(s: string): string {
  return (s.split('\n').find((l) => l.trim()) ?? s).trim().slice(0, 300);
}



// Feeds of a token batch moved to feeds.ts (one place fills every model input); re-exported for callers of the runner.
export { feedsForBatch, findTokenInput } from './feeds.js';
