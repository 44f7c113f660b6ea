/**
 * The streaming transform (src/passes/deferred.ts, tensor-jobs.ts, job-pool.ts): values computed chunk by chunk
 * while writing give the bytes of the in-memory path — per job against the whole-array functions (drawMask,
 * sampleInit, rescaleToStd, applyMask, nonZeroMoments) for every mask mode, init action and float type; per
 * model, every output file of `writeTransformOutputs` is byte-identical between the in-memory path, the
 * streaming path and 1, 2 or 3 worker threads (external-data inputs, inline inputs written with external
 * data, float16, tied weights, bool and bit-packed masks, the train-step and eval graphs); the CLI streams, and refuses an output folder
 * without the disk space the outputs need.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode, UserInputError } from '../src/errors.js';
import { readModel, writeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { encodeFloats, makeFloatTensor, tensorToFloat32 } from '../src/onnx/tensor.js';
import { drawMask, type MaskSpec } from '../src/passes/mask-patterns.js';
import { applyMask, rescaleToStd, sampleInit } from '../src/passes/init-sampling.js';
import { packMaskBits } from '../src/passes/mask-storage.js';
import { nonZeroMoments } from '../src/passes/init.js';
import { Rng } from '../src/passes/rng.js';
import { runTensorJob, runTensorJobToArrays, type InitJob, type JobPart, type TensorJob } from '../src/passes/tensor-jobs.js';
import { transform, writeTransformOutputs, type TransformOptions, type WriteOutputsOptions } from '../src/transform.js';
import { runCli } from './cli-helpers.js';
import { REAL_FIXTURES, ROOT, tempDir } from './helpers.js';
import { randomFloats, seededRandom } from './model-builders.js';

const GPT_TINY = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');
const LLAMA_TIED = path.join(REAL_FIXTURES, 'hf_llama_w32_tied_dynamo.onnx');

// ---- jobs: chunked = whole-array -------------------------------------------------------------------------

const SHAPE = [96, 40];
const N = 96 * 40;
const MASKS: (MaskSpec | undefined)[] = [
  undefined,
  { shape: SHAPE, density: 0.3, mode: 'exact', inputAxis: 0, outputAxis: 1, name: 'w' },
  { shape: SHAPE, density: 0.7, mode: 'exact', inputAxis: 0, outputAxis: 1, name: 'w' },
  { shape: SHAPE, density: 0.25, mode: 'bernoulli', inputAxis: 0, outputAxis: 1, name: 'w' },
  { shape: SHAPE, density: 0.25, mode: 'per-row', inputAxis: 0, outputAxis: 1, name: 'w' },
  { shape: SHAPE, density: 0.5, mode: 'n:m', n: 2, m: 4, inputAxis: 0, outputAxis: 1, name: 'w' },
];

/** The init pass before streaming: decode, draw or rescale in one array, measure, encode. */
function wholeArray(job: TensorJob, source: Float32Array): { weight: Uint8Array; mask?: Uint8Array; std_before: number; std_after: number; non_zeros: number } {
  const mask = job.mask ? drawMask(job.mask, Rng.forTensor(job.seed, job.name, 'mask')) : undefined;
  const init = job.init!;
  const values = Float32Array.from(source);
  const before = nonZeroMoments(values);
  if (init.action === 'resampled') sampleInit(values, mask, init.std!, Rng.forTensor(job.seed, job.name, 'init'), { truncated: init.truncated });
  else if (init.action === 'rescaled') rescaleToStd(values, mask, init.std!);
  else if (mask) applyMask(values, mask);
  const after = nonZeroMoments(values);
  return { weight: encodeFloats(values, init.dataType), mask, std_before: before.std, std_after: after.std, non_zeros: after.count };
}

test('a job written in chunks gives the whole-array bytes and numbers: every mask mode, init action and float type', () => {
  const source = randomFloats(N, seededRandom(5)).map((x, i) => (i % 17 === 0 ? 0 : x));
  let checked = 0;
  for (const dataType of [DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]) {
    // The source as that type's bytes, and the float32 values the old code decoded from them.
    const sourceBytes = encodeFloats(source, dataType);
    const decoded = tensorToFloat32(makeFloatTensor('w', SHAPE, source, dataType), '.');
    for (const mask of MASKS) {
      for (const [action, truncated] of [['resampled', false], ['resampled', true], ['rescaled', false], ['masked', false], ['kept', false]] as const) {
        if (action === 'masked' && !mask) continue;
        const init: InitJob = { action, std: 0.05, truncated, dataType, source: { kind: 'bytes', bytes: sourceBytes } };
        const job: TensorJob = { name: 'w', seed: 7, elements: N, mask, init };
        const want = wholeArray(job, decoded);
        const parts = new Set<JobPart>(mask ? ['weight', 'mask'] : ['weight']);
        const whole = runTensorJobToArrays(job, parts);
        const label = `${dataType} ${mask?.mode ?? 'dense'} ${action}${truncated ? ' truncated' : ''}`;
        assert.deepEqual(Buffer.from(whole.outputs.weight!), Buffer.from(want.weight), `${label}: weight bytes`);
        if (mask) assert.deepEqual(whole.outputs.mask, want.mask, `${label}: mask bytes`);
        assert.deepEqual(whole.stats.init, { std_before: want.std_before, std_after: want.std_after, non_zeros: want.non_zeros }, `${label}: numbers`);
        // Chunks of 352 entries (11 bitset words; the last chunk is partial) write the same bytes.
        for (const chunk of [32, 352]) {
          const out = { weight: new Uint8Array(whole.outputs.weight!.byteLength), mask: new Uint8Array(N) };
          const stats = runTensorJob(job, parts, (part, at, bytes) => out[part].set(bytes, at), chunk);
          assert.deepEqual(out.weight, whole.outputs.weight, `${label}: chunk ${chunk}`);
          if (mask) assert.deepEqual(out.mask, whole.outputs.mask, `${label}: mask chunk ${chunk}`);
          assert.deepEqual(stats, whole.stats, `${label}: numbers, chunk ${chunk}`);
        }
        checked++;
      }
    }
  }
  assert.equal(checked, 4 * (4 + 5 * 5));
});

test('a bit-packed mask part is packMaskBits of the byte mask, in chunks too', () => {
  for (const mask of MASKS.slice(1)) {
    for (const n of [N, N - 5]) {
      const spec = { ...mask!, shape: [n] , inputAxis: 0, outputAxis: 0, ...(mask!.mode === 'n:m' ? { shape: SHAPE, inputAxis: 0, outputAxis: 1 } : {}) };
      const elements = spec.shape.reduce((a, b) => a * b, 1);
      const job: TensorJob = { name: 'w', seed: 2, elements, mask: spec, maskStorage: 'bits' };
      const want = packMaskBits(drawMask(spec, Rng.forTensor(2, 'w', 'mask')));
      for (const chunk of [64, 1 << 20]) {
        const out = new Uint8Array(Math.ceil(elements / 8));
        const stats = runTensorJob(job, new Set(['mask']), (_part, at, bytes) => out.set(bytes, at), chunk);
        assert.deepEqual(out, want, `${spec.mode} n=${elements} chunk ${chunk}`);
        assert.equal(stats.maskNonZeros, drawMask(spec, Rng.forTensor(2, 'w', 'mask')).reduce((a, b) => a + b, 0));
      }
    }
  }
});

test('a job reads its source from a file range and refuses a short one', () => {
  const dir = tempDir();
  const values = randomFloats(N, seededRandom(2));
  const file = path.join(dir, 'w.data');
  fs.writeFileSync(file, Buffer.concat([Buffer.alloc(100), encodeFloats(values, DataType.FLOAT)]));
  const job = (source: InitJob['source']): TensorJob => ({ name: 'w', seed: 1, elements: N, mask: MASKS[1], init: { action: 'rescaled', std: 0.1, truncated: false, dataType: DataType.FLOAT, source } });
  const fromFile = runTensorJobToArrays(job({ kind: 'file', file, offset: 100, length: N * 4 }), new Set(['weight']), undefined);
  const inMemory = runTensorJobToArrays(job({ kind: 'bytes', bytes: encodeFloats(values, DataType.FLOAT) }), new Set(['weight']));
  assert.deepEqual(fromFile, inMemory);
  assert.throws(() => runTensorJobToArrays(job({ kind: 'file', file, offset: 100, length: N * 4 - 4 }), new Set(['weight'])), /tensor 'w': holds 15356 bytes but its shape needs 15360/);
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---- models: streaming = in-memory, threads 1 = 2 = 3 ----------------------------------------------------

/** Writes the outputs of one transform into a fresh folder; returns the folder. */
async function writeOutputs(file: string, options: TransformOptions, deferValues: boolean, wopts: WriteOutputsOptions = {}): Promise<string> {
  const dir = tempDir();
  const result = await transform(readModel(file), { ...options, deferValues });
  if (deferValues) assert.ok(result.deferred && result.deferred.size > 0, 'the values are left to the writer');
  const files = await writeTransformOutputs(result, path.join(dir, 'm.supar.onnx'), { html: false, ...wopts });
  if (deferValues) assert.equal(result.deferred!.size, result.deferred!.entries.size);
  assert.ok(files.model);
  return dir;
}

function assertSameFolders(a: string, b: string, label: string): string[] {
  const names = fs.readdirSync(a).sort();
  assert.deepEqual(fs.readdirSync(b).sort(), names, `${label}: same files`);
  for (const f of names) assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), `${label}: ${f} differs`);
  return names;
}

/** The fixture GPT with its float weights as float16 (and float16 logits), written with external data. */
function float16Gpt(dir: string): string {
  const input = readModel(GPT_TINY);
  const g = input.model.graph!;
  g.initializer = g.initializer.map((t) => (t.dataType === DataType.FLOAT ? makeFloatTensor(t.name, t.dims.map(Number), tensorToFloat32(t, '.').map((x) => Math.max(-6e4, x)), DataType.FLOAT16) : t));
  for (const o of g.output) if (o.type?.value.case === 'tensorType') o.type.value.value.elemType = DataType.FLOAT16;
  const file = path.join(dir, 'gpt16.onnx');
  writeModel(input.model, file, { externalData: 'always' });
  return file;
}

test('streaming and in-memory write the same files: external-data inputs, mask and init modes, float16, tied weights', async () => {
  const src = tempDir();
  const external = path.join(src, 'gpt.onnx');
  writeModel(readModel(GPT_TINY).model, external, { externalData: 'always' });
  const cases: [string, string, TransformOptions, WriteOutputsOptions][] = [
    ['external, per-tensor, resample', external, { density: 0.25, seed: 3 }, {}],
    ['external, bernoulli, rescale', external, { density: 0.3, mask: 'bernoulli', init: 'rescale' }, {}],
    ['external, per-row, keep', external, { density: 0.5, mask: 'per-row', init: 'keep' }, {}],
    ['external, n:m 2:4, truncated', external, { density: 0.5, mask: 'n:m', nm: { n: 2, m: 4 }, truncated: true }, {}],
    ['float16 external', float16Gpt(src), { density: 0.125 }, {}],
    ['tied llama, inline input, --external-data always', LLAMA_TIED, { density: 0.25, seed: 1 }, { externalData: 'always' }],
    ['inline input, inline output', GPT_TINY, { density: 0.25, sparsify: ['*wte*'] }, { externalData: 'never' }],
    ['external, --mask-storage bool', external, { density: 0.25, maskStorage: 'bool', mask: 'bernoulli' }, {}],
  ];
  for (const [label, file, options, wopts] of cases) {
    const memory = await writeOutputs(file, options, false, wopts);
    const streamed = await writeOutputs(file, options, true, { ...wopts, threads: 1 });
    const names = assertSameFolders(memory, streamed, label);
    assert.equal(names.includes('m.supar.onnx.data'), wopts.externalData !== 'never', `${label}: external data as asked`);
    // Masks sit right after their weights in the file: the writer needs no mask held back.
    const model = readModel(path.join(streamed, 'm.supar.onnx')).model.graph!.initializer.map((t) => t.name);
    for (const [i, n] of model.entries()) if (n.endsWith('__mask') && model.includes(n.slice(0, -6))) assert.equal(model[i - 1], n.slice(0, -6), `${label}: ${n} follows its weight`);
    fs.rmSync(memory, { recursive: true, force: true });
    fs.rmSync(streamed, { recursive: true, force: true });
  }
  fs.rmSync(src, { recursive: true, force: true });
});

test('worker threads write the bytes of one thread (1, 2, 3), train-step and eval graphs included', async () => {
  const src = tempDir();
  const external = path.join(src, 'gpt.onnx');
  writeModel(readModel(GPT_TINY).model, external, { externalData: 'always' });
  const options: TransformOptions = { density: 0.125, seed: 11, emitTrain: true };
  const memory = await writeOutputs(external, options, false);
  const names = fs.readdirSync(memory);
  for (const f of ['m.supar.train.onnx', 'm.supar.train.onnx.data', 'm.supar.eval.onnx']) assert.ok(names.includes(f), f);
  for (const threads of [1, 2, 3]) {
    const streamed = await writeOutputs(external, options, true, { threads });
    assertSameFolders(memory, streamed, `threads ${threads}`);
    fs.rmSync(streamed, { recursive: true, force: true });
  }
  fs.rmSync(memory, { recursive: true, force: true });
  fs.rmSync(src, { recursive: true, force: true });
});

test('one deferred result written twice gives the same files twice (the second write runs the jobs again)', async () => {
  const src = tempDir();
  const external = path.join(src, 'gpt.onnx');
  writeModel(readModel(GPT_TINY).model, external, { externalData: 'always' });
  const result = await transform(readModel(external), { density: 0.25, emitTrain: true, deferValues: true });
  const [a, b] = [tempDir(), tempDir()];
  for (const dir of [a, b]) await writeTransformOutputs(result, path.join(dir, 'm.supar.onnx'), { html: false, threads: 1 });
  assertSameFolders(a, b, 'second write');
  for (const dir of [a, b, src]) fs.rmSync(dir, { recursive: true, force: true });
});

// ---- the CLI -----------------------------------------------------------------------------------------------

test('CLI: streams with worker threads (tsx), --dry-run reports the same numbers, and bad --threads is a usage error', async () => {
  const dir = tempDir();
  const external = path.join(dir, 'gpt.onnx');
  writeModel(readModel(GPT_TINY).model, external, { externalData: 'always' });
  const memory = await writeOutputs(external, { density: 0.25 }, false);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const r = await runCli([external, '--density', '0.25', '-o', path.join(out, 'm.supar.onnx'), '--threads', '2', '--no-html'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assertSameFolders(memory, out, 'CLI --threads 2');
  const dry = await runCli([external, '--density', '0.25', '--dry-run', '--json'], { cwd: dir });
  assert.equal(dry.code, 0, dry.stderr);
  const written = JSON.parse(fs.readFileSync(path.join(memory, 'm.supar.report.json'), 'utf8'));
  assert.deepEqual(JSON.parse(dry.stdout).report.tensors, written.tensors, 'dry run: non-zeros and init std as written');
  const bad = await runCli([external, '--threads', '0'], { cwd: dir });
  assert.equal(bad.code, ExitCode.usage);
  assert.match(bad.stderr, /--threads '0': must be a whole number from 1 to 256/);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(memory, { recursive: true, force: true });
});

test('disk space: an output folder without room is refused before anything is written (exit 5, one line)', async () => {
  const dir = tempDir();
  const external = path.join(dir, 'gpt.onnx');
  writeModel(readModel(GPT_TINY).model, external, { externalData: 'always' });
  const r = await runCli([external, '--density', '0.25'], { cwd: dir, env: { SUPAR_FREE_BYTES: '1000000' } });
  assert.equal(r.code, ExitCode.io, r.stderr);
  const line = r.stderr.trim();
  assert.ok(!line.includes('\n'), 'one line');
  // Data file: the fixture's tensors at 4096-aligned offsets plus the masks; the bound adds 1 MiB + 16 MiB.
  assert.match(line, new RegExp(`^error: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not enough disk space for the outputs: they need 17\\.\\d MiB \\(\\d+ bytes\\) and the folder's file system has 976\\.6 KiB \\(1000000 bytes\\) free; free some space or write elsewhere with -o$`));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['gpt.onnx', 'gpt.onnx.data'], 'nothing written');
  // The library: the same check, with the free space given.
  const result = await transform(readModel(external), { density: 0.25, deferValues: true });
  await assert.rejects(writeTransformOutputs(result, path.join(dir, 'x.onnx'), { freeBytes: 0 }), (e: unknown) => e instanceof UserInputError && e.exitCode === ExitCode.io);
  const ok = await runCli([external, '--density', '0.25', '--no-html'], { cwd: dir, env: { SUPAR_FREE_BYTES: String(64 << 20) } });
  assert.equal(ok.code, 0, ok.stderr);
  fs.rmSync(dir, { recursive: true, force: true });
});
