/**
 * The shape inference (src/shapes/, shared by analysis, autodiff and runners) against onnxruntime: every
 * intermediate value of real exports (no value_info in the opset-11/12 ones, nor in the TorchScript rotary
 * LMs and GPT-2-with-past of fixtures/shapes) is made a graph output, the model is run, and every
 * inferred dim is compared with the dim ORT produced. Symbolic dims are evaluated with the input sizes
 * (sums such as 'past_seq_len+seq_len' included); unknown (null) dims are counted, not checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { tensorValueInfo } from '../src/onnx/build.js';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { inferShapes, type Dim } from '../src/shapes/infer.js';
import { REAL_FIXTURES, ROOT } from './helpers.js';

interface ShapeCase { file: string; feeds: () => Record<string, ort.Tensor>; symbols: Record<string, number>; minUnknownRank?: number }

const i64 = (n: number, dims: number[], f: (i: number) => number) => new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(f(i))), dims);
const f32 = (n: number, dims: number[], f: (i: number) => number) => new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => f(i)), dims);

const CASES: ShapeCase[] = [
  {
    file: 'ort_gpt2_megatron.onnx', symbols: { batch_size: 2, seq_len: 3, past_seq_len: 1 },
    feeds: () => ({
      input_ids: i64(6, [2, 3], (i) => i % 8), position_ids: i64(6, [2, 3], (i) => 1 + (i % 3)),
      attention_mask: f32(2 * 64 * 64, [2, 1, 64, 64], () => 1), past_0: f32(32, [2, 2, 2, 1, 4], (i) => Math.sin(i)),
    }),
  },
  {
    file: 'optimum_tiny_distilbert_cls.onnx', symbols: { batch: 2, sequence: 5 },
    feeds: () => ({ input_ids: i64(10, [2, 5], (i) => i % 40), attention_mask: i64(10, [2, 5], () => 1) }),
  },
  { file: 'hf_llama_w32_tied_dynamo.onnx', symbols: {}, feeds: () => ({ input_ids: i64(16, [2, 8], (i) => i % 200) }) },
  ...torchScriptShapeCases(),
];

/** fixtures/shapes/shapes.json: TorchScript rotary LMs (dynamic and static), GPT-2 with past (fixtures/shapes/export.py). */
function torchScriptShapeCases(): ShapeCase[] {
  const dir = path.join(ROOT, 'fixtures', 'shapes');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'shapes.json'), 'utf8')) as { models: { file: string; feeds: Record<string, number[]>; symbols: Record<string, number> }[] };
  return manifest.models.map((m) => ({
    file: path.join(dir, m.file), symbols: m.symbols,
    feeds: () => Object.fromEntries(Object.entries(m.feeds).map(([name, dims]) => {
      const n = dims.reduce((a, b) => a * b, 1);
      return [name, name === 'input_ids' ? i64(n, dims, (i) => (i * 7) % 100) : f32(n, dims, (i) => Math.sin(i))];
    })),
  }));
}

/** A dim's value under the input sizes: a number, a symbol, or a '+'-sum of them; undefined when unbound. */
function evaluate(d: Dim, symbols: Record<string, number>): number | undefined {
  if (typeof d === 'number') return d;
  if (d === null) return undefined;
  const terms = d.split('+').map((t) => (/^-?\d+$/.test(t) ? Number(t) : symbols[t]));
  return terms.some((t) => t === undefined) ? undefined : (terms as number[]).reduce((a, b) => a + b, 0);
}

for (const c of CASES) {
  test(`${path.basename(c.file)}: inferred dims agree with onnxruntime's`, async (t) => {
    const { model } = readModel(path.resolve(REAL_FIXTURES, c.file));
    const g = model.graph!;
    const table = inferShapes(g);
    const outputs = g.node.flatMap((n) => n.output).filter((o) => o);
    const probed = outputs.filter((o) => table.shape(o) && table.elemType(o) !== undefined);
    const probe: ModelProto = { ...model, graph: { ...g, output: [...g.output, ...probed.filter((o) => !g.output.some((v) => v.name === o)).map((o) => tensorValueInfo(o, table.elemType(o)!))] } };
    const session = await ort.InferenceSession.create(encodeModel(probe), { graphOptimizationLevel: 'disabled' });
    const out = await session.run(c.feeds());
    let checked = 0, unknown = 0, values = 0;
    const wrong: string[] = [];
    for (const name of probed) {
      const actual = out[name]?.dims.map(Number);
      const inferred = table.shape(name)!;
      if (!actual) continue;
      if (actual.length !== inferred.length) { wrong.push(`${name}: rank ${inferred.length} vs ${actual.length}`); continue; }
      // Folded shape arithmetic: the values of small int tensors, entry by entry.
      const ints = table.ints(name);
      if (ints && out[name]!.type === 'int64') {
        const data = Array.from(out[name]!.data as BigInt64Array, Number);
        if (data.length !== ints.length) wrong.push(`${name}: ${ints.length} values inferred, ORT has ${data.length}`);
        else ints.forEach((d, i) => {
          const v = evaluate(d, c.symbols);
          if (v === undefined) return;
          values++;
          if (v !== data[i]) wrong.push(`${name} value [${i}]: inferred ${d} = ${v}, ORT ${data[i]}`);
        });
      }
      inferred.forEach((d, i) => {
        const v = evaluate(d, c.symbols);
        if (v === undefined) { unknown++; return; }
        checked++;
        if (v !== actual[i]) wrong.push(`${name}[${i}]: inferred ${d} = ${v}, ORT ${actual[i]}`);
      });
    }
    t.diagnostic(`${probed.length} values, ${checked} dims checked, ${unknown} unknown, ${values} int values checked`);
    assert.deepEqual(wrong, []);
    // Every node output has a known rank (the autodiff needs ranks; dims may stay symbolic).
    assert.deepEqual(outputs.filter((o) => !table.shape(o)), [], 'values of unknown rank');
    assert.ok(checked > 100, `only ${checked} dims checked`);
  });
}
