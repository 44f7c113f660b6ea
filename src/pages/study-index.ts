/**
 * `index.html` of a study folder (coord-check, sweep): a view of what the folder holds, so it stays right
 * when several commands (or merged shards) write into one folder. Every SVG plot in the folder is shown
 * (as an image linked to its file); every result JSON of a known format gets its tables (coord check:
 * verdicts and the run list; sweep: optimal LR per density and the run list); every data file is linked.
 * Deterministic: files in name order, nothing but the folder's contents.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../onnx/atomic.js';
import type { CoordCheckResult } from '../experiments/coord-check.js';
import type { SweepResult } from '../experiments/sweep.js';
import { BASE_STYLE, html, page, type Html } from './html.js';
import { fmtNum } from './report-page.js';

export const INDEX_FILE = 'index.html';

export type StudyResult = { file: string; kind: 'coord-check'; result: CoordCheckResult } | { file: string; kind: 'sweep'; result: SweepResult };

export interface StudyFolder {
  /** The folder's name (for the title). */
  name: string;
  /** SVG plots, names relative to the folder. */
  plots: string[];
  /** Other files (JSON, CSV, Markdown, …), relative names. */
  data: string[];
  results: StudyResult[];
  /** Study plans in subfolders (`sweep --plan` / local studies write OUT/study/): manifest and run result files. */
  plans: { dir: string; files: string[]; results: string[] }[];
}

/** Reads the folder (top level only): plots, data files, and the results among its JSON files. */
export function readStudyFolder(dir: string): StudyFolder {
  const names = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.') && e.name !== INDEX_FILE).map((e) => e.name).sort();
  const results: StudyResult[] = [];
  for (const file of names.filter((n) => n.endsWith('.json'))) {
    const r = parseResult(fs.readFileSync(path.join(dir, file), 'utf8'));
    if (r?.format === 'supar-coord-check/1') results.push({ file, kind: 'coord-check', result: r as CoordCheckResult });
    else if (r?.format === 'supar-sweep/1') results.push({ file, kind: 'sweep', result: r as SweepResult });
  }
  const plans = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, 'study.json'))).map((e) => e.name).sort()
    .map((sub) => ({
      dir: sub,
      files: fs.readdirSync(path.join(dir, sub)).filter((f) => /\.(json|md|sbatch|yaml)$/.test(f)).sort(),
      results: fs.existsSync(path.join(dir, sub, 'results')) ? fs.readdirSync(path.join(dir, sub, 'results')).filter((f) => f.endsWith('.json')).sort() : [],
    }));
  return { name: path.basename(path.resolve(dir)), plans, plots: names.filter((n) => n.endsWith('.svg')), data: names.filter((n) => !n.endsWith('.svg')), results };
}

/** A result file as written by resultJson (non-finite numbers as strings), or undefined when it is not one. */
function parseResult(text: string): { format?: unknown } | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null ? (v as { format?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}

/** Writes `dir/index.html` for what the folder holds now; returns its path. */
export function writeStudyIndex(dir: string): string {
  const file = path.join(dir, INDEX_FILE);
  writeFileAtomic(file, new TextEncoder().encode(studyIndexHtml(readStudyFolder(dir))));
  return file;
}

const num = (x: unknown) => (typeof x === 'number' ? fmtNum(x) : x === null || x === undefined ? '–' : String(x));
const link = (file: string) => html`<a href="${encodeURI(file)}">${file}</a>`;

export function studyIndexHtml(folder: StudyFolder): string {
  const title = `Study results: ${folder.name}`;
  const body = html`<h1>${title}</h1>
${folder.results.map(resultSection)}
<section id="plots"><h2>Plots (${folder.plots.length})</h2>
${folder.plots.length === 0 ? html`<p>No plots in this folder.</p>` : folder.plots.map((p) => html`<figure class="plot"><a href="${encodeURI(p)}"><img src="${encodeURI(p)}" alt="${p}"></a><figcaption>${link(p)}</figcaption></figure>`)}
</section>
<section id="data"><h2>Data files</h2><ul>${folder.data.map((d) => html`<li>${link(d)}</li>`)}</ul></section>
${folder.plans.map((p) => html`<section class="plan"><h2>Study plan ${p.dir}/</h2><p>${p.files.map((f) => html`${link(`${p.dir}/${f}`)} `)}</p>
<p>${p.results.length} run result file(s)${p.results.some((r) => r.endsWith('.failed.json')) ? html` <span class="bad">(some failed)</span>` : ''}: ${p.results.map((r) => html`${link(`${p.dir}/results/${r}`)} `)}</p></section>`)}`;
  return page(title, `${BASE_STYLE} figure.plot img { max-width: 100%; border: 1px solid #eee; } figure.plot { margin: 1rem 0; }`, body);
}

function resultSection(r: StudyResult): Html {
  return r.kind === 'sweep' ? sweepSection(r.file, r.result) : coordSection(r.file, r.result);
}

function coordSection(file: string, res: CoordCheckResult): Html {
  const o = res.options;
  return html`<section class="result coord-check"><h2>Coordinate check (${link(file)})</h2>
<p>rules ${o.rules.join(', ')};${o.models ? ` models ${o.models.map((m) => m.label).join(', ')};` : ''} densities ${o.densities.map(num).join(', ')}; ${o.steps} steps at LR ${num(o.lr)}, seed ${o.seed}; a block is flat when max/min of mean |activation| across densities stays ≤ ${num(o.threshold)}.</p>
<h3>Verdicts</h3>
<table class="verdicts"><thead><tr><th>rules</th><th>block</th><th>kind</th><th>layer</th><th>max/min</th><th>worst step</th><th>verdict</th></tr></thead><tbody>
${res.verdicts.map((v) => html`<tr><td>${v.rules}</td><td class="mono">${v.block}</td><td>${v.kind}</td><td class="num">${num(v.layer)}</td><td class="num">${num(v.maxRatio)}</td><td class="num">${v.worstStep}</td><td class="${v.pass ? 'ok' : 'bad'}">${v.pass ? 'flat' : 'drifts'}</td></tr>`)}
</tbody></table>
<h3>Runs (${res.losses.length})</h3>
<table class="runs"><thead><tr><th>rules</th>${o.models ? html`<th>model</th>` : ''}<th>density</th><th>steps</th><th>first loss</th><th>last loss</th></tr></thead><tbody>
${res.losses.map((l) => html`<tr><td>${l.rules}</td>${o.models ? html`<td>${l.model}</td>` : ''}<td class="num">${num(l.density)}</td><td class="num">${l.losses.length}</td><td class="num">${num(l.losses[0])}</td><td class="num">${num(l.losses.at(-1))}</td></tr>`)}
</tbody></table></section>`;
}

function sweepSection(file: string, res: SweepResult): Html {
  const o = res.options;
  // A several-model sweep (`--models`) has an optimum per (rule set, model, density): one row per (model, density).
  const models = o.models?.map((m) => m.label) ?? [undefined];
  const many = o.models !== undefined;
  const opt = (r: string, m: string | undefined, d: number) => res.optima.find((x) => x.rules === r && x.density === d && x.model === m);
  const cell = (r: string, m: string | undefined, d: number) => {
    const x = opt(r, m, d);
    if (!x || x.lr === null) return html`<td class="bad">all diverged</td>`;
    return html`<td class="num">2^${num(x.log2Lr)} (loss ${num(x.finalLoss)})${x.atEdge ? ' edge' : ''}</td>`;
  };
  return html`<section class="result sweep"><h2>LR sweep (${link(file)})</h2>
<p>rules ${o.rules.join(', ')};${many ? ` models ${models.join(', ')};` : ''} ${o.lrs.length} LRs; ${o.steps} steps; final loss = mean of the last ${o.lastK}; seed ${o.seed}.</p>
<h3>Optimal LR per density</h3>
<table class="optima"><thead><tr>${many ? html`<th>model</th>` : ''}<th>density</th>${o.rules.map((r) => html`<th>${r}</th>`)}</tr></thead><tbody>
${models.map((m) => o.densities.map((d) => html`<tr>${many ? html`<td>${m}</td>` : ''}<td class="num">${num(d)}</td>${o.rules.map((r) => cell(r, m, d))}</tr>`))}
<tr>${many ? html`<td></td>` : ''}<td>optimum moves by (log2 steps)</td>${o.rules.map((r) => html`<td class="num">${num(res.optimumSpreadLog2[r])}</td>`)}</tr>
</tbody></table>
<h3>Runs (${res.points.length})</h3>
<table class="runs"><thead><tr><th>rules</th>${many ? html`<th>model</th>` : ''}<th>density</th><th>LR</th><th>log2 LR</th><th>status</th><th>final loss</th><th>diverged at step</th></tr></thead><tbody>
${res.points.map((p) => html`<tr><td>${p.rules}</td>${many ? html`<td>${p.model}</td>` : ''}<td class="num">${num(p.density)}</td><td class="num">${num(p.lr)}</td><td class="num">${num(p.log2Lr)}</td><td class="${p.status === 'ok' ? 'ok' : 'bad'}">${p.status}</td><td class="num">${num(p.finalLoss)}</td><td class="num">${num(p.divergedAtStep)}</td></tr>`)}
</tbody></table></section>`;
}
