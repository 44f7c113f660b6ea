import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { byteBatchStream, corpusFilePaths, loadTextCorpus, stripLicenceHeader } from '../src/experiments/text-corpus.js';
import { markovTokenStream } from '../src/experiments/train-run.js';

test('the corpus is read from the installed typescript and @types/node packages, in a fixed order', () => {
  const files = corpusFilePaths();
  assert.ok(files.some((f) => f.endsWith(path.join('typescript', 'lib', 'lib.es5.d.ts'))));
  assert.ok(files.some((f) => f.endsWith(path.join('@types', 'node', 'fs.d.ts'))));
  assert.deepEqual(files, corpusFilePaths());
  const c = loadTextCorpus(200_000);
  assert.equal(c.bytes.length, 200_000);
  const text = Buffer.from(c.bytes).toString('latin1');
  assert.ok(!text.includes('Copyright (c) Microsoft Corporation'), 'licence headers are dropped');
  // Real English prose: common words appear.
  for (const w of [' the ', ' of ', ' returns ', 'function']) assert.ok(text.includes(w), w);
});

test('licence header stripping only removes a leading /*! … */ block', () => {
  assert.equal(stripLicenceHeader('/*! licence */\n\ncode /*! keep */'), 'code /*! keep */');
  assert.equal(stripLicenceHeader('code'), 'code');
});

test('byte batches: targets are the inputs shifted by one byte; the same seed gives the same batches', () => {
  const bytes = new Uint8Array(Array.from({ length: 1000 }, (_, i) => i % 251));
  const a = byteBatchStream(bytes, 3, 10, 5)();
  assert.deepEqual(a.dims, [3, 10]);
  for (let r = 0; r < 3; r++) {
    for (let t = 0; t < 9; t++) assert.equal(a.targets[r * 10 + t], a.inputIds[r * 10 + t + 1]);
    assert.equal(Number(a.targets[r * 10 + 9]), (Number(a.inputIds[r * 10 + 9]) + 1) % 251);
  }
  assert.deepEqual(byteBatchStream(bytes, 3, 10, 5)(), a);
  assert.notDeepEqual(byteBatchStream(bytes, 3, 10, 6)(), a);
});

test('the synthetic Markov language: every token has at most 4 successors, targets continue the chain', () => {
  const b = markovTokenStream(50, 8, 40, 1)();
  const succ = new Map<bigint, Set<bigint>>();
  for (let r = 0; r < 8; r++) {
    for (let t = 0; t < 40; t++) {
      const i = r * 40 + t;
      if (t < 39) assert.equal(b.targets[i], b.inputIds[i + 1]);
      const s = succ.get(b.inputIds[i]) ?? new Set();
      s.add(b.targets[i]);
      succ.set(b.inputIds[i], s);
    }
  }
  for (const s of succ.values()) assert.ok(s.size <= 4);
});
