/**
 * Operator parameters as numbers, shared by the shape inference and the gradient rules: axes of
 * Squeeze/Unsqueeze/Reduce*, Split sizes, Slice starts/ends/axes/steps (with ONNX clamping), and Conv/Pool
 * geometry (explicit pads, auto_pad resolved when sizes are known).
 */
import type { NodeProto } from 'onnx-buf';
import { attrInt, attrInts, getAttr } from '../onnx/build.js';
import type { Dim, Shape } from './dims.js';
import type { ShapeTable } from './table.js';

/** Axes of Squeeze/Unsqueeze/Reduce*: attribute (older opsets) or constant second input. */
export function axesOf(n: NodeProto, t: ShapeTable): number[] | undefined {
  const a = attrInts(n, 'axes');
  if (a) return a;
  const name = n.input[1];
  if (!name) return undefined;
  const v = t.ints(name);
  return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
}

/** Split sizes from the attribute (< 13), the `split` input (≥ 13), or an even split of a known dim. */
export function splitSizes(n: NodeProto, t: ShapeTable, dim: Dim, count: number): number[] | undefined {
  const attr = attrInts(n, 'split');
  if (attr) return attr;
  if (n.input[1]) {
    const v = t.ints(n.input[1]);
    return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
  }
  if (typeof dim !== 'number') return undefined;
  const per = Math.ceil(dim / count);
  return Array.from({ length: count }, (_, i) => Math.max(0, Math.min(per, dim - per * i)));
}

export interface SliceParams { starts: number[]; ends: number[]; axes: number[]; steps: number[] }

/** Slice parameters as constants (attributes before opset 10, inputs after), or undefined. */
export function sliceParams(n: NodeProto, t: ShapeTable): SliceParams | undefined {
  const fromInput = (i: number): number[] | undefined => {
    const v = n.input[i] ? t.ints(n.input[i]!) : undefined;
    return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
  };
  const starts = attrInts(n, 'starts') ?? fromInput(1);
  const ends = attrInts(n, 'ends') ?? fromInput(2);
  if (!starts || !ends) return undefined;
  const axes = attrInts(n, 'axes') ?? (n.input[3] ? fromInput(3) : starts.map((_, i) => i));
  const steps = n.input[4] ? fromInput(4) : starts.map(() => 1);
  if (!axes || !steps) return undefined;
  return { starts, ends, axes, steps };
}

/** ONNX Slice clamping for one axis: first index taken and element count. */
export function clampSlice(start: number, end: number, step: number, dim: number): { start: number; count: number } {
  const clampIdx = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
  if (step > 0) {
    const s = clampIdx(start, 0, dim), e = clampIdx(end, 0, dim);
    return { start: s, count: Math.max(0, Math.ceil((e - s) / step)) };
  }
  const s = clampIdx(start, -1, dim - 1), e = clampIdx(end, -1, dim - 1);
  return { start: s, count: Math.max(0, Math.ceil((e - s) / step)) };
}

export interface AxisGeometry { size: Dim; kernel: number; stride: number; dilation: number; padBegin: number; padEnd: number; out: Dim }

/** Per spatial axis: kernel, stride, dilation, explicit pads (auto_pad resolved when sizes are known). */
export function convGeometry(n: NodeProto, sizes: Shape, kernel: number[]): AxisGeometry[] {
  const k = kernel.length;
  const strides = attrInts(n, 'strides') ?? new Array<number>(k).fill(1);
  const dil = attrInts(n, 'dilations') ?? new Array<number>(k).fill(1);
  const pads = attrInts(n, 'pads') ?? new Array<number>(2 * k).fill(0);
  const autoPad = getAttr(n, 'auto_pad') ? new TextDecoder().decode(getAttr(n, 'auto_pad')!.s) : 'NOTSET';
  const ceil = attrInt(n, 'ceil_mode', 0) === 1;
  return kernel.map((kk, i) => {
    const size = sizes[i] ?? null;
    const ek = dil[i]! * (kk - 1) + 1;
    let pb = pads[i]!, pe = pads[i + k]!;
    if (autoPad === 'VALID') { pb = 0; pe = 0; }
    if ((autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') && typeof size === 'number') {
      const outSame = Math.ceil(size / strides[i]!);
      const total = Math.max(0, (outSame - 1) * strides[i]! + ek - size);
      pb = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
      pe = total - pb;
    }
    const span = typeof size === 'number' ? size + pb + pe - ek : null;
    const out = span === null ? null : (ceil ? Math.ceil(span / strides[i]!) : Math.floor(span / strides[i]!)) + 1;
    return { size, kernel: kk, stride: strides[i]!, dilation: dil[i]!, padBegin: pb, padEnd: pe, out };
  });
}
