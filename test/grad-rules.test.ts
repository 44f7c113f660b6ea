/**
 * Every gradient rule against central finite differences, run in onnxruntime-node (CPU).
 * float64 cases: relative error < 1e-6 (h = 1e-5). float32 only where ORT's CPU kernel has no double
 * variant (Erf, Gelu, Conv, ConvTranspose, AveragePool, HardSigmoid, Softplus, Elu, Mean, contrib GELUs;
 * onnxruntime's kernel registry) or to cover a float-only path (LayerNormalization): h = 1e-2,
 * relative error < 5e-3 (round-off ε₃₂·|L|/h ≈ 1e-4 plus truncation O(h²)).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority } from '../src/onnx/ir.js';
import { buildBackward } from '../src/train/autodiff.js';
import { GRAD_RULES } from '../src/train/grad-rules/index.js';
import { UserInputError } from '../src/errors.js';
import { checkGradient, type NamedCase } from './grad-rules-harness.js';
import { BASIC_CASES, CONV_CASES, EXTRA_CASES, GRAD_CASES_MORE, INDEXING_CASES, OLD_OPSET_CASES } from './grad-rules-cases.js';

const F64_TOL = 1e-6;
const F32_TOL = 5e-3;
const CASES: NamedCase[] = [...BASIC_CASES, ...GRAD_CASES_MORE, ...CONV_CASES, ...EXTRA_CASES, ...OLD_OPSET_CASES, ...INDEXING_CASES];

for (const c of CASES) {
  test(`FD: ${c.name}`, async () => {
    const r = await checkGradient(c.case);
    const tol = c.case.dtype === 'float32' ? F32_TOL : F64_TOL;
    assert.ok(r.relError < tol, `${c.name}: relative error ${r.relError.toExponential(2)} ≥ ${tol} (${JSON.stringify(r.perInput)})`);
  });
}

test('every registered rule has an FD case', () => {
  const covered = new Set(CASES.map((c) => c.rule));
  const missing = GRAD_RULES.map((r) => (r.domain ? `${r.domain}:${r.op}` : r.op)).filter((k) => !covered.has(k));
  assert.deepEqual(missing, [], `rules without a finite-difference case: ${missing.join(', ')}`);
});

test('an op without a rule on the path fails naming the op and node', () => {
  const graph = create(GraphProtoSchema, {
    node: [node('Det', ['x'], ['s'], {}, 'my_det'), node('ReduceSum', ['s'], ['loss'], { keepdims: 0 })],
    input: [tensorValueInfo('x', DataType.FLOAT, [3, 3])],
    output: [tensorValueInfo('loss', DataType.FLOAT, [])],
  });
  const model = create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })], graph });
  assert.throws(() => buildBackward(graph, { loss: 'loss', wrt: ['x'], names: new NameAuthority(model), opset: 17 }), (err: unknown) => {
    assert.ok(err instanceof UserInputError);
    assert.match(err.message, /no gradient rule for op Det \(node 'my_det'\)/);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
});
