/**
 * The GPU check's bundle (bench/gpu/pack.ts): laid out with Node's binary, the check bundled into one
 * ESM file, onnxruntime-node for linux-x64 only, the Vulkan loader and SwiftShader; small enough that the
 * xz archive stays well under 64 MiB (the uncompressed layout is bounded; the measured archive size is in
 * bench/results/gpu-pack.md); and it runs: the packed Node trains the fixture on CPU from the bundle alone
 * (no tsx, no checkout) and writes results a report merges. Skipped where the pack cannot be made (not
 * linux-x64, or chromium's Vulkan libraries missing), with the reason.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { stageBundle } from '../bench/gpu/pack.js';
import { softwareVulkanEnv } from '../src/runtime/providers.js';
import { tempDir } from './helpers.js';

const cannot = process.platform !== 'linux' || process.arch !== 'x64' ? `not linux-x64 (${process.platform}/${process.arch})`
  : !softwareVulkanEnv() ? 'chromium\'s Vulkan loader and SwiftShader are not installed (apt-get install chromium)' : undefined;

test('GPU check bundle: layout, size bound, and the packed Node runs the check on CPU from it alone', { skip: cannot }, () => {
  const stage = tempDir('supar-gpu-stage-');
  try {
    const files = stageBundle(stage);
    for (const f of ['node/bin/node', 'app/dist/gpu/check.mjs', 'app/data/ort-kernels.json', 'app/data/ort-kernels-webgpu.json', 'app/rules/supar.json', 'app/fixtures/gpt-tiny.onnx',
      'app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1', 'app/node_modules/onnxruntime-common/package.json',
      'lib/libvulkan.so.1', 'lib/swiftshader/libvk_swiftshader.so', 'lib/swiftshader/vk_swiftshader_icd.json', 'run.sh', 'torch_gpt.py', 'README.md']) {
      assert.ok(files.includes(f), `bundle has ${f}`);
    }
    assert.ok(!files.some((f) => /napi-v6\/(darwin|win32)|linux\/arm64|providers_cuda/.test(f)), 'only linux-x64 onnxruntime binaries, no CUDA provider');
    const bytes = files.reduce((a, f) => a + fs.statSync(path.join(stage, f)).size, 0);
    // Node (~95 MiB) + onnxruntime (~46 MiB) + the rest; xz -9e brings this to about a quarter.
    assert.ok(bytes < 170 * 2 ** 20, `unpacked bundle ${(bytes / 2 ** 20).toFixed(1)} MiB`);

    const out = path.join(stage, 'results');
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }; // no NODE_OPTIONS/tsx from the test runner
    const node = path.join(stage, 'node', 'bin', 'node');
    const check = path.join(stage, 'app', 'dist', 'gpu', 'check.mjs');
    const run = spawnSync(node, [check, '--ep', '', '--models', 'gpt-tiny', '--steps', '2', '--warmup', '0', '--out', out], { cwd: '/', env, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const res = JSON.parse(fs.readFileSync(path.join(out, 'node.json'), 'utf8')) as { models: { id: string; runs: { ep: string; ok: boolean; losses?: number[]; error?: string }[] }[] };
    const cpu = res.models[0]!.runs[0]!;
    assert.equal(cpu.ep, 'cpu');
    assert.ok(cpu.ok, cpu.error);
    assert.equal(cpu.losses!.length, 2);
    assert.ok(Math.abs(cpu.losses![0]! - Math.log(256)) < 0.5, `first loss ${cpu.losses![0]} ≈ ln 256`);
    fs.writeFileSync(path.join(out, 'torch.json'), JSON.stringify({ runs: [], error: 'not run in this test' }));
    const rep = spawnSync(node, [check, '--report', out], { cwd: '/', env, encoding: 'utf8' });
    assert.equal(rep.status, 0, rep.stderr);
    assert.match(fs.readFileSync(path.join(out, 'results.md'), 'utf8'), /\| gpt-tiny fixture .* \| onnxruntime cpu \| \d+\.\d\d \|/);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
});
