/**
 * `inspect`: its numbers against an independent oracle (the summary table of fixtures/real/CATALOG.md,
 * written by the people who collected the fixtures), its JSON against the text view, and a golden text file.
 * Golden: test/golden/inspect-ort_gpt2_megatron.txt, written by this test with UPDATE_GOLDEN=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { FunctionProtoSchema, OperatorSetIdProtoSchema, StringStringEntryProtoSchema } from 'onnx-buf';
import { formatInspect, inspectFile } from '../src/cli/cmd-inspect.js';
import { node } from '../src/onnx/build.js';
import { writeModel } from '../src/onnx/codec.js';
import { runCli } from './cli-helpers.js';
import { ROOT, REAL_FIXTURES, tempDir } from './helpers.js';
import { mlpModel } from './model-builders.js';

const FIXTURES = path.join(REAL_FIXTURES);

interface CatalogRow {
  file: string;
  bytes: number;
  producer: string;
  ir: number;
  opsets: string;
  nodes: number;
  topOps: { op: string; count: number }[];
  inits: number;
  params: number;
  constParams: number;
}

/** Rows of the CATALOG summary table: | `file` | bytes | producer | IR | opsets | nodes | main ops | inits / params |. */
function catalogRows(): CatalogRow[] {
  const text = fs.readFileSync(path.join(FIXTURES, 'CATALOG.md'), 'utf8');
  const rows: CatalogRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\| `([^`]+)` \| ([\d,]+) \| ([^|]+) \| (\d+) \| ([^|]+) \| (\d+) \| ([^|]+) \| (\d+) \/ ([\d,]+)(?: \(\+(\d+) in Constant nodes\))? \|$/.exec(line);
    if (!m) continue;
    const num = (s: string) => Number(s.replace(/,/g, ''));
    rows.push({
      file: m[1]!, bytes: num(m[2]!), producer: m[3]!.trim(), ir: num(m[4]!), opsets: m[5]!.trim(), nodes: num(m[6]!),
      topOps: [...m[7]!.matchAll(/(\w+)×(\d+)/g)].map((x) => ({ op: x[1]!, count: num(x[2]!) })),
      inits: num(m[8]!), params: num(m[9]!), constParams: m[10] ? num(m[10]) : 0,
    });
  }
  return rows;
}

function modelPath(entry: string): string {
  const p = path.join(FIXTURES, entry);
  return fs.statSync(p).isDirectory() ? path.join(p, 'model.onnx') : p;
}

test('inspect agrees with the fixtures CATALOG on every listed model', () => {
  const rows = catalogRows();
  assert.equal(rows.length, 11, 'CATALOG summary rows parsed');
  for (const row of rows) {
    const r = inspectFile(modelPath(row.file));
    const at = row.file;
    assert.equal(r.fileBytes, row.bytes, at);
    assert.equal(`${r.producer.name} ${r.producer.version}`, row.producer, at);
    assert.equal(r.irVersion, row.ir, at);
    assert.equal(r.opsets.filter((o) => o.domain === 'ai.onnx').map((o) => `ai.onnx:${o.version}`).join(' '), row.opsets.split(' ')[0], at);
    assert.equal(r.nodes.main, row.nodes, at);
    assert.deepEqual(r.initializers.count, row.inits, at);
    assert.equal(r.initializers.parameters, row.params, at);
    assert.equal(r.constants.parameters, row.constParams, at);
    // The catalog lists the leading ops (its ties are in file order; compare as count→set).
    const byCount = (ops: { op: string; count: number }[]) => new Map(ops.map((o) => [o.op, o.count]));
    const ours = byCount(r.ops);
    for (const o of row.topOps) assert.equal(ours.get(o.op), o.count, `${at}: ${o.op}`);
    assert.deepEqual(r.ops.map((o) => o.count), [...r.ops.map((o) => o.count)].sort((a, b) => b - a), `${at}: histogram sorted by count`);
  }
});

test('inputs, outputs, subgraphs and dtype tallies of real models', () => {
  const loop = inspectFile(path.join(FIXTURES, 'ort_nuphar_tiny_model_with_loop.onnx'));
  assert.deepEqual(loop.inputs[0], { name: 'input', type: 'float32', shape: ['sequence', 1, 10] });
  assert.equal(loop.ops.find((o) => o.op === 'Loop')?.count, 4);
  assert.equal(loop.subgraphs, 4, 'one body per Loop');
  assert.ok(loop.nodes.total > loop.nodes.main);
  const one = inspectFile(path.join(FIXTURES, 'ort_gpt2_one_layer.onnx'));
  assert.deepEqual(one.inputs, [{ name: 'input_ids', type: 'int64', shape: ['batch_size', 'seq_len'] }]);
  assert.ok(one.ops.some((o) => o.op === 'com.microsoft::FastGelu'));
  const f32 = one.initializers.byDtype.find((d) => d.dtype === 'float32')!;
  const i64 = one.initializers.byDtype.find((d) => d.dtype === 'int64')!;
  assert.equal(f32.bytes, 4 * f32.parameters);
  assert.equal(i64.bytes, 8 * i64.parameters);
  assert.equal(f32.parameters + i64.parameters, one.initializers.parameters);
  // IR 3 exporters list initializers as graph inputs: counted apart, not shown as inputs.
  const emb = inspectFile(path.join(FIXTURES, 'onnx_pytorch-converted_test_Embedding', 'model.onnx'));
  assert.equal(emb.inputs.length + emb.initializerInputs, 2);
});

test('metadata, functions and external data are reported', () => {
  const dir = tempDir();
  const model = mlpModel();
  model.metadataProps.push(create(StringStringEntryProtoSchema, { key: 'supar.density', value: '0.125' }));
  model.functions.push(create(FunctionProtoSchema, {
    name: 'Twice', domain: 'local', input: ['a'], output: ['b'], node: [node('Add', ['a', 'a'], ['b'])],
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
  }));
  const file = path.join(dir, 'm.onnx');
  writeModel(model, file, { externalData: 'always' });
  const r = inspectFile(file);
  assert.deepEqual(r.metadataProps, [{ key: 'supar.density', value: '0.125' }]);
  assert.deepEqual(r.functions, { count: 1, names: ['local::Twice'] });
  assert.deepEqual(r.externalData, { used: true, files: ['m.onnx.data'], tensors: 2, bytes: 4 * (32 * 64 + 64 * 8) });
  const text = formatInspect(r);
  assert.match(text, /^external data: yes · 2 tensors · 10\.0 KiB in m\.onnx\.data$/m);
  assert.match(text, /^ {2}supar\.density = 0\.125$/m);
  assert.match(text, /^ {2}x +float32 {2}\[batch, 32\]$/m);
});

test('CLI text matches the golden file; --json is deterministic and equals the data model', async () => {
  const file = path.join(FIXTURES, 'ort_gpt2_megatron.onnx');
  const [text, json1, json2] = await Promise.all([
    runCli(['inspect', file]), runCli(['inspect', '--json', file]), runCli(['inspect', file, '--json']),
  ]);
  for (const r of [text, json1, json2]) assert.equal(r.code, 0, r.stderr);
  assert.equal(json1.stdout, json2.stdout);
  assert.deepEqual(JSON.parse(json1.stdout), inspectFile(file));
  const golden = path.join(ROOT, 'test', 'golden', 'inspect-ort_gpt2_megatron.txt');
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(golden, text.stdout);
  assert.equal(text.stdout, fs.readFileSync(golden, 'utf8'));
  assert.equal(text.stdout, formatInspect(inspectFile(file)));
});
