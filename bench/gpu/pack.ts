/**
 * Packs the GPU check (bench/gpu/README.md) into one archive for a machine with a GPU and no Node: Node's
 * own linux-x64 binary (the one running this script), the check bundled with the project's code into one
 * ESM file (esbuild, from the devDependency tsx), onnxruntime-node's linux-x64 binaries and JS, the kernel
 * tables and the fixture, the Khronos Vulkan loader and SwiftShader from Debian's chromium (a software
 * fallback, labelled as such), torch_gpt.py and run.sh. Writes `<out>/supar-gpu-check.tar.xz` and prints
 * its size; `--fast` compresses with gzip -1 instead. test/gpu-pack.test.ts stages the bundle and runs it.
 *
 *     node --import tsx bench/gpu/pack.ts [--out bench/gpu/out] [--fast]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { softwareVulkanEnv } from '../../src/runtime/providers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

export interface PackResult { archive: string; bytes: number; stagedBytes: number; entries: string[] }

/** Lays the bundle out in `stage` (an empty folder); returns its files. */
export function stageBundle(stage: string): string[] {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`pack on linux/x64 (this is ${process.platform}/${process.arch}): the bundle carries this Node binary`);
  const app = path.join(stage, 'app');
  bundleCheck(path.join(app, 'dist', 'gpu', 'check.mjs'));
  fs.writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'supar-gpu-check', private: true, type: 'module' })}\n`);
  copy(path.join(root, 'data'), path.join(app, 'data'));
  copy(path.join(root, 'rules'), path.join(app, 'rules'));
  copy(path.join(root, 'fixtures', 'gpt-tiny.onnx'), path.join(app, 'fixtures', 'gpt-tiny.onnx'));
  copyOnnxruntime(path.join(app, 'node_modules'));
  copy(process.execPath, path.join(stage, 'node', 'bin', 'node'));
  copyVulkan(path.join(stage, 'lib'));
  for (const f of ['run.sh', 'torch_gpt.py', 'README.md']) copy(path.join(here, f), path.join(stage, f));
  fs.chmodSync(path.join(stage, 'run.sh'), 0o755);
  return listFiles(stage);
}

export function pack(outDir: string, fast: boolean): PackResult {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-gpu-pack-'));
  try {
    const entries = stageBundle(stage);
    fs.mkdirSync(outDir, { recursive: true });
    const archive = path.join(outDir, fast ? 'supar-gpu-check.tar.gz' : 'supar-gpu-check.tar.xz');
    const tmp = `${archive}.tmp`;
    const tarData = execFileSync('tar', ['-C', stage, '--owner=0', '--group=0', '--sort=name', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
    const compressed = fast
      ? execFileSync('gzip', ['-1', '-c'], { input: tarData, maxBuffer: 1 << 30 })
      : execFileSync('xz', ['-9e', '-T2', '-c'], { input: tarData, maxBuffer: 1 << 30 });
    fs.writeFileSync(tmp, compressed);
    fs.renameSync(tmp, archive);
    return { archive, bytes: compressed.length, stagedBytes: tarData.length, entries };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** check.ts and the project code it imports in one file; onnxruntime-node stays a package (native). */
function bundleCheck(outfile: string): void {
  const req = createRequire(import.meta.url);
  const esbuild = path.join(path.dirname(req.resolve('esbuild/package.json')), 'bin', 'esbuild');
  execFileSync(esbuild, [path.join(here, 'check.ts'), '--bundle', '--platform=node', '--format=esm', '--target=node20', '--external:onnxruntime-node',
    '--banner:js=import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);', `--outfile=${outfile}`, '--log-level=warning'], { cwd: root });
}

/** onnxruntime-node (JS + linux/x64 binaries only) and onnxruntime-common. */
function copyOnnxruntime(modules: string): void {
  const req = createRequire(import.meta.url);
  const ortDir = path.dirname(req.resolve('onnxruntime-node/package.json'));
  const commonDir = [path.join(ortDir, 'node_modules', 'onnxruntime-common'), path.join(ortDir, '..', 'onnxruntime-common')].find((d) => fs.existsSync(path.join(d, 'package.json')));
  if (!commonDir) throw new Error('onnxruntime-common not found next to onnxruntime-node');
  const dest = path.join(modules, 'onnxruntime-node');
  for (const f of ['package.json', 'dist', 'LICENSE', 'README.md']) if (fs.existsSync(path.join(ortDir, f))) copy(path.join(ortDir, f), path.join(dest, f));
  // The CUDA provider libraries (if installed here) are hundreds of MB: not packed; PyTorch covers CUDA.
  const bin = path.join(ortDir, 'bin', 'napi-v6', 'linux', 'x64');
  for (const f of fs.readdirSync(bin).filter((f) => !/providers_(cuda|tensorrt)/.test(f))) copy(path.join(bin, f), path.join(dest, 'bin', 'napi-v6', 'linux', 'x64', f));
  copy(commonDir, path.join(modules, 'onnxruntime-common'));
}

/** The Khronos Vulkan loader (used when the system has no libvulkan1) and SwiftShader (software). */
function copyVulkan(lib: string): void {
  const sw = softwareVulkanEnv();
  if (!sw) throw new Error('chromium\'s libvulkan.so.1 and SwiftShader are needed for the pack: apt-get install chromium');
  const dir = path.dirname(sw.VK_ICD_FILENAMES);
  copy(path.join(dir, 'libvulkan.so.1'), path.join(lib, 'libvulkan.so.1'));
  copy(path.join(dir, 'libvk_swiftshader.so'), path.join(lib, 'swiftshader', 'libvk_swiftshader.so'));
  copy(sw.VK_ICD_FILENAMES, path.join(lib, 'swiftshader', 'vk_swiftshader_icd.json'));
}

function copy(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.cpSync(from, to, { recursive: true, dereference: true });
}

function listFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: path.join(here, 'out') }, fast: { type: 'boolean', default: false } } });
  const t0 = performance.now();
  const r = pack(path.resolve(values.out!), values.fast!);
  process.stdout.write(`${r.archive}: ${(r.bytes / 2 ** 20).toFixed(1)} MiB (${(r.stagedBytes / 2 ** 20).toFixed(1)} MiB unpacked, ${r.entries.length} files, ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
}
