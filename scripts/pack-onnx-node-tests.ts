/**
 * Packs the ONNX backend node tests (onnx/onnx, onnx/backend/test/data/node at a release tag) into the one
 * archive the tests read, fixtures/onnx-node-tests/onnx-node-tests-v<ONNX>.tar.gz, and writes its checksum
 * to fixtures/onnx-node-tests/SHA256SUMS (fixtures/onnx-node-tests/README.md says where the cases come from).
 *
 *   node --import tsx scripts/pack-onnx-node-tests.ts <folder holding test_*> <onnx version, e.g. 1.22.0>
 *
 * The archive is reproducible: entries in sorted order, one fixed mtime, mode 0644, owner 0:0 without
 * names, gzip level 9. archive.json beside it records the archive's SHA-256 and the SHA-256 of
 * the unpacked tree (treeSha256), which test/onnx-node-cases.ts checks before and after unpacking.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { packTar } from 'modern-tar/fs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = path.join(ROOT, 'fixtures', 'onnx-node-tests');
/** Every entry gets this mtime, so the same cases always give the same bytes. */
const FIXED_MTIME = new Date('2000-01-01T00:00:00Z');

/** fixtures/onnx-node-tests/archive.json: what the archive is and the checksums that vouch for it. */
export interface ArchiveInfo {
  archive: string;
  onnxVersion: string;
  /** SHA-256 of the .tar.gz bytes (also in SHA256SUMS, for `sha256sum -c`). */
  sha256: string;
  bytes: number;
  cases: number;
  files: number;
  /** SHA-256 of the lines `<sha256 of file>  <path>\n` over every file, sorted by path: the unpacked tree. */
  treeSha256: string;
}

/** Paths (relative to `dir`, '/'-separated) of every file under the test_* folders, sorted. */
export function listCaseFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  for (const d of fs.readdirSync(dir).filter((n) => n.startsWith('test_'))) walk(d);
  return out.sort();
}

/** The tree checksum of ArchiveInfo.treeSha256 over `files` (relative, sorted) under `dir`. */
export function treeSha256(dir: string, files: string[]): string {
  const h = crypto.createHash('sha256');
  for (const f of files) h.update(`${sha256(fs.readFileSync(path.join(dir, f)))}  ${f}\n`);
  return h.digest('hex');
}

export function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

async function main(): Promise<void> {
  const [src, version] = process.argv.slice(2);
  if (!src || !version || !/^\d+\.\d+\.\d+$/.test(version)) {
    process.stderr.write('usage: node --import tsx scripts/pack-onnx-node-tests.ts <folder of test_* cases> <onnx version, e.g. 1.22.0>\n');
    process.exit(2);
  }
  const files = listCaseFiles(src);
  const name = `onnx-node-tests-v${version}.tar.gz`;
  const tmp = path.join(OUT_DIR, `.${name}.tmp`);
  await writeArchive(src, files, tmp);
  const gz = fs.readFileSync(tmp);
  const info: ArchiveInfo = {
    archive: name,
    onnxVersion: version,
    sha256: sha256(gz),
    bytes: gz.length,
    cases: new Set(files.map((f) => f.split('/')[0])).size,
    files: files.length,
    treeSha256: treeSha256(src, files),
  };
  fs.renameSync(tmp, path.join(OUT_DIR, name));
  fs.writeFileSync(path.join(OUT_DIR, 'archive.json'), `${JSON.stringify(info, null, 2)}\n`);
  fs.writeFileSync(path.join(OUT_DIR, 'SHA256SUMS'), `${info.sha256}  ${name}\n`);
  process.stdout.write(`${name}: ${info.cases} cases, ${info.files} files, ${(gz.length / 1e6).toFixed(2)} MB; sha256 ${info.sha256}; tree ${info.treeSha256}\n`);
}

/** `files` (relative to `src`, in the given order) as a .tar.gz at `out`, with fixed metadata; gzip level 9 (Node's zlib writes MTIME 0 in the header). */
export async function writeArchive(src: string, files: string[], out: string): Promise<void> {
  const entries = files.map((f) => ({ type: 'file' as const, source: path.join(src, f), target: f, mtime: FIXED_MTIME, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '' }));
  await pipeline(packTar(entries), zlib.createGzip({ level: 9 }), fs.createWriteStream(out));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
