/**
 * GELU variants and the bias/skip adds onnxruntime fuses into them (onnxruntime docs/ContribOperators.md):
 *   Gelu(x)         = ½·x·(1 + erf(x/√2))                       (exact)
 *   BiasGelu(a, b)  = Gelu(a + b)
 *   FastGelu(x, b)  = ½·u·(1 + tanh(√(2/π)·(u + 0.044715·u³))),  u = x + b (b optional)
 *   QuickGelu(x)    = x·σ(α·x),  α = attribute `alpha` (default 1.702)
 *   BiasAdd(x, b, s)= x + b + s
 */
import type { NodeProto } from 'onnx-buf';
import { attrFloat } from '../../onnx/build.js';
import type { NodeSink } from '../node-sink.js';
import { OK, optionalInput, type DefuseRule } from './types.js';

const MS = ['com.microsoft'];

/** ½·u·(1 + erf(u/√2)) written to `out` (the replaced node's output). */
export function emitExactGelu(s: NodeSink, u: string, out: string): void {
  const erf = s.op('Erf', [s.op('Mul', [u, s.f32(Math.SQRT1_2)])]);
  const half = s.op('Mul', [u, s.f32(0.5)]);
  s.op('Mul', [half, s.op('Add', [erf, s.f32(1)])], {}, out);
}

function emitTanhGelu(s: NodeSink, u: string, out: string): void {
  const cube = s.op('Mul', [s.op('Mul', [u, u]), u]);
  const inner = s.op('Mul', [s.op('Add', [u, s.op('Mul', [cube, s.f32(0.044715)])]), s.f32(Math.sqrt(2 / Math.PI))]);
  const half = s.op('Mul', [u, s.f32(0.5)]);
  s.op('Mul', [half, s.op('Add', [s.op('Tanh', [inner]), s.f32(1)])], {}, out);
}

function withBias(s: NodeSink, n: NodeProto, x: number, b: number): string {
  const bias = optionalInput(n, b);
  return bias ? s.op('Add', [n.input[x]!, bias]) : n.input[x]!;
}

export const ACTIVATION_RULES: DefuseRule[] = [
  {
    id: 'defuse/gelu', opType: 'Gelu', domains: MS, doc: 'Gelu(x) → ½·x·(1 + Erf(x/√2))',
    match: () => OK,
    rewrite: (n, _ctx, s) => emitExactGelu(s, n.input[0]!, n.output[0]!),
  },
  {
    id: 'defuse/bias-gelu', opType: 'BiasGelu', domains: MS, doc: 'BiasGelu(a, b) → exact GELU of Add(a, b)',
    match: () => OK,
    rewrite: (n, _ctx, s) => emitExactGelu(s, withBias(s, n, 0, 1), n.output[0]!),
  },
  {
    id: 'defuse/fast-gelu', opType: 'FastGelu', domains: MS, doc: 'FastGelu(x, b) → tanh GELU ½·u·(1 + Tanh(√(2/π)(u + 0.044715u³))), u = x + b',
    match: () => OK,
    rewrite: (n, _ctx, s) => emitTanhGelu(s, withBias(s, n, 0, 1), n.output[0]!),
  },
  {
    id: 'defuse/quick-gelu', opType: 'QuickGelu', domains: MS, doc: 'QuickGelu(x) → x·Sigmoid(α·x)',
    match: () => OK,
    rewrite: (n, _ctx, s) => {
      const x = n.input[0]!;
      const alpha = attrFloat(n, 'alpha', 1.702);
      s.op('Mul', [x, s.op('Sigmoid', [s.op('Mul', [x, s.f32(alpha)])])], {}, n.output[0]!);
    },
  },
  {
    id: 'defuse/bias-add', opType: 'BiasAdd', domains: MS, doc: 'BiasAdd(x, b, skip) → Add(Add(x, b), skip)',
    match: () => OK,
    rewrite: (n, _ctx, s) => { s.op('Add', [s.op('Add', [n.input[0]!, n.input[1]!]), n.input[2]!], {}, n.output[0]!); },
  },
];
