/**
 * Transform time and peak RSS for a GPT-2-small-shaped model (vocab 50257, d 768, 12 layers, 12 heads,
 * 1024 positions: ≈124M float32 parameters), density 0.125, beside a plain copy of the file and
 * onnxruntime-node's InferenceSession.create of it — in one run, each step in its own child process so
 * that its peak RSS is its own. Prints a markdown table and saves bench/results/transform.md.
 *
 *     npm run bench:transform            (or: node --import tsx bench/transform.ts [--layers 12] [--keep])
 *
 * Aim (issue 3): transform < 3× ORT load time, peak RSS < 2× model size; (issue 13) the load check of every
 * written graph must not double the transform time: `write` vs `write-checked` isolates it. Not a test.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, 'transform-child.ts');
const { values } = parseArgs({ options: { layers: { type: 'string', default: '12' }, keep: { type: 'boolean', default: false } } });

interface Measure { step: string; seconds: number; cpuSeconds: number; peakRssMiB: number; note?: string }

function run(step: string, args: string[]): Measure {
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, step, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${step} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Measure;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-bench-'));
const model = path.join(dir, 'gpt2-small.onnx');
try {
  const gen = run('generate', [model, values.layers!]);
  const bytes = fs.statSync(model).size;
  const baseline = run('idle', []);
  const copy = run('copy', [model, path.join(dir, 'copy.onnx')]);
  const ortLoad = run('ort-load', [model]);
  const write = run('write', [model, path.join(dir, 'write.onnx')]);
  const writeChecked = run('write-checked', [model, path.join(dir, 'write-checked.onnx')]);
  const tr = run('transform', [model, path.join(dir, 'gpt2-small.supar.onnx')]);
  const out = fs.statSync(path.join(dir, 'gpt2-small.supar.onnx')).size;
  const mib = bytes / 2 ** 20;
  const rows: Measure[] = [baseline, copy, ortLoad, write, writeChecked, tr];
  const lines = [
    `# bench/transform.ts — ${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores), node ${process.version}`,
    '',
    `GPT-2-small-shaped model (vocab 50257, d 768, ${values.layers} layers, 12 heads, 1024 positions, tied LM head as GPT-2; fixtures/gpt-builder.ts): ${gen.note}; file ${mib.toFixed(1)} MiB; output ${(out / 2 ** 20).toFixed(1)} MiB. Density 0.125, rules supar, --init resample, seed 0. Each step in its own child process; time measured inside the child (excludes node/tsx start-up), peak RSS = the child's maxRSS (includes the idle baseline).`,
    '',
    '| step | time (s) | CPU (s) | peak RSS (MiB) | RSS / model size | note |',
    '|---|---|---|---|---|---|',
    ...rows.map((m) => `| ${m.step} | ${m.seconds.toFixed(2)} | ${m.cpuSeconds.toFixed(2)} | ${m.peakRssMiB.toFixed(0)} | ${(m.peakRssMiB / mib).toFixed(2)}× | ${m.note ?? ''} |`),
    '',
    `Load average during the run (1/5/15 min): ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')} on ${os.cpus().length} cores — timings on a shared machine are noisy; the ratio is taken within one run.`,
    '',
    `Transform / ORT load time: **${(tr.seconds / ortLoad.seconds).toFixed(2)}×** (aim < 3×). Transform peak RSS / model size: **${(tr.peakRssMiB / mib).toFixed(2)}×** (aim < 2×).`,
    '',
    `Load check (every written graph opened by onnxruntime before the rename): write-checked − write = ${(writeChecked.cpuSeconds - write.cpuSeconds).toFixed(2)} s CPU, ${(writeChecked.peakRssMiB - write.peakRssMiB).toFixed(0)} MiB peak RSS; that is ${(100 * (writeChecked.cpuSeconds - write.cpuSeconds) / tr.cpuSeconds).toFixed(0)} % of the transform's CPU time (which includes it).`,
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(text);
  fs.mkdirSync(path.join(here, 'results'), { recursive: true });
  fs.writeFileSync(path.join(here, 'results', 'transform.md'), text);
} finally {
  if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`kept ${dir}\n`);
}
