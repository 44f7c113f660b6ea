/**
 * Bad input through the CLI: every case gives exactly one line on stderr (`error: …` naming the file or
 * tensor), its class's exit code (README "Exit codes"), no stack trace, nothing on stdout, nothing written.
 * `--debug` adds the stack; `--help` and `--version` exit 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode } from '../src/errors.js';
import { encodeModel, writeModel } from '../src/onnx/codec.js';
import { runCli } from './cli-helpers.js';
import { REAL_FIXTURES, tempDir } from './helpers.js';
import { mlpModel } from './model-builders.js';

const REAL = path.join(REAL_FIXTURES, 'ort_gpt2_megatron.onnx');

interface BadCase {
  name: string;
  file: string;
  code: number;
  /** What the one line must mention (file or tensor name). */
  mentions: string;
}

function listing(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

function makeCases(dir: string): BadCase[] {
  const put = (name: string, bytes: Uint8Array | string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, bytes);
    return p;
  };
  const real = fs.readFileSync(REAL);
  const ir14 = mlpModel();
  ir14.irVersion = 14n;
  const ext = path.join(dir, 'ext', 'model.onnx');
  fs.mkdirSync(path.dirname(ext));
  writeModel(mlpModel(), ext, { externalData: 'always' });
  fs.rmSync(`${ext}.data`);
  fs.mkdirSync(path.join(dir, 'folder.onnx'));
  execFileSync('mkfifo', [path.join(dir, 'pipe.onnx')]);
  return [
    { name: 'empty file', file: put('empty.onnx', ''), code: ExitCode.badInput, mentions: 'empty.onnx' },
    { name: 'truncated file', file: put('truncated.onnx', real.subarray(0, Math.floor(real.length / 2))), code: ExitCode.badInput, mentions: 'truncated.onnx' },
    { name: 'text file', file: put('notes.onnx', 'this is a README, not a model\n'), code: ExitCode.badInput, mentions: 'notes.onnx' },
    { name: 'JSON file', file: put('model.json', '{"irVersion": 8, "graph": {}}\n'), code: ExitCode.badInput, mentions: 'model.json' },
    { name: 'missing external data file', file: ext, code: ExitCode.io, mentions: "tensor 'W1'" },
    { name: 'directory', file: path.join(dir, 'folder.onnx'), code: ExitCode.io, mentions: 'folder.onnx' },
    { name: 'FIFO (not a regular file; must not block)', file: path.join(dir, 'pipe.onnx'), code: ExitCode.io, mentions: 'pipe.onnx' },
    { name: 'path through a file (ENOTDIR)', file: path.join(REAL, 'inner.onnx'), code: ExitCode.io, mentions: 'inner.onnx' },
    { name: 'missing file', file: path.join(dir, 'nope.onnx'), code: ExitCode.io, mentions: 'nope.onnx' },
    { name: 'IR version 14', file: put('ir14.onnx', encodeModel(ir14)), code: ExitCode.unsupported, mentions: 'ir14.onnx' },
  ];
}

function assertOneLineError(r: { code: number; stdout: string; stderr: string }, c: BadCase): void {
  assert.equal(r.code, c.code, `${c.name}: exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '', `${c.name}: stdout`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${c.name}: exactly one line, got: ${r.stderr}`);
  assert.match(lines[0]!, /^error: /, c.name);
  assert.ok(lines[0]!.includes(c.mentions), `${c.name}: '${lines[0]}' should name ${c.mentions}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${c.name}: no stack trace`);
}

test('bad input: one line, class exit code, no stack, nothing written', { timeout: 120_000 }, async () => {
  const dir = tempDir();
  const cases = makeCases(dir);
  const before = listing(dir);
  const extData = fs.readFileSync(path.join(dir, 'ext', 'model.onnx'));
  // Two at a time: the machine has 2 cores shared with other test files.
  for (let i = 0; i < cases.length; i += 2) {
    const batch = cases.slice(i, i + 2);
    const results = await Promise.all(batch.map((c) => runCli(['inspect', c.file], { cwd: dir, timeoutMs: 30_000 })));
    batch.forEach((c, j) => assertOneLineError(results[j]!, c));
  }
  assert.deepEqual(listing(dir), before, 'no file created or removed');
  assert.ok(fs.readFileSync(path.join(dir, 'ext', 'model.onnx')).equals(extData), 'input unchanged');
});

test('unreadable file (chmod 000)', { timeout: 30_000 }, async (t) => {
  if (process.getuid?.() === 0) {
    // root reads through mode bits, so chmod 000 cannot make a file unreadable here; the
    // ENOTDIR and FIFO cases above cover paths the CLI cannot read as a model.
    t.skip('running as root: chmod 000 does not block reads');
    return;
  }
  const dir = tempDir();
  const p = path.join(dir, 'locked.onnx');
  fs.copyFileSync(REAL, p);
  fs.chmodSync(p, 0o000);
  const r = await runCli(['inspect', p], { cwd: dir });
  assertOneLineError(r, { name: 'unreadable', file: p, code: ExitCode.io, mentions: 'locked.onnx' });
});

test('--debug adds the stack; usage errors exit 2; --help and --version exit 0', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const empty = path.join(dir, 'empty.onnx');
  fs.writeFileSync(empty, '');
  const [debug, help, version, usage] = await Promise.all([
    runCli(['--debug', 'inspect', empty]),
    runCli(['--help']),
    runCli(['--version']),
    runCli(['inspect', empty, '--no-such-flag']),
  ]);
  assert.equal(debug.code, ExitCode.badInput);
  assert.match(debug.stderr, /^error: .*empty\.onnx: file is empty/);
  assert.match(debug.stderr, /\n\s+at .*codec\.ts/, 'stack with --debug');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /inspect/);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
  assert.equal(usage.code, ExitCode.usage);
  assert.equal(usage.stderr.trim().split('\n').length, 1, usage.stderr);
});
