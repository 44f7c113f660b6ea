/**
 * Mask storage (src/passes/mask-storage.ts): the bit-packed format (round trips, the agreed bit order), the
 * unpack subgraph in onnxruntime against the bool mask, and `bool` vs `bits` end to end on the fixture GPT,
 * a Hugging Face export and a CNN: bitwise-identical forward outputs and 5 identical AdamW steps (losses and
 * weights), masked weights exactly 0, mask_bytes = Σ ceil(n/8), the same densities in `inspect`, and the
 * same CUDA/WebGPU readiness.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto } from 'onnx-buf';
import { tensorValueInfo } from '../src/onnx/build.js';
import { encodeModel, readModel, writeModel, type LoadedModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority } from '../src/onnx/ir.js';
import { makeFloatTensor, tensorRawBytes, tensorToFloat32 } from '../src/onnx/tensor.js';
import { findBitTable, maskEntries, maskInitializer, MaskUseBuilder, packMaskBits, unpackMaskBits } from '../src/passes/mask-storage.js';
import { Rng } from '../src/passes/rng.js';
import { checkCudaKernels, checkWebGpuKernels, type KernelReport } from '../src/runtime/kernels.js';
import { transform, type TransformResult } from '../src/transform.js';
import { openFeedSource } from '../src/train/feeds.js';
import { objectiveOfModel } from '../src/train/objective.js';
import { createTrainer, type Feeds } from '../src/train/runner.js';
import { buildTrainStep, type TrainStep } from '../src/train/train-step.js';
import { inspectFile } from '../src/cli/cmd-inspect.js';
import { fmtBytes, reportHtml } from '../src/pages/report-page.js';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { runCli } from './cli-helpers.js';
import { ROOT, tempDir } from './helpers.js';

const randomMask = (n: number, seed: number, p = 0.3) => {
  const rng = Rng.forTensor(seed, 'mask-storage-test', 'mask');
  return Uint8Array.from({ length: n }, () => (rng.uniform53() < p ? 1 : 0));
};

test('packMaskBits: entry i in byte i >> 3, bit i & 7, LSB first; ceil(n/8) bytes; round trip for n not a multiple of 8, all ones, all zeros', () => {
  assert.deepEqual(packMaskBits(Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])), Uint8Array.from([0x01, 0x02]));
  assert.deepEqual(packMaskBits(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1])), Uint8Array.from([0x80, 0x07]));
  for (const n of [1, 7, 8, 9, 15, 16, 17, 1000, 1003]) {
    for (const [label, mask] of [['random', randomMask(n, n)], ['ones', new Uint8Array(n).fill(1)], ['zeros', new Uint8Array(n)]] as const) {
      const packed = packMaskBits(mask);
      assert.equal(packed.length, Math.ceil(n / 8), `${label} n=${n}`);
      assert.deepEqual(unpackMaskBits(packed, n), mask, `${label} n=${n}`);
      if (label === 'ones') assert.equal(packed.at(-1), (1 << (n % 8 || 8)) - 1, `n=${n}: unused high bits of the last byte stay 0`);
      for (let i = 0; i < n; i++) assert.equal((packed[i >> 3]! >> (i & 7)) & 1, mask[i]);
    }
  }
});

/** A model whose only output is the unpacked mask of `shape` as `dataType`, at `opset`. */
function unpackModel(bits: Uint8Array, shape: number[], dataType: number, opset: number): ModelProto {
  const mask = maskInitializer('w__mask', shape, bits, 'bits');
  const probe = create(ModelProtoSchema, { irVersion: 7n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })] });
  const b = new MaskUseBuilder(new NameAuthority(probe), opset);
  const nodes = b.nodes(mask, 'w', shape, dataType, 'maskf');
  return create(ModelProtoSchema, {
    irVersion: 7n, opsetImport: probe.opsetImport,
    graph: create(GraphProtoSchema, { name: 'unpack', node: nodes, initializer: [mask, ...b.initializers], output: [tensorValueInfo('maskf', dataType, shape)] }),
  });
}

test('the unpack subgraph run in onnxruntime equals the bool mask exactly (float32, float16, double; opsets 9 and 17)', async () => {
  const cases: [number[], number, number][] = [[[3, 5], DataType.FLOAT, 17], [[4, 8], DataType.FLOAT, 17], [[2, 3, 7], DataType.FLOAT16, 17], [[9], DataType.DOUBLE, 17], [[5, 3], DataType.FLOAT, 9], [[1, 1], DataType.FLOAT, 17]];
  for (const [shape, dataType, opset] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    for (const bits of [randomMask(n, n + opset), new Uint8Array(n).fill(1), new Uint8Array(n)]) {
      const s = await ort.InferenceSession.create(encodeModel(unpackModel(bits, shape, dataType, opset)));
      const out = (await s.run({}))['maskf']!;
      await s.release();
      assert.deepEqual(out.dims, shape);
      const ones = dataType === DataType.FLOAT16 ? 0x3c00 : 1;
      assert.deepEqual(Array.from(out.data as ArrayLike<number>, Number), Array.from(bits, (b) => b * ones), `[${shape}] type ${dataType} opset ${opset}`);
    }
  }
});

const GPT_TINY = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');
/** Sizes that are not multiples of 8 (10×30, 10×10, 10×13, 13×10): the unpack slices off the last byte's padding. */
const oddGpt = (): LoadedModel => ({ model: buildGpt({ vocab: 37, dModel: 10, layers: 1, heads: 2, maxPos: 16, dFf: 13, seed: 5 }), path: 'odd-gpt.onnx', baseDir: '.', fileBytes: 0 });
const CASES: { label: string; load: () => LoadedModel }[] = [
  { label: 'fixture GPT', load: () => readModel(GPT_TINY) },
  { label: 'GPT with sizes not a multiple of 8', load: oddGpt },
  { label: 'HF GPT-2 (dynamo)', load: () => readModel(path.join(ROOT, 'fixtures', 'hf', 'gpt2_dynamo.onnx')) },
  { label: 'HF ResNet (TorchScript, Conv)', load: () => readModel(path.join(ROOT, 'fixtures', 'hf', 'resnet_ts.onnx')) },
];

interface Built { input: LoadedModel; r: TransformResult; ts: TrainStep; feeds: Feeds[] }

async function build(load: () => LoadedModel, maskStorage: 'bool' | 'bits'): Promise<Built> {
  const input = load();
  const r = await transform(input, { density: 0.25, seed: 3, maskStorage });
  const objective = objectiveOfModel(r.model, { readoutOutput: r.analysis.logits?.output });
  const ts = buildTrainStep(r.model, input.baseDir, r.lrGroups, { objective, optimizer: { kind: 'adamw' } });
  const src = openFeedSource(ts.io, objective, { batch: 2, seq: 8, seed: 0 });
  return { input, r, ts, feeds: Array.from({ length: 5 }, () => src.next()) };
}

async function forward(b: Built): Promise<Record<string, Uint8Array>> {
  const s = await ort.InferenceSession.create(encodeModel(b.r.model));
  const feeds = Object.fromEntries(Object.entries(b.feeds[0]!).filter(([k]) => k !== b.ts.io.targets.name));
  const out = await s.run(feeds);
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, new Uint8Array((v.data as Float32Array).buffer.slice(0))]));
}

async function trainFive(b: Built): Promise<{ losses: number[]; params: Map<string, Float32Array> }> {
  const tr = await createTrainer({ train: b.ts.train, io: b.ts.io, forward: { model: b.r.model, baseDir: b.input.baseDir }, threads: 1 });
  const losses: number[] = [];
  try {
    for (const f of b.feeds) losses.push((await tr.step(f, 1e-2)).loss);
    return { losses, params: new Map(b.ts.io.params.map((p) => [p.name, Float32Array.from(tr.param(p.name))])) };
  } finally {
    await tr.release();
  }
}

/** Fallbacks without node and value names (those differ between the two forms): op and reason kind, sorted. */
const fallbackKinds = (k: KernelReport) => k.fallbacks.map((f) => `${f.op}: ${f.reason.replace(/'[^']*'/g, "'…'")}`).sort();

for (const c of CASES) {
  test(`${c.label}: bits and bool give bitwise-identical forward outputs and 5 identical AdamW steps; masked weights stay 0; same readiness`, async () => {
    const bool = await build(c.load, 'bool');
    const bits = await build(c.load, 'bits');
    const masks = bits.r.report.tensors.filter((t) => t.mask);
    assert.ok(masks.length >= 2, `${masks.length} masked tensors`);
    const inits = (b: Built) => b.r.model.graph!.initializer;
    for (const t of masks) {
      const stored = inits(bits).find((x) => x.name === t.mask)!;
      assert.equal(stored.dataType, DataType.UINT8);
      assert.deepEqual(stored.dims.map(Number), [Math.ceil(t.shape.reduce((a, b) => a * b, 1) / 8)]);
      assert.deepEqual(maskEntries(stored, t.shape, '.'), tensorRawBytes(inits(bool).find((x) => x.name === t.mask)!, '.'), t.mask!);
    }
    assert.deepEqual(await forward(bits), await forward(bool));

    const [a, b] = [await trainFive(bool), await trainFive(bits)];
    assert.deepEqual(b.losses, a.losses);
    assert.ok(a.losses.every(Number.isFinite) && a.losses[4]! !== a.losses[0]!, `losses ${a.losses.join(', ')}`);
    for (const [name, v] of a.params) assert.deepEqual(b.params.get(name), v, name);
    for (const t of masks) {
      const m = maskEntries(inits(bits).find((x) => x.name === t.mask)!, t.shape, '.');
      const w = b.params.get(t.name)!;
      assert.ok(m.some((x) => x === 0), t.name);
      m.forEach((x, i) => { if (x === 0) assert.equal(w[i], 0, `${t.name}[${i}] is masked`); });
    }

    for (const [graph, g] of [['forward', (x: Built) => x.r.model], ['train', (x: Built) => x.ts.train], ['eval', (x: Built) => x.ts.eval]] as const) {
      assert.deepEqual(fallbackKinds(checkCudaKernels(g(bits))), fallbackKinds(checkCudaKernels(g(bool))), `CUDA ${graph}`);
      assert.deepEqual(fallbackKinds(checkWebGpuKernels(g(bits))), fallbackKinds(checkWebGpuKernels(g(bool))), `WebGPU ${graph}`);
    }
  });
}

test('report: mask_bytes = Σ ceil(n/8) for bits and Σ n for bool; inspect reads the same densities from both forms', async () => {
  const dir = tempDir();
  const per: Record<string, { bytes: number; densities: unknown }> = {};
  for (const storage of ['bool', 'bits'] as const) {
    const r = await transform(readModel(GPT_TINY), { density: 0.25, seed: 3, maskStorage: storage });
    const sizes = r.report.tensors.filter((t) => t.mask).map((t) => t.shape.reduce((a, b) => a * b, 1));
    assert.ok(sizes.length >= 4, `${sizes.length} masks`);
    assert.equal(r.report.summary.mask_bytes, sizes.reduce((s, n) => s + (storage === 'bits' ? Math.ceil(n / 8) : n), 0), storage);
    assert.equal(r.report.settings.mask_storage, storage);
    assert.match(r.summaryText, new RegExp(`; ${r.report.summary.mask_bytes} bytes of ${storage} masks\\)`));
    const page = reportHtml(r.report);
    assert.match(page, new RegExp(`Storage: <b>${fmtBytes(r.report.summary.mask_bytes)}</b> of ${storage === 'bits' ? 'bit-packed' : 'BOOL'} masks`));
    const first = r.report.tensors.find((t) => t.mask)!;
    assert.ok(page.includes(`<td class="num">${fmtBytes(storage === 'bits' ? Math.ceil(sizes[0]! / 8) : sizes[0]!)}</td></tr>`), `row of ${first.name}`);
    const file = path.join(dir, `${storage}.onnx`);
    writeModel(r.model, file, { sourceBaseDir: path.dirname(GPT_TINY) });
    const masks = inspectFile(file).masks!;
    assert.equal(masks.length, sizes.length);
    for (const m of masks) {
      assert.equal(m.storage, storage);
      assert.equal(m.non_zeros, r.report.tensors.find((t) => t.name === m.tensor)!.non_zeros, m.tensor);
    }
    per[storage] = { bytes: masks.reduce((s, m) => s + m.bytes, 0), densities: masks.map((m) => [m.tensor, m.elements, m.non_zeros, m.density]) };
  }
  assert.deepEqual(per['bits']!.densities, per['bool']!.densities);
  assert.ok(per['bits']!.bytes * 7 < per['bool']!.bytes, `bits ${per['bits']!.bytes} B vs bool ${per['bool']!.bytes} B`);
});

test('a bits model transformed again: the bit table and the packed masks are buffers, kept byte for byte; with the same rules, density 1 and --init keep the forward is unchanged', async () => {
  const once = await transform(readModel(GPT_TINY), { density: 0.5, seed: 1, maskStorage: 'bits' });
  const again = (o: Parameters<typeof transform>[1]) => transform({ model: once.model, path: '/virtual/once.onnx', baseDir: '.', fileBytes: 0 }, o);
  const table = findBitTable(once.model.graph!.initializer)!;
  assert.ok(table);
  const integerOnes = once.model.graph!.initializer.filter((t) => t.name === table || t.name.endsWith('__mask'));
  assert.equal(integerOnes.length, 9);
  const resampled = await again({ density: 0.5, seed: 2, maskStorage: 'bits' });
  for (const t of integerOnes) {
    assert.equal(resampled.report.tensors.find((x) => x.name === t.name)?.role, 'buffer', t.name);
    assert.deepEqual(tensorRawBytes(resampled.model.graph!.initializer.find((x) => x.name === t.name)!, '.'), tensorRawBytes(t, '.'), t.name);
  }
  const twice = await again({ density: 1, init: 'keep', maskStorage: 'bits' });
  const ids = new ort.Tensor('int64', BigInt64Array.from({ length: 16 }, (_, i) => BigInt((i * 37) % 256)), [2, 8]);
  const run = async (m: ModelProto) => {
    const s = await ort.InferenceSession.create(encodeModel(m));
    const out = (await s.run({ input_ids: ids }))['logits']!.data as Float32Array;
    await s.release();
    return out;
  };
  assert.deepEqual(await run(twice.model), await run(once.model));
});

test('CLI: --mask-storage bits reaches the written model, its metadata and the report; `inspect` prints the masks from the tensors', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'gpt.supar.onnx');
  const r = await runCli([GPT_TINY, '--density', '0.25', '--mask-storage', 'bits', '-o', out, '--json', '--no-html']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).report.settings.mask_storage, 'bits');
  const written = readModel(out).model;
  assert.equal(written.metadataProps.find((p) => p.key === 'supar.mask_storage')?.value, 'bits');
  assert.ok(written.graph!.initializer.filter((t) => t.name.endsWith('__mask')).every((t) => t.dataType === DataType.UINT8));
  const shown = await runCli(['inspect', out]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /^masks 8 \(bits, 12\.0 KiB\): 24,576 of 98,304 entries kept$/m);
  assert.match(shown.stdout, /^ {2}transformer\.h\.0\.attn\.c_attn\.weight {2}\[64, 192\] {2}density 0\.25 {2}3,072 of 12,288$/m);
});

test('float16 model: the bits unpack ends in a Cast to float16 and adds no CUDA or WebGPU fallback (the same ops fall back as with bool)', async () => {
  const kinds: Record<string, string[][]> = {};
  for (const storage of ['bool', 'bits'] as const) {
    const input = readModel(GPT_TINY);
    const g = input.model.graph!;
    g.initializer = g.initializer.map((t) => (t.dataType === DataType.FLOAT ? makeFloatTensor(t.name, t.dims.map(Number), tensorToFloat32(t, '.'), DataType.FLOAT16) : t));
    for (const o of g.output) if (o.type?.value.case === 'tensorType') o.type.value.value.elemType = DataType.FLOAT16;
    const r = await transform(input, { density: 0.125, maskStorage: storage });
    const casts = r.model.graph!.node.filter((n) => n.name.startsWith('supar.mask_cast.'));
    assert.equal(casts.length, 8);
    assert.ok(casts.every((n) => Number(n.attribute[0]!.i) === DataType.FLOAT16));
    kinds[storage] = [fallbackKinds(checkCudaKernels(r.model)), fallbackKinds(checkWebGpuKernels(r.model))];
  }
  assert.deepEqual(kinds['bits'], kinds['bool']);
});
