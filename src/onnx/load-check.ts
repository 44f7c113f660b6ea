/**
 * The write-time guarantee "every graph the tool writes loads in onnxruntime": a written model is opened
 * with `InferenceSession.create` (graph resolution, type and shape inference, kernel lookup; optimizations
 * off, since they only rewrite what already loaded) before it is moved into place. A refusal is the tool's
 * fault, never the user's: an InvariantError (exit 1) naming the graph and onnxruntime's message, and
 * nothing is written. Graphs using ops of a custom domain (which need the user's kernel library) pass.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clearField, create, isFieldSet } from '@bufbuild/protobuf';
import { StringStringEntryProtoSchema, TensorProto_DataLocation, TensorProtoSchema, type ModelProto } from 'onnx-buf';
import { ExitCode, InvariantError, UserInputError } from '../errors.js';
import { commitTemp, discardTemp, tempPathFor, writeChunksToTemp } from './atomic.js';
import { planOptions, planWrite, type WriteOptions, type WrittenFiles } from './codec.js';
import { deferredInline, type DeferredData, type DeferredPlacement } from './external.js';
import { chunksByteLength, encodeModelChunks, writesRawData } from './encode-stream.js';

const RAW_DATA = TensorProtoSchema.field.rawData!;
const DATA_LOCATION = TensorProtoSchema.field.dataLocation!;
import { forEachTensor } from './walk.js';

/** Domains onnxruntime-node implements; an unknown op in any other needs a custom-op library the check lacks. */
const STANDARD_DOMAINS = new Set(['', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft', 'com.microsoft.nchwc', 'ai.onnx.training', 'ai.onnx.preview.training']);

/**
 * Graph optimizations off (they only rewrite what already loaded) and no pre-packing of MatMul/Gemm weights
 * (a copy of every packed weight made at load, only to speed up runs: +330 MiB and 0.5 s for a 0.5 GB GPT-2;
 * without it onnxruntime reads external data through a mapping and the check costs about 20 MiB).
 */
const CHECK_OPTIONS = { graphOptimizationLevel: 'disabled', logSeverityLevel: 3, extra: { session: { disable_prepacking: '1' } } } as const;

/** Loads `source` (a file path or the model's bytes) in onnxruntime's CPU provider; throws InvariantError naming `graph`. */
export async function checkLoads(source: string | Uint8Array, graph: string): Promise<void> {
  const ort = await import('onnxruntime-node');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = typeof source === 'string'
      ? await ort.InferenceSession.create(source, CHECK_OPTIONS)
      : await ort.InferenceSession.create(source, CHECK_OPTIONS);
  } catch (e) {
    const why = ((e as Error).message ?? String(e)).split('\n')[0]!.trim();
    // An op of a custom domain (the user's own kernel library, registered at run time) cannot be judged here.
    const custom = /\b([\w.]+):\w+\(-?\d+\) is not a registered function\/op/.exec(why)?.[1];
    if (custom && !STANDARD_DOMAINS.has(custom)) return;
    throw new InvariantError(`${graph}: onnxruntime cannot load the graph the tool built (${why}); nothing was written`);
  }
  await session.release();
}

export interface CheckedWriteOptions extends WriteOptions {
  /** What the graph is, for the error ("train-step graph", "transformed model"). */
  graph: string;
}

/** A model written to temp files and loaded by onnxruntime, not yet in place. */
export interface PreparedWrite {
  files: WrittenFiles;
  /** Renames the model (then its data file) into place. */
  commit(): void;
  /** Removes the temp files. */
  discard(): void;
}

/**
 * Writes `model` beside `file` under temp names and opens it in onnxruntime (with external data, the data
 * file under its temp name). Nothing is in place until `commit()`; a refusal removes the temp files.
 * The model's tensors are back as they were when this returns, so several prepared writes may share them.
 */
export async function prepareCheckedWrite(model: ModelProto, file: string, opts: CheckedWriteOptions): Promise<PreparedWrite> {
  // Deferred values: those written inline are computed into their tensors now, the others into the data file.
  if (opts.deferred) opts.deferred.materialize(deferredInline(model, planOptions(file, opts)));
  const { abs, dir, plan } = planWrite(model, file, opts);
  let temp: string | undefined;
  let check: string | undefined;
  try {
    if (plan.deferredPlacements?.length) await fillDeferred(opts.deferred!, plan.dataTemp!, plan.deferredPlacements);
    // Streamed in chunks (raw_data by reference): memory stays about the model itself.
    const chunks = encodeModelChunks(plan.model);
    const size = chunksByteLength(chunks);
    if (size >= 2 ** 31) {
      throw new UserInputError(`${file}: encoded model is over 2 GiB; write with --external-data`, ExitCode.unsupported);
    }
    temp = writeChunksToTemp(abs, chunks);
    check = plan.dataTemp ? checkCopyPointingAt(plan.model, abs, plan.dataTemp) : checkCopyReading(plan.model, abs, temp, chunks);
    plan.restoreTensors();
    await checkLoads(check ?? temp, `${opts.graph} ${path.basename(abs)}`);
  } catch (e) {
    if (temp) discardTemp(temp);
    plan.cleanup();
    throw e;
  } finally {
    if (check) discardTemp(check);
  }
  const modelTemp = temp;
  const files: WrittenFiles = { model: abs, data: plan.dataPath, bytes: fs.statSync(modelTemp).size };
  return {
    files,
    commit: () => {
      commitTemp(modelTemp, abs);
      try {
        plan.commitData?.();
      } catch (e) {
        fs.rmSync(abs, { force: true }); // a model whose data file is missing is worse than none
        throw e;
      } finally {
        plan.cleanup();
      }
    },
    discard: () => {
      discardTemp(modelTemp);
      plan.cleanup();
    },
  };
}

/**
 * Computes the deferred tensors' bytes into their ranges of the (temp) data file, then syncs it. While worker
 * threads fill it, this thread asks the kernel every half second to write back what is already there
 * (fdatasync on libuv's thread pool), so the final fsync waits for the last bytes only.
 */
async function fillDeferred(deferred: DeferredData, dataTemp: string, placements: DeferredPlacement[]): Promise<void> {
  const fd = fs.openSync(dataTemp, 'r+');
  let filling = true;
  let flushing: Promise<void> = Promise.resolve();
  const flush = () => {
    if (!filling) return;
    flushing = new Promise<void>((resolve) => fs.fdatasync(fd, () => resolve())).then(() => {
      if (filling) timer = setTimeout(flush, FLUSH_EVERY_MS);
    });
  };
  let timer: NodeJS.Timeout | undefined = setTimeout(flush, FLUSH_EVERY_MS);
  try {
    try {
      await deferred.fill(fd, dataTemp, placements);
    } finally {
      filling = false;
      clearTimeout(timer);
      await flushing;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const FLUSH_EVERY_MS = 500;

/** `writeModel` with the load check before the rename: onnxruntime opens the model first, or nothing is written. */
export async function writeModelChecked(model: ModelProto, file: string, opts: CheckedWriteOptions): Promise<WrittenFiles> {
  const prepared = await prepareCheckedWrite(model, file, opts);
  prepared.commit();
  return prepared.files;
}

/** Prepares every model, then commits them all: one refusal and none of them is written. */
export async function writeModelsChecked(writes: { model: ModelProto; file: string; opts: CheckedWriteOptions }[]): Promise<WrittenFiles[]> {
  const prepared: PreparedWrite[] = [];
  try {
    for (const w of writes) prepared.push(await prepareCheckedWrite(w.model, w.file, w.opts));
  } catch (e) {
    prepared.forEach((p) => p.discard());
    throw e;
  }
  prepared.forEach((p) => p.commit());
  return prepared.map((p) => p.files);
}

/** Initializers at least this big are read by the check from the written file rather than copied into it. */
const REFERENCE_BYTES = 4096;

/**
 * The check of an inline model reads a small copy whose big initializers are external data pointing at
 * their raw_data bytes inside the temp model file itself (offsets from the chunks just written): the same
 * graph, the same tensor bytes, and onnxruntime does not hold a second parsed copy of every weight (on
 * GPT-2 small: 0.4 s CPU and +350 MiB instead of 1.0 s and +670 MiB for loading the temp file itself).
 */
function checkCopyReading(model: ModelProto, target: string, temp: string, chunks: readonly Uint8Array[]): string {
  const offsets = new Map<Uint8Array, number>();
  let at = 0;
  for (const c of chunks) {
    offsets.set(c, at);
    at += c.byteLength;
  }
  const restore: (() => void)[] = [];
  for (const t of model.graph?.initializer ?? []) {
    const offset = offsets.get(t.rawData);
    if (offset === undefined || t.rawData.byteLength < REFERENCE_BYTES || !writesRawData(t)) continue;
    const raw = t.rawData, location = isFieldSet(t, DATA_LOCATION) ? t.dataLocation : undefined, ext = t.externalData;
    restore.push(() => {
      t.rawData = raw;
      t.externalData = ext;
      if (location === undefined) clearField(t, DATA_LOCATION);
      else t.dataLocation = location;
    });
    clearField(t, RAW_DATA);
    t.dataLocation = TensorProto_DataLocation.EXTERNAL;
    t.externalData = [entry('location', path.basename(temp)), entry('offset', String(offset)), entry('length', String(raw.byteLength))];
  }
  try {
    const file = checkPath(target);
    fs.writeFileSync(file, Buffer.concat(encodeModelChunks(model)));
    return file;
  } finally {
    restore.forEach((r) => r());
  }
}

function entry(key: string, value: string) {
  return create(StringStringEntryProtoSchema, { key, value });
}

function checkPath(target: string): string {
  return tempPathFor(`${target}.check`);
}

/**
 * With external data the data file still has its temp name: the check reads a second small copy of the
 * model (tensor headers only; the bytes are in the data file) whose locations name that temp file.
 */
function checkCopyPointingAt(model: ModelProto, target: string, dataTemp: string): string {
  const saved: [{ value: string }, string][] = [];
  const rel = path.basename(dataTemp);
  forEachTensor(model, (t) => {
    for (const e of t.externalData) if (e.key === 'location') { saved.push([e, e.value]); e.value = rel; }
  });
  try {
    const file = checkPath(target);
    fs.writeFileSync(file, Buffer.concat(encodeModelChunks(model)));
    return file;
  } finally {
    for (const [e, v] of saved) e.value = v;
  }
}
