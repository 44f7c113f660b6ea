/**
 * Dimensions as the shape inference sees them: a number, a symbolic name ('batch', or a '+'-sum such as
 * 'past_seq+seq'), or unknown (null). Numpy broadcasting and MatMul's batch rule over such dims.
 */

/** A dimension: a number, a symbolic name, or unknown (null). */
export type Dim = number | string | null;
export type Shape = Dim[];

export function sameDim(a: Dim, b: Dim): boolean {
  return a !== null && b !== null && a === b;
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Numpy broadcasting of known shapes; a dim is null where it cannot be decided. */
export function broadcastShapes(shapes: (Shape | undefined)[]): Shape | undefined {
  if (shapes.length === 0 || shapes.some((s) => s === undefined)) return undefined;
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

/** MatMul (numpy matmul): 1-D operands promoted and the added axis dropped, batch dims broadcast. */
export function matmulShape(a: Shape | undefined, b: Shape | undefined): Shape | undefined {
  if (!a || !b) return undefined;
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]) ?? [];
  const out = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]!);
  if (b.length > 1) out.push(b2[b2.length - 1]!);
  return out;
}

/** Π dims: a number when all are numbers, the symbol itself for one symbolic dim, else null. */
export function product(dims: Shape): Dim {
  let p = 1;
  for (const d of dims) {
    if (typeof d !== 'number') return dims.length === 1 ? d : null;
    p *= d;
  }
  return p;
}

/**
 * A symbolic sum such as 'past_seq_len+seq_len' (terms of earlier sums flattened, numbers folded into one
 * last term, zero dropped), or null when a term is unknown.
 */
export function sumDims(dims: Dim[]): Dim {
  if (dims.some((d) => d === null)) return null;
  let num = 0;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') { num += d; continue; }
    for (const term of (d as string).split('+')) {
      if (/^-?\d+$/.test(term)) num += Number(term);
      else syms.push(term);
    }
  }
  if (syms.length === 0) return num;
  return [...syms, ...(num !== 0 ? [String(num)] : [])].join('+');
}

/**
 * The dim that makes Π(rest) · d = Π(total), by cancelling symbolic factors: e.g. total [b, s, 2],
 * rest [b, 2, 1] → s. Null when it does not come out as one number or one symbol.
 */
export function quotientDim(total: Shape, rest: Shape): Dim {
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

/** A dim as a plain number, or undefined when symbolic or unknown (the analysis's view). */
export function staticDim(d: Dim | undefined): number | undefined {
  return typeof d === 'number' ? d : undefined;
}
