/** Flags shared by the experiment commands (coord-check, sweep) and their parsing into checked values. */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { Hyperparameters } from '../rules/types.js';
import { EP_CHOICES, type EpChoice } from '../runtime/providers.js';
import { parseObjective, type ObjectiveKind } from '../train/objective.js';

export interface CommonTrainFlags {
  rules: string;
  densities: string;
  steps: string;
  seed: string;
  batch?: string;
  seq?: string;
  objective?: string;
  data?: string;
  widthMult?: string;
  sigmaBase?: string;
  alphaInput?: string;
  alphaOutput?: string;
  out: string;
  ep?: string;
}

export function commonTrainOptions(cmd: Command, defaults: { steps: string; out: string }): Command {
  return cmd
    .option('--rules <list>', 'rule sets to compare (built-in ids or rule files), comma-separated', 'sp,supar')
    .option('--densities <list>', 'densities, comma-separated (fractions like 1/16 allowed)', '1,0.5,0.25,0.125,0.0625')
    .option('--steps <n>', 'optimizer steps per run', defaults.steps)
    .option('--seed <n>', 'seed for masks, init and data (the same for every run)', '0')
    .option('--batch <n>', 'examples per batch (default: the model\'s fixed batch, else 4)')
    .option('--seq <n>', 'sequence length (default: the model\'s fixed length, else 32 tokens or 1600 audio samples)')
    .option('--objective <kind>', 'next-token, class, mse or mlm (default: from the model\'s inputs and outputs, as train)')
    .option('--data <file>', 'a text file, tokenized as bytes (default: a synthetic Markov language, 4 successors per token)')
    .option('--width-mult <m>', 'width multiplier m_d passed to the transform (default 1)')
    .option('--sigma-base <s>', 'σ_base for every rule set (default: the rule set\'s)')
    .option('--alpha-input <a>', 'α_input for every rule set (SP ignores it)')
    .option('--alpha-output <a>', 'α_output for every rule set (SP ignores it)')
    .option('--out <dir>', 'folder for JSON, CSV and SVG results', defaults.out)
    .option('--ep <ep>', 'execution provider: cpu, cuda, webgpu or auto', 'cpu');
}

/** The size and objective options of `makeOnnxTrainRun` from the flags (absent flags: the model's fixed sizes, else defaults). */
export function runSizeFlags(f: CommonTrainFlags): { batch?: number; seq?: number; objective?: ObjectiveKind } {
  return {
    batch: f.batch === undefined ? undefined : positiveInt(f.batch, '--batch'),
    seq: f.seq === undefined ? undefined : positiveInt(f.seq, '--seq'),
    objective: parseObjective(f.objective),
  };
}

export function positiveInt(text: string, flag: string, allowZero = false): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1)) throw new UsageError(`${flag}: '${text}' is not a ${allowZero ? 'non-negative' : 'positive'} integer`);
  return v;
}

export function positiveNumber(text: string, flag: string): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0) throw new UsageError(`${flag}: '${text}' is not a positive number`);
  return v;
}

export function parseRulesList(text: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new UsageError(`--rules: '${text}' names no rule set; write e.g. sp,supar`);
  return [...new Set(list)];
}

/** The hyperparameter flags as a per-rule-set map for the transform (the same values for every rule set). */
export function hyperparameterFlags(f: CommonTrainFlags, rules: string[]): Record<string, Partial<Hyperparameters>> | undefined {
  const hp: Partial<Hyperparameters> = {};
  if (f.sigmaBase !== undefined) hp.sigma_base = positiveNumber(f.sigmaBase, '--sigma-base');
  if (f.alphaInput !== undefined) hp.alpha_input = positiveNumber(f.alphaInput, '--alpha-input');
  if (f.alphaOutput !== undefined) hp.alpha_output = positiveNumber(f.alphaOutput, '--alpha-output');
  return Object.keys(hp).length ? Object.fromEntries(rules.map((r) => [r, hp])) : undefined;
}

export function parseEp(text: string | undefined): EpChoice {
  const v = text ?? 'cpu';
  if (!(EP_CHOICES as readonly string[]).includes(v)) throw new UsageError(`--ep ${v}: expected one of ${EP_CHOICES.join(', ')}`);
  return v as EpChoice;
}
