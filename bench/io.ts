/**
 * I/O benchmark: `node --import tsx bench/io.ts [--mb 400] [--gib 2.2] [--keep]`.
 *
 * Builds a synthetic model (y = x + W0 + … + Wk, float32 initializers) in a temp folder, then measures in
 * one run, each step in its own child process so that peak RSS is that step's alone
 * (process.resourceUsage().maxRSS at the child's end):
 *   plain file copy · readModel · readModel + writeModel (inline) · readModel + writeModel (external data)
 *   · onnxruntime-node InferenceSession.create of the inline file and of the external-data file.
 * `--mb N` (default 400): N MB of initializers stored inline. `--gib G`: G GiB written as external data
 * (the > 2 GiB case; inline steps do not apply). Prints a markdown table and writes bench/results/io.md
 * (bench/results/io-<G>gib.md for --gib). The page cache is warm: every file was just written.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, StringStringEntryProtoSchema, TensorProtoSchema, type ModelProto, type TensorProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { encodeModel, readModel, writeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');

interface StepResult {
  step: string;
  /** Seconds per phase, measured inside the child (excludes Node/tsx start-up). */
  phases: Record<string, number>;
  maxRssMiB: number;
  note?: string;
}

// ---------- model generation ----------

/** Deterministic, cheap fill (xorshift32 → [-1, 1)); values only need to be incompressible-ish. */
function fillTensor(out: Float32Array, seed: number): void {
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x / 2147483648 - 1;
  }
}

function addChainModel(count: number, elems: number, initializers: TensorProto[]): ModelProto {
  const nodes = [];
  let prev = 'x';
  for (let i = 0; i < count; i++) {
    const out = i === count - 1 ? 'y' : `s${i}`;
    nodes.push(node('Add', [prev, `W${i}`], [out], {}, `add${i}`));
    prev = out;
  }
  return create(ModelProtoSchema, {
    irVersion: 10n,
    producerName: 'supar-transform-bench',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
    graph: create(GraphProtoSchema, {
      name: 'add_chain', node: nodes, initializer: initializers,
      input: [tensorValueInfo('x', DataType.FLOAT, [elems])], output: [tensorValueInfo('y', DataType.FLOAT, [elems])],
    }),
  });
}

/** `count` inline tensors of `elems` float32 each, written by our writer (inline). */
function generateInline(file: string, count: number, elems: number): void {
  const inits: TensorProto[] = [];
  for (let i = 0; i < count; i++) {
    const v = new Float32Array(elems);
    fillTensor(v, i + 1);
    inits.push(create(TensorProtoSchema, { name: `W${i}`, dims: [BigInt(elems)], dataType: DataType.FLOAT, rawData: new Uint8Array(v.buffer) }));
  }
  writeModel(addChainModel(count, elems, inits), file, { externalData: 'never' });
}

/** Streams `count` tensors straight into `<file>.data` (4096-aligned: each tensor is a multiple of 4 KiB). */
function generateExternal(file: string, count: number, elems: number): void {
  const dataName = `${path.basename(file)}.data`;
  const fd = fs.openSync(path.join(path.dirname(file), dataName), 'w');
  const buf = new Float32Array(elems);
  const inits: TensorProto[] = [];
  for (let i = 0; i < count; i++) {
    fillTensor(buf, i + 1);
    const offset = i * elems * 4;
    fs.writeSync(fd, new Uint8Array(buf.buffer), 0, elems * 4, offset);
    inits.push(create(TensorProtoSchema, {
      name: `W${i}`, dims: [BigInt(elems)], dataType: DataType.FLOAT, dataLocation: 1,
      externalData: [['location', dataName], ['offset', String(offset)], ['length', String(elems * 4)]]
        .map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
    }));
  }
  fs.closeSync(fd);
  fs.writeFileSync(file, encodeModel(addChainModel(count, elems, inits)));
}

// ---------- steps (run in a child) ----------

async function runStep(step: string, file: string, out: string, count: number, elems: number): Promise<StepResult> {
  const phases: Record<string, number> = {};
  const timed = async <T>(phase: string, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    phases[phase] = (performance.now() - t0) / 1000;
    return r;
  };
  switch (step) {
    case 'baseline': break;
    case 'generate-inline': await timed('build+write', () => generateInline(file, count, elems)); break;
    case 'generate-external': await timed('build+write', () => generateExternal(file, count, elems)); break;
    case 'copy': {
      // The model and its data file (if any), then fsync as our writer does, for a like-for-like time.
      const pairs: [string, string][] = [[file, out], [`${file}.data`, `${out}.data`]];
      const present = pairs.filter(([src]) => fs.existsSync(src));
      await timed('copy', () => present.forEach(([src, dst]) => fs.copyFileSync(src, dst)));
      await timed('fsync', () => present.forEach(([, dst]) => { const fd = fs.openSync(dst, 'r+'); fs.fsyncSync(fd); fs.closeSync(fd); }));
      break;
    }
    case 'read': await timed('read', () => readModel(file)); break;
    case 'read-write-inline': case 'read-write-external': {
      const loaded = await timed('read', () => readModel(file));
      const mode = step === 'read-write-inline' ? 'never' : 'always';
      await timed('write', () => writeModel(loaded.model, out, { externalData: mode, sourceBaseDir: loaded.baseDir }));
      break;
    }
    case 'ort-create': {
      const ort = await import('onnxruntime-node');
      const s = await timed('create', () => ort.InferenceSession.create(file));
      await s.release();
      break;
    }
    default: throw new Error(`unknown step ${step}`);
  }
  return { step, phases, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

// ---------- driver ----------

const TSX = pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href;

function child(step: string, file: string, out: string, count: number, elems: number): StepResult {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', TSX, fileURLToPath(import.meta.url), '--step', step, '--file', file, '--out', out,
    '--count', String(count), '--elems', String(elems)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const wall = (performance.now() - t0) / 1000;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) {
    const lines = (r.stderr || r.stdout).trim().split('\n');
    const why = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? `exit ${r.status}`;
    return { step, phases: {}, maxRssMiB: NaN, note: `failed: ${why.slice(0, 140)}` };
  }
  const res = JSON.parse(line) as StepResult;
  res.phases['child wall'] = wall;
  return res;
}

function sameFile(a: string, b: string): boolean {
  if (!fs.existsSync(b) || fs.statSync(a).size !== fs.statSync(b).size) return false;
  const [fa, fb] = [fs.openSync(a, 'r'), fs.openSync(b, 'r')];
  const [ba, bb] = [Buffer.alloc(1 << 24), Buffer.alloc(1 << 24)];
  try {
    for (let pos = 0; ; pos += ba.length) {
      const n = fs.readSync(fa, ba, 0, ba.length, pos);
      if (n === 0) return true;
      if (fs.readSync(fb, bb, 0, bb.length, pos) !== n || !ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}

const LABELS: Record<string, string> = {
  'baseline': 'node + tsx start-up, nothing else (baseline)',
  'generate-inline': 'generate: build tensors + writeModel (inline)',
  'generate-external': 'generate: build tensors, stream external data',
  'copy': 'plain file copy (fs.copyFileSync + fsync)',
  'read': 'readModel',
  'read-write-inline': 'readModel + writeModel (inline)',
  'read-write-external': 'readModel + writeModel (external data, 4 KiB-aligned)',
  'ort-create': 'onnxruntime-node InferenceSession.create',
};

function table(rows: { label: string; r: StepResult }[], header: string): string {
  const fmt = (s: number | undefined) => (s === undefined ? '' : s.toFixed(2));
  const lines = [header, '', '| step | time (s) | phases (s) | peak RSS (MiB) |', '|---|---:|---|---:|'];
  for (const { label, r } of rows) {
    const ph = Object.entries(r.phases).filter(([k]) => k !== 'child wall');
    const total = ph.reduce((s, [, v]) => s + v, 0);
    const phases = ph.length > 1 ? ph.map(([k, v]) => `${k} ${fmt(v)}`).join(' + ') : '';
    lines.push(r.note
      ? `| ${label} | — | ${r.note} | — |`
      : `| ${label} | ${ph.length ? fmt(total) : '—'} | ${phases} | ${Math.round(r.maxRssMiB)} |`);
  }
  return `${lines.join('\n')}\n`;
}

async function driver(mb: number | undefined, gib: number | undefined, keep: boolean): Promise<void> {
  const external = gib !== undefined;
  const elems = external ? 16 * 1024 * 1024 : 1_000_000; // 64 MiB or 4 MB per tensor
  const bytesWanted = external ? gib * 1024 ** 3 : (mb ?? 400) * 1e6;
  const count = Math.ceil(bytesWanted / (elems * 4));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supar-bench-io-'));
  const model = path.join(dir, 'model.onnx');
  const o = (...names: string[]) => path.join(dir, ...names);
  try {
    const rows: { label: string; r: StepResult }[] = [];
    const add = (label: string, r: StepResult) => {
      rows.push({ label, r });
      process.stderr.write(`${label}: ${JSON.stringify(r.phases)} ${Math.round(r.maxRssMiB)} MiB${r.note ? ` ${r.note}` : ''}\n`);
    };
    add(LABELS['baseline']!, child('baseline', model, '', count, elems));
    const gen = external ? 'generate-external' : 'generate-inline';
    add(LABELS[gen]!, child(gen, model, '', count, elems));
    add(LABELS['copy']!, child('copy', model, o('copy.onnx'), count, elems));
    add(LABELS['read']!, child('read', model, '', count, elems));
    if (!external) add(LABELS['read-write-inline']!, child('read-write-inline', model, o('inline.onnx'), count, elems));
    add(LABELS['read-write-external']!, child('read-write-external', model, o('ext', 'model.onnx'), count, elems));
    if (!external) add(`${LABELS['ort-create']!} (inline file)`, child('ort-create', model, '', count, elems));
    add(`${LABELS['ort-create']!} (external-data file)`, child('ort-create', o('ext/model.onnx'), '', count, elems));
    const size = fs.statSync(model).size + (external ? fs.statSync(`${model}.data`).size : 0);
    const verified = !external && sameFile(model, o('inline.onnx')) ? ' The inline rewrite was checked byte-identical to the input.' : '';
    const header = [
      `### I/O: ${count} float32 initializers, ${(size / 1e6).toFixed(1)} MB (${(size / 1024 ** 3).toFixed(2)} GiB)${external ? ' as external data' : ' inline'}`,
      '',
      `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, Node ${process.version}, ${os.platform()}, load average at start ${os.loadavg()[0]!.toFixed(1)}; page cache warm; each step in its own process.`,
      `time = the operation inside the child; peak RSS = the child process (Node + tsx + the step).${verified}`,
    ].join('\n');
    const md = table(rows, header);
    process.stdout.write(md);
    const results = path.join(HERE, 'results');
    fs.mkdirSync(results, { recursive: true });
    fs.writeFileSync(path.join(results, external ? `io-${gib}gib.md` : 'io.md'), md);
  } finally {
    if (keep) process.stderr.write(`kept ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({
  options: {
    mb: { type: 'string' }, gib: { type: 'string' }, keep: { type: 'boolean' },
    step: { type: 'string' }, file: { type: 'string' }, out: { type: 'string' }, count: { type: 'string' }, elems: { type: 'string' },
  },
});

if (values.step) {
  if (values.out) fs.mkdirSync(path.dirname(values.out), { recursive: true });
  const r = await runStep(values.step, values.file!, values.out ?? '', Number(values.count), Number(values.elems));
  process.stdout.write(`${JSON.stringify(r)}\n`);
} else {
  await driver(values.mb === undefined ? undefined : Number(values.mb), values.gib === undefined ? undefined : Number(values.gib), values.keep ?? false);
}
