/**
 * The `train` command and its data sources: token files in every format, synthetic tasks (deterministic,
 * learnable by construction), the CLI run with loss log and save, and the execution-provider errors
 * (this machine has no CUDA provider libraries: `--ep cuda` must fail with the install command, `--ep auto`
 * must warn and train on CPU).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readModel, writeModel } from '../src/onnx/codec.js';
import { transform } from '../src/transform.js';
import { openBatchSource, readTokenFile } from '../src/train/data.js';
import { CUDA_INSTALL_HINT, missingCudaLibraries } from '../src/train/runner.js';
import { runCli } from './cli-helpers.js';
import { ROOT, tempDir } from './helpers.js';

test('token files: .json, .u16, .i32 and bytewise text give the same ids; windows are shifted by one', () => {
  const dir = tempDir();
  const ids = [5, 7, 250, 0, 65, 66, 67, 10, 1, 2];
  fs.writeFileSync(path.join(dir, 't.json'), JSON.stringify(ids));
  fs.writeFileSync(path.join(dir, 't.u16'), Buffer.from(Uint16Array.from(ids).buffer));
  fs.writeFileSync(path.join(dir, 't.i32'), Buffer.from(Int32Array.from(ids).buffer));
  fs.writeFileSync(path.join(dir, 't.txt'), Buffer.from(ids));
  for (const ext of ['json', 'u16', 'i32', 'txt']) assert.deepEqual(Array.from(readTokenFile(path.join(dir, `t.${ext}`))), ids, ext);
  const src = openBatchSource(path.join(dir, 't.json'), { batch: 3, seq: 4, seed: 3, vocab: 256 });
  const b = src.next();
  for (let r = 0; r < 3; r++) {
    const row = Array.from(b.input.subarray(r * 4, r * 4 + 4), Number);
    const o = ids.findIndex((_, i) => ids.slice(i, i + 4).every((v, k) => v === row[k]));
    assert.ok(o >= 0, `row ${row} is a window of the data`);
    assert.deepEqual(Array.from(b.target.subarray(r * 4, r * 4 + 4), Number), ids.slice(o + 1, o + 5));
  }
  assert.throws(() => openBatchSource(path.join(dir, 't.json'), { batch: 1, seq: 4, seed: 0, vocab: 100 }), /token id 250 is outside the model's vocabulary of 100/);
  assert.throws(() => openBatchSource(path.join(dir, 't.json'), { batch: 1, seq: 10, seed: 0, vocab: 256 }), /fewer than --seq \+ 1/);
});

test('synthetic tasks: deterministic from the seed; count is x+1 mod symbols; unknown task is a usage error', () => {
  const a = openBatchSource('synthetic:count:16', { batch: 4, seq: 8, seed: 7, vocab: 256 }).next();
  const b = openBatchSource('synthetic:count:16', { batch: 4, seq: 8, seed: 7, vocab: 256 }).next();
  const c = openBatchSource('synthetic:count:16', { batch: 4, seq: 8, seed: 8, vocab: 256 }).next();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.input, c.input);
  a.input.forEach((x, i) => assert.equal(a.target[i], (x + 1n) % 16n));
  const rep = openBatchSource('synthetic:repeat', { batch: 2, seq: 32, seed: 0, vocab: 256 }).next();
  rep.input.forEach((x) => assert.ok(x < 16n, 'default symbols: min(16, vocab)'));
  assert.throws(() => openBatchSource('synthetic:nope', { batch: 1, seq: 4, seed: 0, vocab: 256 }), /unknown task; use one of synthetic:count/);
});

async function transformedFixture(): Promise<string> {
  const loaded = readModel(path.join(ROOT, 'fixtures', 'gpt-tiny.onnx'));
  const r = await transform(loaded, { density: 0.25, seed: 1 });
  const file = path.join(tempDir(), 'gpt.supar.onnx');
  writeModel(r.model, file);
  return file;
}

test('supar-transform train: reads the LR groups from metadata, logs CSV/JSON losses, saves a model with masks', async () => {
  const model = await transformedFixture();
  const dir = path.dirname(model);
  const csv = path.join(dir, 'loss.csv');
  const saved = path.join(dir, 'trained.onnx');
  const r = await runCli(['train', model, '--steps', '6', '--batch', '2', '--seq', '8', '--lr', '3e-3', '--threads', '1', '--log', csv, '--save', saved]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^trained 6 steps on cpu \(synthetic:count:16, batch 2×8, adamw lr 0\.003\): loss \d+\.\d{4} → \d+\.\d{4}/);
  const rows = fs.readFileSync(csv, 'utf8').trim().split('\n');
  assert.equal(rows[0], 'step,loss');
  assert.equal(rows.length, 7);
  assert.ok(rows.slice(1).every((l, i) => l.startsWith(`${i + 1},`) && Number.isFinite(Number(l.split(',')[1]))));
  const before = readModel(model).model.graph!.initializer;
  const after = readModel(saved).model.graph!.initializer;
  assert.deepEqual(after.map((t) => t.name), before.map((t) => t.name));
  const mask = before.find((t) => t.name.endsWith('__mask'))!;
  assert.deepEqual(after.find((t) => t.name === mask.name)!.rawData, mask.rawData);
  const json = path.join(dir, 'loss.json');
  const r2 = await runCli(['train', model, '--steps', '2', '--batch', '2', '--seq', '8', '--optimizer', 'sgd', '--lr', '0.1', '--log', json]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(JSON.parse(fs.readFileSync(json, 'utf8')).step, [1, 2]);
});

test('train: --ep cuda without the CUDA provider names the install command; --ep auto says what it skipped and uses CPU', async (t) => {
  if (!missingCudaLibraries()) return t.skip('the CUDA provider is installed here');
  const model = await transformedFixture();
  const cuda = await runCli(['train', model, '--steps', '1', '--batch', '1', '--seq', '4', '--ep', 'cuda']);
  assert.equal(cuda.code, 6);
  assert.equal(cuda.stderr.trim().split('\n').length, 1);
  assert.ok(cuda.stderr.includes(CUDA_INSTALL_HINT) && cuda.stderr.includes('ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node --dangerously-allow-all-scripts'), cuda.stderr);
  const auto = await runCli(['train', model, '--steps', '1', '--batch', '1', '--seq', '4', '--ep', 'auto']);
  assert.equal(auto.code, 0, auto.stderr);
  if (auto.stdout.includes('on webgpu')) return; // an adapter started here (a GPU, or SwiftShader in this process's environment)
  assert.match(auto.stderr, /--ep auto: running on cpu \(cuda: onnxruntime-node's CUDA provider is not installed .*; webgpu: no WebGPU adapter/);
  assert.ok(auto.stderr.includes(CUDA_INSTALL_HINT), auto.stderr);
  assert.match(auto.stdout, /on cpu/);
});

test('train: errors are one line naming the problem (no LR groups, bad flag, fixed-shape mismatch)', async () => {
  const plain = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');
  const r = await runCli(['train', plain, '--steps', '1']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /has no supar\.lr_groups metadata; transform it first/);
  const model = await transformedFixture();
  const bad = await runCli(['train', model, '--optimizer', 'lion']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--optimizer lion: expected one of adamw, sgd/);
});
