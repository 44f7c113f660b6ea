/**
 * Conformance over the ONNX backend node tests (fixtures/onnx-node-tests, 1765 cases of ONNX v1.22.0):
 * 1. every model.onnx decodes, re-encodes and decodes to the same message, field by field including
 *    unknown fields (protobuf-es `equals` with `unknown: true`); byte-identical re-encodes are counted;
 * 2. the re-written bytes run in onnxruntime-node (CPU) on input_N.pb and reproduce output_N.pb within
 *    a dtype tolerance. Where the re-encode is not byte-identical the original is run too and both must agree.
 * Cases the node binding cannot run are skipped with a reason, counted and printed; a mismatch fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createRegistry, equals, fromBinary, toBinary, toJsonString } from '@bufbuild/protobuf';
import { file_onnx, ModelProtoSchema, TensorProtoSchema, type ModelProto } from 'onnx-buf';
import { decodeModel, encodeModel } from '../src/onnx/codec.js';
import { DataType, dataTypeName } from '../src/onnx/dtype.js';
import { REAL_FIXTURES } from './helpers.js';
import { onnxNodeTestsDir } from './onnx-node-cases.js';
import { compareOrt, FeedSkip, tensorProtoToOrt, valueKind } from './ort-tensors.js';

/** Output element types onnxruntime-node 1.30 cannot hand back: it aborts the process (measured: Cast to INT4). */
const UNRETURNABLE = new Set<number>([DataType.INT4, DataType.UINT4]);
const CASES = await onnxNodeTestsDir();
const registry = createRegistry(file_onnx);
ort.env.logLevel = 'fatal';

interface Tally {
  ran: number;
  matched: number;
  skipped: Map<string, string[]>;
  mismatched: string[];
  /** onnxruntime's output for the ORIGINAL model differs from output_N.pb the same way. */
  ortDeviates: string[];
}

interface Counts {
  byteIdentical: number;
  fieldEqual: number;
  equalUpToNaN: number;
}

function skip(tally: Tally, reason: string, name: string): void {
  const list = tally.skipped.get(reason) ?? [];
  list.push(name);
  tally.skipped.set(reason, list);
}

/** Groups an ORT error message into a short, countable reason. */
export function classifyOrtError(msg: string): string {
  const impl = /Could not find an implementation for (\w+)\((\d+)\)/.exec(msg);
  if (impl) return `onnxruntime-node has no CPU kernel for this op/type (e.g. ${impl[1]}-${impl[2]})`;
  const feed = /Tensor\.type is not supported: (\w+)/.exec(msg);
  if (feed) return `the node binding cannot feed ${feed[1]} tensors`;
  const opset = /Opset (\d+) is under development/.exec(msg);
  if (opset) return `opset ${opset[1]} is newer than onnxruntime-node 1.30 supports`;
  if (/is not a registered function\/op|No Op registered/.test(msg)) return 'op unknown to onnxruntime-node (e.g. ai.onnx.preview.training)';
  if (/Exception during initialization/.test(msg)) return 'onnxruntime-node kernel refuses the node\'s attributes at load (e.g. RNN layout=1)';
  const run = /Non-zero status code returned while running (\w+) node/.exec(msg);
  if (run) return `onnxruntime-node kernel fails at run time (e.g. ${run[1]})`;
  if (/type.*not supported|Unsupported (data )?type|not implemented/i.test(msg)) return 'type or feature not implemented in onnxruntime-node';
  return `onnxruntime-node error: ${msg.split('\n')[0]!.slice(0, 100)}`;
}

function readPbs(dir: string, prefix: string): ort.Tensor[] {
  const out: ort.Tensor[] = [];
  for (let i = 0; fs.existsSync(path.join(dir, `${prefix}_${i}.pb`)); i++) {
    out.push(tensorProtoToOrt(fromBinary(TensorProtoSchema, fs.readFileSync(path.join(dir, `${prefix}_${i}.pb`))), dir));
  }
  return out;
}

async function runModel(bytes: Uint8Array, model: ModelProto, feeds: ort.Tensor[]): Promise<ort.Tensor[]> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 4 });
  try {
    const inputs = model.graph!.input.map((v) => v.name).filter((n) => session.inputNames.includes(n));
    const feed: Record<string, ort.Tensor> = {};
    inputs.forEach((n, i) => { if (feeds[i]) feed[n] = feeds[i]!; });
    const result = await session.run(feed);
    return model.graph!.output.map((o) => result[o.name]!);
  } finally {
    await session.release();
  }
}

async function checkCase(name: string, tally: Tally, counts: Counts): Promise<void> {
  const dir = path.join(CASES, name);
  const orig = new Uint8Array(fs.readFileSync(path.join(dir, 'model.onnx')));
  const model = decodeModel(orig, name);
  const rewritten = encodeModel(model);
  // encodeModel streams chunks (src/onnx/encode-stream.ts); protobuf-es's own encoder is the oracle.
  assert.ok(Buffer.from(rewritten).equals(toBinary(ModelProtoSchema, model, { writeUnknownFields: true })), `${name}: chunked encode differs from toBinary`);
  const again = decodeModel(rewritten, `${name} (re-encoded)`);
  const identical = Buffer.from(rewritten).equals(orig);
  if (identical) counts.byteIdentical++;
  if (!equals(ModelProtoSchema, model, again, { registry, unknown: true })) {
    // `equals` compares floats with ===, so a NaN in an attribute (tree_ensemble_set_membership) reads as a
    // difference; JSON spells NaN as "NaN", and identical bytes carry identical unknown fields.
    assert.ok(identical && toJsonString(ModelProtoSchema, model) === toJsonString(ModelProtoSchema, again), `${name}: re-decoded message differs`);
    counts.equalUpToNaN++;
  }
  counts.fieldEqual++;

  const g = model.graph!;
  const kinds = [...g.input, ...g.output].map((v) => valueKind(v.type));
  const odd = kinds.find((k) => k !== 'tensor');
  if (odd) return skip(tally, `${odd} input/output (the node binding feeds and returns dense tensors only)`, name);
  const badOut = g.output.map((v) => (v.type?.value.case === 'tensorType' ? v.type.value.value.elemType : 0)).find((t) => UNRETURNABLE.has(t));
  if (badOut !== undefined) return skip(tally, `${dataTypeName(badOut)} output (the node binding aborts converting it to JS)`, name);
  const data = path.join(dir, 'test_data_set_0');
  let feeds: ort.Tensor[];
  let expected: ort.Tensor[];
  try {
    feeds = readPbs(data, 'input');
    expected = readPbs(data, 'output');
  } catch (e) {
    if (e instanceof FeedSkip) return skip(tally, e.reason, name);
    throw e;
  }
  let actual: ort.Tensor[];
  try {
    actual = await runModel(rewritten, model, feeds);
  } catch (e) {
    return skip(tally, classifyOrtError((e as Error).message), name);
  }
  tally.ran++;
  const diff = expected.map((t, i) => (actual[i] ? compareOrt(actual[i]!, t) : 'missing output')).find((d) => d);
  if (identical && !diff) return void tally.matched++;
  // The original model must give exactly the rewritten model's outputs; only then is a difference from
  // output_N.pb onnxruntime's own deviation from the reference (counted apart, with names), not ours.
  const base = await runModel(orig, model, feeds);
  const drift = base.map((t, i) => compareOrt(actual[i]!, t, { rtol: 0, atol: 0 })).find((d) => d);
  if (drift) return void tally.mismatched.push(`${name}: rewritten differs from original in ORT: ${drift}`);
  if (diff) return void tally.ortDeviates.push(`${name} (${diff})`);
  tally.matched++;
}

test('onnx-node-tests: lossless round trip and ORT reproduces output_N.pb', { timeout: 300_000 }, async () => {
  const names = fs.readdirSync(CASES).filter((n) => n.startsWith('test_')).sort();
  assert.equal(names.length, 1765, 'expected the 1765 cases of onnx v1.22.0');
  const tally: Tally = { ran: 0, matched: 0, skipped: new Map(), mismatched: [], ortDeviates: [] };
  const counts: Counts = { byteIdentical: 0, fieldEqual: 0, equalUpToNaN: 0 };
  const t0 = performance.now();
  const trace = process.env.CONFORMANCE_TRACE === '1';
  for (const name of names) {
    if (trace) process.stderr.write(`${name}\n`);
    await checkCase(name, tally, counts);
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const nSkipped = [...tally.skipped.values()].reduce((s, l) => s + l.length, 0);
  console.log(`conformance: ${names.length} cases, ${counts.fieldEqual} field-equal after re-encode (${counts.equalUpToNaN} via JSON for NaN), ${counts.byteIdentical} byte-identical; ORT ran ${tally.ran} / matched ${tally.matched} / ORT-deviates ${tally.ortDeviates.length} / skipped ${nSkipped} (${secs} s)`);
  for (const [reason, list] of [...tally.skipped].sort((a, b) => b[1].length - a[1].length)) {
    console.log(`  skipped ${list.length}: ${reason} [${list.slice(0, 3).join(', ')}${list.length > 3 ? ', …' : ''}]`);
  }
  if (tally.ortDeviates.length) console.log(`  ORT-deviates (original model gives the same output; ORT differs from the ONNX reference): ${tally.ortDeviates.join('; ')}`);
  for (const m of tally.mismatched) console.log(`  MISMATCH ${m}`);
  assert.deepEqual(tally.mismatched, []);
  assert.equal(tally.ran, tally.matched + tally.ortDeviates.length);
  assert.equal(counts.fieldEqual, names.length);
});

test('unknown fields survive a round trip, and the field comparison sees them', () => {
  const orig = new Uint8Array(fs.readFileSync(path.join(CASES, 'test_abs', 'model.onnx')));
  // Field 1000, wire type varint (key 8000 = 0xC0 0x3E), value 42: a field no ONNX schema defines.
  const withUnknown = new Uint8Array([...orig, 0xc0, 0x3e, 42]);
  const model = decodeModel(withUnknown, 'abs+unknown');
  assert.deepEqual(model.$unknown?.map((u) => u.no), [1000]);
  model.graph!.node[0]!.$unknown = [{ no: 1001, wireType: 0, data: Uint8Array.of(7) }];
  const again = decodeModel(encodeModel(model), 'again');
  assert.equal(again.graph!.node[0]!.$unknown?.[0]?.no, 1001);
  assert.ok(equals(ModelProtoSchema, model, again, { registry, unknown: true }));
  const changed = decodeModel(new Uint8Array([...orig, 0xc0, 0x3e, 43]), 'abs+unknown43');
  assert.ok(!equals(ModelProtoSchema, decodeModel(withUnknown, 'x'), changed, { registry, unknown: true }));
  assert.ok(equals(ModelProtoSchema, decodeModel(withUnknown, 'x'), changed, { registry }), 'differs only in unknown fields');
  assert.ok(Buffer.from(encodeModel(decodeModel(withUnknown, 'x'))).equals(withUnknown));
  // Unknown fields at every level the chunked encoder splits (model, graph, initializer) keep their place.
  const deep = decodeModel(new Uint8Array(fs.readFileSync(path.join(REAL_FIXTURES, 'burn_linear_dynamo.onnx'))), 'burn');
  deep.$unknown = [{ no: 1000, wireType: 0, data: Uint8Array.of(1) }];
  deep.graph!.$unknown = [{ no: 1001, wireType: 2, data: Uint8Array.of(2, 0x61, 0x62) }];
  deep.graph!.initializer[0]!.$unknown = [{ no: 1002, wireType: 0, data: Uint8Array.of(3) }];
  const bytes = encodeModel(deep);
  assert.ok(Buffer.from(bytes).equals(toBinary(ModelProtoSchema, deep, { writeUnknownFields: true })));
  assert.ok(equals(ModelProtoSchema, decodeModel(bytes, 'deep'), deep, { registry, unknown: true }));
});
