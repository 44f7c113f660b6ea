/**
 * Thin adapter over the analysis and rule-loading modules (owned by other engineers), so that the transform
 * reads one stable shape whatever their exact signatures.
 */
import type { Analysis, Role } from './analysis/types.js';
import type { Hyperparameters, RuleSet } from './rules/types.js';
import type { LoadedModel } from './onnx/codec.js';
import type { DensityEntry } from './plan.js';
import { analyzeModel, compareBaseShapes } from './analysis/index.js';
import type { SourceStds } from './analysis/source-stds.js';
import { loadRules } from './rules/load.js';

export interface RuleSpec {
  ruleSet: RuleSet;
  overrides: { pattern: string; role: Role }[];
  densityMap: DensityEntry[];
  hyperparameters: Partial<Hyperparameters>;
}

export async function loadRuleSpec(spec: string): Promise<RuleSpec> {
  const loaded = await loadRules(spec);
  return {
    ruleSet: loaded.ruleSet,
    // A rule file's overrides are first-match-wins; the analysis applies overrides last-wins.
    overrides: loaded.overrides.map((o) => ({ pattern: o.match, role: o.role })).reverse(),
    densityMap: loaded.densityMap.map((d) => ({ pattern: d.match, density: d.density })),
    hyperparameters: {},
  };
}

export function analyze(input: LoadedModel, overrides: { pattern: string; role: Role }[], sourceStds?: SourceStds): Analysis {
  return analyzeModel(input.model, input.baseDir, { overrides: overrides.map((o) => ({ match: o.pattern, role: o.role })), sourceStds });
}

/** m_d from a base model's shapes (mup's base shapes: the dims that differ are width dims). */
export function resolveBaseModelWidth(input: LoadedModel, base: LoadedModel): number {
  return compareBaseShapes(input.model, base.model).mD;
}
