/**
 * `supar-transform train model.supar.onnx`: builds the train-step graph (autodiff + AdamW/SGD with the
 * model's LR groups) and runs it with onnxruntime-node; logs the loss, saves the trained model.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { ExitCode, UsageError, UserInputError } from '../errors.js';
import { readModel } from '../onnx/codec.js';
import { analyzeModel } from '../analysis/index.js';
import { progress } from './progress.js';
import { openFeedSource, withTargetShape, type FeedOptions } from '../train/feeds.js';
import { checkWebGpuKernels, formatKernelReport } from '../runtime/kernels.js';
import { EP_CHOICES, type EpChoice } from '../runtime/providers.js';
import { describeObjective, objectiveOfModel, parseObjective, tokenVocab, type Objective } from '../train/objective.js';
import { createTrainer, type Feeds } from '../train/runner.js';
import { buildTrainStep } from '../train/train-step.js';
import { LR_GROUPS_FORMAT, type LrGroupsFile } from '../train/types.js';
import type { ModelProto } from 'onnx-buf';

interface TrainFlags {
  steps: string; lr: string; batch?: string; seq?: string; data?: string; labels?: string; objective?: string; maskToken?: string;
  optimizer: string; ep: string; seed: string;
  log?: string; save?: string; lrGroups?: string; loss?: string; logits?: string; threads?: string;
  beta1: string; beta2: string; eps: string; weightDecay: string; momentum: string;
}

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('train <model>')
    .description('train a transformed model with its LR groups on onnxruntime (CPU, CUDA or WebGPU)')
    .option('--steps <n>', 'optimizer steps', '100')
    .option('--lr <x>', 'base learning rate (each group multiplies it)', '1e-3')
    .option('--objective <kind>', 'next-token, class, mse or mlm (default: from the model\'s inputs and outputs)')
    .option('--batch <n>', 'examples per batch (default: the model\'s fixed batch, else 8)')
    .option('--seq <n>', 'tokens (or audio samples) per example (default: the model\'s fixed length, else 64 tokens or 1600 samples)')
    .option('--data <spec>', 'token file (.json, .u16/.bin, .i32, .npy), a text file (byte tokens), synthetic:count|repeat|const, or inputs X.npy (class, mse)')
    .option('--labels <file>', 'class ids or regression targets (.npy), one row per row of --data X.npy')
    .option('--mask-token <id>', 'mlm: the token id that replaces masked tokens (default: the last id of the vocabulary)')
    .option('--optimizer <kind>', 'adamw or sgd', 'adamw')
    .option('--beta1 <x>', 'AdamW β1', '0.9')
    .option('--beta2 <x>', 'AdamW β2', '0.999')
    .option('--eps <x>', 'AdamW ε', '1e-8')
    .option('--weight-decay <x>', 'weight decay (times each group\'s multiplier; decoupled for AdamW)', '0')
    .option('--momentum <x>', 'SGD momentum', '0')
    .option('--loss <kind>', 'cross_entropy or mse (mse = --objective mse; kept for older scripts)')
    .option('--logits <name>', 'model output the loss reads (default: detected)')
    .option('--lr-groups <file>', 'LR groups JSON (default: the model\'s supar.lr_groups metadata)')
    .option('--ep <ep>', 'execution provider: cpu, cuda, webgpu, or auto (cuda if installed, else webgpu if an adapter starts, else cpu)', 'cpu')
    .option('--threads <n>', 'onnxruntime intra-op threads')
    .option('--seed <n>', 'data seed', '0')
    .option('--log <file>', 'write the loss per step (.csv or .json)')
    .option('--save <file>', 'write the trained model (the input model with trained weights, masks intact)')
    .action(async (file: string, flags: TrainFlags) => runTrain(file, flags));
}

async function runTrain(file: string, flags: TrainFlags): Promise<void> {
  const steps = intFlag('--steps', flags.steps, 1);
  const lr = numFlag('--lr', flags.lr);
  const optimizerKind = choice('--optimizer', flags.optimizer, ['adamw', 'sgd'] as const);
  const ep: EpChoice = choice('--ep', flags.ep, EP_CHOICES);
  const loss = flags.loss === undefined ? undefined : choice('--loss', flags.loss, ['cross_entropy', 'mse'] as const);
  const requested = parseObjective(flags.objective) ?? (loss === 'mse' ? 'mse' : undefined);
  const loaded = readModel(file);
  const groups = flags.lrGroups ? readLrGroupsFile(flags.lrGroups) : lrGroupsFromMetadata(loaded.model, file);
  const readoutOutput = analyzeModel(loaded.model, loaded.baseDir).logits?.output;
  const objective = objectiveOfModel(loaded.model, { requested, output: flags.logits, readoutOutput });
  if (loss === 'cross_entropy' && objective.loss !== 'cross_entropy') throw new UsageError(`--loss cross_entropy: output '${objective.output}' is not class logits (${objective.reason}); pass --logits NAME or --objective class`);
  const ts = buildTrainStep(loaded.model, loaded.baseDir, groups, {
    objective, optimizer: {
      kind: optimizerKind, beta1: numFlag('--beta1', flags.beta1), beta2: numFlag('--beta2', flags.beta2), eps: numFlag('--eps', flags.eps),
      weightDecay: numFlag('--weight-decay', flags.weightDecay), momentum: numFlag('--momentum', flags.momentum),
    },
  });
  const gpuFallbacks = [...(ep === 'cuda' || ep === 'auto' ? [ts.kernelReport.train] : []), ...(ep === 'webgpu' ? [checkWebGpuKernels(ts.train)] : [])];
  for (const r of gpuFallbacks) if (r.fallbacks.length > 0) process.stderr.write(`warning: ${formatKernelReport(r)}\n`);
  const feedOptionsGiven: FeedOptions = {
    data: flags.data, labels: flags.labels, seed: intFlag('--seed', flags.seed, 0),
    batch: flags.batch === undefined ? undefined : intFlag('--batch', flags.batch, 1), seq: flags.seq === undefined ? undefined : intFlag('--seq', flags.seq, 1),
    inputVocab: objective.tokenInput ? tokenVocab(loaded.model.graph!, objective.tokenInput) : undefined,
    maskToken: flags.maskToken === undefined ? undefined : intFlag('--mask-token', flags.maskToken, 0),
  };
  const feedOptions = await withTargetShape(loaded.model, ts.io, objective, feedOptionsGiven);
  const source = openFeedSource(ts.io, objective, feedOptions);
  const hint = requested ? undefined : await mlmHint(loaded.model, objective, () => openFeedSource(ts.io, objective, feedOptions).next());
  const trainer = await createTrainer({ train: ts.train, io: ts.io, forward: loaded, ep, threads: flags.threads ? intFlag('--threads', flags.threads, 1) : undefined });
  process.stderr.write(`${describeObjective(objective)}\n${hint ? `${hint}\n` : ''}`);
  const losses: number[] = [];
  const started = process.hrtime.bigint();
  const bar = progress('train', steps);
  const { batch, seq } = source.sizes;
  try {
    for (let t = 0; t < steps; t++) {
      const r = await trainer.step(source.next(), lr);
      losses.push(r.loss);
      bar.tick(1, `loss ${r.loss.toFixed(4)}`);
      if (!Number.isFinite(r.loss)) {
        throw new UserInputError(`loss is ${r.loss} at step ${t + 1}: training diverged; lower --lr (now ${lr})`, ExitCode.runtime);
      }
    }
    bar.done();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (flags.log) writeLossLog(flags.log, losses);
    if (flags.save) await trainer.save(flags.save);
    const tail = losses.slice(-Math.min(10, losses.length));
    process.stdout.write(`trained ${steps} steps on ${trainer.ep} (${source.description}, batch ${batch}${seq === undefined ? '' : `×${seq}`}, ${optimizerKind} lr ${lr}): ` +
      `loss ${losses[0]!.toFixed(4)} → ${losses.at(-1)!.toFixed(4)} (last ${tail.length} mean ${(tail.reduce((a, b) => a + b, 0) / tail.length).toFixed(4)}), ` +
      `${(steps / seconds).toFixed(2)} steps/s${flags.save ? `; saved ${flags.save}` : ''}\n`);
  } finally {
    bar.done(); // clear the progress line before the summary or an error
    await trainer.release();
  }
}

/** A hint line when next-token training meets attention that is not causal (a bidirectional encoder). */
async function mlmHint(model: ModelProto, objective: Objective, feeds: () => Feeds): Promise<string | undefined> {
  if (objective.kind !== 'next-token' || !objective.tokenInput) return undefined;
  const { probeCausal } = await import('../train/forward-probe.js');
  const causal = await probeCausal(model, feeds(), objective.tokenInput, objective.output, objective.classes!);
  if (causal !== false) return undefined;
  return `hint: the attention is not causal (the last token changes the logits at position 0), so next-token training lets each position see its target; for a bidirectional encoder pass --objective mlm`;
}

/** The LR groups stored by the transform in metadata_props `supar.lr_groups`. */
export function lrGroupsFromMetadata(model: ModelProto, file: string): LrGroupsFile {
  const entry = model.metadataProps.find((p) => p.key === 'supar.lr_groups');
  if (!entry) throw new UserInputError(`${file}: has no supar.lr_groups metadata; transform it first (supar-transform ${file}) or pass --lr-groups FILE`);
  return parseLrGroups(entry.value, `${file} (supar.lr_groups)`);
}

export function readLrGroupsFile(file: string): LrGroupsFile {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    throw new UserInputError(`--lr-groups ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, ExitCode.io);
  }
  return parseLrGroups(text, file);
}

function parseLrGroups(text: string, label: string): LrGroupsFile {
  let v: LrGroupsFile;
  try { v = JSON.parse(text) as LrGroupsFile; } catch (e) {
    throw new UserInputError(`${label}: not valid JSON (${(e as Error).message})`);
  }
  if (v?.format !== LR_GROUPS_FORMAT || !Array.isArray(v.groups)) throw new UserInputError(`${label}: not an LR groups file (expected format '${LR_GROUPS_FORMAT}' with a groups array)`);
  return v;
}

function writeLossLog(file: string, losses: number[]): void {
  const text = file.toLowerCase().endsWith('.json')
    ? `${JSON.stringify({ step: losses.map((_, i) => i + 1), loss: losses })}\n`
    : `step,loss\n${losses.map((l, i) => `${i + 1},${l}`).join('\n')}\n`;
  fs.writeFileSync(file, text);
}

function numFlag(flag: string, v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`${flag} ${v}: not a number`);
  return x;
}

function intFlag(flag: string, v: string, min: number): number {
  const x = Number(v);
  if (!Number.isInteger(x) || x < min) throw new UsageError(`${flag} ${v}: expected a whole number ≥ ${min}`);
  return x;
}

function choice<T extends string>(flag: string, v: string, options: readonly T[]): T {
  if (!(options as readonly string[]).includes(v)) throw new UsageError(`${flag} ${v}: expected one of ${options.join(', ')}`);
  return v as T;
}
