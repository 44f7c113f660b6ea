import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../src/onnx/codec.js';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { ROOT } from './helpers.js';

const FIXTURE = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');

async function logitsFor(bytes: Uint8Array, ids: number[][]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes);
  const t = new ort.Tensor('int64', BigInt64Array.from(ids.flat().map(BigInt)), [ids.length, ids[0]!.length]);
  const out = await s.run({ input_ids: t });
  return out.logits!.data as Float32Array;
}

test('the shipped fixture is what its generator writes (byte-identical)', () => {
  const rebuilt = encodeModel(buildGpt({ vocab: 256, dModel: 64, layers: 2, heads: 4, maxPos: 64, tied: false, seed: 1234 }));
  assert.ok(Buffer.from(rebuilt).equals(fs.readFileSync(FIXTURE)));
});

test('fixture GPT runs in onnxruntime, is causal, and starts near uniform', async () => {
  const bytes = new Uint8Array(fs.readFileSync(FIXTURE));
  const a = [[1, 2, 3, 4, 5, 6, 7, 8]];
  const b = [[1, 2, 3, 4, 5, 6, 7, 200]]; // differs only at the last position
  const la = await logitsFor(bytes, a);
  const lb = await logitsFor(bytes, b);
  assert.equal(la.length, 8 * 256);
  assert.ok(la.every(Number.isFinite));
  // Causality: positions 0..6 are unchanged to the last bit; position 7 changes.
  assert.deepEqual(la.subarray(0, 7 * 256), lb.subarray(0, 7 * 256));
  assert.notDeepEqual(la.subarray(7 * 256), lb.subarray(7 * 256));
  // With std 0.02 weights the logits are small: |logit| < 1, so the initial loss ≈ ln 256.
  const maxAbs = la.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  assert.ok(maxAbs < 1, `max |logit| ${maxAbs}`);
});
