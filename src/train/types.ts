/**
 * The LR-groups contract written by the transform (`model.supar.lr.json`, and metadata_props
 * `supar.lr_groups` in the model) and read by the train-step builder and training scripts.
 */
import type { Role } from '../analysis/types.js';

export const LR_GROUPS_FORMAT = 'supar-lr-groups/1';

export interface LrGroup {
  /** Initializer name of the trainable parameter. */
  name: string;
  role: Role;
  shape: number[];
  /** LR multipliers relative to the base LR. */
  lr_adam: number;
  lr_sgd: number;
  /** Multiplier on the base weight decay (0 for biases and norms). */
  weight_decay: number;
  /** Multiplier on AdamW's ε (CompleteP: m_d⁻¹·m_L^(−α) in-block); absent = 1. */
  adam_eps?: number;
  /** Density of the parameter's mask (1 = dense). */
  density: number;
  /** Name of the mask initializer (bool/uint8, same shape) when the parameter is masked. */
  mask: string | null;
  rule: string;
}

export interface LrGroupsFile {
  format: typeof LR_GROUPS_FORMAT;
  rules: string;
  hyperparameters: { sigma_base: number; eta_base: number; alpha_input: number; alpha_output: number };
  m_d: number;
  density: number;
  seed: number;
  /** Depth: m_L = n_layers / n_layers_base and the rule set's exponent α (absent in older files: m_L 1, α 0). */
  m_L?: number;
  n_layers_base?: number;
  alpha_depth?: number;
  /**
   * How `weight_decay` enters AdamW: `base_lr` (default) p·(1 − η·wd·λ), decoupled from the group's LR;
   * `group_lr` (PyTorch-coupled, as torch.optim.AdamW with per-group lr) p·(1 − η·lr_adam·wd·λ).
   */
  weight_decay_mode?: 'base_lr' | 'group_lr';
  groups: LrGroup[];
}
