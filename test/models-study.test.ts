/**
 * Several-model studies (`--models`, issue 8): the same GPT at depths 2, 4, 8 (or widths) in one
 * coord-check or sweep, m_d and m_L taken against the first model. Across depths CompleteP keeps the stream
 * after the last block within ×1.5 and µP does not; a sweep reports one optimum per model and an x axis per
 * swept dimension.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { encodeModel } from '../src/onnx/codec.js';
import { tempDir } from './helpers.js';
import { runCli } from './cli-helpers.js';

function models(dir: string, shapes: { layers: number; dModel: number }[]): string {
  return shapes.map(({ layers, dModel }) => {
    const f = path.join(dir, `gpt-d${dModel}-L${layers}.onnx`);
    fs.writeFileSync(f, encodeModel(buildGpt({ vocab: 64, dModel, layers, heads: 4, maxPos: 16, seed: 3 })));
    return f;
  }).join(',');
}

test('coord-check --models across depths 2, 4, 8: CompleteP keeps the last block\'s output flat, µP drifts', { timeout: 240_000 }, async () => {
  const dir = tempDir();
  const list = models(dir, [2, 4, 8].map((layers) => ({ layers, dModel: 64 })));
  const r = await runCli(['coord-check', '--models', list, '--densities', '1', '--rules', 'completep,mup', '--steps', '6', '--lr', '2^-7', '--batch', '4', '--seq', '16', '--out', path.join(dir, 'cc'), '--jobs', '1'], { timeoutMs: 240_000 });
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(fs.readFileSync(path.join(dir, 'cc', 'coord-check.json'), 'utf8'));
  const v = (rules: string, kind: string) => res.verdicts.find((x: { rules: string; kind: string }) => x.rules === rules && x.kind === kind);
  assert.ok(v('completep', 'residual_stream').maxRatio <= 1.5, r.stdout);
  assert.ok(v('mup', 'residual_stream').maxRatio > 3, r.stdout);
  // Across depths only the stream and the logits are judged (a branch is m_L^-α by construction).
  assert.deepEqual([...new Set(res.verdicts.map((x: { kind: string }) => x.kind))].sort(), ['output_logits', 'residual_stream']);
  assert.match(r.stdout, /max\/min across depths/);
  const svg = fs.readFileSync(path.join(dir, 'cc', 'coord-check.completep.svg'), 'utf8');
  assert.match(svg, />depth</);
  assert.match(fs.readFileSync(path.join(dir, 'cc', 'coord-check.csv'), 'utf8'), /^rules,model,density,step,block/);
});

test('sweep --models across widths: one optimum per model, rows by width; bad --models are one line', { timeout: 240_000 }, async () => {
  const dir = tempDir();
  const list = models(dir, [32, 64].map((dModel) => ({ layers: 2, dModel })));
  const r = await runCli(['sweep', '--models', list, '--densities', '1', '--rules', 'mup', '--lrs', '2^-8:2^-7', '--steps', '3', '--last-k', '1', '--batch', '2', '--seq', '8', '--out', path.join(dir, 's'), '--jobs', '2'], { timeoutMs: 240_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\| model \| width \| density \| mup: optimal LR \|$/m);
  assert.match(r.stdout, /^\| gpt-d64-L2 \| 64 \| 1 \| 2\^-\d/m);
  const res = JSON.parse(fs.readFileSync(path.join(dir, 's', 'sweep.json'), 'utf8'));
  assert.deepEqual(res.optima.map((o: { model: string }) => o.model), ['gpt-d32-L2', 'gpt-d64-L2']);
  assert.equal(res.points.length, 4);
  const both = await runCli(['sweep', list.split(',')[0]!, '--models', list]);
  assert.equal(both.code, 2);
  assert.equal(both.stderr, 'error: give the model as an argument or as --models a.onnx,b.onnx, not both\n');
  const one = await runCli(['sweep', '--models', list.split(',')[0]!]);
  assert.match(one.stderr, /^error: --models '.*': give at least two models, comma-separated\n$/);
});
