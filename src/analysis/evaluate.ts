/**
 * Evaluates small static values (scale factors computed at run time from shapes, e.g. torch's
 * `1/√q.size(-1)` exported as Shape → Slice → Cast → Sqrt → Reciprocal) using the dims the shape inference
 * knows. Returns undefined as soon as anything is unknown. Scalars and short vectors only.
 */
import { DataType, isFloatType } from '../onnx/dtype.js';
import type { AnalysisGraph } from './graph.js';

const MAX_LEN = 16;

export function evaluateStatic(g: AnalysisGraph, value: string, depth = 0): number[] | undefined {
  if (depth > 16) return undefined;
  const t = g.index.findConstant(value);
  if (t) return g.intConstant(value);
  const p = g.producer(value);
  if (!p) return undefined;
  const arg = (i: number) => (p.input[i] ? evaluateStatic(g, p.input[i]!, depth + 1) : undefined);
  switch (p.opType) {
    case 'Shape': {
      const d = g.dims(p.input[0]!);
      if (!d || d.some((x) => x === undefined)) return undefined;
      const start = intAttr(p, 'start');
      const end = intAttr(p, 'end');
      return (d as number[]).slice(start ?? 0, end ?? d.length);
    }
    case 'Gather': {
      const shapeOf = g.producer(p.input[0]!);
      if (shapeOf?.opType === 'Shape' && shapeOf.attribute.length === 0) {
        // Shape → Gather picks dims: the picked ones need to be known, not all (x.size(-1) of [b, s, h, 24]).
        const d = g.dims(shapeOf.input[0]!);
        const idx = arg(1);
        if (!d || !idx) return undefined;
        const picked = idx.map((i) => d[i < 0 ? d.length + i : i]);
        return picked.every((x) => x !== undefined) ? (picked as number[]) : undefined;
      }
      const data = arg(0);
      const idx = arg(1);
      if (!data || !idx) return undefined;
      // An index out of range means the data is not what the graph expects (e.g. a wrongly inferred rank).
      const out = idx.map((i) => data[i < 0 ? data.length + i : i]);
      return out.every((x) => x !== undefined) ? (out as number[]) : undefined;
    }
    case 'Slice': {
      const data = arg(0);
      const starts = arg(1);
      const ends = arg(2);
      if (!data || !starts || !ends || starts.length !== 1 || (p.input[4] && arg(4)?.[0] !== 1)) return undefined;
      const norm = (i: number) => Math.max(0, Math.min(data.length, i < 0 ? data.length + i : i));
      return data.slice(norm(starts[0]!), norm(ends[0]!));
    }
    case 'Cast': case 'Identity': case 'Squeeze': case 'Unsqueeze': case 'Reshape': case 'Floor': case 'Ceil':
      return arg(0);
    case 'Sqrt': return arg(0)?.map(Math.sqrt);
    case 'Reciprocal': return arg(0)?.map((x) => 1 / x);
    case 'Neg': return arg(0)?.map((x) => -x);
    case 'Div': {
      // Integer Div truncates (torch.chunk's (n + k − 1) // k on a shape).
      const q = binary('Div', arg(0), arg(1));
      return q && isIntValue(g, p.input[0]!, 0) ? q.map(Math.trunc) : q;
    }
    case 'Mul': case 'Add': case 'Sub': case 'Pow': return binary(p.opType, arg(0), arg(1));
    default: return undefined;
  }
}

/** True when `value` has an integer element type (constants by data type; shapes and ops on them). */
function isIntValue(g: AnalysisGraph, value: string, depth: number): boolean {
  if (depth > 16) return false;
  const t = g.index.findConstant(value);
  if (t) return !isFloatType(t.dataType) && t.dataType !== DataType.BOOL && t.dataType !== DataType.STRING;
  const p = g.producer(value);
  if (!p) return false;
  if (p.opType === 'Shape' || p.opType === 'Size') return true;
  if (p.opType === 'Cast') { const to = intAttr(p, 'to'); return to !== undefined && !isFloatType(to) && to !== DataType.BOOL; }
  if (['Gather', 'Unsqueeze', 'Squeeze', 'Reshape', 'Identity', 'Concat', 'Slice', 'Add', 'Sub', 'Mul', 'Div', 'Neg'].includes(p.opType)) return isIntValue(g, p.input[0]!, depth + 1);
  return false;
}

function intAttr(n: import('onnx-buf').NodeProto, name: string): number | undefined {
  const a = n.attribute.find((x) => x.name === name);
  return a ? Number(a.i) : undefined;
}

function binary(op: string, a: number[] | undefined, b: number[] | undefined): number[] | undefined {
  if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return undefined;
  const n = Math.max(a.length, b.length);
  if (n > MAX_LEN) return undefined;
  const f = { Mul: (x: number, y: number) => x * y, Div: (x: number, y: number) => x / y, Add: (x: number, y: number) => x + y, Sub: (x: number, y: number) => x - y, Pow: Math.pow }[op]!;
  return Array.from({ length: n }, (_, i) => f(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!));
}
