/**
 * Lossless ModelProto reader/writer on onnx-buf (ONNX 1.20 schema, @bufbuild/protobuf runtime).
 * Unknown fields are kept on read and re-emitted on write, so fields newer than the schema survive.
 * Byte fields decode as views into the file buffer: copy before reinterpreting (see tensor.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, type ModelProto, type TensorProto } from 'onnx-buf';
import { ExitCode, UserInputError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { chunksByteLength, encodeModelChunks } from './encode-stream.js';
import { dataFileBytes, externalizeForWrite, externalLayout, type DeferredData, type ExternalDataMode, type PlanOptions } from './external.js';
import { forEachTensor } from './walk.js';

/** Highest IR version onnxruntime-node 1.30 loads (measured, docs/notes/deps.md). */
export const MAX_IR_VERSION = 13;
/** Highest ai.onnx opset onnxruntime-node 1.30 loads. */
export const MAX_AI_ONNX_OPSET = 26;
/** A single protobuf message cannot exceed 2 GiB; stay under it with margin. */
export const DEFAULT_EXTERNAL_THRESHOLD = 1.8 * 1024 ** 3;

export interface LoadedModel {
  model: ModelProto;
  /** Absolute path of the model file. */
  path: string;
  /** Folder that external-data locations resolve against. */
  baseDir: string;
  fileBytes: number;
}

/** Decodes and validates ModelProto bytes; `label` names the source in errors. */
export function decodeModel(bytes: Uint8Array, label: string): ModelProto {
  if (bytes.byteLength === 0) {
    throw new UserInputError(`${label}: file is empty; expected an ONNX model (.onnx protobuf)`);
  }
  const head = bytes[firstNonSpace(bytes)];
  if (head === 0x7b || head === 0x5b) {
    throw new UserInputError(`${label}: looks like JSON, not an ONNX protobuf; pass the .onnx file itself`);
  }
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
  } catch (e) {
    if (looksLikeText(bytes)) throw notOnnxText(label);
    const why = (e as Error).message.split('\n')[0];
    throw new UserInputError(`${label}: not a valid ONNX protobuf (${why}); the file may be truncated or not an ONNX model`);
  }
  if (!model.graph && looksLikeText(bytes)) throw notOnnxText(label);
  validateModel(model, label);
  return model;
}

function notOnnxText(label: string): UserInputError {
  return new UserInputError(`${label}: is a text file, not an ONNX protobuf; pass the binary .onnx model`);
}

function firstNonSpace(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.byteLength && i < 64 && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0xef || bytes[i] === 0xbb || bytes[i] === 0xbf)) i++;
  return Math.min(i, bytes.byteLength - 1);
}

/** Printable ASCII/UTF-8 (and tab, newline, CR) in the first 512 bytes. A ModelProto starts with a control byte (tag 0x08). */
function looksLikeText(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.byteLength, 512);
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
    if (b === 0x7f) return false;
  }
  return true;
}

function validateModel(model: ModelProto, label: string): void {
  if (!model.graph) {
    throw new UserInputError(`${label}: no graph in the file; it is not an ONNX model (truncated, or another format)`);
  }
  const ir = Number(model.irVersion);
  if (ir <= 0) throw new UserInputError(`${label}: ir_version is missing; re-export the model with a current exporter`);
  if (ir > MAX_IR_VERSION) {
    throw new UserInputError(
      `${label}: IR version ${ir} is newer than the supported ${MAX_IR_VERSION}; re-export with an older IR version`,
      ExitCode.unsupported,
    );
  }
  if (model.opsetImport.length === 0) {
    throw new UserInputError(`${label}: opset_import is empty; the model does not say which operator set it uses`);
  }
}

/** Reads and validates a model file. Never modifies it. */
export function readModel(file: string): LoadedModel {
  const abs = path.resolve(file);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied'
      : code === 'ENOTDIR' ? 'a folder in the path is a file' : `cannot stat (${code})`;
    throw new UserInputError(`${file}: ${what}; check the path`, ExitCode.io);
  }
  if (stat.isDirectory()) throw new UserInputError(`${file}: is a directory; pass the .onnx file inside it`, ExitCode.io);
  // A FIFO or device would block or stream forever: only regular files are models.
  if (!stat.isFile()) throw new UserInputError(`${file}: is not a regular file; pass an .onnx file`, ExitCode.io);
  if (stat.size >= 2 ** 31) {
    throw new UserInputError(`${file}: ${stat.size} bytes exceeds the 2 GiB protobuf limit; use external data`, ExitCode.unsupported);
  }
  let buf: Buffer;
  try {
    buf = fs.readFileSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserInputError(`${file}: cannot read (${code ?? (e as Error).message}); check permissions`, ExitCode.io);
  }
  // Decode from a plain Uint8Array view so that byte-field `.slice()` copies instead of aliasing a Buffer pool.
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const model = decodeModel(bytes, file);
  return { model, path: abs, baseDir: path.dirname(abs), fileBytes: stat.size };
}

/** The model's bytes; identical to `toBinary(ModelProtoSchema, model, {writeUnknownFields: true})` with one copy instead of three. */
export function encodeModel(model: ModelProto): Uint8Array {
  const chunks = encodeModelChunks(model);
  const out = new Uint8Array(chunksByteLength(chunks));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export interface WriteOptions {
  /** `auto` (default): external data when the model would exceed `externalThreshold` bytes. */
  externalData?: ExternalDataMode;
  externalThreshold?: number;
  /** Data file name, relative to the model's folder (default `<model file>.data`). */
  dataFile?: string;
  /** Folder the model's existing external data resolves against (the source model's folder). */
  sourceBaseDir?: string;
  /** Tensors whose values are computed while writing (the streaming path; src/passes/deferred.ts). */
  deferred?: DeferredData;
}

export interface WrittenFiles {
  model: string;
  data?: string;
  bytes: number;
}

/** Where `model` goes when written to `file`: its absolute path, folder and external-data plan (the options' defaults applied). */
export function planWrite(model: ModelProto, file: string, opts: WriteOptions): { abs: string; dir: string; plan: ReturnType<typeof externalizeForWrite> } {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const plan = externalizeForWrite(model, planOptions(file, opts));
  return { abs, dir, plan };
}

/** The external-data plan's options for writing to `file` (the defaults applied). */
export function planOptions(file: string, opts: WriteOptions): PlanOptions {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  return {
    mode: opts.externalData ?? 'auto',
    threshold: opts.externalThreshold ?? DEFAULT_EXTERNAL_THRESHOLD,
    dataFile: opts.dataFile ?? `${path.basename(abs)}.data`,
    outDir: dir,
    sourceBaseDir: opts.sourceBaseDir ?? dir,
    deferred: opts.deferred,
  };
}

/**
 * Bytes the write of `model` to `file` puts on disk: its data file (4096-aligned tensors) plus the model file
 * (an upper bound: the tensors it keeps inline plus its structure).
 */
export function estimateWriteBytes(model: ModelProto, file: string, opts: WriteOptions): number {
  const o = planOptions(file, opts);
  const data = dataFileBytes(model, o);
  const { total } = externalLayout(model, o);
  return data + (data > 0 ? 0 : total) + (1 << 20);
}

/**
 * Writes `model` to `file` atomically (temp file + rename). Tensors stored externally in the source are
 * re-homed: inlined, or copied into the new data file beside the output. The input object is not mutated.
 */
export function writeModel(model: ModelProto, file: string, opts: WriteOptions = {}): WrittenFiles {
  // This writer is synchronous: deferred values are computed into the tensors first (the in-memory path).
  if (opts.deferred) {
    const all: TensorProto[] = [];
    forEachTensor(model, (t) => { if (opts.deferred!.sizeOf(t) !== undefined) all.push(t); });
    opts.deferred.materialize(all);
  }
  const { abs, dir, plan } = planWrite(model, file, opts);
  try {
    // Streamed in chunks (raw_data by reference): memory stays about the model itself.
    const chunks = encodeModelChunks(plan.model);
    const size = chunksByteLength(chunks);
    if (size >= 2 ** 31) {
      throw new UserInputError(`${file}: encoded model is over 2 GiB; write with --external-data`, ExitCode.unsupported);
    }
    writeFileAtomic(abs, ...chunks);
    try {
      plan.commitData?.();
    } catch (e) {
      fs.rmSync(abs, { force: true }); // a model whose data file is missing is worse than none
      throw e;
    }
    return { model: abs, data: plan.dataPath, bytes: size };
  } finally {
    plan.cleanup();
  }
}
