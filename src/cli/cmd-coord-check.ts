/**
 * `supar-transform coord-check model.onnx --densities 1,0.5,0.25,0.125,0.0625 --rules sp,supar --steps 10`:
 * mup's coordinate check across densities (paper Fig. 5). Writes coord-check.json/.csv and one SVG per
 * rule set, and prints a verdict per block: the max/min ratio of mean |activation| across densities.
 */
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { runCoordCheck, verdictLines } from '../experiments/coord-check.js';
import { parseDensities, parseLrValue } from '../experiments/sweep.js';
import { writeCoordCheckOutputs } from '../experiments/outputs.js';
import { commonTrainOptions, hyperparameterFlags, runSizeFlags, parseRulesList, positiveInt, positiveNumber, type CommonTrainFlags } from '../experiments/cli-flags.js';

interface CoordFlags extends CommonTrainFlags {
  lr: string;
  threshold: string;
}

export function register(program: Command, _ctx: CliContext): void {
  const cmd = program
    .command('coord-check <model>')
    .description('coordinate check: mean |activation| per block and step across densities (paper Fig. 5)')
    .option('--lr <lr>', 'base learning rate (mup advises one on the large side; too large and a small model\'s own noise dominates)', '2^-10')
    .option('--threshold <r>', 'a block is flat when max/min across densities stays at or below this', '1.5');
  commonTrainOptions(cmd, { steps: '10', out: 'coord-check-out' });
  cmd.action(async (model: string, f: CoordFlags) => {
    const opts = {
      rules: parseRulesList(f.rules),
      densities: parseDensities(f.densities),
      steps: positiveInt(f.steps, '--steps'),
      lr: parseLrValue(f.lr, '--lr'),
      seed: positiveInt(f.seed, '--seed', true),
      threshold: positiveNumber(f.threshold, '--threshold'),
    };
    const log = (l: string): void => { process.stderr.write(`${l}\n`); };
    // Loaded here, not at the top: onnxruntime-node loads only when a command trains.
    const { makeOnnxTrainRun } = await import('../experiments/train-run.js');
    const train = await makeOnnxTrainRun({
      modelPath: model, ...runSizeFlags(f),
      dataFile: f.data, fixedBatch: true, widthMult: f.widthMult ? positiveNumber(f.widthMult, '--width-mult') : undefined,
      hyperparameters: hyperparameterFlags(f, opts.rules),
    });
    const res = await runCoordCheck(opts, train, log);
    const files = writeCoordCheckOutputs(res, f.out);
    process.stdout.write(verdictLines(res).join('\n') + '\n');
    const drifting = res.verdicts.filter((v) => !v.pass);
    process.stdout.write(`${res.verdicts.length - drifting.length} of ${res.verdicts.length} (rule set, block) pairs flat within ×${opts.threshold} over steps 0–${opts.steps - 1}\n`);
    log(`wrote ${files.join(', ')}`);
  });
}
