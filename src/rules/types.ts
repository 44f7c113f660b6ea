/** The rule-set contract (rules/*.json): per role, formulas in the expression language (src/rules/expr.ts). */
import type { Role } from '../analysis/types.js';

/** Variables a formula may use. */
export const EXPR_VARIABLES = [
  'm_d', 'm_rho', 'rho', 'sigma_base', 'alpha_input', 'alpha_output', 'd_head', 'n_layers', 'fan_in', 'fan_out',
  // Depth (CompleteP, depth-µP; docs/notes/depth-unit-rules.md §5): m_L = n_layers / n_layers_base (blocks, not
  // branches), alpha_depth the rule set's exponent, in_block 1 for a parameter inside a transformer block (its layer
  // is known: branch linears, their biases, pre-LN gains) and 0 for embeddings, final norm and readout.
  'm_L', 'n_layers_base', 'alpha_depth', 'in_block',
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
  /** Multiplier on AdamW's ε for this role (default 1); CompleteP scales in-block ε by m_d⁻¹·m_L^(−α). */
  adamEps?: string;
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
  /**
   * Multiplier on each residual branch's output before its residual Add (attention and MLP branches; both
   * branches of a parallel block), e.g. CompleteP's "m_L^(-alpha_depth)". Absent = no branch multipliers.
   */
  residualBranchMultiplier?: string;
  /** The depth exponent α the formulas read as `alpha_depth` (CompleteP 1, depth-µP ½); default 0. */
  alphaDepth?: number;
  /**
   * How the weight-decay multiplier enters AdamW: `base_lr` (default; decoupled from the group's LR, as mup's
   * MuAdamW: p·(1 − η·wd_mult·λ)) or `group_lr` (PyTorch-coupled: p·(1 − η·lr_mult·wd_mult·λ)).
   */
  weightDecayMode?: WeightDecayMode;
}

export type WeightDecayMode = 'base_lr' | 'group_lr';
export const WEIGHT_DECAY_MODES: readonly WeightDecayMode[] = ['base_lr', 'group_lr'];

export interface Hyperparameters {
  sigma_base: number;
  eta_base: number;
  alpha_input: number;
  alpha_output: number;
}

export const DEFAULT_HYPERPARAMETERS: Hyperparameters = { sigma_base: 0.02, eta_base: 1e-3, alpha_input: 1, alpha_output: 1 };
