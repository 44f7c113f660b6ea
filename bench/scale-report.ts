/** The results of bench/scale.ts (JSON shape) and their markdown rendering, with a before/after table. */
import type { LlmShape } from '../fixtures/llm-builder.js';
import type { SessionMark } from './scale-child.js';

export interface SizeResult {
  /** Requested size in GB (10^9 bytes of weights). */
  gb: number;
  name: string;
  shape: LlmShape;
  params: number;
  dataBytes: number;
  hiddenElements: number;
  /** Why the size was not measured (memory guard), or why a step failed. */
  skipped?: string;
  error?: string;
  generate?: { seconds: number; peakRssBytes: number };
  copy?: { seconds: number; bytes: number };
  ortLoad?: { createSeconds: number; wallSeconds: number; peakRssBytes: number };
  /** Why the ORT load was not measured at this size (memory guard). */
  ortSkipped?: string;
  transform?: {
    /** Spawn to exit, as a user waits for it (includes `startupSeconds` of Node + tsx + CLI imports). */
    wallSeconds: number;
    /** The CLI's main() alone (like ORT's create(): no Node start-up, no import of the CLI's entry). */
    mainSeconds: number;
    cpuSeconds: number;
    peakRssBytes: number;
    startupSeconds: number;
    /** Output model + its data file. */
    outputBytes: number;
    /** onnxruntime sessions the CLI opened (the load check of each written graph); absent in older results. */
    sessions?: SessionMark[];
    files: Record<string, number>;
  };
}

export interface ScaleResults {
  date: string;
  /** The measured code: the last commit touching src/ (`git log -1 -- src`: short hash and subject). */
  commit?: string;
  density: number;
  seed: number;
  /** The transform's flags after the model path (absent in results before --flags existed: `--density <density>`). */
  flags?: string;
  /** The CLI measured: `dist (…)` or `source (…)` and why (absent in results before --cli: source). */
  cli?: string;
  machine: {
    cpu: string; cores: number; memoryBytes: number; availableMemoryBytes: number; node: string; platform: string;
    loadAverageStart: number[]; loadAverageEnd: number[];
  };
  sizes: SizeResult[];
}

const GB = 1e9;
const GiB = 2 ** 30;
const gb = (b: number) => `${(b / GB).toFixed(2)} GB`;
const gib = (b: number) => `${(b / GiB).toFixed(2)} GiB`;
const s = (x: number) => `${x.toFixed(1)} s`;

function describeShape(r: SizeResult): string {
  const { family, vocab, dModel, layers, heads, dFf, dtype } = r.shape;
  const kind = family === 'gpt2' ? 'GPT-2' : 'LLaMA';
  return `${r.name}: ${kind}, vocab ${vocab}, d ${dModel}, ${layers} blocks, ${heads} heads, MLP ${dFf}, ${dtype}`;
}

/**
 * Peak RSS predicted at `bytes` of weights from measured (bytes, peak) points: the line through the two
 * largest (peak = a + b·bytes, a fixed cost and a per-byte cost, neither below 0), or peak ∝ bytes from one.
 */
export function predictPeakBytes(points: { bytes: number; peak: number }[], bytes: number): number | undefined {
  const [p1, p2] = [...points].sort((x, y) => y.bytes - x.bytes);
  if (!p1) return undefined;
  if (!p2 || p1.bytes === p2.bytes) return (p1.peak / p1.bytes) * bytes;
  const b = Math.max(0, (p1.peak - p2.peak) / (p1.bytes - p2.bytes));
  const a = Math.max(0, p1.peak - b * p1.bytes);
  return a + b * bytes;
}

export function timeRatio(r: SizeResult): number | undefined {
  return r.transform && r.ortLoad ? r.transform.mainSeconds / r.ortLoad.createSeconds : undefined;
}

/** Peak RSS when the CLI opened its first onnxruntime session (the load check), and the checks' time. */
function beforeCheck(t: NonNullable<SizeResult['transform']>): string {
  const first = t.sessions?.[0];
  if (!first) return t.sessions ? 'no check' : '—';
  const checks = t.sessions!.reduce((x, m) => x + m.seconds, 0);
  return `${gib(first.peakRssBeforeBytes)} (check ${s(checks)})`;
}

function row(r: SizeResult): string {
  const head = `| ${r.gb} GB | ${describeShape(r)} | ${(r.params / 1e6).toFixed(0)}M | ${gb(r.dataBytes)}`;
  if (!r.transform || !r.copy) return `${head} | ${r.skipped ?? r.error ?? 'not run'} | | | | | | | | | |`;
  const t = r.transform;
  const ort = r.ortLoad ? `${s(r.ortLoad.createSeconds)} | ${gib(r.ortLoad.peakRssBytes)}` : `${r.ortSkipped ?? 'not run'} |`;
  const ratio = timeRatio(r);
  return `${head} | ${s(r.copy.seconds)} | ${ort} | ${s(t.mainSeconds)} | ${s(t.wallSeconds)} | ${s(t.cpuSeconds)} | **${gib(t.peakRssBytes)}** | ${beforeCheck(t)} | ${(t.peakRssBytes / r.dataBytes).toFixed(2)}× | ${gb(t.outputBytes)} | ${ratio === undefined ? '—' : `**${ratio.toFixed(1)}×**`} |`;
}

/** A short cell for a size without a transform measurement (the full reason is in the main table). */
const unmeasured = (r: SizeResult) => (r.skipped ? 'not run' : 'stopped');

function compareRow(before: SizeResult | undefined, after: SizeResult): string {
  const cell = (f: (r: SizeResult) => string | undefined) => {
    const b = before && (before.transform ? f(before) : unmeasured(before));
    const a = after.transform ? f(after) : unmeasured(after);
    return `${b ?? '—'} → ${a ?? '—'}`;
  };
  return `| ${after.gb} GB (${after.name}) | ${cell((r) => s(r.transform!.mainSeconds))} | ${cell((r) => gib(r.transform!.peakRssBytes))} | ${cell((r) => gb(r.transform!.outputBytes))} | ${cell((r) => (timeRatio(r) === undefined ? undefined : `${timeRatio(r)!.toFixed(1)}×`))} |`;
}

export function renderScaleMarkdown(res: ScaleResults, baseline?: ScaleResults, baselineLabel?: string): string {
  const m = res.machine;
  const lines = [
    `# bench/scale.ts — ${res.date}`,
    '',
    ...(res.commit ? [`Code: last commit touching src/ \`${res.commit}\`.`, ''] : []),
    `Machine: ${m.cpu}, ${m.cores} cores, ${gib(m.memoryBytes)} memory (${gib(m.availableMemoryBytes)} available at the start), node ${m.node}, ${m.platform}. ` +
      `Load average (1/5/15 min) ${m.loadAverageStart.map((x) => x.toFixed(1)).join('/')} at the start, ${m.loadAverageEnd.map((x) => x.toFixed(1)).join('/')} at the end: the machine is shared, times are noisy; ratios are taken within one run.`,
    '',
    `Models: fixtures/llm-builder.ts, weights in external data (\`model.onnx.data\`), batch 1 × 8 static graph, seed ${res.seed}. ` +
      `Transform: \`supar-transform model.onnx ${res.flags ?? `--density ${res.density}`}\` (the CLI's defaults otherwise: rules supar, hidden projections masked, resampled init, report page, load check of the written graph) through the CLI's main() in a child process (bench/scale-child.ts; CLI code: ${res.cli ?? 'source (src/ through tsx)'}).`,
    '',
    '| size | shape | params | weights | copy | ORT load | ORT peak RSS | transform | transform wall | transform CPU | transform peak RSS | … before the load check | RSS / weights | output (model + data) | transform / ORT load |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...res.sizes.map(row),
    '',
    'copy = `fs.copyFile` of model + data (page cache warm: the files were just written). ORT load = `InferenceSession.create` (CPU EP, default options) timed inside its child; ORT peak RSS = that child\'s maxRSS. ' +
      `transform = the CLI's main() in its child, read to write (like ORT load: no Node start-up); transform wall = spawn to exit, as a user waits (includes ${s(res.sizes.find((r) => r.transform)?.transform?.startupSeconds ?? 0)} of Node + tsx start-up and CLI imports, measured with \`--version\`); CPU = user + system of that child (above the wall time when threads share the work); peak RSS = its process.resourceUsage().maxRSS; … before the load check = its maxRSS when the CLI opened its first onnxruntime session (the load check of the written model: InferenceSession.create with optimizations off, which reads every initializer), with the time of all such checks. transform / ORT load = transform ÷ ORT load. GB = 10⁹ bytes, GiB = 2³⁰.`,
    '',
    `Writing the models (fixtures/llm-builder.ts, streaming, in a child): ${res.sizes.filter((r) => r.generate).map((r) => `${r.gb} GB ${s(r.generate!.seconds)} at ${(r.generate!.peakRssBytes / 2 ** 20).toFixed(0)} MiB peak RSS`).join(', ') || 'none'}.`,
    '',
    'Aim (issue 11): transform peak RSS ≤ 1 GiB at every size, time ≤ 3× onnxruntime\'s load.',
    '',
  ];
  if (baseline) {
    lines.push(
      `## Before → after (before: ${baselineLabel ?? 'baseline'}, ${baseline.date})`, '',
      '| size | transform time | transform peak RSS | output | transform / ORT load |', '|---|---|---|---|---|',
      ...res.sizes.map((r) => compareRow(baseline.sizes.find((b) => b.gb === r.gb), r)), '',
    );
  }
  return lines.join('\n');
}
