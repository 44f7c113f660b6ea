/**
 * Atomic file output: write to a temp file in the target folder, fsync, rename over the target.
 * Temp files still open when the process is interrupted are removed by the exit handler.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode, UserInputError } from '../errors.js';

const pendingTemps = new Set<string>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', removePendingTemps);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      removePendingTemps();
      process.exit(ExitCode.interrupted);
    });
  }
}

function removePendingTemps(): void {
  for (const t of pendingTemps) {
    try {
      fs.rmSync(t, { force: true });
    } catch {
      /* best effort on exit */
    }
  }
  pendingTemps.clear();
}

/** A temp path beside `target`, registered for removal on interrupt. */
export function tempPathFor(target: string): string {
  installHandlers();
  const t = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  pendingTemps.add(t);
  return t;
}

/** Moves a finished temp file into place; on failure the temp file is removed and the error is one line. */
export function commitTemp(temp: string, target: string): void {
  try {
    fs.renameSync(temp, target);
  } catch (e) {
    discardTemp(temp);
    const code = (e as NodeJS.ErrnoException).code;
    const hint = code === 'EISDIR' ? 'a folder has that name' : 'check the folder and permissions';
    throw new UserInputError(`${target}: cannot write (${code ?? (e as Error).message}); ${hint}`, ExitCode.io);
  }
  pendingTemps.delete(temp);
}

export function discardTemp(temp: string): void {
  fs.rmSync(temp, { force: true });
  pendingTemps.delete(temp);
}

/** Writes chunks (each < 2 GiB) to `target` atomically. */
export function writeFileAtomic(target: string, ...chunks: Uint8Array[]): void {
  commitTemp(writeChunksToTemp(target, chunks), target);
}

/** Writes chunks to a synced temp file beside `target` (registered for removal on interrupt); returns its path. */
export function writeChunksToTemp(target: string, chunks: readonly Uint8Array[]): string {
  const temp = tempPathFor(target);
  let fd: number;
  try {
    fd = fs.openSync(temp, 'w');
  } catch (e) {
    pendingTemps.delete(temp);
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserInputError(`${target}: cannot write (${code}); check that the folder exists and is writable`, ExitCode.io);
  }
  try {
    writeCoalesced(fd, chunks);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    discardTemp(temp);
    throw new UserInputError(`${target}: write failed (${(e as Error).message})`, ExitCode.io);
  }
  fs.closeSync(fd);
  return temp;
}

/** Writes chunks in order; small ones are gathered into 1 MiB blocks (one syscall each, not one per chunk). */
function writeCoalesced(fd: number, chunks: readonly Uint8Array[]): void {
  const block = new Uint8Array(1 << 20);
  let used = 0;
  const flush = () => {
    if (used > 0) writeAll(fd, block.subarray(0, used));
    used = 0;
  };
  for (const c of chunks) {
    if (c.byteLength >= block.byteLength / 4) {
      flush();
      writeAll(fd, c);
    } else {
      if (used + c.byteLength > block.byteLength) flush();
      block.set(c, used);
      used += c.byteLength;
    }
  }
  flush();
}

/** Writes a whole buffer in ≤ 1 GiB pieces (a single write is capped at 2^31−1 bytes). */
export function writeAll(fd: number, data: Uint8Array, position?: number): void {
  const step = 1 << 30;
  let off = 0;
  while (off < data.byteLength) {
    const n = fs.writeSync(fd, data, off, Math.min(step, data.byteLength - off), position === undefined ? null : position + off);
    off += n;
  }
}
