/**
 * The figures of an LR sweep (issue 8: "an x-axis per swept dimension, one panel per rule set"):
 * - sweepFigure: final loss against the base LR, a panel per rule set, a curve per density, or per model
 *   (labelled by its width or depth) in a several-model sweep; optima ringed, diverged runs as crosses.
 * - optimaFigure: the loss-optimal base LR against the swept dimension (density, or the models' width or
 *   depth), a line per rule set: transfer is a flat line (paper Fig. 1/9/14, CompleteP's depth transfer).
 */
import type { FigureSpec, Series } from './plot.js';
import { PALETTE } from './plot.js';
import { sweptDimension, type StudyModel } from './run-types.js';
import { fmtDensity, fmtLog2, type SweepOptimum, type SweepResult } from './sweep.js';

/** Whether the sweep has runs of this (model, density): a merged study may pair each model with one density (iso-parameter). */
const hasRuns = (res: SweepResult, model: string | undefined, density: number): boolean => res.points.some((p) => p.model === model && p.density === density);

/**
 * One curve per density, or per (model, density) in a several-model sweep (named by its width or depth, and its
 * density when the models are paired with several); combinations without runs are left out.
 */
function seriesKeys(res: SweepResult): { model?: string; density: number; name: string }[] {
  const { densities, models } = res.options;
  if (!models) return densities.map((density) => ({ density, name: `density ${fmtDensity(density)}` }));
  const dim = sweptDimension(models);
  const keys = models.flatMap((m) => densities.filter((d) => hasRuns(res, m.label, d)).map((density) => ({ model: m.label, density })));
  const several = new Set(keys.map((k) => k.density)).size > 1;
  return keys.map(({ model, density }) => ({
    model, density, name: `${dim.name} ${dim.value(models.find((m) => m.label === model)!)}${several ? `, density ${fmtDensity(density)}` : ''}`,
  }));
}

/** Plot of final loss against log2 LR: a panel per rule set, a curve per density or model, optima ringed, diverged runs as crosses. */
export function sweepFigure(res: SweepResult, title = 'Final training loss vs learning rate'): FigureSpec {
  const { rules } = res.options;
  const finals = res.points.filter((p) => p.finalLoss !== null).map((p) => p.finalLoss as number);
  const firsts = res.points.map((p) => p.losses[0]).filter(Number.isFinite).sort((a, b) => a - b);
  // Runs that blow up without a NaN would squash the interesting range: cap the axis at 1.25× the initial loss.
  const cap = firsts.length ? firsts[Math.floor(firsts.length / 2)] * 1.25 : undefined;
  const yMax = cap !== undefined && finals.some((f) => f > cap) ? cap : undefined;
  const panels = rules.map((r) => ({
    title: `${r}`,
    x: { label: 'base learning rate (log2)', scale: 'log2' as const },
    y: { label: `final train loss (mean of last ${res.options.lastK} steps)`, scale: 'linear' as const, max: yMax },
    series: seriesKeys(res).map(({ model, density: d, name }, i): Series => {
      const pts = res.points.filter((p) => p.rules === r && p.density === d && p.model === model);
      const opt = res.optima.find((o) => o.rules === r && o.density === d && o.model === model);
      return {
        name,
        color: PALETTE[i % PALETTE.length],
        points: pts.map((p) => ({ x: p.lr, y: p.finalLoss ?? NaN })),
        marks: opt && opt.lr !== null ? [{ x: opt.lr, y: opt.finalLoss as number }] : [],
        diverged: pts.filter((p) => p.status === 'diverged').map((p) => p.lr),
      };
    }),
  }));
  return { title, panels, notes: ['ringed dot: optimum', '× at top: diverged'] };
}

/** The dimension a sweep's optimum is plotted against: the models' width or depth, else density. */
export function optimumDimension(res: SweepResult): { name: 'width' | 'depth' | 'density'; of: (o: SweepOptimum) => number } {
  const models = res.options.models;
  if (!models) return { name: 'density', of: (o) => o.density };
  const dim = sweptDimension(models);
  const byLabel = new Map<string | undefined, StudyModel>(models.map((m) => [m.label, m]));
  return { name: dim.name, of: (o) => { const m = byLabel.get(o.model); return m ? dim.value(m) : NaN; } };
}

/** "supar-init-only (moves 3 steps)": a rule set and how far its optimum moves across the sweep, in ×2 grid steps. */
function spreadLabel(res: SweepResult, rules: string): string {
  const s = res.optimumSpreadLog2[rules];
  return s === null || s === undefined ? `${rules} (no optimum)` : `${rules} (moves ${fmtLog2(s)} step${s === 1 ? '' : 's'})`;
}

/**
 * Loss-optimal base LR (log2 axis over the LR grid) against the swept dimension (log2): a line per rule set,
 * or per (rule set, density) when a several-model sweep also has several densities. An optimum on the grid's
 * edge is ringed (the true optimum may lie beyond it); where every LR diverged, a cross at the top.
 */
export function optimaFigure(res: SweepResult, title?: string): FigureSpec {
  const { rules, densities, lrs } = res.options;
  const dim = optimumDimension(res);
  // A line per (rule set, density) only when some model was trained at several densities; models paired with one
  // density each (iso-parameter) make one line per rule set.
  const perDensity = dim.name !== 'density' && (res.options.models ?? []).some((m) => densities.filter((d) => hasRuns(res, m.label, d)).length > 1);
  const keys = rules.flatMap((r) => (perDensity ? densities.map((d) => ({ r, d })) : [{ r, d: undefined as number | undefined }]));
  const series = keys.map(({ r, d }, i): Series => {
    const opts = res.optima.filter((o) => o.rules === r && (d === undefined || o.density === d) && hasRuns(res, o.model, o.density));
    const found = opts.filter((o) => o.lr !== null);
    return {
      name: d === undefined ? spreadLabel(res, r) : `${r}, density ${fmtDensity(d)}`,
      color: PALETTE[i % PALETTE.length],
      // Every other line dashed: rule sets with the same optima (a flat line each) stay visible on top of each other.
      dashed: i % 2 === 1,
      points: found.map((o) => ({ x: dim.of(o), y: o.lr as number })),
      marks: found.filter((o) => o.atEdge).map((o) => ({ x: dim.of(o), y: o.lr as number })),
      diverged: opts.filter((o) => o.lr === null).map((o) => dim.of(o)),
    };
  });
  // Half a grid step beyond the grid's ends, so that edge optima are not drawn on the frame.
  const lo = Math.min(...lrs) / Math.SQRT2;
  const hi = Math.max(...lrs) * Math.SQRT2;
  return {
    title: title ?? `Loss-optimal learning rate vs ${dim.name}`,
    panels: [{
      title: `optimum per ${dim.name} (a flat line: the LR transfers)`,
      x: { label: dim.name, scale: 'log2', ticks: 'plain' },
      y: { label: 'loss-optimal base learning rate (log2)', scale: 'log2', min: lo, max: hi },
      series,
    }],
    notes: ['ringed: optimum at grid edge', '× at top: all LRs diverged'],
  };
}
