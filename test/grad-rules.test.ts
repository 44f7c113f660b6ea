/**
 * Every gradient rule against central finite differences, run in onnxruntime-node (CPU).
 * float64 cases: relative error < 1e-6 (h = 1e-5). float32 only where ORT's CPU kernel has no double
 * variant (Erf, Gelu, Conv, ConvTranspose, AveragePool; shared/data/ort-kernels.json): h = 1e-2,
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
import { checkGradient, type GradCase, type NamedCase } from './grad-rules-harness.js';
import { CONV_CASES, GRAD_CASES_MORE } from './grad-rules-cases.js';

const pos: [number, number] = [0.5, 1.5];
const F64_TOL = 1e-6;
const F32_TOL = 5e-3;

const CASES: NamedCase[] = [
  { name: 'Add [2,3,4] + [4]', rule: 'Add', case: { nodes: [node('Add', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [4] }] } },
  { name: 'Add [2,3,4] + [4], symbolic dims (run-time axes)', rule: 'Add', case: { symbolic: true, nodes: [node('Add', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [4] }] } },
  { name: 'Sub [2,1,4] − [3,1]', rule: 'Sub', case: { nodes: [node('Sub', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [2, 1, 4] }, { name: 'b', shape: [3, 1] }] } },
  { name: 'Mul [2,1,4] * [3,1]', rule: 'Mul', case: { nodes: [node('Mul', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [2, 1, 4] }, { name: 'b', shape: [3, 1] }] } },
  { name: 'Mul [2,1,4] * [3,1] symbolic', rule: 'Mul', case: { symbolic: true, nodes: [node('Mul', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [2, 1, 4] }, { name: 'b', shape: [3, 1] }] } },
  { name: 'Mul x * x (two uses of one value)', rule: 'Mul', case: { nodes: [node('Mul', ['a', 'a'], ['y'])], inputs: [{ name: 'a', shape: [3, 2] }] } },
  { name: 'Div [2,3,4] / [3,1]', rule: 'Div', case: { nodes: [node('Div', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [3, 1], range: pos }] } },
  { name: 'Sum of three, broadcast', rule: 'Sum', case: { nodes: [node('Sum', ['a', 'b', 'c'], ['y'])], inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }, { name: 'c', shape: [2, 1] }] } },
  { name: 'MatMul [2,3,4,5] × [5,6]', rule: 'MatMul', case: { nodes: [node('MatMul', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [2, 3, 4, 5] }, { name: 'b', shape: [5, 6] }] } },
  { name: 'MatMul [5] × [5,6]', rule: 'MatMul', case: { nodes: [node('MatMul', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [5] }, { name: 'b', shape: [5, 6] }] } },
  { name: 'MatMul [2,3,4] × [4]', rule: 'MatMul', case: { nodes: [node('MatMul', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [4] }] } },
  { name: 'MatMul [4] × [4]', rule: 'MatMul', case: { nodes: [node('MatMul', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [4] }, { name: 'b', shape: [4] }] } },
  { name: 'MatMul [2,1,3,4] × [3,4,2] (both broadcast)', rule: 'MatMul', case: { nodes: [node('MatMul', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [2, 1, 3, 4] }, { name: 'b', shape: [3, 4, 2] }] } },
  { name: 'MatMul [3,4] × [2,4,5] symbolic', rule: 'MatMul', case: { symbolic: true, nodes: [node('MatMul', ['a', 'b'], ['y'])], inputs: [{ name: 'a', shape: [3, 4] }, { name: 'b', shape: [2, 4, 5] }] } },
  { name: 'Gemm plain + C [4]', rule: 'Gemm', case: { nodes: [node('Gemm', ['a', 'b', 'c'], ['y'])], inputs: [{ name: 'a', shape: [3, 5] }, { name: 'b', shape: [5, 4] }, { name: 'c', shape: [4] }] } },
  { name: 'Gemm transA transB α β, C [3,1]', rule: 'Gemm', case: { nodes: [node('Gemm', ['a', 'b', 'c'], ['y'], { transA: 1, transB: 1, alpha: { float: 0.7 }, beta: { float: 1.3 } })], inputs: [{ name: 'a', shape: [5, 3] }, { name: 'b', shape: [4, 5] }, { name: 'c', shape: [3, 1] }] } },
  { name: 'Gemm transA, C scalar', rule: 'Gemm', case: { nodes: [node('Gemm', ['a', 'b', 'c'], ['y'], { transA: 1, beta: { float: 0.5 } })], inputs: [{ name: 'a', shape: [5, 3] }, { name: 'b', shape: [5, 4] }, { name: 'c', shape: [] }] } },
  { name: 'Gemm transB, no C', rule: 'Gemm', case: { nodes: [node('Gemm', ['a', 'b'], ['y'], { transB: 1, alpha: { float: 2 } })], inputs: [{ name: 'a', shape: [3, 5] }, { name: 'b', shape: [4, 5] }] } },
  ...unaryCases(),
  { name: 'SiLU x·Sigmoid(x) composes', rule: 'Sigmoid', case: { nodes: [node('Sigmoid', ['x'], ['s']), node('Mul', ['x', 's'], ['y'])], inputs: [{ name: 'x', shape: [2, 5] }] } },
  { name: 'Softmax axis −1', rule: 'Softmax', case: { nodes: [node('Softmax', ['x'], ['y'])], inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'Softmax axis 1', rule: 'Softmax', case: { nodes: [node('Softmax', ['x'], ['y'], { axis: 1 })], inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'LogSoftmax axis −1', rule: 'LogSoftmax', case: { nodes: [node('LogSoftmax', ['x'], ['y'])], inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'LayerNormalization axis −1, scale, bias', rule: 'LayerNormalization', case: { nodes: [node('LayerNormalization', ['x', 's', 'b'], ['y'])], inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [4] }, { name: 'b', shape: [4] }] } },
  { name: 'LayerNormalization axis 1 (two normalized axes)', rule: 'LayerNormalization', case: { nodes: [node('LayerNormalization', ['x', 's', 'b'], ['y'], { axis: 1, epsilon: { float: 0.01 } })], inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [3, 4] }, { name: 'b', shape: [3, 4] }] } },
  { name: 'LayerNormalization no bias, symbolic', rule: 'LayerNormalization', case: { symbolic: true, nodes: [node('LayerNormalization', ['x', 's'], ['y'])], inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [4] }] } },
  { name: 'SimplifiedLayerNormalization (RMSNorm)', rule: 'SimplifiedLayerNormalization', case: { nodes: [node('SimplifiedLayerNormalization', ['x', 's'], ['y'], { axis: -1, epsilon: { float: 1e-5 } })], inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [4] }] } },
  { name: 'RMSNormalization (opset 23)', rule: 'RMSNormalization', case: { opset: 23, nodes: [node('RMSNormalization', ['x', 's'], ['y'], { epsilon: { float: 1e-3 } })], inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [4] }] } },
  { name: 'LayerNorm decomposed (ReduceMean/Sub/Pow/Add/Sqrt/Div, opset 17)', rule: 'ReduceMean', case: decomposedLayerNorm(17) },
  { name: 'LayerNorm decomposed, ReduceMean axes input (opset 18)', rule: 'ReduceMean', case: decomposedLayerNorm(18) },
  { name: 'RMSNorm decomposed (Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul)', rule: 'Reciprocal', case: decomposedRmsNorm() },
  ...GRAD_CASES_MORE,
  ...CONV_CASES,
];

function unaryCases(): NamedCase[] {
  const u = (op: string, range?: [number, number], attrs = {}): NamedCase => ({ name: `${op}`, rule: op, case: { nodes: [node(op, ['x'], ['y'], attrs)], inputs: [{ name: 'x', shape: [2, 3], range }] } });
  const f32 = (c: NamedCase): NamedCase => ({ ...c, name: `${c.name} (float32: CPU kernel is float only)`, case: { ...c.case, dtype: 'float32' } });
  return [
    u('Relu'), u('LeakyRelu', undefined, { alpha: { float: 0.2 } }), u('Tanh'), u('Sigmoid'), u('Exp'), u('Log', pos), u('Sqrt', pos), u('Reciprocal', pos),
    u('Neg'), u('Identity'),
    f32(u('Erf')),
    f32({ name: 'Gelu (opset 20, exact)', rule: 'Gelu', case: { opset: 20, nodes: [node('Gelu', ['x'], ['y'])], inputs: [{ name: 'x', shape: [2, 5], range: [-3, 3] }] } }),
    f32({ name: 'Gelu (opset 20, tanh)', rule: 'Gelu', case: { opset: 20, nodes: [node('Gelu', ['x'], ['y'], { approximate: 'tanh' })], inputs: [{ name: 'x', shape: [2, 5], range: [-3, 3] }] } }),
    f32({ name: 'Gelu com.microsoft', rule: 'com.microsoft:Gelu', case: { nodes: [node('Gelu', ['x'], ['y'], {}, '', 'com.microsoft')], inputs: [{ name: 'x', shape: [2, 5], range: [-3, 3] }] } }),
    f32({
      name: 'Gelu Erf form x·0.5·(1+Erf(x/√2)) composes', rule: 'Erf', case: {
        nodes: [node('Mul', ['x', 'inv_sqrt2'], ['t']), node('Erf', ['t'], ['e']), node('Add', ['e', 'one'], ['p']), node('Mul', ['x', 'p'], ['q']), node('Mul', ['q', 'half'], ['y'])],
        inputs: [{ name: 'x', shape: [2, 5], range: [-3, 3] }, { name: 'inv_sqrt2', shape: [], values: [Math.SQRT1_2], constant: true }, { name: 'one', shape: [], values: [1], constant: true }, { name: 'half', shape: [], values: [0.5], constant: true }],
      },
    }),
  ];
}

function decomposedLayerNorm(opset: number): GradCase {
  const reduce = (x: string, y: string) => (opset >= 18 ? node('ReduceMean', [x, 'axes'], [y]) : node('ReduceMean', [x], [y], { axes: [-1] }));
  return {
    opset,
    nodes: [
      reduce('x', 'mean'), node('Sub', ['x', 'mean'], ['xc']), node('Pow', ['xc', 'two'], ['sq']), reduce('sq', 'var'),
      node('Add', ['var', 'eps'], ['ve']), node('Sqrt', ['ve'], ['std']), node('Div', ['xc', 'std'], ['xh']),
      node('Mul', ['xh', 's'], ['xs']), node('Add', ['xs', 'b'], ['y']),
    ],
    inputs: [
      { name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [4] }, { name: 'b', shape: [4] },
      { name: 'two', shape: [], values: [2], constant: true }, { name: 'eps', shape: [], values: [1e-5], constant: true },
      ...(opset >= 18 ? [{ name: 'axes', shape: [1], ints: [-1], constant: true }] : []),
    ],
  };
}

function decomposedRmsNorm(): GradCase {
  return {
    nodes: [
      node('Pow', ['x', 'two'], ['sq']), node('ReduceMean', ['sq'], ['ms'], { axes: [-1] }), node('Add', ['ms', 'eps'], ['me']),
      node('Sqrt', ['me'], ['rms']), node('Reciprocal', ['rms'], ['inv']), node('Mul', ['x', 'inv'], ['xn']), node('Mul', ['xn', 's'], ['y']),
    ],
    inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [4] }, { name: 'two', shape: [], values: [2], constant: true }, { name: 'eps', shape: [], values: [1e-6], constant: true }],
  };
}

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
    node: [node('Sin', ['x'], ['s'], {}, 'my_sin'), node('ReduceSum', ['s'], ['loss'], { keepdims: 0 })],
    input: [tensorValueInfo('x', DataType.FLOAT, [3])],
    output: [tensorValueInfo('loss', DataType.FLOAT, [])],
  });
  const model = create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })], graph });
  assert.throws(() => buildBackward(graph, { loss: 'loss', wrt: ['x'], names: new NameAuthority(model), opset: 17 }), (err: unknown) => {
    assert.ok(err instanceof UserInputError);
    assert.match(err.message, /no gradient rule for op Sin \(node 'my_sin'\)/);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
});
