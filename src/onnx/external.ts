/**
 * External data (onnx.proto: data_location = EXTERNAL with location/offset/length entries).
 * Locations resolve against the model's folder and may not escape it (onnxruntime enforces the same).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelProto, TensorProto } from 'onnx-buf';
import { create } from '@bufbuild/protobuf';
import { StringStringEntryProtoSchema } from 'onnx-buf';
import { ExitCode, UserInputError } from '../errors.js';
import { commitTemp, discardTemp, tempPathFor, writeAll } from './atomic.js';
import { forEachTensor } from './walk.js';
import { tensorDataBytes } from './tensor.js';

export type ExternalDataMode = 'auto' | 'always' | 'never';
const EXTERNAL = 1;
const ALIGN = 4096;
/** Tensors smaller than this stay inline when externalizing (as onnx's save_model default). */
const MIN_EXTERNAL_BYTES = 1024;

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

export function readExternalBytes(t: TensorProto, baseDir: string): Uint8Array {
  const file = resolveExternalPath(t, baseDir);
  const { offset, length } = externalInfo(t);
  const want = length ?? tensorDataBytes(t);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw unreadableDataError(t, file, baseDir, (e as NodeJS.ErrnoException).code);
  }
  try {
    const out = new Uint8Array(want);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(fd, out, got, want - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    if (got < want) {
      throw new UserInputError(`tensor '${t.name}': external data file '${path.basename(file)}' ends before offset ${offset}+${want}; it is truncated`);
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
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

interface Swap {
  t: TensorProto;
  rawData: TensorProto['rawData'];
  externalData: TensorProto['externalData'];
  dataLocation: number;
}

export interface WritePlan {
  model: ModelProto;
  dataPath?: string;
  commitData?: () => void;
  /** Restores every tensor this plan changed for encoding, and removes an uncommitted data file. */
  cleanup: () => void;
}

interface PlanOptions {
  mode: ExternalDataMode;
  threshold: number;
  dataFile: string;
  outDir: string;
  sourceBaseDir: string;
}

/**
 * Prepares `model` for encoding into `outDir`: decides inline vs external data, writes the data file
 * (to a temp path) and points tensors at it. Tensor fields are swapped in place for the encode and put
 * back by `cleanup()`, so the caller's model is unchanged afterwards.
 */
export function externalizeForWrite(model: ModelProto, o: PlanOptions): WritePlan {
  const tensors: TensorProto[] = [];
  forEachTensor(model, (t) => tensors.push(t));
  const anyExternal = tensors.some(isExternal);
  const total = tensors.reduce((s, t) => s + (isExternal(t) ? tensorDataBytes(t) : t.rawData.byteLength), 0);
  const externalize = o.mode === 'always' || (o.mode === 'auto' && (total > o.threshold || anyExternal));
  const swaps: Swap[] = [];
  const swap = (t: TensorProto) => swaps.push({ t, rawData: t.rawData, externalData: t.externalData, dataLocation: t.dataLocation });
  const restore = () => {
    for (const s of swaps.reverse()) Object.assign(s.t, { rawData: s.rawData, externalData: s.externalData, dataLocation: s.dataLocation });
  };

  if (!externalize) {
    try {
      for (const t of tensors.filter(isExternal)) {
        const bytes = readExternalBytes(t, o.sourceBaseDir) as Uint8Array<ArrayBuffer>;
        swap(t);
        Object.assign(t, { rawData: bytes, externalData: [], dataLocation: 0 });
      }
    } catch (e) {
      restore();
      throw e;
    }
    return { model, cleanup: restore };
  }

  const dataPath = path.resolve(o.outDir, o.dataFile);
  if (path.relative(o.outDir, dataPath).startsWith('..') || path.isAbsolute(o.dataFile)) {
    throw new UserInputError(`external data file '${o.dataFile}' must be inside the output folder`, ExitCode.usage);
  }
  for (const t of tensors.filter(isExternal)) {
    if (resolveExternalPath(t, o.sourceBaseDir) === dataPath) {
      throw new UserInputError(`${dataPath}: is the input model's own external data file; choose another output name`, ExitCode.usage);
    }
  }
  const temp = tempPathFor(dataPath);
  let committed = false;
  let fd: number;
  try {
    fd = fs.openSync(temp, 'w');
  } catch (e) {
    discardTemp(temp);
    throw new UserInputError(`${dataPath}: cannot write (${(e as NodeJS.ErrnoException).code}); check the folder`, ExitCode.io);
  }
  try {
    let offset = 0;
    for (const t of tensors) {
      const ext = isExternal(t);
      const len = ext ? tensorDataBytes(t) : t.rawData.byteLength;
      if (len < MIN_EXTERNAL_BYTES && !ext) continue;
      if (!ext && t.rawData.byteLength === 0) continue;
      const bytes = ext ? readExternalBytes(t, o.sourceBaseDir) : t.rawData;
      offset = Math.ceil(offset / ALIGN) * ALIGN;
      writeAll(fd, bytes, offset);
      swap(t);
      Object.assign(t, {
        rawData: new Uint8Array(0),
        dataLocation: EXTERNAL,
        externalData: [
          create(StringStringEntryProtoSchema, { key: 'location', value: o.dataFile }),
          create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
          create(StringStringEntryProtoSchema, { key: 'length', value: String(bytes.byteLength) }),
        ],
      });
      offset += bytes.byteLength;
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    discardTemp(temp);
    restore();
    throw e;
  }
  fs.closeSync(fd);
  return {
    model,
    dataPath,
    commitData: () => {
      commitTemp(temp, dataPath);
      committed = true;
    },
    cleanup: () => {
      restore();
      if (!committed) discardTemp(temp);
    },
  };
}
