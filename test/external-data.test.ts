/**
 * External data (onnx.proto: data_location = EXTERNAL, location/offset/length): our writer's files load in
 * onnxruntime-node from their path with the same outputs as the inline model; offsets are 4096-aligned;
 * the auto switch fires above the threshold; reading external tensors round-trips to the inline bytes;
 * missing or escaping data files give one-line errors; inputs are never modified; failed writes leave nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { StringStringEntryProtoSchema, type ModelProto } from 'onnx-buf';
import { ExitCode, UserInputError } from '../src/errors.js';
import { encodeModel, readModel, writeModel } from '../src/onnx/codec.js';
import { checkExternalData, externalInfo, isExternal } from '../src/onnx/external.js';
import { tensorToFloat32 } from '../src/onnx/tensor.js';
import { forEachTensor } from '../src/onnx/walk.js';
import { tempDir } from './helpers.js';
import { mlpModel, randomFloats, seededRandom } from './model-builders.js';

const D = 32;
const X = new ort.Tensor('float32', randomFloats(3 * D, seededRandom(7)), [3, D]);

async function runFromPath(file: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  try {
    return (await s.run({ x: X })).y!.data as Float32Array;
  } finally {
    await s.release();
  }
}

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const externals = (m: ModelProto) => {
  const out: { name: string; location: string; offset: number; length?: number }[] = [];
  forEachTensor(m, (t) => { if (isExternal(t)) out.push({ name: t.name, ...externalInfo(t) }); });
  return out;
};

function expectUserError(fn: () => unknown, pattern: RegExp, code?: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserInputError, String(e));
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    if (code !== undefined) assert.equal(e.exitCode, code);
    return true;
  });
}

test('externalData always / auto: data file beside the model, 4096-aligned, ORT gives the inline outputs', async () => {
  const dir = tempDir();
  const inline = path.join(dir, 'inline.onnx');
  const always = path.join(dir, 'always.onnx');
  const auto = path.join(dir, 'sub', 'auto.onnx');
  fs.mkdirSync(path.dirname(auto));
  const model = mlpModel(D);
  const before = encodeModel(model);
  assert.equal(writeModel(model, inline, { externalData: 'never' }).data, undefined);
  assert.equal(writeModel(model, always, { externalData: 'always' }).data, `${always}.data`);
  // Initializer bytes: W1 8192 + b1 256 + W2 2048 = 10,496 > 4,096 → the auto switch goes external.
  assert.equal(writeModel(model, auto, { externalThreshold: 4096 }).data, `${auto}.data`);
  assert.equal(writeModel(model, path.join(dir, 'big-threshold.onnx'), { externalThreshold: 1e6 }).data, undefined);
  assert.ok(Buffer.from(encodeModel(model)).equals(before), 'the caller\'s model is unchanged by writing');
  assert.ok(!fs.existsSync(path.join(dir, 'big-threshold.onnx.data')));

  for (const file of [always, auto]) {
    const loaded = readModel(file);
    const ext = externals(loaded.model);
    assert.deepEqual(ext.map((e) => e.name), ['W1', 'W2'], 'b1 (256 B) stays inline');
    for (const e of ext) {
      assert.equal(e.location, `${path.basename(file)}.data`, 'data file beside the model');
      assert.equal(e.offset % 4096, 0, `${e.name} offset ${e.offset} aligned`);
    }
    assert.deepEqual(ext.map((e) => e.length), [D * 64 * 4, 64 * 8 * 4]);
    assert.equal(fs.statSync(`${file}.data`).size, 8192 + 2048, 'W2 starts at 8192 (already aligned)');
    assert.ok(fs.statSync(file).size < 1024, 'model file holds no weights');
  }
  const want = await runFromPath(inline);
  for (const file of [always, auto]) assert.deepEqual(await runFromPath(file), want, file);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('reading our external tensors round-trips: values, re-encode, and re-inlining give the original bytes', async () => {
  const dir = tempDir();
  const model = mlpModel(D);
  const inline = path.join(dir, 'inline.onnx');
  const ext = path.join(dir, 'ext.onnx');
  writeModel(model, inline, { externalData: 'never' });
  writeModel(model, ext, { externalData: 'always' });
  const hashes = [sha(ext), sha(`${ext}.data`)];
  const loaded = readModel(ext);
  checkExternalData(loaded.model, loaded.baseDir);
  assert.ok(Buffer.from(encodeModel(loaded.model)).equals(fs.readFileSync(ext)), 'external model re-encodes to its own bytes');
  const w1 = loaded.model.graph!.initializer.find((t) => t.name === 'W1')!;
  assert.deepEqual(tensorToFloat32(w1, loaded.baseDir), tensorToFloat32(model.graph!.initializer[0]!, dir));
  // External → inline, from another folder: exactly the bytes the inline writer produced.
  const out = tempDir();
  writeModel(loaded.model, path.join(out, 'back.onnx'), { externalData: 'never', sourceBaseDir: loaded.baseDir });
  assert.ok(fs.readFileSync(path.join(out, 'back.onnx')).equals(fs.readFileSync(inline)));
  // External → external in another folder: the data is copied beside the new model.
  writeModel(loaded.model, path.join(out, 'copy.onnx'), { sourceBaseDir: loaded.baseDir });
  assert.ok(fs.existsSync(path.join(out, 'copy.onnx.data')), "'auto' keeps an external model external");
  assert.deepEqual(await runFromPath(path.join(out, 'copy.onnx')), await runFromPath(inline));
  assert.deepEqual([sha(ext), sha(`${ext}.data`)], hashes, 'input model and data never modified');
  // Writing over the input's own data file is refused.
  expectUserError(() => writeModel(loaded.model, path.join(dir, 'x.onnx'), { dataFile: 'ext.onnx.data', sourceBaseDir: dir }), /input model's own external data/, ExitCode.usage);
  assert.deepEqual([sha(ext), sha(`${ext}.data`)], hashes);
});

test('missing data file: one line naming the tensor and the file; escaping locations are refused', () => {
  const dir = tempDir();
  const ext = path.join(dir, 'm.onnx');
  writeModel(mlpModel(D), ext, { externalData: 'always' });
  fs.renameSync(`${ext}.data`, path.join(dir, 'elsewhere.data'));
  const loaded = readModel(ext);
  expectUserError(() => checkExternalData(loaded.model, loaded.baseDir), /^tensor 'W1': external data file 'm\.onnx\.data' is missing/, ExitCode.io);
  const w1 = loaded.model.graph!.initializer[0]!;
  expectUserError(() => tensorToFloat32(w1, loaded.baseDir), /^tensor 'W1': external data file 'm\.onnx\.data' is missing/, ExitCode.io);
  // Truncated data file.
  fs.writeFileSync(`${ext}.data`, new Uint8Array(100));
  expectUserError(() => checkExternalData(loaded.model, loaded.baseDir), /^tensor 'W1': .* has 100 bytes but the tensor ends at 8192; it is truncated/, ExitCode.badInput);
  for (const location of ['../elsewhere.data', '/etc/passwd', 'sub/../../elsewhere.data']) {
    w1.externalData = [create(StringStringEntryProtoSchema, { key: 'location', value: location })];
    expectUserError(() => tensorToFloat32(w1, loaded.baseDir), /external data location .* (escapes the model's folder|is absolute)/);
    expectUserError(() => checkExternalData(loaded.model, loaded.baseDir), /escapes|absolute/);
  }
  w1.externalData = [create(StringStringEntryProtoSchema, { key: 'location', value: 'm.onnx.data' }), create(StringStringEntryProtoSchema, { key: 'offset', value: '-5' })];
  expectUserError(() => tensorToFloat32(w1, loaded.baseDir), /offset '-5' is not a byte count/);
});

test('atomic write: a failed write leaves no temp or partial file', () => {
  const dir = tempDir();
  const model = mlpModel(D);
  for (const mode of ['never', 'always'] as const) {
    expectUserError(() => writeModel(model, path.join(dir, 'missing-folder', 'm.onnx'), { externalData: mode }), /cannot write .*check that the folder exists/, ExitCode.io);
  }
  // Target is an existing folder: the rename fails after the temp file was written.
  fs.mkdirSync(path.join(dir, 'taken.onnx'));
  for (const mode of ['never', 'always'] as const) {
    expectUserError(() => writeModel(model, path.join(dir, 'taken.onnx'), { externalData: mode }), /taken\.onnx/, ExitCode.io);
  }
  // The source's external data disappears half-way: nothing of the new model or its data is left.
  const src = tempDir();
  writeModel(model, path.join(src, 's.onnx'), { externalData: 'always' });
  const loaded = readModel(path.join(src, 's.onnx'));
  fs.rmSync(path.join(src, 's.onnx.data'));
  for (const mode of ['never', 'always'] as const) {
    expectUserError(() => writeModel(loaded.model, path.join(dir, 'out.onnx'), { externalData: mode, sourceBaseDir: src }), /tensor 'W1'/, ExitCode.io);
  }
  assert.deepEqual(fs.readdirSync(dir).sort(), ['taken.onnx']);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'taken.onnx')), []);
});
