/**
 * The feeds of one train step for any objective (src/train/objective.ts): every model input at its
 * concrete shape (src/train/sizes.ts) and the targets, from seeded synthetic data or the user's files.
 *
 * Inputs that are not data are filled the way a training forward expects them: `*mask*` ones,
 * integer `*position*` ids 0..s−1 per row, `*token_type*`/`*segment*` zeros, KV-cache `past*` inputs empty
 * (past length 0). Data inputs:
 *
 *   next-token  token windows (`--data`: synthetic:count|repeat|const, token files, text; src/train/data.ts),
 *               targets = the window shifted by one
 *   mlm         the same windows, 15 % of positions chosen (at least one per row): 80 % become the mask
 *               token, 10 % a random token, 10 % stay; targets = the original token there, −100 elsewhere
 *   class, mse  synthetic "clusters": each row has a latent class y (consecutive classes from a seeded start); float inputs are prototype_y + 0.5·noise
 *               (prototypes N(0, 1), one per class and input, drawn from the seed), token inputs mix tokens of
 *               a class-specific set of 4 with uniform ones; class targets are y, MSE targets are a second
 *               prototype_y of the output's shape. One batch is drawn and fed at every step (mup's
 *               coord check `fix_data`): a smoke run whose loss falls as soon as gradients flow, where fresh
 *               batches of a tiny model's near-uniform predictions would hide 5 steps of progress in noise.
 *               Files: `--data X.npy` (rows of the data input) with `--labels Y.npy` (class ids, or targets).
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { ExitCode, UsageError, UserInputError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { Rng } from '../passes/rng.js';
import { openBatchSource, type TokenBatch } from './data.js';
import { readNpyFile, type NpyArray } from './npy.js';
import { auxInputKind, findTokenInputName, type Objective } from './objective.js';
import type { Feeds } from './runner.js';
import { concreteShape, resolveSizes, type FeedSizes, type InputSpec, type SizeDefaults, type SizeFlags } from './sizes.js';
import type { TrainIO } from './train-step.js';

export interface FeedOptions extends SizeFlags {
  /** `--data`: a token/text file or synthetic:task (token objectives), or a .npy file of inputs. */
  data?: string;
  /** `--labels`: a .npy file of class ids (class) or targets (mse), one row per row of `--data`. */
  labels?: string;
  seed: number;
  defaults?: SizeDefaults;
  /** Rows of the token embedding (for synthetic tokens and MLM's random replacements); default: the logits' classes. */
  inputVocab?: number;
  /** MLM: the id that replaces masked tokens (default: the last id of the vocabulary). */
  maskToken?: number;
  /** Concrete targets shape when the graph leaves it symbolic (`probeOutputShape`); see `needsTargetShape`. */
  targetShape?: number[];
  /** Token batches for next-token/mlm instead of `--data` (the experiment commands' own streams). */
  tokenSource?: (sizes: { batch: number; seq: number }) => TokenSource;
}

export interface TokenSource {
  description: string;
  next(): TokenBatch;
}

export interface FeedSource {
  description: string;
  sizes: FeedSizes;
  next(): Feeds;
}

export const MLM_PROBABILITY = 0.15;
const CLUSTERS_FOR_MSE = 8;

export function openFeedSource(io: TrainIO, objective: Objective, opts: FeedOptions): FeedSource {
  const sizes = resolveSizes(io.modelInputs, objective.tokenInput, opts, opts.defaults);
  const tokenTargets = objective.kind === 'next-token' || objective.kind === 'mlm';
  const targetShape = tokenTargets ? sizes.inputShapes.get(objective.tokenInput!) : opts.targetShape ?? concreteShape(io.targets.shape, sizes);
  if (!targetShape) throw new UserInputError(`output '${objective.output}' [${objective.outputShape.join(', ')}] has dims the inputs do not determine; the targets need a fixed shape: re-export with static output shapes or pass --objective class`, ExitCode.unsupported);
  const aux = auxFeeds(io.modelInputs, sizes);
  const data = tokenTargets
    ? tokenData(io, objective, sizes, targetShape, opts)
    : opts.data !== undefined ? npyData(io, objective, sizes, targetShape, opts) : clusterData(io, objective, sizes, targetShape, opts);
  return { description: data.description, sizes, next: () => ({ ...aux, ...data.next() }) };
}

/**
 * Whether the targets' shape is not determined by the inputs (symbolic output dims under names the inputs
 * do not carry): the caller then measures it with `probeOutputShape` on `probeFeeds`.
 */
export function needsTargetShape(io: TrainIO, objective: Objective, opts: FeedOptions): boolean {
  if (objective.kind === 'next-token' || objective.kind === 'mlm' || opts.targetShape) return false;
  return concreteShape(io.targets.shape, resolveSizes(io.modelInputs, objective.tokenInput, opts, opts.defaults)) === undefined;
}

/** Model-input feeds for a probe run: the aux inputs and zero (or token 0) data inputs at the feed shapes. */
export function probeFeeds(io: TrainIO, objective: Objective, opts: FeedOptions): Feeds {
  const sizes = resolveSizes(io.modelInputs, objective.tokenInput, opts, opts.defaults);
  const feeds = auxFeeds(io.modelInputs, sizes);
  for (const v of others(io, [])) {
    const dims = sizes.inputShapes.get(v.name)!;
    feeds[v.name] = numericTensor(v, new Float64Array(dims.reduce((a, b) => a * b, 1)), dims);
  }
  return feeds;
}

/** Feed options with the targets' shape measured by one forward run when the graph leaves it symbolic. */
export async function withTargetShape(model: ModelProto, io: TrainIO, objective: Objective, opts: FeedOptions): Promise<FeedOptions> {
  if (!needsTargetShape(io, objective, opts)) return opts;
  const { probeOutputShape } = await import('./forward-probe.js');
  const shape = await probeOutputShape(model, probeFeeds(io, objective, opts), objective.output);
  return shape ? { ...opts, targetShape: shape } : opts;
}

interface DataSource { description: string; next(): Feeds }

/** Fixed feeds of the non-data inputs (the same every step). */
function auxFeeds(inputs: readonly InputSpec[], sizes: FeedSizes): Feeds {
  const feeds: Feeds = {};
  for (const v of inputs) {
    const kind = auxInputKind(v.name);
    if (!kind) continue;
    const dims = sizes.inputShapes.get(v.name)!;
    const n = dims.reduce((a, b) => a * b, 1);
    const values = new Float64Array(n);
    if (kind === 'mask') values.fill(1);
    else if (kind === 'position' && v.elemType !== DataType.FLOAT) { const s = dims.at(-1) ?? 1; for (let i = 0; i < n; i++) values[i] = i % s; }
    feeds[v.name] = numericTensor(v, values, dims);
  }
  return feeds;
}

function tokenData(io: TrainIO, objective: Objective, sizes: FeedSizes, targetShape: number[], opts: FeedOptions): DataSource {
  const tokenName = objective.tokenInput!;
  const input = io.modelInputs.find((v) => v.name === tokenName)!;
  const batch = sizes.batch;
  const seq = sizes.seq!;
  const vocab = objective.classes!;
  if (opts.labels !== undefined) throw new UsageError(`--labels ${opts.labels}: the ${objective.kind} objective takes its targets from the tokens; --labels is for --objective class or mse`);
  const source = opts.tokenSource?.({ batch, seq }) ?? openBatchSource(opts.data ?? 'synthetic:count', { batch, seq, seed: opts.seed, vocab });
  const extra = others(io, [tokenName])[0];
  if (extra) throw new UserInputError(`input '${extra.name}' is a second data input next to the tokens '${tokenName}'; the ${objective.kind} objective feeds one token input`, ExitCode.unsupported);
  if (objective.kind === 'next-token') {
    return { description: source.description, next: () => { const b = source.next(); return { [tokenName]: intTensor(input.elemType, b.input, [batch, seq]), [io.targets.name]: intTensor(io.targets.elemType, b.target, targetShape) }; } };
  }
  const rng = Rng.forTensor(opts.seed, 'train-data', 'mlm');
  const maskToken = opts.maskToken ?? vocab - 1;
  if (!Number.isInteger(maskToken) || maskToken < 0 || maskToken >= vocab) throw new UsageError(`--mask-token ${maskToken}: not a token id of the vocabulary of ${vocab}`);
  const randomVocab = opts.inputVocab ?? vocab;
  return {
    description: `${source.description}, ${MLM_PROBABILITY * 100} % masked with token ${maskToken}`,
    next: () => {
      const b = source.next();
      const { input: masked, target } = maskTokens(b.input, batch, seq, maskToken, randomVocab, rng);
      return { [tokenName]: intTensor(input.elemType, masked, [batch, seq]), [io.targets.name]: intTensor(io.targets.elemType, target, targetShape) };
    },
  };
}

/** BERT's masking (Devlin et al. 2019, §3.1): 15 % of positions, of which 80 % [MASK], 10 % random, 10 % kept; at least one per row. */
export function maskTokens(tokens: BigInt64Array, batch: number, seq: number, maskToken: number, vocab: number, rng: Rng): { input: BigInt64Array; target: BigInt64Array } {
  const input = BigInt64Array.from(tokens);
  const target = new BigInt64Array(tokens.length).fill(-100n);
  const choose = (i: number) => {
    target[i] = tokens[i]!;
    const u = rng.uniform53();
    if (u < 0.8) input[i] = BigInt(maskToken);
    else if (u < 0.9) input[i] = BigInt(Math.floor(rng.uniform53() * vocab));
  };
  for (let r = 0; r < batch; r++) {
    let any = false;
    for (let j = 0; j < seq; j++) {
      if (rng.uniform53() < MLM_PROBABILITY) { choose(r * seq + j); any = true; }
    }
    if (!any) choose(r * seq + Math.floor(rng.uniform53() * seq));
  }
  return { input, target };
}

/** Data inputs other than `except`: the non-aux inputs. */
function others(io: TrainIO, except: string[]): InputSpec[] {
  return io.modelInputs.filter((v) => !auxInputKind(v.name) && !except.includes(v.name));
}

function clusterData(io: TrainIO, objective: Objective, sizes: FeedSizes, targetShape: number[], opts: FeedOptions): DataSource {
  if (opts.labels !== undefined) throw new UsageError(`--labels ${opts.labels}: needs --data X.npy with the inputs of the same rows`);
  const dataInputs = others(io, []);
  const k = objective.kind === 'class' ? objective.classes! : CLUSTERS_FOR_MSE;
  const rng = Rng.forTensor(opts.seed, 'train-data', `clusters:${objective.kind}`);
  const perRow = (shape: number[]) => shape.slice(1).reduce((a, b) => a * b, 1);
  const protos = dataInputs.map((v) => {
    const n = perRow(sizes.inputShapes.get(v.name)!);
    if (isIntType(v.elemType)) {
      const span = Math.max(2, Math.min(opts.inputVocab ?? 2, 64));
      return { v, n, span, sets: Array.from({ length: k }, () => Array.from({ length: 4 }, () => Math.floor(rng.uniform53() * span))) };
    }
    const shape = sizes.inputShapes.get(v.name)!;
    return { v, n, span: 0, table: Array.from({ length: k }, () => (shape.length === 2 ? tones(rng, n) : normals(rng, n))) };
  });
  const targetProtos = objective.kind === 'mse' ? Array.from({ length: k }, () => normals(rng, perRow(targetShape), 0.5)) : [];
  const b = sizes.batch;
  let fixed: Feeds | undefined;
  return {
    description: `synthetic clusters (${k} ${objective.kind === 'class' ? 'classes' : 'latent clusters'}, one fixed batch, seed ${opts.seed})`,
    next: () => (fixed ??= makeBatch()),
  };

  function makeBatch(): Feeds {
    // Balanced labels: consecutive classes from a seeded start (every class when the batch holds k rows or more).
    const start = Math.floor(rng.uniform53() * k);
    const ys = Array.from({ length: b }, (_, r) => (start + r) % k);
    const feeds: Feeds = {};
    for (const p of protos) {
      const values = new Float64Array(b * p.n);
      ys.forEach((y, r) => {
        for (let j = 0; j < p.n; j++) {
          values[r * p.n + j] = p.table ? p.table[y]![j]! + 0.5 * rng.normal() : rng.uniform53() < 0.5 ? p.sets![y]![Math.floor(rng.uniform53() * 4)]! : Math.floor(rng.uniform53() * p.span);
        }
      });
      feeds[p.v.name] = numericTensor(p.v, values, sizes.inputShapes.get(p.v.name)!);
    }
    feeds[io.targets.name] = objective.kind === 'class' ? classTargets(io, ys, targetShape) : floatRows(targetShape, ys.map((y) => targetProtos[y]!));
    return feeds;
  }
}

function classTargets(io: TrainIO, ys: number[], shape: number[]): ort.Tensor {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const t = new BigInt64Array(ys.length * per);
  ys.forEach((y, r) => t.fill(BigInt(y), r * per, (r + 1) * per));
  return intTensor(io.targets.elemType, t, shape);
}

function floatRows(shape: number[], rows: Float64Array[]): ort.Tensor {
  const per = rows[0]?.length ?? 0;
  const out = new Float32Array(rows.length * per);
  rows.forEach((r, i) => out.set(r, i * per));
  return new ort.Tensor('float32', out, shape);
}

/** Rows drawn (seeded, with replacement) from `--data X.npy` and `--labels Y.npy`. */
function npyData(io: TrainIO, objective: Objective, sizes: FeedSizes, targetShape: number[], opts: FeedOptions): DataSource {
  const file = opts.data!;
  if (path.extname(file).toLowerCase() !== '.npy') throw new UsageError(`--data ${file}: the ${objective.kind} objective reads inputs from a .npy file (token and text files feed next-token and mlm); pass --data X.npy --labels Y.npy`);
  if (opts.labels === undefined) throw new UsageError(`--data ${file}: the ${objective.kind} objective needs --labels Y.npy (${objective.kind === 'class' ? 'one class id per row' : 'the targets of each row'})`);
  const dataInputs = others(io, []);
  if (dataInputs.length !== 1) throw new UserInputError(`--data ${file}: the model has ${dataInputs.length} data inputs (${dataInputs.map((v) => v.name).join(', ')}); a .npy file feeds one`, ExitCode.unsupported);
  const input = dataInputs[0]!;
  const x = readNpyFile(file);
  const y = readNpyFile(opts.labels);
  const xShape = sizes.inputShapes.get(input.name)!;
  checkRows(file, x, xShape.slice(1), `input '${input.name}' [${xShape.join(', ')}]`);
  checkRows(opts.labels, y, targetShape.slice(1), objective.kind === 'class' ? 'class ids' : `targets of '${objective.output}' [${targetShape.join(', ')}]`);
  if (x.shape[0] !== y.shape[0]) throw new UserInputError(`--labels ${opts.labels}: ${y.shape[0]} rows, but --data ${file} has ${x.shape[0]}; give one label row per input row`);
  if (objective.kind === 'class' && (y.dtype === 'float32' || y.dtype === 'float64')) throw new UserInputError(`--labels ${opts.labels}: class ids must be integers (int64 or int32), got ${y.dtype}`);
  if (objective.kind === 'mse' && y.dtype !== 'float32' && y.dtype !== 'float64') throw new UserInputError(`--labels ${opts.labels}: MSE targets must be float32 or float64, got ${y.dtype}`);
  const xs = npyRows(x);
  const ys = npyRows(y);
  if (objective.kind === 'class') {
    const bad = ys.findIndex((r) => r.some((c) => !Number.isInteger(c) || c < 0 || c >= objective.classes!));
    if (bad >= 0) throw new UserInputError(`--labels ${opts.labels}: row ${bad} holds a class id outside 0..${objective.classes! - 1} (the model's '${objective.output}' has ${objective.classes} classes)`);
  }
  const rng = Rng.forTensor(opts.seed, 'train-data', file);
  const b = sizes.batch;
  return {
    description: `${path.basename(file)} + ${path.basename(opts.labels)} (${x.shape[0]} rows)`,
    next: () => {
      const pick = Array.from({ length: b }, () => Math.floor(rng.uniform53() * xs.length));
      const xv = new Float64Array(pick.length * (xs[0]?.length ?? 0));
      pick.forEach((i, r) => xv.set(xs[i]!, r * xs[i]!.length));
      const target = objective.kind === 'class'
        ? intTensor(io.targets.elemType, BigInt64Array.from(pick.flatMap((i) => Array.from(ys[i]!, (c) => BigInt(c)))), targetShape)
        : floatRows(targetShape, pick.map((i) => ys[i]!));
      return { [input.name]: numericTensor(input, xv, xShape), [io.targets.name]: target };
    },
  };
}

function checkRows(file: string, a: NpyArray, perRow: number[], what: string): void {
  const got = a.shape.slice(1);
  const n = (s: number[]) => s.reduce((x, y) => x * y, 1);
  if (a.shape.length === 0 || a.shape[0] === 0 || n(got) !== n(perRow)) {
    throw new UserInputError(`${file}: shape (${a.shape.join(', ')}) does not hold rows of ${what}: expected (N${perRow.map((d) => `, ${d}`).join('')})`);
  }
}

function npyRows(a: NpyArray): Float64Array[] {
  const rows = a.shape[0]!;
  const per = a.shape.slice(1).reduce((x, y) => x * y, 1);
  const all = a.data instanceof BigInt64Array ? Float64Array.from(a.data, Number) : Float64Array.from(a.data as ArrayLike<number>);
  return Array.from({ length: rows }, (_, r) => all.subarray(r * per, (r + 1) * per));
}

/**
 * A waveform prototype for a class: the sum of three sines of seeded frequencies in (0.01, 0.45) cycles per
 * sample (below Nyquist) and phases, so classes differ in spectrum and stay apart after per-channel
 * normalization and time pooling (audio encoders' conv front ends), where white-noise prototypes look alike.
 */
function tones(rng: Rng, n: number): Float64Array {
  const parts = Array.from({ length: 3 }, () => ({ f: 0.01 + 0.44 * rng.uniform53(), phase: 2 * Math.PI * rng.uniform53() }));
  return Float64Array.from({ length: n }, (_, t) => parts.reduce((a, p) => a + Math.sin(2 * Math.PI * p.f * t + p.phase), 0) / Math.sqrt(1.5));
}

function normals(rng: Rng, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * rng.normal();
  return out;
}

const isIntType = (t: number) => t === DataType.INT64 || t === DataType.INT32;

function intTensor(elemType: number, values: BigInt64Array, dims: number[]): ort.Tensor {
  if (elemType === DataType.INT32) return new ort.Tensor('int32', Int32Array.from(values, Number), dims);
  return new ort.Tensor('int64', values, dims);
}

function numericTensor(v: InputSpec, values: Float64Array, dims: number[]): ort.Tensor {
  switch (v.elemType) {
    case DataType.INT64: return new ort.Tensor('int64', BigInt64Array.from(values, (x) => BigInt(x)), dims);
    case DataType.INT32: return new ort.Tensor('int32', Int32Array.from(values), dims);
    case DataType.BOOL: return new ort.Tensor('bool', Uint8Array.from(values), dims);
    case DataType.FLOAT: return new ort.Tensor('float32', Float32Array.from(values), dims);
    case DataType.DOUBLE: return new ort.Tensor('float64', Float64Array.from(values), dims);
    default: throw new UserInputError(`input '${v.name}' has element type ${v.elemType}; training feeds float32, float64, int32, int64 and bool inputs`, ExitCode.unsupported);
  }
}

/**
 * Feeds for one token batch (next-token; `nextToken` graphs get the input ids as targets): the token input
 * gets `batch.input`, the other inputs the fixed fills of `auxFeeds`, at the batch's sizes.
 */
export function feedsForBatch(io: TrainIO, batch: TokenBatch): Feeds {
  const tokenInput = findTokenInput(io);
  const sizes = resolveSizes(io.modelInputs, tokenInput.name, { batch: batch.batch, seq: batch.seq });
  const feeds = auxFeeds(io.modelInputs, sizes);
  for (const v of others(io, [tokenInput.name])) {
    const dims = sizes.inputShapes.get(v.name)!;
    feeds[v.name] = numericTensor(v, new Float64Array(dims.reduce((a, b) => a * b, 1)), dims);
  }
  feeds[tokenInput.name] = intTensor(tokenInput.elemType, batch.input, [batch.batch, batch.seq]);
  feeds[io.targets.name] = intTensor(io.targets.elemType, io.nextToken ? batch.input : batch.target, [batch.batch, batch.seq]);
  return feeds;
}

/** The model input that takes token ids: the first integer input that is not a mask, position, segment or cache input. */
export function findTokenInput(io: TrainIO): TrainIO['modelInputs'][number] {
  const name = findTokenInputName(io.modelInputs);
  const v = io.modelInputs.find((x) => x.name === name);
  if (!v) throw new UserInputError(`the model has no integer token input (inputs: ${io.modelInputs.map((x) => x.name).join(', ')}); token data needs one (see --objective)`, ExitCode.unsupported);
  return v;
}
