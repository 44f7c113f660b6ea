/**
 * Train-step time against forward time of the same model and batch, steps per second and peak RSS, for
 * GPT-2-style models transformed at density 0.25 (SµPar). Each model runs in its own child process so that
 * its peak RSS is its own. Forward = an inference session of the transformed model (logits only); train
 * step = forward + loss + backward + AdamW update of every parameter, parameters fed in and read back.
 * Forward runs and train steps alternate so that both see the same load on a shared machine.
 * Prints a markdown table and saves bench/results/train.md.
 *
 * With a GPU provider (--ep webgpu or cuda) it measures the state on the device instead: per model, the
 * train step on CPU, on the GPU with parameters and AdamW moments kept on the device between steps
 * ('gpu-buffer' outputs fed back), and on the GPU with them round-tripped (sent and read back every step,
 * as before the runtime seam). Compute ≈ the resident step (only token ids, targets and the loss cross the
 * bus); host↔device transfer of the state ≈ round-tripped − resident. Saves bench/results/train-<ep>.md.
 * Default models there: the fixture only (`--cases 0,1,2` for all; SwiftShader is slow). For WebGPU without
 * a GPU the children run on SwiftShader (Debian chromium), and the table says so.
 *
 *     npm run bench:train                 (or: node --import tsx bench/train.ts [--ep cpu|cuda|webgpu] [--steps 20] [--threads 2] [--cases 0] [--batch B --seq T])
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
import { type Ep } from '../src/train/runner.js';
import { sessionOptions, softwareVulkanEnv } from '../src/runtime/index.js';
import { openFeedSource } from '../src/train/feeds.js';
import { objectiveOfModel } from '../src/train/objective.js';
import { createTrainer } from '../src/train/runner.js';
import { buildTrainStep } from '../src/train/train-step.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    ep: { type: 'string', default: 'cpu' }, steps: { type: 'string' }, threads: { type: 'string', default: '2' },
    child: { type: 'string' }, resident: { type: 'string', default: 'true' }, cases: { type: 'string' }, batch: { type: 'string' }, seq: { type: 'string' },
  },
});

interface Case { label: string; source: 'fixture' | GptConfig; batch: number; seq: number }
const CASES: Case[] = [
  { label: 'gpt-tiny fixture (d 64, 2 layers, vocab 256)', source: 'fixture', batch: 8, seq: 64 },
  { label: 'GPT d 256, 4 layers, 4 heads, vocab 512', source: { vocab: 512, dModel: 256, layers: 4, heads: 4, maxPos: 128, seed: 1 }, batch: 8, seq: 128 },
  { label: 'GPT d 512, 4 layers, 8 heads, vocab 1024', source: { vocab: 1024, dModel: 512, layers: 4, heads: 8, maxPos: 128, seed: 1 }, batch: 4, seq: 128 },
];

interface Result { label: string; params: number; trainNodes: number; forwardMs: number; trainMs: number; stepsPerS: number; peakRssMiB: number; ep: string; fallbacks: number; stateOnDevice: boolean; stateMiB: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(base: Case, steps: number, threads: number, ep: Ep, resident: boolean): Promise<Result> {
  const c = { ...base, batch: values.batch ? Number(values.batch) : base.batch, seq: values.seq ? Number(values.seq) : base.seq };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-bench-train-'));
  const loaded = c.source === 'fixture'
    ? readModel(path.join(here, '..', 'fixtures', 'gpt-tiny.onnx'))
    : { model: buildGpt(c.source), path: path.join(dir, 'gpt.onnx'), baseDir: dir, fileBytes: 0 };
  const r = await transform(loaded, { density: 0.25, seed: 0 });
  // The objective and feeds of `train` (the model's fixed sizes win over the case's; a conflict is an error).
  const objective = objectiveOfModel(r.model, { readoutOutput: r.analysis.logits?.output });
  const ts = buildTrainStep(r.model, loaded.baseDir, r.lrGroups, { objective, optimizer: { kind: 'adamw' } });
  const feeds = openFeedSource(ts.io, objective, { batch: c.batch, seq: c.seq, seed: 0 }).next();
  const fwd = await ort.InferenceSession.create(encodeModel(r.model), sessionOptions(ep, { threads }));
  const fwdFeeds = Object.fromEntries(Object.entries(feeds).filter(([k]) => k !== ts.io.targets.name));
  const trainer = await createTrainer({ train: ts.train, io: ts.io, forward: { model: r.model, baseDir: loaded.baseDir }, ep, threads, stateOnDevice: resident });
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
    stateOnDevice: trainer.stateOnDevice, stateMiB: (ts.io.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0) * 4 * (1 + ts.io.state.length / ts.io.params.length)) / 2 ** 20,
  };
}

const GPU_EPS = ['cuda', 'webgpu'] as const;

function runChild(i: number, steps: number, threads: number, ep: Ep, resident: boolean): Result {
  const sw = ep === 'webgpu' && !process.env.VK_ICD_FILENAMES ? softwareVulkanEnv() : undefined;
  const env = { ...process.env, ...(sw ?? {}) };
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', String(i), '--steps', String(steps), '--threads', String(threads), '--ep', ep, '--resident', String(resident), ...(values.batch ? ['--batch', values.batch] : []), ...(values.seq ? ['--seq', values.seq] : [])], { encoding: 'utf8', maxBuffer: 1 << 26, env });
  if (r.status !== 0) throw new Error(`case ${i} on ${ep} failed (${r.status}): ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

async function main(): Promise<void> {
  const ep = (['cpu', ...GPU_EPS] as const).find((e) => e === values.ep) ?? 'cpu';
  const gpu = ep !== 'cpu';
  const steps = Number(values.steps ?? (gpu ? '5' : '20'));
  const threads = Number(values.threads);
  if (values.child !== undefined) {
    process.stdout.write(`${JSON.stringify(await measure(CASES[Number(values.child)]!, steps, threads, ep, values.resident !== 'false'))}\n`);
    return;
  }
  const cases = (values.cases ?? (gpu ? '0' : CASES.map((_, i) => i).join(','))).split(',').map(Number);
  const machine = `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} (load average ${os.loadavg()[0]!.toFixed(1)} at the start), Node ${process.version}, onnxruntime-node ${ort.env.versions.common}.`;
  const text = gpu ? await stateTable(ep, cases, steps, threads, machine) : cpuTable(cases, steps, threads, machine);
  process.stdout.write(text);
  const shape = values.batch || values.seq ? `-${values.batch ?? 'B'}x${values.seq ?? 'T'}` : '';
  const out = path.join(here, 'results', gpu ? `train-${ep}${shape}.md` : `train${shape}.md`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, text);
}

function cpuTable(cases: number[], steps: number, threads: number, machine: string): string {
  const results = cases.map((i) => runChild(i, steps, threads, 'cpu', true));
  const table = [
    `| model | params | train-graph nodes | CUDA fallbacks | forward ms | train step ms | train / forward | steps/s | peak RSS MiB |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|`,
    ...results.map((r) => `| ${r.label} | ${r.params.toLocaleString('en-US')} | ${r.trainNodes} | ${r.fallbacks} | ${r.forwardMs.toFixed(2)} | ${r.trainMs.toFixed(2)} | ${(r.trainMs / r.forwardMs).toFixed(2)}× | ${r.stepsPerS.toFixed(1)} | ${r.peakRssMiB.toFixed(0)} |`),
  ].join('\n');
  return `# Train step vs forward (CPU, ${threads} intra-op threads, median of ${steps} alternating runs after 3 warm-up)\n\n` +
    `${machine}\n` +
    `Models transformed at density 0.25 (SµPar); AdamW on every parameter; data synthetic:count. Peak RSS is the child process's (forward and train sessions both open).\n\n${table}\n`;
}

async function stateTable(ep: Ep, cases: number[], steps: number, threads: number, machine: string): Promise<string> {
  const rows: string[] = [];
  for (const i of cases) {
    const cpu = runChild(i, steps, threads, 'cpu', true);
    const resident = runChild(i, steps, threads, ep, true);
    const trip = runChild(i, steps, threads, ep, false);
    const transfer = trip.trainMs - resident.trainMs;
    rows.push(`| ${cpu.label} | ${cpu.params.toLocaleString('en-US')} | ${resident.stateMiB.toFixed(2)} | ${cpu.trainMs.toFixed(1)} (${cpu.stepsPerS.toFixed(2)}/s) | ` +
      `${resident.trainMs.toFixed(1)} (${resident.stepsPerS.toFixed(2)}/s) | ${trip.trainMs.toFixed(1)} (${trip.stepsPerS.toFixed(2)}/s) | ${resident.trainMs.toFixed(1)} | ${transfer.toFixed(1)} |`);
  }
  const adapter = ep === 'webgpu' ? (process.env.VK_ICD_FILENAMES ? `Vulkan ICD ${process.env.VK_ICD_FILENAMES}` : softwareVulkanEnv() ? 'SwiftShader (software Vulkan on the CPU, from Debian chromium) — not a GPU' : 'the machine\'s GPU') : 'CUDA device 0';
  return `# Train step with the state on the device (${ep.toUpperCase()}; median of ${steps} steps after 3 warm-up)\n\n${machine}\nDevice: ${adapter}.\n` +
    `Models transformed at density 0.25 (SµPar); AdamW on every parameter; data synthetic:count. State = parameters + both AdamW moments. ` +
    `Compute ≈ the resident step (only token ids, targets and the loss cross the bus); transfer ≈ round-tripped − resident (the state sent and read back each step).\n\n` +
    `| model | params | state MiB | CPU step ms | ${ep} step ms, state resident | ${ep} step ms, state round-tripped | compute ms | state transfer ms |\n|---|---:|---:|---:|---:|---:|---:|---:|\n${rows.join('\n')}\n`;
}

await main();
