/**
 * The std before that the analysis measures while reading external weights (src/analysis/source-stds.ts) and
 * hands to the resample jobs (which then never read the source) equals nonZeroMoments of the source values,
 * bit for bit: float32 and float16 external data. The survey behind it (tensor-jobs.ts `ValueSurvey`: the
 * shared-copy fingerprint and the moments in one loop) equals per-element reference code; worker threads
 * (`surveyExternalWeights`) record the same numbers as this thread and leave a damaged file to the analysis.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeModel } from '../src/analysis/index.js';
import { SourceStds, surveyExternalWeights } from '../src/analysis/source-stds.js';
import { readModel, writeModel } from '../src/onnx/codec.js';
import { DataType, decodeHalfInto, halfBitsToFloat } from '../src/onnx/dtype.js';
import { externalInfo, isExternal, resolveExternalPath } from '../src/onnx/external.js';
import { makeFloatTensor, tensorToFloat32 } from '../src/onnx/tensor.js';
import { nonZeroMoments } from '../src/passes/init.js';
import { JobPool } from '../src/passes/job-pool.js';
import { ValueSurvey } from '../src/passes/tensor-jobs.js';
import { transform } from '../src/transform.js';
import { writeLlmModel } from '../fixtures/llm-builder.js';
import { ROOT, tempDir } from './helpers.js';

const GPT_TINY = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');

function externalCopies(dir: string): { label: string; file: string }[] {
  const f32 = path.join(dir, 'gpt.onnx');
  writeModel(readModel(GPT_TINY).model, f32, { externalData: 'always' });
  const half = readModel(GPT_TINY).model;
  const g = half.graph!;
  g.initializer = g.initializer.map((t) => (t.dataType === DataType.FLOAT ? makeFloatTensor(t.name, t.dims.map(Number), tensorToFloat32(t, '.'), DataType.FLOAT16) : t));
  for (const o of g.output) if (o.type?.value.case === 'tensorType') o.type.value.value.elemType = DataType.FLOAT16;
  const f16 = path.join(dir, 'gpt16.onnx');
  writeModel(half, f16, { externalData: 'always' });
  return [{ label: 'float32', file: f32 }, { label: 'float16', file: f16 }];
}

test('the analysis records nonZeroMoments std of external weights, and resample jobs get exactly that', async () => {
  const dir = tempDir();
  try {
    for (const { label, file } of externalCopies(dir)) {
      const input = readModel(file);
      const stds = new SourceStds();
      const analysis = analyzeModel(input.model, input.baseDir, { sourceStds: stds });
      const hidden = analysis.params.filter((p) => p.role === 'hidden');
      assert.ok(hidden.length >= 4, `${label}: hidden weights found`);
      let recorded = 0;
      for (const t of input.model.graph!.initializer.filter(isExternal)) {
        const got = stds.find(resolveExternalPath(t, input.baseDir), externalInfo(t).offset, t.dataType, tensorToFloat32(t, input.baseDir).length);
        if (got === undefined) continue;
        recorded++;
        assert.ok(Object.is(got, nonZeroMoments(tensorToFloat32(t, input.baseDir)).std), `${label}: ${t.name}: ${got} = nonZeroMoments`);
      }
      assert.ok(recorded >= hidden.length, `${label}: every hidden weight recorded (${recorded} of ${hidden.length})`);

      const result = await transform(input, { density: 0.25, seed: 2, deferValues: true });
      const jobs = [...result.deferred!.entries.values()].map((e) => e.job).filter((j) => j.init?.action === 'resampled');
      assert.ok(jobs.length >= hidden.length, `${label}: resample jobs`);
      for (const job of jobs) {
        const src = input.model.graph!.initializer.find((t) => t.name === job.name)!;
        assert.notEqual(job.init!.stdBefore, undefined, `${label}: ${job.name} got its std before from the analysis`);
        assert.ok(Object.is(job.init!.stdBefore, nonZeroMoments(tensorToFloat32(src, input.baseDir)).std), `${label}: ${job.name}: handed-over std = the source's`);
        assert.ok(job.init!.stdBefore! > 0, `${label}: ${job.name}: a real std`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The fingerprint as first written (sharing.ts before the survey): one element at a time. */
function referencePrint(v: Float32Array): { min: number; max: number; hash: number } {
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  let min = Infinity, max = -Infinity, hash = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (x < min) min = x;
    if (x > max) max = x;
    const b = x === 0 ? 0 : bits[i]!;
    hash = (hash + Math.imul(b ^ (b >>> 16), 0x45d9f3b)) | 0;
  }
  return { min, max, hash: hash >>> 0 };
}

test('ValueSurvey: min, max and hash of the one-at-a-time fingerprint, std of nonZeroMoments, over any chunking', () => {
  let seed = 7;
  const next = () => { seed = (Math.imul(seed, 1664525) + 1013904223) | 0; return (seed >>> 0) / 2 ** 32; };
  for (const n of [0, 1, 3, 4, 5, 8, 1027, 4099]) {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = next() < 0.3 ? 0 : (next() - 0.5) * 4;
    if (n > 5) { v[1] = -0; v[2] = NaN; v[3] = Infinity; v[5] = -Infinity; }
    const want = { ...referencePrint(v), std: nonZeroMoments(v).std };
    for (const chunk of [4, 16, 1024, Math.max(4, n)]) {
      const s = new ValueSurvey();
      for (let at = 0; at < n; at += chunk) s.add(v.subarray(at, Math.min(n, at + chunk)));
      const got = s.result();
      for (const k of ['min', 'max', 'hash', 'std'] as const) assert.ok(Object.is(got[k], want[k]), `n ${n}, chunk ${chunk}: ${k} ${got[k]} = ${want[k]}`);
    }
  }
  // The hash is order-free (a transposed copy lands in the same bucket) and tells −0 from nothing but +0.
  const a = new ValueSurvey(); a.add(new Float32Array([1.5, -0, 2, 3, 7]));
  const b = new ValueSurvey(); b.add(new Float32Array([7, 3, 0, 2, 1.5]));
  assert.equal(a.result().hash, b.result().hash);
});

test('decodeHalfInto: every float16 value, from aligned and unaligned bytes, is halfBitsToFloat', () => {
  const bytes = new Uint8Array(2 * 65536 + 1);
  for (let h = 0; h < 65536; h++) { bytes[2 * h] = h & 0xff; bytes[2 * h + 1] = h >>> 8; }
  for (const at of [0, 1]) {
    const src = at === 0 ? bytes.subarray(0, 2 * 65536) : new Uint8Array(bytes.buffer.slice(0)).subarray(1);
    if (at === 1) src.set(bytes.subarray(0, 2 * 65536));
    const out = new Float32Array(65536);
    decodeHalfInto(src, out, 65536);
    for (let h = 0; h < 65536; h++) assert.ok(Object.is(out[h], Math.fround(halfBitsToFloat(h))), `offset ${at}: half 0x${h.toString(16)}: ${out[h]}`);
  }
});

test('surveys on worker threads record what this thread measures, and the transform is the same with or without them', async () => {
  const dir = tempDir();
  const pool = new JobPool(2);
  try {
    for (const { label, file } of externalCopies(dir)) {
      const input = readModel(file);
      const here = new SourceStds();
      analyzeModel(input.model, input.baseDir, { sourceStds: here });
      const threads = new SourceStds();
      await surveyExternalWeights(input.model, input.baseDir, pool, threads, 2); // the fixture's weights are small
      const large = new SourceStds();
      await surveyExternalWeights(input.model, input.baseDir, pool, large);
      assert.equal(large.size, 0, `${label}: weights under SURVEY_MIN_ELEMENTS are left to the analysis`);
      let compared = 0;
      for (const t of input.model.graph!.initializer.filter(isExternal)) {
        const where = [resolveExternalPath(t, input.baseDir), externalInfo(t).offset, t.dataType, tensorToFloat32(t, input.baseDir).length] as const;
        const want = here.survey(...where);
        if (!want) continue;
        assert.deepEqual(threads.survey(...where), want, `${label}: ${t.name}`);
        compared++;
      }
      assert.ok(compared >= 4, `${label}: ${compared} weights compared`);
    }
    // Weights large enough to be surveyed on the threads (fixtures/llm-builder.ts: 256 × 1024 MLP matrices).
    const models = [
      writeLlmModel({ family: 'gpt2', vocab: 300, dModel: 256, layers: 2, heads: 4, dFf: 1024, maxPos: 16, dtype: 'float32' }, path.join(dir, 'gpt2.onnx')).model,
      writeLlmModel({ family: 'llama', vocab: 300, dModel: 256, layers: 2, heads: 4, dFf: 704, dtype: 'float16' }, path.join(dir, 'llama.onnx')).model,
    ];
    for (const file of models) {
      const surveyed = new SourceStds();
      await surveyExternalWeights(readModel(file).model, path.dirname(file), pool, surveyed);
      assert.ok(surveyed.size >= 8, `${path.basename(file)}: ${surveyed.size} weights surveyed on the threads`);
      const plain = await transform(readModel(file), { density: 0.25, seed: 3 });
      const pooled = await transform(readModel(file), { density: 0.25, seed: 3, pool });
      assert.deepEqual(pooled.report, plain.report, `${path.basename(file)}: same report`);
      for (const [i, t] of plain.model.graph!.initializer.entries()) {
        assert.deepEqual(pooled.model.graph!.initializer[i]!.rawData, t.rawData, `${path.basename(file)}: ${t.name}: same bytes`);
      }
    }
    // A damaged data file: the survey leaves it to the analysis, which says what is wrong as without threads.
    const file = models[0]!;
    const data = `${file}.data`;
    fs.truncateSync(data, Math.floor(fs.statSync(data).size / 2));
    const message = async (opts: object) => transform(readModel(file), { density: 0.25, ...opts }).then(() => 'no error', (e: Error) => e.message);
    const without = await message({});
    assert.notEqual(without, 'no error');
    assert.equal(await message({ pool }), without);
  } finally {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
