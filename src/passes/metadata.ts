/**
 * The rewritten model describes itself (DESIGN.md "What it writes"): metadata_props keys `supar.rules`,
 * `supar.hyperparameters` (JSON), `supar.m_d`, `supar.density`, `supar.seed`, `supar.mask_mode`,
 * `supar.m_L`, `supar.n_layers_base`, `supar.alpha_depth`, `supar.mask_storage` (`bool` or `bits`,
 * ./mask-storage.ts), `supar.version` and `supar.lr_groups` (the LR-groups file, compact JSON). Existing keys
 * of the same name are replaced; all other entries are kept in their order.
 */
import { create } from '@bufbuild/protobuf';
import { StringStringEntryProtoSchema, type ModelProto } from 'onnx-buf';
import type { LrGroupsFile } from '../train/types.js';
import type { TransformPlan } from '../plan.js';
import { VERSION } from '../version.js';
import { DEFAULT_MASK_STORAGE, type MaskStorage } from './mask-storage.js';

export function supArMetadata(plan: TransformPlan, lrGroups: LrGroupsFile, seed: number, maskStorage: MaskStorage = DEFAULT_MASK_STORAGE): [string, string][] {
  const hp = plan.hyperparameters;
  return [
    ['supar.rules', plan.rules],
    ['supar.hyperparameters', JSON.stringify({ sigma_base: hp.sigma_base, eta_base: hp.eta_base, alpha_input: hp.alpha_input, alpha_output: hp.alpha_output })],
    ['supar.m_d', String(plan.mD)],
    ['supar.density', String(plan.density)],
    ['supar.seed', String(seed)],
    ['supar.m_L', String(plan.depth.mL)],
    ['supar.n_layers_base', String(plan.depth.nLayersBase)],
    ['supar.alpha_depth', String(plan.depth.alphaDepth)],
    ['supar.mask_mode', plan.maskMode === 'n:m' && plan.nm ? `n:m ${plan.nm.n}:${plan.nm.m}` : plan.maskMode],
    ['supar.mask_storage', maskStorage],
    ['supar.version', VERSION],
    ['supar.lr_groups', JSON.stringify(lrGroups)],
  ];
}

export function setMetadata(model: ModelProto, entries: [string, string][]): void {
  const keys = new Set(entries.map(([k]) => k));
  model.metadataProps = [
    ...model.metadataProps.filter((e) => !keys.has(e.key)),
    ...entries.map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
  ];
}
