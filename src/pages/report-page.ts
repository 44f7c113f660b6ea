/**
 * `model.supar.report.html`: the transform report as one self-contained page (inline style, script and SVG;
 * no network, no fonts), rendered from the same TransformReport object the JSON is written from. Sections,
 * warnings first: summary, per-tensor table (sortable, filterable by role, rule and layer), per-layer charts,
 * attention-scale sites, multipliers and ties, the masks' storage cost, GPU readiness per graph, passes.
 * Deterministic: a pure function of the report (no clock, no paths beyond the report's own).
 */
import type { TransformReport, TensorReport } from '../report.js';
import { BASE_STYLE, html, inlineSvg, page, type Html } from './html.js';
import { findReadinessSections, type ReadinessSection } from './readiness.js';
import { layerChartsSvg } from './report-charts.js';
import { REPORT_SCRIPT } from './report-script.js';

/** A number for people: integers as is, others to 4 significant digits; null as a dash. */
export function fmtNum(x: number | null | undefined): string {
  if (x === null || x === undefined) return '–';
  if (Number.isInteger(x)) return String(x);
  return x.toPrecision(4).replace(/(\.\d*?)0+(e|$)/, '$1$2').replace(/\.(e|$)/, '$1');
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(1)} ${units[i]}`;
}

const STYLE = `${BASE_STYLE}
.filters { margin: 0.5rem 0; display: flex; gap: 1rem; flex-wrap: wrap; align-items: center; }
#tensors th { cursor: pointer; user-select: none; } #tensors th[aria-sort=ascending]::after { content: " ▲"; } #tensors th[aria-sort=descending]::after { content: " ▼"; }
td.why { max-width: 28rem; color: #555; } tr.untrained td { color: #888; }
`;

export function reportHtml(report: TransformReport): string {
  const title = `supar-transform report: ${report.input.file}`;
  const body = html`<h1>${title}</h1>
${warningsSection(report.warnings)}
${summarySection(report)}
${tensorSection(report.tensors)}
${chartSection(report.tensors)}
${attentionSection(report)}
${multiplierSection(report)}
${maskSection(report)}
${readinessSection(findReadinessSections(report))}
${passesSection(report)}
<footer><p class="mono">${report.format} · ${report.tool.name} ${report.tool.version}</p></footer>`;
  return page(title, STYLE, body, REPORT_SCRIPT);
}

function warningsSection(warnings: readonly string[]): Html {
  if (warnings.length === 0) return html`<section id="warnings"><p class="ok">No warnings.</p></section>`;
  return html`<section id="warnings" class="warnings"><h2>Warnings (${warnings.length})</h2><ul>${warnings.map((w) => html`<li>${w}</li>`)}</ul></section>`;
}

function summarySection(r: TransformReport): Html {
  const s = r.settings;
  const hp = s.hyperparameters;
  const sm = r.summary;
  const item = (k: string, v: string | Html) => html`<dt>${k}</dt><dd>${v}</dd>`;
  return html`<section id="summary"><h2>Summary</h2><dl class="summary">
${item('input', html`<code>${r.input.file}</code> (${r.input.producer || 'unknown producer'}, IR ${r.input.ir_version}, opsets ${Object.entries(r.input.opsets).map(([d, v]) => `${d} ${v}`).join(', ')})`)}
${item('rules', s.rules)}
${item('density', fmtNum(s.density))}
${item('m_d', `${fmtNum(s.m_d)} (${s.width_source})`)}
${item('seed', String(s.seed))}
${item('mask', s.mask_mode)}
${item('init', `${s.init}${s.truncated ? ', truncated' : ''}${s.depth_factor ? `, depth factor ${s.depth_factor}` : ''}`)}
${item('hyperparameters', `σ_base ${fmtNum(hp.sigma_base)}, η_base ${fmtNum(hp.eta_base)}, α_input ${fmtNum(hp.alpha_input)}, α_output ${fmtNum(hp.alpha_output)}`)}
${item('model', `d_model ${fmtNum(r.model.d_model)}, d_head ${fmtNum(r.model.d_head)}, layers ${fmtNum(r.model.n_layers)}${r.model.logits ? `, logits ${r.model.logits}` : ''}`)}
${item('tensors', `${sm.tensors} reported, ${sm.trained} trained, ${sm.masked} masked (${sm.mask_non_zeros} of ${sm.masked_elements} entries kept), ${sm.unclassified} unclassified`)}
</dl></section>`;
}

const COLUMNS: { head: string; num?: boolean }[] = [
  { head: 'tensor' }, { head: 'role' }, { head: 'why' }, { head: 'shape' }, { head: 'layer', num: true }, { head: 'density', num: true },
  { head: 'non-zeros', num: true }, { head: 'std before', num: true }, { head: 'std after', num: true }, { head: 'LR Adam', num: true },
  { head: 'LR SGD', num: true }, { head: 'WD', num: true }, { head: 'forward ×' }, { head: 'rule' },
];

const ruleOf = (t: TensorReport) => t.rule ?? '(none)';
const layerOf = (t: TensorReport) => (t.layer === null ? 'none' : String(t.layer));

function tensorSection(tensors: readonly TensorReport[]): Html {
  const distinct = (f: (t: TensorReport) => string) => [...new Set(tensors.map(f))];
  const roles = distinct((t) => t.role).sort();
  const rules = distinct(ruleOf).sort();
  const layers = distinct(layerOf).sort((a, b) => (a === 'none' ? 1 : b === 'none' ? -1 : Number(a) - Number(b)));
  const select = (id: string, label: string, values: string[]) =>
    html`<label>${label} <select id="filter-${id}" data-filter="${id}"><option value="">all</option>${values.map((v) => html`<option value="${v}">${v}</option>`)}</select></label>`;
  return html`<section id="tensors-section"><h2>Tensors</h2>
<div class="filters">${select('role', 'role', roles)}${select('rule', 'rule', rules)}${select('layer', 'layer', layers)}
<label>name <input id="filter-name" type="search" placeholder="substring"></label>
<span><span id="shown-count">${tensors.length}</span> of ${tensors.length} shown</span></div>
<table id="tensors"><thead><tr>${COLUMNS.map((c) => html`<th${c.num ? html` data-type="num"` : ''}>${c.head}</th>`)}</tr></thead>
<tbody>
${tensors.map(tensorRow)}
</tbody></table></section>`;
}

function numCell(x: number | null): Html {
  return html`<td class="num" data-v="${x === null ? '' : String(x)}">${fmtNum(x)}</td>`;
}

function tensorRow(t: TensorReport): Html {
  const fwd = t.forward_multiplier ? `${t.forward_multiplier.kind} × ${fmtNum(t.forward_multiplier.value)}` : '';
  const tie = t.tie ? ` (tied with ${t.tie.with}, ${t.tie.kind})` : '';
  return html`<tr data-name="${t.name}" data-role="${t.role}" data-rule="${ruleOf(t)}" data-layer="${layerOf(t)}"${t.trained ? '' : html` class="untrained"`}>
<td class="mono" data-v="${t.name}">${t.name}</td><td data-v="${t.role}">${t.role}</td><td class="why" data-v="${t.reason}">${t.reason}${tie}${t.density < 1 ? html`<br>density: ${t.density_reason}` : ''}</td>
<td data-v="${t.shape.join('x')}">[${t.shape.join('×')}]</td>${numCell(t.layer)}${numCell(t.density)}${numCell(t.non_zeros)}${numCell(t.init.std_before)}${numCell(t.init.std_after)}${numCell(t.lr_adam)}${numCell(t.lr_sgd)}${numCell(t.weight_decay)}
<td data-v="${fwd}">${fwd}</td><td class="mono" data-v="${ruleOf(t)}">${ruleOf(t)}</td></tr>
`;
}

function chartSection(tensors: readonly TensorReport[]): Html {
  const svg = layerChartsSvg(tensors);
  return html`<section id="charts"><h2>Per layer</h2>${svg ? inlineSvg(svg) : html`<p>No trained tensor has a layer index.</p>`}</section>`;
}

function attentionSection(r: TransformReport): Html {
  if (r.attention.length === 0) return html`<section id="attention"><h2>Attention-scale sites</h2><p>None found.</p></section>`;
  return html`<section id="attention"><h2>Attention-scale sites (${r.attention.length})</h2>
<table><thead><tr><th>kind</th><th>layer</th><th>d_head</th><th>before</th><th>after</th><th>rewrite</th><th>carriers</th><th>nodes</th><th>why</th></tr></thead><tbody>
${r.attention.map((a) => html`<tr><td>${a.kind}</td><td class="num">${fmtNum(a.layer)}</td><td class="num">${fmtNum(a.d_head)}</td><td class="num">${fmtNum(a.before)}</td><td class="num">${fmtNum(a.after)}</td><td>${a.rewrite}</td><td class="mono">${a.carriers.join(', ')}</td><td class="mono">${a.nodes.join(', ')}</td><td class="why">${a.reason}</td></tr>`)}
</tbody></table></section>`;
}

function multiplierSection(r: TransformReport): Html {
  const mult = r.multipliers.length === 0 ? html`<p>No forward multipliers inserted.</p>` : html`<table><thead><tr><th>kind</th><th>on value</th><th>multiplier</th><th>constant</th></tr></thead><tbody>
${r.multipliers.map((m) => html`<tr><td>${m.kind}</td><td class="mono">${m.value}</td><td class="num">${fmtNum(m.multiplier)}</td><td class="mono">${m.constant}</td></tr>`)}</tbody></table>`;
  const ties = r.ties.length === 0 ? '' : html`<h3>Ties</h3><ul>${r.ties.map((t) => html`<li><code>${t.copy}</code> folded into <code>${t.table}</code> (${t.tie}; readers now read <code>${t.now_reads}</code>)</li>`)}</ul>`;
  return html`<section id="multipliers"><h2>Multipliers and ties</h2>${mult}${ties}</section>`;
}

function maskSection(r: TransformReport): Html {
  const masked = r.tensors.filter((t) => t.mask !== null);
  const sm = r.summary;
  if (masked.length === 0) return html`<section id="masks"><h2>Masks</h2><p>No tensor is masked.</p></section>`;
  const bits = r.settings.mask_storage === 'bits';
  const maskBytes = (shape: number[]) => { const n = shape.reduce((a, b) => a * b, 1); return bits ? Math.ceil(n / 8) : n; };
  const share = sm.masked_weight_bytes > 0 ? ` (${((100 * sm.mask_bytes) / sm.masked_weight_bytes).toFixed(1)} % of the masked weights' ${fmtBytes(sm.masked_weight_bytes)})` : '';
  return html`<section id="masks"><h2>Masks (${masked.length})</h2>
<p>Storage: <b>${fmtBytes(sm.mask_bytes)}</b> of ${bits ? 'bit-packed masks (8 entries per byte)' : 'BOOL masks (1 byte per entry)'} in the model${share}; ${sm.mask_non_zeros} of ${sm.masked_elements} entries kept.</p>
<table><thead><tr><th>weight</th><th>mask</th><th>shape</th><th>density</th><th>non-zeros</th><th>bytes</th></tr></thead><tbody>
${masked.map((t) => html`<tr><td class="mono">${t.name}</td><td class="mono">${t.mask}</td><td>[${t.shape.join('×')}]</td><td class="num">${fmtNum(t.density)}</td><td class="num">${t.non_zeros}</td><td class="num">${fmtBytes(maskBytes(t.shape))}</td></tr>`)}
</tbody></table></section>`;
}

function readinessSection(sections: readonly ReadinessSection[]): Html {
  if (sections.length === 0) return html`<section id="readiness"><h2>GPU readiness</h2><p>The report holds no GPU readiness check.</p></section>`;
  return html`<section id="readiness"><h2>GPU readiness</h2>
${sections.map((s) => html`<h3>${s.provider}</h3><table class="readiness" data-provider="${s.provider}"><thead><tr><th>graph</th><th>nodes</th><th>CPU fallbacks</th><th>types unknown</th><th>details</th></tr></thead><tbody>
${s.entries.map((e) => html`<tr><td>${e.graph}</td><td class="num">${fmtNum(e.nodes)}</td><td class="num ${e.fallbacks.length ? 'bad' : 'ok'}">${e.fallbacks.length}</td><td class="num">${fmtNum(e.types_unknown)}</td>
<td>${e.fallbacks.length === 0 ? html`<span class="ok">every node has a kernel</span>` : html`<ul>${e.fallbacks.map((f) => html`<li><code>${String(f.op ?? '?')}</code> ${f.node ? html`(<code>${String(f.node)}</code>)` : ''}: ${String(f.reason ?? '')}</li>`)}</ul>`}</td></tr>`)}
</tbody></table>`)}
</section>`;
}

function passesSection(r: TransformReport): Html {
  return html`<section id="passes"><h2>Passes</h2><ol>${r.passes.map((p) => html`<li><code>${p.id}</code>: ${p.doc}</li>`)}</ol></section>`;
}
