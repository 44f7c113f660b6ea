/**
 * The Node side of the GPU check (bench/gpu/README.md). For each model: transform at density 0.25 (SµPar),
 * build the AdamW train step, train the same batches on CPU and on each requested GPU provider (state on
 * the device), and record steps/s (median step after `warmup`) and the CPU-vs-GPU loss agreement (max
 * relative difference per step). Bundled by bench/gpu/pack.ts into one file that runs with plain Node.
 *
 *     node check.mjs --ep webgpu[,cuda] --steps 20 --out results/     (in the unpacked bundle: ./run.sh)
 *     node check.mjs --report results/                                 (merges node.json + torch.json into results.md)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { buildGpt, type GptConfig } from '../../fixtures/gpt-builder.js';
import { readModel } from '../../src/onnx/codec.js';
import { transform } from '../../src/transform.js';
import { openBatchSource } from '../../src/train/data.js';
import { createTrainer, feedsForBatch, type Ep } from '../../src/train/runner.js';
import { buildTrainStep } from '../../src/train/train-step.js';
import { checkKernels, CUDA_PROVIDER, WEBGPU_PROVIDER } from '../../src/runtime/kernels.js';

export interface GpuCheckModel { id: string; label: string; gpt: GptConfig | 'fixture'; batch: number; seq: number }

/** The models of the check; torch_gpt.py builds the same architectures from this list (models.json). */
export const MODELS: GpuCheckModel[] = [
  { id: 'gpt-tiny', label: 'gpt-tiny fixture (d 64, 2 layers, 4 heads, vocab 256)', gpt: 'fixture', batch: 8, seq: 64 },
  { id: 'gpt-d256', label: 'GPT d 256, 4 layers, 4 heads, vocab 512', gpt: { vocab: 512, dModel: 256, layers: 4, heads: 4, maxPos: 128, seed: 1 }, batch: 8, seq: 128 },
  { id: 'gpt-d512', label: 'GPT d 512, 4 layers, 8 heads, vocab 1024', gpt: { vocab: 1024, dModel: 512, layers: 4, heads: 8, maxPos: 128, seed: 1 }, batch: 4, seq: 128 },
];
const FIXTURE_CONFIG: GptConfig = { vocab: 256, dModel: 64, layers: 2, heads: 4, maxPos: 64 };

export interface EpRun { ep: string; ok: boolean; error?: string; stepsPerS?: number; medianStepMs?: number; losses?: number[]; maxRelLossDiffVsCpu?: number; fallbacks?: number }
export interface ModelRun { id: string; label: string; batch: number; seq: number; params: number; runs: EpRun[] }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function runModel(m: GpuCheckModel, eps: Ep[], steps: number, warmup: number, appDir: string): Promise<ModelRun> {
  const loaded = m.gpt === 'fixture'
    ? readModel(path.join(appDir, 'fixtures', 'gpt-tiny.onnx'))
    : { model: buildGpt(m.gpt), path: `${m.id}.onnx`, baseDir: os.tmpdir(), fileBytes: 0 };
  const r = await transform(loaded, { density: 0.25, seed: 0 });
  const ts = buildTrainStep(r.model, loaded.baseDir, r.lrGroups, { loss: 'cross_entropy', optimizer: { kind: 'adamw' } });
  const vocab = m.gpt === 'fixture' ? FIXTURE_CONFIG.vocab : m.gpt.vocab;
  const runs: EpRun[] = [];
  for (const ep of ['cpu' as const, ...eps]) {
    try {
      const src = openBatchSource('synthetic:count', { batch: m.batch, seq: m.seq, seed: 0, vocab });
      const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model: r.model, baseDir: loaded.baseDir }, ep, say: () => {} });
      const losses: number[] = [];
      const times: number[] = [];
      try {
        for (let i = 0; i < warmup + steps; i++) {
          const t0 = performance.now();
          losses.push((await tr.step(feedsForBatch(ts.io, src.next()), 1e-3)).loss);
          if (i >= warmup) times.push(performance.now() - t0);
        }
      } finally {
        await tr.release();
      }
      const ms = median(times);
      const provider = ep === 'cuda' ? CUDA_PROVIDER : WEBGPU_PROVIDER;
      runs.push({ ep, ok: true, stepsPerS: 1000 / ms, medianStepMs: ms, losses, ...(ep === 'cpu' ? {} : { fallbacks: checkKernels(ts.train, provider).fallbacks.length }) });
    } catch (e) {
      runs.push({ ep, ok: false, error: (e as Error).message.split('\n')[0] });
    }
  }
  const cpu = runs[0]!.losses;
  for (const run of runs.slice(1)) {
    if (cpu && run.losses) run.maxRelLossDiffVsCpu = Math.max(...run.losses.map((l, i) => Math.abs(l - cpu[i]!) / Math.abs(cpu[i]!)));
  }
  const params = ts.io.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
  return { id: m.id, label: m.label, batch: m.batch, seq: m.seq, params, runs };
}

interface TorchRun { id: string; device: string; ok: boolean; error?: string; stepsPerS?: number; medianStepMs?: number; losses?: number[] }

function report(dir: string): string {
  const node = JSON.parse(fs.readFileSync(path.join(dir, 'node.json'), 'utf8')) as { machine: Record<string, string>; models: ModelRun[] };
  const torchFile = path.join(dir, 'torch.json');
  const torch = fs.existsSync(torchFile) ? (JSON.parse(fs.readFileSync(torchFile, 'utf8')) as { runs: TorchRun[]; torch?: string; error?: string }) : { runs: [], error: 'torch.json missing (PyTorch not run)' };
  const rows: string[] = [];
  for (const m of node.models) {
    for (const r of m.runs) {
      rows.push(`| ${m.label}, batch ${m.batch}×${m.seq} | onnxruntime ${r.ep}${r.ep === 'cpu' ? '' : ' (state on device)'} | ${r.ok ? r.stepsPerS!.toFixed(2) : `failed: ${r.error}`} | ${r.ok ? r.medianStepMs!.toFixed(1) : ''} | ${r.maxRelLossDiffVsCpu === undefined ? (r.ep === 'cpu' ? 'reference' : '') : r.maxRelLossDiffVsCpu.toExponential(2)} | ${r.fallbacks ?? ''} |`);
    }
    for (const t of torch.runs.filter((x) => x.id === m.id)) {
      rows.push(`| ${m.label}, batch ${m.batch}×${m.seq} | PyTorch ${t.device} (same architecture, own init) | ${t.ok ? t.stepsPerS!.toFixed(2) : `failed: ${t.error}`} | ${t.ok ? t.medianStepMs!.toFixed(1) : ''} | not compared | |`);
    }
  }
  const machine = Object.entries(node.machine).map(([k, v]) => `${k}: ${v}`).join('; ');
  return `# GPU check: SµPar train step on onnxruntime (CPU, WebGPU, CUDA) and PyTorch\n\n${machine}; PyTorch: ${torch.torch ?? torch.error ?? 'unknown'}.\n` +
    `Models transformed at density 0.25 (SµPar), AdamW, lr 1e-3, data synthetic:count; median step after warm-up. ` +
    `Loss agreement: max over steps of |loss_gpu − loss_cpu| / loss_cpu, same batches.\n\n` +
    `| model | runtime | steps/s | step ms | max rel. loss diff vs CPU | GPU fallback nodes (table) |\n|---|---|---:|---:|---:|---:|\n${rows.join('\n')}\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    ep: { type: 'string', default: 'webgpu' }, steps: { type: 'string', default: '20' }, warmup: { type: 'string', default: '3' },
    out: { type: 'string', default: 'results' }, models: { type: 'string' }, report: { type: 'string' }, 'write-models': { type: 'string' },
  } });
  const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const ids = values.models?.split(',');
  if (values['write-models']) {
    const models = MODELS.filter((m) => !ids || ids.includes(m.id)).map((m) => ({ ...m, gpt: m.gpt === 'fixture' ? FIXTURE_CONFIG : m.gpt }));
    fs.writeFileSync(values['write-models'], `${JSON.stringify(models, null, 1)}\n`);
    return;
  }
  if (values.report) {
    const text = report(values.report);
    fs.writeFileSync(path.join(values.report, 'results.md'), text);
    process.stdout.write(text);
    return;
  }
  const eps = values.ep!.split(',').filter(Boolean) as Ep[];
  const models = MODELS.filter((m) => !ids || ids.includes(m.id));
  const out = path.resolve(values.out!);
  fs.mkdirSync(out, { recursive: true });
  const results: ModelRun[] = [];
  for (const m of models) {
    process.stderr.write(`${m.label}: ${['cpu', ...eps].join(', ')}\n`);
    results.push(await runModel(m, eps, Number(values.steps), Number(values.warmup), appDir));
  }
  const machine = { cpu: `${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length}`, node: process.version, onnxruntime: ort.env.versions.common, host: os.hostname(), vulkan: process.env.VK_ICD_FILENAMES ?? 'system ICDs' };
  fs.writeFileSync(path.join(out, 'node.json'), `${JSON.stringify({ machine, models: results }, null, 1)}\n`);
}

await main();
