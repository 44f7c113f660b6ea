/**
 * Transform at LLM scale (issue 11): synthetic decoders with external data (fixtures/llm-builder.ts) at
 * 0.5, 3 and 13.5 GB of weights — GPT-2 small and large in float32, LLaMA-7B in float16 — and for each, in
 * one run: a plain copy of model + data (fs.copyFile), onnxruntime-node's InferenceSession.create in a child
 * process, and `supar-transform model.onnx --density 0.125` through the CLI in a child process (wall time,
 * peak RSS, output size). Writes a markdown table and JSON (bench/results/scale.{md,json}). Not a test.
 *
 *     npm run bench:scale -- [--sizes 0.5,3,13.5] [--dir /big/tmp] [--keep] [--threads 2]
 *                            [--flags='--mask-storage bits'] [--mem-budget 12] [--no-ort-load] [--seed 1]
 *                            [--baseline bench/results/scale-today.json] [--out bench/results/scale]
 *                            [--cli auto|dist|source]
 *
 * --threads N is passed to the CLI (refused when the CLI has no such flag); --flags adds any other
 * transform flags (split on spaces), recorded in the results. --cli picks the code measured: `dist`, the
 * built package that bin/supar-transform.js runs (what a user waits for); `source`, src/ through tsx (which
 * also compiles in each worker thread); `auto` (default), dist when it is at least as new as every file in
 * src/, else source. The choice is in the results.
 *
 * Before generating it checks the disk (input + output of the largest case, ~34 GB at 13.5 GB) and refuses
 * with one line. Before each size it predicts the peak RSS of the transform and of the ORT load from the
 * sizes already measured (predictPeakBytes) and skips the step, saying so in the table, when that exceeds
 * --mem-budget (default 70 % of MemAvailable): today's in-memory path would need ~19 GB at 13.5 GB.
 * Temp files are removed afterwards (also on Ctrl-C) unless --keep. Progress on stderr.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { llmSizes, shapeForSize, type LlmShape } from '../fixtures/llm-builder.js';
import type { ChildUsage, SessionMark } from './scale-child.js';
import { predictPeakBytes, renderScaleMarkdown, type ScaleResults, type SizeResult } from './scale-report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(HERE, 'scale-child.ts');
/** The tsx loader by absolute URL, so the children start from any working directory. */
const TSX = pathToFileURL(createRequire(path.join(HERE, '..', 'package.json')).resolve('tsx')).href;
const GB = 1e9;
const DENSITY = '0.125';

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function parseFlags() {
  try {
    return parseArgs({
      options: {
        sizes: { type: 'string', default: '0.5,3,13.5' },
        dir: { type: 'string', default: os.tmpdir() },
        keep: { type: 'boolean', default: false },
        threads: { type: 'string' },
        flags: { type: 'string', default: '' },
        seed: { type: 'string', default: '1' },
        'mem-budget': { type: 'string' },
        'no-ort-load': { type: 'boolean' },
        baseline: { type: 'string' },
        out: { type: 'string', default: path.join(HERE, 'results', 'scale') },
        cli: { type: 'string', default: 'auto' },
      },
    }).values;
  } catch (e) {
    return fail(`${(e as Error).message.split('\n')[0]} (a value starting with '-' goes after '=': --flags='--mask-storage bits')`);
  }
}
const values = parseFlags();

const log = (s: string) => process.stderr.write(`[bench:scale] ${s}\n`);

// ---------- planning ----------

interface Planned { gb: number; name: string; shape: LlmShape; dataBytes: number; params: number; hiddenElements: number; diskBytes: number }

/** Input (model + data), then the larger of the plain copy and the output (the copy is removed before the transform). */
function diskNeed(dataBytes: number, hiddenElements: number): number {
  const output = dataBytes + hiddenElements; // bool masks: 1 byte per masked element (upper bound)
  return Math.round((dataBytes + Math.max(dataBytes, output)) * 1.03 + 0.2 * GB);
}

function planSizes(text: string): Planned[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const gb = Number(s);
    if (!(gb > 0)) fail(`--sizes '${text}': '${s}' is not a positive size in GB; e.g. --sizes 0.5,3,13.5`);
    const { name, shape } = shapeForSize(gb);
    const z = llmSizes(shape);
    return { gb, name, shape, ...z, diskBytes: diskNeed(z.dataBytes, z.hiddenElements) };
  });
}

function freeDiskBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

/** MemAvailable from /proc/meminfo (Linux), else os.freemem(). */
function availableMemoryBytes(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return os.freemem();
}

// ---------- which CLI ----------

const ROOT = path.join(HERE, '..');
const DIST_MAIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** The CLI module the children import, and how it was chosen. */
function chooseCli(v: string): { kind: 'dist' | 'source'; module: string; why: string } {
  const source = { kind: 'source' as const, module: path.join(ROOT, 'src', 'cli', 'main.ts') };
  if (v === 'source') return { ...source, why: '--cli source' };
  const built = fs.existsSync(DIST_MAIN);
  if (v === 'dist') {
    if (!built) fail(`--cli dist: ${path.relative(process.cwd(), DIST_MAIN)} is missing; run npm run build`);
    return { kind: 'dist', module: DIST_MAIN, why: '--cli dist' };
  }
  if (v !== 'auto') fail(`--cli '${v}': use auto, dist or source`);
  if (!built) return { ...source, why: 'auto: no dist/ build' };
  if (newestMtime(path.join(ROOT, 'src')) > fs.statSync(DIST_MAIN).mtimeMs) return { ...source, why: 'auto: dist/ is older than src/' };
  return { kind: 'dist', module: DIST_MAIN, why: 'auto: dist/ is up to date' };
}
const CLI = chooseCli(values.cli!);

// ---------- children ----------

function runChild(args: string[], stdio: 'pipe' | 'inherit' = 'pipe'): { wall: number; stdout: string; stderr: string; status: number | string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', TSX, CHILD, ...args], {
    encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', stdio], env: { ...process.env, SUPAR_SCALE_CLI: CLI.module },
  });
  if (r.error) throw r.error;
  return { wall: (performance.now() - t0) / 1000, stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status ?? String(r.signal) };
}

function lastJson<T>(text: string, what: string): T {
  const line = text.trim().split('\n').pop();
  if (!line) throw new Error(`${what}: no result line`);
  return JSON.parse(line) as T;
}

function cliHasThreads(): boolean {
  const r = runChild(['cli', path.join(os.tmpdir(), `scale-help-${process.pid}.json`), 'transform', '--help']);
  fs.rmSync(path.join(os.tmpdir(), `scale-help-${process.pid}.json`), { force: true });
  return r.stdout.includes('--threads');
}

function fileBytes(...files: string[]): number {
  return files.reduce((s, f) => s + (fs.existsSync(f) ? fs.statSync(f).size : 0), 0);
}

// ---------- one size ----------

function measureOrtLoad(p: Planned, model: string): NonNullable<SizeResult['ortLoad']> {
  log(`${p.gb} GB: onnxruntime-node InferenceSession.create`);
  const ort = runChild(['ort-load', model]);
  if (ort.status !== 0) throw new Error(`ort-load failed (exit ${ort.status}): ${ort.stderr.trim().split('\n').pop()}`);
  const o = lastJson<ChildUsage & { createSeconds: number }>(ort.stdout, 'ort-load');
  log(`${p.gb} GB: ORT load ${o.createSeconds.toFixed(1)} s at ${(o.peakRssBytes / 2 ** 30).toFixed(2)} GiB`);
  return { createSeconds: o.createSeconds, wallSeconds: ort.wall, peakRssBytes: o.peakRssBytes };
}

function measureSize(p: Planned, work: string, startup: number, ortSkipped: string | undefined): SizeResult {
  const dir = fs.mkdtempSync(path.join(work, `${p.name}-`));
  const model = path.join(dir, 'model.onnx');
  try {
    log(`${p.gb} GB (${p.name}): generate ${(p.dataBytes / GB).toFixed(2)} GB of weights`);
    const gen = runChild(['generate', String(p.gb), model, values.seed!], 'inherit');
    if (gen.status !== 0) throw new Error(`generate failed (exit ${gen.status})`);
    const g = lastJson<ChildUsage & { written: { dataFileBytes: number } }>(gen.stdout, 'generate');

    log(`${p.gb} GB: copy model + data`);
    const copyDir = fs.mkdtempSync(path.join(dir, 'copy-'));
    const c0 = performance.now();
    fs.copyFileSync(model, path.join(copyDir, 'model.onnx'));
    fs.copyFileSync(`${model}.data`, path.join(copyDir, 'model.onnx.data'));
    const copySeconds = (performance.now() - c0) / 1000;
    fs.rmSync(copyDir, { recursive: true, force: true });

    let ortLoad: SizeResult['ortLoad'];
    if (values['no-ort-load'] && ortSkipped === undefined) ortSkipped = 'not run (--no-ort-load)';
    if (ortSkipped === undefined) {
      // onnxruntime failing to load (killed for memory at 13.5 GB float16 on 24 GiB) is a result, not the end of the size.
      try { ortLoad = measureOrtLoad(p, model); } catch (e) { ortSkipped = (e as Error).message.replace('exit SIGKILL', 'killed: out of memory'); }
    }
    if (ortSkipped) log(`${p.gb} GB: onnxruntime load ${ortSkipped}`);

    log(`${p.gb} GB: supar-transform model.onnx ${transformFlags.join(' ')}`);
    const usageFile = path.join(dir, 'cli-usage.json');
    const cliArgs = [model, ...transformFlags];
    const tr = runChild(['cli', usageFile, ...cliArgs]);
    if (tr.status !== 0) throw new Error(`transform failed (exit ${tr.status}): ${tr.stderr.trim().split('\n').pop()}`);
    const t = JSON.parse(fs.readFileSync(usageFile, 'utf8')) as ChildUsage & { mainSeconds: number; sessions: SessionMark[] };
    const out = path.join(dir, 'model.supar.onnx');
    const outputs = fs.readdirSync(dir).filter((f) => f.startsWith('model.supar.'));
    const result: SizeResult = {
      gb: p.gb, name: p.name, shape: p.shape, params: p.params, dataBytes: p.dataBytes, hiddenElements: p.hiddenElements,
      generate: { seconds: g.seconds, peakRssBytes: g.peakRssBytes },
      copy: { seconds: copySeconds, bytes: fileBytes(model, `${model}.data`) },
      ortLoad, ortSkipped,
      transform: {
        wallSeconds: tr.wall, mainSeconds: t.mainSeconds, cpuSeconds: t.cpuSeconds, peakRssBytes: t.peakRssBytes, startupSeconds: startup,
        outputBytes: fileBytes(out, `${out}.data`),
        sessions: t.sessions,
        files: Object.fromEntries(outputs.map((f) => [f, fs.statSync(path.join(dir, f)).size])),
      },
    };
    log(`${p.gb} GB: transform ${t.mainSeconds.toFixed(1)} s (${tr.wall.toFixed(1)} s wall) at ${(t.peakRssBytes / 2 ** 30).toFixed(2)} GiB`);
    return result;
  } finally {
    if (values.keep) log(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

function predictPeak(done: SizeResult[], p: Planned, step: 'transform' | 'ortLoad'): number | undefined {
  return predictPeakBytes(done.flatMap((r) => (r[step] ? [{ bytes: r.dataBytes, peak: r[step]!.peakRssBytes }] : [])), p.dataBytes);
}

const memoryBudget = () => memBudget ?? 0.7 * availableMemoryBytes();
const tooBig = (predicted: number | undefined) =>
  predicted !== undefined && predicted > memoryBudget()
    ? `not run (needs ~${(predicted / GB).toFixed(predicted < 10 * GB ? 1 : 0)} GB, a line through the peak RSS measured above; budget ${(memoryBudget() / GB).toFixed(1)} GB)`
    : undefined;

// ---------- main ----------

const planned = planSizes(values.sizes!);
const work = path.resolve(values.dir!);
if (!fs.existsSync(work) || !fs.statSync(work).isDirectory()) fail(`--dir ${work}: not a folder; pass an existing folder with room for the models`);
const needDisk = values.keep ? planned.reduce((s, p) => s + p.diskBytes, 0) : Math.max(...planned.map((p) => p.diskBytes));
const freeDisk = freeDiskBytes(work);
if (needDisk > freeDisk) {
  const big = planned.reduce((a, b) => (b.diskBytes > a.diskBytes ? b : a));
  fail(`${work}: ${(freeDisk / GB).toFixed(1)} GB free, the run needs ~${(needDisk / GB).toFixed(1)} GB (the ${big.gb} GB case: input + output${values.keep ? ', all sizes kept' : ''}); free space, pass --dir on a bigger disk, or drop sizes from --sizes`);
}
if (values.threads !== undefined && !cliHasThreads()) fail(`--threads ${values.threads}: this CLI has no --threads flag (yet); run without it`);
/** The transform's flags after the model path. */
const transformFlags = ['--density', DENSITY, ...(values.threads ? ['--threads', values.threads] : []), ...values.flags!.split(/\s+/).filter(Boolean)];
const memBudget = values['mem-budget'] !== undefined ? Number(values['mem-budget']) * GB : undefined;
if (memBudget !== undefined && !(memBudget > 0)) fail(`--mem-budget '${values['mem-budget']}': not a positive number of GB`);

const tmp = fs.mkdtempSync(path.join(work, 'supar-scale-'));
const cleanup = () => { if (!values.keep) fs.rmSync(tmp, { recursive: true, force: true }); };
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { cleanup(); process.exit(130); });

const machine = {
  cpu: os.cpus()[0]?.model ?? 'cpu', cores: os.cpus().length, memoryBytes: os.totalmem(), availableMemoryBytes: availableMemoryBytes(),
  node: process.version, platform: `${os.type()} ${os.release()} ${os.arch()}`, loadAverageStart: os.loadavg(),
};
log(`${machine.cores} cores, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB (${(machine.availableMemoryBytes / 2 ** 30).toFixed(1)} available), ${(freeDisk / GB).toFixed(1)} GB free in ${work}`);
const results: SizeResult[] = [];
try {
  const s = runChild(['cli', path.join(tmp, 'version.json'), '--version']);
  const startup = s.wall;
  for (const p of planned) {
    const why = tooBig(predictPeak(results, p, 'transform'));
    if (why) {
      log(`${p.gb} GB: transform ${why}`);
      results.push({ gb: p.gb, name: p.name, shape: p.shape, params: p.params, dataBytes: p.dataBytes, hiddenElements: p.hiddenElements, skipped: why });
      continue;
    }
    try {
      results.push(measureSize(p, tmp, startup, tooBig(predictPeak(results, p, 'ortLoad'))));
    } catch (e) {
      log(`${p.gb} GB: ${(e as Error).message}`);
      results.push({ gb: p.gb, name: p.name, shape: p.shape, params: p.params, dataBytes: p.dataBytes, hiddenElements: p.hiddenElements, error: (e as Error).message });
    }
  }
} finally {
  cleanup();
}

const baseline = values.baseline ? JSON.parse(fs.readFileSync(values.baseline, 'utf8')) as ScaleResults : undefined;
const git = spawnSync('git', ['log', '-1', '--format=%h %s', '--', 'src'], { cwd: path.join(HERE, '..'), encoding: 'utf8' });
const report: ScaleResults = {
  date: new Date().toISOString().slice(0, 10), commit: git.status === 0 ? git.stdout.trim().slice(0, 100) : undefined, density: Number(DENSITY), seed: Number(values.seed), flags: transformFlags.join(' '), cli: `${CLI.kind} (${CLI.why})`,
  machine: { ...machine, loadAverageEnd: os.loadavg() }, sizes: results,
};
const md = renderScaleMarkdown(report, baseline, values.baseline && path.relative(path.dirname(values.out!), values.baseline));
fs.mkdirSync(path.dirname(values.out!), { recursive: true });
fs.writeFileSync(`${values.out}.md`, md);
fs.writeFileSync(`${values.out}.json`, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(md);
log(`wrote ${values.out}.md and ${values.out}.json`);
