/**
 * The optimizer's parameter groups (DESIGN.md "What it writes", `model.supar.lr.json`; contract
 * src/train/types.ts). One group per trained parameter with its LR multipliers relative to η_base (Adam:
 * SµPar hidden 1/(m_d·m_ρ); SGD, paper App. D.3.1: 1/m_ρ; embeddings, readout, norms and biases 1), its
 * decoupled weight-decay multiplier and its mask. Order: the model's initializer order.
 */
import type { ModelProto } from 'onnx-buf';
import { LR_GROUPS_FORMAT, type LrGroup, type LrGroupsFile } from '../train/types.js';
import type { TransformPlan } from '../plan.js';
import type { Pass, PassContext, PassResult } from './manager.js';
import type { DrawnMask } from './manager.js';

export function buildLrGroups(plan: TransformPlan, masks: ReadonlyMap<string, DrawnMask>, seed: number, present: ReadonlySet<string>): LrGroupsFile {
  const groups: LrGroup[] = plan.params
    .filter((p) => p.trainable && present.has(p.name))
    .map((p) => ({
      name: p.name, role: p.role, shape: p.shape, lr_adam: p.lrAdam, lr_sgd: p.lrSgd, weight_decay: p.weightDecay,
      adam_eps: p.adamEps, density: p.density, mask: masks.get(p.name)?.name ?? null, rule: p.rule!,
    }));
  const hp = plan.hyperparameters;
  return {
    format: LR_GROUPS_FORMAT,
    rules: plan.rules,
    hyperparameters: { sigma_base: hp.sigma_base, eta_base: hp.eta_base, alpha_input: hp.alpha_input, alpha_output: hp.alpha_output },
    m_d: plan.mD,
    density: plan.density,
    seed,
    m_L: plan.depth.mL,
    n_layers_base: plan.depth.nLayersBase,
    alpha_depth: plan.depth.alphaDepth,
    weight_decay_mode: plan.weightDecayMode,
    groups,
  };
}

export interface LrGroupsPassReport {
  lr_groups: LrGroupsFile;
}

export const lrGroupsPass: Pass<LrGroupsPassReport> = {
  id: 'lr-groups',
  doc: 'collect every trained parameter with its LR and weight-decay multipliers and its mask',
  run(model: ModelProto, ctx: PassContext): PassResult<LrGroupsPassReport> {
    const present = new Set(model.graph!.initializer.map((t) => t.name));
    return { model, report: { lr_groups: buildLrGroups(ctx.plan, ctx.masks, ctx.seed, present) } };
  },
};
