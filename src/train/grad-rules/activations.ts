/**
 * More activations and element-wise ops: contrib GELU variants (com.microsoft FastGelu, BiasGelu,
 * QuickGelu), Clip (ReLU6), HardSigmoid, HardSwish, Softplus, Elu, Abs, Sin, Cos, and variadic Max/Min/Mean.
 * Piecewise ops use Where masks on the forward input; kinks take the one-sided derivative.
 */
import { attrFloat } from '../../onnx/build.js';
import { geluDerivative, toInput } from './elementwise.js';
import type { GradContext, GradRule, InputGrads } from './types.js';

function gradY(ctx: GradContext): string {
  return ctx.gradOut(0) ?? ctx.fail('output 0 has no gradient');
}

const c = (ctx: GradContext, v: number, like: string): string => ctx.e.constFloat(v, ctx.elemType(like));

function unary(op: string, doc: string, local: (ctx: GradContext, x: string) => string, domain?: string): GradRule {
  return { op, domain, inputs: [0], doc, build: (ctx) => [ctx.needsGrad(0) ? ctx.e.op('Mul', [gradY(ctx), local(ctx, ctx.input(0))]) : undefined] };
}

/** dU of a GELU applied to u = X + bias; dX = dU, dBias = unbroadcast(dU). */
function biasedGelu(approximate: 'tanh' | 'none') {
  return (ctx: GradContext): InputGrads => {
    const e = ctx.e, x = ctx.input(0), bias = ctx.input(1);
    const u = bias ? e.op('Add', [x, bias]) : x;
    const dU = e.op('Mul', [gradY(ctx), geluDerivative(ctx, u, approximate)]);
    return [ctx.needsGrad(0) ? toInput(ctx, dU, 0) : undefined, bias && ctx.needsGrad(1) ? toInput(ctx, dU, 1) : undefined];
  };
}

/** QuickGelu: y = x·σ(αx); y' = σ + αx·σ(1 − σ). */
function quickGeluLocal(ctx: GradContext, x: string): string {
  const e = ctx.e, alpha = attrFloat(ctx.node, 'alpha', 1.702);
  const s = e.op('Sigmoid', [e.op('Mul', [x, c(ctx, alpha, x)])]);
  const ds = e.op('Mul', [e.op('Mul', [s, e.op('Sub', [c(ctx, 1, x), s])]), e.op('Mul', [x, c(ctx, alpha, x)])]);
  return e.op('Add', [s, ds]);
}

/** Clip: dX = dY where min ≤ X ≤ max, else 0 (min/max inputs, opset ≥ 11). */
function clipGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e, x = ctx.input(0), zero = c(ctx, 0, x);
  let g = gradY(ctx);
  if (ctx.input(1)) g = e.op('Where', [e.op('Less', [x, ctx.input(1)]), zero, g]);
  if (ctx.input(2)) g = e.op('Where', [e.op('Greater', [x, ctx.input(2)]), zero, g]);
  return [g];
}

/** 1 inside (0 < t < 1) as a mask on t = αx + β. */
function inside01(ctx: GradContext, t: string): string {
  const e = ctx.e;
  return e.op('And', [e.op('Greater', [t, c(ctx, 0, t)]), e.op('Less', [t, c(ctx, 1, t)])]);
}

function hardSigmoidGrad(ctx: GradContext): InputGrads {
  if (!ctx.needsGrad(0)) return [];
  const e = ctx.e, x = ctx.input(0);
  const alpha = attrFloat(ctx.node, 'alpha', 0.2), beta = attrFloat(ctx.node, 'beta', 0.5);
  const t = e.op('Add', [e.op('Mul', [x, c(ctx, alpha, x)]), c(ctx, beta, x)]);
  return [e.op('Where', [inside01(ctx, t), e.op('Mul', [gradY(ctx), c(ctx, alpha, x)]), c(ctx, 0, x)])];
}

/** HardSwish: y = x·clip(x/6 + ½, 0, 1); y' = 0 (t ≤ 0), 1 (t ≥ 1), x/3 + ½ between. */
function hardSwishLocal(ctx: GradContext, x: string): string {
  const e = ctx.e;
  const t = e.op('Add', [e.op('Mul', [x, c(ctx, 1 / 6, x)]), c(ctx, 0.5, x)]);
  const mid = e.op('Add', [e.op('Mul', [x, c(ctx, 1 / 3, x)]), c(ctx, 0.5, x)]);
  const upper = e.op('Where', [e.op('Less', [t, c(ctx, 1, x)]), mid, c(ctx, 1, x)]);
  return e.op('Where', [e.op('Greater', [t, c(ctx, 0, x)]), upper, c(ctx, 0, x)]);
}

/** Max/Min: the input equal to the output receives dY (unbroadcast); Mean: dY/n each. */
function selectGrad(ctx: GradContext): InputGrads {
  const e = ctx.e, y = ctx.output(0), dY = gradY(ctx);
  return ctx.node.input.map((x, i) => {
    if (!ctx.needsGrad(i)) return undefined;
    const mask = e.op('Cast', [e.op('Equal', [x, y])], { to: ctx.elemType(x) });
    return toInput(ctx, e.op('Mul', [dY, mask]), i);
  });
}

function meanGrad(ctx: GradContext): InputGrads {
  const n = ctx.node.input.length;
  const scaled = ctx.e.op('Mul', [gradY(ctx), c(ctx, 1 / n, ctx.output(0))]);
  return ctx.node.input.map((_, i) => (ctx.needsGrad(i) ? toInput(ctx, scaled, i) : undefined));
}

/** PRelu: Y = X (X > 0) else slope·X; dX = Where(X > 0, dY, slope·dY), dSlope = unbroadcast(Where(X > 0, 0, dY·X)). */
function preluGrad(ctx: GradContext): InputGrads {
  const e = ctx.e, x = ctx.input(0), slope = ctx.input(1), dY = gradY(ctx);
  const positive = e.op('Greater', [x, c(ctx, 0, x)]);
  return [
    ctx.needsGrad(0) ? toInput(ctx, e.op('Where', [positive, dY, e.op('Mul', [dY, slope])]), 0) : undefined,
    ctx.needsGrad(1) ? toInput(ctx, e.op('Where', [positive, c(ctx, 0, x), e.op('Mul', [dY, x])]), 1) : undefined,
  ];
}

export const activationRules: GradRule[] = [
  { op: 'PRelu', inputs: [0, 1], doc: 'dX = Where(X > 0, dY, slope·dY); dSlope = unbroadcast(Where(X > 0, 0, dY·X))', build: preluGrad },
  { op: 'FastGelu', domain: 'com.microsoft', inputs: [0, 1], doc: 'tanh GELU of X + bias; dBias = unbroadcast(dU)', build: biasedGelu('tanh') },
  { op: 'BiasGelu', domain: 'com.microsoft', inputs: [0, 1], doc: 'exact GELU of A + B; dB = unbroadcast(dU)', build: biasedGelu('none') },
  unary('QuickGelu', 'dX = dY·(σ(αX) + αX·σ(1 − σ))', quickGeluLocal, 'com.microsoft'),
  { op: 'Clip', inputs: [0], doc: 'dX = Where(min ≤ X ≤ max, dY, 0)', build: clipGrad },
  { op: 'HardSigmoid', inputs: [0], doc: 'dX = Where(0 < αX+β < 1, α·dY, 0)', build: hardSigmoidGrad },
  unary('HardSwish', "dX = dY·(0 | X/3 + ½ | 1) by the clip's region", hardSwishLocal),
  unary('Softplus', 'dX = dY·σ(X)', (ctx, x) => ctx.e.op('Sigmoid', [x])),
  unary('Elu', 'dX = dY·(1 if X > 0 else Y + α)', (ctx, x) => {
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    return ctx.e.op('Where', [ctx.e.op('Greater', [x, c(ctx, 0, x)]), c(ctx, 1, x), ctx.e.op('Add', [ctx.output(0), c(ctx, alpha, x)])]);
  }),
  unary('Abs', 'dX = dY·Sign(X)', (ctx, x) => ctx.e.op('Sign', [x])),
  unary('Sin', 'dX = dY·Cos(X)', (ctx, x) => ctx.e.op('Cos', [x])),
  unary('Cos', 'dX = −dY·Sin(X)', (ctx, x) => ctx.e.op('Neg', [ctx.e.op('Sin', [x])])),
  { op: 'Max', inputs: 'all', doc: 'dXi = unbroadcast(dY·[Xi = Y])', build: selectGrad },
  { op: 'Min', inputs: 'all', doc: 'dXi = unbroadcast(dY·[Xi = Y])', build: selectGrad },
  { op: 'Mean', inputs: 'all', doc: 'dXi = unbroadcast(dY/n)', build: meanGrad },
];
