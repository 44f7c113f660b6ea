/**
 * The local driver of a planned study: its runs in this process (`jobs` 1) or split over `jobs` worker
 * processes, each calling the same CLI's `run DIR --index LIST` on a contiguous slice of the plan (so
 * consecutive runs share a transformed model). Every run keeps onnxruntime at the spec's thread count
 * (1 by default), so N workers on N cores do not oversubscribe and results do not depend on `jobs`.
 */
import { spawn } from 'node:child_process';
import type { Progress } from '../run-types.js';
import { coordProgressLine } from '../coord-check.js';
import { fmtDensity, fmtLog2, sweepPoint, sweepProgressLine } from '../sweep.js';
import { readManifest, readSpec, type StudyManifest } from './plan.js';
import { StudyRunner, type RunOutcome, type TrainRunFactory } from './run.js';

/** The progress line of one finished (or skipped, or failed) run. */
export function outcomeLine(m: StudyManifest, o: RunOutcome, total: number): string {
  const r = m.runs[o.index];
  if (o.status === 'failed') return `[${o.index + 1}/${total}] ${r.rules} density ${fmtDensity(r.density)} lr 2^${fmtLog2(Math.log2(r.lr))}: FAILED (${o.failure.error})`;
  const cfg = { rules: r.rules, density: r.density, lr: r.lr, steps: 0, seed: 0, recordActivations: m.study.kind === 'coord-check', ...(r.model !== undefined ? { model: r.model } : {}) };
  const line = m.study.kind === 'sweep'
    ? sweepProgressLine(sweepPoint(cfg, o.record.losses, m.study.options.lastK, m.study.options.models), o.index + 1, total)
    : `[${o.index + 1}/${total}] ${coordProgressLine(cfg, o.record)}`;
  return o.status === 'skipped' ? `${line} (already done)` : line;
}

/** Runs `indices` of the study in `dir` in this process, one progress line each; returns their outcomes. */
export async function runIndices(dir: string, indices: number[], factory: TrainRunFactory, progress: Progress): Promise<RunOutcome[]> {
  const m = readManifest(dir);
  const runner = new StudyRunner(dir, factory);
  const out: RunOutcome[] = [];
  for (const i of indices) {
    readSpec(dir, i);
    const o = await runner.run(i);
    out.push(o);
    progress(outcomeLine(m, o, m.runs.length));
  }
  return out;
}

/** Contiguous slices of 0…n−1 for `jobs` workers (sizes differ by at most one). */
export function slices(n: number, jobs: number): number[][] {
  const k = Math.max(1, Math.min(jobs, n));
  return Array.from({ length: k }, (_, w) => {
    const lo = Math.floor((w * n) / k);
    const hi = Math.floor(((w + 1) * n) / k);
    return Array.from({ length: hi - lo }, (_, i) => lo + i);
  }).filter((s) => s.length > 0);
}

/**
 * Every run of the study, locally: in-process for jobs = 1, else `jobs` child processes of `cli`
 * (their progress lines pass through on stderr). Failures stay in their failure records; merge reports them.
 */
export async function runStudyLocally(dir: string, jobs: number, cli: string[], factory: TrainRunFactory, progress: Progress): Promise<void> {
  const m = readManifest(dir);
  const all = m.runs.map((r) => r.index);
  if (jobs <= 1 || all.length <= 1) {
    await runIndices(dir, all, factory, progress);
    return;
  }
  const workers = slices(all.length, jobs).map((idx) => new Promise<void>((resolve, reject) => {
    const [cmd, ...args] = cli;
    const child = spawn(cmd, [...args, 'run', dir, '--index', idx.join(',')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let buf = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      buf += s;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) { progress(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
    });
    child.on('error', reject);
    child.on('close', () => { if (buf) progress(buf); resolve(); });
  }));
  await Promise.all(workers);
}
