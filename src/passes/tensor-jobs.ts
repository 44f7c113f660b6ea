/**
 * The values a planned weight gets, as a job: a pure function of (seed, weight name, plan entry, the source
 * tensor's bytes) that writes its outputs chunk by chunk, so memory is a chunk plus the mask's bitset (n/8
 * bytes) whatever the tensor's size. Two outputs ("parts"): the new weight values (init.ts semantics) and the
 * mask as BOOL bytes (masks.ts); both come from one mask draw.
 *
 * Chunking changes no bit: the mask is drawn whole into a bitset (mask-patterns.ts), normals are drawn from
 * the per-tensor `Rng` in index order across chunks, float16/bfloat16 are converted per element, and the
 * statistics keep the accumulation order of the whole-array code (`nonZeroMoments`: four lanes by index mod 4,
 * so chunks are multiples of 4; `nonZeroStats`: sequential sums). Jobs are plain data (structured-clonable),
 * so worker threads run them too (job-pool.ts); this module's imports stay small (no protobuf schemas), as
 * each worker loads them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { ExitCode, UserInputError } from '../errors.js';
import { writeAll } from '../onnx/atomic.js';
import { bf16BitsToFloat, bitsPerElement, DataType, dataTypeName, decodeHalfInto, float32BitsToBf16, float32BitsToHalf } from '../onnx/dtype.js';
import { countMaskBits, drawMaskBits, expandMaskBits, type MaskBits, type MaskSpec } from './mask-patterns.js';
import { TRUNCATED_NORMAL_STD, TRUNCATION_SIGMAS } from './init-sampling.js';
import { Rng } from './rng.js';

/** Where a weight's current values are: little-endian raw bytes in memory, or a byte range of a file. */
export type ValueSource =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'file'; file: string; offset: number; length: number };

export interface InitJob {
  /** What happens to the values (the init report's `action`). */
  action: 'resampled' | 'rescaled' | 'masked' | 'kept';
  /** Target std of the non-zeros (resampled, rescaled). */
  std: number | null;
  truncated: boolean;
  /**
   * The std before (nonZeroMoments of the source values), when the analysis measured it while reading the
   * tensor (src/analysis/source-stds.ts): a resample then never reads the source.
   */
  stdBefore?: number;
  /** The tensor's element type: float, float16, bfloat16 or double (values are float32 in between, as today). */
  dataType: number;
  source: ValueSource;
}

export interface TensorJob {
  /** The weight's name: the key of its seeded streams ("mask", "init"). */
  name: string;
  seed: number;
  elements: number;
  mask?: MaskSpec;
  /**
   * How the mask part is written (mask-storage.ts): `bool`, 1 byte per entry; `bits` (default), ceil(n/8)
   * bytes, entry i in byte i >> 3, bit i & 7 (the bitset's own bytes on a little-endian machine).
   */
  maskStorage?: 'bool' | 'bits';
  init?: InitJob;
}

export type JobPart = 'weight' | 'mask';

export interface JobStats {
  maskNonZeros?: number;
  init?: { std_before: number; std_after: number; non_zeros: number };
}

/** Receives each output chunk in order; `bytes` may be reused after the call returns (copy or write it). */
export type ChunkSink = (part: JobPart, byteOffset: number, bytes: Uint8Array) => void;

/**
 * Elements per chunk: a multiple of 32 (whole bitset words) and of 4 (the moments' lanes). 64Ki (256 KiB of
 * float32) keeps a chunk in a core's L2 cache from its read through its write; measured on the 3 GB GPT-2
 * large shape (bench/scale.ts), 1Mi-entry chunks took 14 s and 10 s of system time, 64Ki 9–11 s and 2 s.
 */
export const CHUNK_ELEMENTS = 1 << 16;

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** Bytes of one output part. */
export function partBytes(job: TensorJob, part: JobPart): number {
  if (part === 'mask') return job.maskStorage === 'bits' ? Math.ceil(job.elements / 8) : job.elements;
  return job.elements * (bitsPerElement(job.init!.dataType) / 8);
}

export function jobParts(job: TensorJob): JobPart[] {
  return [...(job.init ? ['weight' as const] : []), ...(job.mask ? ['mask' as const] : [])];
}

/** Runs `job`, sending the `parts` asked for to `sink`; returns the report's numbers. */
export function runTensorJob(job: TensorJob, parts: ReadonlySet<JobPart>, sink: ChunkSink, chunk = CHUNK_ELEMENTS): JobStats {
  if (chunk % 32 !== 0 || chunk <= 0) throw new RangeError(`chunk ${chunk} must be a positive multiple of 32`);
  const bits = job.mask ? drawMaskBits(job.mask, Rng.forTensor(job.seed, job.name, 'mask')) : undefined;
  const stats: JobStats = {};
  if (bits) stats.maskNonZeros = countMaskBits(bits);
  if (job.init && parts.has('weight')) stats.init = runInit(job, job.init, bits, sink, chunk);
  if (bits && parts.has('mask') && job.maskStorage === 'bits') {
    writePackedMask(bits, sink, chunk);
  } else if (bits && parts.has('mask')) {
    const out = new Uint8Array(Math.min(chunk, job.elements));
    for (let start = 0; start < job.elements; start += chunk) {
      const count = Math.min(chunk, job.elements - start);
      sink('mask', start, expandMaskBits(bits, start, count, out).subarray(0, count));
    }
  }
  return stats;
}

/** The mask as packed bytes (entry i in byte i >> 3, bit i & 7), `chunk` entries (chunk/8 bytes) at a time. */
function writePackedMask(bits: MaskBits, sink: ChunkSink, chunk: number): void {
  const total = Math.ceil(bits.n / 8);
  const step = chunk / 8;
  const scratch = LITTLE_ENDIAN ? undefined : new Uint8Array(Math.min(step, total));
  for (let at = 0; at < total; at += step) {
    const count = Math.min(step, total - at);
    if (scratch) {
      for (let j = 0; j < count; j++) scratch[j] = (bits.words[(at + j) >>> 2]! >>> (8 * ((at + j) & 3))) & 0xff;
      sink('mask', at, scratch.subarray(0, count));
    } else {
      sink('mask', at, new Uint8Array(bits.words.buffer, bits.words.byteOffset + at, count));
    }
  }
}

/** Runs one job, writing its parts at their byte offsets in the open file `fd` (what a worker thread does). */
export function writeJob(job: TensorJob, fd: number, offsets: Partial<Record<JobPart, number>>): JobStats {
  const parts = new Set(jobParts(job).filter((p) => offsets[p] !== undefined));
  return runTensorJob(job, parts, (part, byteOffset, bytes) => writeAll(fd, bytes, offsets[part]! + byteOffset));
}

/** Runs the job and gathers each asked-for part into one array (the in-memory path). */
export function runTensorJobToArrays(job: TensorJob, parts: ReadonlySet<JobPart>, into?: Partial<Record<JobPart, Uint8Array>>): { stats: JobStats; outputs: Partial<Record<JobPart, Uint8Array>> } {
  const outputs: Partial<Record<JobPart, Uint8Array>> = {};
  for (const p of parts) outputs[p] = into?.[p] ?? new Uint8Array(partBytes(job, p));
  const stats = runTensorJob(job, parts, (part, at, bytes) => outputs[part]!.set(bytes, at));
  return { stats, outputs };
}

function runInit(job: TensorJob, init: InitJob, bits: MaskBits | undefined, sink: ChunkSink, chunk: number): NonNullable<JobStats['init']> {
  const reader = sourceReader(job.name, job.elements, init.dataType, init.source);
  try {
    const n = job.elements;
    if (init.action === 'resampled') return runResample(job, init, bits, reader, sink, chunk);
    const before = new Moments();
    const kept = new KeptStats(); // nonZeroStats (rescale): sequential sums over kept non-zeros
    const values = new Float32Array(Math.min(chunk, n));
    const maskBytes = bits ? new Uint8Array(Math.min(chunk, n)) : undefined;
    const maskOf = (start: number, count: number) => (bits ? expandMaskBits(bits, start, count, maskBytes!) : undefined);
    // Rescale needs the kept values' spread before writing: a first pass (std before taken there too).
    for (let start = 0; init.action === 'rescaled' && start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      const v = reader.read(start, count, values);
      before.add(v);
      kept.addSums(v, maskOf(start, count));
    }
    let scale = 1;
    if (init.action === 'rescaled') {
      for (let start = 0; start < n; start += chunk) {
        const count = Math.min(chunk, n - start);
        kept.addSquares(reader.read(start, count, values), maskOf(start, count));
      }
      const std = kept.std();
      if (!(std > 0)) {
        throw new UserInputError(`tensor '${job.name}': cannot rescale to std ${init.std}: its kept values have no spread (${kept.count} non-zeros, std 0); use --init resample`);
      }
      scale = init.std! / std;
    }
    const after = new Moments();
    const encoded = new Uint8Array(Math.min(chunk, n) * (bitsPerElement(init.dataType) / 8));
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      const mask = maskOf(start, count);
      const v = reader.read(start, count, values);
      if (init.action !== 'rescaled') before.add(v); // one read: the values' std before, then their new values
      if (init.action === 'rescaled') {
        for (let i = 0; i < count; i++) v[i] = !mask || mask[i] ? v[i]! * scale : 0;
      } else if (mask) {
        for (let i = 0; i < count; i++) if (!mask[i]) v[i] = 0;
      }
      after.add(v);
      sink('weight', start * (bitsPerElement(init.dataType) / 8), encodeChunk(v, init.dataType, encoded));
    }
    return { std_before: before.std(), std_after: after.std(), non_zeros: after.count };
  } finally {
    reader.close();
  }
}

/**
 * sampleInit over chunks: kept entries ~ N(0, std²) in index order, masked entries exactly 0. The source is
 * read only for the std before, and not at all when the analysis measured it (`init.stdBefore`). With a
 * mask, only the kept entries are visited (the bitset's set bits, in index order) and only they enter the
 * moments: the skipped entries are +0, and adding +0 to a lane's sums (never −0: they start at +0 and add
 * values that are not −0) changes no bit, so the result equals `Moments.add` over the whole chunk.
 */
function runResample(job: TensorJob, init: InitJob, bits: MaskBits | undefined, reader: SourceReader, sink: ChunkSink, chunk: number): NonNullable<JobStats['init']> {
  const n = job.elements;
  const values = new Float32Array(Math.min(chunk, n));
  let stdBefore = init.stdBefore;
  if (stdBefore === undefined) {
    const before = new Moments();
    for (let start = 0; start < n; start += chunk) before.add(reader.read(start, Math.min(chunk, n - start), values));
    stdBefore = before.std();
  }
  const rng = Rng.forTensor(job.seed, job.name, 'init');
  const draw = normalDraw(rng, init.std!, init.truncated);
  const after = new Moments();
  const width = bitsPerElement(init.dataType) / 8;
  const encoded = new Uint8Array(Math.min(chunk, n) * width);
  const kept = bits ? new Int32Array(Math.min(chunk, n)) : undefined;
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const v = values.subarray(0, count);
    if (bits) {
      v.fill(0);
      const k = keptIndices(bits, start, count, kept!);
      if (init.truncated) for (let j = 0; j < k; j++) v[kept![j]!] = 0 + draw();
      else rng.fillNormals(v, init.std!, k, kept);
      after.addAt(v, kept!, k);
      // The other entries are +0, whose encoding in every float type is all zero bits: only the kept are converted.
      sink('weight', start * width, encodeChunk(v, init.dataType, encoded, kept, k));
    } else {
      if (init.truncated) for (let i = 0; i < count; i++) v[i] = 0 + draw();
      else rng.fillNormals(v, init.std!, count);
      after.add(v);
      sink('weight', start * width, encodeChunk(v, init.dataType, encoded));
    }
  }
  return { std_before: stdBefore, std_after: after.std(), non_zeros: after.count };
}

/** Indices (from `start`, a multiple of 32) of the kept entries among `count`, ascending, into `out`; their number. */
function keptIndices(bits: MaskBits, start: number, count: number, out: Int32Array): number {
  let k = 0;
  const first = start >>> 5;
  const words = Math.ceil(count / 32);
  for (let w = 0; w < words; w++) {
    let word = bits.words[first + w]!;
    const left = count - 32 * w;
    if (left < 32) word &= (1 << left) - 1;
    while (word !== 0) {
      const low = word & -word;
      out[k++] = 32 * w + 31 - Math.clz32(low);
      word ^= low;
    }
  }
  return k;
}

/** A normal draw of std `std` (sampleInit's): plain, or the truncated normal rescaled to that std. */
function normalDraw(rng: Rng, std: number, truncated: boolean): () => number {
  if (!(std >= 0) || !Number.isFinite(std)) throw new UserInputError(`init std ${std} is not a finite non-negative number; check the rule's initStd formula`);
  if (!truncated) return () => std * rng.normal();
  const scale = std / TRUNCATED_NORMAL_STD;
  return () => {
    for (;;) {
      const z = rng.normal();
      if (z >= -TRUNCATION_SIGMAS && z <= TRUNCATION_SIGMAS) return scale * z;
    }
  };
}

/**
 * nonZeroMoments (init.ts) over a stream of chunks: four lanes by index mod 4, the leftover of the last chunk
 * in lane 0 (chunks before it are multiples of 4, so the lanes see the same values in the same order).
 */
export class Moments {
  private s = [0, 0, 0, 0];
  private q = [0, 0, 0, 0];
  count = 0;

  add(values: Float32Array): void {
    let [s0, s1, s2, s3] = this.s as [number, number, number, number];
    let [q0, q1, q2, q3] = this.q as [number, number, number, number];
    let count = this.count;
    const n4 = values.length - (values.length % 4);
    for (let i = 0; i < n4; i += 4) {
      const a = values[i]!, b = values[i + 1]!, c = values[i + 2]!, d = values[i + 3]!;
      s0 += a; s1 += b; s2 += c; s3 += d;
      q0 += a * a; q1 += b * b; q2 += c * c; q3 += d * d;
      count += (a !== 0 ? 1 : 0) + (b !== 0 ? 1 : 0) + (c !== 0 ? 1 : 0) + (d !== 0 ? 1 : 0);
    }
    for (let i = n4; i < values.length; i++) {
      const v = values[i]!;
      s0 += v; q0 += v * v; count += v !== 0 ? 1 : 0;
    }
    this.s = [s0, s1, s2, s3];
    this.q = [q0, q1, q2, q3];
    this.count = count;
  }

  /**
   * `add(values)` where only the entries at `indices[0..k)` (ascending) may be non-zero: those entries go to
   * the lanes `add` gives them (index mod 4; the leftover after the last multiple of 4 in lane 0).
   */
  addAt(values: Float32Array, indices: Int32Array, k: number): void {
    const s = this.s, q = this.q;
    const n4 = values.length - (values.length % 4);
    let count = this.count;
    for (let j = 0; j < k; j++) {
      const i = indices[j]!;
      const v = values[i]!;
      const lane = i < n4 ? i & 3 : 0;
      s[lane] = s[lane]! + v;
      q[lane] = q[lane]! + v * v;
      count += v !== 0 ? 1 : 0;
    }
    this.count = count;
  }

  std(): number {
    const [s0, s1, s2, s3] = this.s as [number, number, number, number];
    const [q0, q1, q2, q3] = this.q as [number, number, number, number];
    return laneStd(s0, s1, s2, s3, q0, q1, q2, q3, this.count);
  }
}

/** nonZeroMoments' std from its four lanes' sums and squares and the non-zero count. */
function laneStd(s0: number, s1: number, s2: number, s3: number, q0: number, q1: number, q2: number, q3: number, count: number): number {
  if (count === 0) return 0;
  const mean = (s0 + s1 + s2 + s3) / count;
  return Math.sqrt(Math.max(0, (q0 + q1 + q2 + q3) / count - mean * mean));
}

/**
 * What the analysis reads a weight for, from one pass over its values as float32: the shared-copy check's
 * fingerprint (src/analysis/sharing.ts: min, max, and an order-free hash Σ mix(bits(x)) mod 2^32, −0 counted
 * as +0) and the init report's std before (`std`, exactly `Moments`' and nonZeroMoments').
 */
export interface ValueSurveyResult {
  min: number;
  max: number;
  /** Unsigned 32-bit. */
  hash: number;
  std: number;
}

/** The order-free hash's mix of one float32 bit pattern (0 for ±0). */
const HASH_MULTIPLIER = 0x45d9f3b;

/**
 * ValueSurveyResult over chunks (each a multiple of 4 entries but the last, as `Moments`). One loop does the
 * fingerprint and the moments, four entries at a time with four hash lanes (addition mod 2^32 is order-free,
 * so the lanes' sum is the sequential hash): 2.2 ns an element where the two separate passes took 7 (micro-benchmark).
 */
export class ValueSurvey {
  private min = Infinity;
  private max = -Infinity;
  private hash = 0;
  private count = 0;
  /** Moments' lanes: sums s0..s3, then squares q0..q3. */
  private readonly lanes = new Float64Array(8);

  add(v: Float32Array): void {
    const bits = new Int32Array(v.buffer, v.byteOffset, v.length);
    const L = this.lanes;
    let s0 = L[0]!, s1 = L[1]!, s2 = L[2]!, s3 = L[3]!, q0 = L[4]!, q1 = L[5]!, q2 = L[6]!, q3 = L[7]!;
    let min = this.min, max = this.max, count = this.count;
    let h0 = this.hash, h1 = 0, h2 = 0, h3 = 0;
    const n = v.length;
    const n4 = n - (n % 4);
    for (let i = 0; i < n4; i += 4) {
      const a = v[i]!, b = v[i + 1]!, c = v[i + 2]!, d = v[i + 3]!;
      s0 += a; s1 += b; s2 += c; s3 += d;
      q0 += a * a; q1 += b * b; q2 += c * c; q3 += d * d;
      if (a < min) min = a; if (a > max) max = a; if (b < min) min = b; if (b > max) max = b;
      if (c < min) min = c; if (c > max) max = c; if (d < min) min = d; if (d > max) max = d;
      // ±0 ⇔ the bits without the sign are 0: it hashes as 0 and is not a non-zero; NaN counts, as `!== 0` says.
      let x = bits[i]!, y = bits[i + 1]!, z = bits[i + 2]!, w = bits[i + 3]!;
      if (x << 1 === 0) x = 0; else count++;
      if (y << 1 === 0) y = 0; else count++;
      if (z << 1 === 0) z = 0; else count++;
      if (w << 1 === 0) w = 0; else count++;
      h0 = (h0 + Math.imul(x ^ (x >>> 16), HASH_MULTIPLIER)) | 0;
      h1 = (h1 + Math.imul(y ^ (y >>> 16), HASH_MULTIPLIER)) | 0;
      h2 = (h2 + Math.imul(z ^ (z >>> 16), HASH_MULTIPLIER)) | 0;
      h3 = (h3 + Math.imul(w ^ (w >>> 16), HASH_MULTIPLIER)) | 0;
    }
    for (let i = n4; i < n; i++) {
      const a = v[i]!;
      s0 += a; q0 += a * a; // Moments: the leftover in lane 0
      if (a < min) min = a;
      if (a > max) max = a;
      let x = bits[i]!;
      if (x << 1 === 0) x = 0; else count++;
      h0 = (h0 + Math.imul(x ^ (x >>> 16), HASH_MULTIPLIER)) | 0;
    }
    L[0] = s0; L[1] = s1; L[2] = s2; L[3] = s3; L[4] = q0; L[5] = q1; L[6] = q2; L[7] = q3;
    this.min = min;
    this.max = max;
    this.count = count;
    this.hash = (((h0 + h1) | 0) + ((h2 + h3) | 0)) | 0;
  }

  result(): ValueSurveyResult {
    const L = this.lanes;
    return { min: this.min, max: this.max, hash: this.hash >>> 0, std: laneStd(L[0]!, L[1]!, L[2]!, L[3]!, L[4]!, L[5]!, L[6]!, L[7]!, this.count) };
  }
}

/** A weight to survey: its values' element type, count and where they are. */
export interface SurveyTask {
  name: string;
  elements: number;
  dataType: number;
  source: ValueSource;
}

/** Reads the values of `task` chunk by chunk (the jobs' reader and decode) into a ValueSurvey. */
export function surveySource(task: SurveyTask, chunk = CHUNK_ELEMENTS): ValueSurveyResult {
  const reader = sourceReader(task.name, task.elements, task.dataType, task.source);
  try {
    const survey = new ValueSurvey();
    const values = new Float32Array(Math.min(chunk, task.elements));
    for (let start = 0; start < task.elements; start += chunk) survey.add(reader.read(start, Math.min(chunk, task.elements - start), values));
    return survey.result();
  } finally {
    reader.close();
  }
}

/** nonZeroStats (init-sampling.ts) in two streamed passes: sums, then squares about the mean. */
class KeptStats {
  count = 0;
  private sum = 0;
  private squares = 0;

  addSums(values: Float32Array, mask: Uint8Array | undefined): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v !== 0 && (!mask || mask[i])) { this.count++; this.sum += v; }
    }
  }

  addSquares(values: Float32Array, mask: Uint8Array | undefined): void {
    const mean = this.count === 0 ? 0 : this.sum / this.count;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v !== 0 && (!mask || mask[i])) this.squares += (v - mean) * (v - mean);
    }
  }

  std(): number {
    return this.count === 0 ? 0 : Math.sqrt(this.squares / this.count);
  }
}

interface SourceReader {
  /** Elements [start, start + count) as float32 in `out` (a view of its first `count` entries). */
  read(start: number, count: number, out: Float32Array): Float32Array;
  close(): void;
}

function sourceReader(name: string, elements: number, dataType: number, src: ValueSource): SourceReader {
  const width = bitsPerElement(dataType) / 8;
  if (![DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE].includes(dataType as 1)) {
    throw new UserInputError(`tensor '${name}': cannot initialize ${dataTypeName(dataType)} values`);
  }
  const need = elements * width;
  const have = src.kind === 'bytes' ? src.bytes.byteLength : src.length;
  if (have < need) throw new UserInputError(`tensor '${name}': holds ${have} bytes but its shape needs ${need}; the file is damaged`);
  let fd: number | undefined;
  if (src.kind === 'file') {
    try {
      fd = fs.openSync(src.file, 'r');
    } catch (e) {
      throw new UserInputError(`tensor '${name}': external data file '${src.file}' cannot be read (${(e as NodeJS.ErrnoException).code}); keep the data file beside the model`, ExitCode.io);
    }
  }
  let scratch = new Uint8Array(0);
  const bytesAt = (start: number, count: number): Uint8Array => {
    if (src.kind === 'bytes') return src.bytes.subarray(start * width, (start + count) * width);
    if (scratch.byteLength < count * width) scratch = new Uint8Array(count * width);
    const out = scratch.subarray(0, count * width);
    let got = 0;
    while (got < out.byteLength) {
      const n = fs.readSync(fd!, out, got, out.byteLength - got, src.offset + start * width + got);
      if (n === 0) throw new UserInputError(`tensor '${name}': external data file '${src.file}' ends before offset ${src.offset}+${need}; it is truncated`);
      got += n;
    }
    return out;
  };
  return {
    read(start, count, out) {
      const v = out.subarray(0, count);
      decodeChunk(bytesAt(start, count), dataType, v);
      return v;
    },
    close() { if (fd !== undefined) fs.closeSync(fd); },
  };
}

/** Raw little-endian values → float32 (tensorToFloat32's conversions; float32 is copied bit for bit). */
function decodeChunk(bytes: Uint8Array, dataType: number, out: Float32Array): void {
  const n = out.length;
  if (dataType === DataType.FLOAT && LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset, n * 4).set(bytes.subarray(0, n * 4));
    return;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dataType) {
    case DataType.FLOAT: for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true); break;
    case DataType.DOUBLE: for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true); break;
    case DataType.FLOAT16: decodeHalfInto(bytes, out, n); break;
    case DataType.BFLOAT16: for (let i = 0; i < n; i++) out[i] = bf16BitsToFloat(dv.getUint16(i * 2, true)); break;
  }
}

/**
 * float32 values → raw little-endian bytes of `dataType` (encodeFloats's conversions), in `scratch`. With
 * `indices`, only the entries at `indices[0..k)` may be non-zero (the others are +0, all zero bits in every
 * float type), so only they are converted.
 */
function encodeChunk(values: Float32Array, dataType: number, scratch: Uint8Array, indices?: Int32Array, k = 0): Uint8Array {
  const n = values.length;
  switch (dataType) {
    case DataType.FLOAT:
      if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, n * 4);
      break;
    case DataType.DOUBLE: {
      const dv = new DataView(scratch.buffer, scratch.byteOffset, n * 8);
      for (let i = 0; i < n; i++) dv.setFloat64(i * 8, values[i]!, true);
      return scratch.subarray(0, n * 8);
    }
    case DataType.FLOAT16: case DataType.BFLOAT16: {
      const src = new Uint32Array(values.buffer, values.byteOffset, n);
      if (LITTLE_ENDIAN && scratch.byteOffset % 2 === 0) {
        const dst = new Uint16Array(scratch.buffer, scratch.byteOffset, n);
        if (indices) dst.fill(0);
        encodeHalves(src, dst, dataType === DataType.FLOAT16, indices, k);
      } else {
        const conv = dataType === DataType.FLOAT16 ? float32BitsToHalf : float32BitsToBf16;
        for (let i = 0; i < n; i++) {
          const h = conv(src[i]!);
          scratch[2 * i] = h & 0xff;
          scratch[2 * i + 1] = h >>> 8;
        }
      }
      return scratch.subarray(0, n * 2);
    }
  }
  const dv = new DataView(scratch.buffer, scratch.byteOffset, n * 4);
  for (let i = 0; i < n; i++) dv.setFloat32(i * 4, values[i]!, true);
  return scratch.subarray(0, n * 4);
}

/** float32 bit patterns → float16 (`half`) or bfloat16 bits: every entry, or those at `indices[0..k)`. One loop per case, so each call is direct. */
function encodeHalves(src: Uint32Array, dst: Uint16Array, half: boolean, indices: Int32Array | undefined, k: number): void {
  if (indices) {
    if (half) for (let j = 0; j < k; j++) { const i = indices[j]!; dst[i] = float32BitsToHalf(src[i]!); }
    else for (let j = 0; j < k; j++) { const i = indices[j]!; dst[i] = float32BitsToBf16(src[i]!); }
  } else if (half) {
    for (let i = 0; i < src.length; i++) dst[i] = float32BitsToHalf(src[i]!);
  } else {
    for (let i = 0; i < src.length; i++) dst[i] = float32BitsToBf16(src[i]!);
  }
}
