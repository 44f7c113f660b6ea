/**
 * External data (onnx.proto: data_location = EXTERNAL with location/offset/length entries).
 * Locations resolve against the model's folder and may not escape it (onnxruntime enforces the same).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GraphProto, ModelProto, TensorProto } from 'onnx-buf';
import { clearField, create, isFieldSet } from '@bufbuild/protobuf';
import { StringStringEntryProtoSchema, TensorProtoSchema } from 'onnx-buf';
import { ExitCode, InvariantError, UserInputError } from '../errors.js';
import { commitTemp, discardTemp, tempPathFor, writeAll } from './atomic.js';
import { DataType } from './dtype.js';
import { forEachGraph, forEachTensor } from './walk.js';
import { tensorDataBytes, tensorRawBytes } from './tensor.js';

export type ExternalDataMode = 'auto' | 'always' | 'never';
const EXTERNAL = 1;
const ALIGN = 4096;
/** Tensors smaller than this stay inline when externalizing (as onnx's save_model default). */
const MIN_EXTERNAL_BYTES = 1024;
/** One protobuf message cannot exceed 2 GiB (2^31 − 1 bytes); refuse before reading or encoding that much. */
const INLINE_LIMIT = 2 ** 31;

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === EXTERNAL;
}

export interface ExternalInfo {
  location: string;
  offset: number;
  length?: number;
}

export function externalInfo(t: TensorProto): ExternalInfo {
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = kv.get('location');
  if (!location) throw new UserInputError(`tensor '${t.name}': external data has no location; the model is damaged`);
  const offset = parseByteCount(t, 'offset', kv.get('offset') ?? '0');
  const len = kv.get('length');
  return { location, offset, length: len === undefined ? undefined : parseByteCount(t, 'length', len) };
}

function parseByteCount(t: TensorProto, key: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) {
    throw new UserInputError(`tensor '${t.name}': external data ${key} '${text}' is not a byte count; the model is damaged`);
  }
  return n;
}

/** Resolves an external location inside `baseDir`, refusing absolute paths and `..` escapes. */
export function resolveExternalPath(t: TensorProto, baseDir: string): string {
  const { location } = externalInfo(t);
  if (path.isAbsolute(location)) {
    throw new UserInputError(`tensor '${t.name}': external data location '${location}' is absolute; it must be relative to the model's folder`);
  }
  const full = path.resolve(baseDir, location);
  const rel = path.relative(baseDir, full);
  if (rel === '..' || rel.startsWith(`..${path.sep}`)) {
    throw new UserInputError(`tensor '${t.name}': external data location '${location}' escapes the model's folder`);
  }
  return full;
}

/** An external tensor's data file opened for reading, with where the tensor starts in it. */
export interface ExternalFile {
  fd: number;
  path: string;
  offset: number;
}

/** Opens the data file of external tensor `t`; a missing or unreadable file is a one-line error (exit 5). */
export function openExternal(t: TensorProto, baseDir: string): ExternalFile {
  const file = resolveExternalPath(t, baseDir);
  try {
    return { fd: fs.openSync(file, 'r'), path: file, offset: externalInfo(t).offset };
  } catch (e) {
    throw unreadableDataError(t, file, baseDir, (e as NodeJS.ErrnoException).code);
  }
}

/** Fills `into` with the bytes `at` bytes past the tensor's start; a file that ends first is a one-line error. */
export function readExternalInto(t: TensorProto, f: ExternalFile, into: Uint8Array, at: number): void {
  for (let got = 0; got < into.byteLength;) {
    const n = fs.readSync(f.fd, into, got, into.byteLength - got, f.offset + at + got);
    if (n === 0) {
      throw new UserInputError(`tensor '${t.name}': external data file '${path.basename(f.path)}' ends before offset ${f.offset}+${at + into.byteLength}; it is truncated`);
    }
    got += n;
  }
}

export function readExternalBytes(t: TensorProto, baseDir: string): Uint8Array {
  const want = externalInfo(t).length ?? tensorDataBytes(t);
  const f = openExternal(t, baseDir);
  try {
    const out = new Uint8Array(want);
    readExternalInto(t, f, out, 0);
    return out;
  } finally {
    fs.closeSync(f.fd);
  }
}

const COPY_BYTES = 8 << 20;

/** Copies an external tensor's bytes into `fd` at `offset` in 8 MiB pieces (never the whole tensor in memory). */
function copyExternalBytes(t: TensorProto, baseDir: string, fd: number, offset: number): number {
  const want = externalInfo(t).length ?? tensorDataBytes(t);
  const src = openExternal(t, baseDir);
  try {
    const buf = new Uint8Array(Math.min(COPY_BYTES, Math.max(1, want)));
    for (let done = 0; done < want;) {
      const piece = buf.subarray(0, Math.min(buf.byteLength, want - done));
      readExternalInto(t, src, piece, done);
      writeAll(fd, piece, offset + done);
      done += piece.byteLength;
    }
  } finally {
    fs.closeSync(src.fd);
  }
  return want;
}

function unreadableDataError(t: TensorProto, file: string, baseDir: string, code: string | undefined): UserInputError {
  const what = code === 'ENOENT' ? 'is missing' : `cannot be read (${code})`;
  return new UserInputError(
    `tensor '${t.name}': external data file '${path.relative(baseDir, file)}' ${what} in ${baseDir}; keep the data file beside the model`,
    ExitCode.io,
  );
}

/**
 * Checks every external reference without reading the data: the location stays inside `baseDir`, the
 * file exists and holds offset+length bytes. Throws the first problem as a one-line UserInputError.
 */
export function checkExternalData(model: ModelProto, baseDir: string): void {
  const sizes = new Map<string, number>();
  forEachTensor(model, (t) => {
    if (!isExternal(t)) return;
    const file = resolveExternalPath(t, baseDir);
    let size = sizes.get(file);
    if (size === undefined) {
      try {
        const st = fs.statSync(file);
        if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
        size = st.size;
      } catch (e) {
        throw unreadableDataError(t, file, baseDir, (e as NodeJS.ErrnoException).code);
      }
      sizes.set(file, size);
    }
    const { offset, length } = externalInfo(t);
    const end = offset + (length ?? tensorDataBytes(t));
    if (end > size) {
      throw new UserInputError(`tensor '${t.name}': external data file '${path.relative(baseDir, file)}' has ${size} bytes but the tensor ends at ${end}; it is truncated`);
    }
  });
}

/** The data-bearing fields of a tensor, saved so a write can swap them for encoding and put them back. */
type DataFields = Pick<TensorProto, 'rawData' | 'floatData' | 'int32Data' | 'int64Data' | 'doubleData' | 'uint64Data' | 'externalData' | 'dataLocation'>;
const DATA_KEYS = ['rawData', 'floatData', 'int32Data', 'int64Data', 'doubleData', 'uint64Data', 'externalData', 'dataLocation'] as const;

/**
 * A restorer for `t`'s data fields. onnx.proto is proto2, where a field can be unset (not encoded) or set
 * to its default (encoded): restore presence too, or the re-encoded model would gain `data_location: 0`.
 */
function saveDataFields(t: TensorProto): () => void {
  const fields = DATA_KEYS.map((k) => TensorProtoSchema.field[k]!);
  const set = fields.filter((f) => isFieldSet(t, f));
  const values = Object.fromEntries(set.map((f) => [f.localName, t[f.localName as keyof DataFields]])) as Partial<DataFields>;
  return () => {
    for (const f of fields) clearField(t, f);
    Object.assign(t, values);
  };
}

/** Marks `t` as inline: data_location unset (as writers that never used external data leave it). */
export function clearExternal(t: TensorProto): void {
  t.externalData = [];
  clearField(t, TensorProtoSchema.field.dataLocation!);
}

const NO_TYPED = { floatData: [], int32Data: [], int64Data: [], doubleData: [], uint64Data: [] };

/** A deferred tensor's place in the data file being written. */
export interface DeferredPlacement {
  tensor: TensorProto;
  offset: number;
}

/**
 * Tensors whose values are computed while writing (src/passes/deferred.ts): the writer leaves their byte
 * ranges in the data file to `fill`, and asks for the values of those it writes inline (`materialize`).
 */
export interface DeferredData {
  sizeOf(t: TensorProto): number | undefined;
  materialize(tensors: Iterable<TensorProto>): void;
  fill(fd: number, file: string, placements: DeferredPlacement[]): Promise<void>;
}

export interface WritePlan {
  model: ModelProto;
  /** Deferred tensors' ranges in the data file, still to be filled (under `dataTemp`). */
  deferredPlacements?: DeferredPlacement[];
  dataPath?: string;
  /** The data file's temp path until `commitData` moves it to `dataPath`. */
  dataTemp?: string;
  commitData?: () => void;
  /** Restores every tensor this plan changed for encoding, and removes an uncommitted data file. */
  cleanup: () => void;
  /** Restores the tensors only (once encoded, the model may be shared again); idempotent. */
  restoreTensors: () => void;
}

export interface PlanOptions {
  mode: ExternalDataMode;
  threshold: number;
  dataFile: string;
  outDir: string;
  sourceBaseDir: string;
  deferred?: DeferredData;
}

/** Bytes of values a tensor carries (raw, typed fields, external or deferred); strings count 0 (never external). */
function storedBytes(t: TensorProto, deferred?: DeferredData): number {
  if (t.dataType === DataType.STRING) return 0;
  const later = deferred?.sizeOf(t);
  if (later !== undefined) return later;
  return isExternal(t) ? tensorDataBytes(t) : Math.max(t.rawData.byteLength, hasTypedData(t) ? tensorDataBytes(t) : 0);
}

/** Which tensors go to the data file (none when the model is written inline): the rule of externalizeForWrite. */
export function externalLayout(model: ModelProto, o: PlanOptions): { tensors: TensorProto[]; externalize: boolean; chosen: TensorProto[]; total: number } {
  const tensors: TensorProto[] = [];
  forEachTensor(model, (t) => tensors.push(t));
  const anyExternal = tensors.some(isExternal);
  const total = tensors.reduce((s, t) => s + storedBytes(t, o.deferred), 0);
  const externalize = o.mode === 'always' || (o.mode === 'auto' && (total > o.threshold || anyExternal));
  if (!externalize) return { tensors, externalize, chosen: [], total };
  const inits = initializerSet(model);
  const chosen = tensors.filter((t) => isExternal(t) || (inits.has(t) && storedBytes(t, o.deferred) >= MIN_EXTERNAL_BYTES));
  return { tensors, externalize, chosen, total };
}

/** Deferred tensors the write keeps inline (their values are needed in memory before encoding). */
export function deferredInline(model: ModelProto, o: PlanOptions): TensorProto[] {
  if (!o.deferred) return [];
  const { tensors, chosen } = externalLayout(model, o);
  const external = new Set(chosen);
  return tensors.filter((t) => !external.has(t) && o.deferred!.sizeOf(t) !== undefined);
}

/** Bytes the data file of this write will take (4096-aligned tensors), 0 when written inline. */
export function dataFileBytes(model: ModelProto, o: PlanOptions): number {
  let offset = 0;
  for (const t of externalLayout(model, o).chosen) offset = Math.ceil(offset / ALIGN) * ALIGN + storedBytes(t, o.deferred);
  return offset;
}

function hasTypedData(t: TensorProto): boolean {
  return t.floatData.length + t.int32Data.length + t.int64Data.length + t.doubleData.length + t.uint64Data.length > 0;
}

/** Initializers of every graph (main, nested subgraphs, training graphs): the tensors written externally. */
function initializerSet(model: ModelProto): Set<TensorProto> {
  const out = new Set<TensorProto>();
  const visit = (g: GraphProto) => forEachGraph(g, (sg) => sg.initializer.forEach((t) => out.add(t)));
  if (model.graph) visit(model.graph);
  for (const ti of model.trainingInfo) for (const g of [ti.initialization, ti.algorithm]) if (g) visit(g);
  return out;
}

/**
 * Prepares `model` for encoding into `outDir`: decides inline vs external data, writes the data file
 * (to a temp path) and points tensors at it. Tensor fields are swapped in place for the encode and put
 * back by `cleanup()`, so the caller's model is unchanged afterwards.
 *
 * External: initializers of ≥ 1 KiB (raw or typed fields, as onnx.save_model) and every tensor already
 * external in the source go to one data file, each at a 4096-aligned offset (page-aligned for mmap).
 * Tensors in node attributes stay inline (onnx's default, convert_attribute=False). Inline: every
 * external tensor is read back into raw_data.
 */
export function externalizeForWrite(model: ModelProto, o: PlanOptions): WritePlan {
  const { tensors, externalize, chosen, total } = externalLayout(model, o);
  const stillDeferred = deferredInline(model, o);
  if (stillDeferred.length > 0) throw new InvariantError(`tensor '${stillDeferred[0]!.name}' is written inline but its values were not computed`);
  if (!externalize && total >= INLINE_LIMIT) {
    throw new UserInputError(`${path.join(o.outDir, o.dataFile)}: the model holds ${total} bytes of tensor data, over the 2 GiB protobuf limit for one file; write it with external data`, ExitCode.unsupported);
  }
  const saved: (() => void)[] = [];
  const replace = (t: TensorProto, fields: Partial<DataFields>) => {
    saved.push(saveDataFields(t));
    Object.assign(t, fields);
  };
  const restore = () => {
    while (saved.length) saved.pop()!();
  };
  try {
    if (!externalize) {
      for (const t of tensors.filter(isExternal)) {
        replace(t, { rawData: readExternalBytes(t, o.sourceBaseDir) as Uint8Array<ArrayBuffer> });
        clearExternal(t);
      }
      return { model, cleanup: restore, restoreTensors: restore };
    }
    return writeDataFile(model, chosen, o, replace, restore);
  } catch (e) {
    restore();
    throw e;
  }
}

function checkDataPath(tensors: TensorProto[], o: PlanOptions): string {
  const dataPath = path.resolve(o.outDir, o.dataFile);
  const rel = path.relative(o.outDir, dataPath);
  if (path.isAbsolute(o.dataFile) || rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`)) {
    throw new UserInputError(`external data file '${o.dataFile}' must be inside the output folder`, ExitCode.usage);
  }
  for (const t of tensors.filter(isExternal)) {
    if (resolveExternalPath(t, o.sourceBaseDir) === dataPath) {
      throw new UserInputError(`${dataPath}: is the input model's own external data file; choose another output name`, ExitCode.usage);
    }
  }
  return dataPath;
}

function writeDataFile(
  model: ModelProto, tensors: TensorProto[], o: PlanOptions,
  replace: (t: TensorProto, f: Partial<DataFields>) => void, restore: () => void,
): WritePlan {
  const dataPath = checkDataPath(tensors, o);
  const temp = tempPathFor(dataPath);
  let fd: number;
  try {
    fd = fs.openSync(temp, 'w');
  } catch (e) {
    discardTemp(temp);
    throw new UserInputError(`${dataPath}: cannot write (${(e as NodeJS.ErrnoException).code}); check that the folder exists and is writable`, ExitCode.io);
  }
  const placements: DeferredPlacement[] = [];
  try {
    let offset = 0;
    for (const t of tensors) {
      offset = Math.ceil(offset / ALIGN) * ALIGN;
      const later = o.deferred?.sizeOf(t);
      let byteLength: number;
      if (later !== undefined) {
        placements.push({ tensor: t, offset });
        byteLength = later;
      } else if (isExternal(t)) {
        byteLength = copyExternalBytes(t, o.sourceBaseDir, fd, offset);
      } else {
        const bytes = t.rawData.byteLength > 0 ? t.rawData : tensorRawBytes(t, o.sourceBaseDir);
        writeAll(fd, bytes, offset);
        byteLength = bytes.byteLength;
      }
      replace(t, {
        ...NO_TYPED,
        rawData: new Uint8Array(0),
        dataLocation: EXTERNAL,
        externalData: [
          create(StringStringEntryProtoSchema, { key: 'location', value: o.dataFile }),
          create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
          create(StringStringEntryProtoSchema, { key: 'length', value: String(byteLength) }),
        ],
      });
      offset += byteLength;
    }
    // Deferred ranges are filled later; the file has its full length now.
    if (placements.length > 0) fs.ftruncateSync(fd, Math.max(offset, fs.fstatSync(fd).size));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } catch (e) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    discardTemp(temp);
    throw e instanceof UserInputError ? e : new UserInputError(`${dataPath}: write failed (${(e as Error).message})`, ExitCode.io);
  }
  let committed = false;
  return {
    model,
    deferredPlacements: placements,
    dataPath,
    dataTemp: temp,
    commitData: () => {
      commitTemp(temp, dataPath);
      committed = true;
    },
    restoreTensors: restore,
    cleanup: () => {
      restore();
      if (!committed) discardTemp(temp);
    },
  };
}
