/**
 * Redraws a sweep's figures from its JSON (what `sweep` wrote as sweep.json), without training again:
 *   node --import tsx scripts/plot-sweep.ts docs/results/depth-reduced.sweep.json docs/img/depth-reduced [--title "…"]
 * writes <stem>.svg (final loss vs LR, a panel per rule set, a curve per density or model) and <stem>.optima.svg
 * (the loss-optimal LR against the swept dimension: density, width or depth). Same JSON → byte-identical SVGs.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { figureSvg } from '../src/experiments/plot.js';
import { optimaFigure, sweepFigure } from '../src/experiments/sweep-figures.js';
import type { SweepResult } from '../src/experiments/sweep.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { title: { type: 'string' } } });
const [json, stem] = positionals;
if (!json || !stem) throw new Error('usage: plot-sweep.ts SWEEP.json OUT-STEM [--title TEXT]');
const res = JSON.parse(fs.readFileSync(json, 'utf8')) as SweepResult;
if (res.format !== 'supar-sweep/1') throw new Error(`${json}: not a sweep result (format ${JSON.stringify(res.format)})`);
fs.writeFileSync(`${stem}.svg`, figureSvg(sweepFigure(res, values.title)));
fs.writeFileSync(`${stem}.optima.svg`, figureSvg(optimaFigure(res)));
process.stderr.write(`wrote ${stem}.svg, ${stem}.optima.svg\n`);
