/**
 * The density-transfer experiment (paper Fig. 1 and Fig. 5 at CPU scale; docs/transfer.md):
 *   npm run experiment:transfer                 # full run, about an hour on 2 cores
 *   npm run experiment:transfer -- --reduced    # the 10–15 minute check whose results docs/transfer.md shows
 * A GPT-style model (width 256, the paper's base width, so m_d = 1) is built with fixtures/gpt-builder.ts
 * into a temp folder, trained on real text read at run time from installed packages (src/experiments/
 * text-corpus.ts, byte-level), at densities 1 … 1/16 under SP and SµPar:
 *   1. an LR sweep per density (final train loss vs log2 LR, optimum per density);
 *   2. a coordinate check (mean |activation| per block over the first 10 steps, per density).
 * Writes docs/img/transfer-<tag>.svg, docs/img/coord-check-<tag>-lr<LR>.<rules>.svg, docs/results/*.json|csv
 * and docs/results/transfer-<tag>.optima.md. Progress on stderr.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { encodeModel } from '../src/onnx/codec.js';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { loadTextCorpus } from '../src/experiments/text-corpus.js';
import { makeOnnxTrainRun } from '../src/experiments/train-run.js';
import { optimaMarkdown, parseDensities, parseLrGrid, runSweep, sweepCsv } from '../src/experiments/sweep.js';
import { sweepFigure } from '../src/experiments/sweep-figures.js';
import { coordCsv, coordFigure, runCoordCheck, verdictLines } from '../src/experiments/coord-check.js';
import { figureSvg } from '../src/experiments/plot.js';
import { resultJson, safeName } from '../src/experiments/outputs.js';
import type { Hyperparameters } from '../src/rules/types.js';

/**
 * Hyperparameters per rule set. 'paper': the values of the paper's Fig. 1 runs (App. E, Tables 3 and 4):
 * SP init std 2.166e-2; µP/SµPar σ_base 0.0866, α_input 9.1705, α_output 1.0951835 (tuned on a dense
 * width-256 proxy, which is our width). 'plain': σ_base 0.02 and no multipliers for both.
 */
const HYPERPARAMETERS: Record<string, Record<string, Partial<Hyperparameters>>> = {
  paper: {
    sp: { sigma_base: 0.02166 },
    supar: { sigma_base: 0.08665602, alpha_input: 9.1705, alpha_output: 1.0951835 },
    mup: { sigma_base: 0.08665602, alpha_input: 9.1705, alpha_output: 1.0951835 },
  },
  plain: {
    sp: { sigma_base: 0.02, alpha_input: 1, alpha_output: 1 },
    supar: { sigma_base: 0.02, alpha_input: 1, alpha_output: 1 },
    mup: { sigma_base: 0.02, alpha_input: 1, alpha_output: 1 },
  },
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Full run and reduced run settings; any can be overridden by a flag. */
const PRESETS = {
  full: { width: '256', layers: '2', heads: '4', seq: '64', batch: '8', steps: '300', lastK: '30', lrs: '2^-12:2^-4', densities: '1,1/2,1/4,1/8,1/16', threads: '2', coordSteps: '10', coordLrs: '2^-10,2^-7' },
  reduced: { width: '256', layers: '2', heads: '4', seq: '64', batch: '8', steps: '50', lastK: '10', lrs: '2^-11:2^-5', densities: '1,1/2,1/4,1/8,1/16', threads: '1', coordSteps: '10', coordLrs: '2^-10,2^-7' },
};

function options(): Record<keyof typeof PRESETS.full, string> & { tag: string; rules: string[]; out: string; skipCoord: boolean; skipSweep: boolean; hp: string; seed: number } {
  const flag = { type: 'string' } as const;
  const { values } = parseArgs({
    options: {
      reduced: { type: 'boolean', default: false }, tag: flag, rules: flag, out: flag, 'skip-coord': { type: 'boolean', default: false }, 'skip-sweep': { type: 'boolean', default: false }, hp: { type: 'string', default: 'paper' }, seed: { type: 'string', default: '0' },
      width: flag, layers: flag, heads: flag, seq: flag, batch: flag, steps: flag, 'last-k': flag, lrs: flag, densities: flag, threads: flag, 'coord-steps': flag, 'coord-lrs': flag,
    },
  });
  const preset = values.reduced ? PRESETS.reduced : PRESETS.full;
  const pick = (k: keyof typeof preset, flagName: string = k): string => (values as unknown as Record<string, string | undefined>)[flagName] ?? preset[k];
  return {
    width: pick('width'), layers: pick('layers'), heads: pick('heads'), seq: pick('seq'), batch: pick('batch'), steps: pick('steps'),
    lastK: pick('lastK', 'last-k'), lrs: pick('lrs'), densities: pick('densities'), threads: pick('threads'), coordSteps: pick('coordSteps', 'coord-steps'), coordLrs: pick('coordLrs', 'coord-lrs'),
    tag: values.tag ?? `${values.reduced ? 'reduced' : 'full'}${values.hp && values.hp !== 'paper' ? `-${values.hp}` : ''}`,
    rules: (values.rules ?? 'sp,supar').split(','),
    out: path.resolve(values.out ?? path.join(ROOT, 'docs')),
    skipCoord: values['skip-coord'] ?? false,
    skipSweep: values['skip-sweep'] ?? false,
    hp: values.hp ?? 'paper',
    seed: Number(values.seed ?? 0),
  };
}

function writeOut(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  log(`wrote ${path.relative(ROOT, file)}`);
}

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

async function main(): Promise<void> {
  const o = options();
  const started = Date.now();
  const corpus = loadTextCorpus();
  log(`corpus: ${corpus.description}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-transfer-'));
  const modelPath = path.join(dir, `gpt-d${o.width}.onnx`);
  fs.writeFileSync(modelPath, encodeModel(buildGpt({ vocab: 256, dModel: Number(o.width), layers: Number(o.layers), heads: Number(o.heads), maxPos: Number(o.seq), seed: 1234 })));
  log(`model: GPT width ${o.width}, ${o.layers} layers, ${o.heads} heads, context ${o.seq}, byte vocab 256 (${modelPath})`);
  const hyperparameters = HYPERPARAMETERS[o.hp];
  if (!hyperparameters) throw new Error(`--hp ${o.hp}: choose one of ${Object.keys(HYPERPARAMETERS).join(', ')}`);
  log(`hyperparameters (--hp ${o.hp}): ${JSON.stringify(hyperparameters)}`);
  const common = { modelPath, batch: Number(o.batch), seq: Number(o.seq), textBytes: corpus.bytes, threads: Number(o.threads), hyperparameters };
  const densities = parseDensities(o.densities);
  const img = path.join(o.out, 'img');
  const results = path.join(o.out, 'results');

  if (!o.skipCoord) {
    // mup's coordinate check, fixed batch, at a moderate LR (≈ η_base) and a large one (mup's advice).
    const coordRun = await makeOnnxTrainRun({ ...common, fixedBatch: true });
    for (const lr of parseLrGrid(o.coordLrs)) {
      const lrTag = `lr2pow${Math.log2(lr)}`;
      const coord = await runCoordCheck({ rules: o.rules, densities, steps: Number(o.coordSteps), lr, seed: o.seed, threshold: 1.5 }, coordRun, log);
      for (const r of o.rules) writeOut(path.join(img, `coord-check-${o.tag}-${lrTag}.${safeName(r)}.svg`), figureSvg(coordFigure(coord, r)));
      writeOut(path.join(results, `coord-check-${o.tag}-${lrTag}.csv`), coordCsv(coord));
      const verdicts = [`# base LR 2^${Math.log2(lr)}, ${o.coordSteps} steps, fixed batch ${o.batch} x ${o.seq} bytes`, ...verdictLines(coord)].join('\n') + '\n';
      writeOut(path.join(results, `coord-check-${o.tag}-${lrTag}.verdicts.txt`), verdicts);
      process.stdout.write(verdicts);
    }
  }

  if (o.skipSweep) return finish(dir, started);
  const sweepRun = await makeOnnxTrainRun({ ...common, fixedBatch: false, schedule: 'warmup-decay' });
  const sweepOpts = { rules: o.rules, densities, lrs: parseLrGrid(o.lrs), steps: Number(o.steps), seed: o.seed, lastK: Number(o.lastK) };
  log(`sweep: ${sweepOpts.rules.length} rule sets × ${densities.length} densities × ${sweepOpts.lrs.length} LRs × ${sweepOpts.steps} steps (batch ${o.batch} × ${o.seq} bytes)`);
  const sweep = await runSweep(sweepOpts, sweepRun, log);
  const title = `Final train loss vs LR: GPT d=${o.width} L=${o.layers}, TypeScript/Node API docs, ${o.steps} steps (${o.tag}, --hp ${o.hp})`;
  writeOut(path.join(img, `transfer-${o.tag}.svg`), figureSvg(sweepFigure(sweep, title)));
  writeOut(path.join(results, `transfer-${o.tag}.json`), resultJson({ ...sweep, settings: { ...o, hyperparameters }, corpus: { description: corpus.description, files: corpus.files.length } }));
  writeOut(path.join(results, `transfer-${o.tag}.csv`), sweepCsv(sweep));
  writeOut(path.join(results, `transfer-${o.tag}.optima.md`), optimaMarkdown(sweep));
  process.stdout.write(optimaMarkdown(sweep));
  finish(dir, started);
}

function finish(dir: string, started: number): void {
  log(`done in ${((Date.now() - started) / 60000).toFixed(1)} min`);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  process.stderr.write(`experiment failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
