/**
 * LR sweep across densities (paper Fig. 1 / Fig. 6): train every (rule set, density, base LR), take the
 * final loss (mean of the last k steps), find the loss-optimal LR per density, and show how far the
 * optimum moves across densities in grid steps. Under SµPar it should stay put (≤ 1 step of ×2);
 * under SP it drifts. Diverged runs (a non-finite or blown-up loss) are recorded as such, never dropped.
 */
import { UsageError } from '../errors.js';
import { isDivergedLoss, sweptDimension, type Progress, type RunConfig, type StudyModel, type TrainRun } from './run-types.js';

export interface SweepOptions {
  rules: string[];
  densities: number[];
  lrs: number[];
  steps: number;
  seed: number;
  /** Final loss = mean of the last k steps' losses. */
  lastK: number;
  /** Several models (the same architecture at several widths or depths, `--models`); absent = one model. */
  models?: StudyModel[];
}

export interface SweepPoint {
  rules: string;
  /** The model's label in a several-model sweep. */
  model?: string;
  density: number;
  lr: number;
  log2Lr: number;
  status: 'ok' | 'diverged';
  /** Mean of the last k losses; null when diverged. */
  finalLoss: number | null;
  /** First step whose loss was not finite (diverged runs). */
  divergedAtStep: number | null;
  losses: number[];
}

export interface SweepOptimum {
  rules: string;
  model?: string;
  density: number;
  /** null when every LR diverged at this density. */
  lr: number | null;
  log2Lr: number | null;
  finalLoss: number | null;
  /** Whether the optimum sits on the grid's edge (the true optimum may lie outside the grid). */
  atEdge: boolean;
}

export interface SweepResult {
  format: 'supar-sweep/1';
  options: SweepOptions;
  points: SweepPoint[];
  optima: SweepOptimum[];
  /** Per rule set: max − min of log2(optimal LR) across densities (and models), in units of ×2; null if undefined. */
  optimumSpreadLog2: Record<string, number | null>;
}

const POW2 = /^2\^(-?\d+(?:\.\d+)?)$/;

/** A number written as `2^-5`, `0.001` or `1e-3`. */
export function parseLrValue(text: string, flag = '--lrs'): number {
  const t = text.trim();
  const m = POW2.exec(t);
  const v = m ? 2 ** Number(m[1]) : Number(t);
  if (!Number.isFinite(v) || v <= 0 || t === '') throw new UsageError(`${flag}: '${text}' is not a positive number (write e.g. 2^-7, 0.004 or 1e-3)`);
  return v;
}

/**
 * LR grid: `2^-12:2^-4` (every power of two between, log2 step 1), `2^-12:2^-4:0.5` (log2 step 0.5),
 * or a comma list `1e-3,2^-8,0.01`. Returned ascending, duplicates removed.
 */
export function parseLrGrid(spec: string): number[] {
  if (spec.includes(':')) {
    const parts = spec.split(':');
    if (parts.length < 2 || parts.length > 3) throw new UsageError(`--lrs: '${spec}' is not a range; write LO:HI or LO:HI:LOG2STEP, e.g. 2^-12:2^-4`);
    const lo = Math.log2(parseLrValue(parts[0]));
    const hi = Math.log2(parseLrValue(parts[1]));
    const step = parts.length === 3 ? Number(parts[2]) : 1;
    if (!(step > 0) || hi < lo) throw new UsageError(`--lrs: '${spec}' needs LO ≤ HI and a positive log2 step`);
    const n = Math.floor((hi - lo) / step + 1e-9);
    if (n > 200) throw new UsageError(`--lrs: '${spec}' makes ${n + 1} learning rates; use at most 200`);
    return Array.from({ length: n + 1 }, (_, i) => 2 ** (lo + i * step));
  }
  const values = spec.split(',').map((s) => parseLrValue(s));
  return [...new Set(values)].sort((a, b) => a - b);
}

/** Densities: a comma list of numbers in (0, 1], or fractions like 1/16. Order kept, duplicates removed. */
export function parseDensities(spec: string): number[] {
  const out: number[] = [];
  for (const raw of spec.split(',')) {
    const t = raw.trim();
    const frac = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(t);
    const v = frac ? Number(frac[1]) / Number(frac[2]) : Number(t);
    if (t === '' || !Number.isFinite(v) || v <= 0 || v > 1) throw new UsageError(`--densities: '${raw}' is not a density in (0, 1]; write e.g. 1,0.5,0.25 or 1/16`);
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

/**
 * Final loss of one run: the mean of its last k losses. A run is diverged from the first step whose loss
 * is non-finite or above DIVERGENCE_FACTOR × the first loss (run-types.ts); it has no final loss.
 */
export function summarizeLosses(losses: number[], lastK: number): Pick<SweepPoint, 'status' | 'finalLoss' | 'divergedAtStep'> {
  const bad = losses.findIndex((l) => isDivergedLoss(l, losses[0]));
  if (bad >= 0 || losses.length === 0) return { status: 'diverged', finalLoss: null, divergedAtStep: bad >= 0 ? bad : null };
  const tail = losses.slice(-Math.max(1, lastK));
  return { status: 'ok', finalLoss: tail.reduce((a, b) => a + b, 0) / tail.length, divergedAtStep: null };
}

/** Loss-optimal LR per (rule set, model, density) among the runs that did not diverge. */
export function findOptima(points: SweepPoint[], rules: string[], densities: number[], models?: StudyModel[]): SweepOptimum[] {
  const out: SweepOptimum[] = [];
  for (const r of rules) {
    for (const model of models?.map((m) => m.label) ?? [undefined]) for (const d of densities) {
      const runs = points.filter((p) => p.rules === r && p.density === d && p.model === model);
      const lrs = runs.map((p) => p.lr);
      let best: SweepPoint | undefined;
      for (const p of runs) if (p.finalLoss !== null && (!best || p.finalLoss < (best.finalLoss as number))) best = p;
      out.push({
        rules: r,
        ...(model !== undefined ? { model } : {}),
        density: d,
        lr: best?.lr ?? null,
        log2Lr: best ? best.log2Lr : null,
        finalLoss: best?.finalLoss ?? null,
        atEdge: best !== undefined && (best.lr === Math.min(...lrs) || best.lr === Math.max(...lrs)),
      });
    }
  }
  return out;
}

/** max − min of log2(optimal LR) across densities per rule set (in grid steps of ×2). */
export function optimumSpread(optima: SweepOptimum[], rules: string[]): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const r of rules) {
    const xs = optima.filter((o) => o.rules === r && o.log2Lr !== null).map((o) => o.log2Lr as number);
    out[r] = xs.length ? Math.max(...xs) - Math.min(...xs) : null;
  }
  return out;
}

/** The grid's runs in their fixed order (rules, model, density, LR): the study plan of a sweep. */
export function sweepRunConfigs(opts: SweepOptions): RunConfig[] {
  const models = opts.models ? opts.models.map((_, i) => i) : [undefined];
  return opts.rules.flatMap((rules) => models.flatMap((model) => opts.densities.flatMap((density) =>
    opts.lrs.map((lr): RunConfig => ({ rules, density, lr, steps: opts.steps, seed: opts.seed, recordActivations: false, ...(model !== undefined ? { model } : {}) })))));
}

/** One run's point: its final loss (or divergence) from the losses it recorded. */
export function sweepPoint(cfg: RunConfig, losses: number[], lastK: number, models?: StudyModel[]): SweepPoint {
  const model = cfg.model !== undefined && models ? { model: models[cfg.model]!.label } : {};
  return { rules: cfg.rules, ...model, density: cfg.density, lr: cfg.lr, log2Lr: Math.log2(cfg.lr), ...summarizeLosses(losses, lastK), losses };
}

export function sweepProgressLine(point: SweepPoint, done: number, total: number): string {
  const what = point.status === 'ok' ? `final loss ${(point.finalLoss as number).toFixed(4)}` : `DIVERGED at step ${point.divergedAtStep}`;
  return `[${done}/${total}] ${point.rules}${point.model !== undefined ? ` ${point.model}` : ''} density ${fmtDensity(point.density)} lr 2^${fmtLog2(point.log2Lr)}: ${what}`;
}

/** The sweep's result from its points in plan order (what a local sweep and a merge of a planned study both call). */
export function assembleSweep(opts: SweepOptions, points: SweepPoint[]): SweepResult {
  const optima = findOptima(points, opts.rules, opts.densities, opts.models);
  return { format: 'supar-sweep/1', options: opts, points, optima, optimumSpreadLog2: optimumSpread(optima, opts.rules) };
}

/** Runs the whole grid in this process, in plan order, with one progress line per run. */
export async function runSweep(opts: SweepOptions, train: TrainRun, progress: Progress = () => {}): Promise<SweepResult> {
  const configs = sweepRunConfigs(opts);
  const points: SweepPoint[] = [];
  for (const cfg of configs) {
    const run = await train(cfg);
    points.push(sweepPoint(cfg, run.losses, opts.lastK, opts.models));
    progress(sweepProgressLine(points[points.length - 1], points.length, configs.length));
  }
  return assembleSweep(opts, points);
}

export function fmtDensity(d: number): string {
  const inv = 1 / d;
  return d === 1 ? '1' : Number.isInteger(inv) ? `1/${inv}` : String(Number(d.toPrecision(4)));
}

export function fmtLog2(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}

/** One row per run: rules, density, lr, log2_lr, status, final_loss, diverged_at_step, then loss per step. */
export function sweepCsv(res: SweepResult): string {
  const n = Math.max(0, ...res.points.map((p) => p.losses.length));
  const many = res.options.models !== undefined;
  const head = ['rules', ...(many ? ['model'] : []), 'density', 'lr', 'log2_lr', 'status', 'final_loss', 'diverged_at_step', ...Array.from({ length: n }, (_, i) => `loss_${i}`)];
  const rows = res.points.map((p) => [p.rules, ...(many ? [p.model] : []), p.density, p.lr, p.log2Lr, p.status, p.finalLoss ?? '', p.divergedAtStep ?? '', ...p.losses].join(','));
  return [head.join(','), ...rows, ''].join('\n');
}

/** Markdown table: optimal LR per density, one column per rule set, and the spread in grid steps. */
export function optimaMarkdown(res: SweepResult): string {
  const { rules, densities } = res.options;
  const cell = (o: SweepOptimum | undefined): string =>
    !o || o.lr === null ? 'all diverged' : `2^${fmtLog2(o.log2Lr as number)} (loss ${(o.finalLoss as number).toFixed(3)})${o.atEdge ? ' edge' : ''}`;
  const models = res.options.models;
  const dim = models ? sweptDimension(models) : undefined;
  const head = models ? `| model | ${dim!.name} | density |` : '| density |';
  const lines = [`${head} ${rules.map((r) => `${r}: optimal LR`).join(' | ')} |`, `|---|${models ? '---|---|' : ''}${rules.map(() => '---|').join('')}`];
  for (const m of models ?? [undefined]) {
    // A merged study may pair each model with one density (iso-parameter): rows without runs are left out.
    for (const d of densities.filter((x) => !m || res.points.some((p) => p.model === m.label && p.density === x))) {
      const lead = m ? `| ${m.label} | ${dim!.value(m)} | ${fmtDensity(d)} |` : `| ${fmtDensity(d)} |`;
      lines.push(`${lead} ${rules.map((r) => cell(res.optima.find((o) => o.rules === r && o.density === d && o.model === m?.label))).join(' | ')} |`);
    }
  }
  const spread = rules.map((r) => { const s = res.optimumSpreadLog2[r]; return s === null ? 'n/a' : `${fmtLog2(s)} step${s === 1 ? '' : 's'} (×${fmtLog2(2 ** s)})`; });
  lines.push(`| optimum moves by${models ? ' | |' : ''} | ${spread.join(' | ')} |`);
  return lines.join('\n') + '\n';
}
