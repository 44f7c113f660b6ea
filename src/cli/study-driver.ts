/**
 * The shared driver of `sweep` and `coord-check`: the study becomes a plan (src/experiments/study/); with
 * `--plan DIR` the plan is written for a scheduler and nothing runs, else the runs go locally (in this
 * process, or `--jobs N` worker processes) into OUT/study/ and are merged into OUT. A local study is
 * resumable: rerun the same command and finished runs are kept.
 */
import * as os from 'node:os';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { writeCoordCheckOutputs, writeSweepOutputs } from '../experiments/outputs.js';
import { positiveInt } from '../experiments/cli-flags.js';
import { planStudy, writePlan, type StudyKind, type StudyTrainOptions } from '../experiments/study/plan.js';
import { DEFAULT_SCHEDULER, shellWord, type SchedulerOptions } from '../experiments/study/schedulers.js';
import { mergeStudy, type MergeOutcome } from '../experiments/study/merge.js';
import { optimaMarkdown } from '../experiments/sweep.js';
import { verdictLines } from '../experiments/coord-check.js';
import type { Progress, StudyModel } from '../experiments/run-types.js';
import { UsageError } from '../errors.js';
import { readModel } from '../onnx/codec.js';
import { analyzeModel } from '../analysis/index.js';

export interface StudyFlags {
  models?: string;
  baseModel?: string;
  plan?: string;
  jobs?: string;
  slurmCpus: string;
  slurmMem: string;
  slurmTime: string;
  slurmPartition?: string;
  maxParallel?: string;
  k8sImage: string;
  k8sClaim: string;
}

export function studyOptions(cmd: Command): Command {
  return cmd
    .option('--models <list>', 'several models of one architecture at other widths or depths, comma-separated (instead of <model>): m_d and m_L against the first, or --base-model')
    .option('--base-model <file>', 'the base (proxy) model for m_d and m_L of every run (default with --models: the first model)')
    .option('--plan <dir>', 'write the study as run specs plus slurm.sbatch and k8s-indexed-job.yaml into DIR, and run nothing')
    .option('--jobs <n>', 'worker processes for a local study (default: the number of cores; each run uses one onnxruntime thread)')
    .option('--slurm-cpus <n>', 'with --plan: Slurm --cpus-per-task', String(DEFAULT_SCHEDULER.cpusPerTask))
    .option('--slurm-mem <m>', 'with --plan: Slurm --mem (and the Kubernetes memory request)', DEFAULT_SCHEDULER.mem)
    .option('--slurm-time <t>', 'with --plan: Slurm --time', DEFAULT_SCHEDULER.time)
    .option('--slurm-partition <p>', 'with --plan: Slurm --partition')
    .option('--max-parallel <n>', 'with --plan: at most n runs at once (Slurm %n, Kubernetes parallelism)')
    .option('--k8s-image <image>', 'with --plan: the container image with supar-transform installed', DEFAULT_SCHEDULER.image)
    .option('--k8s-claim <name>', 'with --plan: the PersistentVolumeClaim holding the plan folder', DEFAULT_SCHEDULER.volumeClaim);
}

/**
 * The argv prefix that runs this same CLI from any folder, whoever hosts this process (the CLI, a test, a
 * script calling `main` in-process): node, then the entry found from this module's own location. Built
 * (dist/src/cli/…): the package's bin/supar-transform.js. From source (src/cli/….ts, run with tsx): the
 * repository's test/cli-entry.ts with the tsx loader as a file URL, since a job starts in another folder.
 * Never process.argv[1]: a host script is not a CLI, and running it as a worker would run the host again.
 */
export function thisCli(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    const root = path.resolve(path.dirname(here), '..', '..');
    const tsx = pathToFileURL(createRequire(path.join(root, 'package.json')).resolve('tsx')).href;
    return [process.execPath, '--import', tsx, path.join(root, 'test', 'cli-entry.ts')];
  }
  return [process.execPath, path.resolve(path.dirname(here), '..', '..', '..', 'bin', 'supar-transform.js')];
}

function schedulerFlags(f: StudyFlags): SchedulerOptions {
  return {
    cpusPerTask: positiveInt(f.slurmCpus, '--slurm-cpus'),
    mem: f.slurmMem,
    time: f.slurmTime,
    partition: f.slurmPartition,
    parallel: f.maxParallel ? positiveInt(f.maxParallel, '--max-parallel') : undefined,
    image: f.k8sImage,
    volumeClaim: f.k8sClaim,
  };
}

/** Writes the merged result into `out` and prints its table (or verdicts); returns the files written. */
export function writeMerged(o: MergeOutcome, out: string): string[] {
  if (o.merged.kind === 'sweep') {
    process.stdout.write(optimaMarkdown(o.merged.result));
    return writeSweepOutputs(o.merged.result, out);
  }
  const res = o.merged.result;
  process.stdout.write(verdictLines(res).join('\n') + '\n');
  const drifting = res.verdicts.filter((v) => !v.pass);
  process.stdout.write(`${res.verdicts.length - drifting.length} of ${res.verdicts.length} (rule set, block) pairs flat within ×${res.options.threshold} over steps 0–${res.options.steps - 1}\n`);
  return writeCoordCheckOutputs(res, out);
}

/**
 * The study's model files: the positional <model>, or `--models a,b,c`. With several, each is described
 * (width, depth) for the plots, and the base for m_d and m_L is `--base-model` or the first.
 */
export function studyModels(model: string | undefined, f: StudyFlags): { paths: string[]; models?: StudyModel[]; baseModelPath?: string } {
  if (model !== undefined && f.models !== undefined) throw new UsageError('give the model as an argument or as --models a.onnx,b.onnx, not both');
  if (model === undefined && f.models === undefined) throw new UsageError('which model? give model.onnx, or --models a.onnx,b.onnx,… (one architecture at several widths or depths)');
  if (model !== undefined) return { paths: [model], ...(f.baseModel ? { baseModelPath: path.resolve(f.baseModel) } : {}) };
  const paths = f.models!.split(',').map((s) => s.trim()).filter(Boolean);
  if (paths.length < 2) throw new UsageError(`--models '${f.models}': give at least two models, comma-separated`);
  if (new Set(paths.map((p) => path.resolve(p))).size !== paths.length) throw new UsageError(`--models '${f.models}': a model is listed twice`);
  const models = paths.map((p) => {
    const a = analyzeModel(readModel(p).model, path.dirname(path.resolve(p)));
    return { label: path.basename(p).replace(/\.onnx$/, ''), dModel: a.dModel ?? null, nLayers: a.nLayers ?? null };
  });
  if (new Set(models.map((m) => m.label)).size !== models.length) throw new UsageError(`--models '${f.models}': two models have the same file name; rename one`);
  return { paths, models, baseModelPath: path.resolve(f.baseModel ?? paths[0]!) };
}

export async function runStudyCommand(study: StudyKind, modelPaths: string[], dataPath: string | undefined, train: StudyTrainOptions, out: string, f: StudyFlags): Promise<void> {
  const log: Progress = (l) => { process.stderr.write(`${l}\n`); };
  const cli = thisCli();
  const planned = planStudy(study, modelPaths, dataPath, train, cli);
  const sched = schedulerFlags(f);
  if (f.plan) {
    const dir = path.resolve(f.plan);
    writePlan(planned, dir, sched);
    const n = planned.specs.length;
    process.stdout.write(`planned ${n} runs in ${dir}\n  slurm:      cd ${shellWord(dir)} && sbatch slurm.sbatch\n  kubernetes: kubectl apply -f ${shellWord(path.join(dir, 'k8s-indexed-job.yaml'))}\n  one run:    ${[...cli, 'run', dir, '--index', '0'].map(shellWord).join(' ')}\n  then:       ${[...cli, 'merge', dir].map(shellWord).join(' ')}\n`);
    return;
  }
  const jobs = f.jobs ? positiveInt(f.jobs, '--jobs') : os.availableParallelism();
  const dir = path.resolve(out, 'study');
  writePlan(planned, dir, sched);
  // Loaded here, not at the top: onnxruntime-node loads only when a command trains.
  const { makeOnnxTrainRun } = await import('../experiments/train-run.js');
  const { runStudyLocally } = await import('../experiments/study/local.js');
  await runStudyLocally(dir, jobs, cli, makeOnnxTrainRun, log);
  const files = writeMerged(mergeStudy(dir), out);
  log(`wrote ${files.join(', ')} (runs in ${dir})`);
}
