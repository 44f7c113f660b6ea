/**
 * Local sweep wall time with `--jobs 1` (every run in one process) against `--jobs 2` (two worker
 * processes, one onnxruntime thread each), for the same study, in one run; also checks that both give
 * byte-identical sweep.json. The study: the fixture GPT and a d-128 GPT, 3 densities × 4 LRs × 150 steps
 * (SµPar). Prints a markdown table and saves bench/results/sweep.md. Not a test.
 *
 *     npm run bench:sweep          (or: node --import tsx bench/sweep.ts [--steps 150])
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { encodeModel } from '../src/onnx/codec.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const { values } = parseArgs({ options: { steps: { type: 'string', default: '150' } } });
const tsx = pathToFileURL(createRequire(path.join(root, 'package.json')).resolve('tsx')).href;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-bench-sweep-'));
const d128 = path.join(dir, 'gpt-d128.onnx');
fs.writeFileSync(d128, encodeModel(buildGpt({ vocab: 256, dModel: 128, layers: 2, heads: 4, maxPos: 64, seed: 1 })));
const models = [{ label: 'gpt-tiny fixture (d 64)', file: path.join(root, 'fixtures', 'gpt-tiny.onnx') }, { label: 'GPT d 128, 2 layers', file: d128 }];

function sweep(model: string, jobs: number, out: string): number {
  const args = ['--import', tsx, path.join(root, 'test', 'cli-entry.ts'), 'sweep', model, '--densities', '1,1/4,1/16', '--lrs', '2^-10:2^-7',
    '--steps', values.steps!, '--rules', 'supar', '--batch', '4', '--seq', '32', '--jobs', String(jobs), '--out', out];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sweep --jobs ${jobs} failed: ${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

const rows: string[] = [];
for (const m of models) {
  const t1 = sweep(m.file, 1, path.join(dir, `${path.basename(m.file)}-j1`));
  const t2 = sweep(m.file, 2, path.join(dir, `${path.basename(m.file)}-j2`));
  const same = fs.readFileSync(path.join(dir, `${path.basename(m.file)}-j1`, 'sweep.json')).equals(fs.readFileSync(path.join(dir, `${path.basename(m.file)}-j2`, 'sweep.json')));
  rows.push(`| ${m.label} | 12 | ${t1.toFixed(1)} | ${t2.toFixed(1)} | ${(t1 / t2).toFixed(2)}× | ${same ? 'yes' : 'NO'} |`);
  process.stderr.write(`${rows.at(-1)}\n`);
}
const table = [
  `Local sweep wall time, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'}), ${values.steps} steps per run, batch 4 × 32, node ${process.version}.`,
  '',
  '| model | runs | --jobs 1 (s) | --jobs 2 (s) | speed-up | sweep.json identical |',
  '|---|---|---|---|---|---|',
  ...rows,
  '',
].join('\n');
process.stdout.write(table);
fs.writeFileSync(path.join(here, 'results', 'sweep.md'), table);
