/**
 * A small SVG line-plot writer for the experiment commands (coord check, LR sweep): axes with ticks and
 * labels, linear / log2 / log10 scales, one path per series, a legend, point markers (optima) and
 * "diverged" crosses pinned to the top of a panel. Output is plain SVG 1.1 that a browser opens.
 *
 * Why not vega-lite: it renders headless (`renderer: 'none'`, `view.toSVG()`) and works offline, but
 * vega + vega-lite add 79 packages / 25 MB to a project whose runtime needs four; these plots need
 * only lines, log axes and markers (see docs/transfer.md).
 */

export type ScaleKind = 'linear' | 'log2' | 'log10';

export interface AxisSpec {
  label: string;
  scale: ScaleKind;
  /** Force the axis range (data units); default: the data's range with a margin. */
  min?: number;
  max?: number;
  /** Log-axis tick labels: 'power' (2^-3, the default) or 'plain' (1/8, 128: for density, width and depth). */
  ticks?: 'power' | 'plain';
}

export interface Point { x: number; y: number }

export interface Series {
  name: string;
  /** Points with a non-finite y break the line there. */
  points: Point[];
  color?: string;
  dashed?: boolean;
  /** Highlighted points on this series (e.g. the optimum), drawn as filled circles with a ring. */
  marks?: Point[];
  /** x positions where the run diverged: drawn as a cross at the top of the panel. */
  diverged?: number[];
}

export interface PanelSpec {
  title: string;
  x: AxisSpec;
  y: AxisSpec;
  series: Series[];
}

export interface FigureSpec {
  title: string;
  panels: PanelSpec[];
  /** Panels per row (default: all in one row). */
  columns?: number;
  panelWidth?: number;
  panelHeight?: number;
  /** Extra legend lines explaining markers (e.g. "● optimum", "× diverged"). */
  notes?: string[];
}

/** Categorical palette (Tableau 10): distinguishable, print-safe. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const MARGIN = { left: 64, right: 16, top: 30, bottom: 46 };
const LEGEND_WIDTH = 150;

/** A tick: its position in data units and its label (plain text, or base and exponent for powers). */
export interface Tick { value: number; label: string; base?: string; exponent?: string }

/** Maps data values to [0, 1] along an axis; log scales map log(v). */
export function makeScale(kind: ScaleKind, min: number, max: number): (v: number) => number {
  const t = (v: number): number => (kind === 'linear' ? v : kind === 'log2' ? Math.log2(v) : Math.log10(v));
  const a = t(min);
  const b = t(max);
  const span = b - a || 1;
  return (v) => (t(v) - a) / span;
}

/** Round step for about `target` linear ticks: 1, 2 or 5 × 10^k. */
function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function formatNumber(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
  return String(Number(v.toPrecision(3)));
}

export function linearTicks(min: number, max: number, target = 5): Tick[] {
  const step = niceStep(max - min, target);
  const ticks: Tick[] = [];
  for (let k = Math.ceil(min / step - 1e-9); k * step <= max + step * 1e-9; k++) {
    const value = Number((k * step).toPrecision(12));
    ticks.push({ value, label: formatNumber(value) });
  }
  return ticks;
}

/**
 * Ticks of a log axis: every integer power of the base in [min, max] (thinned to at most 12), labelled
 * base^k; when the range holds fewer than two powers, nice linear values inside it instead.
 */
export function logTicks(base: 2 | 10, min: number, max: number): Tick[] {
  const lo = Math.ceil(Math.log(min) / Math.log(base) - 1e-9);
  const hi = Math.floor(Math.log(max) / Math.log(base) + 1e-9);
  if (hi - lo < 1) return base === 10 ? decadeTicks(min, max) : linearTicks(min, max, 4).filter((t) => t.value > 0);
  const every = Math.ceil((hi - lo + 1) / 12);
  const ticks: Tick[] = [];
  for (let k = lo; k <= hi; k++) {
    if ((k - lo) % every !== 0) continue;
    ticks.push({ value: base ** k, label: `${base}^${k}`, base: String(base), exponent: String(k) });
  }
  return ticks;
}

/** Within less than two decades: 1-2-5 × 10^k values in range (or 1…9 × 10^k when that gives < 3). */
function decadeTicks(min: number, max: number): Tick[] {
  for (const mantissas of [[1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const ticks: Tick[] = [];
    for (let k = Math.floor(Math.log10(min)) - 1; k <= Math.ceil(Math.log10(max)); k++) {
      for (const m of mantissas) {
        const value = Number((m * 10 ** k).toPrecision(12));
        if (value >= min && value <= max) ticks.push({ value, label: formatNumber(value) });
      }
    }
    if (ticks.length >= 3) return ticks;
  }
  return linearTicks(min, max, 4).filter((t) => t.value > 0);
}

export function ticksFor(kind: ScaleKind, min: number, max: number, labels: 'power' | 'plain' = 'power'): Tick[] {
  const ticks = kind === 'linear' ? linearTicks(min, max) : logTicks(kind === 'log2' ? 2 : 10, min, max);
  return labels === 'plain' ? ticks.map((t) => ({ value: t.value, label: plainLabel(t.value) })) : ticks;
}

/** A tick value as a plain number, or as 1/k where it is the reciprocal of an integer (densities). */
export function plainLabel(v: number): string {
  const inv = 1 / v;
  return v < 1 && v > 0 && Math.abs(inv - Math.round(inv)) < 1e-9 ? `1/${Math.round(inv)}` : formatNumber(v);
}

/** Escapes text for XML content and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const fmt = (v: number): string => String(Math.round(v * 100) / 100);

/** Data range of one axis over all series (log scales ignore values ≤ 0), padded a little. */
export function axisRange(axis: AxisSpec, values: number[]): [number, number] {
  const ok = values.filter((v) => Number.isFinite(v) && (axis.scale === 'linear' || v > 0));
  let lo = axis.min ?? (ok.length ? Math.min(...ok) : 1);
  let hi = axis.max ?? (ok.length ? Math.max(...ok) : 2);
  if (axis.scale === 'linear') {
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    const pad = (hi - lo) * 0.05;
    return [axis.min ?? lo - pad, axis.max ?? hi + pad];
  }
  if (lo === hi) { lo /= 2; hi *= 2; }
  const f = (hi / lo) ** 0.05;
  return [axis.min ?? lo / f, axis.max ?? hi * f];
}

function tickLabelSvg(t: Tick, x: number, y: number, anchor: string): string {
  if (t.exponent === undefined) {
    return `<text x="${fmt(x)}" y="${fmt(y)}" text-anchor="${anchor}">${xmlEscape(t.label)}</text>`;
  }
  return `<text x="${fmt(x)}" y="${fmt(y)}" text-anchor="${anchor}">${t.base}<tspan dy="-5" font-size="8">${xmlEscape(t.exponent)}</tspan></text>`;
}

/** One panel's SVG group, drawn in a w × h box at the origin. */
export function panelSvg(p: PanelSpec, w: number, h: number, colorOf: (name: string) => string): string {
  const allX = p.series.flatMap((s) => [...s.points.map((q) => q.x), ...(s.diverged ?? [])]);
  const allY = p.series.flatMap((s) => s.points.map((q) => q.y));
  const [x0, x1] = axisRange(p.x, allX);
  const [y0, y1] = axisRange(p.y, allY);
  const sx = makeScale(p.x.scale, x0, x1);
  const sy = makeScale(p.y.scale, y0, y1);
  const iw = w - MARGIN.left - MARGIN.right;
  const ih = h - MARGIN.top - MARGIN.bottom;
  const px = (v: number): number => MARGIN.left + sx(v) * iw;
  const py = (v: number): number => MARGIN.top + (1 - sy(v)) * ih;
  const out: string[] = [`<text class="panel-title" x="${fmt(MARGIN.left + iw / 2)}" y="18" text-anchor="middle" font-weight="bold">${xmlEscape(p.title)}</text>`];
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${fmt(iw)}" height="${fmt(ih)}" fill="none" stroke="#333"/>`);
  for (const t of ticksFor(p.x.scale, x0, x1, p.x.ticks)) {
    const x = px(t.value);
    out.push(`<g class="tick x-tick" data-value="${t.value}"><line x1="${fmt(x)}" y1="${MARGIN.top}" x2="${fmt(x)}" y2="${fmt(MARGIN.top + ih)}" stroke="#e5e5e5"/>` +
      `<line x1="${fmt(x)}" y1="${fmt(MARGIN.top + ih)}" x2="${fmt(x)}" y2="${fmt(MARGIN.top + ih + 5)}" stroke="#333"/>${tickLabelSvg(t, x, MARGIN.top + ih + 18, 'middle')}</g>`);
  }
  for (const t of ticksFor(p.y.scale, y0, y1, p.y.ticks)) {
    const y = py(t.value);
    out.push(`<g class="tick y-tick" data-value="${t.value}"><line x1="${MARGIN.left}" y1="${fmt(y)}" x2="${fmt(MARGIN.left + iw)}" y2="${fmt(y)}" stroke="#e5e5e5"/>` +
      `<line x1="${MARGIN.left - 5}" y1="${fmt(y)}" x2="${MARGIN.left}" y2="${fmt(y)}" stroke="#333"/>${tickLabelSvg(t, MARGIN.left - 8, y + 4, 'end')}</g>`);
  }
  out.push(`<text class="axis-label" x="${fmt(MARGIN.left + iw / 2)}" y="${h - 8}" text-anchor="middle">${xmlEscape(p.x.label)}</text>`);
  out.push(`<text class="axis-label" transform="translate(14 ${fmt(MARGIN.top + ih / 2)}) rotate(-90)" text-anchor="middle">${xmlEscape(p.y.label)}</text>`);
  const inside = (q: Point): boolean => Number.isFinite(q.y) && Number.isFinite(q.x) && q.x >= x0 && q.x <= x1 && q.y >= y0 && q.y <= y1 && (p.y.scale === 'linear' || q.y > 0);
  for (const s of p.series) {
    const color = colorOf(s.name);
    const d = linePath(s.points, inside, px, py);
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    out.push(`<path class="series" data-series="${xmlEscape(s.name)}" d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${dash}/>`);
    for (const q of s.points.filter(inside)) out.push(`<circle cx="${fmt(px(q.x))}" cy="${fmt(py(q.y))}" r="2.2" fill="${color}"/>`);
    for (const m of (s.marks ?? []).filter(inside)) {
      out.push(`<circle class="mark" cx="${fmt(px(m.x))}" cy="${fmt(py(m.y))}" r="5.5" fill="${color}" stroke="#000" stroke-width="1.5"/>`);
    }
    for (const xv of s.diverged ?? []) {
      const cx = px(xv), cy = MARGIN.top + 8;
      out.push(`<path class="diverged" d="M${fmt(cx - 4)},${fmt(cy - 4)}L${fmt(cx + 4)},${fmt(cy + 4)}M${fmt(cx - 4)},${fmt(cy + 4)}L${fmt(cx + 4)},${fmt(cy - 4)}" stroke="${color}" stroke-width="2"/>`);
    }
  }
  return out.join('\n');
}

/** Path data through consecutive drawable points; a missing or non-finite point starts a new segment. */
function linePath(points: Point[], inside: (q: Point) => boolean, px: (v: number) => number, py: (v: number) => number): string {
  let d = '';
  let pen = false;
  for (const q of [...points].sort((a, b) => a.x - b.x)) {
    if (!inside(q)) { pen = false; continue; }
    d += `${pen ? 'L' : 'M'}${fmt(px(q.x))},${fmt(py(q.y))}`;
    pen = true;
  }
  return d || 'M0,0';
}

/** Distinct series names across panels, in first-seen order (the legend). */
export function seriesNames(fig: FigureSpec): string[] {
  const names: string[] = [];
  for (const p of fig.panels) for (const s of p.series) if (!names.includes(s.name)) names.push(s.name);
  return names;
}

/** Room for the legend: at least LEGEND_WIDTH, wider for long entries (about 6.2 px per character at 11 px). */
export function legendWidth(names: string[], notes: string[]): number {
  const chars = (xs: string[]): number => Math.max(0, ...xs.map((x) => [...x].length));
  return Math.max(LEGEND_WIDTH, Math.ceil(Math.max(36 + 6.2 * chars(names), 14 + 6.2 * chars(notes))));
}

/** The whole figure: a title, a grid of panels, a legend on the right (one entry per series name). */
export function figureSvg(fig: FigureSpec): string {
  const pw = fig.panelWidth ?? 420;
  const ph = fig.panelHeight ?? 320;
  const cols = Math.max(1, Math.min(fig.columns ?? fig.panels.length, fig.panels.length));
  const rows = Math.ceil(fig.panels.length / cols);
  const names = seriesNames(fig);
  const explicit = new Map<string, string>();
  for (const p of fig.panels) for (const s of p.series) if (s.color && !explicit.has(s.name)) explicit.set(s.name, s.color);
  const colorOf = (n: string): string => explicit.get(n) ?? PALETTE[names.indexOf(n) % PALETTE.length];
  const width = cols * pw + legendWidth(names, fig.notes ?? []);
  const legendHeight = 40 + (names.length + (fig.notes?.length ?? 0)) * 18;
  const height = Math.max(32 + rows * ph, legendHeight);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text class="figure-title" x="${fmt((cols * pw) / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${xmlEscape(fig.title)}</text>`,
  ];
  fig.panels.forEach((p, i) => {
    const gx = (i % cols) * pw;
    const gy = 32 + Math.floor(i / cols) * ph;
    out.push(`<g class="panel" transform="translate(${gx} ${gy})">`, panelSvg(p, pw, ph, colorOf), '</g>');
  });
  out.push(`<g class="legend" transform="translate(${cols * pw + 8} 50)">`);
  names.forEach((n, i) => {
    const dashed = fig.panels.some((p) => p.series.some((s) => s.name === n && s.dashed)) ? ' stroke-dasharray="5 3"' : '';
    out.push(`<g class="legend-entry" transform="translate(0 ${i * 18})"><line x1="0" y1="0" x2="22" y2="0" stroke="${colorOf(n)}" stroke-width="2.5"${dashed}/>` +
      `<text x="28" y="4">${xmlEscape(n)}</text></g>`);
  });
  (fig.notes ?? []).forEach((note, i) => {
    out.push(`<text class="legend-note" x="0" y="${(names.length + i) * 18 + 10}" fill="#444">${xmlEscape(note)}</text>`);
  });
  out.push('</g>', '</svg>', '');
  return out.join('\n');
}
