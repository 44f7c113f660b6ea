/**
 * A light shape and element-type inference for the autodiff: enough to pick static reduction axes and
 * ranks (MatMul transposes, LayerNorm axes, Conv layouts). Sources, in order: the graph's value_info /
 * inputs / outputs, initializers and Constant nodes, then forward propagation over the ops below.
 * Unknown stays unknown (`undefined` shape, `null` dim); rules fall back to runtime Shape-based subgraphs.
 * Small int64 vectors (Shape → Gather → Concat chains) are tracked symbolically so Reshape targets resolve.
 */
import type { GraphProto, NodeProto, TensorProto, ValueInfoProto } from 'onnx-buf';
import { attrInt, attrInts, getAttr } from '../onnx/build.js';
import { DataType, isFloatType } from '../onnx/dtype.js';
import { dimsOf, elementCount, tensorToNumbers } from '../onnx/tensor.js';
import { axesOf, clampSlice, convGeometry, sliceParams, splitSizes } from './grad-op-params.js';

/** A dimension: a number, a symbolic name, or unknown (null). */
export type Dim = number | string | null;
export type Shape = Dim[];

export interface ValueFacts {
  elemType?: number;
  shape?: Shape;
  /** Values of a small integer tensor (≤ 64 elements), when known (entries may be symbolic). */
  ints?: Dim[];
  /** Values of a small float or bool constant (≤ 64 elements), when known. */
  floats?: number[];
}

const MAX_TRACKED_INTS = 64;

function valueInfoFacts(v: ValueInfoProto): ValueFacts {
  if (v.type?.value.case !== 'tensorType') return {};
  const tt = v.type.value.value;
  const facts: ValueFacts = {};
  if (tt.elemType) facts.elemType = tt.elemType;
  if (tt.shape) {
    facts.shape = tt.shape.dim.map((d) => d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' && d.value.value ? d.value.value : null);
  }
  return facts;
}

function tensorFacts(t: TensorProto): ValueFacts {
  const shape = dimsOf(t);
  const facts: ValueFacts = { elemType: t.dataType, shape };
  const isInt = t.dataType === DataType.INT64 || t.dataType === DataType.INT32;
  const small = elementCount(shape) <= MAX_TRACKED_INTS && t.externalData.length === 0;
  if (isInt && small) facts.ints = tensorToNumbers(t, '.');
  const isFloatOrBool = isFloatType(t.dataType) || t.dataType === DataType.BOOL;
  if (isFloatOrBool && small) facts.floats = tensorToNumbers(t, '.');
  return facts;
}

export function sameDim(a: Dim, b: Dim): boolean {
  return a !== null && b !== null && a === b;
}

/** Numpy broadcasting of known shapes; a dim is null where it cannot be decided. */
export function broadcastShapes(shapes: (Shape | undefined)[]): Shape | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const all = shapes as Shape[];
  const rank = Math.max(...all.map((s) => s.length));
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of all) {
      const sd = s[i - (rank - s.length)];
      if (sd === undefined || sd === 1) continue;
      // A valid broadcast pairs a dim with 1 or with itself, so a known dim (≠ 1) wins over an unknown one.
      if (d === 1 || d === null) d = sd;
      else if (sd !== null && !sameDim(d, sd)) d = typeof d === 'number' && typeof sd === 'number' ? Math.max(d, sd) : typeof d === 'number' ? d : typeof sd === 'number' ? sd : null;
    }
    out.push(d);
  }
  return out;
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

export class ShapeTable {
  private readonly facts = new Map<string, ValueFacts>();

  get(name: string): ValueFacts {
    return this.facts.get(name) ?? {};
  }
  shape(name: string): Shape | undefined {
    return this.facts.get(name)?.shape;
  }
  rank(name: string): number | undefined {
    return this.facts.get(name)?.shape?.length;
  }
  elemType(name: string): number | undefined {
    return this.facts.get(name)?.elemType;
  }
  ints(name: string): Dim[] | undefined {
    return this.facts.get(name)?.ints;
  }
  /** Merges facts; known information already recorded (e.g. from value_info) wins over inferred. */
  merge(name: string, f: ValueFacts): void {
    const old = this.facts.get(name) ?? {};
    const shape = old.shape && f.shape && old.shape.length === f.shape.length
      ? old.shape.map((d, i) => (d === null ? f.shape![i]! : d))
      : old.shape ?? f.shape;
    this.facts.set(name, { elemType: old.elemType ?? f.elemType, shape, ints: old.ints ?? f.ints, floats: old.floats ?? f.floats });
  }
}

export function inferShapes(graph: GraphProto): ShapeTable {
  const table = new ShapeTable();
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) table.merge(v.name, valueInfoFacts(v));
  for (const t of graph.initializer) table.merge(t.name, tensorFacts(t));
  for (const n of graph.node) {
    let outs: ValueFacts[] = [];
    try {
      outs = inferNode(n, table);
    } catch {
      outs = [];
    }
    n.output.forEach((o, i) => { if (o && outs[i]) table.merge(o, outs[i]!); });
  }
  return table;
}

const SAME_AS_INPUT = new Set([
  'Relu', 'Tanh', 'Sigmoid', 'Exp', 'Log', 'Neg', 'Sqrt', 'Reciprocal', 'Erf', 'Gelu', 'Abs', 'Identity',
  'Dropout', 'Softmax', 'LogSoftmax', 'LeakyRelu', 'Floor', 'Ceil', 'Round', 'Sign', 'Clip', 'Softplus',
  'HardSigmoid', 'Elu', 'Selu', 'FastGelu', 'BiasGelu', 'CumSum', 'Not', 'Sin', 'Cos', 'LayerNormalization',
  'SimplifiedLayerNormalization', 'RMSNormalization', 'QuickGelu', 'Mish', 'HardSwish', 'Trilu',
  'BatchNormalization', 'Softsign', 'ThresholdedRelu', 'Shrink', 'InstanceNormalization', 'GroupNormalization',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'PRelu', 'Mod', 'BitShift']);
const COMPARE = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor']);

function inferNode(n: NodeProto, t: ShapeTable): ValueFacts[] {
  const inp = (i: number): ValueFacts => (n.input[i] ? t.get(n.input[i]!) : {});
  const x = inp(0);
  const op = n.opType;
  if (SAME_AS_INPUT.has(op)) {
    const outs: ValueFacts[] = [{ elemType: x.elemType, shape: x.shape }];
    if (op === 'Dropout') outs.push({ elemType: DataType.BOOL, shape: x.shape });
    return outs;
  }
  if (BROADCAST.has(op)) {
    const shape = broadcastShapes(n.input.filter((s) => s).map((s) => t.shape(s)));
    return [{ elemType: x.elemType, shape, ints: elementwiseInts(op, n, t) }];
  }
  if (COMPARE.has(op)) return [{ elemType: DataType.BOOL, shape: broadcastShapes([t.shape(n.input[0]!), t.shape(n.input[1]!)]) }];
  switch (op) {
    case 'Constant': {
      const v = getAttr(n, 'value')?.t;
      return v ? [tensorFacts(v)] : [];
    }
    case 'Where': return [{ elemType: inp(1).elemType, shape: broadcastShapes([0, 1, 2].map((i) => t.shape(n.input[i]!))) }];
    case 'Cast': return [{ elemType: attrInt(n, 'to', 0), shape: x.shape, ints: x.ints }];
    case 'Shape': {
      if (!x.shape) return [{ elemType: DataType.INT64 }];
      const start = getAttr(n, 'start') ? normAxis(attrInt(n, 'start', 0), x.shape.length) : 0;
      const end = getAttr(n, 'end') ? normAxis(attrInt(n, 'end', 0), x.shape.length) : x.shape.length;
      const ints = x.shape.slice(Math.max(0, start), Math.min(x.shape.length, end));
      return [{ elemType: DataType.INT64, shape: [ints.length], ints }];
    }
    case 'Size': return [{ elemType: DataType.INT64, shape: [] }];
    case 'MatMul': return [{ elemType: x.elemType, shape: matmulShape(x.shape, inp(1).shape) }];
    case 'Gemm': {
      const a = x.shape, b = inp(1).shape;
      if (!a || !b) return [{ elemType: x.elemType }];
      const m = attrInt(n, 'transA', 0) ? a[1]! : a[0]!;
      const nn = attrInt(n, 'transB', 0) ? b[0]! : b[1]!;
      return [{ elemType: x.elemType, shape: [m, nn] }];
    }
    case 'Transpose': {
      if (!x.shape) return [{ elemType: x.elemType }];
      const perm = attrInts(n, 'perm') ?? x.shape.map((_, i) => x.shape!.length - 1 - i);
      return [{ elemType: x.elemType, shape: perm.map((p) => x.shape![p]!) }];
    }
    case 'Reshape': return [{ elemType: x.elemType, shape: reshapeShape(x.shape, inp(1), attrInt(n, 'allowzero', 0) === 1), ints: x.ints }];
    case 'Flatten': {
      if (!x.shape) return [{ elemType: x.elemType }];
      const axis = normAxis(attrInt(n, 'axis', 1), x.shape.length);
      return [{ elemType: x.elemType, shape: [product(x.shape.slice(0, axis)), product(x.shape.slice(axis))] }];
    }
    case 'Squeeze': case 'Unsqueeze': return [squeezeFacts(n, x, axesOf(n, t), op === 'Unsqueeze')];
    case 'Concat': return [concatFacts(n, t)];
    case 'Split': return splitFacts(n, t);
    case 'Slice': return [sliceFacts(n, t)];
    case 'Gather': return [gatherFacts(n, t)];
    case 'GatherElements': return [{ elemType: x.elemType, shape: inp(1).shape }];
    case 'ScatterElements': case 'ScatterND': return [{ elemType: x.elemType, shape: x.shape }];
    case 'Expand': {
      // Target values unknown (TorchScript computes them with Where(Equal(shape, -1), 1, shape)) but its
      // length known: the rank is, and so is every dim of x that is not 1.
      const targetLen = inp(1).shape?.[0];
      const target = inp(1).ints ?? (typeof targetLen === 'number' ? new Array<Dim>(targetLen).fill(null) : undefined);
      return [{ elemType: x.elemType, shape: target ? broadcastShapes([x.shape, target]) : undefined }];
    }
    case 'ConstantOfShape': {
      const v = getAttr(n, 'value')?.t;
      return [{ elemType: v?.dataType ?? DataType.FLOAT, shape: x.ints }];
    }
    case 'Range': return [{ elemType: x.elemType, shape: [null] }];
    case 'ReduceSum': case 'ReduceMean': case 'ReduceMax': case 'ReduceMin': case 'ReduceProd':
    case 'ReduceL2': case 'ReduceSumSquare': case 'ReduceLogSumExp': case 'ArgMax': case 'ArgMin':
      return [reduceFacts(n, t)];
    case 'Conv': case 'MaxPool': case 'AveragePool': case 'ConvTranspose': return convFacts(n, t);
    case 'GlobalAveragePool': case 'GlobalMaxPool':
      return [{ elemType: x.elemType, shape: x.shape ? [...x.shape.slice(0, 2), ...x.shape.slice(2).map(() => 1)] : undefined }];
    case 'Pad': {
      const pads = attrInts(n, 'pads') ?? inp(1).ints;
      if (!x.shape || !pads || n.input[3]) return [{ elemType: x.elemType, shape: x.shape?.map(() => null) }];
      const r = x.shape.length;
      return [{ elemType: x.elemType, shape: x.shape.map((d, i) => {
        const pb = pads[i], pe = pads[i + r];
        return typeof d === 'number' && typeof pb === 'number' && typeof pe === 'number' ? d + pb + pe : null;
      }) }];
    }
    case 'Tile': {
      const reps = inp(1).ints;
      return [{ elemType: x.elemType, shape: x.shape && reps ? x.shape.map((d, i) => (typeof d === 'number' && typeof reps[i] === 'number' ? d * (reps[i] as number) : null)) : undefined }];
    }
    case 'DepthToSpace': case 'SpaceToDepth': {
      const b = attrInt(n, 'blocksize', 1), up = op === 'DepthToSpace';
      if (!x.shape || x.shape.length !== 4) return [{ elemType: x.elemType }];
      const scale = (d: Dim, k: number, mul: boolean): Dim => (typeof d === 'number' ? (mul ? d * k : d / k) : null);
      const [nb, ch, h, w] = x.shape as [Dim, Dim, Dim, Dim];
      return [{ elemType: x.elemType, shape: [nb, scale(ch, b * b, !up), scale(h, b, up), scale(w, b, up)] }];
    }
    case 'NonZero': return [{ elemType: DataType.INT64, shape: x.shape ? [x.shape.length, null] : undefined }];
    default: return [];
  }
}

function product(dims: Shape): Dim {
  let p = 1;
  for (const d of dims) {
    if (typeof d !== 'number') return dims.length === 1 ? d : null;
    p *= d;
  }
  return p;
}

/** A symbolic sum such as 'past_seq_len+seq_len' (zeros dropped), or null when a term is unknown. */
function sumSymbol(dims: Dim[]): Dim {
  if (dims.some((d) => d === null)) return null;
  const terms = dims.filter((d) => d !== 0).map(String);
  return terms.length === 1 ? dims.find((d) => d !== 0)! : terms.join('+');
}

/**
 * The dim that makes Π(rest) · d = Π(total), by cancelling symbolic factors: e.g. total [b, s, 2],
 * rest [b, 2, 1] → s. Null when it does not come out as one number or one symbol.
 */
function quotientDim(total: Shape, rest: Shape): Dim {
  if (total.some((d) => d === null) || rest.some((d) => d === null)) return null;
  let num = 1;
  const syms: string[] = [];
  for (const d of total) typeof d === 'number' ? (num *= d) : syms.push(d as string);
  for (const d of rest) {
    if (typeof d === 'number') { num /= d; continue; }
    const i = syms.indexOf(d as string);
    if (i < 0) return null;
    syms.splice(i, 1);
  }
  if (syms.length === 0) return Number.isInteger(num) ? num : null;
  return syms.length === 1 && num === 1 ? syms[0]! : null;
}

function elementwiseInts(op: string, n: NodeProto, t: ShapeTable): Dim[] | undefined {
  const a = t.ints(n.input[0]!), b = t.ints(n.input[1] ?? '');
  if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return undefined;
  const len = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < len; i++) {
    const x = a[a.length === 1 ? 0 : i]!, y = b[b.length === 1 ? 0 : i]!;
    if (typeof x !== 'number' || typeof y !== 'number') { out.push(null); continue; }
    const r = op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : op === 'Div' ? Math.trunc(x / y) : null;
    out.push(r);
  }
  return out;
}

export function matmulShape(a: Shape | undefined, b: Shape | undefined): Shape | undefined {
  if (!a || !b) return undefined;
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
  if (!batch) return undefined;
  const out = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]!);
  if (b.length > 1) out.push(b2[b2.length - 1]!);
  return out;
}

function reshapeShape(x: Shape | undefined, target: ValueFacts, allowZero: boolean): Shape | undefined {
  const dims = target.ints;
  if (!dims) return target.shape && typeof target.shape[0] === 'number' ? new Array<Dim>(target.shape[0]).fill(null) : undefined;
  const out: Shape = dims.map((d, i) => (d === 0 && !allowZero ? (x?.[i] ?? null) : d === -1 ? null : d));
  const minus = dims.indexOf(-1);
  if (minus >= 0 && x) {
    const total = product(x);
    const rest = product(out.filter((_, i) => i !== minus));
    if (typeof total === 'number' && typeof rest === 'number' && rest !== 0) out[minus] = total / rest;
    else out[minus] = quotientDim(x, out.filter((_, i) => i !== minus));
  }
  return out;
}

function squeezeFacts(n: NodeProto, x: ValueFacts, axes: number[] | undefined, unsqueeze: boolean): ValueFacts {
  const out: ValueFacts = { elemType: x.elemType };
  if (unsqueeze) {
    if (!x.shape || !axes) return out;
    const rank = x.shape.length + axes.length;
    const norm = axes.map((a) => normAxis(a, rank));
    const shape: Shape = [];
    let k = 0;
    for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : x.shape[k++]!);
    out.shape = shape;
    if (x.ints && x.shape.length === 0) out.ints = x.ints;
    return out;
  }
  if (!x.shape) return out;
  const norm = axes ? axes.map((a) => normAxis(a, x.shape!.length)) : x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
  out.shape = x.shape.filter((_, i) => !norm.includes(i));
  if (x.ints && out.shape.length === 0) out.ints = x.ints;
  return out;
}

function concatFacts(n: NodeProto, t: ShapeTable): ValueFacts {
  const ins = n.input.filter((s) => s);
  const shapes = ins.map((s) => t.shape(s));
  const x = t.get(ins[0]!);
  const ints = ins.every((s) => t.ints(s)) ? ins.flatMap((s) => t.ints(s)!) : undefined;
  if (shapes.some((s) => !s)) return { elemType: x.elemType, ints };
  const rank = shapes[0]!.length;
  const axis = normAxis(attrInt(n, 'axis', 0), rank);
  const shape = [...shapes[0]!];
  const sizes = shapes.map((s) => s![axis]!);
  shape[axis] = sizes.every((d) => typeof d === 'number') ? (sizes as number[]).reduce((a, b) => a + b, 0) : sumSymbol(sizes);
  return { elemType: x.elemType, shape, ints };
}

function splitFacts(n: NodeProto, t: ShapeTable): ValueFacts[] {
  const x = t.get(n.input[0]!);
  const count = n.output.length;
  if (!x.shape) return n.output.map(() => ({ elemType: x.elemType }));
  const axis = normAxis(attrInt(n, 'axis', 0), x.shape.length);
  const sizes = splitSizes(n, t, x.shape[axis]!, count);
  return n.output.map((_, i) => {
    const shape = [...x.shape!];
    shape[axis] = sizes ? sizes[i]! : null;
    return { elemType: x.elemType, shape };
  });
}

function sliceFacts(n: NodeProto, t: ShapeTable): ValueFacts {
  const x = t.get(n.input[0]!);
  const p = sliceParams(n, t);
  if (!x.shape) return { elemType: x.elemType };
  if (!p) return { elemType: x.elemType, shape: partialSliceShape(n, t, x.shape) };
  const shape = [...x.shape];
  const ints = x.ints ? [...x.ints] : undefined;
  let intsOut = ints;
  p.axes.forEach((axisRaw, k) => {
    const axis = normAxis(axisRaw, shape.length);
    const dim = shape[axis];
    if (typeof dim !== 'number') { shape[axis] = null; intsOut = undefined; return; }
    const r = clampSlice(p.starts[k]!, p.ends[k]!, p.steps[k]!, dim);
    shape[axis] = r.count;
    if (intsOut && axis === 0) intsOut = Array.from({ length: r.count }, (_, i) => ints![r.start + i * p.steps[k]!]!);
  });
  return { elemType: x.elemType, shape, ints: intsOut };
}

/**
 * Slice with run-time starts/ends but constant axes: unsliced axes keep their dims; an axis sliced from 0
 * with step 1 to a symbolic end `s` gets dim `s` (a prefix, as in x[:, :seq_len]); others are unknown.
 */
function partialSliceShape(n: NodeProto, t: ShapeTable, xShape: Shape): Shape {
  const axesName = n.input[3];
  const axes = axesName ? t.ints(axesName) : xShape.map((_, i) => i);
  if (!axes || !axes.every((a) => typeof a === 'number')) return xShape.map(() => null);
  const starts = n.input[1] ? t.ints(n.input[1]) : undefined;
  const ends = n.input[2] ? t.ints(n.input[2]) : undefined;
  const steps = n.input[4] ? t.ints(n.input[4]) : undefined;
  const shape = [...xShape];
  (axes as number[]).forEach((a, k) => {
    const axis = normAxis(a, shape.length);
    const prefix = starts?.[k] === 0 && (steps === undefined || steps[k] === 1) && typeof ends?.[k] === 'string';
    shape[axis] = prefix ? ends![k]! : null;
  });
  return shape;
}

function gatherFacts(n: NodeProto, t: ShapeTable): ValueFacts {
  const x = t.get(n.input[0]!), idx = t.get(n.input[1]!);
  if (!x.shape || !idx.shape) return { elemType: x.elemType };
  const axis = normAxis(attrInt(n, 'axis', 0), x.shape.length);
  const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
  let ints: Dim[] | undefined;
  if (x.ints && idx.ints && x.shape.length === 1) {
    ints = idx.ints.map((i) => (typeof i === 'number' ? x.ints![i < 0 ? i + x.ints!.length : i] ?? null : null));
  }
  return { elemType: x.elemType, shape, ints };
}

function reduceFacts(n: NodeProto, t: ShapeTable): ValueFacts {
  const x = t.get(n.input[0]!);
  const isArg = n.opType.startsWith('Arg');
  const elemType = isArg ? DataType.INT64 : x.elemType;
  if (!x.shape) return { elemType };
  const rank = x.shape.length;
  const keep = attrInt(n, 'keepdims', 1) === 1;
  let axes = isArg ? [attrInt(n, 'axis', 0)] : axesOf(n, t);
  if (!axes && n.input[1]) return { elemType };
  if (!axes || axes.length === 0) {
    if (!isArg && attrInt(n, 'noop_with_empty_axes', 0) === 1 && axes) return { elemType, shape: x.shape };
    axes = x.shape.map((_, i) => i);
  }
  const norm = axes.map((a) => normAxis(a, rank));
  const shape = keep ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !norm.includes(i));
  return { elemType, shape };
}

function convFacts(n: NodeProto, t: ShapeTable): ValueFacts[] {
  const x = t.get(n.input[0]!);
  const w = n.input[1] ? t.get(n.input[1]) : {};
  const out: ValueFacts = { elemType: x.elemType };
  if (!x.shape) return [out, { elemType: DataType.INT64 }];
  const spatial = x.shape.length - 2;
  const kernel = attrInts(n, 'kernel_shape') ?? w.shape?.slice(2).map((d) => (typeof d === 'number' ? d : NaN));
  const channels: Dim = n.opType === 'Conv' ? (w.shape?.[0] ?? null) : n.opType === 'ConvTranspose' ? null : x.shape[1]!;
  if (!kernel || n.opType === 'ConvTranspose') {
    out.shape = [x.shape[0]!, channels, ...new Array<Dim>(spatial).fill(null)];
    return [out, { elemType: DataType.INT64, shape: out.shape }];
  }
  const g = convGeometry(n, x.shape.slice(2), kernel);
  out.shape = [x.shape[0]!, channels, ...g.map((d) => d.out)];
  return [out, { elemType: DataType.INT64, shape: out.shape }];
}

