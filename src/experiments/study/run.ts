/**
 * The runner of one planned run: reads its spec, checks the model and data still have the planned
 * content, trains, and writes the result atomically (results/NNNNN.json). Idempotent: a result whose
 * hash equals the spec's is kept and the run skipped. A failure leaves results/NNNNN.failed.json (the
 * message and exit code), never a half-written result; the next attempt replaces it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode, UserInputError, UsageError, type ExitCodeValue } from '../../errors.js';
import { writeFileAtomic } from '../../onnx/atomic.js';
import { resultJson } from '../outputs.js';
import type { RunResult, TrainRun } from '../run-types.js';
import type { OnnxTrainRunOptions } from '../train-run.js';
import { canonicalJson, readSpec, RESULTS_DIR, sha256File, specFileName, type RunSpec } from './plan.js';

export interface RunRecord extends RunResult {
  format: 'supar-study-result/1';
  index: number;
  hash: string;
}

export interface FailureRecord {
  format: 'supar-study-failure/1';
  index: number;
  hash: string;
  exitCode: number;
  error: string;
}

export type RunOutcome = { index: number; status: 'done' | 'skipped'; record: RunRecord } | { index: number; status: 'failed'; failure: FailureRecord };

export function resultPath(dir: string, index: number): string {
  return path.join(dir, RESULTS_DIR, specFileName(index));
}

export function failurePath(dir: string, index: number): string {
  return path.join(dir, RESULTS_DIR, specFileName(index).replace(/\.json$/, '.failed.json'));
}

/** JSON numbers written as "NaN" / "Infinity" / "-Infinity" (outputs.ts resultJson) back to numbers. */
function numeric(v: unknown): number {
  return typeof v === 'string' ? Number(v) : (v as number);
}

/** The finished result of run `index`, if one exists for the spec `hash` (any other file is no result). */
export function findRecord(dir: string, index: number, hash: string): RunRecord | undefined {
  let rec: RunRecord;
  try {
    rec = JSON.parse(fs.readFileSync(resultPath(dir, index), 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
  if (rec?.format !== 'supar-study-result/1' || rec.hash !== hash || !Array.isArray(rec.losses)) return undefined;
  rec.losses = rec.losses.map(numeric);
  rec.activations = rec.activations.map((a) => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, numeric(v)])));
  return rec;
}

export function findFailure(dir: string, index: number): FailureRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(failurePath(dir, index), 'utf8')) as FailureRecord;
  } catch {
    return undefined;
  }
}

/** Makes the TrainRun for a spec's model, data and options (the real one: makeOnnxTrainRun; tests pass fakes). */
export type TrainRunFactory = (opts: OnnxTrainRunOptions) => Promise<TrainRun>;

/**
 * Runs specs of one study folder, one after another, reusing one TrainRun (and so its transformed model
 * and train-step graph) while consecutive specs share model, data and options.
 */
export class StudyRunner {
  private cached: { key: string; train: TrainRun } | undefined;
  private readonly verified = new Set<string>();

  constructor(private readonly dir: string, private readonly factory: TrainRunFactory) {}

  async run(index: number): Promise<RunOutcome> {
    const spec = readSpec(this.dir, index);
    const done = findRecord(this.dir, index, spec.hash);
    if (done) return { index, status: 'skipped', record: done };
    try {
      const result = await (await this.trainFor(spec))(spec.run);
      const record: RunRecord = { format: 'supar-study-result/1', index, hash: spec.hash, losses: result.losses, activations: result.activations, blocks: result.blocks };
      writeFileAtomic(resultPath(this.dir, index), Buffer.from(resultJson(record), 'utf8'));
      fs.rmSync(failurePath(this.dir, index), { force: true });
      return { index, status: 'done', record };
    } catch (e) {
      const exitCode: ExitCodeValue = e instanceof UserInputError ? e.exitCode : ExitCode.internal;
      const failure: FailureRecord = { format: 'supar-study-failure/1', index, hash: spec.hash, exitCode, error: (e as Error)?.message ?? String(e) };
      writeFileAtomic(failurePath(this.dir, index), Buffer.from(resultJson(failure), 'utf8'));
      return { index, status: 'failed', failure };
    }
  }

  private async trainFor(spec: RunSpec): Promise<TrainRun> {
    for (const f of [spec.model, spec.data]) {
      if (!f || this.verified.has(`${f.path}\u0000${f.sha256}`)) continue;
      if (sha256File(f.path) !== f.sha256) throw new UserInputError(`${f.path}: its content changed since the study was planned (sha256 differs); re-plan the study or restore the file`);
      this.verified.add(`${f.path}\u0000${f.sha256}`);
    }
    const key = canonicalJson([spec.model, spec.data, spec.train]);
    if (this.cached?.key !== key) {
      const train = await this.factory({ ...spec.train, modelPath: spec.model.path, dataFile: spec.data?.path });
      this.cached = { key, train };
    }
    return this.cached.train;
  }
}

/**
 * The indices a `run` invocation covers: `--index` (a list like 3,5,8-11), else the scheduler's
 * SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, else none (the caller asks for one).
 */
export function resolveIndices(flag: string | undefined, env: NodeJS.ProcessEnv, total: number): number[] {
  const source = flag !== undefined ? ['--index', flag] : env.SLURM_ARRAY_TASK_ID !== undefined ? ['SLURM_ARRAY_TASK_ID', env.SLURM_ARRAY_TASK_ID] : env.JOB_COMPLETION_INDEX !== undefined ? ['JOB_COMPLETION_INDEX', env.JOB_COMPLETION_INDEX] : undefined;
  if (!source) throw new UsageError(`run: which run? pass --index i (0…${total - 1}, or a list like 0,3,5-7), or run it as a Slurm array task or a Kubernetes Indexed Job`);
  const [name, text] = source;
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || hi < lo || hi >= total) throw new UsageError(`${name}: '${text}' is not a run index or list in 0…${total - 1}`);
    for (let i = lo; i <= hi; i++) if (!out.includes(i)) out.push(i);
  }
  return out;
}
