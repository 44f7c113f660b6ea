/**
 * Coordinate check (microsoft/mup `coord_check.py`; SµPar paper §3.4, Fig. 5): for each rule set and
 * density, train a few steps on a fixed batch with the same seed and record, per block (attention and MLP
 * block outputs, attention logits, output logits), the mean |activation| of the forward pass of every
 * step t (t = 0 is at init). Under SµPar the curves are flat across density; under SP and µP the hidden
 * activations shrink as density falls. Verdict per block: the max/min ratio across densities, taken at
 * the worst step.
 */
import type { BlockOutput } from '../analysis/types.js';
import type { FigureSpec, Series } from './plot.js';
import { sweptDimension, type Progress, type RunConfig, type RunResult, type StudyModel, type TrainRun } from './run-types.js';
import { fmtDensity } from './sweep.js';

export interface CoordCheckOptions {
  rules: string[];
  densities: number[];
  steps: number;
  lr: number;
  seed: number;
  /** A block passes when its max/min ratio across densities stays ≤ this at every step. */
  threshold: number;
  /** Several models (widths or depths, `--models`): the ratio is taken across models and densities. */
  models?: StudyModel[];
}

export interface CoordRecord {
  rules: string;
  model?: string;
  density: number;
  step: number;
  /** Block output value name. */
  block: string;
  kind: BlockOutput['kind'];
  layer: number | null;
  meanAbs: number;
}

export interface CoordVerdict {
  rules: string;
  block: string;
  kind: BlockOutput['kind'];
  layer: number | null;
  /** max over steps of (max over densities / min over densities) of mean |activation|; Infinity if any value is 0 or non-finite. */
  maxRatio: number;
  worstStep: number;
  pass: boolean;
}

export interface CoordCheckResult {
  format: 'supar-coord-check/1';
  options: CoordCheckOptions;
  records: CoordRecord[];
  verdicts: CoordVerdict[];
  /** Training losses per (rules, density), for reference. */
  losses: { rules: string; model?: string; density: number; losses: number[] }[];
}

/** The kinds mup's coord check plots (embedding outputs are recorded by the analysis but not judged). */
export const COORD_KINDS: BlockOutput['kind'][] = ['attention', 'mlp', 'attention_logits', 'residual_stream', 'output_logits'];
/** The kinds a coord check across depths judges (the others are recorded and plotted). */
export const DEPTH_JUDGED: BlockOutput['kind'][] = ['residual_stream', 'output_logits'];

/** Every (rule set, density) with the same seed and LR, in a fixed order: the study plan of a coord check. */
export function coordRunConfigs(opts: CoordCheckOptions): RunConfig[] {
  const models = opts.models ? opts.models.map((_, i) => i) : [undefined];
  return opts.rules.flatMap((rules) => models.flatMap((model) => opts.densities.map((density): RunConfig => ({
    rules, density, lr: opts.lr, steps: opts.steps, seed: opts.seed, recordActivations: true, ...(model !== undefined ? { model } : {}),
  }))));
}

/** What one coord-check run contributes: its per-step block statistics (judged kinds only) and its losses. */
export function coordRunPart(cfg: RunConfig, run: RunResult, models?: StudyModel[]): { records: CoordRecord[]; losses: CoordCheckResult['losses'][number] } {
  const records: CoordRecord[] = [];
  const model = cfg.model !== undefined && models ? { model: models[cfg.model]!.label } : {};
  const blocks = run.blocks.filter((b) => COORD_KINDS.includes(b.kind));
  run.activations.forEach((perBlock, step) => {
    for (const b of blocks) {
      const v = perBlock[b.value];
      if (v !== undefined) records.push({ rules: cfg.rules, ...model, density: cfg.density, step, block: b.value, kind: b.kind, layer: b.layer ?? null, meanAbs: v });
    }
  });
  return { records, losses: { rules: cfg.rules, ...model, density: cfg.density, losses: run.losses } };
}

export function coordProgressLine(cfg: RunConfig, run: RunResult): string {
  const blocks = run.blocks.filter((b) => COORD_KINDS.includes(b.kind));
  const last = run.losses[run.losses.length - 1];
  return `coord-check ${cfg.rules}${cfg.model !== undefined ? ` model ${cfg.model}` : ''} density ${fmtDensity(cfg.density)}: ${run.activations.length} steps, ${blocks.length} blocks, last loss ${last?.toFixed(4)}`;
}

/** The coord check's result from its runs in plan order (a local run and a merge of a planned study both call this). */
export function assembleCoordCheck(opts: CoordCheckOptions, parts: ReturnType<typeof coordRunPart>[]): CoordCheckResult {
  const records = parts.flatMap((p) => p.records);
  // Across depths a branch's output is m_L^(−α) by construction (CompleteP): what must stay put is the stream
  // after the last block and the logits (CompleteP Fig. 7 plots the last block's output).
  const judged = opts.models && sweptDimension(opts.models).name === 'depth' ? records.filter((r) => DEPTH_JUDGED.includes(r.kind)) : records;
  return { format: 'supar-coord-check/1', options: opts, records, verdicts: coordVerdicts(judged, opts.threshold), losses: parts.map((p) => p.losses) };
}

/** Runs every (rule set, density) in this process and collects the per-step block statistics. */
export async function runCoordCheck(opts: CoordCheckOptions, train: TrainRun, progress: Progress = () => {}): Promise<CoordCheckResult> {
  const parts: ReturnType<typeof coordRunPart>[] = [];
  for (const cfg of coordRunConfigs(opts)) {
    const run = await train(cfg);
    parts.push(coordRunPart(cfg, run, opts.models));
    progress(coordProgressLine(cfg, run));
  }
  return assembleCoordCheck(opts, parts);
}

/** Ratio max/min of positive finite values; Infinity when a value is 0 or non-finite. */
export function spreadRatio(values: number[]): number {
  if (values.some((v) => !Number.isFinite(v) || v <= 0)) return Infinity;
  return Math.max(...values) / Math.min(...values);
}

/** Per (rule set, block): the worst step's max/min ratio of mean |activation| across densities. */
export function coordVerdicts(records: CoordRecord[], threshold: number): CoordVerdict[] {
  const groups = new Map<string, CoordRecord[]>();
  for (const r of records) {
    // The stream after the last block is one block whatever the depth (its value is named by the last layer).
    const key = `${r.rules}\u0000${r.kind === 'residual_stream' ? 'residual_stream' : r.block}`;
    const g = groups.get(key);
    if (g) g.push(r); else groups.set(key, [r]);
  }
  const out: CoordVerdict[] = [];
  for (const recs of groups.values()) {
    // A block only one (model, density) run has (a layer only the deepest model has) has nothing to compare.
    if (new Set(recs.map((r) => `${r.model ?? ''}\u0000${r.density}`)).size < 2) continue;
    const steps = [...new Set(recs.map((r) => r.step))].sort((a, b) => a - b);
    let maxRatio = 1;
    let worstStep = steps[0] ?? 0;
    for (const t of steps) {
      const ratio = spreadRatio(recs.filter((r) => r.step === t).map((r) => r.meanAbs));
      if (ratio > maxRatio || !Number.isFinite(ratio)) { maxRatio = ratio; worstStep = t; }
      if (!Number.isFinite(ratio)) break;
    }
    const r0 = recs[0];
    out.push({ rules: r0.rules, block: r0.block, kind: r0.kind, layer: r0.layer, maxRatio, worstStep, pass: maxRatio <= threshold });
  }
  return out;
}

export function coordCsv(res: CoordCheckResult): string {
  const many = res.options.models !== undefined;
  const rows = res.records.map((r) => [r.rules, ...(many ? [csvField(r.model ?? '')] : []), r.density, r.step, csvField(r.block), r.kind, r.layer ?? '', r.meanAbs].join(','));
  return [`rules,${many ? 'model,' : ''}density,step,block,kind,layer,mean_abs`, ...rows, ''].join('\n');
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const KIND_TITLE: Record<string, string> = {
  attention: 'attention block output', mlp: 'MLP block output', attention_logits: 'attention logits', output_logits: 'output logits',
  residual_stream: 'last block output (residual stream)',
};

/**
 * One figure per rule set (paper Fig. 5): a panel per block kind, x = density (log2), y = mean |activation|
 * (log10) averaged over the layers of that kind, one line per step.
 */
export function coordFigure(res: CoordCheckResult, rules: string): FigureSpec {
  if (res.options.models && res.options.densities.length === 1) return coordModelsFigure(res, rules, res.options.models);
  const recs = res.records.filter((r) => r.rules === rules);
  const kinds = COORD_KINDS.filter((k) => recs.some((r) => r.kind === k));
  const steps = [...new Set(recs.map((r) => r.step))].sort((a, b) => a - b);
  const panels = kinds.map((kind) => ({
    title: KIND_TITLE[kind] ?? kind,
    x: { label: 'density', scale: 'log2' as const },
    y: { label: 'mean |activation|', scale: 'log10' as const, ...minimumLogSpan(recs.filter((r) => r.kind === kind).map((r) => r.meanAbs), 8) },
    series: steps.map((t): Series => ({
      name: `step ${t}`,
      color: stepColor(t, steps.length),
      points: res.options.densities.map((d) => {
        const vals = recs.filter((r) => r.kind === kind && r.step === t && r.density === d).map((r) => r.meanAbs);
        return { x: d, y: vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN };
      }),
    })),
  }));
  return { title: `Coordinate check: ${rules} (mean |activation| per step vs density)`, panels, columns: Math.min(2, kinds.length) };
}

/** A several-model coord check (one density): x = the swept width or depth (log2), y as coordFigure. */
function coordModelsFigure(res: CoordCheckResult, rules: string, models: StudyModel[]): FigureSpec {
  const recs = res.records.filter((r) => r.rules === rules);
  const dim = sweptDimension(models);
  const kinds = COORD_KINDS.filter((k) => recs.some((r) => r.kind === k));
  const steps = [...new Set(recs.map((r) => r.step))].sort((a, b) => a - b);
  const panels = kinds.map((kind) => ({
    title: KIND_TITLE[kind] ?? kind,
    x: { label: dim.name, scale: 'log2' as const, ticks: 'plain' as const },
    y: { label: 'mean |activation|', scale: 'log10' as const, ...minimumLogSpan(recs.filter((r) => r.kind === kind).map((r) => r.meanAbs), 8) },
    series: steps.map((t): Series => ({
      name: `step ${t}`,
      color: stepColor(t, steps.length),
      points: models.map((m) => {
        const vals = recs.filter((r) => r.kind === kind && r.step === t && r.model === m.label).map((r) => r.meanAbs);
        return { x: dim.value(m), y: vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN };
      }),
    })),
  }));
  return { title: `Coordinate check: ${rules} (mean |activation| per step vs ${dim.name})`, panels, columns: Math.min(2, kinds.length) };
}

/**
 * A y range spanning at least a factor `span` around the data's geometric centre, so that flat curves
 * look flat (a tightly zoomed log axis would make a ±5 % wobble look like drift).
 */
export function minimumLogSpan(values: number[], span: number): { min?: number; max?: number } {
  const ok = values.filter((v) => Number.isFinite(v) && v > 0);
  if (!ok.length) return {};
  const lo = Math.min(...ok);
  const hi = Math.max(...ok);
  if (hi / lo >= span) return {};
  const centre = Math.sqrt(lo * hi);
  return { min: centre / Math.sqrt(span), max: centre * Math.sqrt(span) };
}

/** Steps coloured along a sequential ramp (early = light, late = dark), as in the paper's Fig. 5. */
function stepColor(t: number, n: number): string {
  const f = n <= 1 ? 1 : t / (n - 1);
  const c = (a: number, b: number): number => Math.round(a + (b - a) * f);
  return `rgb(${c(158, 8)},${c(202, 48)},${c(225, 107)})`;
}

/** Human verdict lines: one per (rule set, block), e.g. "supar  layer 0 attention  max/min 1.12 (step 3)  ok". */
export function verdictLines(res: CoordCheckResult): string[] {
  const lines: string[] = [];
  const across = res.options.models ? `${sweptDimension(res.options.models).name}s` : 'densities';
  const width = Math.max(6, ...res.verdicts.map((v) => v.rules.length));
  for (const v of res.verdicts) {
    const ratio = Number.isFinite(v.maxRatio) ? v.maxRatio.toFixed(3) : 'inf';
    const layer = v.layer === null || v.kind === 'residual_stream' ? '' : `layer ${v.layer} `;
    lines.push(`${v.rules.padEnd(width)} ${(layer + v.kind).padEnd(28)} max/min across ${across} ${ratio.padStart(7)} (worst at step ${v.worstStep})  ${v.pass ? 'flat' : 'DRIFTS'}  [${v.block}]`);
  }
  return lines;
}
