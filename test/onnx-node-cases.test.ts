/** The shipped ONNX node-test archive: its checksums are checked before and after unpacking (test/onnx-node-cases.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, tempDir } from './helpers.js';
import { getArchiveInfo, unpackedArchive } from './onnx-node-cases.js';
import { sha256, treeSha256, writeArchive, type ArchiveInfo } from '../scripts/pack-onnx-node-tests.js';

/** A two-file archive in the shipped layout (archive.json beside it), with the given info overrides. */
async function tinyArchive(over: Partial<ArchiveInfo> = {}): Promise<string> {
  const src = tempDir();
  fs.mkdirSync(path.join(src, 'test_a', 'test_data_set_0'), { recursive: true });
  fs.writeFileSync(path.join(src, 'test_a', 'model.onnx'), 'model bytes');
  fs.writeFileSync(path.join(src, 'test_a', 'test_data_set_0', 'input_0.pb'), 'input bytes');
  const files = ['test_a/model.onnx', 'test_a/test_data_set_0/input_0.pb'];
  const dir = tempDir();
  await writeArchive(src, files, path.join(dir, 'a.tar.gz'));
  const gz = fs.readFileSync(path.join(dir, 'a.tar.gz'));
  const info: ArchiveInfo = { archive: 'a.tar.gz', onnxVersion: '0.0.0', sha256: sha256(gz), bytes: gz.length, cases: 1, files: 2, treeSha256: treeSha256(src, files), ...over };
  fs.writeFileSync(path.join(dir, 'archive.json'), JSON.stringify(info));
  return dir;
}

test('onnx-node archive: unpacked once into a folder named by its checksum, then reused', async () => {
  const dir = await tinyArchive();
  const cache = tempDir();
  const out = await unpackedArchive(dir, cache);
  assert.equal(path.basename(out), `onnx-node-tests-${getArchiveInfo(dir).sha256.slice(0, 16)}`);
  assert.equal(fs.readFileSync(path.join(out, 'test_a', 'model.onnx'), 'utf8'), 'model bytes');
  fs.writeFileSync(path.join(dir, 'a.tar.gz.bak'), '');
  assert.equal(await unpackedArchive(dir, cache), out);
  assert.deepEqual(fs.readdirSync(cache), [path.basename(out)], 'no temporary folder left');
});

test('onnx-node archive: a damaged archive is refused before unpacking', async () => {
  const dir = await tinyArchive();
  const info = getArchiveInfo(dir);
  fs.writeFileSync(path.join(dir, 'a.tar.gz'), 'version https://git-lfs.github.com/spec/v1\n');
  const actual = sha256(fs.readFileSync(path.join(dir, 'a.tar.gz')));
  const cache = tempDir();
  await assert.rejects(unpackedArchive(dir, cache), (e: Error) => e.message.endsWith(`a.tar.gz: SHA-256 ${actual} is not ${info.sha256} (archive.json); the file is damaged or a Git LFS pointer — check it out again`));
  assert.deepEqual(fs.readdirSync(cache), []);
});

test('onnx-node archive: an unpacked tree that differs from archive.json is refused and removed', async () => {
  const dir = await tinyArchive({ treeSha256: '0'.repeat(64) });
  const cache = tempDir();
  await assert.rejects(unpackedArchive(dir, cache), /a\.tar\.gz unpacked to 2 files with tree SHA-256 [0-9a-f]{64}; archive\.json says 2 and 0{64}$/);
  assert.deepEqual(fs.readdirSync(cache), [], 'nothing left in the cache');
});

test('the shipped archive: the checksums in archive.json and SHA256SUMS agree with the file', () => {
  const root = path.join(ROOT, 'fixtures', 'onnx-node-tests');
  const info = getArchiveInfo(root);
  const bytes = fs.readFileSync(path.join(root, info.archive));
  assert.equal(bytes.length, info.bytes);
  assert.equal(sha256(bytes), info.sha256);
  assert.equal(fs.readFileSync(path.join(root, 'SHA256SUMS'), 'utf8'), `${info.sha256}  ${info.archive}\n`);
  assert.equal(info.cases, 1765);
});
