/**
 * Tied weights. PyTorch ties the LM head to the token embedding by sharing one tensor; exporters either keep
 * one initializer (a tie by identity) or write a second copy — often transposed, under a generated name
 * (`223`, `val_278`) — so a tie must also be found by value: same shape and equal values, or the transposed
 * shape and equal to the transpose (within 1e-6, absolute or relative to the largest magnitude).
 */
import type { TensorProto } from 'onnx-buf';
import { dimsOf, float32At, tensorToFloat32 } from '../onnx/tensor.js';

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
  if (!samplesAgree(a, b, same, transposed, baseDir)) return undefined;
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

/**
 * Cheap rejection before decoding whole tensors (an LM head is vocab × width): compare up to 64 entries,
 * read alone (from external data too, without reading the rest). Other types skip the pre-check.
 */
function samplesAgree(a: TensorProto, b: TensorProto, same: boolean, transposed: boolean, baseDir: string): boolean {
  const [rows, cols] = dimsOf(a) as [number, number];
  const n = rows * cols;
  const step = Math.max(1, Math.floor(n / 64));
  const ks: number[] = [];
  for (let k = 0; k < n; k += step) ks.push(k);
  const xa = float32At(a, baseDir, ks);
  const xs = same ? float32At(b, baseDir, ks) : undefined;
  const xt = transposed ? float32At(b, baseDir, ks.map((k) => (k % cols) * rows + Math.floor(k / cols))) : undefined;
  if (!xa || (same && !xs) || (transposed && !xt)) return true;
  // Looser than the full check: this only rejects clear mismatches.
  const close = (x: number, y: number) => Math.abs(x - y) <= 1e-4 * Math.max(1, Math.abs(x), Math.abs(y));
  const agree = (ys: Float32Array | undefined) => ys !== undefined && ks.every((_, i) => close(xa[i]!, ys[i]!));
  return agree(xs) || agree(xt);
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
