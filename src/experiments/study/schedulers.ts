/**
 * Job files for the schedulers ML teams already run: a Slurm job array (`sbatch slurm.sbatch`, one run
 * per array index, read from SLURM_ARRAY_TASK_ID) and a Kubernetes Indexed Job (one pod per completion
 * index, read from JOB_COMPLETION_INDEX). Both call the CLI that wrote the plan with `run DIR`; the runner
 * is idempotent, so resubmitting either after a cancel or a node failure finishes only what is missing.
 */
import { stringify } from 'yaml';
import type { StudyManifest } from './plan.js';

export interface SchedulerOptions {
  /** Slurm: --cpus-per-task (and the runner's onnxruntime threads stay 1 per run). */
  cpusPerTask: number;
  /** Slurm --mem, e.g. "4G". */
  mem: string;
  /** Slurm --time, e.g. "01:00:00". */
  time: string;
  /** Slurm --partition (omitted when undefined). */
  partition?: string;
  /** At most this many array tasks at once (Slurm `%k`, Kubernetes `parallelism`); undefined = no limit / all. */
  parallel?: number;
  /** Kubernetes container image holding the same supar-transform install (and node) as `cli`. */
  image: string;
  /** Kubernetes PersistentVolumeClaim holding the study folder, mounted at the same path as here. */
  volumeClaim: string;
}

export const DEFAULT_SCHEDULER: SchedulerOptions = { cpusPerTask: 1, mem: '4G', time: '01:00:00', image: 'supar-transform:latest', volumeClaim: 'supar-study' };

export interface JobFile {
  name: string;
  text: string;
  mode?: number;
}

/** A POSIX shell word: quoted unless it is plainly safe. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function slurmScript(m: StudyManifest, dir: string, o: SchedulerOptions): string {
  const n = m.runs.length;
  const array = `0-${n - 1}${o.parallel ? `%${o.parallel}` : ''}`;
  const lines = [
    '#!/bin/bash',
    `#SBATCH --job-name=supar-${m.study.kind}`,
    `#SBATCH --array=${array}`,
    `#SBATCH --cpus-per-task=${o.cpusPerTask}`,
    `#SBATCH --mem=${o.mem}`,
    `#SBATCH --time=${o.time}`,
    ...(o.partition ? [`#SBATCH --partition=${o.partition}`] : []),
    `#SBATCH --output=${dir}/logs/%A_%a.out`,
    `#SBATCH --chdir=${dir}`,
    '# One run of the study per array index (the runner reads SLURM_ARRAY_TASK_ID). Resubmitting skips',
    '# finished runs; to rerun only some, pass their indices: sbatch --array=3,7 slurm.sbatch',
    `exec ${[...m.cli, 'run', dir].map(shellWord).join(' ')}`,
    '',
  ];
  return lines.join('\n');
}

export function k8sIndexedJob(m: StudyManifest, dir: string, o: SchedulerOptions): string {
  const n = m.runs.length;
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: `supar-${m.study.kind}-${m.runs[0]?.hash.slice(0, 8) ?? 'empty'}` },
    spec: {
      completionMode: 'Indexed',
      completions: n,
      parallelism: Math.min(n, o.parallel ?? n),
      backoffLimitPerIndex: 2,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{
            name: 'run',
            image: o.image,
            // The runner reads JOB_COMPLETION_INDEX, which Kubernetes sets in each pod of an Indexed Job.
            command: [...m.cli, 'run', dir],
            workingDir: dir,
            resources: { requests: { cpu: String(o.cpusPerTask), memory: o.mem.replace(/G$/, 'Gi').replace(/M$/, 'Mi') } },
            volumeMounts: [{ name: 'study', mountPath: dir }],
          }],
          volumes: [{ name: 'study', persistentVolumeClaim: { claimName: o.volumeClaim } }],
        },
      },
    },
  };
  return stringify(job, { lineWidth: 0 });
}

function readme(m: StudyManifest, dir: string): string {
  const n = m.runs.length;
  return `# A planned ${m.study.kind} (${n} runs)

Written by supar-transform. Every run is one spec in \`runs/\` (model ${m.model.path}, sha256 ${m.model.sha256.slice(0, 12)}…);
a finished run writes \`results/NNNNN.json\`, a failed one \`results/NNNNN.failed.json\`. Runs are independent and
idempotent: a run whose result is already there (same spec hash) is skipped.

- One machine: \`${[...m.cli, 'run', dir, '--index', '0'].map(shellWord).join(' ')}\` (or any index 0…${n - 1}).
- Slurm: \`cd ${dir} && sbatch slurm.sbatch\` (a job array of ${n}). Rerun what is missing with
  \`sbatch --array=LIST slurm.sbatch\`; \`merge\` prints LIST.
- Kubernetes: put this folder on the PersistentVolumeClaim named in \`k8s-indexed-job.yaml\` (mounted at the same
  path), use an image with the same supar-transform install, then \`kubectl apply -f k8s-indexed-job.yaml\`.
- When the runs are done: \`${[...m.cli, 'merge', dir].map(shellWord).join(' ')}\` writes the same JSON, CSV, SVG
  and tables as a local run into this folder, and lists missing or failed runs (\`--allow-partial\` plots what exists).
`;
}

export function schedulerFiles(m: StudyManifest, dir: string, o: SchedulerOptions): JobFile[] {
  return [
    { name: 'slurm.sbatch', text: slurmScript(m, dir, o), mode: 0o755 },
    { name: 'k8s-indexed-job.yaml', text: k8sIndexedJob(m, dir, o) },
    { name: 'README.md', text: readme(m, dir) },
  ];
}
