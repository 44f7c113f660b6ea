/**
 * Deferred tensor values: the mask and init passes register, per tensor they rewrite, the job that computes
 * its bytes (tensor-jobs.ts) instead of computing them. The values are then produced either all at once into
 * the tensors (`materialize`: the in-memory path of the library API and of inline outputs) or by the writer,
 * straight into the external-data file at each tensor's offset (`fill`: the streaming path), one job at a
 * time (or one per worker thread), so memory stays a chunk per job whatever the model's size. Both paths run
 * the same jobs, so they write the same bytes. The report's numbers that need values (non-zeros, init std)
 * are kept here, by weight name, as jobs finish.
 */
import * as fs from 'node:fs';
import type { TensorProto } from 'onnx-buf';
import { InvariantError } from '../errors.js';
import { setTensorFloats } from '../onnx/tensor.js';
import { writeAll } from '../onnx/atomic.js';
import type { DeferredData, DeferredPlacement } from '../onnx/external.js';
import { partBytes, runTensorJob, runTensorJobToArrays, writeJob, type JobPart, type JobStats, type TensorJob } from './tensor-jobs.js';
import type { JobPool } from './job-pool.js';

export interface DeferredEntry {
  job: TensorJob;
  part: JobPart;
  byteLength: number;
  /** Set once written into a data file (under its temp name): later graphs copy these bytes. */
  written?: { file: string; offset: number };
}


export class DeferredValues implements DeferredData {
  readonly entries = new Map<TensorProto, DeferredEntry>();
  /** The report's numbers, by weight (job) name. */
  readonly stats = new Map<string, JobStats>();
  /** Write new float32 weights into the source tensor's own raw_data when it holds exactly them (TransformOptions.inPlace). */
  inPlace = false;
  /** Worker threads for `fill` (none, or one thread: this one). */
  pool?: JobPool;

  add(t: TensorProto, job: TensorJob, part: JobPart): void {
    this.entries.set(t, { job, part, byteLength: partBytes(job, part) });
  }

  /** Bytes of a deferred tensor's values, or undefined when the tensor holds its own. */
  sizeOf(t: TensorProto): number | undefined {
    return this.entries.get(t)?.byteLength;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Computes the values of `tensors` (all deferred ones when omitted) into their raw_data; they stop being deferred. */
  materialize(tensors?: Iterable<TensorProto>): void {
    const wanted = [...(tensors ?? this.entries.keys())].filter((t) => this.entries.has(t));
    for (const [job, items] of groupByJob(wanted, this.entries)) {
      const parts = new Set(items.map((i) => i.entry.part));
      const weight = items.find((i) => i.entry.part === 'weight')?.tensor;
      const into = weight && this.inPlace && holdsExactly(weight, partBytes(job, 'weight')) ? { weight: weight.rawData } : undefined;
      const { stats, outputs } = runTensorJobToArrays(job, parts, into);
      this.record(job.name, stats);
      for (const { tensor, entry } of items) {
        setRawValues(tensor, outputs[entry.part]!, entry.part);
        this.entries.delete(tensor);
      }
    }
  }

  /** Runs every job for its numbers only, keeping no values (a dry run's report); tensors stay deferred. */
  measure(): void {
    for (const [job, items] of groupByJob([...this.entries.keys()], this.entries)) {
      this.record(job.name, runTensorJob(job, new Set(items.map((i) => i.entry.part)), () => {}));
    }
  }

  /**
   * Writes the deferred tensors' bytes into the open data file `fd` (named `file`) at their offsets: each job
   * once (in file order on this thread; largest first on worker threads); bytes already written to an earlier
   * graph's data file are copied from there.
   */
  async fill(fd: number, file: string, placements: DeferredPlacement[]): Promise<void> {
    const at = new Map(placements.map((p) => [p.tensor, p.offset]));
    const copies = placements.filter((p) => this.entries.get(p.tensor)?.written);
    for (const p of copies) copyRange(this.entries.get(p.tensor)!, fd, p.offset);
    const todo = placements.filter((p) => !this.entries.get(p.tensor)!.written).map((p) => p.tensor);
    const groups = [...groupByJob(todo, this.entries)].map(([job, items]) => ({
      job, offsets: Object.fromEntries(items.map((i) => [i.entry.part, at.get(i.tensor)!])) as Partial<Record<JobPart, number>>,
    }));
    const results = this.pool && this.pool.threads > 1
      ? await this.pool.runAll(groups.map((g) => ({ job: g.job, fd, offsets: g.offsets })))
      : groups.map((g) => writeJob(g.job, fd, g.offsets));
    groups.forEach((g, i) => this.record(g.job.name, results[i]!));
    for (const p of placements) {
      const e = this.entries.get(p.tensor)!;
      e.written ??= { file, offset: p.offset };
    }
  }

  /** Forgets where values were written (those temp files are gone once a write ends): a later write runs the jobs again. */
  forgetWritten(): void {
    for (const e of this.entries.values()) delete e.written;
  }

  private record(name: string, s: JobStats): void {
    this.stats.set(name, { ...this.stats.get(name), ...definedOnly(s) });
  }
}

function definedOnly(s: JobStats): JobStats {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as JobStats;
}

function groupByJob(tensors: TensorProto[], entries: Map<TensorProto, DeferredEntry>): Map<TensorJob, { tensor: TensorProto; entry: DeferredEntry }[]> {
  const out = new Map<TensorJob, { tensor: TensorProto; entry: DeferredEntry }[]>();
  for (const tensor of tensors) {
    const entry = entries.get(tensor);
    if (!entry) throw new InvariantError(`tensor '${tensor.name}' has no deferred values`);
    const list = out.get(entry.job);
    if (list) list.push({ tensor, entry });
    else out.set(entry.job, [{ tensor, entry }]);
  }
  return out;
}

/** A float32 tensor whose raw_data is exactly `bytes` long (inline, no typed fields). */
function holdsExactly(t: TensorProto, bytes: number): boolean {
  return t.dataType === 1 && t.dataLocation !== 1 && t.rawData.byteLength === bytes;
}

/** The tensor takes `bytes` as its raw data (typed fields and external references cleared, as setTensorFloats). */
function setRawValues(t: TensorProto, bytes: Uint8Array, part: JobPart): void {
  if (part === 'weight') setTensorFloats(t, new Float32Array(0));
  t.rawData = bytes as Uint8Array<ArrayBuffer>;
}

const COPY_BYTES = 8 << 20;

function copyRange(e: DeferredEntry, fd: number, offset: number): void {
  const src = fs.openSync(e.written!.file, 'r');
  try {
    const buf = new Uint8Array(Math.min(COPY_BYTES, e.byteLength));
    for (let done = 0; done < e.byteLength;) {
      const n = fs.readSync(src, buf, 0, Math.min(buf.byteLength, e.byteLength - done), e.written!.offset + done);
      if (n === 0) throw new InvariantError(`${e.written!.file}: ended while copying '${e.job.name}'`);
      writeAll(fd, buf.subarray(0, n), offset + done);
      done += n;
    }
  } finally {
    fs.closeSync(src);
  }
}
