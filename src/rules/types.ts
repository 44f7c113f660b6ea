/** The rule-set contract (rules/*.json): per role, formulas in the expression language (src/rules/expr.ts). */
import type { Role } from '../analysis/types.js';

/** Variables a formula may use. */
export const EXPR_VARIABLES = [
  'm_d', 'm_rho', 'rho', 'sigma_base', 'alpha_input', 'alpha_output', 'd_head', 'n_layers', 'fan_in', 'fan_out',
] as const;
export type ExprVariable = (typeof EXPR_VARIABLES)[number];
export type ExprEnv = Record<ExprVariable, number>;

export interface RoleRule {
  /** Stable id, e.g. "supar.hidden". */
  id: string;
  doc: string;
  /** Init std of the non-zeros; absent = keep the tensor's values. */
  initStd?: string;
  adamLr: string;
  sgdLr: string;
  weightDecay: string;
  /** Whether the role is sparsified when a density < 1 is asked for. */
  sparsify: boolean;
}

export interface RuleSet {
  id: string;
  doc: string;
  roles: Partial<Record<Role, RoleRule>>;
  /** Multiplier on QKᵀ, e.g. "1/d_head" (µP) or "1/sqrt(d_head)" (SP). */
  attentionScale: string;
  /** Forward multiplier after embeddings, e.g. "alpha_input". */
  embeddingMultiplier: string;
  /** Forward multiplier on the logits, e.g. "alpha_output/m_d". */
  outputMultiplier: string;
  /** Optional depth factor on residual output projections' std, e.g. "1/sqrt(2*n_layers)". */
  depthFactor?: string;
  /**
   * Where each formula was written, by JSON path ("roles.hidden.initStd", "attentionScale"):
   * "<file>[:line:col]" (a base's file for what `extends` inherits). Messages about a formula's value name it.
   */
  origins?: Readonly<Record<string, string>>;
}

export interface Hyperparameters {
  sigma_base: number;
  eta_base: number;
  alpha_input: number;
  alpha_output: number;
}

export const DEFAULT_HYPERPARAMETERS: Hyperparameters = { sigma_base: 0.02, eta_base: 1e-3, alpha_input: 1, alpha_output: 1 };
