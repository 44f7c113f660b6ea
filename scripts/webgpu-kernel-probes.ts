/**
 * The one-node graphs scripts/gen-webgpu-kernels.ts opens on WebGPU: per op, how to build a valid node
 * whose probed type constraint has a given element type at a given opset. Ops: those that exported
 * transformers, MLPs and CNNs use, and those the train-step builder emits (src/train/).
 */
import type { TensorProto } from 'onnx-buf';
import type { AttrValue } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeFloatTensor, makeInt64Tensor } from '../src/onnx/tensor.js';

export interface ProbeCase {
  op: string;
  inputs: string[];
  graphInputs: { name: string; type: number; dims: number[] }[];
  inits?: TensorProto[];
  attrs?: Record<string, AttrValue>;
  outputs: { name: string; type?: number }[];
}

export interface ProbeSpec {
  op: string;
  domain?: string;
  since?: number;
  /** Constraint name → types to probe (undefined: the default list). */
  probe: Record<string, number[] | undefined>;
  build(type: number, opset: number, constraint: string): ProbeCase | undefined;
}

const F = DataType.FLOAT, I64 = DataType.INT64, I32 = DataType.INT32, B = DataType.BOOL;
const D = [2, 4];
const inp = (name: string, type: number, dims = D) => ({ name, type, dims });
const i64 = (name: string, dims: number[], values: number[]) => makeInt64Tensor(name, dims, values);
const out = (type?: number) => [{ name: 'y', type }];

function unary(op: string, attrs: Record<string, AttrValue> = {}, since = 1): ProbeSpec {
  return { op, since, probe: { T: undefined }, build: (t) => ({ op, inputs: ['x'], graphInputs: [inp('x', t)], attrs, outputs: out(t) }) };
}

function binary(op: string, outBool = false, since = 1): ProbeSpec {
  return { op, since, probe: { T: undefined }, build: (t) => ({ op, inputs: ['a', 'b'], graphInputs: [inp('a', t), inp('b', t)], outputs: out(outBool ? B : t) }) };
}

/** Reductions: axes as an input from opset 18 (ReduceSum from 13), an attribute before. */
function reduce(op: string): ProbeSpec {
  return {
    op, probe: { T: undefined },
    build: (t, opset): ProbeCase => {
      const axesInput = opset >= (op === 'ReduceSum' ? 13 : 18);
      return axesInput
        ? { op, inputs: ['x', 'axes'], graphInputs: [inp('x', t)], inits: [i64('axes', [1], [1])], attrs: { keepdims: 1 }, outputs: out(t) }
        : { op, inputs: ['x'], graphInputs: [inp('x', t)], attrs: { axes: [1], keepdims: 1 }, outputs: out(t) };
    },
  };
}

/** Data input T plus int64 initializer inputs (shapes, axes, indices). */
function withInts(op: string, ints: [string, number[], number[]][], attrs: Record<string, AttrValue> = {}, since = 1, intsSince = 1): ProbeSpec {
  return {
    op, since, probe: { T: undefined },
    build: (t, opset) => opset < intsSince ? undefined
      : ({ op, inputs: ['x', ...ints.map((i) => i[0])], graphInputs: [inp('x', t)], inits: ints.map(([n, d, v]) => i64(n, d, v)), attrs, outputs: out(t) }),
  };
}

function indexed(op: string, idxDims: number[], idxValues: number[], extra: 'updates' | undefined, updDims: number[] = [], since = 11): ProbeSpec {
  return {
    op, since, probe: { T: undefined, Tind: [I32, I64] },
    build: (t, _opset, c) => {
      const dataT = c === 'T' ? t : F;
      const idxT = c === 'Tind' ? t : I64;
      const idx = { name: 'i', type: idxT, dims: idxDims };
      const ins = [inp('x', dataT), idx, ...(extra ? [inp('u', dataT, updDims)] : [])];
      void idxValues;
      return { op, inputs: ins.map((v) => v.name), graphInputs: ins, outputs: out(dataT) };
    },
  };
}

export function probeSpecs(): ProbeSpec[] {
  return [
    ...['Abs', 'Neg', 'Floor', 'Ceil', 'Reciprocal', 'Sqrt', 'Exp', 'Erf', 'Sigmoid', 'Log', 'Sin', 'Cos', 'Tanh', 'Relu', 'Identity', 'Sign', 'Round', 'Elu', 'HardSigmoid', 'Softplus'].map((op) => unary(op)),
    unary('Not'), unary('LeakyRelu', { alpha: 0.1 }), unary('Gelu', {}, 20), unary('Flatten', { axis: 1 }),
    unary('Softmax', { axis: -1 }), unary('LogSoftmax', { axis: -1 }),
    { op: 'IsNaN', since: 9, probe: { T1: undefined }, build: (t) => ({ op: 'IsNaN', inputs: ['x'], graphInputs: [inp('x', t)], outputs: out(B) }) },
    { op: 'IsInf', since: 10, probe: { T1: undefined }, build: (t) => ({ op: 'IsInf', inputs: ['x'], graphInputs: [inp('x', t)], outputs: out(B) }) },
    ...['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Mean', 'Mod'].map((op) => binary(op)),
    ...['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor'].map((op) => binary(op, true)),
    { op: 'Pow', probe: { T: undefined, T1: undefined }, build: (t, _o, c) => ({ op: 'Pow', inputs: ['a', 'b'], graphInputs: [inp('a', c === 'T' ? t : F), inp('b', c === 'T1' ? t : F)], outputs: out(c === 'T' ? t : F) }) },
    { op: 'Where', since: 9, probe: { T: undefined }, build: (t) => ({ op: 'Where', inputs: ['c', 'a', 'b'], graphInputs: [inp('c', B), inp('a', t), inp('b', t)], outputs: out(t) }) },
    {
      op: 'Cast', since: 6, probe: { T1: undefined, T2: undefined },
      build: (t, _o, c) => ({ op: 'Cast', inputs: ['x'], graphInputs: [inp('x', c === 'T1' ? t : F)], attrs: { to: c === 'T2' ? t : F }, outputs: out(c === 'T2' ? t : F) }),
    },
    ...['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceSumSquare', 'ReduceLogSumExp', 'ReduceL2', 'ReduceL1', 'ReduceLogSum'].map(reduce),
    { op: 'ArgMax', probe: { T: undefined }, build: (t) => ({ op: 'ArgMax', inputs: ['x'], graphInputs: [inp('x', t)], attrs: { axis: 1 }, outputs: out(I64) }) },
    { op: 'Shape', probe: { T: undefined }, build: (t) => ({ op: 'Shape', inputs: ['x'], graphInputs: [inp('x', t)], outputs: out(I64) }) },
    { op: 'Size', probe: { T: undefined }, build: (t) => ({ op: 'Size', inputs: ['x'], graphInputs: [inp('x', t)], outputs: out(I64) }) },
    withInts('Reshape', [['shape', [1], [-1]]], {}, 5),
    withInts('Expand', [['shape', [3], [3, 2, 4]]], {}, 8),
    withInts('Tile', [['repeats', [2], [1, 2]]], {}, 6),
    withInts('Slice', [['starts', [1], [0]], ['ends', [1], [2]], ['axes', [1], [1]]], {}, 10),
    withInts('Pad', [['pads', [4], [0, 0, 0, 1]]], {}, 11),
    {
      op: 'Unsqueeze', probe: { T: undefined },
      build: (t, opset) => opset >= 13
        ? { op: 'Unsqueeze', inputs: ['x', 'axes'], graphInputs: [inp('x', t)], inits: [i64('axes', [1], [0])], outputs: out(t) }
        : { op: 'Unsqueeze', inputs: ['x'], graphInputs: [inp('x', t)], attrs: { axes: [0] }, outputs: out(t) },
    },
    {
      op: 'Squeeze', probe: { T: undefined },
      build: (t, opset) => opset >= 13
        ? { op: 'Squeeze', inputs: ['x', 'axes'], graphInputs: [inp('x', t, [1, 4])], inits: [i64('axes', [1], [0])], outputs: out(t) }
        : { op: 'Squeeze', inputs: ['x'], graphInputs: [inp('x', t, [1, 4])], attrs: { axes: [0] }, outputs: out(t) },
    },
    {
      op: 'Split', probe: { T: undefined },
      build: (t, opset) => opset >= 13
        ? { op: 'Split', inputs: ['x', 'split'], graphInputs: [inp('x', t)], inits: [i64('split', [2], [1, 1])], outputs: [{ name: 'y', type: t }, { name: 'z', type: t }] }
        : { op: 'Split', inputs: ['x'], graphInputs: [inp('x', t)], attrs: { split: [1, 1] }, outputs: [{ name: 'y', type: t }, { name: 'z', type: t }] },
    },
    withInts('CumSum', [['axis', [], [1]]], {}, 11),
    withInts('Trilu', [], { upper: 1 }, 14),
    { op: 'Transpose', probe: { T: undefined }, build: (t) => ({ op: 'Transpose', inputs: ['x'], graphInputs: [inp('x', t)], attrs: { perm: [1, 0] }, outputs: out(t) }) },
    { op: 'Concat', probe: { T: undefined }, build: (t) => ({ op: 'Concat', inputs: ['a', 'b'], graphInputs: [inp('a', t), inp('b', t)], attrs: { axis: 0 }, outputs: out(t) }) },
    indexed('Gather', [3], [0, 1, 0], undefined, [], 1),
    indexed('GatherElements', D, [], undefined),
    indexed('ScatterElements', D, [], 'updates', D),
    { op: 'GatherND', since: 11, probe: { T: undefined }, build: (t) => ({ op: 'GatherND', inputs: ['x', 'i'], graphInputs: [inp('x', t), inp('i', I64, [1, 1])], outputs: out(t) }) },
    { op: 'ScatterND', since: 11, probe: { T: undefined }, build: (t) => ({ op: 'ScatterND', inputs: ['x', 'i', 'u'], graphInputs: [inp('x', t), inp('i', I64, [1, 1]), inp('u', t, [1, 4])], outputs: out(t) }) },
    { op: 'NonZero', since: 9, probe: { T: undefined }, build: (t) => ({ op: 'NonZero', inputs: ['x'], graphInputs: [inp('x', t)], outputs: out(I64) }) },
    {
      op: 'ConstantOfShape', since: 9, probe: { T2: undefined },
      build: (t) => t === DataType.UINT8 || t === DataType.FLOAT16 ? undefined
        : ({ op: 'ConstantOfShape', inputs: ['s'], graphInputs: [inp('s', I64, [2])], attrs: { value: valueTensor(t) }, outputs: out(t) }),
    },
    { op: 'Range', since: 11, probe: { T: undefined }, build: (t) => ({ op: 'Range', inputs: ['a', 'b', 'c'], graphInputs: [inp('a', t, []), inp('b', t, []), inp('c', t, [])], outputs: out(t) }) },
    {
      op: 'OneHot', since: 11, probe: { T1: undefined },
      build: (t) => ({ op: 'OneHot', inputs: ['i', 'depth', 'values'], graphInputs: [inp('i', t, [3])], inits: [i64('depth', [], [4]), makeFloatTensor('values', [2], Float32Array.of(0, 1))], outputs: out(F) }),
    },
    { op: 'MatMul', probe: { T: undefined }, build: (t) => ({ op: 'MatMul', inputs: ['a', 'b'], graphInputs: [inp('a', t), inp('b', t, [4, 3])], outputs: out(t) }) },
    { op: 'Gemm', probe: { T: undefined }, build: (t) => ({ op: 'Gemm', inputs: ['a', 'b', 'c'], graphInputs: [inp('a', t), inp('b', t, [4, 3]), inp('c', t, [3])], outputs: out(t) }) },
    { op: 'Clip', since: 11, probe: { T: undefined }, build: (t) => ({ op: 'Clip', inputs: ['x', 'lo', 'hi'], graphInputs: [inp('x', t), inp('lo', t, []), inp('hi', t, [])], outputs: out(t) }) },
    {
      op: 'LayerNormalization', since: 17, probe: { T: undefined },
      build: (t) => ({ op: 'LayerNormalization', inputs: ['x', 's', 'b'], graphInputs: [inp('x', t), inp('s', t, [4]), inp('b', t, [4])], attrs: { axis: -1 }, outputs: out(t) }),
    },
    {
      op: 'Conv', probe: { T: undefined },
      build: (t) => ({ op: 'Conv', inputs: ['x', 'w'], graphInputs: [inp('x', t, [1, 1, 4, 4]), inp('w', t, [1, 1, 3, 3])], outputs: out(t) }),
    },
    ...['MaxPool', 'AveragePool'].map((op): ProbeSpec => ({ op, probe: { T: undefined }, build: (t) => ({ op, inputs: ['x'], graphInputs: [inp('x', t, [1, 1, 4, 4])], attrs: { kernel_shape: [2, 2] }, outputs: out(t) }) })),
    { op: 'GlobalAveragePool', probe: { T: undefined }, build: (t) => ({ op: 'GlobalAveragePool', inputs: ['x'], graphInputs: [inp('x', t, [1, 1, 4, 4])], outputs: out(t) }) },
    {
      op: 'BatchNormalization', since: 15, probe: { T: undefined },
      build: (t) => ({ op: 'BatchNormalization', inputs: ['x', 's', 'b', 'm', 'v'], graphInputs: [inp('x', t, [1, 2, 2, 2]), inp('s', t, [2]), inp('b', t, [2]), inp('m', t, [2]), inp('v', t, [2])], outputs: out(t) }),
    },
  ];
}

function valueTensor(t: number): TensorProto {
  const v = makeInt64Tensor('', [1], [0]);
  v.dataType = t;
  v.int64Data = [];
  v.rawData = new Uint8Array(t === DataType.FLOAT || t === I32 ? 4 : t === I64 ? 8 : 1);
  return v;
}
