/**
 * `supar-transform coord-check model.onnx --densities 1,0.5,0.25,0.125,0.0625 --rules sp,supar --steps 10`:
 * mup's coordinate check across densities (paper Fig. 5). Writes coord-check.json/.csv and one SVG per
 * rule set, and prints a verdict per block: the max/min ratio of mean |activation| across densities.
 */
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { parseDensities, parseLrValue } from '../experiments/sweep.js';
import { runStudyCommand, studyModels, studyOptions, type StudyFlags } from './study-driver.js';
import { commonTrainOptions, hyperparameterFlags, parseRulesList, positiveInt, positiveNumber, type CommonTrainFlags } from '../experiments/cli-flags.js';

interface CoordFlags extends CommonTrainFlags, StudyFlags {
  lr: string;
  threshold: string;
}

export function register(program: Command, _ctx: CliContext): void {
  const cmd = program
    .command('coord-check [model]')
    .description('coordinate check: mean |activation| per block and step across densities (paper Fig. 5)')
    .option('--lr <lr>', 'base learning rate (mup advises one on the large side; too large and a small model\'s own noise dominates)', '2^-10')
    .option('--threshold <r>', 'a block is flat when max/min across densities stays at or below this', '1.5');
  commonTrainOptions(cmd, { steps: '10', out: 'coord-check-out' });
  studyOptions(cmd);
  cmd.action(async (model: string | undefined, f: CoordFlags) => {
    const chosen = studyModels(model, f);
    const opts = {
      rules: parseRulesList(f.rules),
      densities: parseDensities(f.densities),
      steps: positiveInt(f.steps, '--steps'),
      lr: parseLrValue(f.lr, '--lr'),
      seed: positiveInt(f.seed, '--seed', true),
      threshold: positiveNumber(f.threshold, '--threshold'),
    };
    const train = {
      batch: positiveInt(f.batch, '--batch'), seq: f.seq ? positiveInt(f.seq, '--seq') : undefined,
      fixedBatch: true, widthMult: f.widthMult ? positiveNumber(f.widthMult, '--width-mult') : undefined,
      hyperparameters: hyperparameterFlags(f, opts.rules),
      ...(chosen.baseModelPath ? { baseModelPath: chosen.baseModelPath } : {}),
    };
    await runStudyCommand({ kind: 'coord-check', options: { ...opts, ...(chosen.models ? { models: chosen.models } : {}) } }, chosen.paths, f.data, train, f.out, f);
  });
}
