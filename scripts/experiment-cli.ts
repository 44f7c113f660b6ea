/**
 * What the width and iso-parameter experiment scripts share: GPT models built with fixtures/gpt-builder.ts
 * into a temp folder, the byte-level text corpus written beside them, and the CLI a user runs (from source,
 * through test/cli-entry.ts) called as a child process with its progress on our stderr.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { encodeModel } from '../src/onnx/codec.js';
import { loadTextCorpus } from '../src/experiments/text-corpus.js';
import type { SweepResult } from '../src/experiments/sweep.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Hyperparameters of the paper's Fig. 9 runs (App. E, Table 4): SP init std 0.02; µP/SµPar σ_base 0.087,
 * α_input 9.1705, α_output 1.095 (tuned on a dense proxy). SP has no multipliers, so it takes σ only.
 */
export const PAPER_HP: Record<'sp' | 'mup', string[]> = {
  sp: ['--sigma-base', '0.02'],
  mup: ['--sigma-base', '0.08665602', '--alpha-input', '9.1705', '--alpha-output', '1.0951835'],
};

/** The HP flags for a rule set: SP's for `sp`, µP's for every µP-family rule set (mup, supar, ...). */
export function paperHpFlags(rules: string): string[] {
  return rules === 'sp' ? PAPER_HP.sp : PAPER_HP.mup;
}

export interface GptShape { width: number; layers: number; heads: number; seq: number }

/** Writes one byte-vocabulary GPT (seed 1) per shape into `dir`; returns the files, named gpt-w<width>-L<layers>.onnx. */
export function buildModels(dir: string, shapes: GptShape[]): string[] {
  return shapes.map((s) => {
    const f = path.join(dir, `gpt-w${s.width}-L${s.layers}.onnx`);
    fs.writeFileSync(f, encodeModel(buildGpt({ vocab: 256, dModel: s.width, layers: s.layers, heads: s.heads, maxPos: s.seq, seed: 1 })));
    return f;
  });
}

/** The real-text corpus (src/experiments/text-corpus.ts) as a file the CLI's --data reads. */
export function writeCorpus(dir: string): string {
  const f = path.join(dir, 'corpus.txt');
  fs.writeFileSync(f, loadTextCorpus(4 << 20).bytes);
  return f;
}

const TSX = pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href;

/** Runs `supar-transform <args>` from source; returns its stdout, throws on a non-zero exit. */
export function cli(args: string[]): string {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] $ supar-transform ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, ['--import', TSX, path.join(ROOT, 'test', 'cli-entry.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`supar-transform ${args[0]} exited with ${r.status}`);
  return r.stdout;
}

/** A sweep.json as written by `sweep` (non-finite numbers are strings there, and are not read back as numbers). */
export function readSweep(file: string): SweepResult {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as SweepResult;
}

export function minutesSince(t0: number): string {
  return ((Date.now() - t0) / 60000).toFixed(1);
}

/**
 * The folder for models, corpus and studies: `--work DIR` (kept afterwards; a rerun with the same DIR and
 * flags resumes, as `sweep` keeps finished runs), else a fresh temp folder removed at the end.
 */
export function workDir(work: string | undefined, prefix: string): string {
  if (work === undefined) return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.mkdirSync(work, { recursive: true });
  return path.resolve(work);
}
