/**
 * `supar-transform sweep model.onnx --densities 1,0.5,0.25 --lrs 2^-12:2^-4 --steps 100 --rules sp,supar`:
 * trains every (rule set, density, base LR) and writes sweep.json/.csv/.svg, sweep.optima.svg (optimal LR vs the
 * swept dimension) and the optimal-LR table
 * (paper Fig. 1). Progress on stderr, the table on stdout. A study: `--plan DIR` for a scheduler, else local
 * runs (`--jobs N`) merged (src/cli/study-driver.ts).
 */
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { parseDensities, parseLrGrid } from '../experiments/sweep.js';
import { runStudyCommand, studyModels, studyOptions, type StudyFlags } from './study-driver.js';
import { preflightTrainRun } from '../experiments/preflight.js';
import { commonTrainOptions, hyperparameterFlags, parseEp, runSizeFlags, parseRulesList, positiveInt, positiveNumber, type CommonTrainFlags } from '../experiments/cli-flags.js';

interface SweepFlags extends CommonTrainFlags, StudyFlags {
  lrs: string;
  lastK: string;
}

export function register(program: Command, _ctx: CliContext): void {
  const cmd = program
    .command('sweep [model]')
    .description('LR sweep per density and rule set: final loss vs log2 LR, optimum per density (paper Fig. 1)')
    .option('--lrs <grid>', 'base LRs: LO:HI on a log2 grid (step 1, or LO:HI:STEP), or a list', '2^-12:2^-4')
    .option('--last-k <n>', 'final loss = mean of the last k steps', '10');
  commonTrainOptions(cmd, { steps: '100', out: 'sweep-out' });
  studyOptions(cmd);
  cmd.action(async (model: string | undefined, f: SweepFlags) => {
    const chosen = studyModels(model, f);
    const opts = {
      rules: parseRulesList(f.rules),
      densities: parseDensities(f.densities),
      lrs: parseLrGrid(f.lrs),
      steps: positiveInt(f.steps, '--steps'),
      seed: positiveInt(f.seed, '--seed', true),
      lastK: positiveInt(f.lastK, '--last-k'),
    };
    const train = {
      ...runSizeFlags(f),
      fixedBatch: false, widthMult: f.widthMult ? positiveNumber(f.widthMult, '--width-mult') : undefined,
      hyperparameters: hyperparameterFlags(f, opts.rules),
      ...(chosen.baseModelPath ? { baseModelPath: chosen.baseModelPath } : {}),
      // Only when not the default, so that CPU plans keep their run-spec hashes.
      ...(parseEp(f.ep) !== 'cpu' ? { ep: parseEp(f.ep) } : {}),
    };
    // The objective and sizes are checked here, once per model: a conflicting --batch is one line, not a failure in every run.
    const objectives = chosen.paths.map((p) => preflightTrainRun(p, train));
    process.stderr.write(`${objectives[0]}\n`);
    await runStudyCommand({ kind: 'sweep', options: { ...opts, ...(chosen.models ? { models: chosen.models } : {}) } }, chosen.paths, f.data, train, f.out, f);
  });
}
