/**
 * Values of small int tensors through shape arithmetic (onnx's data propagation, infer_shapes(data_prop=
 * True)): Shape → Gather → Concat → Reshape/Expand chains, Equal/Where (TorchScript's
 * `Where(Equal(s, -1), 1, s)`), Add/Sub/Mul/Div/Mod/Max/Min/Neg/Abs on shape vectors, Range, and
 * ConstantOfShape. Entries are numbers, symbolic dims, or null (unknown). Symbols combine only where the
 * result is still one symbol or a '+'-sum: s + 0, s · 1, s / 1, s + t, max(s, 1) when s ≥ 1.
 */
import { sumDims, type Dim } from './dims.js';
import { MAX_TRACKED_INTS } from './table.js';

type Binary = (x: Dim, y: Dim) => Dim;

const num = (f: (x: number, y: number) => number): Binary => (x, y) => (typeof x === 'number' && typeof y === 'number' ? f(x, y) : null);

/** ONNX integer Div truncates toward zero; Mod (fmod = 0) takes the divisor's sign. */
export const INT_BINARY: Partial<Record<string, Binary>> = {
  Add: (x, y) => (x === null || y === null ? null : sumDims([x, y])),
  Sub: (x, y) => (y === 0 ? x : x !== null && x === y ? 0 : typeof x === 'string' && typeof y === 'number' ? sumDims([x, -y]) : num((a, b) => a - b)(x, y)),
  Mul: (x, y) => (x === 1 ? y : y === 1 ? x : x === 0 || y === 0 ? 0 : num((a, b) => a * b)(x, y)),
  Div: (x, y) => (y === 1 ? x : x !== null && x === y ? 1 : num((a, b) => (b === 0 ? NaN : Math.trunc(a / b)))(x, y)),
  Mod: num((a, b) => (b === 0 ? NaN : ((a % b) + b) % b)),
  Max: (x, y) => (typeof x === 'string' && (y === 1 || y === 0) ? x : typeof y === 'string' && (x === 1 || x === 0) ? y : x !== null && x === y ? x : num(Math.max)(x, y)),
  Min: (x, y) => (x !== null && x === y ? x : num(Math.min)(x, y)),
  // A symbolic entry is a size (≥ 0): it never equals a negative number (TorchScript's Equal(shape, -1)).
  Equal: (x, y) => (x !== null && x === y ? 1 : typeof x === 'number' && typeof y === 'number' ? 0
    : (typeof x === 'string' && typeof y === 'number' && y < 0) || (typeof y === 'string' && typeof x === 'number' && x < 0) ? 0 : null),
  Less: num((a, b) => Number(a < b)),
  Greater: num((a, b) => Number(a > b)),
  LessOrEqual: num((a, b) => Number(a <= b)),
  GreaterOrEqual: num((a, b) => Number(a >= b)),
  And: num((a, b) => Number(a !== 0 && b !== 0)),
  Or: num((a, b) => Number(a !== 0 || b !== 0)),
};

/** Element-wise over two value lists with numpy broadcasting of 1-element lists; undefined when lengths clash. */
export function elementwiseValues(f: Binary, a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return undefined;
  const len = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < len; i++) {
    const r = f(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!);
    out.push(typeof r === 'number' && !Number.isFinite(r) ? null : r);
  }
  return out;
}

/**
 * A value whose int facts are known: 'cond' entries are numbers (0/1, from Equal and friends or bool
 * constants read as numbers) or null.
 */
export function whereValues(cond: Dim[] | undefined, x: Dim[] | undefined, y: Dim[] | undefined): Dim[] | undefined {
  if (!cond || !x || !y) return undefined;
  const len = Math.max(cond.length, x.length, y.length);
  if ([cond, x, y].some((v) => v.length !== len && v.length !== 1)) return undefined;
  const at = (v: Dim[], i: number) => v[v.length === 1 ? 0 : i]!;
  return Array.from({ length: len }, (_, i) => {
    const c = at(cond, i), a = at(x, i), b = at(y, i);
    if (c === null) return a !== null && a === b ? a : null;
    return c !== 0 ? a : b;
  });
}

export function unaryValues(op: string, a: Dim[] | undefined): Dim[] | undefined {
  if (!a) return undefined;
  const f: ((x: number) => number) | undefined = { Neg: (x: number) => -x, Abs: Math.abs, Not: (x: number) => Number(x === 0), Sign: Math.sign, Identity: (x: number) => x }[op];
  if (!f) return undefined;
  return a.map((x) => (op === 'Identity' || (op === 'Abs' && typeof x === 'string') ? x : typeof x === 'number' ? f(x) : null));
}

/** Range(start, limit, delta): its length when the three are known, and its values when short. */
export function rangeValues(start: Dim | undefined, limit: Dim | undefined, delta: Dim | undefined): { length: Dim; values?: Dim[] } {
  if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number' && delta !== 0) {
    const length = Math.max(0, Math.ceil((limit - start) / delta));
    return { length, values: length <= MAX_TRACKED_INTS ? Array.from({ length }, (_, i) => start + i * delta) : undefined };
  }
  // arange(s) and arange(p, p + s): the length is the symbolic span.
  if (start === 0 && delta === 1 && limit !== undefined) return { length: limit };
  return { length: null };
}
