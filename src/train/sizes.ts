/**
 * Batch and sequence sizes of the feeds, and the concrete shape of every model input and of the targets.
 *
 * A model's fixed sizes win: a statically shaped export (torch.onnx.export's default) has a fixed batch and
 * length, and those are the defaults; a flag that disagrees is an error naming the model's size. Dynamic dims
 * take the flags (or the defaults). Symbolic dims are resolved by name: the primary input's dim 0 is the
 * batch and its dim 1 the sequence (tokens, or audio samples); a KV-cache input's other symbolic dims are the
 * past length, 0 (a training forward has no past); sums such as `past_sequence + sequence` are added up.
 */
import { ExitCode, UsageError, UserInputError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import type { Dim } from './graph-util.js';
import { auxInputKind } from './objective.js';

export interface InputSpec {
  name: string;
  elemType: number;
  shape: Dim[];
}

export interface SizeFlags {
  batch?: number;
  seq?: number;
}

export interface SizeDefaults {
  batch: number;
  /** Length of a dynamic token sequence. */
  seq: number;
  /** Length of a dynamic float sequence [b, T] (audio samples). */
  samples: number;
}

export const TRAIN_SIZE_DEFAULTS: SizeDefaults = { batch: 8, seq: 64, samples: 1600 };
/** Defaults of the experiment commands (coord-check, sweep): small runs, many of them. */
export const EXPERIMENT_SIZE_DEFAULTS: SizeDefaults = { batch: 4, seq: 32, samples: 1600 };

export interface FeedSizes {
  batch: number;
  /** Sequence length: tokens, or samples of a [b, T] float input; undefined for inputs without one (images). */
  seq?: number;
  /** Concrete shape of every model input. */
  inputShapes: Map<string, number[]>;
  /** Resolves a dim of another value (outputs, targets) with the same symbols; undefined when unknown. */
  resolve(d: Dim): number | undefined;
}

/** The input that carries the data: the token input, else the first float input that is not a cache or mask. */
export function primaryInput(inputs: readonly InputSpec[], tokenInput: string | undefined): InputSpec {
  const p = inputs.find((v) => v.name === tokenInput) ?? inputs.find((v) => v.elemType !== DataType.INT64 && v.elemType !== DataType.INT32 && !auxInputKind(v.name));
  if (!p) throw new UserInputError(`the model has no data input to feed (inputs: ${inputs.map((v) => v.name).join(', ') || 'none'}); training needs a token or float input`, ExitCode.unsupported);
  return p;
}

export function resolveSizes(inputs: readonly InputSpec[], tokenInput: string | undefined, flags: SizeFlags, defaults: SizeDefaults = TRAIN_SIZE_DEFAULTS): FeedSizes {
  const primary = primaryInput(inputs, tokenInput);
  const [b0, s0] = primary.shape;
  const hasSeq = primary.shape.length === 2;
  const batch = fixedOrFlag('--batch', 'batch', primary, b0, flags.batch, defaults.batch);
  const isTokens = primary.name === tokenInput;
  const seq = hasSeq ? fixedOrFlag('--seq', isTokens ? 'length' : 'length (samples)', primary, s0, flags.seq, isTokens ? defaults.seq : defaults.samples) : flags.seq;
  const symbols = new Map<string, number>();
  if (typeof b0 === 'string') symbols.set(b0, batch);
  if (hasSeq && typeof s0 === 'string') symbols.set(s0, seq!);
  for (const v of inputs) if (auxInputKind(v.name) === 'past') v.shape.forEach((d, i) => { if (typeof d === 'string' && i > 0 && !symbols.has(d)) symbols.set(d, 0); });
  const resolve = (d: Dim): number | undefined => {
    if (typeof d === 'number') return d;
    if (symbols.has(d)) return symbols.get(d);
    if (d.includes('+')) {
      const parts = d.split('+').map((p) => p.trim()).map((p) => (/^\d+$/.test(p) ? Number(p) : symbols.get(p)));
      return parts.every((p) => p !== undefined) ? parts.reduce((a, x) => a! + x!, 0) : undefined;
    }
    return undefined;
  };
  const inputShapes = new Map<string, number[]>();
  for (const v of inputs) inputShapes.set(v.name, inputShape(v, resolve, batch, seq));
  return { batch, seq, inputShapes, resolve };
}

/** A fixed model dim, or the flag (or default) when the dim is dynamic; a flag that disagrees is a usage error. */
function fixedOrFlag(flag: string, what: string, input: InputSpec, dim: Dim | undefined, given: number | undefined, fallback: number): number {
  if (typeof dim === 'number' && dim > 0) {
    if (given !== undefined && given !== dim) throw new UsageError(`${flag} ${given}: the model's input '${input.name}' [${input.shape.join(', ')}] has a fixed ${what} of ${dim}; omit ${flag} or pass ${flag} ${dim}`);
    return dim;
  }
  return given ?? fallback;
}

function inputShape(v: InputSpec, resolve: (d: Dim) => number | undefined, batch: number, seq: number | undefined): number[] {
  const kind = auxInputKind(v.name);
  const dims = v.shape.map((d, i) => {
    const r = resolve(d);
    if (r !== undefined) return r;
    if (i === 0) return batch;
    if (kind === 'past') return 0;
    if (i === 1 && seq !== undefined && (kind || v.shape.length === 2)) return seq;
    if (seq !== undefined) return seq;
    throw new UsageError(`input '${v.name}' [${v.shape.join(', ')}]: dim '${d}' is dynamic and nothing sets it; pass --seq N (used for every dynamic dim but the batch) or re-export with fixed sizes`);
  });
  if (kind === 'past' && v.shape.every((d) => typeof d === 'number') && dims.reduce((a, b) => a * b, 1) > 0) {
    throw new UserInputError(`input '${v.name}' [${v.shape.join(', ')}] is a KV cache with a fixed past length; training runs with an empty past (length 0): re-export with a dynamic past axis, or without use_cache`, ExitCode.unsupported);
  }
  return dims;
}

/**
 * Concrete dims of a value (an output, the targets) with this model's symbols, a dynamic dim 0 being the
 * batch; `undefined` when another dim is not determined by the inputs.
 */
export function concreteShape(shape: readonly Dim[], sizes: FeedSizes): number[] | undefined {
  const out: number[] = [];
  for (const [i, d] of shape.entries()) {
    const r = sizes.resolve(d) ?? (i === 0 ? sizes.batch : undefined);
    if (r === undefined) return undefined;
    out.push(r);
  }
  return out;
}
