/**
 * Every model in fixtures/real (listed in its SHA256SUMS) round-trips with nothing lost (identical
 * bytes, via encode and via the atomic writer), and the re-written model, inline and with external data,
 * runs in onnxruntime-node with exactly the original's outputs on seeded inputs. The two
 * onnx_pytorch-converted cases are also checked against their test_data_set_0 oracle.
 * A model onnxruntime-node cannot run is skipped with its reason, counted and printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { fromBinary } from '@bufbuild/protobuf';
import { TensorProtoSchema, type ModelProto, type ValueInfoProto } from 'onnx-buf';
import { encodeModel, readModel, writeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { GraphIndex } from '../src/onnx/ir.js';
import { dimsOf } from '../src/onnx/tensor.js';
import { REAL_FIXTURES, tempDir } from './helpers.js';
import { seededRandom } from './model-builders.js';
import { compareOrt, tensorProtoToOrt } from './ort-tensors.js';

const FIXTURES = path.join(REAL_FIXTURES);
/** Every symbolic or unknown dimension becomes this (same name → same value, so shapes stay consistent). */
const SYMBOLIC_DIM = 2;
/** Integer inputs that index nothing we can see are masks or flags: all 1 ("attend to every token"). */
const MASK_VALUE = 1;

function fixtureList(): { entry: string; file: string; sha256: string }[] {
  return fs.readFileSync(path.join(FIXTURES, 'SHA256SUMS'), 'utf8').trim().split('\n').map((line) => {
    const [sha256, rel] = line.split(/\s+/) as [string, string];
    return { entry: rel.split('/')[0]!, file: path.join(FIXTURES, rel), sha256 };
  });
}

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Upper bound for an integer input: the row count of the table it indexes through Gather, if any. */
function indexRange(index: GraphIndex, name: string): number | undefined {
  for (const use of index.usesOf(name)) {
    if (use.node.opType === 'Gather' && use.index === 1 && !use.via) {
      const table = index.findConstant(use.node.input[0]!);
      if (table) return dimsOf(table)[Number(use.node.attribute.find((a) => a.name === 'axis')?.i ?? 0n)];
    }
  }
  return undefined;
}

function seededInts(n: number, hi: number | undefined, rand: () => number): number[] {
  return Array.from({ length: n }, () => (hi === undefined ? MASK_VALUE : Math.floor(rand() * hi)));
}

function seededInput(v: ValueInfoProto, index: GraphIndex, rand: () => number): ort.Tensor {
  const tt = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
  if (!tt) throw new Error(`input '${v.name}' is not a tensor`);
  const dims = (tt.shape?.dim ?? []).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : SYMBOLIC_DIM));
  const n = dims.reduce((a, b) => a * b, 1);
  switch (tt.elemType) {
    case DataType.FLOAT: return new ort.Tensor('float32', Float32Array.from({ length: n }, () => rand() * 2 - 1), dims);
    case DataType.INT64: {
      return new ort.Tensor('int64', BigInt64Array.from(seededInts(n, indexRange(index, v.name), rand), BigInt), dims);
    }
    case DataType.INT32: {
      return new ort.Tensor('int32', Int32Array.from(seededInts(n, indexRange(index, v.name), rand)), dims);
    }
    case DataType.BOOL: return new ort.Tensor('bool', Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0)), dims);
    default: throw new Error(`input '${v.name}': element type ${tt.elemType} not generated`);
  }
}

function seededFeeds(model: ModelProto, seed: number): Record<string, ort.Tensor> {
  const index = new GraphIndex(model);
  const rand = seededRandom(seed);
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of model.graph!.input) if (!index.initializers.has(v.name)) feeds[v.name] = seededInput(v, index, rand);
  return feeds;
}

async function run(file: string, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor[]> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 4 });
  try {
    const out = await s.run(feeds);
    return s.outputNames.map((n) => out[n]!);
  } finally {
    await s.release();
  }
}

function assertSameOutputs(got: ort.Tensor[], want: ort.Tensor[], label: string): void {
  assert.equal(got.length, want.length, label);
  got.forEach((t, i) => assert.equal(compareOrt(t, want[i]!, { rtol: 0, atol: 0 }), undefined, `${label}: output ${i}`));
}

/** A float output with finite values, not all equal (one value: non-zero); other types: non-empty. */
function informative(t: ort.Tensor): boolean {
  if (t.type !== 'float32') return t.size > 0;
  const d = t.data as Float32Array;
  return d.every(Number.isFinite) && (d.length === 1 ? d[0] !== 0 : d.some((v) => v !== d[0]));
}

test('fixtures-real: identical bytes after read+write; ORT outputs unchanged inline and with external data', { timeout: 120_000 }, async () => {
  const list = fixtureList();
  assert.equal(list.length, 13);
  const out = tempDir();
  const skipped: string[] = [];
  let ran = 0;
  for (const { entry, file, sha256 } of list) {
    assert.equal(sha(file), sha256, `${entry}: fixture intact before`);
    const { model } = readModel(file);
    const original = fs.readFileSync(file);
    assert.ok(Buffer.from(encodeModel(model)).equals(original), `${entry}: encode gives the same bytes`);
    const inline = path.join(out, `${entry}.onnx`);
    const ext = path.join(out, `${entry}.ext.onnx`);
    writeModel(model, inline, { externalData: 'never' });
    writeModel(model, ext, { externalData: 'always' });
    assert.ok(fs.readFileSync(inline).equals(original), `${entry}: writeModel gives the same bytes`);
    assert.ok(Buffer.from(encodeModel(model)).equals(original), `${entry}: writing leaves the model object unchanged`);
    const feeds = seededFeeds(model, 1234);
    let want: ort.Tensor[];
    try {
      want = await run(file, feeds);
    } catch (e) {
      skipped.push(`${entry}: ${(e as Error).message.split('\n')[0]!.slice(0, 160)}`);
      continue;
    }
    assert.ok(want.every(informative), `${entry}: seeded inputs give finite, non-constant outputs (else the comparison proves little)`);
    assertSameOutputs(await run(inline, feeds), want, `${entry} inline`);
    assertSameOutputs(await run(ext, feeds), want, `${entry} external data`);
    ran++;
    assert.equal(sha(file), sha256, `${entry}: fixture intact after`);
  }
  console.log(`fixtures-real: ${list.length} round-tripped byte-identical; ORT ran ${ran}, skipped ${skipped.length}`);
  for (const s of skipped) console.log(`  skipped ${s}`);
  assert.equal(ran + skipped.length, list.length);
  assert.ok(ran >= 11, 'all but known-unrunnable fixtures run');
});

test('onnx_pytorch-converted fixtures: the re-written model reproduces test_data_set_0', async () => {
  for (const name of ['onnx_pytorch-converted_test_Embedding', 'onnx_pytorch-converted_test_Linear_no_bias']) {
    const dir = path.join(FIXTURES, name);
    const { model } = readModel(path.join(dir, 'model.onnx'));
    const file = path.join(tempDir(), 'model.onnx');
    writeModel(model, file);
    const pb = (n: string) => tensorProtoToOrt(fromBinary(TensorProtoSchema, fs.readFileSync(path.join(dir, 'test_data_set_0', n))));
    const index = new GraphIndex(model);
    const input = model.graph!.input.find((v) => !index.initializers.has(v.name))!;
    const [got] = await run(file, { [input.name]: pb('input_0.pb') });
    assert.equal(compareOrt(got!, pb('output_0.pb')), undefined, name);
  }
});
