/**
 * Training data for `train`: token streams cut into [batch, seq] windows, deterministic from the seed.
 *
 * `--data` forms:
 * - `synthetic:<task>[:<symbols>]`: generated sequences over token ids 0..symbols−1 (default min(16, vocab)),
 *   for smoke runs (every task is learnable from the context):
 *     count   x[i+1] = (x[i] + 1) mod symbols   (random start per row; learnable from the previous token)
 *     repeat  a random pattern of 2–8 tokens repeated along the row (learnable by copying from context)
 *     const   every row is one random token repeated
 * - `*.json`: a JSON array of token ids
 * - `*.u16` / `*.uint16` / `*.bin`: little-endian uint16 token ids (nanoGPT's format)
 * - `*.i32` / `*.int32`: little-endian int32 token ids
 * - `*.npy`: an int64/int32 NumPy array of token ids (any shape; read in C order as one stream)
 * - anything else: a text file, tokenized bytewise (UTF-8 bytes, vocabulary 256)
 *
 * A batch holds `input` = tokens[o .. o+seq) and `target` = tokens[o+1 .. o+seq] per row (targets already
 * shifted by one: the train graph is built with nextToken = false).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode, UserInputError } from '../errors.js';
import { Rng } from '../passes/rng.js';
import { parseNpy } from './npy.js';

export const SYNTHETIC_TASKS = ['count', 'repeat', 'const'] as const;
export type SyntheticTask = (typeof SYNTHETIC_TASKS)[number];

export interface TokenBatch {
  batch: number;
  seq: number;
  /** [batch, seq] int64 model input. */
  input: BigInt64Array;
  /** [batch, seq] int64 next-token targets. */
  target: BigInt64Array;
}

export interface BatchSource {
  /** What the data is, for logs. */
  description: string;
  /** Largest token id + 1 the source can produce. */
  vocab: number;
  next(): TokenBatch;
}

export interface DataOptions {
  batch: number;
  seq: number;
  seed: number;
  /** The model's vocabulary (classes of the logits); tokens at or above it are an error. */
  vocab: number;
}

export function openBatchSource(spec: string, opts: DataOptions): BatchSource {
  if (opts.batch < 1 || opts.seq < 1) throw new UserInputError(`--batch and --seq must be positive (got ${opts.batch}, ${opts.seq})`, ExitCode.usage);
  if (spec.startsWith('synthetic:')) {
    const [task, symbols] = spec.slice('synthetic:'.length).split(':');
    return syntheticSource(task as SyntheticTask, symbolCount(spec, symbols, opts.vocab), opts);
  }
  const tokens = readTokenFile(spec);
  let max = 0;
  for (const t of tokens) if (t > max) max = t;
  if (max >= opts.vocab) throw new UserInputError(`${spec}: token id ${max} is outside the model's vocabulary of ${opts.vocab}; tokenize with the model's tokenizer`);
  if (tokens.length < opts.seq + 1) throw new UserInputError(`${spec}: ${tokens.length} tokens, fewer than --seq + 1 = ${opts.seq + 1}; use more data or a shorter --seq`);
  return windowSource(tokens, spec, opts);
}

/** Token ids of a data file (see the module doc for the formats). */
export function readTokenFile(file: string): Int32Array {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new UserInputError(`${file}: cannot read the data file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check --data`, ExitCode.io);
  }
  const ext = path.extname(file).toLowerCase();
  if (ext === '.json') {
    let arr: unknown;
    try { arr = JSON.parse(buf.toString('utf8')); } catch { arr = undefined; }
    if (!Array.isArray(arr) || !arr.every((x) => Number.isInteger(x) && x >= 0)) {
      throw new UserInputError(`${file}: expected a JSON array of non-negative integer token ids`);
    }
    return Int32Array.from(arr as number[]);
  }
  if (ext === '.npy') {
    const a = parseNpy(buf, file);
    if (a.dtype !== 'int64' && a.dtype !== 'int32') throw new UserInputError(`${file}: token ids must be an integer array (int64 or int32), got ${a.dtype}`);
    const ids = Int32Array.from(a.data as ArrayLike<number | bigint>, Number);
    if (ids.some((x) => x < 0)) throw new UserInputError(`${file}: negative token id; expected ids ≥ 0`);
    return ids;
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (ext === '.u16' || ext === '.uint16' || ext === '.bin') {
    if (buf.byteLength % 2) throw new UserInputError(`${file}: odd byte count for uint16 tokens; is it a uint16 token file?`);
    return Int32Array.from({ length: buf.byteLength / 2 }, (_, i) => dv.getUint16(i * 2, true));
  }
  if (ext === '.i32' || ext === '.int32') {
    if (buf.byteLength % 4) throw new UserInputError(`${file}: byte count is not a multiple of 4 for int32 tokens`);
    return Int32Array.from({ length: buf.byteLength / 4 }, (_, i) => dv.getInt32(i * 4, true));
  }
  return Int32Array.from(buf); // byte-level tokenizer: vocabulary 256
}

/** Random windows of seq+1 tokens (offsets drawn from the seeded stream). */
function windowSource(tokens: Int32Array, label: string, opts: DataOptions): BatchSource {
  const rng = Rng.forTensor(opts.seed, 'train-data', label);
  const span = tokens.length - opts.seq;
  return {
    description: `${label} (${tokens.length} tokens)`,
    vocab: opts.vocab,
    next: () => fillBatch(opts, (row, input, target) => {
      const o = Math.floor(rng.uniform53() * span);
      for (let j = 0; j < opts.seq; j++) {
        input[row * opts.seq + j] = BigInt(tokens[o + j]!);
        target[row * opts.seq + j] = BigInt(tokens[o + j + 1]!);
      }
    }),
  };
}

function symbolCount(spec: string, text: string | undefined, vocab: number): number {
  if (text === undefined) return Math.min(16, vocab);
  const n = Number(text);
  if (!Number.isInteger(n) || n < 2 || n > vocab) throw new UserInputError(`--data ${spec}: the symbol count must be a whole number from 2 to the vocabulary size ${vocab}`, ExitCode.usage);
  return n;
}

function syntheticSource(task: SyntheticTask, v: number, opts: DataOptions): BatchSource {
  if (!SYNTHETIC_TASKS.includes(task)) {
    throw new UserInputError(`--data synthetic:${task}: unknown task; use one of ${SYNTHETIC_TASKS.map((t) => `synthetic:${t}`).join(', ')}`, ExitCode.usage);
  }
  const rng = Rng.forTensor(opts.seed, 'train-data', `synthetic:${task}:${v}`);
  const draw = (n: number) => Math.floor(rng.uniform53() * n);
  const row = new Array<number>(opts.seq + 1);
  return {
    description: `synthetic:${task}:${v}`,
    vocab: v,
    next: () => fillBatch(opts, (r, input, target) => {
      if (task === 'count') {
        const start = draw(v);
        for (let j = 0; j <= opts.seq; j++) row[j] = (start + j) % v;
      } else if (task === 'repeat') {
        const period = 2 + draw(7);
        const pattern = Array.from({ length: period }, () => draw(v));
        for (let j = 0; j <= opts.seq; j++) row[j] = pattern[j % period]!;
      } else {
        row.fill(draw(v));
      }
      for (let j = 0; j < opts.seq; j++) {
        input[r * opts.seq + j] = BigInt(row[j]!);
        target[r * opts.seq + j] = BigInt(row[j + 1]!);
      }
    }),
  };
}

function fillBatch(opts: DataOptions, fillRow: (row: number, input: BigInt64Array, target: BigInt64Array) => void): TokenBatch {
  const input = new BigInt64Array(opts.batch * opts.seq);
  const target = new BigInt64Array(opts.batch * opts.seq);
  for (let r = 0; r < opts.batch; r++) fillRow(r, input, target);
  return { batch: opts.batch, seq: opts.seq, input, target };
}
