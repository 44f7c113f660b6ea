/**
 * Element-wise ops. Binary ops broadcast (numpy rules), so each input gradient is reduced back to the
 * input's shape with `unbroadcast`. Notation: Y = output, dY = its gradient.
 */
import { attrFloat, attrString } from '../../onnx/build.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

/** Reduces `g` (shaped like output 0) to the shape of input i. */
export function toInput(ctx: GradContext, g: string, i: number): string {
  return ctx.e.unbroadcast(g, ctx.shape(ctx.output(0)), ctx.input(i), ctx.shape(ctx.input(i)));
}

function gradY(ctx: GradContext): string {
  return ctx.gradOut(0) ?? ctx.fail('output 0 has no gradient');
}

/** For unary rules: dX = f(ctx, dY) when input 0 needs it. */
function unary(op: string, doc: string, f: (ctx: GradContext, dY: string) => string): GradRule {
  return { op, inputs: [0], doc, build: (ctx) => [ctx.needsGrad(0) ? f(ctx, gradY(ctx)) : undefined] };
}

const c = (ctx: GradContext, v: number, like: string): string => ctx.e.constFloat(v, ctx.elemType(like));

export const elementwiseRules: GradRule[] = [
  {
    op: 'Add', inputs: [0, 1], doc: 'dA = unbroadcast(dY), dB = unbroadcast(dY)',
    build: (ctx) => [0, 1].map((i) => (ctx.needsGrad(i) ? toInput(ctx, gradY(ctx), i) : undefined)),
  },
  {
    op: 'Sub', inputs: [0, 1], doc: 'dA = unbroadcast(dY), dB = −unbroadcast(dY)',
    build: (ctx) => [
      ctx.needsGrad(0) ? toInput(ctx, gradY(ctx), 0) : undefined,
      ctx.needsGrad(1) ? ctx.e.op('Neg', [toInput(ctx, gradY(ctx), 1)]) : undefined,
    ],
  },
  {
    op: 'Mul', inputs: [0, 1], doc: 'dA = unbroadcast(dY·B), dB = unbroadcast(dY·A)',
    build: (ctx) => [0, 1].map((i) => (ctx.needsGrad(i) ? toInput(ctx, ctx.e.op('Mul', [gradY(ctx), ctx.input(1 - i)]), i) : undefined)),
  },
  {
    op: 'Div', inputs: [0, 1], doc: 'dA = unbroadcast(dY/B), dB = −unbroadcast(dY·Y/B)',
    build: (ctx) => {
      const dY = gradY(ctx), b = ctx.input(1);
      const dA = ctx.needsGrad(0) || ctx.needsGrad(1) ? ctx.e.op('Div', [dY, b]) : '';
      return [
        ctx.needsGrad(0) ? toInput(ctx, dA, 0) : undefined,
        ctx.needsGrad(1) ? ctx.e.op('Neg', [toInput(ctx, ctx.e.op('Mul', [dA, ctx.output(0)]), 1)]) : undefined,
      ];
    },
  },
  { op: 'Sum', inputs: 'all', doc: 'dXi = unbroadcast(dY)', build: sumGrad },
  { op: 'Pow', inputs: [0, 1], doc: 'dX = unbroadcast(dY·p·X^(p−1)); dP = unbroadcast(dY·Y·ln X)', build: powGrad },
  unary('Neg', 'dX = −dY', (ctx, dY) => ctx.e.op('Neg', [dY])),
  unary('Identity', 'dX = dY', (_ctx, dY) => dY),
  unary('Exp', 'dX = dY·Y', (ctx, dY) => ctx.e.op('Mul', [dY, ctx.output(0)])),
  unary('Log', 'dX = dY/X', (ctx, dY) => ctx.e.op('Div', [dY, ctx.input(0)])),
  unary('Sqrt', 'dX = dY·0.5/Y', (ctx, dY) => ctx.e.op('Div', [ctx.e.op('Mul', [dY, c(ctx, 0.5, ctx.input(0))]), ctx.output(0)])),
  unary('Reciprocal', 'dX = −dY·Y²', (ctx, dY) => ctx.e.op('Neg', [ctx.e.op('Mul', [dY, ctx.e.op('Mul', [ctx.output(0), ctx.output(0)])])])),
  unary('Relu', 'dX = Where(X > 0, dY, 0)', (ctx, dY) => {
    const x = ctx.input(0);
    return ctx.e.op('Where', [ctx.e.op('Greater', [x, c(ctx, 0, x)]), dY, c(ctx, 0, x)]);
  }),
  unary('LeakyRelu', 'dX = Where(X > 0, dY, α·dY)', (ctx, dY) => {
    const x = ctx.input(0);
    const alpha = attrFloat(ctx.node, 'alpha', 0.01);
    return ctx.e.op('Where', [ctx.e.op('Greater', [x, c(ctx, 0, x)]), dY, ctx.e.op('Mul', [dY, c(ctx, alpha, x)])]);
  }),
  unary('Tanh', 'dX = dY·(1 − Y²)', (ctx, dY) => {
    const y = ctx.output(0);
    return ctx.e.op('Mul', [dY, ctx.e.op('Sub', [c(ctx, 1, y), ctx.e.op('Mul', [y, y])])]);
  }),
  unary('Sigmoid', 'dX = dY·Y·(1 − Y)', (ctx, dY) => {
    const y = ctx.output(0);
    return ctx.e.op('Mul', [ctx.e.op('Mul', [dY, y]), ctx.e.op('Sub', [c(ctx, 1, y), y])]);
  }),
  unary('Erf', 'dX = dY·(2/√π)·exp(−X²)', (ctx, dY) => {
    const x = ctx.input(0);
    const expTerm = ctx.e.op('Exp', [ctx.e.op('Neg', [ctx.e.op('Mul', [x, x])])]);
    return ctx.e.op('Mul', [dY, ctx.e.op('Mul', [expTerm, c(ctx, 2 / Math.sqrt(Math.PI), x)])]);
  }),
  { op: 'Gelu', inputs: [0], doc: 'exact: dX = dY·(Φ(X) + X·φ(X)); tanh: derivative of 0.5·X·(1 + tanh(√(2/π)(X + 0.044715X³)))', build: geluGrad },
  { op: 'Gelu', domain: 'com.microsoft', inputs: [0], doc: 'dX = dY·(Φ(X) + X·φ(X))', build: geluGrad },
  {
    op: 'Where', inputs: [1, 2], doc: 'dX = unbroadcast(Where(C, dY, 0)), dY_in = unbroadcast(Where(C, 0, dY)); C not differentiable',
    build: (ctx) => {
      const dY = gradY(ctx), cond = ctx.input(0), zero = c(ctx, 0, ctx.output(0));
      return [
        undefined,
        ctx.needsGrad(1) ? toInput(ctx, ctx.e.op('Where', [cond, dY, zero]), 1) : undefined,
        ctx.needsGrad(2) ? toInput(ctx, ctx.e.op('Where', [cond, zero, dY]), 2) : undefined,
      ];
    },
  },
  unary('Cast', 'dX = Cast(dY, to = type of X) (float ↔ float)', (ctx, dY) => ctx.e.op('Cast', [dY], { to: ctx.elemType(ctx.input(0)) })),
  { op: 'Dropout', inputs: [0], doc: 'inference mode: dX = dY; training mode (constant true): dX = dY·mask/(1 − ratio)', build: dropoutGrad },
];

function sumGrad(ctx: GradContext): InputGrads {
  return ctx.node.input.map((_, i) => (ctx.needsGrad(i) ? toInput(ctx, gradY(ctx), i) : undefined));
}

function powGrad(ctx: GradContext): InputGrads {
  const dY = gradY(ctx), x = ctx.input(0), p = ctx.input(1), e = ctx.e;
  const out: InputGrads = [];
  if (ctx.needsGrad(0)) {
    const pv = ctx.ints(p) ?? constantFloat(ctx, p);
    let local: string;
    if (pv && pv.length === 1 && typeof pv[0] === 'number') {
      const pn = pv[0];
      // p·X^(p−1), simplified for p = 2 (variance, RMSNorm) to 2·X.
      local = pn === 2 ? e.op('Mul', [x, c(ctx, 2, x)]) : e.op('Mul', [e.op('Pow', [x, c(ctx, pn - 1, x)]), c(ctx, pn, x)]);
    } else {
      const pf = e.op('Cast', [p], { to: ctx.elemType(x) });
      local = e.op('Mul', [e.op('Pow', [x, e.op('Sub', [pf, c(ctx, 1, x)])]), pf]);
    }
    out[0] = toInput(ctx, e.op('Mul', [dY, local]), 0);
  }
  if (ctx.needsGrad(1)) out[1] = toInput(ctx, e.op('Mul', [e.op('Mul', [dY, ctx.output(0)]), e.op('Log', [x])]), 1);
  return out;
}

/** A scalar float initializer's value (Pow exponents exported as float constants). */
function constantFloat(ctx: GradContext, name: string): number[] | undefined {
  return ctx.shapes.get(name).floats;
}

function geluGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const approximate = attrString(ctx.node, 'approximate', 'none') === 'tanh' ? 'tanh' : 'none';
  return [ctx.e.op('Mul', [gradY(ctx), geluDerivative(ctx, ctx.input(0), approximate)])];
}

/**
 * d/dx GELU(x). Exact: Φ(x) + x·φ(x), Φ = 0.5(1 + erf(x/√2)), φ = exp(−x²/2)/√(2π).
 * tanh form: y = 0.5x(1+t), t = tanh(k(x + a x³)): y' = 0.5(1+t) + 0.5x(1−t²)·k(1 + 3a x²).
 */
export function geluDerivative(ctx: GradContext, x: string, approximate: 'tanh' | 'none'): string {
  const e = ctx.e;
  if (approximate === 'tanh') {
    const k = Math.sqrt(2 / Math.PI), a = 0.044715;
    const x2 = e.op('Mul', [x, x]);
    const u = e.op('Mul', [e.op('Add', [x, e.op('Mul', [e.op('Mul', [x2, x]), c(ctx, a, x)])]), c(ctx, k, x)]);
    const t = e.op('Tanh', [u]);
    const du = e.op('Mul', [e.op('Add', [c(ctx, 1, x), e.op('Mul', [x2, c(ctx, 3 * a, x)])]), c(ctx, k, x)]);
    const left = e.op('Mul', [e.op('Add', [c(ctx, 1, x), t]), c(ctx, 0.5, x)]);
    const right = e.op('Mul', [e.op('Mul', [e.op('Mul', [x, c(ctx, 0.5, x)]), e.op('Sub', [c(ctx, 1, x), e.op('Mul', [t, t])])]), du]);
    return e.op('Add', [left, right]);
  }
  const cdf = e.op('Mul', [e.op('Add', [c(ctx, 1, x), e.op('Erf', [e.op('Mul', [x, c(ctx, Math.SQRT1_2, x)])])]), c(ctx, 0.5, x)]);
  const pdf = e.op('Mul', [e.op('Exp', [e.op('Mul', [e.op('Mul', [x, x]), c(ctx, -0.5, x)])]), c(ctx, 1 / Math.sqrt(2 * Math.PI), x)]);
  return e.op('Add', [cdf, e.op('Mul', [x, pdf])]);
}

function dropoutGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const dY = gradY(ctx);
  // training_mode is a bool input (opset ≥ 12); only a constant true switches the mask on.
  const training = ctx.input(2) ? ctx.shapes.get(ctx.input(2)).floats : undefined;
  if (!training || training[0] === 0) return [dY];
  const mask = ctx.output(1) || ctx.fail('Dropout in training mode without its mask output; export in eval mode');
  const ratio = ctx.input(1) ? ctx.e.op('Cast', [ctx.input(1)], { to: ctx.elemType(ctx.input(0)) }) : c(ctx, 0.5, ctx.input(0));
  const scale = ctx.e.op('Div', [c(ctx, 1, ctx.input(0)), ctx.e.op('Sub', [c(ctx, 1, ctx.input(0)), ratio])]);
  return [ctx.e.op('Mul', [ctx.e.op('Mul', [dY, ctx.e.op('Cast', [mask], { to: ctx.elemType(ctx.input(0)) })]), scale])];
}
