/**
 * Execution providers: which ones this onnxruntime-node install can run, and the one `--ep` picks.
 *
 * - cpu: always.
 * - cuda: needs onnxruntime-node's CUDA provider libraries, which the npm package downloads only on request
 *   (CUDA 12 + cuDNN 9; shared/notes/deps.md §1). Asking for CUDA without them is an error naming the
 *   install command.
 * - webgpu: bundled in onnxruntime-node 1.30 (Dawn; Vulkan on Linux, Metal on macOS, D3D12 on Windows);
 *   needs a WebGPU adapter, i.e. a GPU driver with Vulkan/Metal/D3D12, or on Linux a software Vulkan
 *   device (SwiftShader, see `softwareVulkanEnv`).
 * - auto: cuda when installed and it loads, else webgpu when an adapter starts, else cpu; says which.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema } from 'onnx-buf';
import { node, tensorValueInfo } from '../onnx/build.js';
import { encodeModel } from '../onnx/codec.js';
import { DataType } from '../onnx/dtype.js';

/** A provider a session runs on. */
export type Ep = 'cpu' | 'cuda' | 'webgpu';
/** What the user asks for (`--ep`). */
export type EpChoice = Ep | 'auto';
export const EP_CHOICES: readonly EpChoice[] = ['cpu', 'cuda', 'webgpu', 'auto'];

/** onnxruntime's name for each provider (logs, profiles, kernel tables). */
export const PROVIDER_NAME: Record<Ep, string> = { cpu: 'CPUExecutionProvider', cuda: 'CUDAExecutionProvider', webgpu: 'WebGpuExecutionProvider' };

/** package.json's allowScripts denies onnxruntime-node's install script (the CUDA download); the flag lets this one rebuild run it. */
export const CUDA_INSTALL_HINT = 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node --dangerously-allow-all-scripts (needs CUDA 12 and cuDNN 9)';

/** Where Debian's chromium package (chromium-common) puts SwiftShader's Vulkan ICD and a Vulkan loader. */
export const SWIFTSHADER_DIRS = ['/usr/lib/chromium', '/usr/lib64/chromium', '/usr/lib/chromium-browser'];

/** Undefined when the CUDA provider .so files are present, else which file is missing. */
export function missingCudaLibraries(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `no CUDA build of onnxruntime-node for ${process.platform}/${process.arch}`;
  let dir: string;
  try {
    const req = createRequire(import.meta.url);
    dir = path.join(path.dirname(req.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', 'linux', 'x64');
  } catch {
    return 'onnxruntime-node not found';
  }
  for (const lib of ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']) {
    if (!fs.existsSync(path.join(dir, lib))) return `no ${lib} in ${dir}`;
  }
  return undefined;
}

/**
 * Environment that gives Dawn a software Vulkan device on Linux: `VK_ICD_FILENAMES` naming SwiftShader's
 * ICD manifest and `LD_LIBRARY_PATH` with the folder holding chromium's `libvulkan.so.1` (the loader is read
 * at process start, so this is for child processes). Undefined when chromium's SwiftShader is not installed
 * (`apt-get install chromium`). Mesa's lavapipe does not work: Dawn needs Vulkan features it lacks.
 */
export function softwareVulkanEnv(dirs: readonly string[] = SWIFTSHADER_DIRS): { VK_ICD_FILENAMES: string; LD_LIBRARY_PATH: string } | undefined {
  for (const dir of dirs) {
    const icd = path.join(dir, 'vk_swiftshader_icd.json');
    if (fs.existsSync(icd)) {
      const ld = [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
      return { VK_ICD_FILENAMES: icd, LD_LIBRARY_PATH: ld };
    }
  }
  return undefined;
}

/** One-node float graph (y = x + x) that any provider runs: the adapter probe. */
function probeModel(): Uint8Array {
  const graph = create(GraphProtoSchema, {
    name: 'probe', node: [node('Add', ['x', 'x'], ['y'], {}, 'add')],
    input: [tensorValueInfo('x', DataType.FLOAT, [4])], output: [tensorValueInfo('y', DataType.FLOAT, [4])],
  });
  return encodeModel(create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })], graph }));
}

let webgpuProblem: Promise<string | undefined> | undefined;

/**
 * Undefined when a WebGPU adapter starts in this process, else why not (onnxruntime's message). Cached:
 * the adapter is per process.
 */
export function findWebGpuProblem(): Promise<string | undefined> {
  webgpuProblem ??= (async () => {
    if (!ort.listSupportedBackends().some((b) => b.name === 'webgpu')) return `this onnxruntime-node build (${process.platform}/${process.arch}) has no WebGPU provider`;
    try {
      const s = await ort.InferenceSession.create(probeModel(), { executionProviders: ['webgpu'] });
      await s.release();
      return undefined;
    } catch (e) {
      const msg = (e as Error).message;
      return /Failed to get a WebGPU adapter[^\n]*/.exec(msg)?.[0].trim() ?? firstLine(msg);
    }
  })();
  return webgpuProblem;
}

/** What to do when no WebGPU adapter starts. */
export function webgpuHint(): string {
  if (process.platform !== 'linux') return 'update the GPU driver';
  const sw = softwareVulkanEnv();
  return sw
    ? `install a GPU driver with Vulkan, or use SwiftShader (software): VK_ICD_FILENAMES=${sw.VK_ICD_FILENAMES} LD_LIBRARY_PATH=${path.dirname(sw.VK_ICD_FILENAMES)}`
    : 'install a GPU driver with Vulkan (libvulkan1 and the vendor ICD), or for a software device Debian\'s chromium package and VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium';
}

export function firstLine(s: string): string {
  return (s.split('\n').find((l) => l.trim()) ?? s).trim().slice(0, 300);
}
