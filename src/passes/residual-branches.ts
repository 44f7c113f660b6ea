/**
 * Residual-branch multipliers (CompleteP, Dey et al. 2025, Table 1 "MHA/MLP Residual"; depth-µP):
 * Xˡ + m·branch(LN(Xˡ)) with m = the rule's residualBranchMultiplier, e.g. m_L^(−α). A `Mul` by a named
 * scalar initializer (`supar.branch_mult`) goes on each branch's output (projection plus bias) before its
 * residual Add; the branch value keeps its name, so the Add and a coordinate check read the scaled branch.
 * A multiplier of 1 (m_L = 1) inserts nothing.
 */
import type { ModelProto } from 'onnx-buf';
import { NameAuthority } from '../onnx/ir.js';
import { multiplyValue } from './multipliers.js';
import type { Pass, PassContext, PassResult } from './manager.js';

export interface BranchReportEntry {
  kind: 'attention' | 'mlp';
  layer: number | null;
  /** The branch value (now the product) and the residual Add it feeds. */
  value: string;
  add: string;
  projection: string;
  multiplier: number;
  constant: string | null;
  node: string | null;
}

export interface BranchPassReport {
  residual_branches: BranchReportEntry[];
}

const isUnit = (x: number) => Math.abs(x - 1) <= 1e-12;

export const residualBranchPass: Pass<BranchPassReport> = {
  id: 'residual-branches',
  doc: 'multiply every residual branch (attention, MLP) by the rule\'s residualBranchMultiplier before its residual Add',
  run(model: ModelProto, ctx: PassContext): PassResult<BranchPassReport> {
    const names = new NameAuthority(model);
    const out: BranchReportEntry[] = [];
    for (const { branch, multiplier } of ctx.plan.residualBranches) {
      const entry: BranchReportEntry = { kind: branch.kind, layer: branch.layer ?? null, value: branch.value, add: branch.add, projection: branch.projection, multiplier, constant: null, node: null };
      if (!isUnit(multiplier)) {
        const m = multiplyValue(model, names, branch.value, multiplier, 'branch', 'supar.branch_mult');
        entry.constant = m.constant;
        entry.node = m.node;
      }
      out.push(entry);
    }
    return { model, report: { residual_branches: out } };
  },
};
