/** Finite-difference cases for data-movement, reduction and other rules (run by grad-rules.test.ts). */
import { node } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import type { GradCase, NamedCase } from './grad-rules-harness.js';

const pos: [number, number] = [0.5, 1.5];
const one = (op: string, inputs: string[], attrs = {}, outputs = ['y']) => [node(op, inputs, outputs, attrs)];

export const GRAD_CASES_MORE: NamedCase[] = [
  { name: 'Reshape [2,3,4] → [4,6]', rule: 'Reshape', case: { nodes: one('Reshape', ['x', 'shape']), inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 'shape', shape: [2], ints: [4, -1], constant: true }] } },
  { name: 'Reshape, runtime shape input', rule: 'Reshape', case: { symbolic: true, nodes: one('Reshape', ['x', 'shape']), inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 'shape', shape: [2], ints: [6, 4] }] } },
  { name: 'Flatten axis 2', rule: 'Flatten', case: { nodes: one('Flatten', ['x'], { axis: 2 }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'Squeeze axes input', rule: 'Squeeze', case: { nodes: one('Squeeze', ['x', 'axes']), inputs: [{ name: 'x', shape: [2, 1, 4] }, { name: 'axes', shape: [1], ints: [1], constant: true }] } },
  { name: 'Unsqueeze axes input', rule: 'Unsqueeze', case: { nodes: one('Unsqueeze', ['x', 'axes']), inputs: [{ name: 'x', shape: [2, 4] }, { name: 'axes', shape: [2], ints: [0, -1], constant: true }] } },
  { name: 'Transpose perm [1,2,0]', rule: 'Transpose', case: { nodes: one('Transpose', ['x'], { perm: [1, 2, 0] }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'Transpose default (reverse)', rule: 'Transpose', case: { nodes: one('Transpose', ['x']), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'Concat axis 1, three inputs', rule: 'Concat', case: { nodes: one('Concat', ['a', 'b', 'c'], { axis: 1 }), inputs: [{ name: 'a', shape: [2, 1, 3] }, { name: 'b', shape: [2, 2, 3] }, { name: 'c', shape: [2, 3, 3] }] } },
  { name: 'Concat axis −1, symbolic (runtime sizes), one input constant', rule: 'Concat', case: { symbolic: true, nodes: one('Concat', ['a', 'b'], { axis: -1 }), inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 2], wrt: false }] } },
  { name: 'Split sizes input, unused middle output', rule: 'Split', case: { nodes: one('Split', ['x', 'split'], { axis: 1 }, ['p', 'q', 'r']), outputs: ['p', 'r'], inputs: [{ name: 'x', shape: [2, 6] }, { name: 'split', shape: [3], ints: [1, 2, 3], constant: true }] } },
  { name: 'Split num_outputs (opset 18)', rule: 'Split', case: { opset: 18, nodes: one('Split', ['x'], { axis: 0, num_outputs: 2 }, ['p', 'q']), outputs: ['p', 'q'], inputs: [{ name: 'x', shape: [4, 3] }] } },
  { name: 'Slice unit steps (Pad form)', rule: 'Slice', case: { nodes: one('Slice', ['x', 'st', 'en', 'ax']), inputs: [{ name: 'x', shape: [3, 5, 4] }, { name: 'st', shape: [2], ints: [1, -3], constant: true }, { name: 'en', shape: [2], ints: [100, -1], constant: true }, { name: 'ax', shape: [2], ints: [1, 2], constant: true }] } },
  { name: 'Slice step 2 and negative step (scatter form)', rule: 'Slice', case: { nodes: one('Slice', ['x', 'st', 'en', 'ax', 'sp']), inputs: [{ name: 'x', shape: [3, 5, 4] }, { name: 'st', shape: [2], ints: [0, -1], constant: true }, { name: 'en', shape: [2], ints: [5, 0], constant: true }, { name: 'ax', shape: [2], ints: [1, 2], constant: true }, { name: 'sp', shape: [2], ints: [2, -1], constant: true }] } },
  { name: 'Slice symbolic dims (scatter form)', rule: 'Slice', case: { symbolic: true, nodes: one('Slice', ['x', 'st', 'en']), inputs: [{ name: 'x', shape: [4, 3] }, { name: 'st', shape: [1], ints: [1], constant: true }, { name: 'en', shape: [1], ints: [3], constant: true }] } },
  { name: 'Gather axis 0 (embedding, repeated ids, ScatterND add)', rule: 'Gather', case: { nodes: one('Gather', ['w', 'ids']), inputs: [{ name: 'w', shape: [5, 3] }, { name: 'ids', shape: [2, 3], ints: [0, 4, 4, 1, 0, 4] }] } },
  { name: 'Gather axis 0, opset 13 (OneHot·MatMul form)', rule: 'Gather', case: { opset: 13, nodes: one('Gather', ['w', 'ids']), inputs: [{ name: 'w', shape: [5, 3] }, { name: 'ids', shape: [4], ints: [2, 2, 0, 3] }] } },
  { name: 'Gather axis 1, scalar index (last token)', rule: 'Gather', case: { nodes: one('Gather', ['x', 'i'], { axis: 1 }), inputs: [{ name: 'x', shape: [2, 4, 3] }, { name: 'i', shape: [], ints: [-1] }] } },
  { name: 'Gather axis 1, index vector', rule: 'Gather', case: { nodes: one('Gather', ['x', 'i'], { axis: 1 }), inputs: [{ name: 'x', shape: [2, 4, 3] }, { name: 'i', shape: [3], ints: [3, 0, 3] }] } },
  { name: 'Expand [3,1] → [2,3,4]', rule: 'Expand', case: { nodes: one('Expand', ['x', 'shape']), inputs: [{ name: 'x', shape: [3, 1] }, { name: 'shape', shape: [3], ints: [2, 3, 4], constant: true }] } },
  { name: 'Expand symbolic', rule: 'Expand', case: { symbolic: true, nodes: one('Expand', ['x', 'shape']), inputs: [{ name: 'x', shape: [3, 1] }, { name: 'shape', shape: [3], ints: [2, 3, 4] }] } },
  {
    name: 'Where (condition from Greater, broadcast branches)', rule: 'Where', case: {
      nodes: [node('Greater', ['c', 'zero'], ['cond']), node('Where', ['cond', 'a', 'b'], ['y'])],
      inputs: [{ name: 'c', shape: [2, 3], wrt: false }, { name: 'zero', shape: [], values: [0], constant: true }, { name: 'a', shape: [3] }, { name: 'b', shape: [2, 1] }],
    },
  },
  {
    name: 'Cast float32 → float64 → float32', rule: 'Cast', case: {
      dtype: 'float32', nodes: [node('Cast', ['x'], ['d'], { to: DataType.DOUBLE }), node('Mul', ['d', 'd'], ['s']), node('Cast', ['s'], ['y'], { to: DataType.FLOAT })],
      inputs: [{ name: 'x', shape: [2, 3] }],
    },
  },
  { name: 'ReduceSum axes input, keepdims 0', rule: 'ReduceSum', case: { nodes: one('ReduceSum', ['x', 'axes'], { keepdims: 0 }), inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 'axes', shape: [2], ints: [0, -1], constant: true }] } },
  { name: 'ReduceSum keepdims 1, all axes', rule: 'ReduceSum', case: { nodes: one('ReduceSum', ['x']), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'ReduceMean axes attr, keepdims 0', rule: 'ReduceMean', case: { nodes: one('ReduceMean', ['x'], { axes: [1], keepdims: 0 }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'ReduceMean symbolic, keepdims 1', rule: 'ReduceMean', case: { symbolic: true, nodes: one('ReduceMean', ['x'], { axes: [0, 2] }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'Pow constant exponent 3', rule: 'Pow', case: { nodes: one('Pow', ['x', 'p']), inputs: [{ name: 'x', shape: [2, 3] }, { name: 'p', shape: [], values: [3], constant: true }] } },
  { name: 'Pow general (both inputs, broadcast exponent)', rule: 'Pow', case: { nodes: one('Pow', ['x', 'p']), inputs: [{ name: 'x', shape: [2, 3], range: pos }, { name: 'p', shape: [3], range: [-1.5, 2.5] }] } },
  { name: 'Dropout training_mode=true, ratio 0 (mask path: deterministic all-ones mask)', rule: 'Dropout', case: { nodes: one('Dropout', ['x', 'ratio', 'train'], {}, ['y', 'mask']), inputs: [{ name: 'x', shape: [2, 3] }, { name: 'ratio', shape: [], values: [0], constant: true }, { name: 'train', shape: [], ints: [1], bool: true, constant: true }] } },
  { name: 'Dropout with ratio and training_mode=false (identity)', rule: 'Dropout', case: { nodes: one('Dropout', ['x', 'ratio', 'train'], {}, ['y', 'mask']), inputs: [{ name: 'x', shape: [2, 3] }, { name: 'ratio', shape: [], values: [0.3], constant: true }, { name: 'train', shape: [], ints: [0], bool: true, constant: true }] } },
];

/** float32: ORT's CPU Conv, ConvTranspose, AveragePool and GlobalAveragePool kernels have no double variant. */
const f32 = 'float32' as const;
const conv = (attrs: Record<string, number | number[]>, x: number[], w: number[], bias: boolean, symbolic = false): NamedCase['case'] => ({
  dtype: f32, symbolic,
  nodes: [node('Conv', bias ? ['x', 'w', 'b'] : ['x', 'w'], ['y'], attrs)],
  inputs: [{ name: 'x', shape: x }, { name: 'w', shape: w, fixedShape: true }, ...(bias ? [{ name: 'b', shape: [w[0]!] }] : [])],
});

function convSame(x: number[], w: number[], bias: boolean): NamedCase['case'] {
  const c = conv({ strides: [2, 2] }, x, w, bias);
  c.nodes = [node('Conv', ['x', 'w'], ['y'], { strides: [2, 2], auto_pad: 'SAME_UPPER' })];
  return c;
}

export const CONV_CASES: NamedCase[] = [
  { name: 'Conv 2-D 3×3, pads 1, bias (float32)', rule: 'Conv', case: conv({ pads: [1, 1, 1, 1] }, [2, 3, 5, 5], [4, 3, 3, 3], true) },
  { name: 'Conv 2-D stride 2, asymmetric pads, dilation 2 (float32)', rule: 'Conv', case: conv({ strides: [2, 2], pads: [1, 0, 2, 1], dilations: [2, 1] }, [1, 2, 7, 6], [3, 2, 3, 2], false) },
  { name: 'Conv 2-D groups 2, stride 2 (float32)', rule: 'Conv', case: conv({ group: 2, strides: [2, 1], pads: [0, 1, 1, 0] }, [2, 4, 5, 4], [6, 2, 2, 3], true) },
  { name: 'Conv 2-D depthwise, symbolic sizes (runtime pad) (float32)', rule: 'Conv', case: conv({ group: 3, strides: [2, 2], pads: [1, 1, 1, 1] }, [2, 3, 6, 5], [3, 1, 3, 3], true, true) },
  { name: 'Conv 1-D stride 3 (float32)', rule: 'Conv', case: conv({ strides: [3] }, [2, 2, 10], [3, 2, 2], true) },
  { name: 'Conv auto_pad SAME_UPPER (float32)', rule: 'Conv', case: convSame( [1, 2, 5, 6], [2, 2, 3, 3], false) },
  { name: 'MaxPool 3×3 stride 2 pad 1 (overlapping windows)', rule: 'MaxPool', case: { nodes: [node('MaxPool', ['x'], ['y'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })], inputs: [{ name: 'x', shape: [2, 3, 5, 6] }] } },
  { name: 'MaxPool 2×2 stride 2, symbolic', rule: 'MaxPool', case: { symbolic: true, nodes: [node('MaxPool', ['x'], ['y'], { kernel_shape: [2, 2], strides: [2, 2] })], inputs: [{ name: 'x', shape: [1, 2, 4, 6] }] } },
  { name: 'AveragePool 3×3 stride 2 pads, count_include_pad 0 (float32)', rule: 'AveragePool', case: { dtype: f32, nodes: [node('AveragePool', ['x'], ['y'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })], inputs: [{ name: 'x', shape: [2, 2, 5, 6] }] } },
  { name: 'AveragePool 2×2 count_include_pad 1, symbolic (float32)', rule: 'AveragePool', case: { dtype: f32, symbolic: true, nodes: [node('AveragePool', ['x'], ['y'], { kernel_shape: [2, 2], strides: [1, 2], pads: [0, 1, 1, 0], count_include_pad: 1 })], inputs: [{ name: 'x', shape: [1, 3, 4, 5] }] } },
  { name: 'GlobalAveragePool (float32)', rule: 'GlobalAveragePool', case: { dtype: f32, nodes: [node('GlobalAveragePool', ['x'], ['y'])], inputs: [{ name: 'x', shape: [2, 3, 4, 5] }] } },
];


/** Element-wise, matmul, softmax and normalization cases. */
export const BASIC_CASES: NamedCase[] = [
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
  { name: 'LayerNormalization float32 (x̂, 1/σ from a unit-scale LayerNormalization)', rule: 'LayerNormalization', case: { dtype: 'float32', nodes: [node('LayerNormalization', ['x', 's', 'b'], ['y'], { epsilon: { float: 1e-3 } })], inputs: [{ name: 'x', shape: [2, 3, 6] }, { name: 's', shape: [6] }, { name: 'b', shape: [6] }] } },
  { name: 'LayerNormalization float32 axis 1, symbolic scale shape', rule: 'LayerNormalization', case: { dtype: 'float32', symbolic: true, nodes: [node('LayerNormalization', ['x', 's', 'b'], ['y'], { axis: 1 })], inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [3, 4] }, { name: 'b', shape: [3, 4] }] } },
  { name: 'SimplifiedLayerNormalization (RMSNorm)', rule: 'SimplifiedLayerNormalization', case: { nodes: [node('SimplifiedLayerNormalization', ['x', 's'], ['y'], { axis: -1, epsilon: { float: 1e-5 } })], inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [4] }] } },
  { name: 'RMSNormalization (opset 23)', rule: 'RMSNormalization', case: { opset: 23, nodes: [node('RMSNormalization', ['x', 's'], ['y'], { epsilon: { float: 1e-3 } })], inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 's', shape: [4] }] } },
  { name: 'LayerNorm decomposed (ReduceMean/Sub/Pow/Add/Sqrt/Div, opset 17)', rule: 'ReduceMean', case: decomposedLayerNorm(17) },
  { name: 'LayerNorm decomposed, ReduceMean axes input (opset 18)', rule: 'ReduceMean', case: decomposedLayerNorm(18) },
  { name: 'RMSNorm decomposed (Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul)', rule: 'Reciprocal', case: decomposedRmsNorm() },
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


/** Activations, layout ops, BatchNormalization and the other reductions. */
export const EXTRA_CASES: NamedCase[] = [
  { name: 'FastGelu with bias (com.microsoft, float32)', rule: 'com.microsoft:FastGelu', case: { dtype: f32, nodes: [node('FastGelu', ['x', 'b'], ['y'], {}, '', 'com.microsoft')], inputs: [{ name: 'x', shape: [2, 4], range: [-3, 3] }, { name: 'b', shape: [4] }] } },
  { name: 'BiasGelu (com.microsoft, float32)', rule: 'com.microsoft:BiasGelu', case: { dtype: f32, nodes: [node('BiasGelu', ['x', 'b'], ['y'], {}, '', 'com.microsoft')], inputs: [{ name: 'x', shape: [2, 4], range: [-3, 3] }, { name: 'b', shape: [4] }] } },
  { name: 'QuickGelu (com.microsoft, float32)', rule: 'com.microsoft:QuickGelu', case: { dtype: f32, nodes: [node('QuickGelu', ['x'], ['y'], { alpha: { float: 1.702 } }, '', 'com.microsoft')], inputs: [{ name: 'x', shape: [2, 4], range: [-3, 3] }] } },
  { name: 'Clip with min and max inputs', rule: 'Clip', case: { nodes: one('Clip', ['x', 'lo', 'hi']), inputs: [{ name: 'x', shape: [3, 4], range: [-2, 2] }, { name: 'lo', shape: [], values: [-0.5], constant: true }, { name: 'hi', shape: [], values: [0.7], constant: true }] } },
  { name: 'Clip min only (ReLU-like)', rule: 'Clip', case: { nodes: one('Clip', ['x', 'lo']), inputs: [{ name: 'x', shape: [3, 4], range: [-2, 2] }, { name: 'lo', shape: [], values: [0.1], constant: true }] } },
  { name: 'HardSigmoid (float32)', rule: 'HardSigmoid', case: { dtype: f32, nodes: one('HardSigmoid', ['x'], { alpha: { float: 0.3 } }), inputs: [{ name: 'x', shape: [3, 4], range: [-4, 4] }] } },
  { name: 'HardSwish (float32)', rule: 'HardSwish', case: { dtype: f32, opset: 17, nodes: one('HardSwish', ['x']), inputs: [{ name: 'x', shape: [3, 4], range: [-5, 5] }] } },
  { name: 'Softplus (float32)', rule: 'Softplus', case: { dtype: f32, nodes: one('Softplus', ['x']), inputs: [{ name: 'x', shape: [3, 4], range: [-3, 3] }] } },
  { name: 'Elu (float32)', rule: 'Elu', case: { dtype: f32, nodes: one('Elu', ['x'], { alpha: { float: 0.7 } }), inputs: [{ name: 'x', shape: [3, 4], range: [-2, 2] }] } },
  { name: 'Abs', rule: 'Abs', case: { nodes: one('Abs', ['x']), inputs: [{ name: 'x', shape: [3, 4] }] } },
  { name: 'Sin', rule: 'Sin', case: { nodes: one('Sin', ['x']), inputs: [{ name: 'x', shape: [3, 4], range: [-3, 3] }] } },
  { name: 'Cos', rule: 'Cos', case: { nodes: one('Cos', ['x']), inputs: [{ name: 'x', shape: [3, 4], range: [-3, 3] }] } },
  { name: 'Max [2,3] vs [3]', rule: 'Max', case: { nodes: one('Max', ['a', 'b']), inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }] } },
  { name: 'Min of three', rule: 'Min', case: { nodes: one('Min', ['a', 'b', 'c']), inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 3] }, { name: 'c', shape: [1, 3] }] } },
  { name: 'Mean of two, broadcast (float32: CPU Mean is float only)', rule: 'Mean', case: { dtype: f32, nodes: one('Mean', ['a', 'b']), inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }] } },
  { name: 'Pad constant, positive and negative pads', rule: 'Pad', case: { nodes: one('Pad', ['x', 'pads', 'cv']), inputs: [{ name: 'x', shape: [3, 4, 5] }, { name: 'pads', shape: [6], ints: [1, 0, -1, 2, 1, 2], constant: true }, { name: 'cv', shape: [], values: [0.5], constant: true }] } },
  { name: 'Pad with axes input (opset 18)', rule: 'Pad', case: { opset: 18, nodes: one('Pad', ['x', 'pads', '', 'axes']), inputs: [{ name: 'x', shape: [3, 4, 5] }, { name: 'pads', shape: [2], ints: [2, 1], constant: true }, { name: 'axes', shape: [1], ints: [-1], constant: true }] } },
  { name: 'Pad, pads computed at run time (positive and negative), symbolic dims', rule: 'Pad', case: { symbolic: true, nodes: one('Pad', ['x', 'pads', 'cv']), inputs: [{ name: 'x', shape: [3, 4, 5] }, { name: 'pads', shape: [6], ints: [1, 0, -1, 2, 1, 2] }, { name: 'cv', shape: [], values: [0.5], constant: true }] } },
  { name: 'Pad with axes input (opset 18), run-time pads', rule: 'Pad', case: { opset: 18, nodes: one('Pad', ['x', 'pads', '', 'axes']), inputs: [{ name: 'x', shape: [3, 4, 5] }, { name: 'pads', shape: [2], ints: [2, 1] }, { name: 'axes', shape: [1], ints: [-1], constant: true }] } },
  { name: 'Tile, repeats at run time, symbolic dims', rule: 'Tile', case: { symbolic: true, nodes: one('Tile', ['x', 'reps']), inputs: [{ name: 'x', shape: [2, 1, 3] }, { name: 'reps', shape: [3], ints: [2, 3, 1] }] } },
  { name: 'Tile [2,3] × [2,1,3]→ repeats', rule: 'Tile', case: { nodes: one('Tile', ['x', 'reps']), inputs: [{ name: 'x', shape: [2, 1, 3] }, { name: 'reps', shape: [3], ints: [2, 3, 1], constant: true }] } },
  { name: 'DepthToSpace DCR', rule: 'DepthToSpace', case: { nodes: one('DepthToSpace', ['x'], { blocksize: 2 }), inputs: [{ name: 'x', shape: [2, 8, 2, 3] }] } },
  { name: 'DepthToSpace CRD', rule: 'DepthToSpace', case: { nodes: one('DepthToSpace', ['x'], { blocksize: 2, mode: 'CRD' }), inputs: [{ name: 'x', shape: [2, 8, 2, 3] }] } },
  { name: 'SpaceToDepth', rule: 'SpaceToDepth', case: { nodes: one('SpaceToDepth', ['x'], { blocksize: 2 }), inputs: [{ name: 'x', shape: [2, 2, 4, 6] }] } },
  {
    name: 'BatchNormalization (inference form), all five inputs', rule: 'BatchNormalization', case: {
      nodes: one('BatchNormalization', ['x', 's', 'b', 'm', 'v'], { epsilon: { float: 1e-3 } }),
      inputs: [{ name: 'x', shape: [2, 3, 4, 2] }, { name: 's', shape: [3] }, { name: 'b', shape: [3] }, { name: 'm', shape: [3] }, { name: 'v', shape: [3], range: pos }],
    },
  },
  { name: 'ReduceSumSquare axes attr', rule: 'ReduceSumSquare', case: { nodes: one('ReduceSumSquare', ['x'], { axes: [1], keepdims: 0 }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'ReduceL2 axes input (opset 18)', rule: 'ReduceL2', case: { opset: 18, nodes: one('ReduceL2', ['x', 'axes'], { keepdims: 0 }), inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 'axes', shape: [1], ints: [-1], constant: true }] } },
  { name: 'ReduceLogSumExp keepdims 1', rule: 'ReduceLogSumExp', case: { nodes: one('ReduceLogSumExp', ['x'], { axes: [0, 2] }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'ReduceMax keepdims 0', rule: 'ReduceMax', case: { nodes: one('ReduceMax', ['x'], { axes: [1], keepdims: 0 }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'ReduceMin all axes', rule: 'ReduceMin', case: { nodes: one('ReduceMin', ['x'], { keepdims: 0 }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
];

/** Opset 11/12 forms: attribute axes/sizes, Softmax's 2-D coercion, OneHot embedding gradient, Slice without Split sizes. */
export const OLD_OPSET_CASES: NamedCase[] = [
  { name: 'opset 12 Softmax default axis (1): coerced 2-D', rule: 'Softmax', case: { opset: 12, nodes: one('Softmax', ['x']), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'opset 11 Softmax axis −1', rule: 'Softmax', case: { opset: 11, nodes: one('Softmax', ['x'], { axis: -1 }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'opset 11 LogSoftmax axis 1, symbolic dims', rule: 'LogSoftmax', case: { opset: 11, symbolic: true, nodes: one('LogSoftmax', ['x'], { axis: 1 }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'opset 11 Unsqueeze/Squeeze axes attributes', rule: 'Unsqueeze', case: { opset: 11, nodes: [node('Unsqueeze', ['x'], ['u'], { axes: [0, 3] }), node('Squeeze', ['u'], ['y'], { axes: [0] })], inputs: [{ name: 'x', shape: [2, 3] }] } },
  { name: 'opset 11 Split attribute sizes, unused output', rule: 'Split', case: { opset: 11, nodes: one('Split', ['x'], { axis: -1, split: [2, 1, 3] }, ['p', 'q', 'r']), outputs: ['r', 'p'], inputs: [{ name: 'x', shape: [2, 6] }] } },
  { name: 'opset 12 Concat, symbolic dims (Slice at run-time offsets)', rule: 'Concat', case: { opset: 12, symbolic: true, nodes: one('Concat', ['a', 'b', 'c'], { axis: 1 }), inputs: [{ name: 'a', shape: [2, 1] }, { name: 'b', shape: [2, 3] }, { name: 'c', shape: [2, 2] }] } },
  { name: 'opset 12 Mul [2,3,4] * [3,1], every dim symbolic (a symbolic dim that is 1: Where/Slice per axis)', rule: 'Mul', case: { opset: 12, symbolic: 'all', nodes: one('Mul', ['a', 'b']), inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [3, 1] }] } },
  { name: 'opset 17 Mul [2,3,4] * [3,1], every dim symbolic (run-time NonZero axes)', rule: 'Mul', case: { opset: 17, symbolic: 'all', nodes: one('Mul', ['a', 'b']), inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [3, 1] }] } },
  { name: 'opset 12 Add [2,3,4] + [4], symbolic', rule: 'Add', case: { opset: 12, symbolic: true, nodes: one('Add', ['a', 'b']), inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [4] }] } },
  { name: 'opset 12 Mul [2,1,4] * [3,1] (ReduceSum axes attribute)', rule: 'Mul', case: { opset: 12, nodes: one('Mul', ['a', 'b']), inputs: [{ name: 'a', shape: [2, 1, 4] }, { name: 'b', shape: [3, 1] }] } },
  { name: 'opset 11 ReduceSum axes attribute, keepdims 0', rule: 'ReduceSum', case: { opset: 11, nodes: one('ReduceSum', ['x'], { axes: [1], keepdims: 0 }), inputs: [{ name: 'x', shape: [2, 3, 4] }] } },
  { name: 'opset 12 MatMul [2,3,4,5] × [5,6]', rule: 'MatMul', case: { opset: 12, nodes: one('MatMul', ['a', 'b']), inputs: [{ name: 'a', shape: [2, 3, 4, 5] }, { name: 'b', shape: [5, 6] }] } },
  { name: 'opset 12 Gather embedding (OneHot·MatMul)', rule: 'Gather', case: { opset: 12, nodes: one('Gather', ['w', 'ids']), inputs: [{ name: 'w', shape: [5, 3] }, { name: 'ids', shape: [2, 2], ints: [4, 1, 4, 0] }] } },
  { name: 'opset 11 Slice with steps (ScatterElements, no reduction)', rule: 'Slice', case: { opset: 11, nodes: one('Slice', ['x', 'st', 'en', 'ax', 'sp']), inputs: [{ name: 'x', shape: [4, 5] }, { name: 'st', shape: [1], ints: [4], constant: true }, { name: 'en', shape: [1], ints: [0], constant: true }, { name: 'ax', shape: [1], ints: [1], constant: true }, { name: 'sp', shape: [1], ints: [-2], constant: true }] } },
  { name: 'opset 12 MaxPool non-overlapping', rule: 'MaxPool', case: { opset: 12, nodes: one('MaxPool', ['x'], { kernel_shape: [2, 2], strides: [2, 2] }), inputs: [{ name: 'x', shape: [1, 2, 4, 4] }] } },
  { name: 'opset 12 Gemm, Clip, Pad chain', rule: 'Clip', case: { opset: 12, nodes: [node('Gemm', ['a', 'b', 'c'], ['g'], { transB: 1 }), node('Clip', ['g', 'lo', 'hi'], ['cl']), node('Pad', ['cl', 'pads'], ['y'])], inputs: [{ name: 'a', shape: [3, 4] }, { name: 'b', shape: [2, 4] }, { name: 'c', shape: [2] }, { name: 'lo', shape: [], values: [-0.5], constant: true }, { name: 'hi', shape: [], values: [0.6], constant: true }, { name: 'pads', shape: [4], ints: [1, 0, 0, 2], constant: true }] } },
];

/** Values in ±[0.1, 1.1], away from a kink at 0 that a float32 FD step would straddle. */
function awayFromZero(n: number): number[] {
  return Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * (0.1 + ((i * 0.618034) % 1)));
}

/** Indexing, contraction, cumulative and piecewise-constant ops, PRelu, InstanceNormalization. */
export const INDEXING_CASES: NamedCase[] = [
  { name: 'GatherElements axis 1, repeated indices', rule: 'GatherElements', case: { nodes: one('GatherElements', ['x', 'i'], { axis: 1 }), inputs: [{ name: 'x', shape: [3, 4] }, { name: 'i', shape: [3, 2], ints: [0, 0, 3, 1, 2, 2] }] } },
  { name: 'GatherND pairs, repeated', rule: 'GatherND', case: { nodes: one('GatherND', ['x', 'i']), inputs: [{ name: 'x', shape: [3, 4, 2] }, { name: 'i', shape: [3, 2], ints: [0, 1, 2, 3, 0, 1] }] } },
  { name: 'Trilu lower, k = 1 (opset 14)', rule: 'Trilu', case: { nodes: one('Trilu', ['x', 'k'], { upper: 0 }), inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 'k', shape: [], ints: [1], constant: true }] } },
  { name: 'CumSum axis 1, exclusive', rule: 'CumSum', case: { nodes: one('CumSum', ['x', 'ax'], { exclusive: 1 }), inputs: [{ name: 'x', shape: [2, 4] }, { name: 'ax', shape: [], ints: [1], constant: true }] } },
  { name: 'CumSum axis 0, reverse', rule: 'CumSum', case: { nodes: one('CumSum', ['x', 'ax'], { reverse: 1 }), inputs: [{ name: 'x', shape: [3, 2] }, { name: 'ax', shape: [], ints: [0], constant: true }] } },
  { name: "Einsum 'bij,bjk->bik'", rule: 'Einsum', case: { nodes: one('Einsum', ['a', 'b'], { equation: 'bij,bjk->bik' }), inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [2, 4, 5] }] } },
  { name: "Einsum 'bhqd,bhkd->bhqk' (attention scores)", rule: 'Einsum', case: { nodes: one('Einsum', ['q', 'k'], { equation: 'bhqd,bhkd->bhqk' }), inputs: [{ name: 'q', shape: [1, 2, 3, 4] }, { name: 'k', shape: [1, 2, 5, 4] }] } },
  { name: "Einsum 'ij,j->i'", rule: 'Einsum', case: { nodes: one('Einsum', ['a', 'v'], { equation: 'ij,j->i' }), inputs: [{ name: 'a', shape: [3, 4] }, { name: 'v', shape: [4] }] } },
  ...(['Floor', 'Ceil', 'Round'] as const).map((op): NamedCase => ({
    name: `${op} (zero gradient): x·${op}(3x)`, rule: op,
    case: { nodes: [node('Mul', ['x', 'three'], ['t']), node(op, ['t'], ['f']), node('Mul', ['x', 'f'], ['y'])], inputs: [{ name: 'x', shape: [3, 4], range: [-2, 2] }, { name: 'three', shape: [], values: [3], constant: true }] },
  })),
  { name: 'Sign (zero gradient): x·Sign(x) = |x|', rule: 'Sign', case: { nodes: [node('Sign', ['x'], ['s']), node('Mul', ['x', 's'], ['y'])], inputs: [{ name: 'x', shape: [3, 4] }] } },
  { name: 'PRelu, per-channel slope (float32: CPU PRelu is float only)', rule: 'PRelu', case: { dtype: f32, nodes: one('PRelu', ['x', 's']), inputs: [{ name: 'x', shape: [2, 4, 3], values: awayFromZero(24) }, { name: 's', shape: [3], range: [0.05, 0.5] }] } },
  { name: 'InstanceNormalization (float32: CPU kernel is float only)', rule: 'InstanceNormalization', case: { dtype: f32, nodes: one('InstanceNormalization', ['x', 's', 'b'], { epsilon: { float: 1e-3 } }), inputs: [{ name: 'x', shape: [2, 3, 4, 5] }, { name: 's', shape: [3] }, { name: 'b', shape: [3] }] } },
];
