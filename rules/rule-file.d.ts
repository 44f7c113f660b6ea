/**
 * The type of a supar-transform rule file, for TypeScript rule files (`--rules my-rules.ts`). The file is read
 * statically, never executed: export an object literal as default (or as `export const rules`) made only of
 * literals, arrays, objects, unary minus, arithmetic on number literals and template strings without
 * substitutions.
 *
 *     import type { RuleFile } from 'supar-transform/rules';
 *     export default {
 *       extends: 'supar',
 *       roles: { hidden: { sgdLr: '1/m_rho' } },
 *       density: { 'h.0.**': 0.5 },
 *     } satisfies RuleFile;
 *
 * Formulas are strings in the expression language: numbers, + - * / ^, parentheses, sqrt exp log min max abs,
 * and the variables below. JSON rule files have the same shape.
 */

/** Variables a formula may use. */
export type ExprVariable =
  | 'm_d' | 'm_rho' | 'rho' | 'sigma_base' | 'alpha_input' | 'alpha_output' | 'd_head' | 'n_layers' | 'fan_in' | 'fan_out'
  | 'm_L' | 'n_layers_base' | 'alpha_depth' | 'in_block';

/** A formula in the expression language, e.g. "sigma_base/sqrt(m_d*m_rho)". */
export type Formula = string;

export type RoleName =
  | 'embedding' | 'position_embedding' | 'hidden' | 'readout' | 'bias' | 'norm_scale' | 'norm_bias' | 'buffer' | 'unknown';

export interface RoleRuleFile {
  /** Stable id shown in reports, e.g. "supar.hidden" (default "<rule set id>.<role>"). */
  id?: string;
  /** One line: what the rule does and its source. */
  doc?: string;
  /** Init std of the non-zeros; absent = keep the tensor's values. */
  initStd?: Formula;
  /** LR multipliers relative to eta_base (Adam and SGD), and the weight-decay multiplier (decoupled, AdamW). */
  adamLr?: Formula;
  sgdLr?: Formula;
  weightDecay?: Formula;
  /** Multiplier on AdamW's epsilon (default 1), e.g. CompleteP's in-block "(m_d*m_L^alpha_depth)^(-in_block)". */
  adamEps?: Formula;
  /** Whether this role is sparsified when a density below 1 is asked for. */
  sparsify?: boolean;
}

export interface RuleFile {
  /** Ignored (for editors). */
  $schema?: string;
  /** Rule set id (default: the file name without extension). */
  id?: string;
  doc?: string;
  /** A built-in rule set (sp, mup, supar) or a path relative to this file; this file's fields override it. */
  extends?: string;
  /** Multiplier on QK^T, e.g. "1/d_head". */
  attentionScale?: Formula;
  /** Forward multiplier after the embeddings, e.g. "alpha_input". */
  embeddingMultiplier?: Formula;
  /** Forward multiplier on the logits, e.g. "alpha_output/m_d". */
  outputMultiplier?: Formula;
  /** Depth factor on residual output projections' init std when enabled, e.g. "1/sqrt(2*n_layers)". */
  depthFactor?: Formula;
  /** Multiplier on each residual branch before its residual Add, e.g. CompleteP's "m_L^(-alpha_depth)". */
  residualBranchMultiplier?: Formula;
  /** The depth exponent read as `alpha_depth` (CompleteP 1, depth-µP 0.5; default 0), a number in [0, 2]. */
  alphaDepth?: number;
  /** How weightDecay meets the LR: "base_lr" (default, decoupled: p(1 - eta*wd*lambda)) or "group_lr" (PyTorch-coupled). */
  weightDecayMode?: 'base_lr' | 'group_lr';
  /** Per-role rules; with `extends`, fields given here replace the base's, field by field. */
  roles?: { [R in RoleName]?: RoleRuleFile };
  /** Role overrides by tensor-name glob (first match wins). */
  overrides?: { match: string; role: RoleName }[];
  /** Density per tensor-name glob, 0 < density <= 1 (first match wins). */
  density?: { [glob: string]: number };
}
