/**
 * Tied weights. PyTorch ties the LM head to the token embedding by sharing one tensor; exporters either keep
 * one initializer (a tie by identity) or write a second copy — often transposed, under a generated name
 * (`223`, `val_278`) — so a tie must also be found by value: same shape and equal values, or the transposed
 * shape and equal to the transpose (within 1e-6, absolute or relative to the largest magnitude).
 */
import type { TensorProto } from 'onnx-buf';
import { dimsOf, tensorToFloat32 } from '../onnx/tensor.js';

export type TieKind = 'value' | 'value-transposed';

const TOLERANCE = 1e-6;

/**
 * How `b` equals `a` by value, or undefined. Tensors whose values are all equal (zeros, ones) never count:
 * equal constants say nothing about a tie.
 */
export function tieByValue(a: TensorProto, b: TensorProto, baseDir: string): TieKind | undefined {
  const da = dimsOf(a);
  const db = dimsOf(b);
  if (da.length !== 2 || db.length !== 2) return undefined;
  const same = da[0] === db[0] && da[1] === db[1];
  const transposed = da[0] === db[1] && da[1] === db[0];
  if (!same && !transposed) return undefined;
  const va = tensorToFloat32(a, baseDir);
  const vb = tensorToFloat32(b, baseDir);
  if (isConstant(va)) return undefined;
  const tol = TOLERANCE * Math.max(1, maxAbs(va));
  if (same && allClose(va, vb, tol, (i) => i)) return 'value';
  const [rows, cols] = da as [number, number];
  // b is [cols, rows]; b[j, i] = a[i, j]  ⇔  vb[j·rows + i] = va[i·cols + j].
  if (transposed && allClose(va, vb, tol, (k) => (k % cols) * rows + Math.floor(k / cols))) return 'value-transposed';
  return undefined;
}

function allClose(va: Float32Array, vb: Float32Array, tol: number, mapIndex: (k: number) => number): boolean {
  if (va.length !== vb.length) return false;
  for (let k = 0; k < va.length; k++) {
    if (!(Math.abs(va[k]! - vb[mapIndex(k)]!) <= tol)) return false;
  }
  return true;
}

function isConstant(v: Float32Array): boolean {
  for (let k = 1; k < v.length; k++) if (v[k] !== v[0]) return false;
  return true;
}

function maxAbs(v: Float32Array): number {
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  return m;
}
