/**
 * Train-step time against forward time of the same model and batch, steps per second and peak RSS, for
 * GPT-2-style models transformed at density 0.25 (SµPar). Each model runs in its own child process so that
 * its peak RSS is its own. Forward = an inference session of the transformed model (logits only); train
 * step = forward + loss + backward + AdamW update of every parameter, parameters fed in and read back.
 * Forward runs and train steps alternate so that both see the same load on a shared machine.
 * Prints a markdown table and saves bench/results/train.md (bench/results/train-cuda.md with --ep cuda).
 *
 *     npm run bench:train                 (or: node --import tsx bench/train.ts [--ep cpu|cuda] [--steps 20] [--threads 2])
 *
 * Aim (issue 4): train step ≤ 3.5× forward (ideal ≈ 3×: backward ≈ 2× forward). Not a test.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { buildGpt, type GptConfig } from '../fixtures/gpt-builder.js';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { transform } from '../src/transform.js';
import { openFeedSource } from '../src/train/feeds.js';
import { objectiveOfModel } from '../src/train/objective.js';
import { createTrainer } from '../src/train/runner.js';
import { buildTrainStep } from '../src/train/train-step.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    ep: { type: 'string', default: 'cpu' }, steps: { type: 'string', default: '20' }, threads: { type: 'string', default: '2' },
    child: { type: 'string' },
  },
});

interface Case { label: string; source: 'fixture' | GptConfig; batch: number; seq: number }
const CASES: Case[] = [
  { label: 'gpt-tiny fixture (d 64, 2 layers, vocab 256)', source: 'fixture', batch: 8, seq: 64 },
  { label: 'GPT d 256, 4 layers, 4 heads, vocab 512', source: { vocab: 512, dModel: 256, layers: 4, heads: 4, maxPos: 128, seed: 1 }, batch: 8, seq: 128 },
  { label: 'GPT d 512, 4 layers, 8 heads, vocab 1024', source: { vocab: 1024, dModel: 512, layers: 4, heads: 8, maxPos: 128, seed: 1 }, batch: 4, seq: 128 },
];

interface Result { label: string; params: number; trainNodes: number; forwardMs: number; trainMs: number; stepsPerS: number; peakRssMiB: number; ep: string; fallbacks: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(c: Case, steps: number, threads: number, ep: 'cpu' | 'cuda'): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-bench-train-'));
  const loaded = c.source === 'fixture'
    ? readModel(path.join(here, '..', 'fixtures', 'gpt-tiny.onnx'))
    : { model: buildGpt(c.source), path: path.join(dir, 'gpt.onnx'), baseDir: dir, fileBytes: 0 };
  const r = await transform(loaded, { density: 0.25, seed: 0 });
  // The objective and feeds of `train` (the model's fixed sizes win over the case's; a conflict is an error).
  const objective = objectiveOfModel(r.model, { readoutOutput: r.analysis.logits?.output });
  const ts = buildTrainStep(r.model, loaded.baseDir, r.lrGroups, { objective, optimizer: { kind: 'adamw' } });
  const feeds = openFeedSource(ts.io, objective, { batch: c.batch, seq: c.seq, seed: 0 }).next();
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: [ep] };
  const fwd = await ort.InferenceSession.create(encodeModel(r.model), opts);
  const fwdFeeds = Object.fromEntries(Object.entries(feeds).filter(([k]) => k !== ts.io.targets.name));
  const trainer = await createTrainer({ train: ts.train, io: ts.io, forward: { model: r.model, baseDir: loaded.baseDir }, ep, threads });
  // Forward and train step alternate, so that both see the same machine load (the CPU may be shared).
  const fwdTimes: number[] = [];
  const trainTimes: number[] = [];
  for (let i = 0; i < steps + 3; i++) {
    const t0 = performance.now();
    await fwd.run(fwdFeeds);
    const t1 = performance.now();
    await trainer.step(feeds, 1e-3);
    const t2 = performance.now();
    if (i >= 3) { fwdTimes.push(t1 - t0); trainTimes.push(t2 - t1); }
  }
  await fwd.release();
  await trainer.release();
  fs.rmSync(dir, { recursive: true, force: true });
  const trainMs = median(trainTimes);
  return {
    label: `${c.label}, batch ${c.batch}×${c.seq}`, params: ts.io.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0),
    trainNodes: ts.train.graph!.node.length, forwardMs: median(fwdTimes), trainMs, stepsPerS: 1000 / trainMs,
    peakRssMiB: process.resourceUsage().maxRSS / 1024, ep, fallbacks: ts.kernelReport.train.fallbacks.length,
  };
}

async function main(): Promise<void> {
  const steps = Number(values.steps);
  const threads = Number(values.threads);
  const ep = values.ep === 'cuda' ? 'cuda' : 'cpu';
  if (values.child !== undefined) {
    process.stdout.write(`${JSON.stringify(await measure(CASES[Number(values.child)]!, steps, threads, ep))}\n`);
    return;
  }
  const results: Result[] = [];
  for (let i = 0; i < CASES.length; i++) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', String(i), '--steps', String(steps), '--threads', String(threads), '--ep', ep], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`case ${i} failed (${r.status}): ${r.stderr}`);
    results.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as Result);
  }
  const table = [
    `| model | params | train-graph nodes | CUDA fallbacks | forward ms | train step ms | train / forward | steps/s | peak RSS MiB |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|`,
    ...results.map((r) => `| ${r.label} | ${r.params.toLocaleString('en-US')} | ${r.trainNodes} | ${r.fallbacks} | ${r.forwardMs.toFixed(2)} | ${r.trainMs.toFixed(2)} | ${(r.trainMs / r.forwardMs).toFixed(2)}× | ${r.stepsPerS.toFixed(1)} | ${r.peakRssMiB.toFixed(0)} |`),
  ].join('\n');
  const text = `# Train step vs forward (${ep.toUpperCase()}, ${threads} intra-op threads, median of ${steps} alternating runs after 3 warm-up)\n\n` +
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, Node ${process.version}, onnxruntime-node ${ort.env.versions.common}.\n` +
    `Models transformed at density 0.25 (SµPar); AdamW on every parameter; data synthetic:count. Peak RSS is the child process's (forward and train sessions both open).\n\n${table}\n`;
  process.stdout.write(text);
  const out = path.join(here, 'results', ep === 'cuda' ? 'train-cuda.md' : 'train.md');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, text);
}

await main();
