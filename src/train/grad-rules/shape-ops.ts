/**
 * Data-movement ops: their gradients move dY back (Reshape to Shape(X), inverse Transpose, Split ↔ Concat,
 * Slice → Pad or scatter, Gather → scatter-add, Expand → broadcast reduction).
 */
import { attrInt, attrInts } from '../../onnx/build.js';
import { DataType } from '../../onnx/dtype.js';
import { floatConstTensor } from '../grad-helpers.js';
import { clampSlice, sliceParams } from '../../shapes/op-params.js';
import { normAxis } from '../../shapes/infer.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

function gradY(ctx: GradContext, i = 0): string {
  return ctx.gradOut(i) ?? ctx.fail(`output ${i} has no gradient`);
}

/** dX = Reshape(dY, Shape(X)): exact for any op that only regroups elements in order. */
function reshapeBack(op: string): GradRule {
  return {
    op, inputs: [0], doc: 'dX = Reshape(dY, Shape(X))',
    build: (ctx) => [ctx.needsGrad(0) ? ctx.e.reshapeLike(gradY(ctx), ctx.input(0), ctx.shape(ctx.input(0))) : undefined],
  };
}

function transposeGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const perm = attrInts(ctx.node, 'perm');
  if (!perm) return [ctx.e.op('Transpose', [gradY(ctx)])]; // reversal is its own inverse
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => { inverse[p] = i; });
  return [ctx.e.op('Transpose', [gradY(ctx)], { perm: inverse })];
}

/** Concat: dXi = the slice of dY along `axis` that Xi filled (one Split). */
function concatGrad(ctx: GradContext): InputGrads {
  const e = ctx.e, dY = gradY(ctx);
  const inputs = ctx.node.input;
  const rank = ctx.getRank(ctx.output(0));
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), rank);
  const dims = inputs.map((x) => ctx.shape(x)?.[axis]);
  if (dims.every((d) => typeof d === 'number')) {
    const parts = e.split(dY, axis, dims as number[], inputs.length);
    return inputs.map((_, i) => (ctx.needsGrad(i) ? parts[i] : undefined));
  }
  const axisIdx = e.constInts([axis]);
  const sizes = inputs.map((x) => e.op('Gather', [e.shapeOf(x), axisIdx], { axis: 0 }));
  if (ctx.opset >= 13) {
    const parts = e.split(dY, axis, e.op('Concat', sizes, { axis: 0 }), inputs.length);
    return inputs.map((_, i) => (ctx.needsGrad(i) ? parts[i] : undefined));
  }
  // Below 13 Split sizes are attributes: slice each part at run-time offsets instead.
  let start = e.constInts([0]);
  return inputs.map((_, i) => {
    const end = e.op('Add', [start, sizes[i]!]);
    const part = ctx.needsGrad(i) ? e.op('Slice', [dY, start, end, axisIdx]) : undefined;
    start = end;
    return part;
  });
}

/** Split: dX = Concat(dY_i) along axis; outputs without a gradient contribute zeros. */
function splitGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const x = ctx.input(0), e = ctx.e;
  const parts = ctx.node.output.map((o, i) => ctx.gradOut(i) ?? e.zerosLike(o, ctx.elemType(x)));
  const rank = ctx.getRank(x);
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), rank);
  return [parts.length === 1 ? parts[0] : e.op('Concat', parts, { axis })];
}

/**
 * Slice. Constant params, unit steps and known sizes on the sliced axes: dX = Pad(dY, begin/end pads)
 * (Pad has CPU and CUDA kernels for float/double/half). Otherwise: slice an int64 iota of X's flat indices
 * with the same params and ScatterElements dY into zeros (indices are unique, no reduction needed).
 */
function sliceGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e, x = ctx.input(0), dY = gradY(ctx);
  const xShape = ctx.shape(x);
  const p = sliceParams(ctx.node, ctx.shapes);
  if (p && xShape && p.steps.every((s) => s === 1)) {
    const rank = xShape.length;
    const pads = new Array<number>(2 * rank).fill(0);
    let ok = true;
    p.axes.forEach((axisRaw, k) => {
      const axis = normAxis(axisRaw, rank);
      const dim = xShape[axis];
      if (typeof dim !== 'number') { ok = false; return; }
      const r = clampSlice(p.starts[k]!, p.ends[k]!, 1, dim);
      pads[axis] = r.start;
      pads[axis + rank] = dim - r.start - r.count;
    });
    if (ok) {
      if (pads.every((v) => v === 0)) return [dY];
      return [e.op('Pad', [dY, e.constInts(pads), e.constFloat(0, ctx.elemType(x))], { mode: 'constant' })];
    }
  }
  // General form: positions = Slice(Reshape(Range(0, Size(X)), Shape(X)), same params).
  const size = e.op('Size', [x]);
  const iota = e.op('Reshape', [e.op('Range', [e.constInts([0], true), size, e.constInts([1], true)]), e.shapeOf(x)]);
  const picked = e.op('Slice', [iota, ...ctx.node.input.slice(1)]);
  const flatIdx = e.op('Reshape', [picked, e.constInts([-1])]);
  const flatG = e.op('Reshape', [dY, e.constInts([-1])]);
  const zeros = e.op('ConstantOfShape', [e.op('Reshape', [size, e.constInts([1])])], { value: floatConstTensor('', [1], [0], ctx.elemType(x)) });
  const scattered = e.op('ScatterElements', [zeros, flatIdx, flatG], { axis: 0 });
  return [e.op('Reshape', [scattered, e.shapeOf(x)])];
}


/**
 * Gather (data gradient; indices are integers). Axis 0 (embeddings): dData = scatter-add of dY rows into
 * zeros: ScatterND(zeros, Unsqueeze(idx, −1), dY, reduction='add') at opset ≥ 16, else
 * MatMul(Transpose(OneHot(idx, V)), dY) (deterministic; fine for small V). Other axes: move the gathered
 * axis first with Transposes around the same scatter.
 */
function gatherGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e, data = ctx.input(0), idx = ctx.input(1), dY = gradY(ctx);
  const rank = ctx.getRank(data);
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), rank);
  if (axis === 0) return [scatterRows(ctx, data, idx, dY)];
  const q = ctx.getRank(idx);
  const yRank = rank - 1 + q;
  // dY dims: D[0:axis] ++ I ++ D[axis+1:]  →  I ++ D[0:axis] ++ D[axis+1:]
  const permY = [...range(axis, axis + q), ...range(0, axis), ...range(axis + q, yRank)];
  const permData = [axis, ...range(0, axis), ...range(axis + 1, rank)];
  const inverse = new Array<number>(rank);
  permData.forEach((p, i) => { inverse[p] = i; });
  const dataT = e.op('Transpose', [data], { perm: permData });
  const gT = scatterRows(ctx, dataT, idx, e.op('Transpose', [dY], { perm: permY }));
  return [e.op('Transpose', [gT], { perm: inverse })];
}

function range(a: number, b: number): number[] {
  return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
}

/**
 * Gather accepts indices in [−V, V); the scatter's index is made non-negative (idx + V where idx < 0)
 * unless the indices are constants already ≥ 0.
 */
function nonNegative(ctx: GradContext, idx: string, data: string): string {
  const known = ctx.ints(idx);
  if (known && known.every((v) => typeof v === 'number' && v >= 0)) return idx;
  const e = ctx.e;
  const rows = e.op('Gather', [e.shapeOf(data), e.constInts([0], true)], { axis: 0 }); // scalar: keeps idx's shape
  return e.op('Where', [e.op('Less', [idx, e.constInts([0], true)]), e.op('Add', [idx, rows]), idx]);
}

/** Zeros shaped like `data`, then rows idx[...] += dY[...] (axis-0 scatter-add). */
function scatterRows(ctx: GradContext, data: string, idx: string, dY: string): string {
  const e = ctx.e, type = ctx.elemType(data);
  if (ctx.opset >= 16) {
    const idx64 = ctx.shapes.elemType(idx) === DataType.INT64 ? idx : e.op('Cast', [idx], { to: DataType.INT64 });
    return e.op('ScatterND', [e.zerosLike(data, type), e.unsqueeze(nonNegative(ctx, idx64, data), [-1]), dY], { reduction: 'add' });
  }
  // OneHot(idx, V) has no double kernel; build it in float and cast.
  const v = e.op('Gather', [e.shapeOf(data), e.constInts([0])], { axis: 0 });
  const flatIdx = e.op('Reshape', [idx, e.constInts([-1])]);
  const oneHot = e.op('OneHot', [flatIdx, v, e.constFloat([0, 1], DataType.FLOAT, [2])], { axis: -1 });
  const oneHotT = e.op('Transpose', [type === DataType.FLOAT ? oneHot : e.op('Cast', [oneHot], { to: type })], { perm: [1, 0] });
  const qRank = ctx.shape(idx)?.length ?? ctx.getRank(idx);
  const dyRows = e.op('Flatten', [dY], { axis: qRank });
  return e.reshapeLike(e.op('MatMul', [oneHotT, dyRows]), data, ctx.shape(data));
}

export const shapeRules: GradRule[] = [
  reshapeBack('Reshape'),
  reshapeBack('Flatten'),
  reshapeBack('Squeeze'),
  reshapeBack('Unsqueeze'),
  { op: 'Transpose', inputs: [0], doc: 'dX = Transpose(dY, inverse perm)', build: transposeGrad },
  { op: 'Concat', inputs: 'all', doc: 'dXi = Split(dY, sizes of Xi along axis)', build: concatGrad },
  { op: 'Split', inputs: [0], doc: 'dX = Concat(dY_i, axis); missing dY_i = zeros', build: splitGrad },
  { op: 'Slice', inputs: [0], doc: 'unit steps, known dims: Pad(dY); else ScatterElements(zeros, Slice(iota), dY)', build: sliceGrad },
  { op: 'Gather', inputs: [0], doc: 'ScatterND(zeros, idx, dY, reduction=add) (opset ≥ 16) or OneHotᵀ·dY; other axes via Transpose', build: gatherGrad },
  {
    op: 'Expand', inputs: [0], doc: 'dX = unbroadcast(dY)',
    build: (ctx) => [ctx.needsGrad(0) ? ctx.e.unbroadcast(gradY(ctx), ctx.shape(ctx.output(0)), ctx.input(0), ctx.shape(ctx.input(0))) : undefined],
  },
];
