/**
 * Per-op shape (and small-value) rules of the shape inference for the ops whose geometry takes more than
 * a line: Reshape (0 and −1, symbolic −1 by cancelling factors), Squeeze/Unsqueeze, Concat, Split,
 * Slice (constant or run-time bounds), Gather, Expand, Tile, Pad, Reduce*, Conv/Pool.
 */
import type { NodeProto } from 'onnx-buf';
import { attrInt, attrInts } from '../onnx/build.js';
import { DataType } from '../onnx/dtype.js';
import { broadcastShapes, normAxis, product, quotientDim, sumDims, type Dim, type Shape } from './dims.js';
import { axesOf, clampSlice, convGeometry, sliceParams, splitSizes } from './op-params.js';
import type { ShapeTable, ValueFacts } from './table.js';
import { elementwiseValues, INT_BINARY } from './values.js';

export function reshapeShape(x: Shape | undefined, target: ValueFacts, allowZero: boolean): Shape | undefined {
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

/** Squeeze/Unsqueeze: the values of a small int tensor are unchanged (row-major order is kept). */
export function squeezeFacts(n: NodeProto, t: ShapeTable, unsqueeze: boolean): ValueFacts {
  const x = t.get(n.input[0]!);
  const axes = axesOf(n, t);
  const out: ValueFacts = { elemType: x.elemType, ints: x.ints };
  if (!x.shape) return out;
  if (unsqueeze) {
    if (!axes) return out;
    const rank = x.shape.length + axes.length;
    const norm = axes.map((a) => normAxis(a, rank));
    const shape: Shape = [];
    let k = 0;
    for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : x.shape[k++]!);
    out.shape = shape;
    return out;
  }
  if (!axes && n.input[1]) return out;
  const xs = x.shape;
  const norm = axes ? axes.map((a) => normAxis(a, xs.length)) : x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
  // Without axes every 1 goes; an unknown dim might be 1 too, so the rank is then unknown.
  if (!axes && x.shape.some((d) => d === null)) return { elemType: x.elemType, ints: x.ints };
  out.shape = x.shape.filter((_, i) => !norm.includes(i));
  return out;
}

export function concatFacts(n: NodeProto, t: ShapeTable): ValueFacts {
  const ins = n.input.filter((s) => s);
  const shapes = ins.map((s) => t.shape(s));
  const x = t.get(ins[0]!);
  const ints = ins.every((s) => t.ints(s)) ? ins.flatMap((s) => t.ints(s)!) : undefined;
  const known = shapes.find((s) => s !== undefined);
  if (!known) return { elemType: x.elemType, ints };
  const rank = known.length;
  const axis = normAxis(attrInt(n, 'axis', 0), rank);
  // Every input has the output's dims off the concat axis: take each from whichever input knows it.
  const shape = broadcastShapes(shapes.filter((s): s is Shape => s !== undefined && s.length === rank).map((s) => s.map((d, i) => (i === axis ? 1 : d)))) ?? [...known];
  shape[axis] = shapes.every((s) => s !== undefined) ? sumDims(shapes.map((s) => s![axis] ?? null)) : null;
  return { elemType: x.elemType, shape, ints };
}

export function splitFacts(n: NodeProto, t: ShapeTable): ValueFacts[] {
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

export function sliceFacts(n: NodeProto, t: ShapeTable): ValueFacts {
  const x = t.get(n.input[0]!);
  const p = sliceParams(n, t);
  if (!x.shape) return { elemType: x.elemType };
  if (!p) return { elemType: x.elemType, shape: partialSliceShape(n, t, x.shape) };
  const shape = [...x.shape];
  let ints = x.ints && x.shape.length === 1 ? [...x.ints] : undefined;
  p.axes.forEach((axisRaw, k) => {
    const axis = normAxis(axisRaw, shape.length);
    const dim = shape[axis];
    if (typeof dim !== 'number') {
      shape[axis] = symbolicPrefix(p.starts[k]!, p.ends[k]!, p.steps[k]!, dim ?? null);
      ints = undefined;
      return;
    }
    const r = clampSlice(p.starts[k]!, p.ends[k]!, p.steps[k]!, dim);
    shape[axis] = r.count;
    if (ints && axis === 0) {
      const src = ints;
      ints = Array.from({ length: r.count }, (_, i) => src[r.start + i * p.steps[k]!]!);
    }
  });
  return { elemType: x.elemType, shape, ints };
}

/** x[0:end] or x[0:] of a symbolic dim s: a whole-axis slice keeps s (end ≥ 2^31 means "to the end"). */
function symbolicPrefix(start: number, end: number, step: number, dim: Dim): Dim {
  if (start === 0 && step === 1 && end >= 2 ** 31 - 1) return dim;
  return null;
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
    const unit = steps === undefined || steps[k] === 1;
    const end = ends?.[k];
    if (starts?.[k] === 0 && unit && typeof end === 'string') shape[axis] = end;
    else if (starts?.[k] === 0 && unit && typeof end === 'number' && end >= 2 ** 31 - 1) shape[axis] = xShape[axis] ?? null;
    else shape[axis] = null;
  });
  return shape;
}

export function gatherFacts(n: NodeProto, t: ShapeTable): ValueFacts {
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

/**
 * Expand: numpy broadcast of x with the target shape. Target values unknown but its length known (it may
 * come from a Where on a run-time shape): the rank is, and so is every dim of x that is not 1.
 */
export function expandFacts(x: ValueFacts, target: ValueFacts): ValueFacts {
  const targetLen = target.shape?.[0];
  const dims = target.ints ?? (typeof targetLen === 'number' ? new Array<Dim>(targetLen).fill(null) : undefined);
  const shape = dims ? broadcastShapes([x.shape, dims]) : undefined;
  let ints: Dim[] | undefined;
  const count = shape ? product(shape) : null;
  if (x.ints?.length === 1 && typeof count === 'number' && count <= 64) ints = new Array<Dim>(count).fill(x.ints[0]!);
  else if (x.ints && shape && x.shape && x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i])) ints = x.ints;
  return { elemType: x.elemType, shape, ints };
}

/** Tile: dim_i · repeats_i (symbolic × 1 stays symbolic). */
export function tileFacts(x: ValueFacts, repeats: ValueFacts): ValueFacts {
  const reps = repeats.ints;
  if (!x.shape) return { elemType: x.elemType };
  if (!reps) return { elemType: x.elemType, shape: x.shape.map(() => null) };
  const shape = elementwiseValues(INT_BINARY.Mul!, x.shape, reps);
  return { elemType: x.elemType, shape: shape && shape.length === x.shape.length ? shape : x.shape.map(() => null) };
}

/** Pad: dim + begin + end on each padded axis (pads from the attribute < 11 or the input ≥ 11; axes ≥ 18). */
export function padFacts(n: NodeProto, t: ShapeTable): ValueFacts {
  const x = t.get(n.input[0]!);
  if (!x.shape) return { elemType: x.elemType };
  const r = x.shape.length;
  const pads = attrInts(n, 'pads') ?? (n.input[1] ? t.ints(n.input[1]) : undefined);
  const axesRaw = n.input[3] ? t.constInts(n.input[3]) : x.shape.map((_, i) => i);
  if (!pads || !axesRaw || pads.length !== 2 * axesRaw.length) return { elemType: x.elemType, shape: x.shape.map(() => null) };
  const axes = axesRaw.map((a) => normAxis(a, r));
  const k = axes.length;
  const shape = [...x.shape];
  axes.forEach((a, i) => { shape[a] = padDim(shape[a] ?? null, pads[i]!, pads[i + k]!); });
  return { elemType: x.elemType, shape };
}

function padDim(d: Dim, begin: Dim, end: Dim): Dim {
  if (begin === 0 && end === 0) return d;
  if (typeof d === 'number' && typeof begin === 'number' && typeof end === 'number') return d + begin + end;
  return d === null || begin === null || end === null ? null : sumDims([d, begin, end]);
}

export function reduceFacts(n: NodeProto, t: ShapeTable): ValueFacts {
  const x = t.get(n.input[0]!);
  const isArg = n.opType.startsWith('Arg');
  const elemType = isArg ? DataType.INT64 : x.elemType;
  if (!x.shape) return { elemType };
  const rank = x.shape.length;
  const keep = attrInt(n, 'keepdims', 1) === 1;
  let axes = isArg ? [attrInt(n, 'axis', 0)] : axesOf(n, t);
  if (!axes && n.input[1]) return { elemType, shape: keep ? x.shape.map(() => null) : undefined };
  if (!axes || axes.length === 0) {
    if (!isArg && attrInt(n, 'noop_with_empty_axes', 0) === 1 && axes) return { elemType, shape: x.shape, ints: x.ints };
    axes = x.shape.map((_, i) => i);
  }
  const norm = axes.map((a) => normAxis(a, rank));
  const shape = keep ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !norm.includes(i));
  // Π or Σ of a shape vector (numel, total length): a value the shape arithmetic uses.
  let ints: Dim[] | undefined;
  if (x.ints && rank === 1 && (n.opType === 'ReduceProd' || n.opType === 'ReduceSum')) {
    ints = [n.opType === 'ReduceProd' ? product(x.ints) : sumDims(x.ints)];
  }
  return { elemType, shape, ints };
}

export function convFacts(n: NodeProto, t: ShapeTable): ValueFacts[] {
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
