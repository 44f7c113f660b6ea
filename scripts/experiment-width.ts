/**
 * Width transfer (µP, Yang et al. 2021; SµPar, Dey et al. 2024, §3; issue 8) at CPU scale, through the CLI a
 * user runs:
 *   npm run experiment:width                          # widths 128, 256, 512; 100 steps; about 10–15 min on 2 cores
 *   npm run experiment:width -- --steps 300 --widths 128,256,512,1024
 * GPT-style models (fixtures/gpt-builder.ts, 2 layers, 4 heads, so d_head grows with width) are built into a
 * temp folder; `sweep --models … --base-model <narrowest>` trains every (width, base LR) once per rule set:
 * µP (`mup`) and SP (`sp`) dense, and SµPar (`supar`) at --supar-density. Each rule set gets the paper's
 * hyperparameters (experiment-cli.ts), so SP and µP run as separate sweeps. µP and SµPar should keep the
 * loss-optimal base LR put across widths; SP's should fall as width grows. A `coord-check --models` per
 * rule set, at that rule set's optimal LR on the base width, records every block across widths.
 * Writes docs/results/width-<tag>.{md,json}, docs/img/width-<tag>.<rules>.svg and
 * docs/img/width-<tag>-coord.<rules>.svg. Progress on stderr.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { buildModels, cli, workDir, minutesSince, paperHpFlags, readSweep, ROOT, writeCorpus } from './experiment-cli.js';
import { fmtDensity, fmtLog2, parseDensities, type SweepResult } from '../src/experiments/sweep.js';
import { resultJson } from '../src/experiments/outputs.js';

const { values: o } = parseArgs({ options: {
  widths: { type: 'string', default: '128,256,512' }, layers: { type: 'string', default: '2' }, heads: { type: 'string', default: '4' },
  steps: { type: 'string', default: '100' }, lrs: { type: 'string', default: '2^-14:2^-6' }, batch: { type: 'string', default: '8' },
  seq: { type: 'string', default: '64' }, 'supar-density': { type: 'string', default: 'none' }, 'coord-steps': { type: 'string', default: '10' },
  tag: { type: 'string', default: 'reduced' }, jobs: { type: 'string', default: String(os.availableParallelism()) }, seed: { type: 'string', default: '0' },
  work: { type: 'string' },
} });

/** One sweep of the study: a rule set at a density (each with its own hyperparameters, hence its own CLI call). */
interface Arm { rules: string; density: string }

const arms: Arm[] = [{ rules: 'mup', density: '1' }, { rules: 'sp', density: '1' }];
if (o['supar-density'] !== 'none') arms.push({ rules: 'supar', density: o['supar-density']! });

const dir = workDir(o.work, 'supar-width-');
const widths = o.widths!.split(',').map(Number);
const shapes = widths.map((width) => ({ width, layers: Number(o.layers), heads: Number(o.heads), seq: Number(o.seq) }));
const models = buildModels(dir, shapes);
const text = writeCorpus(dir);
const common = ['--models', models.join(','), '--base-model', models[0]!, '--batch', o.batch!, '--seq', o.seq!, '--data', text, '--jobs', o.jobs!, '--seed', o.seed!];
const armName = (a: Arm) => (a.density === '1' ? a.rules : `${a.rules}-rho${fmtDensity(parseDensities(a.density)[0]!).replace('/', 'over')}`);

const t0 = Date.now();
const sweeps = arms.map((a) => {
  const out = path.join(dir, `sweep-${armName(a)}`);
  const table = cli(['sweep', ...common, ...paperHpFlags(a.rules), '--rules', a.rules, '--densities', a.density, '--lrs', o.lrs!, '--steps', o.steps!,
    '--last-k', String(Math.max(1, Math.round(Number(o.steps) / 10))), '--out', out]);
  return { arm: a, out, table, result: readSweep(path.join(out, 'sweep.json')) };
});
const sweepMinutes = minutesSince(t0);

/** The base LR a user would tune on the proxy: the optimum at the narrowest width (the coord check runs there). */
const baseOptimum = (r: SweepResult): string => {
  const base = r.optima.find((x) => x.model === r.options.models?.[0]?.label);
  return base?.log2Lr == null ? '2^-10' : `2^${base.log2Lr}`;
};
const coords = sweeps.map((s) => {
  const out = path.join(dir, `coord-${armName(s.arm)}`);
  const lr = baseOptimum(s.result);
  const verdicts = cli(['coord-check', ...common, ...paperHpFlags(s.arm.rules), '--rules', s.arm.rules, '--densities', s.arm.density, '--lr', lr, '--steps', o['coord-steps']!, '--out', out]);
  return { arm: s.arm, out, lr, verdicts };
});
const minutes = minutesSince(t0);

/** Rows: width; columns: each arm's optimal LR (loss at the optimum); last row: how far each optimum moves. */
function optimaTable(): string {
  const head = `| width | ${sweeps.map((s) => `${s.arm.rules} ρ=${fmtDensity(s.result.options.densities[0]!)}: optimal LR (loss)`).join(' | ')} |`;
  const lines = [head, `|---|${sweeps.map(() => '---|').join('')}`];
  widths.forEach((w, i) => {
    const cells = sweeps.map((s) => {
      const opt = s.result.optima.find((x) => x.model === s.result.options.models![i]!.label);
      return !opt || opt.log2Lr === null ? 'all diverged' : `2^${fmtLog2(opt.log2Lr)} (${(opt.finalLoss as number).toFixed(3)})${opt.atEdge ? ' edge' : ''}`;
    });
    lines.push(`| ${w} | ${cells.join(' | ')} |`);
  });
  lines.push(`| optimum moves by | ${sweeps.map((s) => { const d = s.result.optimumSpreadLog2[s.arm.rules]; return d === null || d === undefined ? 'n/a' : `${fmtLog2(d)} step${d === 1 ? '' : 's'}`; }).join(' | ')} |`);
  return lines.join('\n') + '\n';
}

const res = path.join(ROOT, 'docs', 'results');
const img = path.join(ROOT, 'docs', 'img');
for (const s of sweeps) fs.copyFileSync(path.join(s.out, 'sweep.svg'), path.join(img, `width-${o.tag}.${armName(s.arm)}.svg`));
for (const c of coords) fs.copyFileSync(path.join(c.out, `coord-check.${c.arm.rules}.svg`), path.join(img, `width-${o.tag}-coord.${armName(c.arm)}.svg`));
const settings = { ...o, arms, hyperparameters: Object.fromEntries(arms.map((a) => [a.rules, paperHpFlags(a.rules).join(' ')])), minutes: Number(minutes), cores: os.availableParallelism() };
fs.writeFileSync(path.join(res, `width-${o.tag}.json`), resultJson({ settings, sweeps: sweeps.map((s) => s.result), coordChecks: coords.map((c) => ({ ...c.arm, lr: c.lr, result: JSON.parse(fs.readFileSync(path.join(c.out, 'coord-check.json'), 'utf8')) as unknown })) }));
const md = [
  `Width sweep (${o.tag}): widths ${o.widths} (base ${widths[0]}), ${o.layers} layers, ${o.heads} heads, ${o.steps} steps at a constant LR, batch ${o.batch}×${o.seq} bytes, seed ${o.seed}, byte-level text; the paper's hyperparameters per rule set (${arms.map((a) => `${a.rules}: ${paperHpFlags(a.rules).join(' ')}`).join('; ')}). ${minutes} min on ${os.availableParallelism()} cores (sweeps ${sweepMinutes} min).`,
  '', optimaTable(),
  ...sweeps.flatMap((s) => [`\`sweep --rules ${s.arm.rules} --densities ${s.arm.density}\` as the CLI printed it:`, '', s.table]),
  ...coords.flatMap((c) => [`Coordinate check across widths, ${c.arm.rules} at density ${c.arm.density} (LR ${c.lr}, its base-width optimum; ${o['coord-steps']} steps, fixed batch):`, '', '```', c.verdicts.trimEnd(), '```', '']),
].join('\n');
fs.writeFileSync(path.join(res, `width-${o.tag}.md`), md);
process.stderr.write(`wrote docs/results/width-${o.tag}.md (${minutes} min)\n`);
if (!o.work) fs.rmSync(dir, { recursive: true, force: true });
