/**
 * The corpus run (fixtures/hf, ground truth in `<stem>.truth.json`): each file goes through the stages a new user
 * would try, with the CLI's default flags, and each stage passes or fails with a one-line reason.
 *
 *   transform   `supar-transform f.onnx --density 0.125` exits 0
 *   runs        the written model loads in onnxruntime and runs on seeded inputs of the example shapes
 *               (finite outputs, the input model's output shapes)
 *   roles       every initializer's reported role equals the truth's (or one of its accepted alternatives);
 *               a truth buffer may be absent from the report
 *   sharing     the initializers the truth says are one parameter are tied to each other in the report
 *   attention   one site per attention layer, each with the truth's d_head, the model's true logit scale
 *               before (rel. 1e-3) and 1/d_head after
 *   scale_numeric `--density 1 --init keep` (SµPar, m_d = 1, α = 1: only the attention scale changes) computes
 *               what the PyTorch model computes with its logit scale set to 1/d_head (`scaled_reference` in the
 *               truth: 64 sampled output values, rel. 1e-3 + abs. 1e-4); "ok (no reference)" where the generator
 *               could not set the scale in PyTorch (no `scaling` attribute: BLOOM, CodeGen, Falcon, GPT-J, MPT,
 *               DeBERTa, no attention)
 *   emit_train  the same transform with `--emit-train` exits 0 and writes the train graph
 *   train       `supar-transform train f.supar.onnx --steps 5` exits 0 and the loss falls (last < first, finite)
 *   coord_check `coord-check` on the input model, 2 densities × 2 steps (stage script only)
 *   sweep       `sweep`, 2 densities × 2 LRs × 2 steps (stage script only)
 *
 * A stage after one it needs (runs/roles/sharing/attention need transform, train needs emit_train) that could not
 * run fails with "not reached". The CLI runs in-process (main()), its stdout/stderr captured.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { main } from '../src/cli/main.js';
import { ROOT } from './helpers.js';

export const HF = path.join(ROOT, 'fixtures', 'hf');

export const TEST_STAGES = ['transform', 'runs', 'roles', 'sharing', 'attention', 'scale_numeric', 'emit_train', 'train'] as const;
export const ALL_STAGES = [...TEST_STAGES, 'coord_check', 'sweep'] as const;
export type Stage = (typeof ALL_STAGES)[number];

export interface StageResult {
  ok: boolean;
  /** One line: the CLI's error, the first mismatches, or "ok". */
  reason: string;
}

export interface ManifestEntry {
  file: string | null;
  name?: string;
  family: string;
  cls: string;
  exporter: 'ts' | 'dynamo';
  static?: boolean;
  inputs?: string[];
  outputs?: string[];
  example_shapes?: Record<string, number[]>;
  example_dtypes?: Record<string, string>;
  exercises?: string;
  error?: string;
}

export interface TruthInit {
  role: string;
  param: string | null;
  match: string;
  alt_roles?: string[];
}

export interface Truth {
  file: string;
  family: string;
  initializers: Record<string, TruthInit>;
  shared: string[][];
  attention: { heads?: number; kv_heads?: number; d_head: number; scale: number; layers?: number | null; causal?: boolean } | null;
  objective?: string;
  scaled_reference?: { output: string; indices: number[]; values: number[]; unscaled: number[] } | null;
}

export function readManifest(): { versions: Record<string, string>; models: ManifestEntry[] } {
  return JSON.parse(fs.readFileSync(path.join(HF, 'manifest.json'), 'utf8'));
}

/** The exported files of the corpus (manifest entries with a file and a truth file), sorted by name. */
export function corpusFiles(): { entry: ManifestEntry & { file: string }; truth: Truth }[] {
  return readManifest().models
    .filter((e): e is ManifestEntry & { file: string } => e.file !== null && fs.existsSync(truthPath(e.file)))
    .map((entry) => ({ entry, truth: JSON.parse(fs.readFileSync(truthPath(entry.file), 'utf8')) as Truth }))
    .sort((a, b) => a.entry.file.localeCompare(b.entry.file));
}

function truthPath(file: string): string {
  return path.join(HF, file.replace(/\.onnx$/, '.truth.json'));
}

/** Runs the CLI in-process; stdout/stderr are captured, not printed. */
export async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [w1, w2] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(args);
  } catch (e) {
    code = 1;
    err.push(`thrown: ${(e as Error)?.message ?? String(e)}`);
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
    process.exitCode = undefined;
  }
  return { code, stdout: out.join(''), stderr: err.join('') };
}

/** The CLI's one-line error (first non-empty stderr line), or the exit code. */
function cliReason(r: { code: number; stderr: string; stdout: string }): string {
  const line = r.stderr.split('\n').map((s) => s.trim()).find((s) => s.length > 0);
  return `exit ${r.code}: ${oneLine(line ?? r.stdout.split('\n').at(-2) ?? '')}`;
}

export function oneLine(s: string, max = 240): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** Seeded feeds of the example shapes: token ids below 100, masks of ones, floats from a sine, past tensors of zeros. */
export function exampleFeeds(entry: ManifestEntry): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of entry.inputs ?? []) {
    const dims = entry.example_shapes![name]!;
    const n = dims.reduce((a, b) => a * b, 1);
    const dtype = entry.example_dtypes![name]!;
    if (dtype === 'int64') {
      const mask = /mask/.test(name);
      feeds[name] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => (mask ? 1n : BigInt((i * 37 + 11) % 100))), dims);
    } else {
      const past = /past/.test(name);
      feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => (past ? 0 : Math.sin(i * 0.37))), dims);
    }
  }
  return feeds;
}

const QUIET: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3, intraOpNumThreads: 1 };

async function runModel(file: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(file, QUIET);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

interface ReportTensor { name: string; role: string; tie?: { with: string; kind: string } | null }
interface ReportSite { d_head: number; before: number; after: number; rewrite: string; layer?: number | null }
interface Report { tensors: ReportTensor[]; attention: ReportSite[]; ties: { copy: string; table: string; tie: string }[] }

export function checkRoles(report: Report, truth: Truth): StageResult {
  const byName = new Map(report.tensors.map((t) => [t.name, t.role]));
  const bad: string[] = [];
  for (const [name, t] of Object.entries(truth.initializers)) {
    const got = byName.get(name) ?? (t.role === 'buffer' ? 'buffer' : 'absent');
    if (got !== t.role && !(t.alt_roles ?? []).includes(got)) bad.push(`${name} ${got}≠${t.role}`);
  }
  const total = Object.keys(truth.initializers).length;
  return bad.length === 0 ? { ok: true, reason: 'ok' } : { ok: false, reason: oneLine(`${bad.length}/${total} roles differ (got≠truth): ${bad.slice(0, 4).join(', ')}`) };
}

export function checkSharing(report: Report, truth: Truth): StageResult {
  // Union of the report's ties (tensor.tie.with and report.ties copy↔table).
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    while (parent.has(x) && parent.get(x) !== x) x = parent.get(x)!;
    return x;
  };
  const union = (a: string, b: string) => parent.set(find(a), find(b));
  for (const t of report.tensors) if (t.tie?.with) union(t.name, t.tie.with);
  for (const t of report.ties ?? []) union(t.copy, t.table);
  const bad = truth.shared.filter((group) => new Set(group.map(find)).size !== 1);
  return bad.length === 0 ? { ok: true, reason: 'ok' } : { ok: false, reason: oneLine(`${bad.length}/${truth.shared.length} shared parameters not tied: ${bad.slice(0, 2).map((g) => g.join(' = ')).join('; ')}`) };
}

export function checkAttention(report: Report, truth: Truth): StageResult {
  const att = truth.attention;
  const sites = report.attention ?? [];
  if (!att) return sites.length === 0 ? { ok: true, reason: 'ok (no attention)' } : { ok: false, reason: `${sites.length} attention sites in a model without attention` };
  const bad: string[] = [];
  if (att.layers && sites.length !== att.layers) bad.push(`${sites.length} sites for ${att.layers} attention layers`);
  if (!att.layers && sites.length === 0) bad.push('no attention site');
  for (const s of sites) {
    const where = `site L${s.layer ?? '?'}`;
    if (s.d_head !== att.d_head) bad.push(`${where}: d_head ${s.d_head}≠${att.d_head}`);
    if (!(Math.abs(s.before - att.scale) <= 1e-3 * att.scale)) bad.push(`${where}: scale before ${fmt(s.before)}≠${fmt(att.scale)}`);
    if (!(Math.abs(s.after - 1 / att.d_head) <= 1e-6)) bad.push(`${where}: scale after ${fmt(s.after)}≠1/${att.d_head}`);
  }
  return bad.length === 0 ? { ok: true, reason: 'ok' } : { ok: false, reason: oneLine(`${[...new Set(bad)].slice(0, 3).join('; ')}`) };
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toPrecision(4) : String(x);
}

async function checkRuns(entry: ManifestEntry, input: string, output: string): Promise<StageResult> {
  const feeds = exampleFeeds(entry);
  let want: Record<string, ort.Tensor>;
  try {
    want = await runModel(input, feeds);
  } catch (e) {
    return { ok: false, reason: oneLine(`the INPUT model does not run on the example feeds: ${(e as Error).message}`) };
  }
  try {
    const got = await runModel(output, exampleFeeds(entry));
    for (const [name, t] of Object.entries(want)) {
      const g = got[name];
      if (!g) return { ok: false, reason: `output ${name} missing` };
      if (g.dims.join(',') !== t.dims.join(',')) return { ok: false, reason: `output ${name} dims [${g.dims}] ≠ [${t.dims}]` };
      if (g.type === 'float32' && !(g.data as Float32Array).every(Number.isFinite)) return { ok: false, reason: `output ${name} not finite` };
    }
    return { ok: true, reason: 'ok' };
  } catch (e) {
    return { ok: false, reason: oneLine(`onnxruntime: ${(e as Error).message}`) };
  }
}

function lossFalls(logFile: string): StageResult {
  if (!fs.existsSync(logFile)) return { ok: false, reason: 'no loss log written' };
  const log = JSON.parse(fs.readFileSync(logFile, 'utf8')) as { loss: number[] };
  const l = log.loss ?? [];
  if (l.length < 2 || !l.every(Number.isFinite)) return { ok: false, reason: `losses ${l.map(fmt).join(', ')}` };
  return l.at(-1)! < l[0]! ? { ok: true, reason: `ok (${fmt(l[0]!)} → ${fmt(l.at(-1)!)})` } : { ok: false, reason: `loss did not fall: ${l.map(fmt).join(', ')}` };
}

async function checkScaleNumeric(entry: ManifestEntry & { file: string }, truth: Truth, input: string, dir: string): Promise<StageResult> {
  const ref = truth.scaled_reference;
  if (!ref) return { ok: true, reason: 'ok (no reference)' };
  // The same feeds give the PyTorch model's own output on the input model (else the comparison is meaningless).
  const plain = (await runModel(input, exampleFeeds(entry)))[ref.output]!.data as Float32Array;
  const far = ref.indices.findIndex((idx, k) => !(Math.abs(plain[idx]! - ref.unscaled[k]!) <= 1e-4 + 1e-3 * Math.abs(ref.unscaled[k]!)));
  if (far >= 0) return { ok: false, reason: `the input model does not reproduce the truth's PyTorch output on the harness feeds (index ${ref.indices[far]}): truth or feeds are wrong` };
  const out = path.join(dir, 'keep.supar.onnx');
  const r = await cli([input, '--density', '1', '--init', 'keep', '-o', out]);
  if (r.code !== 0) return { ok: false, reason: `density 1 keep: ${cliReason(r)}` };
  let got: Float32Array;
  try {
    got = (await runModel(out, exampleFeeds(entry)))[ref.output]!.data as Float32Array;
  } catch (e) {
    return { ok: false, reason: oneLine(`onnxruntime: ${(e as Error).message}`) };
  }
  let worst = 0;
  let at = -1;
  ref.indices.forEach((idx, k) => {
    const want = ref.values[k]!;
    const err = Math.abs(got[idx]! - want) / (1e-4 + 1e-3 * Math.abs(want));
    if (!(err <= worst)) [worst, at] = [Number.isFinite(err) ? err : Infinity, k];
  });
  if (worst <= 1) return { ok: true, reason: 'ok' };
  const k = at;
  return { ok: false, reason: `output with the 1/d_head rewrite differs from PyTorch at scale 1/d_head: [${ref.indices[k]}] ${fmt(got[ref.indices[k]!]!)} vs ${fmt(ref.values[k]!)}` };
}

const NOT_REACHED = (after: string): StageResult => ({ ok: false, reason: `not reached (${after} failed)` });

/** Runs the stages on one corpus file in a fresh temporary folder (removed afterwards). */
export async function runStages(entry: ManifestEntry & { file: string }, truth: Truth, stages: readonly Stage[] = TEST_STAGES): Promise<Record<Stage, StageResult>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-corpus-'));
  const res = {} as Record<Stage, StageResult>;
  try {
    const input = path.join(dir, entry.file);
    fs.copyFileSync(path.join(HF, entry.file), input);
    const sup = input.replace(/\.onnx$/, '.supar.onnx');
    // The transform with --emit-train first: when it passes, so does the plain transform (the common case, once).
    const withTrain = await cli([input, '--density', '0.125', '--emit-train']);
    const trainFile = input.replace(/\.onnx$/, '.supar.train.onnx');
    if (withTrain.code === 0 && fs.existsSync(trainFile)) {
      res.transform = { ok: true, reason: 'ok' };
      res.emit_train = { ok: true, reason: 'ok' };
    } else {
      res.emit_train = { ok: false, reason: withTrain.code === 0 ? 'exit 0 but no train graph written' : cliReason(withTrain) };
      for (const f of fs.readdirSync(dir)) if (f !== entry.file) fs.rmSync(path.join(dir, f), { force: true, recursive: true });
      const plain = await cli([input, '--density', '0.125']);
      res.transform = plain.code === 0 ? { ok: true, reason: 'ok' } : { ok: false, reason: cliReason(plain) };
    }
    const reportFile = input.replace(/\.onnx$/, '.supar.report.json');
    if (res.transform.ok && fs.existsSync(reportFile)) {
      const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report;
      res.runs = await checkRuns(entry, input, sup);
      res.roles = checkRoles(report, truth);
      res.sharing = checkSharing(report, truth);
      res.attention = checkAttention(report, truth);
      res.scale_numeric = await checkScaleNumeric(entry, truth, input, dir);
    } else {
      for (const s of ['runs', 'roles', 'sharing', 'attention', 'scale_numeric'] as const) res[s] = NOT_REACHED('transform');
    }
    if (res.emit_train.ok) {
      const log = path.join(dir, 'loss.json');
      const tr = await cli(['train', sup, '--steps', '5', '--log', log]);
      res.train = tr.code === 0 ? lossFalls(log) : { ok: false, reason: cliReason(tr) };
    } else {
      res.train = NOT_REACHED('emit_train');
    }
    if (stages.includes('coord_check')) {
      const r = await cli(['coord-check', input, '--densities', '1,0.25', '--steps', '2', '--out', path.join(dir, 'cc')]);
      res.coord_check = r.code === 0 ? { ok: true, reason: 'ok' } : { ok: false, reason: cliReason(r) };
    }
    if (stages.includes('sweep')) {
      const r = await cli(['sweep', input, '--densities', '1,0.25', '--lrs', '2^-10,2^-6', '--steps', '2', '--last-k', '1', '--out', path.join(dir, 'sw')]);
      res.sweep = r.code === 0 ? { ok: true, reason: 'ok' } : { ok: false, reason: cliReason(r) };
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return res;
}

/** `file|stage` → reason, of the known failures list (test/corpus-known-failures.json). */
export const KNOWN_FAILURES_FILE = path.join(ROOT, 'test', 'corpus-known-failures.json');

export function readKnownFailures(): Map<string, string> {
  const rows = JSON.parse(fs.readFileSync(KNOWN_FAILURES_FILE, 'utf8')) as { failures: { file: string; stage: string; reason: string }[] };
  return new Map(rows.failures.map((r) => [`${r.file}|${r.stage}`, r.reason]));
}
