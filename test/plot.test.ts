import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { axisRange, figureSvg, linearTicks, logTicks, makeScale, xmlEscape, type FigureSpec } from '../src/experiments/plot.js';
import { byClass, findAll, parseXml, textOf } from './svg-xml.js';

test('the XML checker rejects what is not well-formed (so the SVG tests can fail)', () => {
  assert.throws(() => parseXml('<svg><g></svg>'), /closes/);
  assert.throws(() => parseXml('<svg><text>a & b</text></svg>'), /bare '&'/);
  assert.throws(() => parseXml('<svg width=3></svg>'), /malformed/);
  assert.throws(() => parseXml('<svg a="1" a="2"></svg>'), /duplicate/);
  assert.throws(() => parseXml('<svg>'), /unclosed/);
  assert.equal(parseXml('<svg><g class="x"/><text>a &amp; b</text></svg>').children[1].text, 'a & b');
});

test('log2 ticks sit at every power of two in range, labelled 2^k', () => {
  const t = logTicks(2, 2 ** -12.3, 2 ** -3.7);
  assert.deepEqual(t.map((x) => x.value), [-12, -11, -10, -9, -8, -7, -6, -5, -4].map((k) => 2 ** k));
  assert.deepEqual(t.map((x) => x.label), ['2^-12', '2^-11', '2^-10', '2^-9', '2^-8', '2^-7', '2^-6', '2^-5', '2^-4']);
  // Exact powers at the ends are included; a wide range is thinned to at most 12 ticks, still on powers of 2.
  assert.deepEqual(logTicks(2, 1 / 16, 1).map((x) => x.value), [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]);
  const wide = logTicks(2, 2 ** -20, 2 ** 0);
  assert.ok(wide.length <= 12 && wide.length >= 6, `${wide.length} ticks`);
  for (const x of wide) assert.ok(Number.isInteger(Math.log2(x.value)));
  // Less than one power of ten in range: nice linear ticks inside it.
  assert.deepEqual(logTicks(10, 0.21, 0.58).map((x) => x.value), [0.3, 0.4, 0.5]);
  // Within two decades: 1-2-5 steps.
  assert.deepEqual(logTicks(10, 0.004, 0.06).map((x) => x.value), [0.005, 0.01, 0.02, 0.05]);
  assert.deepEqual(linearTicks(0, 1).map((x) => x.value), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test('scales map log2 values linearly in the exponent', () => {
  const s = makeScale('log2', 2 ** -10, 2 ** -2);
  assert.equal(s(2 ** -10), 0);
  assert.equal(s(2 ** -6), 0.5);
  assert.equal(s(2 ** -2), 1);
  const [lo, hi] = axisRange({ label: '', scale: 'log2' }, [0.25, 1, NaN, -1]);
  assert.ok(lo < 0.25 && lo > 0.2 && hi > 1 && hi < 1.1, `${lo} ${hi}`);
  assert.equal(xmlEscape('a<b & "c"'), 'a&lt;b &amp; &quot;c&quot;');
});

function sampleFigure(): FigureSpec {
  const lrs = [-10, -9, -8, -7, -6].map((k) => 2 ** k);
  const curve = (shift: number) => lrs.map((x) => ({ x, y: 3 + (Math.log2(x) + 8 + shift) ** 2 / 10 }));
  return {
    title: 'loss <vs> LR & density',
    panels: ['sp', 'supar'].map((r) => ({
      title: r,
      x: { label: 'learning rate', scale: 'log2' as const },
      y: { label: 'loss', scale: 'linear' as const },
      series: [
        { name: 'density 1', points: curve(0), marks: [{ x: 2 ** -8, y: 3 }] },
        { name: 'density 1/4', points: [...curve(1).slice(0, 3), { x: 2 ** -7, y: NaN }, curve(1)[4]], diverged: [2 ** -7] },
      ],
    })),
    notes: ['ringed dot: optimum'],
  };
}

test('a figure is well-formed SVG with one path per series per panel, a legend entry per series, marks and crosses', () => {
  const svg = figureSvg(sampleFigure());
  const root = parseXml(svg);
  assert.equal(root.name, 'svg');
  assert.equal(root.attrs.xmlns, 'http://www.w3.org/2000/svg');
  assert.equal(findAll(root, byClass('panel')).length, 2);
  const series = findAll(root, byClass('series'));
  assert.equal(series.length, 4);
  // The NaN point breaks the density-1/4 line into two segments (two M commands).
  const broken = series.filter((s) => s.attrs['data-series'] === 'density 1/4');
  for (const s of broken) assert.equal((s.attrs.d.match(/M/g) ?? []).length, 2);
  const legend = findAll(root, byClass('legend-entry')).map(textOf);
  assert.deepEqual(legend, ['density 1', 'density 1/4']);
  assert.equal(findAll(root, byClass('mark')).length, 2);
  assert.equal(findAll(root, byClass('diverged')).length, 2);
  // x ticks: 2^-10 … 2^-6 in each panel, rendered as base 2 with a superscript exponent.
  const xt = findAll(findAll(root, byClass('panel'))[0], byClass('x-tick'));
  assert.deepEqual(xt.map((t) => Number(t.attrs['data-value'])), [-10, -9, -8, -7, -6].map((k) => 2 ** k));
  assert.deepEqual(xt.map(textOf), ['2-10', '2-9', '2-8', '2-7', '2-6']);
  assert.ok(textOf(root).includes('loss <vs> LR & density'));
});

test('tick positions follow the scale: 2^-8 is half way along the 2^-10 … 2^-6 axis', () => {
  const root = parseXml(figureSvg({ title: 't', panels: [{ title: 'p', x: { label: 'x', scale: 'log2', min: 2 ** -10, max: 2 ** -6 }, y: { label: 'y', scale: 'linear' }, series: [{ name: 's', points: [{ x: 2 ** -10, y: 1 }, { x: 2 ** -6, y: 2 }] }] }] }));
  const xs = findAll(root, byClass('x-tick')).map((t) => Number(t.children[0].attrs.x1));
  assert.equal(xs.length, 5);
  const step = xs[1] - xs[0];
  for (let i = 1; i < xs.length; i++) assert.ok(Math.abs(xs[i] - xs[i - 1] - step) < 0.02, `uneven ticks ${xs}`);
  assert.ok(Math.abs(xs[2] - (xs[0] + xs[4]) / 2) < 0.02);
});

test('the legend widens for long series names so they are not cut off; short names keep the 150 px legend', () => {
  const fig = (name: string): FigureSpec => ({ title: 't', panelWidth: 400, panels: [{ title: 'p', x: { label: 'x', scale: 'linear' }, y: { label: 'y', scale: 'linear' }, series: [{ name, points: [{ x: 0, y: 1 }, { x: 1, y: 2 }] }] }] });
  assert.equal(parseXml(figureSvg(fig('density 1/16'))).attrs.width, '550');
  // 31 characters: 36 + 6.2 × 31 = 228.2 → 229 px of legend.
  assert.equal(parseXml(figureSvg(fig('supar-init-only (moves 3 steps)'))).attrs.width, '629');
});
