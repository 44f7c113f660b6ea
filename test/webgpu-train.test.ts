/**
 * Training on WebGPU (onnxruntime-node's bundled provider) against CPU, on a software Vulkan device
 * (SwiftShader from Debian's chromium package; .ci/run installs it). Each check runs in a child process
 * (test/webgpu-child.ts) whose environment names SwiftShader's ICD and Vulkan loader. Where no adapter
 * starts, every test here is skipped with the reason (counted as skipped, never passed).
 *
 * - The WebGPU kernel table (data/ort-kernels-webgpu.json) agrees with the runtime: for the fixture GPT's
 *   forward and train graphs, the nodes the table says lack a WebGPU kernel are exactly those for
 *   which onnxruntime's WebGPU GetCapability logs "kernel not found" (verbose log of a fresh process), and
 *   of the nodes the train-step builder emitted only integer index/shape arithmetic on host inputs falls
 *   back (the loss, backward and AdamW update run on WebGPU).
 * - 10 AdamW steps on WebGPU with parameters and moments kept on the device: loss per step equals CPU's
 *   within 1e-4 relative; masked weights read back from the device are exactly 0; the saved model's
 *   trained weights equal CPU's within 1e-3 (absolute; weights are O(1)) — for the fixture GPT and two
 *   Hugging Face LMs (fixtures/hf: OPT, Qwen2).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { softwareVulkanEnv } from '../src/runtime/providers.js';
import { ROOT, tempDir } from './helpers.js';

const CHILD = path.join(ROOT, 'test', 'webgpu-child.ts');
const env = { ...process.env, ...(process.env.VK_ICD_FILENAMES ? {} : softwareVulkanEnv() ?? {}) };

function child(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 1 << 26 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** Why WebGPU cannot start here, or undefined. */
function findNoAdapterReason(): string | undefined {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    "const m = await import('./src/runtime/providers.ts'); process.stdout.write(JSON.stringify((await m.findWebGpuProblem()) ?? null));"],
  { cwd: ROOT, env, encoding: 'utf8' });
  if (r.status !== 0) return `adapter probe failed: ${r.stderr.trim().split('\n').at(-1)}`;
  const problem = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as string | null;
  if (!problem) return undefined;
  return `no WebGPU adapter (${problem})${softwareVulkanEnv() ? '' : '; chromium\'s SwiftShader is not installed (apt-get install chromium)'}`;
}

const noAdapter = findNoAdapterReason();

const kernelNotFound = (stderr: string) => new Set([...stderr.matchAll(/webgpu kernel not found in registries for Op type: \S+ node name: ([A-Za-z0-9_./:-]+)/g)].map((m) => m[1]!));

// The eval graph's nodes are the train graph's forward + loss part; forward and train cover it.
for (const graph of ['forward', 'train'] as const) {
  test(`WebGPU kernel table agrees with onnxruntime's placement: fixture GPT ${graph} graph`, { skip: noAdapter }, () => {
    const r = child(['place', path.join(ROOT, 'fixtures', 'gpt-tiny.onnx'), graph]);
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const { predicted, names, emitted } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { predicted: string[]; names: string[]; emitted: { node: string; op: string; reason: string }[] };
    const graphNodes = new Set(names);
    const runtime = kernelNotFound(r.stderr);
    assert.ok(/Node placements|placed on \[WebGpuExecutionProvider\]/.test(r.stderr), 'verbose placement log present');
    // ORT names the nodes it inserts itself (e.g. 'Gather_token_1'); the table speaks of the graph's nodes.
    const runtimeOwn = [...runtime].filter((n) => graphNodes.has(n)).sort();
    assert.deepEqual([...predicted].sort(), runtimeOwn, `table says no kernel: ${predicted.join(', ')}; runtime: ${runtimeOwn.join(', ')}`);
    // What the train-step builder added (loss, backward, AdamW) falls back only where it is integer
    // index/shape arithmetic on host inputs (token ids, targets, shapes, the step count): no float node.
    const floatFallbacks = emitted.filter((f) => !/has no tensor\((int64|bool)\) kernel/.test(f.reason) && !['ConstantOfShape', 'NonZero', 'Size'].includes(f.op));
    assert.deepEqual(floatFallbacks, [], 'emitted float nodes falling back to CPU');
  });
}

const MODELS: [string, string][] = [
  ['fixture GPT (gpt-tiny)', path.join(ROOT, 'fixtures', 'gpt-tiny.onnx')],
  ['HF OPT (TorchScript export)', path.join(ROOT, 'fixtures', 'hf', 'opt_ts.onnx')],
  ['HF Qwen2 (TorchScript export)', path.join(ROOT, 'fixtures', 'hf', 'qwen2_ts.onnx')],
];

for (const [label, file] of MODELS) {
  test(`10 AdamW steps on WebGPU with state on the device equal CPU: ${label}`, { skip: noAdapter }, () => {
    const dir = tempDir('supar-webgpu-');
    try {
      const r = child(['train', file, '10', '2', '8', dir]);
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { cpu: number[]; webgpu: number[]; maskViolations: number; stateOnDevice: boolean; ep: string; maxAbsDiff: number; maxAbs: number };
      assert.equal(res.ep, 'webgpu');
      assert.equal(res.stateOnDevice, true, 'parameters and moments kept on the device');
      assert.equal(res.webgpu.length, 10);
      for (let i = 0; i < 10; i++) {
        const rel = Math.abs(res.webgpu[i]! - res.cpu[i]!) / Math.abs(res.cpu[i]!);
        assert.ok(rel <= 1e-4, `step ${i + 1}: WebGPU loss ${res.webgpu[i]} vs CPU ${res.cpu[i]} (rel ${rel.toExponential(2)})`);
      }
      assert.ok(res.cpu[9]! < res.cpu[0]!, `loss falls: ${res.cpu[0]} → ${res.cpu[9]}`);
      assert.equal(res.maskViolations, 0, 'masked weights exactly 0 after training on WebGPU');
      assert.ok(res.maxAbsDiff <= 1e-3, `saved weights differ from CPU's by up to ${res.maxAbsDiff} (largest weight ${res.maxAbs})`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
