/**
 * `supar-transform run DIR [--index LIST]`: runs planned runs of a study (one spec each; the index also
 * from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX). Idempotent and atomic (src/experiments/study/run.ts).
 */
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { UserInputError } from '../errors.js';
import { readManifest } from '../experiments/study/plan.js';
import { failurePath, resolveIndices } from '../experiments/study/run.js';

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('run <dir>')
    .description('run planned study runs (sweep/coord-check --plan DIR): --index LIST, or the Slurm / Kubernetes array index')
    .option('--index <list>', 'run indices, e.g. 3 or 0,4-7 (default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)')
    .action(async (dir: string, f: { index?: string }) => {
      const m = readManifest(dir);
      const indices = resolveIndices(f.index, process.env, m.runs.length);
      const { makeOnnxTrainRun } = await import('../experiments/train-run.js');
      const { runIndices } = await import('../experiments/study/local.js');
      const outcomes = await runIndices(dir, indices, makeOnnxTrainRun, (l) => { process.stderr.write(`${l}\n`); });
      const failed = outcomes.filter((o) => o.status === 'failed');
      if (failed.length) {
        const first = failed[0];
        if (first.status !== 'failed') return;
        throw new UserInputError(`run ${first.index}${failed.length > 1 ? ` (and ${failed.length - 1} more)` : ''} failed: ${first.failure.error} (record: ${failurePath(dir, first.index)})`, first.failure.exitCode as UserInputError['exitCode']);
      }
    });
}
