/**
 * The ONNX backend node tests (fixtures/onnx-node-tests/README.md), shipped as one archive in the repository
 * and unpacked on first use into node_modules/.cache/supar-transform/onnx-node-tests-<sha256 prefix>/.
 *
 * Why there: node_modules/ is already git-ignored and never packed; `npm ci` deletes it, so a fresh install
 * starts from the archive again; `.cache/<tool>` under it is the folder build tools conventionally use; and
 * the folder name carries the archive's checksum, so a changed archive never meets an old tree.
 *
 * Checks: the archive's SHA-256 against archive.json on every call (a Git LFS pointer or a truncated file is
 * refused here); after unpacking, the count of files and the tree checksum (SHA-256 over each file's SHA-256
 * and path) before the folder is moved into place. The move is a rename, so two test processes unpacking at
 * once cannot leave a half-written folder: the first rename wins and the other copy is removed.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { unpackTar } from 'modern-tar/fs';
import { ROOT } from './helpers.js';
import { listCaseFiles, sha256, treeSha256, type ArchiveInfo } from '../scripts/pack-onnx-node-tests.js';

const ARCHIVE_DIR = path.join(ROOT, 'fixtures', 'onnx-node-tests');
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'supar-transform');

export function getArchiveInfo(archiveDir = ARCHIVE_DIR): ArchiveInfo {
  return JSON.parse(fs.readFileSync(path.join(archiveDir, 'archive.json'), 'utf8')) as ArchiveInfo;
}

/** The folder holding the unpacked test_* cases; unpacks and verifies them the first time. */
export async function onnxNodeTestsDir(): Promise<string> {
  return unpackedArchive(ARCHIVE_DIR, CACHE);
}

/** The archive that `archiveDir`/archive.json names, unpacked under `cacheDir` (checked as the header says). */
export async function unpackedArchive(archiveDir: string, cacheDir: string): Promise<string> {
  const info = getArchiveInfo(archiveDir);
  const file = path.join(archiveDir, info.archive);
  const shown = path.relative(ROOT, file);
  const actual = sha256(fs.readFileSync(file));
  if (actual !== info.sha256) {
    throw new Error(`${shown}: SHA-256 ${actual} is not ${info.sha256} (archive.json); the file is damaged or a Git LFS pointer — check it out again`);
  }
  const dir = path.join(cacheDir, `onnx-node-tests-${info.sha256.slice(0, 16)}`);
  if (fs.existsSync(dir)) return dir;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.mkdirSync(tmp);
    await pipeline(fs.createReadStream(file), zlib.createGunzip(), unpackTar(tmp));
    const files = listCaseFiles(tmp);
    const tree = treeSha256(tmp, files);
    if (files.length !== info.files || tree !== info.treeSha256) {
      throw new Error(`${shown} unpacked to ${files.length} files with tree SHA-256 ${tree}; archive.json says ${info.files} and ${info.treeSha256}`);
    }
    renameUnlessPresent(tmp, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** rename(2), where losing the race to a complete folder of the same name is fine. */
function renameUnlessPresent(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!((code === 'ENOTEMPTY' || code === 'EEXIST') && fs.existsSync(to))) throw e;
  }
}
