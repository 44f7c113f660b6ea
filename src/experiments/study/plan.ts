/**
 * A study (an LR sweep or a coordinate check) as data: a manifest and one spec per run, each naming the
 * model and data by content hash and carrying every option that changes the run's result, so that any
 * machine holding the same files reproduces the same losses. The local loop, worker processes, a Slurm
 * job array and a Kubernetes Indexed Job are drivers of the same runner (run.ts) over these specs, and
 * `merge` (merge.ts) turns their results back into the sweep's or coord check's outputs.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode, UserInputError } from '../../errors.js';
import { writeFileAtomic } from '../../onnx/atomic.js';
import { coordRunConfigs, type CoordCheckOptions } from '../coord-check.js';
import { resultJson } from '../outputs.js';
import type { RunConfig } from '../run-types.js';
import { sweepRunConfigs, type SweepOptions } from '../sweep.js';
import type { OnnxTrainRunOptions } from '../train-run.js';
import { schedulerFiles, type SchedulerOptions } from './schedulers.js';

export const MANIFEST = 'study.json';
export const RUNS_DIR = 'runs';
export const RESULTS_DIR = 'results';

/** The training options of every run of a study: everything of `OnnxTrainRunOptions` that is plain data. */
export type StudyTrainOptions = Omit<OnnxTrainRunOptions, 'modelPath' | 'dataFile' | 'textBytes' | 'prepare'>;

export interface FileRef {
  /** Absolute path at planning time (the runner reads it there). */
  path: string;
  sha256: string;
}

export type StudyKind = { kind: 'sweep'; options: SweepOptions } | { kind: 'coord-check'; options: CoordCheckOptions };

export interface RunSpec {
  format: 'supar-study-run/1';
  study: StudyKind['kind'];
  index: number;
  model: FileRef;
  data: FileRef | null;
  train: StudyTrainOptions;
  run: RunConfig;
  /** sha256 of this spec's canonical JSON without `hash`: a result belongs to a spec when their hashes agree. */
  hash: string;
}

export interface StudyManifest {
  format: 'supar-study/1';
  study: StudyKind;
  model: FileRef;
  data: FileRef | null;
  /** Every model of the study (one, or several with `--models`); `model` is the first. */
  models: FileRef[];
  train: StudyTrainOptions;
  /** The CLI that wrote the plan (argv before the command): the schedulers' job scripts call it. */
  cli: string[];
  runs: { index: number; hash: string; spec: string; rules: string; model?: number; density: number; lr: number }[];
}

export interface PlannedStudy {
  manifest: StudyManifest;
  specs: RunSpec[];
}

export function sha256File(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new UserInputError(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, ExitCode.io);
  }
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 22);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** JSON with object keys sorted at every level: the same value always gives the same text (and hash). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return v;
  });
}

export function specHash(spec: Omit<RunSpec, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}

export function specFileName(index: number): string {
  return `${String(index).padStart(5, '0')}.json`;
}

/** The study's runs as specs, in plan order (the order a local run goes through them). */
export function planStudy(study: StudyKind, modelPaths: string | string[], dataPath: string | undefined, train: StudyTrainOptions, cli: string[]): PlannedStudy {
  const models = (typeof modelPaths === 'string' ? [modelPaths] : modelPaths).map((p) => ({ path: path.resolve(p), sha256: sha256File(p) }));
  const model = models[0]!;
  const data = dataPath ? { path: path.resolve(dataPath), sha256: sha256File(dataPath) } : null;
  const configs = study.kind === 'sweep' ? sweepRunConfigs(study.options) : coordRunConfigs(study.options);
  const cleanTrain = JSON.parse(canonicalJson(train)) as StudyTrainOptions;
  const specs = configs.map((run, index): RunSpec => {
    const body = { format: 'supar-study-run/1' as const, study: study.kind, index, model: models[run.model ?? 0]!, data, train: cleanTrain, run };
    return { ...body, hash: specHash(body) };
  });
  const runs = specs.map((s) => ({ index: s.index, hash: s.hash, spec: `${RUNS_DIR}/${specFileName(s.index)}`, rules: s.run.rules, ...(s.run.model !== undefined ? { model: s.run.model } : {}), density: s.run.density, lr: s.run.lr }));
  return { manifest: { format: 'supar-study/1', study, model, models, data, train: cleanTrain, cli, runs }, specs };
}

/**
 * Writes the plan into `dir`: study.json, runs/NNNNN.json, slurm.sbatch, k8s-indexed-job.yaml and a README.
 * Existing results are kept (a re-plan of the same study leaves finished runs finished: their hashes agree).
 */
export function writePlan(planned: PlannedStudy, dir: string, sched: SchedulerOptions): string[] {
  const abs = path.resolve(dir);
  for (const d of [abs, path.join(abs, RUNS_DIR), path.join(abs, RESULTS_DIR), path.join(abs, 'logs')]) {
    try {
      fs.mkdirSync(d, { recursive: true });
    } catch (e) {
      throw new UserInputError(`--plan ${dir}: cannot create ${d} (${(e as Error).message}); choose a writable folder`, ExitCode.io);
    }
  }
  const written: string[] = [];
  const put = (rel: string, text: string, mode?: number): void => {
    const file = path.join(abs, rel);
    writeFileAtomic(file, Buffer.from(text, 'utf8'));
    if (mode !== undefined) fs.chmodSync(file, mode);
    written.push(file);
  };
  for (const s of planned.specs) put(path.join(RUNS_DIR, specFileName(s.index)), resultJson(s));
  put(MANIFEST, resultJson(planned.manifest));
  for (const f of schedulerFiles(planned.manifest, abs, sched)) put(f.name, f.text, f.mode);
  return written;
}

export function readManifest(dir: string): StudyManifest {
  const file = path.join(dir, MANIFEST);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserInputError(`${dir}: no study plan here (${MANIFEST}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); write one with 'sweep … --plan ${dir}'`, ExitCode.io);
  }
  let m: StudyManifest;
  try {
    m = JSON.parse(text) as StudyManifest;
  } catch (e) {
    throw new UserInputError(`${file}: not valid JSON (${(e as Error).message}); re-plan the study`);
  }
  if (m?.format !== 'supar-study/1' || !Array.isArray(m.runs)) throw new UserInputError(`${file}: not a supar-transform study plan (format ${String(m?.format)}); re-plan the study`);
  return m;
}

export function readSpec(dir: string, index: number): RunSpec {
  const file = path.join(dir, RUNS_DIR, specFileName(index));
  let spec: RunSpec;
  try {
    spec = JSON.parse(fs.readFileSync(file, 'utf8')) as RunSpec;
  } catch (e) {
    throw new UserInputError(`${file}: cannot read the run spec (${(e as Error).message}); re-plan the study`);
  }
  const { hash, ...body } = spec;
  if (spec.format !== 'supar-study-run/1' || specHash(body) !== hash) throw new UserInputError(`${file}: the run spec was edited or damaged (its hash does not match); re-plan the study`);
  return spec;
}
