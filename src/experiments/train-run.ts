/**
 * The real `TrainRun` behind the experiment commands: for each (rule set, density) the model is
 * transformed (`prepare`), a train-step graph is built with the block outputs as extra outputs
 * (src/train/train-step.ts), and onnxruntime runs it step by step (src/train/runner.ts). Data: next-token
 * batches of a token-input LM, from a text (byte-level) or random tokens, from a seeded stream that is
 * the same for every run, so runs differ only in rules, density and LR.
 */
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import type { BlockOutput } from '../analysis/types.js';
import { UserInputError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { findValueShape } from '../train/graph-util.js';
import { buildTrainStep, type TrainIO } from '../train/train-step.js';
import { createTrainer, type Feeds, type Trainer } from '../train/runner.js';
import type { LrGroupsFile } from '../train/types.js';
import type { Hyperparameters } from '../rules/types.js';
import { isDivergedLoss, lrAt, meanAbs, meanAbsUnmasked, type LrSchedule, type RunConfig, type RunResult, type TrainRun } from './run-types.js';
import { byteBatchStream, mulberry32, type TokenBatch } from './text-corpus.js';

export interface PreparedModel {
  model: ModelProto;
  baseDir: string;
  lrGroups: LrGroupsFile;
  /** Block outputs to record (coord check). */
  blocks: BlockOutput[];
}

/** Transforms the user's model for one run (rules, density, seed → model, LR groups, blocks). */
export type PrepareModel = (rules: string, density: number, seed: number) => Promise<PreparedModel>;

export interface OnnxTrainRunOptions {
  modelPath: string;
  batch: number;
  /** Sequence length; default: the model's fixed input length, else 32. */
  seq?: number;
  /** Text file tokenized as bytes (needs a vocabulary of at least 256). */
  dataFile?: string;
  /** Text already in memory (the transfer experiment's corpus); wins over dataFile. */
  textBytes?: Uint8Array;
  /** Reuse one batch for every step (mup's coord check `fix_data`), else a fresh batch per step. */
  fixedBatch: boolean;
  widthMult?: number;
  /** Base model for m_d and m_L (several-model studies: the first model, or --base-model). */
  baseModelPath?: string;
  /** Hyperparameters per rule-set id for the default transform (e.g. the paper's tuned σ_base, α_input, α_output). */
  hyperparameters?: Record<string, Partial<Hyperparameters>>;
  /** Intra-op threads for onnxruntime (default 1: runs are many and small). */
  threads?: number;
  /** Default: the SµPar transform of `modelPath` (prepare.ts). */
  prepare?: PrepareModel;
  /** LR schedule over the run's steps (default constant; the transfer experiment uses 'warmup-decay'). */
  schedule?: LrSchedule;
  /** Stop a run at its first diverged loss (`isDivergedLoss`; the rest of its losses are NaN). Default true. */
  stopOnDivergence?: boolean;
}

export async function makeOnnxTrainRun(opts: OnnxTrainRunOptions): Promise<TrainRun> {
  const prepare = opts.prepare ?? (await import('./prepare.js')).transformPreparer(opts.modelPath, { widthMult: opts.widthMult, baseModelPath: opts.baseModelPath, hyperparameters: opts.hyperparameters });
  const text = opts.textBytes ?? (opts.dataFile ? readText(opts.dataFile) : undefined);
  // A sweep trains many LRs per (rules, density): reuse the transformed model and train-step graph.
  let cached: { key: string; prepared: PreparedModel; ts: ReturnType<typeof buildTrainStep> } | undefined;
  return async (cfg: RunConfig): Promise<RunResult> => {
    const key = JSON.stringify([cfg.rules, cfg.density, cfg.seed, cfg.recordActivations]);
    if (cached?.key !== key) {
      const prepared = await prepare(cfg.rules, cfg.density, cfg.seed);
      const extraOutputs = cfg.recordActivations ? [...new Set(prepared.blocks.map((b) => b.value))] : [];
      const ts = buildTrainStep(prepared.model, prepared.baseDir, prepared.lrGroups, { loss: 'cross_entropy', optimizer: { kind: 'adamw' }, extraOutputs });
      cached = { key, prepared, ts };
    }
    const { prepared, ts } = cached;
    const blocks = cfg.recordActivations ? prepared.blocks : [];
    const trainer = await createTrainer({ train: ts.train, io: ts.io, forward: { model: prepared.model, baseDir: prepared.baseDir }, threads: opts.threads ?? 1 });
    try {
      const next = batchSource(ts.io, vocabSize(prepared.model, ts.io.output), opts, text, cfg.seed);
      return { ...(await runSteps(trainer, next, cfg, opts, blocks)), blocks };
    } finally {
      await trainer.release();
    }
  };
}

/** The training loop of one run: one batch per step (or the same one), the LR schedule, early stop on divergence. */
async function runSteps(trainer: Trainer, next: () => Feeds, cfg: RunConfig, opts: OnnxTrainRunOptions, blocks: BlockOutput[]): Promise<Omit<RunResult, 'blocks'>> {
  const logitValues = new Set(blocks.filter((b) => b.kind === 'attention_logits').map((b) => b.value));
  const losses: number[] = [];
  const activations: Record<string, number>[] = [];
  let batch = next();
  for (let t = 0; t < cfg.steps; t++) {
    if (t > 0 && !opts.fixedBatch) batch = next();
    const r = await trainer.step(batch, lrAt(opts.schedule ?? 'constant', cfg.lr, t, cfg.steps));
    losses.push(r.loss);
    if (cfg.recordActivations) {
      activations.push(Object.fromEntries(Object.entries(r.extras).map(([k, v]) => [k, (logitValues.has(k) ? meanAbsUnmasked : meanAbs)(v.data as Float32Array)])));
    }
    if (opts.stopOnDivergence !== false && isDivergedLoss(r.loss, losses[0])) {
      while (losses.length < cfg.steps) losses.push(NaN);
      break;
    }
  }
  return { losses, activations };
}

function readText(file: string): Uint8Array {
  try {
    return new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    throw new UserInputError(`--data ${file}: cannot read it (${(e as Error).message})`);
  }
}

/** The token-id input of the model and its fixed sequence length, if any. */
function tokenInput(io: TrainIO): { name: string; seq?: number } {
  const ints = io.modelInputs.filter((v) => v.elemType === DataType.INT64);
  if (ints.length !== 1 || io.modelInputs.length !== 1 || io.lossKind !== 'cross_entropy') {
    throw new UserInputError(`the experiment commands train token-input language models (one int64 input of token ids); this model's inputs are ${io.modelInputs.map((v) => v.name).join(', ')}`);
  }
  const seqDim = ints[0].shape[1];
  return { name: ints[0].name, seq: typeof seqDim === 'number' ? seqDim : undefined };
}

/** Vocabulary size: the last dimension of the logits output of the forward model. */
export function vocabSize(model: ModelProto, output: string): number {
  const v = findValueShape(model.graph!, output)?.at(-1);
  if (typeof v !== 'number' || v < 2) throw new UserInputError(`cannot tell the vocabulary size from output '${output}'; the experiment commands need logits with a fixed last dimension`);
  return v;
}

/**
 * Next-token batches as ORT feeds: a text window stream (byte tokens) when a text is given, else a
 * synthetic Markov language over the vocabulary; targets are the inputs shifted by one.
 */
function batchSource(io: TrainIO, vocab: number, opts: OnnxTrainRunOptions, text: Uint8Array | undefined, seed: number): () => Feeds {
  const input = tokenInput(io);
  const seq = input.seq ?? opts.seq ?? 32;
  let stream: () => TokenBatch;
  if (text) {
    if (vocab < 256) throw new UserInputError(`--data: byte-level text needs a vocabulary of at least 256 tokens; this model's logits have ${vocab}`);
    stream = byteBatchStream(text, opts.batch, seq, seed);
  } else {
    stream = markovTokenStream(vocab, opts.batch, seq, seed);
  }
  return () => {
    const b = stream();
    return {
      [input.name]: new ort.Tensor('int64', b.inputIds, b.dims),
      [io.targets.name]: new ort.Tensor('int64', b.targets, b.dims),
    };
  };
}

/**
 * A synthetic, learnable language: a first-order Markov chain over the vocabulary where each token has
 * 4 possible successors (drawn once from the seed), chosen uniformly. Best achievable loss: ln 4 ≈ 1.386;
 * a model that learns nothing stays near ln V.
 */
export function markovTokenStream(vocab: number, batch: number, seq: number, seed: number): () => TokenBatch {
  const table = mulberry32(seed ^ 0x7ab1e);
  const successors = Array.from({ length: vocab }, () => Array.from({ length: 4 }, () => Math.floor(table() * vocab)));
  const rand = mulberry32(seed ^ 0x5eed);
  return () => {
    const inputIds = new BigInt64Array(batch * seq);
    const targets = new BigInt64Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      let tok = Math.floor(rand() * vocab);
      for (let t = 0; t < seq; t++) {
        const next = successors[tok][Math.floor(rand() * 4)];
        inputIds[b * seq + t] = BigInt(tok);
        targets[b * seq + t] = BigInt(next);
        tok = next;
      }
    }
    return { inputIds, targets, dims: [batch, seq] };
  };
}
