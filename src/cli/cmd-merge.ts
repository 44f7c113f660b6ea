/**
 * `supar-transform merge DIR [--allow-partial] [--out DIR]`: a planned study's results into the same JSON,
 * CSV, SVG and tables a local sweep or coord check writes, and the list of missing or failed runs.
 */
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { indexList, mergeStudy } from '../experiments/study/merge.js';
import { writeMerged } from './study-driver.js';

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('merge <dir>')
    .description('merge a planned study\'s results (JSON, CSV, SVG, optima / verdicts); lists missing and failed runs')
    .option('--allow-partial', 'merge what exists when runs are missing or failed')
    .option('--out <dir>', 'folder for the merged outputs (default: the study folder)')
    .action((dir: string, f: { allowPartial?: boolean; out?: string }) => {
      const o = mergeStudy(dir, { allowPartial: f.allowPartial });
      const files = writeMerged(o, f.out ?? dir);
      if (o.missing.length) process.stderr.write(`missing runs: ${indexList(o.missing)}\n`);
      for (const x of o.failed) process.stderr.write(`failed run ${x.index}: ${x.error}\n`);
      process.stderr.write(`merged ${o.manifest.runs.length - o.missing.length - o.failed.length} of ${o.manifest.runs.length} runs; wrote ${files.join(', ')}\n`);
    });
}
