/**
 * The runtime seam (src/runtime/) without a GPU: session options per provider (device outputs only on a
 * GPU provider), a provider that cannot start is a one-line runtime error naming what to install, `auto`
 * says which provider it chose and why it skipped the others, and the device state on CPU is the run's own
 * tensors. (WebGPU itself: test/webgpu-train.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { ExitCode, UserInputError } from '../src/errors.js';
import { DeviceState, openSession, sessionOptions, softwareVulkanEnv, unavailable } from '../src/runtime/index.js';

test('session options: GPU providers keep the named outputs on the device and fall back to CPU; CPU keeps none', () => {
  const gpu = sessionOptions('webgpu', { deviceOutputs: ['W.new', 'W.m.new'], threads: 2 });
  assert.deepEqual(gpu.executionProviders, ['webgpu', 'cpu']);
  assert.deepEqual(gpu.preferredOutputLocation, { 'W.new': 'gpu-buffer', 'W.m.new': 'gpu-buffer' });
  assert.equal(gpu.intraOpNumThreads, 2);
  const cpu = sessionOptions('cpu', { deviceOutputs: ['W.new'] });
  assert.deepEqual(cpu.executionProviders, ['cpu']);
  assert.equal(cpu.preferredOutputLocation, undefined);
});

test('a provider that cannot start is a one-line runtime error naming what to install; auto says what it skipped', async (t) => {
  const bytes = new Uint8Array(0);
  const cudaWhy = await unavailable('cuda');
  if (cudaWhy) {
    await assert.rejects(openSession(bytes, { ep: 'cuda' }), (e: unknown) => e instanceof UserInputError && e.exitCode === ExitCode.runtime
      && /^--ep cuda: onnxruntime-node's CUDA provider is not installed .*ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node.*; or use --ep cpu$/.test(e.message) && !e.message.includes('\n'));
  }
  const webgpuWhy = await unavailable('webgpu');
  if (!webgpuWhy || !cudaWhy) return t.skip('a GPU provider starts in this process');
  await assert.rejects(openSession(bytes, { ep: 'webgpu' }), (e: unknown) => e instanceof UserInputError && /^--ep webgpu: no WebGPU adapter \(.+\); .*VK_ICD_FILENAMES/.test(e.message));
  const notes: string[] = [];
  // Bytes that are no model: auto reaches CPU, which then rejects them, after saying nothing (no session opened).
  await assert.rejects(openSession(bytes, { ep: 'auto', say: (m) => notes.push(m), label: 'the probe' }), /onnxruntime rejected the probe/);
  assert.deepEqual(notes, []);
  if (!softwareVulkanEnv()) t.diagnostic('chromium SwiftShader not installed here');
});

test('device state on CPU: the tensors themselves, read without a copy; replacing a CPU tensor keeps it usable', async () => {
  const s = new DeviceState('cpu');
  const a = new ort.Tensor('float32', Float32Array.of(1, 2, 3), [3]);
  s.set('W', a);
  assert.equal(s.onDevice('W'), false);
  assert.equal(await s.read('W'), a.data);
  const b = new ort.Tensor('float32', Float32Array.of(4, 5, 6), [3]);
  s.set('W', b);
  assert.deepEqual(Array.from(a.data as Float32Array), [1, 2, 3], 'a replaced CPU tensor is not disposed');
  assert.deepEqual(Array.from(await s.read('W')), [4, 5, 6]);
  assert.throws(() => s.get('nope'), /no state tensor named 'nope'/);
  await s.release();
});
