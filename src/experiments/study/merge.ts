/**
 * Merge: the results of a planned study back into the sweep's or coord check's result, in plan order,
 * whatever order the runs finished in, so the JSON and CSV are byte-identical to a local run of the
 * same study. Missing and failed runs are listed; without `allowPartial` they are an error.
 */
import { UserInputError } from '../../errors.js';
import { assembleCoordCheck, coordRunPart, type CoordCheckResult } from '../coord-check.js';
import { assembleSweep, sweepPoint, type SweepResult } from '../sweep.js';
import { readManifest, type StudyManifest } from './plan.js';
import { findFailure, findRecord, type FailureRecord, type RunRecord } from './run.js';

export type StudyResult = { kind: 'sweep'; result: SweepResult } | { kind: 'coord-check'; result: CoordCheckResult };

export interface MergeOutcome {
  manifest: StudyManifest;
  merged: StudyResult;
  /** Runs with neither a result nor a failure record. */
  missing: number[];
  failed: FailureRecord[];
}

/** Indices as a short list for `sbatch --array` / `run --index`: 0-3,7,9-10. */
export function indexList(xs: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < xs.length; i++) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(j > i ? `${xs[i]}-${xs[j]}` : String(xs[i]));
    i = j;
  }
  return parts.join(',');
}

export function mergeStudy(dir: string, opts: { allowPartial?: boolean } = {}): MergeOutcome {
  const manifest = readManifest(dir);
  const records: (RunRecord | undefined)[] = manifest.runs.map((r) => findRecord(dir, r.index, r.hash));
  const missing: number[] = [];
  const failed: FailureRecord[] = [];
  manifest.runs.forEach((r, i) => {
    if (records[i]) return;
    const f = findFailure(dir, r.index);
    if (f && f.hash === r.hash) failed.push(f); else missing.push(r.index);
  });
  if ((missing.length || failed.length) && !opts.allowPartial) {
    const todo = indexList([...missing, ...failed.map((f) => f.index)].sort((a, b) => a - b));
    const what = [missing.length ? `${missing.length} missing` : '', failed.length ? `${failed.length} failed (first: run ${failed[0].index}: ${failed[0].error})` : ''].filter(Boolean).join(', ');
    throw new UserInputError(`${dir}: ${what} of ${manifest.runs.length} runs; run them (sbatch --array=${todo} slurm.sbatch, or 'run ${dir} --index ${todo}') or merge with --allow-partial`);
  }
  const done = manifest.runs.map((r, i) => ({ r, rec: records[i] })).filter((x): x is { r: typeof x.r; rec: RunRecord } => x.rec !== undefined);
  const specRun = (index: number) => {
    const r = manifest.runs[index];
    return { rules: r.rules, density: r.density, lr: r.lr, ...(r.model !== undefined ? { model: r.model } : {}) };
  };
  let merged: StudyResult;
  if (manifest.study.kind === 'sweep') {
    const o = manifest.study.options;
    const points = done.map(({ r, rec }) => sweepPoint({ ...specRun(r.index), steps: o.steps, seed: o.seed, recordActivations: false }, rec.losses, o.lastK, o.models));
    merged = { kind: 'sweep', result: assembleSweep(o, points) };
  } else {
    const o = manifest.study.options;
    const parts = done.map(({ r, rec }) => coordRunPart({ ...specRun(r.index), steps: o.steps, seed: o.seed, recordActivations: true }, rec, o.models));
    merged = { kind: 'coord-check', result: assembleCoordCheck(o, parts) };
  }
  return { manifest, merged, missing, failed };
}
