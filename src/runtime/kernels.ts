/**
 * GPU readiness: checks every node's (domain, op, opset version, input element types) against a provider's
 * kernel registry shipped with the tool, each with its provenance in the file's `source` block:
 * - CUDAExecutionProvider: data/ort-kernels.json (transcribed from microsoft/onnxruntime docs/OperatorKernels.md);
 * - WebGpuExecutionProvider: data/ort-kernels-webgpu.json (scripts/gen-webgpu-kernels.ts: queried from
 *   onnxruntime-node 1.30's own kernel lookup).
 * A node with no matching kernel would be assigned to the CPU provider by ORT's partitioner, with a device
 * copy on each side.
 */
import * as fs from 'node:fs';
import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';
import { InvariantError } from '../errors.js';
import { inferElemTypes, typeString } from '../train/infer-types.js';

interface KernelRegistration {
  since: number;
  until: number | null;
  types: Record<string, string[]>;
}
type KernelTable = Record<string, Record<string, KernelRegistration[]>>;

export const CUDA_PROVIDER = 'CUDAExecutionProvider';
export const WEBGPU_PROVIDER = 'WebGpuExecutionProvider';
export type GpuProvider = typeof CUDA_PROVIDER | typeof WEBGPU_PROVIDER;

/** The shipped table file of each provider (next to src/ or dist/src/). */
const TABLE_FILES: Record<GpuProvider, string> = { [CUDA_PROVIDER]: 'ort-kernels.json', [WEBGPU_PROVIDER]: 'ort-kernels-webgpu.json' };
/** Short name in messages. */
const SHORT: Record<GpuProvider, string> = { [CUDA_PROVIDER]: 'CUDA', [WEBGPU_PROVIDER]: 'WebGPU' };

export interface KernelFallback {
  node: string;
  op: string;
  domain: string;
  opset: number;
  reason: string;
}

export interface KernelReport {
  provider: string;
  nodes: number;
  /** Nodes ORT would run on CPU (no CUDA kernel for this op/opset/type). */
  fallbacks: KernelFallback[];
  /** Nodes whose input types could not all be inferred (op and opset were checked). */
  typesUnknown: number;
}

/**
 * Type-constraint name per input slot (ONNX operator schemas); the last entry repeats for variadic inputs.
 * `-` = not checked (a fixed-type input the table does not list). Ops absent here: every input uses 'T'
 * when the registration has it, else its only constraint.
 */
const INPUT_CONSTRAINTS: Record<string, string[]> = {
  Reshape: ['T', 'shape'], Expand: ['T', '-'], Tile: ['T', '-'],
  Gather: ['T', 'Tind'], GatherElements: ['T', 'Tind'], GatherND: ['T', '-'],
  ScatterElements: ['T', 'Tind', 'T'], ScatterND: ['T', '-', 'T'],
  Slice: ['T', 'Tind'], Split: ['T', '-'], Squeeze: ['T', '-'], Unsqueeze: ['T', '-'], Pad: ['T', '-', 'T', '-'],
  Where: ['B', 'T'], Cast: ['T1'], CastLike: ['T1', 'T2'], Pow: ['T', 'T1'], OneHot: ['T1', 'T2', 'T3'],
  IsNaN: ['T1'], IsInf: ['T1'], ConstantOfShape: ['T1'], Trilu: ['T', '-'], TopK: ['T', '-'],
  ReduceSum: ['T', '-'], ReduceMean: ['T', '-'], ReduceMax: ['T', '-'], ReduceMin: ['T', '-'], ReduceProd: ['T', '-'],
  Dropout: ['T', 'T1', 'T2'], Clip: ['T'], Range: ['T'], Identity: ['V'],
};

/** Output type constraints set by an attribute (the WebGPU table probes them). */
const OUTPUT_CONSTRAINTS: Record<string, { constraint: string; attr: string }> = { Cast: { constraint: 'T2', attr: 'to' } };

/** Ops that ORT resolves at load time (no kernel runs). */
const NO_KERNEL_NEEDED = new Set(['Constant']);

const cachedTables = new Map<GpuProvider, KernelTable>();

/** A provider's kernel table shipped with the tool (data/<file> next to src/ or dist/src/). */
export function getKernelTable(provider: GpuProvider): KernelTable {
  const cached = cachedTables.get(provider);
  if (cached) return cached;
  for (const rel of ['../../data/', '../../../data/']) {
    const file = new URL(rel + TABLE_FILES[provider], import.meta.url);
    if (fs.existsSync(file)) {
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { providers: Record<string, KernelTable> };
      const table = json.providers[provider];
      if (table) {
        cachedTables.set(provider, table);
        return table;
      }
    }
  }
  throw new InvariantError(`data/${TABLE_FILES[provider]} (${SHORT[provider]} kernel table) is missing from the installation`);
}

export function getCudaKernelTable(): KernelTable {
  return getKernelTable(CUDA_PROVIDER);
}

export function checkCudaKernels(model: ModelProto): KernelReport {
  return checkKernels(model, CUDA_PROVIDER);
}

export function checkWebGpuKernels(model: ModelProto): KernelReport {
  return checkKernels(model, WEBGPU_PROVIDER);
}

export function checkKernels(model: ModelProto, provider: GpuProvider): KernelReport {
  const graph = model.graph;
  if (!graph) throw new InvariantError('model has no graph');
  const table = getKernelTable(provider);
  const opsets = new Map(model.opsetImport.map((o) => [!o.domain || o.domain === 'ai.onnx' ? '' : o.domain, Number(o.version)]));
  const report: KernelReport = { provider, nodes: 0, fallbacks: [], typesUnknown: 0 };
  checkGraph(graph, { table, short: SHORT[provider] }, opsets, report, new Map());
  return report;
}

interface Checker { table: KernelTable; short: string }

function checkGraph(graph: GraphProto, c: Checker, opsets: Map<string, number>, report: KernelReport, outer: Map<string, number>): void {
  const types = inferElemTypes(graph, outer);
  for (const n of graph.node) {
    report.nodes++;
    const result = checkNode(n, c, opsets, types);
    if (result === 'types-unknown') report.typesUnknown++;
    else if (result) report.fallbacks.push(result);
    for (const a of n.attribute) {
      if (a.g) checkGraph(a.g, c, opsets, report, types);
      for (const g of a.graphs) checkGraph(g, c, opsets, report, types);
    }
  }
}

function checkNode(n: NodeProto, { table, short }: Checker, opsets: Map<string, number>, types: Map<string, number>): KernelFallback | 'types-unknown' | undefined {
  const domain = !n.domain || n.domain === 'ai.onnx' ? '' : n.domain;
  if (NO_KERNEL_NEEDED.has(n.opType) && domain === '') return undefined;
  const domainKey = domain === '' ? 'ai.onnx' : domain;
  const opset = opsets.get(domain) ?? 0;
  const fallback = (reason: string): KernelFallback => ({ node: n.name || n.output[0] || '?', op: n.opType, domain: domainKey, opset, reason });
  const regs = table[domainKey]?.[n.opType];
  if (!regs || regs.length === 0) return fallback(`no ${short} kernel for ${domainKey}::${n.opType}`);
  const reg = regs.find((r) => r.since <= opset && (r.until === null || opset <= r.until));
  if (!reg) return fallback(`no ${short} kernel for ${n.opType} at opset ${opset} (registered: ${regs.map(rangeText).join(', ')})`);
  let unknown = false;
  for (let i = 0; i < n.input.length; i++) {
    const name = n.input[i];
    if (!name) continue;
    const key = constraintOf(n.opType, i, reg);
    if (!key || key === '-' || !reg.types[key]) continue;
    const t = types.get(name);
    if (t === undefined) { unknown = true; continue; }
    const ts = typeString(t);
    if (!reg.types[key]!.includes(ts)) return fallback(`${short} ${n.opType}-${rangeText(reg)} has no ${ts} kernel for input ${i} ('${name}')`);
  }
  const out = OUTPUT_CONSTRAINTS[n.opType];
  const to = out && n.attribute.find((a) => a.name === out.attr);
  if (out && to && reg.types[out.constraint]) {
    const ts = typeString(Number(to.i));
    if (!reg.types[out.constraint]!.includes(ts)) return fallback(`${short} ${n.opType}-${rangeText(reg)} has no ${ts} kernel for its output`);
  }
  return unknown ? 'types-unknown' : undefined;
}

function constraintOf(op: string, index: number, reg: KernelRegistration): string | undefined {
  const slots = INPUT_CONSTRAINTS[op];
  if (slots) return slots[Math.min(index, slots.length - 1)];
  if (reg.types['T']) return 'T';
  const keys = Object.keys(reg.types);
  return keys.length === 1 ? keys[0] : undefined;
}

function rangeText(r: KernelRegistration): string {
  return r.until === null ? `${r.since}+` : r.since === r.until ? `${r.since}` : `${r.since}-${r.until}`;
}

/** One line per fallback, for reports and the CLI. */
export function formatKernelReport(r: KernelReport): string {
  if (r.fallbacks.length === 0) return `${r.provider}: all ${r.nodes} nodes have kernels`;
  const lines = r.fallbacks.map((f) => `  ${f.node} (${f.op}): ${f.reason}`);
  return `${r.provider}: ${r.fallbacks.length} of ${r.nodes} nodes would fall back to CPU\n${lines.join('\n')}`;
}
