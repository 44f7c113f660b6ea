/**
 * Optimizer update subgraphs, one element-wise chain per parameter, with the per-parameter LR multiplier
 * of its LR group (lr_adam or lr_sgd) and weight-decay multiplier as constant initializers.
 *
 * AdamW, PyTorch `torch.optim.AdamW` semantics (decoupled weight decay, Loshchilov & Hutter 2019):
 *   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  m̂ = m/(1−β1ᵗ),  v̂ = v/(1−β2ᵗ)
 *   p ← p·(1 − lr·wd_mult·wd) − lr·mult·m̂/(√v̂ + ε·eps_mult)
 * The decay term uses the base LR, not lr·mult: as mup's MuAdamW (decoupled_wd), the decay per step stays
 * independent of the width/density multiplier. With `weightDecayMode: 'group_lr'` (a rule set written in
 * PyTorch's coupled convention, e.g. CompleteP Table 1's λ·m_N) it is p·(1 − lr·mult·wd_mult·wd).
 * eps_mult is the group's ε multiplier (CompleteP: m_d⁻¹·m_L^(−α) for in-block parameters), default 1.
 *
 * SGD, PyTorch `torch.optim.SGD` semantics (coupled L2 weight decay, dampening 0, no Nesterov):
 *   g ← g + wd_mult·wd·p,  b ← μ·b + g (when μ > 0),  p ← p − lr·mult_sgd·b
 *
 * Masked parameters: p ← Where(mask, p, 0) after the update, so pruned entries are exactly zero for any
 * number of steps (the forward Mul(W, mask) already masks the gradient).
 */
import type { LrGroup } from './types.js';
import type { Emitter } from './emit.js';

export interface OptimizerConfig {
  kind: 'adamw' | 'sgd';
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** SGD momentum (0 = plain SGD, no state). */
  momentum: number;
  /** How a group's weight-decay multiplier meets the LR (src/train/types.ts LrGroupsFile.weight_decay_mode). */
  weightDecayMode?: 'base_lr' | 'group_lr';
}

export const DEFAULT_OPTIMIZER: OptimizerConfig = { kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, momentum: 0 };

export interface ParamToUpdate {
  name: string;
  grad: string;
  group: LrGroup;
  /** The mask as a bool value in the graph (undefined for dense parameters). */
  maskBool?: string;
}

/** One optimizer state tensor of a parameter: graph input `input`, updated value `output`. */
export interface StateSlot {
  param: string;
  kind: 'm' | 'v' | 'momentum';
  input: string;
  output: string;
}

export interface UpdateOutputs {
  /** Parameter name → name of its updated value. */
  newParams: Map<string, string>;
  state: StateSlot[];
}

/** Emits the update of every parameter. `lr` is the float scalar base LR; `step` the int64 scalar t ≥ 1. */
export function emitOptimizer(e: Emitter, params: ParamToUpdate[], cfg: OptimizerConfig, lr: string, step: string | undefined): UpdateOutputs {
  const out: UpdateOutputs = { newParams: new Map(), state: [] };
  if (cfg.kind === 'adamw') {
    if (!step) throw new Error('AdamW needs the step input');
    const bias = emitBiasCorrection(e, cfg, lr, step);
    for (const p of params) emitAdamW(e, p, cfg, lr, bias, out);
  } else {
    for (const p of params) emitSgd(e, p, cfg, lr, out);
  }
  return out;
}

/**
 * Bias correction folded into scalars (c1 = 1 − β1ᵗ, c2 = 1 − β2ᵗ): lr·(m/c1)/(√(v/c2) + ε)
 * = (lr·√c2/c1) · m/(√v + ε·√c2), which saves a full-size multiply per parameter.
 */
interface BiasCorrection {
  /** lr·√c2 / c1 */
  stepScale: string;
  /** ε·√c2 */
  epsHat: string;
}

function emitBiasCorrection(e: Emitter, cfg: OptimizerConfig, lr: string, step: string): BiasCorrection {
  const t = e.op('Cast', [step], 'adam/t', { to: 1 });
  const c1 = e.op('Sub', [e.scalar(1), e.op('Pow', [e.scalar(cfg.beta1), t], 'adam/beta1_pow')], 'adam/c1');
  const c2 = e.op('Sub', [e.scalar(1), e.op('Pow', [e.scalar(cfg.beta2), t], 'adam/beta2_pow')], 'adam/c2');
  const sqrtC2 = e.op('Sqrt', [c2], 'adam/sqrt_c2');
  return {
    stepScale: e.op('Div', [e.op('Mul', [lr, sqrtC2], 'adam/lr_sqrt_c2'), c1], 'adam/step_scale'),
    epsHat: e.op('Mul', [e.scalar(cfg.eps), sqrtC2], 'adam/eps_hat'),
  };
}

function emitAdamW(e: Emitter, p: ParamToUpdate, cfg: OptimizerConfig, lr: string, bc: BiasCorrection, out: UpdateOutputs): void {
  const mIn = e.fresh(`${p.name}.m`);
  const vIn = e.fresh(`${p.name}.v`);
  const mNew = e.fresh(`${p.name}.m.new`);
  const vNew = e.fresh(`${p.name}.v.new`);
  const g = p.grad;
  e.opTo('Add', [e.op('Mul', [mIn, e.scalar(cfg.beta1)], `${p.name}.m_decay`), e.op('Mul', [g, e.scalar(1 - cfg.beta1)], `${p.name}.m_in`)], [mNew]);
  const g2 = e.op('Mul', [g, g], `${p.name}.grad_sq`);
  e.opTo('Add', [e.op('Mul', [vIn, e.scalar(cfg.beta2)], `${p.name}.v_decay`), e.op('Mul', [g2, e.scalar(1 - cfg.beta2)], `${p.name}.v_in`)], [vNew]);
  const epsMult = p.group.adam_eps ?? 1;
  const epsHat = epsMult === 1 ? bc.epsHat : e.op('Mul', [bc.epsHat, e.namedScalar(`${p.name}.eps_mult`, epsMult)], `${p.name}.eps_hat`);
  const denom = e.op('Add', [e.op('Sqrt', [vNew], `${p.name}.v_sqrt`), epsHat], `${p.name}.denom`);
  const mult = e.namedScalar(`${p.name}.lr_mult`, p.group.lr_adam);
  const stepSize = e.op('Mul', [bc.stepScale, mult], `${p.name}.step_size`);
  const update = e.op('Mul', [e.op('Div', [mNew, denom], `${p.name}.adam_dir`), stepSize], `${p.name}.update`);
  const decayed = emitDecoupledDecay(e, p, cfg, lr);
  finishParam(e, p, [decayed, update], out);
  out.state.push({ param: p.name, kind: 'm', input: mIn, output: mNew }, { param: p.name, kind: 'v', input: vIn, output: vNew });
}

/** p·(1 − lr·wd_mult·wd), or p itself when the group has no decay. */
function emitDecoupledDecay(e: Emitter, p: ParamToUpdate, cfg: OptimizerConfig, lr: string): string {
  const wd = cfg.weightDecay * p.group.weight_decay * (cfg.weightDecayMode === 'group_lr' ? p.group.lr_adam : 1);
  if (wd === 0) return p.name;
  const lrWd = e.op('Mul', [lr, e.namedScalar(`${p.name}.wd`, wd)], `${p.name}.lr_wd`);
  const keep = e.op('Sub', [e.scalar(1), lrWd], `${p.name}.decay_keep`);
  return e.op('Mul', [p.name, keep], `${p.name}.decayed`);
}

function emitSgd(e: Emitter, p: ParamToUpdate, cfg: OptimizerConfig, lr: string, out: UpdateOutputs): void {
  const wd = cfg.weightDecay * p.group.weight_decay;
  let g = p.grad;
  if (wd !== 0) g = e.op('Add', [g, e.op('Mul', [p.name, e.namedScalar(`${p.name}.wd`, wd)], `${p.name}.l2`)], `${p.name}.grad_l2`);
  if (cfg.momentum > 0) {
    const bIn = e.fresh(`${p.name}.momentum`);
    const bNew = e.fresh(`${p.name}.momentum.new`);
    e.opTo('Add', [e.op('Mul', [bIn, e.scalar(cfg.momentum)], `${p.name}.momentum_decay`), g], [bNew]);
    out.state.push({ param: p.name, kind: 'momentum', input: bIn, output: bNew });
    g = bNew;
  }
  const stepSize = e.op('Mul', [lr, e.namedScalar(`${p.name}.lr_mult`, p.group.lr_sgd)], `${p.name}.step_size`);
  finishParam(e, p, [p.name, e.op('Mul', [g, stepSize], `${p.name}.update`)], out);
}

/** `<param>.new` = Sub(base, update), then the mask (pruned entries exactly 0) for masked parameters. */
function finishParam(e: Emitter, p: ParamToUpdate, [base, update]: [string, string], out: UpdateOutputs): void {
  const newName = e.fresh(`${p.name}.new`);
  if (p.maskBool) e.opTo('Where', [p.maskBool, e.op('Sub', [base, update], `${p.name}.updated`), e.scalar(0)], [newName]);
  else e.opTo('Sub', [base, update], [newName]);
  out.newParams.set(p.name, newName);
}
