/**
 * The project's one shape inference, shared by analysis (head sizes, roles), the autodiff (reduction axes,
 * ranks) and the runners (input sizes). It needs no value_info: sources, in order, are the graph's
 * value_info / inputs / outputs, initializers and Constant nodes, then forward propagation over the ops
 * below in topological order, with the values of small int tensors carried along (shape arithmetic, as
 * onnx's `infer_shapes(data_prop=True)`), so Reshape/Expand/Tile/Pad/Slice targets computed at run time
 * from Shape resolve. Dynamic sizes stay symbolic ('batch', 'past_seq+seq'); unknown stays unknown
 * (`undefined` shape, `null` dim) and callers fall back to run-time Shape subgraphs.
 */
import type { GraphProto, NodeProto } from 'onnx-buf';
import { attrInt, attrInts, getAttr } from '../onnx/build.js';
import { DataType } from '../onnx/dtype.js';
import { topologicalOrder } from '../onnx/topo.js';
import { broadcastShapes, matmulShape, normAxis, product, type Dim } from './dims.js';
import { concatFacts, convFacts, expandFacts, gatherFacts, padFacts, reduceFacts, reshapeShape, sliceFacts, splitFacts, squeezeFacts, tileFacts } from './ops.js';
import { ShapeTable, tensorFacts, valueInfoFacts, type ValueFacts } from './table.js';
import { elementwiseValues, INT_BINARY, rangeValues, unaryValues, whereValues } from './values.js';

export { ShapeTable, type ValueFacts } from './table.js';
export { broadcastShapes, matmulShape, normAxis, sameDim, type Dim, type Shape } from './dims.js';

/**
 * Infers facts for every value of `graph`. If nodes take their outputs from the branch a constant condition
 * selects, else from both branches where they agree; Loop and Scan bodies are not entered.
 */
export function inferShapes(graph: GraphProto, outer?: ShapeTable): ShapeTable {
  const table = new ShapeTable(outer);
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) table.merge(v.name, valueInfoFacts(v));
  for (const t of graph.initializer) table.merge(t.name, tensorFacts(t));
  for (const n of topologicalOrder(graph.node)) {
    let outs: ValueFacts[] = [];
    try {
      outs = inferNode(n, table);
    } catch {
      outs = []; // malformed attributes: leave the outputs unknown, the consumer reports what it needs
    }
    n.output.forEach((o, i) => { if (o && outs[i]) table.merge(o, outs[i]!); });
  }
  return table;
}

const SAME_AS_INPUT = new Set([
  'Relu', 'Tanh', 'Sigmoid', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Erf', 'Gelu', 'Dropout', 'Softmax',
  'LogSoftmax', 'LeakyRelu', 'Floor', 'Ceil', 'Round', 'Clip', 'Softplus', 'HardSigmoid', 'Elu', 'Selu',
  'FastGelu', 'BiasGelu', 'CumSum', 'Sin', 'Cos', 'Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'LayerNormalization',
  'SimplifiedLayerNormalization', 'RMSNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization',
  'QuickGelu', 'Mish', 'HardSwish', 'Trilu', 'BatchNormalization', 'Softsign', 'ThresholdedRelu', 'Shrink',
  'InstanceNormalization', 'GroupNormalization', 'LpNormalization', 'MeanVarianceNormalization', 'Celu',
  'Hardmax', 'ReverseSequence', 'CastLike',
]);
/** Same shape, values passed through (or mapped) by unaryValues. */
const SAME_WITH_VALUES = new Set(['Identity', 'Neg', 'Abs', 'Sign', 'Not']);
const BOOL_SAME_SHAPE = new Set(['IsNaN', 'IsInf']);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'PRelu', 'Mod', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor']);
const COMPARE = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor']);

function inferNode(n: NodeProto, t: ShapeTable): ValueFacts[] {
  const inp = (i: number): ValueFacts => (n.input[i] ? t.get(n.input[i]!) : {});
  const x = inp(0);
  const op = n.opType;
  if (SAME_AS_INPUT.has(op)) return sameAsInput(n, x);
  if (SAME_WITH_VALUES.has(op)) return [{ elemType: x.elemType, shape: x.shape, ints: unaryValues(op, x.ints) }];
  if (BOOL_SAME_SHAPE.has(op)) return [{ elemType: DataType.BOOL, shape: x.shape }];
  const inputs = n.input.filter((s) => s);
  if (BROADCAST.has(op)) {
    const shape = broadcastShapes(inputs.map((s) => t.shape(s)));
    const f = INT_BINARY[op];
    const ints = f && inputs.length === 2 ? elementwiseValues(f, x.ints, inp(1).ints) : undefined;
    return [{ elemType: x.elemType, shape, ints }];
  }
  if (COMPARE.has(op)) {
    const f = INT_BINARY[op];
    return [{ elemType: DataType.BOOL, shape: broadcastShapes([x.shape, inp(1).shape]), ints: f ? elementwiseValues(f, x.ints ?? boolInts(x), inp(1).ints ?? boolInts(inp(1))) : undefined }];
  }
  switch (op) {
    case 'Constant': return constantFacts(n);
    case 'Where': return [{
      elemType: inp(1).elemType ?? inp(2).elemType,
      shape: broadcastShapes([0, 1, 2].map((i) => t.shape(n.input[i]!))),
      ints: whereValues(x.ints ?? boolInts(x), inp(1).ints, inp(2).ints),
    }];
    case 'Cast': {
      const to = attrInt(n, 'to', 0);
      return [{ elemType: to, shape: x.shape, ints: to === DataType.FLOAT || to === DataType.DOUBLE || to === DataType.INT64 || to === DataType.INT32 || to === DataType.BOOL ? x.ints : undefined }];
    }
    case 'Shape': return [shapeFacts(n, x)];
    case 'Size': {
      const size = x.shape ? product(x.shape) : null;
      return [{ elemType: DataType.INT64, shape: [], ints: size !== null && x.shape!.length > 0 ? [size] : x.shape?.length === 0 ? [1] : undefined }];
    }
    case 'MatMul': case 'MatMulInteger': case 'FusedMatMul': return [{ elemType: op === 'MatMulInteger' ? DataType.INT32 : x.elemType, shape: matmulShape(x.shape, inp(1).shape) }];
    case 'Gemm': return [gemmFacts(n, x, inp(1))];
    case 'Transpose': {
      if (!x.shape) return [{ elemType: x.elemType }];
      const perm = attrInts(n, 'perm') ?? x.shape.map((_, i) => x.shape!.length - 1 - i);
      return [{ elemType: x.elemType, shape: perm.map((p) => x.shape![p]!) }];
    }
    case 'Reshape': return [{ elemType: x.elemType, shape: reshapeShape(x.shape, inp(1), attrInt(n, 'allowzero', 0) === 1), ints: x.ints }];
    case 'Flatten': {
      if (!x.shape) return [{ elemType: x.elemType }];
      const axis = normAxis(attrInt(n, 'axis', 1), x.shape.length);
      return [{ elemType: x.elemType, shape: [product(x.shape.slice(0, axis)), product(x.shape.slice(axis))], ints: x.ints }];
    }
    case 'Squeeze': case 'Unsqueeze': return [squeezeFacts(n, t, op === 'Unsqueeze')];
    case 'Concat': return [concatFacts(n, t)];
    case 'Split': return splitFacts(n, t);
    case 'Slice': return [sliceFacts(n, t)];
    case 'Gather': return [gatherFacts(n, t)];
    case 'GatherElements': return [{ elemType: x.elemType, shape: inp(1).shape }];
    case 'GatherND': return [gatherNdFacts(n, x, inp(1))];
    case 'ScatterElements': case 'ScatterND': case 'Scatter': return [{ elemType: x.elemType, shape: x.shape }];
    case 'Expand': return [expandFacts(x, inp(1))];
    case 'ConstantOfShape': return [constantOfShapeFacts(n, x)];
    case 'Range': {
      const r = rangeValues(x.ints?.[0], inp(1).ints?.[0], inp(2).ints?.[0]);
      return [{ elemType: x.elemType, shape: [r.length], ints: r.values }];
    }
    case 'OneHot': return [oneHotFacts(n, x, inp(1), inp(2))];
    case 'ReduceSum': case 'ReduceMean': case 'ReduceMax': case 'ReduceMin': case 'ReduceProd':
    case 'ReduceL1': case 'ReduceL2': case 'ReduceSumSquare': case 'ReduceLogSum': case 'ReduceLogSumExp':
    case 'ArgMax': case 'ArgMin':
      return [reduceFacts(n, t)];
    case 'Conv': case 'MaxPool': case 'AveragePool': case 'ConvTranspose': case 'LpPool': return convFacts(n, t);
    case 'GlobalAveragePool': case 'GlobalMaxPool': case 'GlobalLpPool':
      return [{ elemType: x.elemType, shape: x.shape ? [...x.shape.slice(0, 2), ...x.shape.slice(2).map(() => 1)] : undefined }];
    case 'Pad': return [padFacts(n, t)];
    case 'Tile': return [tileFacts(x, inp(1))];
    case 'DepthToSpace': case 'SpaceToDepth': return [depthSpaceFacts(n, x)];
    case 'NonZero': return [{ elemType: DataType.INT64, shape: x.shape ? [x.shape.length, null] : undefined }];
    case 'TopK': {
      if (!x.shape) return [{ elemType: x.elemType }, { elemType: DataType.INT64 }];
      const shape = [...x.shape];
      shape[normAxis(attrInt(n, 'axis', -1), shape.length)] = inp(1).ints?.[0] ?? null;
      return [{ elemType: x.elemType, shape }, { elemType: DataType.INT64, shape }];
    }
    case 'Einsum': return [{ elemType: x.elemType }];
    case 'If': return ifFacts(n, x, t);
    case 'Resize': case 'Upsample': return [resizeFacts(n, x, t)];
    default: return [];
  }
}

/** Resize/Upsample: `sizes` (input 3) when given, else dim · scale (input 2, or input 1 for Upsample / Resize-10). */
function resizeFacts(n: NodeProto, x: ValueFacts, t: ShapeTable): ValueFacts {
  if (!x.shape) return { elemType: x.elemType };
  const sizes = n.input[3] ? t.ints(n.input[3]) : undefined;
  if (sizes && sizes.length === x.shape.length) return { elemType: x.elemType, shape: sizes };
  const scalesName = n.opType === 'Upsample' || n.input.length === 2 ? n.input[1] : n.input[2];
  const scales = (scalesName ? t.get(scalesName).floats : undefined) ?? attrFloats(n, 'scales');
  if (!scales || scales.length !== x.shape.length) return { elemType: x.elemType, shape: x.shape.map(() => null) };
  return { elemType: x.elemType, shape: x.shape.map((d, i) => (scales[i] === 1 ? d : typeof d === 'number' ? Math.floor(d * scales[i]!) : null)) };
}

function attrFloats(n: NodeProto, name: string): number[] | undefined {
  const a = getAttr(n, name);
  return a && a.floats.length > 0 ? [...a.floats] : undefined;
}

/** Outputs of an If: the branch a known condition takes, else what both branches agree on. */
function ifFacts(n: NodeProto, cond: ValueFacts, t: ShapeTable): ValueFacts[] {
  const branch = (name: string) => {
    const g = getAttr(n, name)?.g;
    if (!g) return undefined;
    const body = inferShapes(g, t);
    return g.output.map((o) => body.get(o.name));
  };
  const c = cond.ints?.[0] ?? cond.floats?.[0];
  if (typeof c === 'number') return branch(c !== 0 ? 'then_branch' : 'else_branch') ?? [];
  const a = branch('then_branch'), b = branch('else_branch');
  if (!a || !b) return [];
  return a.map((fa, i) => {
    const fb = b[i] ?? {};
    const shape = fa.shape && fb.shape && fa.shape.length === fb.shape.length ? fa.shape.map((d, k) => (d === fb.shape![k] ? d : null)) : undefined;
    return { elemType: fa.elemType ?? fb.elemType, shape };
  });
}

function sameAsInput(n: NodeProto, x: ValueFacts): ValueFacts[] {
  const outs: ValueFacts[] = [{ elemType: n.opType === 'CastLike' ? undefined : x.elemType, shape: x.shape }];
  if (n.opType === 'Dropout') outs.push({ elemType: DataType.BOOL, shape: x.shape });
  return outs;
}

/** Bool constants are read as 0/1 floats; as conditions they act like ints. */
function boolInts(f: ValueFacts): Dim[] | undefined {
  return f.elemType === DataType.BOOL && f.floats ? f.floats.map((v) => (v ? 1 : 0)) : undefined;
}

function constantFacts(n: NodeProto): ValueFacts[] {
  const v = getAttr(n, 'value')?.t;
  if (v) return [tensorFacts(v)];
  const ints = attrInts(n, 'value_ints');
  if (ints) return [{ elemType: DataType.INT64, shape: [ints.length], ints }];
  const int = getAttr(n, 'value_int');
  if (int) return [{ elemType: DataType.INT64, shape: [], ints: [Number(int.i)] }];
  const f = getAttr(n, 'value_float');
  if (f) return [{ elemType: DataType.FLOAT, shape: [], floats: [f.f] }];
  const fs = getAttr(n, 'value_floats');
  if (fs) return [{ elemType: DataType.FLOAT, shape: [fs.floats.length], floats: [...fs.floats] }];
  return [];
}

function shapeFacts(n: NodeProto, x: ValueFacts): ValueFacts {
  if (!x.shape) return { elemType: DataType.INT64 };
  const r = x.shape.length;
  const clamp = (a: number) => Math.max(0, Math.min(r, normAxis(a, r)));
  const start = getAttr(n, 'start') ? clamp(attrInt(n, 'start', 0)) : 0;
  const end = getAttr(n, 'end') ? clamp(attrInt(n, 'end', r)) : r;
  const ints = x.shape.slice(start, Math.max(start, end));
  return { elemType: DataType.INT64, shape: [ints.length], ints };
}

function gemmFacts(n: NodeProto, a: ValueFacts, b: ValueFacts): ValueFacts {
  if (!a.shape || !b.shape) return { elemType: a.elemType };
  const m = attrInt(n, 'transA', 0) ? a.shape[1]! : a.shape[0]!;
  const nn = attrInt(n, 'transB', 0) ? b.shape[0]! : b.shape[1]!;
  return { elemType: a.elemType, shape: [m, nn] };
}

function gatherNdFacts(n: NodeProto, x: ValueFacts, idx: ValueFacts): ValueFacts {
  const k = idx.shape?.[idx.shape.length - 1];
  if (!x.shape || !idx.shape || typeof k !== 'number') return { elemType: x.elemType };
  const b = attrInt(n, 'batch_dims', 0);
  return { elemType: x.elemType, shape: [...idx.shape.slice(0, -1), ...x.shape.slice(b + k)] };
}

function constantOfShapeFacts(n: NodeProto, shape: ValueFacts): ValueFacts {
  const v = getAttr(n, 'value')?.t;
  const out: ValueFacts = { elemType: v?.dataType ?? DataType.FLOAT, shape: shape.ints };
  const fill = v ? tensorFacts(v) : { floats: [0] };
  const count = shape.ints ? product(shape.ints) : null;
  if (typeof count === 'number' && count <= 64) {
    if (fill.ints) out.ints = new Array<Dim>(count).fill(fill.ints[0]!);
    else if (fill.floats) out.floats = new Array<number>(count).fill(fill.floats[0]!);
  }
  if (!shape.ints && typeof shape.shape?.[0] === 'number') out.shape = new Array<Dim>(shape.shape[0]).fill(null);
  return out;
}

function oneHotFacts(n: NodeProto, idx: ValueFacts, depth: ValueFacts, values: ValueFacts): ValueFacts {
  if (!idx.shape) return { elemType: values.elemType };
  const rank = idx.shape.length + 1;
  const axis = normAxis(attrInt(n, 'axis', -1), rank);
  const d = depth.ints?.[0] ?? (depth.floats ? depth.floats[0]! : null);
  const shape = [...idx.shape];
  shape.splice(axis, 0, d);
  return { elemType: values.elemType, shape };
}

function depthSpaceFacts(n: NodeProto, x: ValueFacts): ValueFacts {
  const b = attrInt(n, 'blocksize', 1), up = n.opType === 'DepthToSpace';
  if (!x.shape || x.shape.length !== 4) return { elemType: x.elemType };
  const scale = (d: Dim, k: number, mul: boolean): Dim => (typeof d === 'number' ? (mul ? d * k : d / k) : null);
  const [nb, ch, h, w] = x.shape as [Dim, Dim, Dim, Dim];
  return { elemType: x.elemType, shape: [nb, scale(ch, b * b, !up), scale(h, b, up), scale(w, b, up)] };
}
