/**
 * `--mask-storage bool` against `bits` (src/passes/mask-storage.ts), in one run, on GPT-2-style models
 * transformed at density 0.125 (SµPar): written file size and mask bytes, transform time, session creation
 * (onnxruntime folds the unpack into a constant there), forward latency (also with graph optimizations
 * disabled, where the unpack runs on every call), train-step time and peak RSS. Sizes, session creation and
 * peak RSS come from one child process per (model, storage); latencies from one child per model in which bool
 * and bits runs interleave, so both see the same load on a shared machine.
 * Prints a markdown table and saves bench/results/mask-storage.md. Not a test.
 *
 *     node --import tsx bench/mask-storage.ts [--steps 10] [--threads 2] [--cases 0,1,2,3] [--out mask-storage.md]
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
import { transform, type TransformResult } from '../src/transform.js';
import { openFeedSource } from '../src/train/feeds.js';
import { objectiveOfModel, type Objective } from '../src/train/objective.js';
import { createTrainer } from '../src/train/runner.js';
import { buildTrainStep, type TrainStep } from '../src/train/train-step.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { out: { type: 'string', default: 'mask-storage.md' }, steps: { type: 'string', default: '10' }, threads: { type: 'string', default: '2' }, cases: { type: 'string' }, child: { type: 'string' }, storage: { type: 'string' } },
});

interface Case { label: string; source: 'fixture' | GptConfig; float16?: boolean; batch: number; seq: number; train: boolean }
const CASES: Case[] = [
  { label: 'gpt-tiny fixture (d 64, 2 layers)', source: 'fixture', batch: 8, seq: 64, train: true },
  { label: 'GPT d 512, 4 layers, vocab 1024', source: { vocab: 1024, dModel: 512, layers: 4, heads: 8, maxPos: 128, seed: 1 }, batch: 4, seq: 128, train: true },
  { label: 'GPT-2-small shape (d 768, 12 layers, vocab 50257)', source: { vocab: 50257, dModel: 768, layers: 12, heads: 12, maxPos: 128, seed: 1 }, batch: 1, seq: 128, train: false },
  { label: 'GPT-2-small shape, float16', source: { vocab: 50257, dModel: 768, layers: 12, heads: 12, maxPos: 128, seed: 1 }, float16: true, batch: 1, seq: 128, train: false },
];

interface Prepared { r: TransformResult; ts?: TrainStep; loaded: LoadedModel; objective?: Objective; fileBytes: number; transformMs: number; dir: string }

interface SizeResult {
  fileBytes: number; maskBytes: number; maskedWeightBytes: number; transformS: number; forwardNodes: number;
  /** Nodes of the forward graph after onnxruntime's optimizations (its optimizedModelFilePath): equal when the unpack is folded. */
  optimizedNodes: number; createMs: number; trainCreateMs: number | null; peakRssMiB: number;
}

/** Medians of interleaved runs (bool and bits alternate, so both see the same machine load). */
interface TimeResult { forwardMs: number; forwardNoOptMs: number; trainMs: number | null }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function toFloat16(m: ModelProto): ModelProto {
  const g = m.graph!;
  g.initializer = g.initializer.map((t) => (t.dataType === DataType.FLOAT ? makeFloatTensor(t.name, t.dims.map(Number), tensorToFloat32(t, '.').map((x) => Math.max(-6e4, Math.min(6e4, x))), DataType.FLOAT16) : t));
  for (const o of g.output) if (o.type?.value.case === 'tensorType') o.type.value.value.elemType = DataType.FLOAT16;
  return m;
}

async function timed<T>(f: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await f();
  return [out, performance.now() - t0];
}

async function prepare(c: Case, storage: MaskStorage): Promise<Prepared> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-bench-masks-'));
  const loaded: LoadedModel = c.source === 'fixture'
    ? readModel(path.join(here, '..', 'fixtures', 'gpt-tiny.onnx'))
    : { model: c.float16 ? toFloat16(buildGpt(c.source)) : buildGpt(c.source), path: path.join(dir, 'gpt.onnx'), baseDir: dir, fileBytes: 0 };
  const [r, transformMs] = await timed(() => transform(loaded, { density: 0.125, seed: 0, maskStorage: storage }));
  writeModel(r.model, path.join(dir, 'gpt.supar.onnx'), { sourceBaseDir: loaded.baseDir });
  const fileBytes = fs.readdirSync(dir).filter((f) => f.startsWith('gpt.supar')).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
  const objective = c.train ? objectiveOfModel(r.model, { readoutOutput: r.analysis.logits?.output }) : undefined;
  const ts = objective ? buildTrainStep(r.model, loaded.baseDir, r.lrGroups, { objective, optimizer: { kind: 'adamw' } }) : undefined;
  return { r, ts, loaded, objective, fileBytes, transformMs, dir };
}

interface Runner { createMs: number; trainCreateMs: number | null; forward(): Promise<number>; forwardNoOpt(): Promise<number>; train(): Promise<number | null>; release(): Promise<void> }

async function openRunner(c: Case, p: Prepared, threads: number): Promise<Runner> {
  const ids = new BigInt64Array(c.batch * c.seq).map((_, i) => BigInt((i * 7919) % 256));
  const fwdFeeds = { input_ids: new ort.Tensor('int64', ids, [c.batch, c.seq]) };
  const bytes = encodeModel(p.r.model);
  const [fwd, createMs] = await timed(() => ort.InferenceSession.create(bytes, sessionOptions('cpu', { threads })));
  const noOpt = await ort.InferenceSession.create(bytes, { ...sessionOptions('cpu', { threads }), graphOptimizationLevel: 'disabled' });
  const [trainer, trainCreateMs] = p.ts ? await timed(() => createTrainer({ train: p.ts!.train, io: p.ts!.io, forward: { model: p.r.model, baseDir: p.loaded.baseDir }, ep: 'cpu', threads })) : [undefined, null];
  const feeds = p.ts && p.objective ? openFeedSource(p.ts.io, p.objective, { batch: c.batch, seq: c.seq, seed: 0 }).next() : undefined;
  return {
    createMs, trainCreateMs,
    forward: async () => (await timed(() => fwd.run(fwdFeeds)))[1],
    forwardNoOpt: async () => (await timed(() => noOpt.run(fwdFeeds)))[1],
    train: async () => (trainer ? (await timed(() => trainer.step(feeds!, 1e-3)))[1] : null),
    release: async () => { await fwd.release(); await noOpt.release(); await trainer?.release(); fs.rmSync(p.dir, { recursive: true, force: true }); },
  };
}

/** One storage alone (its own process): sizes, session creation, peak RSS after two runs of each graph. */
async function measureSize(c: Case, storage: MaskStorage, threads: number): Promise<SizeResult> {
  const p = await prepare(c, storage);
  const optimized = path.join(p.dir, 'optimized.onnx');
  await (await ort.InferenceSession.create(encodeModel(p.r.model), { ...sessionOptions('cpu', { threads }), optimizedModelFilePath: optimized, logSeverityLevel: 3 })).release();
  const optimizedNodes = readModel(optimized).model.graph!.node.length;
  const run = await openRunner(c, p, threads);
  for (let i = 0; i < 2; i++) { await run.forward(); await run.forwardNoOpt(); await run.train(); }
  await run.release();
  return {
    fileBytes: p.fileBytes, maskBytes: p.r.report.summary.mask_bytes, maskedWeightBytes: p.r.report.summary.masked_weight_bytes,
    transformS: p.transformMs / 1000, forwardNodes: p.r.model.graph!.node.length, optimizedNodes, createMs: run.createMs, trainCreateMs: run.trainCreateMs,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

/** Both storages in one process, runs interleaved (order swapped every step), 2 warm-up steps. */
async function measureTimes(c: Case, steps: number, threads: number): Promise<Record<MaskStorage, TimeResult>> {
  const runners = { bool: await openRunner(c, await prepare(c, 'bool'), threads), bits: await openRunner(c, await prepare(c, 'bits'), threads) };
  const t = { bool: { f: [] as number[], n: [] as number[], s: [] as number[] }, bits: { f: [] as number[], n: [] as number[], s: [] as number[] } };
  for (let i = 0; i < steps + 2; i++) {
    for (const st of (i % 2 ? ['bits', 'bool'] : ['bool', 'bits']) as MaskStorage[]) {
      const [f, n, s] = [await runners[st].forward(), await runners[st].forwardNoOpt(), await runners[st].train()];
      if (i >= 2) { t[st].f.push(f); t[st].n.push(n); if (s !== null) t[st].s.push(s); }
    }
  }
  await runners.bool.release();
  await runners.bits.release();
  const out = (x: typeof t.bool): TimeResult => ({ forwardMs: median(x.f), forwardNoOptMs: median(x.n), trainMs: x.s.length ? median(x.s) : null });
  return { bool: out(t.bool), bits: out(t.bits) };
}

function runChild<T>(args: string[]): T {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

const mib = (b: number) => (b / 2 ** 20).toFixed(2);
const ms = (x: number | null) => (x === null ? '-' : x.toFixed(1));

async function main(): Promise<void> {
  const steps = Number(values.steps);
  const threads = Number(values.threads);
  if (values.child !== undefined) {
    const c = CASES[Number(values.child)]!;
    const out = values.storage === 'both' ? await measureTimes(c, steps, threads) : await measureSize(c, values.storage as MaskStorage, threads);
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const cases = (values.cases ?? CASES.map((_, i) => i).join(',')).split(',').map(Number);
  const rows: string[] = [];
  for (const i of cases) {
    const c = CASES[i]!;
    const common = ['--child', String(i), '--steps', String(steps), '--threads', String(threads)];
    const size = { bool: runChild<SizeResult>([...common, '--storage', 'bool']), bits: runChild<SizeResult>([...common, '--storage', 'bits']) };
    const time = runChild<Record<MaskStorage, TimeResult>>([...common, '--storage', 'both']);
    for (const st of ['bool', 'bits'] as const) {
      const [r, t, base] = [size[st], time[st], size.bool];
      process.stderr.write(`${c.label} ${st}: ${JSON.stringify({ ...r, ...t })}\n`);
      const vs = (x: number | null, b: number | null) => (st === 'bool' || x === null || b === null ? '' : ` (${(x / b).toFixed(2)}×)`);
      rows.push(`| ${c.label} | ${st} | ${mib(r.fileBytes)}${st === 'bool' ? '' : ` (${((100 * (r.fileBytes - base.fileBytes)) / base.fileBytes).toFixed(1)} %)`} | ` +
        `${mib(r.maskBytes)} (${((100 * r.maskBytes) / r.maskedWeightBytes).toFixed(1)} %) | ${r.forwardNodes} → ${r.optimizedNodes} | ${r.transformS.toFixed(2)} | ${ms(r.createMs)} | ${ms(r.trainCreateMs)} | ${r.peakRssMiB.toFixed(0)} | ` +
        `${ms(t.forwardMs)}${vs(t.forwardMs, time.bool.forwardMs)} | ${ms(t.forwardNoOptMs)}${vs(t.forwardNoOptMs, time.bool.forwardNoOptMs)} | ${ms(t.trainMs)}${vs(t.trainMs, time.bool.trainMs)} |`);
    }
  }
  const machine = `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} (load average ${os.loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}, onnxruntime-node ${ort.env.versions.common}, ${threads} intra-op threads.`;
  const text = `# Mask storage: bool (1 byte per entry) against bits (8 per byte, unpacked in the graph)\n\n${machine}\n\n` +
    `Density 0.125 (SµPar), seed 0, CPU provider. File = the written model (with any external data). Masks = mask_bytes and its share of the masked weights' bytes. ` +
    `Transform, session creation and peak RSS come from one process per storage (graph optimizations 'all': onnxruntime folds the mask Cast or unpack into a constant at creation). ` +
    `Forward, forward with graphOptimizationLevel 'disabled' (the unpack runs on every call) and train step (forward + backward + AdamW; float32 cases) are medians of ${steps} runs ` +
    `after 2 warm-up, bool and bits interleaved in one process so that both see the same machine load; (×) = bits / bool.\n\n` +
    `| model | storage | file MiB (vs bool) | masks MiB (of masked weights) | forward nodes → after ORT optimization | transform s | session create ms | train session create ms | peak RSS MiB | forward ms | forward ms (no opt) | train step ms |\n` +
    `|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n${rows.join('\n')}\n`;
  process.stdout.write(text);
  fs.mkdirSync(path.join(here, 'results'), { recursive: true });
  fs.writeFileSync(path.join(here, 'results', values.out!), text);
}

await main();
