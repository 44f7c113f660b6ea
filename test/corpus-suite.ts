/**
 * The corpus test (issue 13), shared by test/corpus-a.test.ts and test/corpus-b.test.ts (two halves of the
 * corpus, so the two test processes of `npm test` share the load).
 *
 * For every file of fixtures/hf with default flags (the CLI in-process, see test/corpus-harness.ts): transform at
 * density 0.125 → the output loads and runs in onnxruntime; roles, sharing and attention scale equal the ground
 * truth from the PyTorch module (`<stem>.truth.json`); `--emit-train` → `train --steps 5` exits 0 and the loss falls.
 *
 * Many stages fail on the first corpus run; each expected failure is listed, with a one-line reason, in
 * test/corpus-known-failures.json. The test FAILS when a stage fails that is not on the list, AND when a stage on
 * the list passes: the list can only shrink, and whoever fixes a case removes its row
 * (`npm run corpus:stages -- --no-studies --write-known-failures` rewrites it from a run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readModel } from '../src/onnx/codec.js';
import { HF, TEST_STAGES, corpusFiles, readKnownFailures, type Stage, type StageResult } from './corpus-harness.js';
import { ROOT } from './helpers.js';

type Results = Record<Stage, StageResult>;

/** Starts test/corpus-worker.ts on one shard; each file's promise settles when the worker prints its line. */
function startWorker(shard: number, shards: number, files: string[]): Map<string, Promise<Results>> {
  const settle = new Map<string, { resolve: (r: Results) => void; reject: (e: Error) => void }>();
  const promises = new Map(files.map((f) => [f, new Promise<Results>((resolve, reject) => settle.set(f, { resolve, reject }))]));
  for (const p of promises.values()) p.catch(() => undefined);
  const tsx = pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href;
  const child = spawn(process.execPath, ['--import', tsx, path.join(ROOT, 'test', 'corpus-worker.ts'), String(shard), String(shards)], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buf = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => {
    buf += b.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.startsWith('@@RESULT ')) continue;
      const r = JSON.parse(line.slice('@@RESULT '.length)) as { file: string; stages: Results };
      settle.get(r.file)?.resolve(r.stages);
      settle.delete(r.file);
    }
  });
  child.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-2000)));
  child.on('close', (code, signal) => {
    for (const [file, s] of settle) s.reject(new Error(`corpus worker ended (code ${code}, signal ${signal}) before ${file}: ${err.trim().split('\n').at(-1) ?? ''}`));
  });
  return promises;
}

export function corpusSuite(shard: number, shards: number): void {
  const files = corpusFiles();
  const known = readKnownFailures();
  const mine = files.filter((_, i) => i % shards === shard);
  const results = startWorker(shard, shards, mine.map((f) => f.entry.file));
  for (const { entry } of mine) {
    test(`corpus ${entry.file}: ${TEST_STAGES.join(' → ')} against the ground truth`, { timeout: 300_000 }, async () => {
      const res = await results.get(entry.file)!;
      const problems: string[] = [];
      for (const s of TEST_STAGES) {
        const listed = known.has(`${entry.file}|${s}`);
        if (!res[s].ok && !listed) problems.push(`${s} FAILS and is not a known failure: ${res[s].reason}`);
        if (res[s].ok && listed) problems.push(`${s} now PASSES: remove {file: "${entry.file}", stage: "${s}"} from test/corpus-known-failures.json`);
      }
      assert.deepEqual(problems, [], `${entry.file}:\n  ${problems.join('\n  ')}`);
    });
  }
  if (shard !== 0) return;

  test('corpus: every file in fixtures/hf is in the manifest with its size, and its truth covers every initializer', () => {
    const listed = new Map(files.map(({ entry }) => [entry.file, entry]));
    const onDisk = fs.readdirSync(HF).filter((f) => f.endsWith('.onnx'));
    assert.deepEqual(onDisk.filter((f) => !listed.has(f)), [], 'files missing from manifest.json');
    assert.ok(files.length >= 60, `corpus has ${files.length} files`);
    assert.ok(new Set(files.map((f) => f.entry.family)).size >= 30, 'at least 30 families');
    for (const { entry, truth } of files) {
      const file = path.join(HF, entry.file);
      assert.equal(fs.statSync(file).size, (entry as { bytes?: number }).bytes, `${entry.file}: size`);
      const names = readModel(file).model.graph!.initializer.map((t) => t.name).sort();
      assert.deepEqual(Object.keys(truth.initializers).sort(), names, `${entry.file}: truth initializers`);
    }
  });

  test('corpus: the known-failures list names only corpus files and test stages', () => {
    const files_ = new Set(files.map((f) => f.entry.file));
    for (const key of known.keys()) {
      const [file, stage] = key.split('|');
      assert.ok(files_.has(file!), `known failure for a file not in the corpus: ${key}`);
      assert.ok((TEST_STAGES as readonly string[]).includes(stage!), `known failure for an unknown stage: ${key}`);
    }
  });
}
