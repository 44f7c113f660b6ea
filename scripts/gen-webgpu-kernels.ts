/**
 * Regenerates data/ort-kernels-webgpu.json: the WebGpuExecutionProvider kernel table (op, opset range,
 * input types) of the onnxruntime-node version installed here (1.30.0), in the format of data/ort-kernels.json.
 *
 * Source of truth: onnxruntime's own kernel lookup. For each probed op, opset and input type the script
 * opens a one-node graph on WebGPU (providers webgpu, cpu), runs it once with profiling on, and reads the
 * node's provider from the profile: WebGpuExecutionProvider::GetCapability takes a node exactly when its
 * kernel registry (webgpu_execution_provider.cc RegisterKernels + the contrib registrations) has a kernel
 * for the node's op, opset and type constraints; otherwise the node runs on CPUExecutionProvider. (The
 * INFO log "webgpu kernel not found in registries" says the same, but it is lost for some sessions in a
 * long-lived process, so profiles are used.) Graphs ONNX itself rejects (a type the op's schema does not
 * allow at that opset) and runs that fail are not counted. Why not parse the sources: the 1.30.0 tree could not be fetched here, and the
 * reachable snapshots of onnxruntime/core/providers/webgpu/ predate 1.30 (their registration list lacks
 * kernels the 1.30 binary has), so the binary is the faithful record of 1.30.
 *
 * Needs a WebGPU adapter: on a machine without a GPU it re-runs itself with SwiftShader (Debian chromium).
 *
 *     node --import tsx scripts/gen-webgpu-kernels.ts > data/ort-kernels-webgpu.json
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type TensorProto } from 'onnx-buf';
import { node, tensorValueInfo, type AttrValue } from '../src/onnx/build.js';
import { encodeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeInt64Tensor, makeScalarFloat } from '../src/onnx/tensor.js';
import { softwareVulkanEnv } from '../src/runtime/providers.js';
import { typeString } from '../src/train/infer-types.js';
import { probeSpecs, type ProbeCase } from './webgpu-kernel-probes.js';

export const OPSETS = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
const TYPES = [DataType.FLOAT, DataType.FLOAT16, DataType.INT32, DataType.INT64, DataType.BOOL, DataType.UINT8];

interface Probe { id: string; op: string; opset: number; constraint: string; type: number; bytes: Uint8Array; inputs: ProbeCase['graphInputs'] }

function buildProbes(): Probe[] {
  const probes: Probe[] = [];
  for (const spec of probeSpecs()) {
    for (const opset of OPSETS) {
      if (opset < (spec.since ?? 1)) continue;
      for (const [constraint, types] of Object.entries(spec.probe)) {
        for (const type of types ?? TYPES) {
          const c = spec.build(type, opset, constraint);
          if (!c) continue;
          const id = `${spec.op}__${constraint}__${type}__${opset}`;
          probes.push({ id, op: spec.op, opset, constraint, type, bytes: modelBytes(id, c, opset, spec.domain), inputs: c.graphInputs });
        }
      }
    }
  }
  return probes;
}

function modelBytes(id: string, c: ProbeCase, opset: number, domain = ''): Uint8Array {
  const inits: TensorProto[] = c.inits ?? [];
  const graph = create(GraphProtoSchema, {
    name: 'probe', node: [node(c.op, c.inputs, c.outputs.map((o) => o.name), c.attrs ?? {}, id, domain)],
    input: c.graphInputs.map((v) => tensorValueInfo(v.name, v.type, v.dims)), initializer: inits,
    output: c.outputs.map((o) => tensorValueInfo(o.name, o.type ?? DataType.FLOAT)),
  });
  const opsets = [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })];
  if (domain) opsets.push(create(OperatorSetIdProtoSchema, { domain, version: 1n }));
  return encodeModel(create(ModelProtoSchema, { irVersion: 8n, opsetImport: opsets, graph }));
}

/** Child: runs every probe on WebGPU with profiling, prints one JSON line per probe: its node's provider. */
async function child(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webgpu-probe-'));
  try {
    for (const p of buildProbes()) process.stdout.write(`${JSON.stringify({ id: p.id, provider: await placement(p, dir) })}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The provider the probe's node ran on, or undefined when the graph did not load or run. */
async function placement(p: Probe, dir: string): Promise<string | undefined> {
  let s: ort.InferenceSession;
  try {
    s = await ort.InferenceSession.create(p.bytes, { executionProviders: ['webgpu', 'cpu'], graphOptimizationLevel: 'disabled', enableProfiling: true, profileFilePrefix: path.join(dir, p.id) });
  } catch {
    return undefined;
  }
  try {
    await s.run(Object.fromEntries(p.inputs.map((v) => [v.name, onesTensor(v.type, v.dims)])));
  } catch {
    return undefined;
  } finally {
    s.endProfiling();
    await s.release();
  }
  const file = fs.readdirSync(dir).find((f) => f.startsWith(`${p.id}_`));
  if (!file) return undefined;
  const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { cat?: string; name?: string; args?: { provider?: string } }[];
  fs.rmSync(path.join(dir, file));
  return events.find((e) => e.cat === 'Node' && e.name?.startsWith(p.id) && e.args?.provider)?.args?.provider;
}

/** A tensor of ones (valid as data, index, shape, count and divisor for every probe). */
function onesTensor(type: number, dims: number[]): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  switch (type) {
    case DataType.FLOAT: return new ort.Tensor('float32', new Float32Array(n).fill(1), dims);
    case DataType.FLOAT16: return new ort.Tensor('float16', new Uint16Array(n).fill(0x3c00), dims);
    case DataType.INT32: return new ort.Tensor('int32', new Int32Array(n).fill(1), dims);
    case DataType.INT64: return new ort.Tensor('int64', new BigInt64Array(n).fill(1n), dims);
    case DataType.BOOL: return new ort.Tensor('bool', new Uint8Array(n).fill(1), dims);
    case DataType.UINT8: return new ort.Tensor('uint8', new Uint8Array(n).fill(1), dims);
    default: throw new Error(`probe input type ${type}`);
  }
}

interface Registration { since: number; until: number | null; types: Record<string, string[]> }

function driver(): void {
  const sw = process.env.VK_ICD_FILENAMES ? undefined : softwareVulkanEnv();
  const env = { ...process.env, ...(sw ?? {}) };
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child'], { env, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`probe child failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const supported = new Map<string, Map<number, Map<string, Set<number>>>>(); // op → opset → constraint → types
  const probes = buildProbes();
  const placed = new Map(r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; provider?: string }).map((x) => [x.id, x.provider]));
  if (![...placed.values()].includes('WebGpuExecutionProvider')) throw new Error('no probe ran on WebGPU: no adapter? (install chromium for SwiftShader, or run on a machine with a GPU)');
  for (const p of probes) {
    const byOpset = supported.get(p.op) ?? new Map<number, Map<string, Set<number>>>();
    supported.set(p.op, byOpset);
    const byC = byOpset.get(p.opset) ?? new Map<string, Set<number>>();
    byOpset.set(p.opset, byC);
    const set = byC.get(p.constraint) ?? new Set<number>();
    byC.set(p.constraint, set);
    if (placed.get(p.id) === 'WebGpuExecutionProvider') set.add(p.type);
  }
  const table: Record<string, Record<string, Registration[]>> = { 'ai.onnx': {}, 'com.microsoft': {} };
  for (const spec of probeSpecs()) {
    const regs = registrations(supported.get(spec.op)!);
    if (regs.length) table[spec.domain || 'ai.onnx']![spec.op] = regs;
  }
  const out = {
    source: {
      WebGpuExecutionProvider: {
        package: `onnxruntime-node ${ort.env.versions.common}`,
        how: 'queried from the binary: one-node graphs per (op, opset, input type) run once on providers [webgpu, cpu] with profiling; a kernel exists when the profile places the node on WebGpuExecutionProvider (GetCapability in onnxruntime/core/providers/webgpu/webgpu_execution_provider.cc takes exactly the nodes its kernel registry matches). Graphs the ONNX schema rejects, and runs that fail, are not counted.',
        probed: { opsets: OPSETS, types: TYPES.map(typeString), ops: probeSpecs().length },
        adapter: sw ? `SwiftShader (software Vulkan) from ${sw.VK_ICD_FILENAMES}` : `the machine's own (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? 'unset'})`,
        float16: 'a type counts only where the kernel ran; SwiftShader has no shader-f16, so most float16 kernels are absent here although a GPU with shader-f16 has them (training graphs are float32)',
        note: 'Opset ranges are those probed (11-23): since=11 means "11 or earlier", until=null means "23 and later as far as probed". Types: only those probed. Reachable source snapshots of onnxruntime/core/providers/webgpu predate 1.30 (e.g. commit 003f772b21abba32d4310f97b4c8e8035beacf4f), so the binary is the record; test/webgpu-train.test.ts checks this table against the node placement of real train graphs.',
      },
      format: 'providers[EP][domain][op] = list of kernel registrations, oldest first; since/until are inclusive opset versions; types maps each type-constraint name to the allowed type strings (only the constraints probed).',
      regenerate: 'node --import tsx scripts/gen-webgpu-kernels.ts > data/ort-kernels-webgpu.json (needs a WebGPU adapter: a GPU, or chromium\'s SwiftShader; about 2 minutes)',
    },
    providers: { WebGpuExecutionProvider: table },
  };
  process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
}

/** Consecutive probed opsets with the same supported types collapse into one registration. */
function registrations(byOpset: Map<number, Map<string, Set<number>>>): Registration[] {
  const regs: Registration[] = [];
  let prevKey = '';
  for (const opset of OPSETS) {
    const byC = byOpset.get(opset);
    const types: Record<string, string[]> = {};
    for (const [c, set] of byC ?? []) if (set.size) types[c] = [...set].sort((a, b) => a - b).map(typeString);
    const key = JSON.stringify(types);
    if (!byC || Object.keys(types).length === 0 || Object.keys(types).length < byC.size) { prevKey = ''; continue; }
    if (key === prevKey) regs[regs.length - 1]!.until = opset === OPSETS.at(-1) ? null : opset;
    else regs.push({ since: opset, until: opset === OPSETS.at(-1) ? null : opset, types });
    prevKey = key;
  }
  return regs;
}

export type { AttrValue };
export { makeInt64Tensor, makeScalarFloat };

if (process.argv.includes('--child')) await child();
else driver();
