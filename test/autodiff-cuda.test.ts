/**
 * CUDA readiness of the emitted backward: every node the autodiff emits, for every rule's FD case (float32
 * and float16) and for the real exported LMs, is checked against the CUDAExecutionProvider kernel table
 * (data/ort-kernels.json via src/train/kernels.ts). Expected fallbacks are listed with their reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { node } from '../src/onnx/build.js';
import { readModel } from '../src/onnx/codec.js';
import { DataType, isFloatType } from '../src/onnx/dtype.js';
import { NameAuthority, opsetVersion } from '../src/onnx/ir.js';
import { buildBackward } from '../src/train/autodiff.js';
import { checkCudaKernels } from '../src/train/kernels.js';
import { caseWithBackward, type NamedCase } from './grad-rules-harness.js';
import { BASIC_CASES, CONV_CASES, EXTRA_CASES, GRAD_CASES_MORE, INDEXING_CASES, OLD_OPSET_CASES } from './grad-rules-cases.js';
import { REAL_FIXTURES } from './helpers.js';

function backwardFallbacks(c: NamedCase, floatType: number): string[] {
  const { model, backwardNodes } = caseWithBackward(c.case, floatType);
  return checkCudaKernels(model).fallbacks.filter((f) => backwardNodes.has(f.node)).map((f) => `${c.name}: ${f.op}: ${f.reason}`);
}

const ALL_CASES = [...BASIC_CASES, ...GRAD_CASES_MORE, ...CONV_CASES, ...EXTRA_CASES, ...OLD_OPSET_CASES, ...INDEXING_CASES];

test('backward nodes of every rule case have CUDA float32 kernels', () => {
  assert.deepEqual(ALL_CASES.flatMap((c) => backwardFallbacks(c, DataType.FLOAT)), []);
});

test('backward nodes of every rule case have CUDA float16 kernels', () => {
  assert.deepEqual(ALL_CASES.flatMap((c) => backwardFallbacks(c, DataType.FLOAT16)), []);
});

for (const file of ['hf_gpt2_w32_dynamo.onnx', 'hf_llama_w32_tied_dynamo.onnx', 'owwjs_hello_deepa_mlp.onnx']) {
  test(`${file}: no backward node falls back to CPU on CUDA`, (t) => {
    const { model } = readModel(path.join(REAL_FIXTURES, file));
    const g = model.graph!;
    g.node.push(node('ReduceSum', [g.output[0]!.name], ['__loss'], { keepdims: 0 }));
    const wrt = g.initializer.filter((x) => isFloatType(x.dataType) && x.dims.length > 0).map((x) => x.name);
    const back = buildBackward(g, { loss: '__loss', wrt, names: new NameAuthority(model), opset: opsetVersion(model)! });
    g.node.push(...back.nodes);
    g.initializer.push(...back.initializers);
    const names = new Set(back.nodes.map((n) => n.name));
    const report = checkCudaKernels(model);
    t.diagnostic(`${back.nodes.length} backward nodes, ${report.typesUnknown} with unknown input types`);
    assert.deepEqual(report.fallbacks.filter((f) => names.has(f.node)), []);
  });
}
