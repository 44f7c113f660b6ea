/**
 * The SµPar ablation (paper App. C, Fig. 13/14; issue 8) at CPU scale, through the CLI a user runs:
 *   npm run experiment:ablation                      # reduced preset: width 256, densities 1 … 1/8, 50 steps
 *   npm run experiment:ablation -- --steps 100 --seed 1 --tag check-100steps-seed1
 * One GPT-style model (fixtures/gpt-builder.ts, width 256 = the paper's base width, so m_d = 1 and only the
 * density changes) is built into a work folder. `sweep` trains every (rule set, density, base LR) on byte-level
 * text read at run time from installed packages (src/experiments/text-corpus.ts) under:
 *   supar            both corrections: hidden init σ_base/√(m_d·m_ρ), Adam LR 1/(m_d·m_ρ)
 *   supar-init-only  SµPar's init, µP's LR 1/m_d (the density LR correction left out)
 *   supar-lr-only    SµPar's LR, µP's init σ_base/√m_d (the density init correction left out)
 * with the paper's tuned µP proxy values (σ_base 0.0866, α_input 9.1705, α_output 1.0951835, App. E Table 3),
 * and `sp` for reference in a second sweep with the paper's SP init std 0.02166 (the CLI's --sigma-base
 * applies to every rule set of one call). The two sweeps are merged into one result. Full SµPar should keep
 * the loss-optimal LR within one grid step across densities; the ablations should not (Fig. 14).
 * Then `coord-check` of the three at one LR (10 steps): which correction keeps which size.
 * With --sigmas (e.g. 2^-6:2^-1) also the init-std sweep of Fig. 13: final loss against σ_base at one LR.
 * With --hidden-only DENSITIES (e.g. 1,1/8) also a diagnostic LR sweep (--hidden-lrs) in which only the hidden weights learn
 * (scripts/ablation-rules/*-hidden-only.json freeze embeddings, readout, norms and biases): the hidden-weight LR
 * rule alone, without the dense parameters' own optimum LR in the way.
 * Writes docs/img/ablation-<tag>{,.optima,-init,-init.optima}.svg, docs/img/ablation-<tag>-coord.<rules>.svg
 * and docs/results/ablation-<tag>.* (summary with the tables, sweep JSON and CSV, coord-check JSON).
 * `--work DIR` keeps the runs in DIR: rerun with the same flags and finished runs are kept (a study resumes).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { encodeModel } from '../src/onnx/codec.js';
import { loadTextCorpus } from '../src/experiments/text-corpus.js';
import { assembleSweep, optimaMarkdown, parseLrGrid, type SweepResult } from '../src/experiments/sweep.js';
import { optimaFigure, sweepFigure } from '../src/experiments/sweep-figures.js';
import { figureSvg, type FigureSpec } from '../src/experiments/plot.js';
import { writeSweepOutputs } from '../src/experiments/outputs.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: o } = parseArgs({ options: {
  densities: { type: 'string', default: '1,1/2,1/4,1/8' }, width: { type: 'string', default: '256' }, layers: { type: 'string', default: '2' },
  steps: { type: 'string', default: '50' }, lrs: { type: 'string', default: '2^-11:2^-4' }, rules: { type: 'string', default: 'supar,supar-init-only,supar-lr-only' },
  reference: { type: 'string', default: 'sp' }, batch: { type: 'string', default: '8' }, seq: { type: 'string', default: '64' }, seed: { type: 'string', default: '0' },
  'coord-lr': { type: 'string', default: '2^-8' }, 'skip-coord': { type: 'boolean', default: false }, 'skip-sweep': { type: 'boolean', default: false },
  sigmas: { type: 'string', default: '' }, 'init-lr': { type: 'string', default: '2^-8' }, 'hidden-only': { type: 'string', default: '' }, 'hidden-lrs': { type: 'string', default: '2^-10:2^-3' },
  tag: { type: 'string', default: 'reduced' }, jobs: { type: 'string', default: String(os.availableParallelism()) }, work: { type: 'string' },
} });
const dir = o.work ? path.resolve(o.work) : fs.mkdtempSync(path.join(os.tmpdir(), 'supar-ablation-'));
fs.mkdirSync(dir, { recursive: true });
const model = path.join(dir, `gpt-d${o.width}-L${o.layers}.onnx`);
fs.writeFileSync(model, encodeModel(buildGpt({ vocab: 256, dModel: Number(o.width), layers: Number(o.layers), heads: 4, maxPos: Number(o.seq), seed: 1 })));
const text = path.join(dir, 'corpus.txt');
fs.writeFileSync(text, loadTextCorpus(4 << 20).bytes);
const tsx = pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href;
const cli = (args: string[]): string => {
  process.stderr.write(`$ supar-transform ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, ['--import', tsx, path.join(ROOT, 'test', 'cli-entry.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`exit ${r.status}`);
  return r.stdout;
};
const readSweep = (out: string): SweepResult => JSON.parse(fs.readFileSync(path.join(out, 'sweep.json'), 'utf8')) as SweepResult;
const lastK = String(Math.max(1, Math.round(Number(o.steps) / 10)));
const size = ['--batch', o.batch!, '--seq', o.seq!, '--seed', o.seed!, '--data', text, '--jobs', o.jobs!];
const common = ['--densities', o.densities!, '--steps', o.steps!, '--last-k', lastK, ...size];
/** The paper's tuned values (App. E, Table 3): µP/SµPar proxy σ_base and multipliers; SP's init std 2.166e-2. */
const PAPER_ALPHAS = ['--alpha-input', '9.1705', '--alpha-output', '1.0951835'];
const PAPER_MUP = ['--sigma-base', '0.08665602', ...PAPER_ALPHAS];
const PAPER_SP = ['--sigma-base', '0.02166'];
const stem = `ablation-${o.tag}`;
const res = path.join(ROOT, 'docs', 'results');
const img = path.join(ROOT, 'docs', 'img');
const summary: string[] = [];
const t0 = Date.now();
const minutes = (t: number): string => ((Date.now() - t) / 60000).toFixed(1);

/**
 * The optimum between grid points: the vertex of the parabola through the best log2 LR and its two neighbours
 * (y = final loss), or the best point itself on the grid's edge. A finer reading of "how far the optimum moves"
 * than the argmin, whose one-step resolution hides a curve that shifts by less (or more) than a step.
 */
function fittedOptimaMarkdown(result: SweepResult, what = 'LR'): string {
  const { rules, densities } = result.options;
  const fit = (r: string, d: number): number | null => {
    const pts = new Map(result.points.filter((p) => p.rules === r && p.density === d && p.finalLoss !== null).map((p) => [p.log2Lr, p.finalLoss as number]));
    if (!pts.size) return null;
    const best = [...pts.entries()].reduce((a, b) => (b[1] < a[1] ? b : a))[0];
    const step = result.options.lrs.length > 1 ? Math.log2(result.options.lrs[1]! / result.options.lrs[0]!) : 1;
    const y0 = pts.get(best - step), y1 = pts.get(best)!, y2 = pts.get(best + step);
    if (y0 === undefined || y2 === undefined || y0 - 2 * y1 + y2 <= 0) return best;
    return best + (step * (y0 - y2)) / (2 * (y0 - 2 * y1 + y2));
  };
  const cells = rules.map((r) => densities.map((d) => fit(r, d)));
  const lines = [`| density | ${rules.map((r) => `${r}: fitted log2 ${what}`).join(' | ')} |`, `|---|${rules.map(() => '---|').join('')}`];
  densities.forEach((d, j) => lines.push(`| ${d === 1 ? '1' : `1/${Math.round(1 / d)}`} | ${cells.map((c) => (c[j] === null ? 'n/a' : c[j]!.toFixed(2))).join(' | ')} |`));
  const spread = cells.map((c) => { const xs = c.filter((x): x is number => x !== null); return xs.length ? (Math.max(...xs) - Math.min(...xs)).toFixed(2) : 'n/a'; });
  lines.push(`| moves by (grid steps) | ${spread.join(' | ')} |`);
  return lines.join('\n') + '\n';
}

/** Figures and table of a sweep (LR or σ_base) into docs/, and their part of the summary. */
function publish(result: SweepResult, name: string, title: string, relabel?: (fig: FigureSpec) => FigureSpec): string {
  const out = path.join(dir, `${name}-merged`);
  writeSweepOutputs(result, out, 'sweep', title);
  const figs = relabel ?? ((f: FigureSpec) => f);
  fs.writeFileSync(path.join(img, `${name}.svg`), figureSvg(figs(sweepFigure(result, title))));
  fs.writeFileSync(path.join(img, `${name}.optima.svg`), figureSvg(figs(optimaFigure(result))));
  fs.copyFileSync(path.join(out, 'sweep.json'), path.join(res, `${name}.sweep.json`));
  fs.copyFileSync(path.join(out, 'sweep.csv'), path.join(res, `${name}.sweep.csv`));
  return `${optimaMarkdown(result)}\nThe optimum read between grid points (vertex of the parabola through the best point and its neighbours):\n\n${fittedOptimaMarkdown(result, title.includes('σ_base') ? 'σ_base' : 'LR')}`;
}

if (!o['skip-sweep']) {
  const t = Date.now();
  const sweeps = [{ rules: o.rules!, flags: PAPER_MUP }, ...(o.reference ? [{ rules: o.reference, flags: PAPER_SP }] : [])];
  const parts = sweeps.map((s, i) => {
    const out = path.join(dir, `sweep-${i}`);
    cli(['sweep', model, '--rules', s.rules, ...s.flags, '--lrs', o.lrs!, ...common, '--out', out]);
    return readSweep(out);
  });
  // One result from the sweeps: the same grid, the rule sets side by side (the reference last).
  const merged = assembleSweep({ ...parts[0]!.options, rules: parts.flatMap((p) => p.options.rules) }, parts.flatMap((p) => p.points));
  const table = publish(merged, stem, `SµPar ablation: final train loss vs LR, GPT d=${o.width} L=${o.layers}, ${o.steps} steps (${o.tag})`);
  summary.push(`## LR sweep (paper Fig. 14)\n\n${o.rules} with σ_base 0.0866, α_input 9.1705, α_output 1.095${o.reference ? `; ${o.reference} with σ 0.02166` : ''}; LRs ${o.lrs}, constant. ${minutes(t)} min.\n\n${table}`);
}

if (!o['skip-coord']) {
  const t = Date.now();
  const out = path.join(dir, 'coord');
  const verdicts = cli(['coord-check', model, '--rules', o.rules!, ...PAPER_MUP, '--densities', o.densities!, '--lr', o['coord-lr']!, '--steps', '10', ...size, '--out', out]);
  fs.copyFileSync(path.join(out, 'coord-check.json'), path.join(res, `${stem}.coord-check.json`));
  for (const r of o.rules!.split(',')) fs.copyFileSync(path.join(out, `coord-check.${r}.svg`), path.join(img, `${stem}-coord.${r}.svg`));
  summary.push(`## Coordinate check (LR ${o['coord-lr']}, 10 steps, max/min across densities)\n\n${minutes(t)} min.\n\n\`\`\`\n${verdicts}\`\`\`\n`);
}

if (o.sigmas) {
  // The init-std sweep (Fig. 13): one CLI sweep per σ_base at a single LR; σ takes the LR's place in the result.
  const t = Date.now();
  const sigmas = parseLrGrid(o.sigmas);
  // One folder per σ (named by log2 σ), so that a rerun with a wider grid keeps the runs it already has.
  const outOf = (sigma: number): string => path.join(dir, `init-s${Number(Math.log2(sigma).toFixed(3))}`);
  const points = sigmas.flatMap((sigma) => {
    const out = outOf(sigma);
    cli(['sweep', model, '--rules', o.rules!, '--sigma-base', String(sigma), ...PAPER_ALPHAS, '--lrs', o['init-lr']!, ...common, '--out', out]);
    return readSweep(out).points.map((p) => ({ ...p, lr: sigma, log2Lr: Math.log2(sigma) }));
  });
  const first = readSweep(outOf(sigmas[0]!));
  const result = assembleSweep({ ...first.options, lrs: sigmas }, points);
  const relabel = (fig: FigureSpec): FigureSpec => ({
    ...fig,
    panels: fig.panels.map((p) => ({ ...p, title: p.title.replace('optimum per', 'optimal σ_base per'), x: p.x.label.startsWith('base learning rate') ? { ...p.x, label: 'σ_base (log2)' } : p.x, y: p.y.label.startsWith('loss-optimal') ? { ...p.y, label: 'loss-optimal σ_base (log2)' } : p.y })),
    title: fig.title.replace('Loss-optimal learning rate', 'Loss-optimal σ_base'),
  });
  const table = publish(result, `${stem}-init`, `SµPar ablation: final train loss vs σ_base at LR ${o['init-lr']}, ${o.steps} steps (${o.tag})`, relabel).replace(/optimal LR/g, 'optimal σ_base');
  summary.push(`## Init-std sweep (paper Fig. 13)\n\nσ_base ${o.sigmas} (hidden init std σ_base/√m_ρ under supar and init-only, σ_base under lr-only), LR ${o['init-lr']}, α as above. ${minutes(t)} min.\n\n${table}`);
}

if (o['hidden-only']) {
  const t = Date.now();
  const files = ['supar', 'supar-init-only'].map((r) => path.join(ROOT, 'scripts', 'ablation-rules', `${r}-hidden-only.json`));
  const out = path.join(dir, 'hidden-only');
  cli(['sweep', model, '--rules', files.join(','), ...PAPER_MUP, '--lrs', o['hidden-lrs']!, ...common, '--densities', o['hidden-only'], '--out', out]);
  // The rule files' paths become their ids in the tables and plots.
  const idOf = (r: string): string => path.basename(r, '.json');
  const raw = readSweep(out);
  const result = assembleSweep({ ...raw.options, rules: raw.options.rules.map(idOf) }, raw.points.map((p) => ({ ...p, rules: idOf(p.rules) })));
  const table = publish(result, `${stem}-hidden-only`, `Only the hidden weights learn: final train loss vs LR, ${o.steps} steps (${o.tag})`);
  summary.push(`## Diagnostic: only the hidden weights learn\n\nEmbeddings, readout, norms and biases frozen at their init (scripts/ablation-rules/); densities ${o['hidden-only']}; LRs ${o['hidden-lrs']}. ${minutes(t)} min.\n\n${table}`);
}

const head = `Ablation (${o.tag}): GPT width ${o.width}, ${o.layers} layers, densities ${o.densities}, ${o.steps} steps (final loss = mean of the last ${lastK}), batch ${o.batch}×${o.seq}, seed ${o.seed}, byte-level text. ${minutes(t0)} min on ${os.availableParallelism()} cores (--jobs ${o.jobs}).`;
/** The summary keeps the sections of an earlier call that this one did not redo (e.g. after --skip-sweep). */
function mergeSummary(file: string, sections: string[]): string {
  const title = (s: string): string => s.slice(0, s.indexOf('\n'));
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split(/\n(?=## )/).slice(1) : [];
  const kept = old.filter((s) => !sections.some((n) => title(n).replace(/\(.*/, '') === title(s).replace(/\(.*/, '')));
  // The first line describes the LR sweep's setup: an earlier one stays when this call did not redo that sweep.
  const first = fs.existsSync(file) && o['skip-sweep'] ? fs.readFileSync(file, 'utf8').split('\n')[0]! : head;
  return `${first}\n\n${[...kept.map((s) => s.trimEnd() + '\n'), ...sections].join('\n')}`;
}
if (summary.length) fs.writeFileSync(path.join(res, `${stem}.md`), mergeSummary(path.join(res, `${stem}.md`), summary));
process.stderr.write(`wrote docs/results/${stem}.md (${minutes(t0)} min; runs in ${dir})\n`);
