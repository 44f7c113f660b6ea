/**
 * `--mask-storage bool` against `bits` (src/passes/mask-storage.ts), in one run, on GPT-2-style models
 * transformed at density 0.125 (SµPar): written file size and mask bytes, transform time, session creation
 * (onnxruntime folds the unpack into a constant there), forward latency (also with graph optimizations
 * disabled, where the unpack runs on every call), train-step time and peak RSS. Each (model, storage) runs in
 * its own child process so that its peak RSS is its own; forward runs and train steps alternate.
 * Prints a markdown table and saves bench/results/mask-storage.md. Not a test.
 *
 *     node --import tsx bench/mask-storage.ts [--steps 10] [--threads 2] [--cases 0,1,2,3]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { buildGpt, type GptConfig } from '../fixtures/gpt-builder.js';
import { encodeModel, readModel, writeModel, type LoadedModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeFloatTensor, tensorToFloat32 } from '../src/onnx/tensor.js';
import type { MaskStorage } from '../src/passes/mask-storage.js';
import { sessionOptions } from '../src/runtime/index.js';
import { transform } from '../src/transform.js';
import { openFeedSource } from '../src/train/feeds.js';
import { objectiveOfModel } from '../src/train/objective.js';
import { createTrainer } from '../src/train/runner.js';
import { buildTrainStep } from '../src/train/train-step.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { steps: { type: 'string', default: '10' }, threads: { type: 'string', default: '2' }, cases: { type: 'string' }, child: { type: 'string' }, storage: { type: 'string' } },
});

interface Case { label: string; source: 'fixture' | GptConfig; float16?: boolean; batch: number; seq: number; train: boolean }
const CASES: Case[] = [
  { label: 'gpt-tiny fixture (d 64, 2 layers)', source: 'fixture', batch: 8, seq: 64, train: true },
  { label: 'GPT d 512, 4 layers, vocab 1024', source: { vocab: 1024, dModel: 512, layers: 4, heads: 8, maxPos: 128, seed: 1 }, batch: 4, seq: 128, train: true },
  { label: 'GPT-2-small shape (d 768, 12 layers, vocab 50257)', source: { vocab: 50257, dModel: 768, layers: 12, heads: 12, maxPos: 128, seed: 1 }, batch: 1, seq: 128, train: false },
  { label: 'GPT-2-small shape, float16', source: { vocab: 50257, dModel: 768, layers: 12, heads: 12, maxPos: 128, seed: 1 }, float16: true, batch: 1, seq: 128, train: false },
];

interface Result {
  fileBytes: number; maskBytes: number; maskedWeightBytes: number; transformS: number; forwardNodes: number;
  createMs: number; forwardMs: number; forwardNoOptMs: number; trainCreateMs: number | null; trainMs: number | null; peakRssMiB: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function toFloat16(m: ModelProto): ModelProto {
  const g = m.graph!;
  g.initializer = g.initializer.map((t) => (t.dataType === DataType.FLOAT ? makeFloatTensor(t.name, t.dims.map(Number), tensorToFloat32(t, '.').map((x) => Math.max(-6e4, Math.min(6e4, x))), DataType.FLOAT16) : t));
  for (const o of g.output) if (o.type?.value.case === 'tensorType') o.type.value.value.elemType = DataType.FLOAT16;
  return m;
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await f();
  return [out, performance.now() - t0];
}

async function measure(c: Case, storage: MaskStorage, steps: number, threads: number): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-bench-masks-'));
  const loaded: LoadedModel = c.source === 'fixture'
    ? readModel(path.join(here, '..', 'fixtures', 'gpt-tiny.onnx'))
    : { model: c.float16 ? toFloat16(buildGpt(c.source)) : buildGpt(c.source), path: path.join(dir, 'gpt.onnx'), baseDir: dir, fileBytes: 0 };
  const [r, transformMs] = await timed(() => transform(loaded, { density: 0.125, seed: 0, maskStorage: storage }));
  const file = path.join(dir, 'gpt.supar.onnx');
  writeModel(r.model, file, { sourceBaseDir: loaded.baseDir });
  const fileBytes = fs.readdirSync(dir).filter((f) => f.startsWith('gpt.supar')).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
  const objective = c.train ? objectiveOfModel(r.model, { readoutOutput: r.analysis.logits?.output }) : undefined;
  const ts = objective ? buildTrainStep(r.model, loaded.baseDir, r.lrGroups, { objective, optimizer: { kind: 'adamw' } }) : undefined;
  const io = ts?.io ?? { modelInputs: [{ name: 'input_ids', elemType: DataType.INT64, shape: [c.batch, c.seq] }] };
  const ids = new BigInt64Array(c.batch * c.seq).map((_, i) => BigInt((i * 7919) % 256));
  const fwdFeeds = { [io.modelInputs[0]!.name]: new ort.Tensor('int64', ids, [c.batch, c.seq]) };
  const bytes = encodeModel(r.model);
  const [fwd, createMs] = await timed(() => ort.InferenceSession.create(bytes, sessionOptions('cpu', { threads })));
  const noOpt = await ort.InferenceSession.create(bytes, { ...sessionOptions('cpu', { threads }), graphOptimizationLevel: 'disabled' });
  let trainCreateMs: number | null = null;
  const trainer = ts ? await timed(() => createTrainer({ train: ts.train, io: ts.io, forward: { model: r.model, baseDir: loaded.baseDir }, ep: 'cpu', threads })).then(([t, ms]) => { trainCreateMs = ms; return t; }) : undefined;
  const feeds = ts && objective ? openFeedSource(ts.io, objective, { batch: c.batch, seq: c.seq, seed: 0 }).next() : undefined;
  const [fwdTimes, noOptTimes, trainTimes]: number[][] = [[], [], []];
  for (let i = 0; i < steps + 2; i++) {
    const [, f] = await timed(() => fwd.run(fwdFeeds));
    const [, g] = await timed(() => noOpt.run(fwdFeeds));
    const [, t] = trainer ? await timed(() => trainer.step(feeds!, 1e-3)) : [undefined, 0];
    if (i >= 2) { fwdTimes.push(f); noOptTimes.push(g); trainTimes.push(t); }
  }
  await fwd.release();
  await noOpt.release();
  await trainer?.release();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    fileBytes, maskBytes: r.report.summary.mask_bytes, maskedWeightBytes: r.report.summary.masked_weight_bytes, transformS: transformMs / 1000,
    forwardNodes: r.model.graph!.node.length, createMs, forwardMs: median(fwdTimes), forwardNoOptMs: median(noOptTimes),
    trainCreateMs, trainMs: trainer ? median(trainTimes) : null, peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

function runChild(i: number, storage: MaskStorage, steps: number, threads: number): Result {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', String(i), '--storage', storage, '--steps', String(steps), '--threads', String(threads)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`case ${i} (${storage}) failed (${r.status}): ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

const mib = (b: number) => (b / 2 ** 20).toFixed(2);
const ms = (x: number | null) => (x === null ? '-' : x.toFixed(1));

async function main(): Promise<void> {
  const steps = Number(values.steps);
  const threads = Number(values.threads);
  if (values.child !== undefined) {
    process.stdout.write(`${JSON.stringify(await measure(CASES[Number(values.child)]!, values.storage as MaskStorage, steps, threads))}\n`);
    return;
  }
  const cases = (values.cases ?? CASES.map((_, i) => i).join(',')).split(',').map(Number);
  const rows: string[] = [];
  for (const i of cases) {
    const c = CASES[i]!;
    // bool then bits then bool again: the two bool runs show the machine's noise beside the difference.
    const runs: [string, Result][] = [['bool', runChild(i, 'bool', steps, threads)], ['bits', runChild(i, 'bits', steps, threads)], ['bool (again)', runChild(i, 'bool', steps, threads)]];
    const base = runs[0]![1];
    for (const [label, r] of runs) {
      process.stderr.write(`${c.label} ${label}: ${JSON.stringify(r)}\n`);
      rows.push(`| ${c.label} | ${label} | ${mib(r.fileBytes)} (${r.fileBytes === base.fileBytes ? '±0' : `${((100 * (r.fileBytes - base.fileBytes)) / base.fileBytes).toFixed(1)} %`}) | ` +
        `${mib(r.maskBytes)} (${((100 * r.maskBytes) / r.maskedWeightBytes).toFixed(1)} %) | ${r.forwardNodes} | ${r.transformS.toFixed(2)} | ${ms(r.createMs)} | ${ms(r.forwardMs)} | ${ms(r.forwardNoOptMs)} | ${ms(r.trainCreateMs)} | ${ms(r.trainMs)} | ${r.peakRssMiB.toFixed(0)} |`);
    }
  }
  const machine = `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} (load average ${os.loadavg()[0]!.toFixed(1)} at the start), Node ${process.version}, onnxruntime-node ${ort.env.versions.common}, ${threads} intra-op threads.`;
  const text = `# Mask storage: bool (1 byte per entry) against bits (8 per byte, unpacked in the graph)\n\n${machine}\n` +
    `Density 0.125 (SµPar), seed 0; median of ${steps} alternating runs after 2 warm-up, CPU provider. File = the written model (with its external data). ` +
    `Masks = mask_bytes and its share of the masked weights' bytes. Session create = onnxruntime's InferenceSession.create (graph optimizations 'all': the mask Cast or unpack is folded into a constant there). ` +
    `Forward (no opt) = the same model with graphOptimizationLevel 'disabled' (the unpack runs on every call). Train step = forward + backward + AdamW (float32 cases only). Peak RSS = the child process's.\n\n` +
    `| model | storage | file MiB (vs bool) | masks MiB (of masked weights) | forward nodes | transform s | session create ms | forward ms | forward ms (no opt) | train session create ms | train step ms | peak RSS MiB |\n` +
    `|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n${rows.join('\n')}\n`;
  process.stdout.write(text);
  fs.mkdirSync(path.join(here, 'results'), { recursive: true });
  fs.writeFileSync(path.join(here, 'results', 'mask-storage.md'), text);
}

await main();
