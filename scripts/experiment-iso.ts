/**
 * Iso-parameter scaling (SµPar paper §4.2, Fig. 9; issue 8) at CPU scale, through the CLI a user runs:
 *   npm run experiment:iso                    # (density, width) = (1, 128), (1/2, 180), (1/4, 256), (1/8, 360)
 *   npm run experiment:iso -- --rules supar,mup,sp --steps 200
 * Each pair keeps the number of non-zero weights per hidden matrix near 128² (ρ·d² constant; the paper's 181 and
 * 362 are rounded to widths 4 heads divide, see nonZeroNote). GPT models (fixtures/gpt-builder.ts, 2 layers,
 * 4 heads) are built into a temp folder. `sweep` crosses models × densities, so each pair is its own
 * `sweep <model> --base-model <dense 128> --densities <ρ>` call (per rule-set family, as each has its own
 * hyperparameters), and the pairs' points are merged here into one result with one curve per pair (its
 * density names it; each density has one width). SµPar's optimal base LR should stay put and its loss fall
 * as width grows at a constant non-zero count; SP's optimum should move.
 * Writes docs/results/iso-<tag>.{md,json} and docs/img/iso-<tag>.svg. Progress on stderr.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { buildModels, cli, workDir, minutesSince, paperHpFlags, readSweep, ROOT, writeCorpus } from './experiment-cli.js';
import { assembleSweep, fmtDensity, fmtLog2, optimaMarkdown, parseDensities, type SweepPoint, type SweepResult } from '../src/experiments/sweep.js';
import { sweepFigure } from '../src/experiments/sweep-figures.js';
import { figureSvg } from '../src/experiments/plot.js';
import { resultJson } from '../src/experiments/outputs.js';

const { values: o } = parseArgs({ options: {
  pairs: { type: 'string', default: '1:128,1/2:180,1/4:256,1/8:360' }, layers: { type: 'string', default: '2' }, heads: { type: 'string', default: '4' },
  rules: { type: 'string', default: 'supar,sp' }, steps: { type: 'string', default: '100' }, lrs: { type: 'string', default: '2^-13:2^-6' },
  batch: { type: 'string', default: '8' }, seq: { type: 'string', default: '64' }, tag: { type: 'string', default: 'reduced' },
  jobs: { type: 'string', default: String(os.availableParallelism()) }, seed: { type: 'string', default: '0' },
  work: { type: 'string' },
} });

interface Pair { density: number; densityText: string; width: number }
const pairs: Pair[] = o.pairs!.split(',').map((p) => {
  const [d, w] = p.split(':');
  return { density: parseDensities(d!)[0]!, densityText: d!, width: Number(w) };
});
const baseWidth = pairs[0]!.width;

/** Non-zeros of one d×d hidden matrix at (ρ, d) (exact-count masks: round(ρ·d²)), against the dense base's d₀². */
function nonZeroNote(p: Pair): string {
  const nz = Math.round(p.density * p.width * p.width);
  const rel = nz / (baseWidth * baseWidth) - 1;
  return `${nz} (${rel >= 0 ? '+' : ''}${(100 * rel).toFixed(1)}%)`;
}

const dir = workDir(o.work, 'supar-iso-');
const models = buildModels(dir, pairs.map((p) => ({ width: p.width, layers: Number(o.layers), heads: Number(o.heads), seq: Number(o.seq) })));
const text = writeCorpus(dir);
const rules = o.rules!.split(',');
// One CLI call per (pair, hyperparameter family): SP alone, the µP family (mup, supar, ...) together.
const families = [rules.filter((r) => r !== 'sp'), rules.filter((r) => r === 'sp')].filter((f) => f.length);
const lastK = String(Math.max(1, Math.round(Number(o.steps) / 10)));

const t0 = Date.now();
const parts: { pair: Pair; family: string[]; result: SweepResult; table: string }[] = [];
for (const family of families) {
  pairs.forEach((pair, i) => {
    const out = path.join(dir, `sweep-${family.join('+')}-w${pair.width}`);
    const table = cli(['sweep', models[i]!, '--base-model', models[0]!, '--densities', pair.densityText, '--rules', family.join(','), ...paperHpFlags(family[0]!),
      '--lrs', o.lrs!, '--steps', o.steps!, '--last-k', lastK, '--batch', o.batch!, '--seq', o.seq!, '--data', text, '--jobs', o.jobs!, '--seed', o.seed!, '--out', out]);
    parts.push({ pair, family, result: readSweep(path.join(out, 'sweep.json')), table });
  });
}
const minutes = minutesSince(t0);

// The pairs' sweeps as one: every (rule set, density) has exactly one width, so density names the pair.
const first = parts[0]!.result.options;
const points: SweepPoint[] = rules.flatMap((r) => pairs.flatMap((pair) => parts.filter((p) => p.pair === pair).flatMap((p) => p.result.points.filter((pt) => pt.rules === r))));
const merged = assembleSweep({ rules, densities: pairs.map((p) => p.density), lrs: first.lrs, steps: first.steps, seed: first.seed, lastK: first.lastK }, points);

/** Rows: (density, width) pairs; columns: non-zeros per hidden d×d matrix and each rule set's optimal LR (loss). */
function pairTable(res: SweepResult): string {
  const lines = [`| density | width | non-zeros per d×d hidden matrix (vs ${baseWidth}²) | ${rules.map((r) => `${r}: optimal LR (loss)`).join(' | ')} |`, `|---|---|---|${rules.map(() => '---|').join('')}`];
  for (const pair of pairs) {
    const cells = rules.map((r) => {
      const opt = res.optima.find((x) => x.rules === r && x.density === pair.density);
      return !opt || opt.log2Lr === null ? 'all diverged' : `2^${fmtLog2(opt.log2Lr)} (${(opt.finalLoss as number).toFixed(3)})${opt.atEdge ? ' edge' : ''}`;
    });
    lines.push(`| ${fmtDensity(pair.density)} | ${pair.width} | ${nonZeroNote(pair)} | ${cells.join(' | ')} |`);
  }
  lines.push(`| optimum moves by | | | ${rules.map((r) => { const d = res.optimumSpreadLog2[r]; return d === null || d === undefined ? 'n/a' : `${fmtLog2(d)} step${d === 1 ? '' : 's'}`; }).join(' | ')} |`);
  return lines.join('\n') + '\n';
}

const pairText = pairs.map((p) => `(${fmtDensity(p.density)}, ${p.width})`).join(', ');
const title = `Iso-parameter: (density, width) = ${pairText}, ${o.steps} steps`;
fs.writeFileSync(path.join(ROOT, 'docs', 'img', `iso-${o.tag}.svg`), figureSvg(sweepFigure(merged, title)));
const settings = { ...o, pairs, hyperparameters: Object.fromEntries(rules.map((r) => [r, paperHpFlags(r).join(' ')])), minutes: Number(minutes), cores: os.availableParallelism() };
fs.writeFileSync(path.join(ROOT, 'docs', 'results', `iso-${o.tag}.json`), resultJson({ settings, merged, perPair: parts.map((p) => ({ pair: p.pair, rules: p.family, result: p.result })) }));
const md = [
  `Iso-parameter sweep (${o.tag}): (density, width) = ${pairText}, base model the dense width ${baseWidth}; ${o.layers} layers, ${o.heads} heads, ${o.steps} steps at a constant LR, batch ${o.batch}×${o.seq} bytes, seed ${o.seed}, byte-level text; the paper's hyperparameters per rule set (${rules.map((r) => `${r}: ${paperHpFlags(r).join(' ')}`).join('; ')}). ${minutes} min on ${os.availableParallelism()} cores.`,
  '', pairTable(merged), 'The merged table as `optimaMarkdown` writes it (each density is one width):', '', optimaMarkdown(merged),
].join('\n');
fs.writeFileSync(path.join(ROOT, 'docs', 'results', `iso-${o.tag}.md`), md);
process.stderr.write(`wrote docs/results/iso-${o.tag}.md (${minutes} min)\n`);
if (!o.work) fs.rmSync(dir, { recursive: true, force: true });
