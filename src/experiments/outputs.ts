/**
 * Writes the experiment results: JSON (the whole result, non-finite numbers as strings so the JSON stays
 * valid), CSV, SVG figures and the optimal-LR markdown table. Files are written atomically.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../onnx/atomic.js';
import { UserInputError, ExitCode } from '../errors.js';
import { figureSvg } from './plot.js';
import { writeStudyIndex } from '../pages/study-index.js';
import { coordCsv, coordFigure, type CoordCheckResult } from './coord-check.js';
import { optimaMarkdown, sweepCsv, type SweepResult } from './sweep.js';
import { optimaFigure, sweepFigure } from './sweep-figures.js';

/** JSON with NaN / ±Infinity written as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers). */
export function resultJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n';
}

export function ensureOutDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UserInputError(`--out ${dir}: cannot create the folder (${(e as Error).message}); choose a writable folder`, ExitCode.io);
  }
}

function write(file: string, text: string, written: string[]): void {
  writeFileAtomic(file, Buffer.from(text, 'utf8'));
  written.push(file);
}

/** coord-check.json, coord-check.csv and coord-check.<rules>.svg per rule set; returns the paths written. */
export function writeCoordCheckOutputs(res: CoordCheckResult, dir: string, stem = 'coord-check'): string[] {
  ensureOutDir(dir);
  const written: string[] = [];
  write(path.join(dir, `${stem}.json`), resultJson(res), written);
  write(path.join(dir, `${stem}.csv`), coordCsv(res), written);
  for (const r of res.options.rules) write(path.join(dir, `${stem}.${safeName(r)}.svg`), figureSvg(coordFigure(res, r)), written);
  written.push(writeStudyIndex(dir));
  return written;
}

/** sweep.json, sweep.csv, sweep.svg (loss vs LR), sweep.optima.svg (optimal LR vs the swept dimension) and sweep.optima.md; returns the paths written. */
export function writeSweepOutputs(res: SweepResult, dir: string, stem = 'sweep', title?: string): string[] {
  ensureOutDir(dir);
  const written: string[] = [];
  write(path.join(dir, `${stem}.json`), resultJson(res), written);
  write(path.join(dir, `${stem}.csv`), sweepCsv(res), written);
  write(path.join(dir, `${stem}.svg`), figureSvg(sweepFigure(res, title)), written);
  write(path.join(dir, `${stem}.optima.svg`), figureSvg(optimaFigure(res)), written);
  write(path.join(dir, `${stem}.optima.md`), optimaMarkdown(res), written);
  written.push(writeStudyIndex(dir));
  return written;
}

/** A rule-set id or path as a file-name part ("rules/my.json" → "my"). */
export function safeName(rules: string): string {
  return path.basename(rules).replace(/\.(json|ts)$/, '').replace(/[^\w.-]+/g, '_');
}
