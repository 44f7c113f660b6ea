/**
 * The transform on real exported LMs (fixtures/real) and the shipped fixture GPT, at --density 0.125
 * with the default rules (supar) and seed 0:
 * - the report equals the golden file test/golden/reports/<name>.report.json, and the stdout table
 *   <name>.summary.txt (regenerate both with UPDATE_GOLDEN=1 and review the diff: roles, reasons, masks,
 *   stds, attention sites, multipliers);
 * - the rewritten model runs in onnxruntime-node with finite outputs;
 * - the stored masks hold exactly the reported non-zeros, the weights' masked entries are exactly 0, and
 *   the initializer data grows by at most a quarter of the masked weights' bytes;
 * - the input model is not modified.
 * Every other real fixture transforms or stops with a one-line UserInputError (never a crash).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { tensorRawBytes, tensorToFloat32 } from '../src/onnx/tensor.js';
import { UserInputError } from '../src/errors.js';
import { transform } from '../src/transform.js';
import { reportJson } from '../src/report.js';
import { ROOT } from './helpers.js';
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { DataType } from '../src/onnx/dtype.js';
import { maskEntries } from '../src/passes/mask-storage.js';
import { floats, LMS, REAL, runOrt } from './transform-helpers.js';

const GOLDEN = path.join(ROOT, 'test', 'golden', 'reports');

for (const lm of LMS) {
  test(`transform ${lm.name} at density 0.125: golden report, ORT runs, masks exact`, async () => {
    const input = readModel(lm.file);
    const before = encodeModel(input.model);
    const r = await transform(input, { density: 0.125 });
    assert.deepEqual(encodeModel(input.model), before, 'input model modified');

    const golden = path.join(GOLDEN, `${lm.name}.report.json`);
    const goldenText = path.join(GOLDEN, `${lm.name}.summary.txt`);
    const json = reportJson(r.report);
    if (process.env.UPDATE_GOLDEN) {
      fs.writeFileSync(golden, json);
      fs.writeFileSync(goldenText, r.summaryText);
    }
    assert.equal(json, fs.readFileSync(golden, 'utf8'), `report differs from ${path.relative(ROOT, golden)} (UPDATE_GOLDEN=1 to regenerate, then review)`);
    assert.equal(r.summaryText, fs.readFileSync(goldenText, 'utf8'), `summary differs from ${path.relative(ROOT, goldenText)}`);

    const out = await runOrt(r.model, lm.feeds());
    for (const [name, t] of Object.entries(out)) {
      if (t.type !== 'float32') continue;
      assert.ok(floats(t).every(Number.isFinite), `${lm.name}: output ${name} has non-finite values`);
    }

    const inits = new Map(r.model.graph!.initializer.map((t) => [t.name, t]));
    const masked = r.report.tensors.filter((t) => t.mask !== null);
    assert.ok(masked.length > 0, `${lm.name}: nothing masked`);
    for (const t of masked) {
      const bits = maskEntries(inits.get(t.mask!)!, t.shape, r.sourceBaseDir);
      const w = tensorToFloat32(inits.get(t.name)!, r.sourceBaseDir);
      let ones = 0;
      let strayNonZero = 0;
      for (let i = 0; i < bits.length; i++) {
        ones += bits[i]!;
        if (!bits[i] && w[i] !== 0) strayNonZero++;
      }
      assert.equal(ones, t.non_zeros, `${t.name}: stored mask count`);
      assert.equal(ones, Math.max(1, Math.round(0.125 * bits.length)), `${t.name}: exact count round(ρ·n)`);
      assert.equal(strayNonZero, 0, `${t.name}: masked entries must be exactly 0`);
    }
    const dataBytes = (m: typeof input.model) => m.graph!.initializer.reduce((s, t) => s + tensorRawBytes(t, input.baseDir).byteLength, 0);
    const growth = dataBytes(r.model) - dataBytes(input.model);
    // Masks: n bytes (bool) or ceil(n/8) (bits, plus the 2 KiB bit table and each unpack's shape/slice constants).
    const unpack = r.report.settings.mask_storage === 'bits' ? 2048 + 64 * masked.length : 0;
    assert.ok(growth <= r.report.summary.mask_bytes + unpack + 64, `${lm.name}: data grew ${growth} B > ${r.report.summary.mask_bytes} B of masks + ${unpack} B`);
    assert.ok(r.report.summary.mask_bytes <= r.report.summary.masked_weight_bytes / (r.report.settings.mask_storage === 'bits' ? 32 : 4) + masked.length, `${lm.name}: mask bytes`);
  });
}

test('every other real fixture transforms or stops with a clear reason', async () => {
  const lmFiles = new Set(LMS.map((l) => path.resolve(l.file)));
  const files = fs.readdirSync(REAL).flatMap((f) => {
    const p = path.join(REAL, f);
    return fs.statSync(p).isDirectory() ? [path.join(p, 'model.onnx')] : f.endsWith('.onnx') ? [p] : [];
  }).filter((f) => !lmFiles.has(path.resolve(f)));
  assert.ok(files.length >= 6);
  let ran = 0;
  for (const f of files) {
    try {
      const input = readModel(f);
      const r = await transform(input, { density: 0.125 });
      const feeds = genericFeeds(input.model);
      // Where the input model runs on these feeds, the transformed one must run too, with finite outputs.
      const ok = await runOrt(input.model, feeds).then(() => true, () => false);
      if (ok) {
        const out = await runOrt(r.model, feeds);
        for (const [name, t] of Object.entries(out)) {
          if (t.type === 'float32') assert.ok(floats(t).every(Number.isFinite), `${path.basename(f)}: ${name} not finite`);
        }
        ran++;
      }
    } catch (e) {
      assert.ok(e instanceof UserInputError, `${path.basename(f)}: crashed with ${(e as Error).stack}`);
      assert.doesNotMatch((e as Error).message, /\n/, 'one-line message');
    }
  }
  assert.ok(ran >= 6, `only ${ran} transformed fixtures ran in ORT`);
});

/** Seeded feeds for every graph input (symbolic dims = 1; ints 0; floats a ramp in [-1, 1)). */
function genericFeeds(model: ModelProto): Record<string, ort.Tensor> {
  const inits = new Set(model.graph!.initializer.map((t) => t.name));
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of model.graph!.input) {
    if (inits.has(v.name) || v.type?.value.case !== 'tensorType') continue;
    const tt = v.type.value.value;
    const dims = (tt.shape?.dim ?? []).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    if (tt.elemType === DataType.FLOAT) feeds[v.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => ((i * 37) % 200) / 100 - 1), dims);
    else if (tt.elemType === DataType.INT64) feeds[v.name] = new ort.Tensor('int64', new BigInt64Array(n), dims);
    else if (tt.elemType === DataType.INT32) feeds[v.name] = new ort.Tensor('int32', new Int32Array(n), dims);
  }
  return feeds;
}
