/**
 * The transform report (DESIGN.md "What it writes"; STYLE.md "The report is a product"): per tensor its role
 * and why, shape, fan-in, density and non-zeros, init std before and after (measured), LR and weight-decay
 * multipliers and rule id; every multiplier inserted and attention site rewritten (before → after); ties;
 * warnings. Deterministic: keys in a fixed order, measured floats rounded to 6 significant digits, no
 * timestamps, no absolute paths (the input is named by its file name only).
 */
import * as path from 'node:path';
import type { ModelProto } from 'onnx-buf';
import type { TransformPlan } from './plan.js';
import type { InitPassReport } from './passes/init.js';
import type { MaskPassReport } from './passes/masks.js';
import { DEFAULT_MASK_STORAGE, type MaskStorage } from './passes/mask-storage.js';
import type { AttentionReportEntry, MultiplierPassReport, MultiplierReportEntry } from './passes/multipliers.js';
import type { TiePassReport, TieReportEntry } from './passes/ties.js';
import type { BranchPassReport, BranchReportEntry } from './passes/residual-branches.js';
import { VERSION } from './version.js';

export const REPORT_FORMAT = 'supar-report/1';

export interface TensorReport {
  name: string;
  role: string;
  reason: string;
  rule: string | null;
  shape: number[];
  fan_in: number | null;
  fan_out: number | null;
  layer: number | null;
  trained: boolean;
  density: number;
  density_reason: string;
  mask: string | null;
  non_zeros: number;
  init: { action: string; target_std: number | null; std_before: number | null; std_after: number | null };
  lr_adam: number | null;
  lr_sgd: number | null;
  weight_decay: number | null;
  /** Multiplier on AdamW's ε (1 unless the rules scale it, e.g. CompleteP in-block). */
  adam_eps: number | null;
  tie: { with: string; kind: string } | null;
  /** Forward multiplier inserted on this tensor's output (α_input after an embedding, α_output/m_d on the logits of a readout). */
  forward_multiplier: { kind: string; value: number; at: string } | null;
}

export interface TransformReport {
  format: typeof REPORT_FORMAT;
  tool: { name: 'supar-transform'; version: string };
  input: { file: string; producer: string; ir_version: number; opsets: Record<string, number> };
  settings: {
    rules: string; density: number; m_d: number; width_source: string; seed: number; mask_mode: string;
    /** How masks are stored: `bool` (1 byte per entry) or `bits` (8 entries per byte; src/passes/mask-storage.ts). */
    mask_storage: MaskStorage;
    init: string; truncated: boolean; depth_factor: string | null;
    /** Depth: m_L = n_layers / n_layers_base, the rules' exponent α, and how weight decay meets the LR. */
    m_L: number; n_layers_base: number; alpha_depth: number; weight_decay_mode: string;
    hyperparameters: { sigma_base: number; eta_base: number; alpha_input: number; alpha_output: number };
  };
  model: { d_model: number | null; d_head: number | null; n_layers: number | null; logits: string | null };
  summary: {
    tensors: number; trained: number; masked: number; masked_elements: number; mask_non_zeros: number;
    unclassified: number; mask_bytes: number; masked_weight_bytes: number;
  };
  tensors: TensorReport[];
  multipliers: MultiplierReportEntry[];
  attention: AttentionReportEntry[];
  /** Residual-branch multipliers (CompleteP, depth-µP): one entry per branch found, empty without such rules. */
  residual_branches: BranchReportEntry[];
  ties: TieReportEntry[];
  passes: { id: string; doc: string }[];
  /** onnxruntime contrib nodes replaced by ai.onnx ops before analysis (src/normalize); absent when none. */
  defused?: { node: string; op: string; rule: string; into: string }[];
  /** With --emit-train on a graph below opset 13: the rewrites that raised the train graph's opset; absent otherwise. */
  train_opset_upgrade?: { from: number; to: number; changes: string[] };
  warnings: string[];
  /**
   * CUDA readiness: every node of each written graph checked against onnxruntime's CUDA kernel table (op,
   * opset, input types); the nodes that would run on the CPU instead. Filled by `transform`.
   */
  cuda?: CudaReadiness[];
  /** The same check against onnxruntime 1.30's WebGPU kernels (data/ort-kernels-webgpu.json). */
  webgpu?: CudaReadiness[];
}

export interface CudaReadiness {
  graph: 'forward' | 'train' | 'eval';
  nodes: number;
  fallbacks: { node: string; op: string; domain: string; opset: number; reason: string }[];
  types_unknown: number;
}

/** Rounds a measured value to 6 significant digits; formula values to 12 (hides float noise only). */
export const round6 = (x: number) => (x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(6)));
export const round12 = (x: number) => (x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(12)));

export interface ReportInputs {
  sourceFile: string;
  input: ModelProto;
  plan: TransformPlan;
  seed: number;
  widthSource: string;
  depthFactor: string | null;
  maskStorage?: MaskStorage;
  analysis: {
    dModel?: number; dHead?: number; nLayers?: number; logits?: { output: string; readout?: string };
    embeddingOutputs: { param: string; value: string }[]; warnings: string[];
  };
  passes: { id: string; doc: string }[];
  reports: ReadonlyMap<string, unknown>;
}

export function buildReport(r: ReportInputs): TransformReport {
  const masks = (r.reports.get('masks') as MaskPassReport | undefined) ?? { masks: [], mask_bytes: 0, masked_weight_bytes: 0 };
  const init = (r.reports.get('init') as InitPassReport | undefined) ?? { tensors: [] };
  const mult = (r.reports.get('multipliers') as MultiplierPassReport | undefined) ?? { multipliers: [], attention: [] };
  const ties = (r.reports.get('ties') as TiePassReport | undefined) ?? { ties: [] };
  const maskBy = new Map(masks.masks.map((m) => [m.tensor, m]));
  const folded = new Set(ties.ties.map((t) => t.copy));
  const forward = forwardMultipliers(r, mult.multipliers);
  const initBy = new Map(init.tensors.map((t) => [t.tensor, t]));
  const p = r.plan;
  const tensors: TensorReport[] = p.params.map((t) => {
    const m = maskBy.get(t.name);
    const i = initBy.get(t.name);
    return {
      name: t.name, role: t.role, reason: t.reason, rule: t.rule, shape: t.shape,
      fan_in: t.fanIn ?? null, fan_out: t.fanOut ?? null, layer: t.layer ?? null, trained: t.trainable,
      density: round12(t.density), density_reason: t.densityReason, mask: m?.mask ?? null,
      non_zeros: m ? m.non_zeros : i ? i.non_zeros : t.elements,
      init: {
        action: folded.has(t.name) ? 'folded into tied table' : i?.action ?? 'kept', target_std: t.initStd === null ? null : round12(t.initStd),
        std_before: i ? round6(i.std_before) : null, std_after: i ? round6(i.std_after) : null,
      },
      lr_adam: t.trainable ? round12(t.lrAdam) : null,
      lr_sgd: t.trainable ? round12(t.lrSgd) : null,
      weight_decay: t.trainable ? round12(t.weightDecay) : null,
      adam_eps: t.trainable ? round12(t.adamEps) : null,
      tie: t.tiedWith ? { with: t.tiedWith, kind: t.tie ?? 'identity' } : null,
      forward_multiplier: forward.get(t.name) ?? null,
    };
  });
  const opsets: Record<string, number> = {};
  for (const o of r.input.opsetImport) opsets[o.domain || 'ai.onnx'] = Number(o.version);
  const hp = p.hyperparameters;
  return {
    format: REPORT_FORMAT,
    tool: { name: 'supar-transform', version: VERSION },
    input: { file: path.basename(r.sourceFile), producer: `${r.input.producerName} ${r.input.producerVersion}`.trim(), ir_version: Number(r.input.irVersion), opsets },
    settings: {
      rules: p.rules, density: p.density, m_d: round12(p.mD), width_source: r.widthSource, seed: r.seed,
      mask_mode: p.maskMode === 'n:m' && p.nm ? `n:m ${p.nm.n}:${p.nm.m}` : p.maskMode, mask_storage: r.maskStorage ?? DEFAULT_MASK_STORAGE,
      init: p.init, truncated: p.truncated,
      depth_factor: r.depthFactor,
      m_L: round12(p.depth.mL), n_layers_base: p.depth.nLayersBase, alpha_depth: p.depth.alphaDepth, weight_decay_mode: p.weightDecayMode,
      hyperparameters: { sigma_base: hp.sigma_base, eta_base: hp.eta_base, alpha_input: hp.alpha_input, alpha_output: hp.alpha_output },
    },
    model: { d_model: r.analysis.dModel ?? null, d_head: r.analysis.dHead ?? null, n_layers: r.analysis.nLayers ?? null, logits: r.analysis.logits?.output ?? null },
    summary: {
      tensors: tensors.length, trained: tensors.filter((t) => t.trained).length, masked: masks.masks.length,
      masked_elements: masks.masks.reduce((s, m) => s + m.elements, 0),
      mask_non_zeros: masks.masks.reduce((s, m) => s + m.non_zeros, 0),
      unclassified: tensors.filter((t) => t.role === 'unknown').length,
      mask_bytes: masks.mask_bytes, masked_weight_bytes: masks.masked_weight_bytes,
    },
    tensors,
    multipliers: mult.multipliers.map((m) => ({ ...m, multiplier: round12(m.multiplier) })),
    attention: mult.attention.map((a) => ({ ...a, before: round12(a.before), after: round12(a.after) })),
    residual_branches: ((r.reports.get('residual-branches') as BranchPassReport | undefined)?.residual_branches ?? []).map((b) => ({ ...b, multiplier: round12(b.multiplier) })),
    ties: ties.ties,
    passes: r.passes,
    warnings: [
      ...r.analysis.warnings, ...p.warnings,
      ...mult.attention.filter((a) => a.rewrite === 'skipped').map((a) => `attention site ${a.nodes.join(', ')}: ${a.reason}`),
    ],
  };
}

/** Which tensor each inserted multiplier belongs to: an embedding output to its table, the logits to the readout. */
function forwardMultipliers(r: ReportInputs, inserted: MultiplierReportEntry[]): Map<string, TensorReport['forward_multiplier']> {
  const out = new Map<string, TensorReport['forward_multiplier']>();
  for (const m of inserted) {
    const entry = { kind: m.kind, value: round12(m.multiplier), at: m.value };
    if (m.kind === 'embedding') {
      for (const e of r.analysis.embeddingOutputs) if (e.value === m.value) out.set(e.param, entry);
    } else if (r.analysis.logits?.readout && m.value === r.analysis.logits.output) {
      out.set(r.analysis.logits.readout, entry);
    }
  }
  return out;
}

/** The report as written: two-space indented JSON with a final newline. */
export function reportJson(report: TransformReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

const fmt = (x: number | null) => (x === null ? '-' : Number.isInteger(x) ? String(x) : x.toPrecision(4).replace(/\.?0+$/, ''));

/** The human summary for stdout: one row per trained or unclassified tensor, then sites, multipliers, warnings. */
export function summaryText(report: TransformReport): string {
  const s = report.settings;
  const lines: string[] = [];
  const depth = s.m_L !== 1 || s.alpha_depth !== 0 ? `, m_L ${fmt(s.m_L)} (${report.model.n_layers ?? '?'} layers / base ${s.n_layers_base}, α ${s.alpha_depth})` : '';
  lines.push(`${report.input.file}: rules ${s.rules}, density ${s.density}, m_d ${s.m_d} (${s.width_source})${depth}, mask ${s.mask_mode}, init ${s.init}, seed ${s.seed}`);
  if (report.defused?.length) lines.push(defusedLine(report.defused));
  const rows = report.tensors.filter((t) => t.trained || t.role === 'unknown').map((t) => [
    t.name, t.role, `[${t.shape.join('×')}]`, fmt(t.density), String(t.non_zeros),
    t.init.std_before === null ? '-' : `${fmt(t.init.std_before)} → ${fmt(t.init.std_after)}`,
    fmt(t.lr_adam), fmt(t.lr_sgd), fmt(t.weight_decay), t.rule ?? '(none)',
  ]);
  lines.push(...table(['tensor', 'role', 'shape', 'density', 'non-zeros', 'std before → after', 'LR Adam', 'LR SGD', 'WD', 'rule'], rows));
  const others = report.tensors.length - rows.length;
  if (others > 0) lines.push(`(${others} other tensors not trained: buffers, constants, folded tie copies)`);
  for (const a of report.attention) {
    lines.push(`attention ${a.kind}${a.layer === null ? '' : ` layer ${a.layer}`} (d_head ${a.d_head}): ${fmt(a.before)} → ${fmt(a.after)} [${a.rewrite}${a.carriers.length ? `: ${a.carriers.join(', ')}` : ''}]`);
  }
  for (const m of report.multipliers) lines.push(`multiplier ${m.kind}: ${m.value} × ${fmt(m.multiplier)} (${m.constant})`);
  const scaled = report.residual_branches.filter((b) => b.node !== null);
  if (report.residual_branches.length) {
    lines.push(`residual branches: ${report.residual_branches.length} (${report.residual_branches.filter((b) => b.kind === 'attention').length} attention, ${report.residual_branches.filter((b) => b.kind === 'mlp').length} MLP) × ${fmt(report.residual_branches[0]!.multiplier)}${scaled.length ? '' : ' (= 1: nothing inserted)'}`);
  }
  const eps = [...new Set(report.tensors.filter((t) => t.adam_eps !== null && t.adam_eps !== 1).map((t) => `${t.role} ×${fmt(t.adam_eps)}`))];
  if (eps.length) lines.push(`Adam ε multipliers: ${eps.join(', ')}${s.weight_decay_mode === 'group_lr' ? '; weight decay coupled to the group LR' : ''}`);
  for (const t of report.ties) lines.push(`tie: ${t.copy} folded into ${t.table} (${t.tie}; readers now read ${t.now_reads})`);
  const sm = report.summary;
  const stored = sm.masked > 0 ? `; ${sm.mask_bytes} bytes of ${s.mask_storage} masks` : '';
  lines.push(`${sm.trained} trained tensors, ${sm.masked} masked (${sm.mask_non_zeros} of ${sm.masked_elements} entries kept${stored}), ${sm.unclassified} unclassified`);
  if (report.train_opset_upgrade) {
    const u = report.train_opset_upgrade;
    lines.push(`train graph: opset ${u.from} upgraded to ${u.to}: ${u.changes.map((c) => c.split(':')[0]).join(', ')} (report: train_opset_upgrade)`);
  }
  for (const c of report.cuda ?? []) lines.push(cudaLine(c));
  for (const c of report.webgpu ?? []) lines.push(webgpuLine(c));
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

/** `de-fused 6 onnxruntime contrib nodes into ai.onnx ops: Attention ×2, SkipLayerNormalization ×4`. */
function defusedLine(d: NonNullable<TransformReport['defused']>): string {
  const counts = new Map<string, number>();
  for (const x of d) counts.set(x.op, (counts.get(x.op) ?? 0) + 1);
  return `de-fused ${d.length} onnxruntime contrib node(s) into ai.onnx ops: ${[...counts].map(([op, k]) => `${op} ×${k}`).join(', ')} (report: defused)`;
}

function cudaLine(c: CudaReadiness): string {
  if (c.fallbacks.length === 0) return `cuda: ${c.graph} graph, all ${c.nodes} nodes have CUDA kernels`;
  const shown = c.fallbacks.slice(0, 5).map((f) => `${f.op} (${f.node}: ${f.reason})`).join('; ');
  return `cuda: ${c.graph} graph, ${c.fallbacks.length} of ${c.nodes} nodes would fall back to CPU: ${shown}${c.fallbacks.length > 5 ? '; …' : ''}`;
}

/**
 * Integer shape/index arithmetic (int64/bool inputs: token ids, shapes, masks) is cheap on the CPU, and
 * onnxruntime places much of it there anyway; float nodes on the CPU cost a round trip of activations.
 */
function webgpuLine(c: CudaReadiness): string {
  if (c.fallbacks.length === 0) return `webgpu: ${c.graph} graph, all ${c.nodes} nodes have WebGPU kernels`;
  const integer = c.fallbacks.filter((f) => /has no tensor\((int64|bool)\) kernel/.test(f.reason) || ['ConstantOfShape', 'NonZero', 'Size'].includes(f.op));
  const other = c.fallbacks.filter((f) => !integer.includes(f));
  const shown = other.slice(0, 5).map((f) => `${f.op} (${f.node}: ${f.reason})`).join('; ');
  return `webgpu: ${c.graph} graph, ${c.fallbacks.length} of ${c.nodes} nodes would run on CPU: ${integer.length} integer shape/index nodes` +
    (other.length ? `, ${other.length} other: ${shown}${other.length > 5 ? '; …' : ''}` : '');
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}
