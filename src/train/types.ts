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
  /** Density of the parameter's mask (1 = dense). */
  density: number;
  /** Name of the mask initializer (bool/uint8, same shape) when the parameter is masked. */
  mask: string | null;
  rule: string;
  /** Copies of this parameter the input stored under other names, now folded into it (one parameter). */
  copies?: string[];
}

export interface LrGroupsFile {
  format: typeof LR_GROUPS_FORMAT;
  rules: string;
  hyperparameters: { sigma_base: number; eta_base: number; alpha_input: number; alpha_output: number };
  m_d: number;
  density: number;
  seed: number;
  groups: LrGroup[];
}
