/**
 * The std before that the analysis measures while reading external weights (src/analysis/source-stds.ts) and
 * hands to the resample jobs (which then never read the source) equals nonZeroMoments of the source values,
 * bit for bit: float32 and float16 external data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeModel } from '../src/analysis/index.js';
import { SourceStds } from '../src/analysis/source-stds.js';
import { readModel, writeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { externalInfo, isExternal, resolveExternalPath } from '../src/onnx/external.js';
import { makeFloatTensor, tensorToFloat32 } from '../src/onnx/tensor.js';
import { nonZeroMoments } from '../src/passes/init.js';
import { transform } from '../src/transform.js';
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
