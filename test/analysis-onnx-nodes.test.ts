/**
 * The ONNX backend node tests (fixtures/onnx-node-tests) as an oracle for attention-site detection: each
 * ai.onnx `Attention` (opset 23) test has an `_expanded` twin in which ONNX's own function body spells the
 * op out in primitive ops (Shape → Sqrt → Div, √scale on Q and on Kᵀ, masks, GQA expansion). The site found
 * in the expanded graph must carry the same scale and head size as the `scale` attribute of the fused op.
 * Also: every node-test model analyzes without throwing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readModel } from '../src/onnx/codec.js';
import { analyzeModel, type Analysis } from '../src/analysis/index.js';
import { onnxNodeTestsDir } from './onnx-node-cases.js';

const DIR = await onnxNodeTestsDir();
const analyze = (name: string): Analysis => {
  const { model, baseDir } = readModel(path.join(DIR, name, 'model.onnx'));
  return analyzeModel(model, baseDir);
};

test('ai.onnx Attention: the expanded function body yields the fused op\'s scale and head size', () => {
  const fused = fs.readdirSync(DIR).filter((d) => /^test_attention_/.test(d) && !d.endsWith('_expanded') && fs.existsSync(path.join(DIR, `${d}_expanded`)));
  assert.ok(fused.length >= 40, `${fused.length} attention tests`);
  const mismatches: string[] = [];
  let compared = 0;
  for (const name of fused) {
    const a = analyze(name).attention;
    const b = analyze(`${name}_expanded`).attention;
    assert.equal(a.length, 1, name);
    assert.equal(a[0]!.kind, 'scale-attribute', name);
    if (b.length !== 1 || Math.abs(b[0]!.currentScale - a[0]!.currentScale) > 1e-6 * a[0]!.currentScale || b[0]!.dHead !== a[0]!.dHead) {
      mismatches.push(`${name}: fused ${a[0]!.currentScale}/${a[0]!.dHead}, expanded ${b.map((s) => `${s.kind} ${s.currentScale}/${s.dHead}`).join(', ') || 'none'}`);
    }
    compared++;
  }
  assert.deepEqual(mismatches, [], `${mismatches.length} of ${compared} differ`);
});

test('every ONNX node-test model analyzes without throwing', () => {
  const dirs = fs.readdirSync(DIR).filter((d) => fs.existsSync(path.join(DIR, d, 'model.onnx')));
  assert.ok(dirs.length > 1000);
  for (const d of dirs) assert.doesNotThrow(() => analyze(d), d);
});
