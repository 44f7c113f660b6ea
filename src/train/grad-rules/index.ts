/** The gradient rule registry: one entry per (domain, op). */
import { InvariantError } from '../../errors.js';
import { elementwiseRules } from './elementwise.js';
import { matmulRules } from './matmul.js';
import { normalizationRules } from './normalization.js';
import { reduceRules } from './reduce.js';
import { shapeRules } from './shape-ops.js';
import { activationRules } from './activations.js';
import { convRules } from './conv.js';
import { indexingRules } from './indexing.js';
import { layoutRules } from './layout.js';
import type { GradRule } from './types.js';

export type { GradRule, GradContext, InputGrads } from './types.js';

export const GRAD_RULES: readonly GradRule[] = [
  ...elementwiseRules, ...activationRules, ...matmulRules, ...shapeRules, ...layoutRules, ...reduceRules,
  ...normalizationRules, ...convRules, ...indexingRules,
];

const key = (op: string, domain: string | undefined) => `${domain === 'ai.onnx' ? '' : domain ?? ''}:${op}`;
const BY_KEY = new Map(GRAD_RULES.map((r) => [key(r.op, r.domain), r]));

export function findGradRule(op: string, domain?: string): GradRule | undefined {
  return BY_KEY.get(key(op, domain));
}

export function getGradRule(op: string, domain?: string): GradRule {
  const r = findGradRule(op, domain);
  if (!r) throw new InvariantError(`no gradient rule for ${key(op, domain)}`);
  return r;
}
