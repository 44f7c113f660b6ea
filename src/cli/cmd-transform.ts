/**
 * `supar-transform [transform] model.onnx --density 0.125`: the default command. Writes
 * `<model>.supar.onnx`, `.supar.lr.json` and `.supar.report.json` next to the input (or at -o), prints the
 * human summary (or, with --json, a machine-readable result). Nothing is written on an error or --dry-run.
 */
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { UsageError } from '../errors.js';
import { readModel } from '../onnx/codec.js';
import { defaultThreads, JobPool } from '../passes/job-pool.js';
import type { ExternalDataMode } from '../onnx/external.js';
import { checkOutputPath, defaultOutputPath, PASSES, transform, writeTransformOutputs } from '../transform.js';
import { addTransformFlags, toTransformOptions, type TransformFlags } from './transform-options.js';
import { progress } from './progress.js';
import { parseObjective } from '../train/objective.js';

interface CommandFlags extends TransformFlags {
  output?: string;
  json?: boolean;
  dryRun?: boolean;
  externalData?: string;
  emitTrain?: boolean;
  objective?: string;
  html?: boolean;
  threads?: string;
}

const EXTERNAL_MODES = ['auto', 'always', 'never'];

export function register(program: Command, _ctx: CliContext): void {
  const cmd = program
    .command('transform <model>', { isDefault: true })
    .description('rewrite a model into a sparse, SµPar-parameterized, training-ready model (the default command)');
  addTransformFlags(cmd)
    .option('-o, --output <file>', 'output model (default <model>.supar.onnx beside the input)')
    .option('--json', 'print a machine-readable result (files, report) on stdout instead of the summary')
    .option('--dry-run', 'plan and report, write nothing')
    .option('--external-data <mode>', 'tensor data in a side file: auto (over 1.8 GiB, or when the input has one), always, never', 'auto')
    .option('--emit-train', 'also write the train-step graph <model>.supar.train.onnx')
    .option('--objective <kind>', 'loss of the train-step graph: next-token, class, mse, mlm (default: from the model\'s outputs, as train)')
    .option('--no-html', 'do not write the report page <model>.supar.report.html')
    .option('--threads <n>', 'worker threads reading the weights for the analysis and drawing masks and initial values (default: the cores available, at most 8; 1 = none)')
    .action(async (file: string, flags: CommandFlags) => {
      await runTransform(file, flags);
    });
}

export async function runTransform(file: string, flags: CommandFlags): Promise<void> {
  if (flags.externalData !== undefined && !EXTERNAL_MODES.includes(flags.externalData)) {
    throw new UsageError(`--external-data '${flags.externalData}': use one of ${EXTERNAL_MODES.join(', ')}`);
  }
  const threads = parseThreads(flags.threads);
  const objectiveKind = parseObjective(flags.objective);
  if (objectiveKind && !flags.emitTrain) throw new UsageError(`--objective ${objectiveKind}: only used with --emit-train`);
  const options = { ...toTransformOptions(flags), emitTrain: flags.emitTrain && objectiveKind ? { objectiveKind } : flags.emitTrain };
  const outPath = flags.output ?? defaultOutputPath(file);
  if (!flags.dryRun) checkOutputPath(outPath, file);
  // Stages on a terminal's stderr: read, analyze, each pass, write.
  const bar = progress('transform', PASSES.length + 3);
  let result: Awaited<ReturnType<typeof transform>>;
  let files: Awaited<ReturnType<typeof writeTransformOutputs>> | null;
  // One set of worker threads (started on first use) reads external weights for the analysis, then writes.
  const nThreads = threads ?? defaultThreads();
  const pool = nThreads > 1 ? new JobPool(nThreads) : undefined;
  try {
    bar.tick(0, 'read');
    const input = readModel(file);
    // The CLI drops the input afterwards: rewrite weights inside its buffers (one copy of the model in memory).
    // New values are computed while writing, tensor by tensor (the streaming path: bounded memory).
    result = await transform(input, { ...options, inPlace: true, deferValues: true, pool, onStage: (stage) => bar.tick(1, stage) });
    bar.tick(1, flags.dryRun ? 'done' : 'write');
    if (flags.dryRun) {
      result.deferred?.measure();
      result.refreshReport();
    }
    files = flags.dryRun ? null : await writeTransformOutputs(result, outPath, {
      externalData: flags.externalData as ExternalDataMode, html: flags.html, threads: nThreads, pool, freeBytes: freeBytesHook(),
    });
  } finally {
    bar.done(); // clear the line before the summary or an error message
    await pool?.close();
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ files: files && relativeFiles(files), report: result.report }, null, 2)}\n`);
    return;
  }
  process.stdout.write(result.summaryText);
  if (files) process.stdout.write(`wrote ${files.model}\n      ${files.lrGroups}\n      ${files.report}\n${files.reportHtml ? `      ${files.reportHtml}\n` : ''}${files.train ? `      ${files.train}\n` : ''}${files.eval ? `      ${files.eval}\n` : ''}`);
  else process.stdout.write('dry run: nothing written\n');
}

function parseThreads(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= 1 && n <= 256)) throw new UsageError(`--threads '${v}': must be a whole number from 1 to 256`);
  return n;
}

/** Test hook (docs/transform.md): SUPAR_FREE_BYTES=<n> stands in for the output folder's free space. */
function freeBytesHook(): number | undefined {
  const v = process.env.SUPAR_FREE_BYTES;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new UsageError(`SUPAR_FREE_BYTES '${v}': must be a whole number of bytes`);
  return n;
}

function relativeFiles(files: object): Record<string, string> {
  return Object.fromEntries(Object.entries(files).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
}
