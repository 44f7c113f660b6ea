/**
 * The plan: rules × analysis → what happens to every parameter (DESIGN.md "Semantics").
 * For each initializer: its role (from the analysis), the rule that applies, the density and mask mode,
 * the init std of the non-zeros, the Adam and SGD LR multipliers and the weight-decay multiplier, each
 * evaluated from the rule's formulas with env {m_d, m_rho, rho, sigma_base, alpha_input, alpha_output,
 * d_head, n_layers, fan_in, fan_out, m_L, n_layers_base, alpha_depth, in_block}, and the multiplier on every
 * residual branch (CompleteP / depth-µP). Pure: no I/O, no randomness.
 */
import { UsageError, UserInputError, ExitCode } from './errors.js';
import type { Analysis, AttentionSite, ParamInfo, ResidualBranch, Role } from './analysis/types.js';
import type { ExprEnv, Hyperparameters, RoleRule, RuleSet, WeightDecayMode } from './rules/types.js';
import { compileExpr } from './rules/expr.js';
import { matchGlob } from './analysis/glob.js';

export type MaskMode = 'per-tensor' | 'bernoulli' | 'per-row' | 'n:m';
export const MASK_MODES: readonly MaskMode[] = ['per-tensor', 'bernoulli', 'per-row', 'n:m'];
export type InitMode = 'resample' | 'rescale' | 'keep';
export const INIT_MODES: readonly InitMode[] = ['resample', 'rescale', 'keep'];

/** Roles that are trained parameters (buffers and unclassified tensors are left alone). */
const TRAINABLE: ReadonlySet<Role> = new Set(['embedding', 'position_embedding', 'hidden', 'readout', 'bias', 'norm_scale', 'norm_bias']);
/** Default depth factor on residual output projections (GPT-2 convention, supar-rules.md §2b). */
export const DEFAULT_DEPTH_FACTOR = '1/sqrt(2*n_layers)';

export interface PlanOptions {
  /** Target density ρ of sparsified tensors (1 = dense). */
  density: number;
  /** Width multiplier m_d (already resolved from --width-mult, --base-width or --base-model). */
  mD: number;
  hyperparameters: Hyperparameters;
  maskMode: MaskMode;
  nm?: { n: number; m: number };
  /** Globs of tensors to sparsify even when their role is dense by rule, and to keep dense. */
  sparsify: string[];
  dense: string[];
  /** Per-tensor density by glob; the first matching entry wins (file order). */
  densityMap: DensityEntry[];
  init: InitMode;
  truncated: boolean;
  /** Depth-factor formula for residual output projections, or undefined for none. */
  depthFactor?: string;
  /** Base depth L_base (blocks) for m_L = n_layers / n_layers_base; default: the model's own (m_L = 1). */
  nLayersBase?: number;
  strict: boolean;
}

export interface DensityEntry {
  pattern: string;
  density: number;
}

/** A parameter's analysis facts (all of ParamInfo but its consumer list) and what the rules decided for it. */
export interface ParamPlan extends Omit<ParamInfo, 'consumers'> {
  /** Rule id, or null when no rule covers the role (left untouched). */
  rule: string | null;
  trainable: boolean;
  /** Density of the mask; 1 = dense (no mask). */
  density: number;
  /** Why the density is what it is (rule, glob, density map). */
  densityReason: string;
  maskMode: MaskMode | null;
  /** Target std of the non-zeros; null = keep the values. */
  initStd: number | null;
  /** Depth factor already folded into initStd (1 when none). */
  depthFactor: number;
  lrAdam: number;
  lrSgd: number;
  weightDecay: number;
  /** Multiplier on AdamW's ε (1 unless the rule's adamEps says otherwise). */
  adamEps: number;
}

/** Depth: m_L = n_layers / n_layers_base, and the rule set's exponent α. */
export interface DepthPlan {
  nLayers: number;
  nLayersBase: number;
  mL: number;
  alphaDepth: number;
}

export interface BranchPlan {
  branch: ResidualBranch;
  multiplier: number;
}

export interface AttentionPlan {
  site: AttentionSite;
  /** Multiplier on QKᵀ the rules ask for (e.g. 1/d_head); null when d_head is unknown (site left alone). */
  targetScale: number | null;
}

export interface TransformPlan {
  rules: string;
  hyperparameters: Hyperparameters;
  mD: number;
  density: number;
  maskMode: MaskMode;
  nm?: { n: number; m: number };
  init: InitMode;
  truncated: boolean;
  params: ParamPlan[];
  attention: AttentionPlan[];
  embeddingMultiplier: number;
  outputMultiplier: number;
  depth: DepthPlan;
  /** Residual branches and their multipliers (empty when the rule set has no residualBranchMultiplier). */
  residualBranches: BranchPlan[];
  weightDecayMode: WeightDecayMode;
  warnings: string[];
}

/** The first glob (same syntax as role overrides, src/analysis/glob.ts) that matches `name`. */
export function matchesAny(name: string, globs: readonly string[]): string | undefined {
  return globs.find((g) => matchGlob(g, name));
}

/** Evaluates rule formulas; compiled once per (source, where). */
class Formulas {
  private readonly cache = new Map<string, ReturnType<typeof compileExpr>>();
  constructor(private readonly ruleSetId: string) {}

  eval(source: string, field: string, env: ExprEnv): number {
    const where = `rules '${this.ruleSetId}': ${field}`;
    let c = this.cache.get(where + '\0' + source);
    if (!c) {
      c = compileExpr(source, where);
      this.cache.set(where + '\0' + source, c);
    }
    return c.eval(env);
  }
}

export function buildPlan(analysis: Analysis, ruleSet: RuleSet, o: PlanOptions): TransformPlan {
  checkPlanOptions(o);
  const f = new Formulas(ruleSet.id);
  const hp = o.hyperparameters;
  const dHead = analysis.dHead ?? 1;
  const nLayers = analysis.nLayers ?? 1;
  const nLayersBase = o.nLayersBase ?? nLayers;
  const depth: DepthPlan = { nLayers, nLayersBase, mL: nLayers / nLayersBase, alphaDepth: ruleSet.alphaDepth ?? 0 };
  const baseEnv = (fanIn: number, fanOut: number, rho: number, dh = dHead, inBlock = 0): ExprEnv => ({
    m_d: o.mD, m_rho: rho, rho, sigma_base: hp.sigma_base, alpha_input: hp.alpha_input, alpha_output: hp.alpha_output,
    d_head: dh, n_layers: nLayers, fan_in: fanIn, fan_out: fanOut,
    m_L: depth.mL, n_layers_base: nLayersBase, alpha_depth: depth.alphaDepth, in_block: inBlock,
  });
  const warnings: string[] = [];
  const params = analysis.params.map((p) => planParam(p, ruleSet, o, f, baseEnv, warnings));
  for (const p of params) {
    if (p.role === 'unknown' && !analysis.warnings.some((w) => w.includes(p.name))) {
      warnings.push(`'${p.name}' could not be classified (${p.reason}); left untouched: give it a role with --role GLOB=ROLE`);
    }
  }
  for (const { copy, table } of tiedCopies(params)) {
    Object.assign(copy, { trainable: false, initStd: null, density: 1, maskMode: null, lrAdam: 0, lrSgd: 0, weightDecay: 0, adamEps: 1 });
    copy.densityReason = `folded into the tied table '${table.name}' (one parameter)`;
  }
  const env1 = baseEnv(1, 1, 1);
  const attention = analysis.attention.map((site) => {
    if (site.dHead > 0 && site.currentScale > 0) {
      const targetScale = f.eval(ruleSet.attentionScale, 'attentionScale', baseEnv(1, 1, 1, site.dHead));
      const standard = 1 / Math.sqrt(site.dHead);
      if (Math.abs(site.currentScale / standard - 1) > 1e-2 && Math.abs(targetScale / site.currentScale - 1) > 1e-6) {
        // (1e-2: fp16/bf16 scale constants round.) T5 folds 1/√d_head into the Q weights' init and scales QKᵀ by 1: the rules' target is absolute, so
        // weights kept from such a model (--init keep/rescale) see different logits.
        warnings.push(`attention at ${site.nodes.join(', ') || site.qkMatMul || '?'}: the model scales QKᵀ by ${+site.currentScale.toPrecision(4)}, not 1/√d_head = ${+standard.toPrecision(4)} (a scale folded into the Q/K init, as in T5?); the rules set ${+targetScale.toPrecision(4)}${o.init === 'resample' ? '' : `, so the ${o.init === 'keep' ? 'kept' : 'rescaled'} weights give different logits`}`);
      }
      return { site, targetScale };
    }
    warnings.push(`attention site at ${site.nodes.join(', ') || site.qkMatMul || '?'}: head size or current scale unknown; its scale is left as it is`);
    return { site, targetScale: null };
  });
  const residualBranches = planBranches(analysis, ruleSet, o, depth, f, env1, warnings);
  return {
    rules: ruleSet.id, hyperparameters: hp, mD: o.mD, density: o.density, maskMode: o.maskMode, nm: o.nm,
    init: o.init, truncated: o.truncated, params, attention,
    embeddingMultiplier: f.eval(ruleSet.embeddingMultiplier, 'embeddingMultiplier', env1),
    outputMultiplier: f.eval(ruleSet.outputMultiplier, 'outputMultiplier', env1),
    depth, residualBranches, weightDecayMode: ruleSet.weightDecayMode ?? 'base_lr',
    warnings,
  };
}

/**
 * The branch multiplier (e.g. m_L^(−α)) on every residual branch the analysis found. A model whose branches
 * were not all found (sandwich norms between the branch and its Add, fused blocks) is warned about: the
 * rule would then scale only some blocks.
 */
function planBranches(analysis: Analysis, ruleSet: RuleSet, o: PlanOptions, depth: DepthPlan, f: Formulas, env: ExprEnv, warnings: string[]): BranchPlan[] {
  if (!ruleSet.residualBranchMultiplier) {
    if (o.nLayersBase !== undefined && depth.mL !== 1 && ruleSet.alphaDepth === undefined) {
      warnings.push(`base depth ${o.nLayersBase} gives m_L = ${+depth.mL.toPrecision(4)}, but rules '${ruleSet.id}' have no depth rules (no residualBranchMultiplier or alphaDepth); use completep, depth-mup or supar-completep for depth transfer`);
    }
    return [];
  }
  if (o.depthFactor) warnings.push(`--depth-factor with rules '${ruleSet.id}': their residual-branch multiplier already controls depth (CompleteP drops GPT-2's 1/√(2L) init factor); the two together count depth twice`);
  const multiplier = f.eval(ruleSet.residualBranchMultiplier, 'residualBranchMultiplier', env);
  const found = analysis.residualBranches;
  if (found.length !== 2 * depth.nLayers) {
    warnings.push(`rules '${ruleSet.id}' multiply every residual branch by ${+multiplier.toPrecision(4)}, but ${found.length} branch${found.length === 1 ? ' was' : 'es were'} found for ${depth.nLayers} layer${depth.nLayers === 1 ? '' : 's'} (2 per block expected: attention and MLP); blocks whose branch was not found (a norm between the branch and its residual Add, a fused block) are not scaled`);
  }
  return found.map((branch) => ({ branch, multiplier }));
}

function checkPlanOptions(o: PlanOptions): void {
  if (!(o.density > 0 && o.density <= 1)) throw new UsageError(`--density ${o.density}: must be in (0, 1]; e.g. --density 0.125`);
  if (!(o.mD > 0) || !Number.isFinite(o.mD)) throw new UsageError(`--width-mult ${o.mD}: must be a positive number`);
  for (const e of o.densityMap) {
    if (!(e.density > 0 && e.density <= 1)) throw new UsageError(`--density-map '${e.pattern}': density ${e.density} must be in (0, 1]`);
  }
  if (o.maskMode === 'n:m') {
    if (!o.nm) throw new UsageError('--mask n:m needs --nm N:M (e.g. --nm 2:4)');
    const { n, m } = o.nm;
    if (!(Number.isInteger(n) && Number.isInteger(m) && n > 0 && n <= m)) throw new UsageError(`--nm ${n}:${m}: N and M must be integers with 0 < N <= M`);
  }
}

function planParam(
  p: ParamInfo, ruleSet: RuleSet, o: PlanOptions, f: Formulas,
  baseEnv: (fanIn: number, fanOut: number, rho: number, dh?: number, inBlock?: number) => ExprEnv, warnings: string[],
): ParamPlan {
  const rule: RoleRule | undefined = ruleSet.roles[p.role];
  const trainable = TRAINABLE.has(p.role) && rule !== undefined;
  if (TRAINABLE.has(p.role) && !rule) warnings.push(`${p.name}: rules '${ruleSet.id}' have no rule for role ${p.role}; left untouched`);
  let { density, densityReason } = trainable ? densityFor(p, rule!, o) : { density: 1, densityReason: 'not a trained parameter' };
  if (density < 1 && o.maskMode === 'n:m') {
    checkNm(p, o.nm!);
    density = o.nm!.n / o.nm!.m;
    densityReason += ` (N:M ${o.nm!.n}:${o.nm!.m})`;
  }
  const fanIn = p.fanIn ?? p.shape[p.shape.length - 1] ?? 1;
  const fanOut = p.fanOut ?? p.shape[0] ?? 1;
  const env = baseEnv(fanIn, fanOut, density, undefined, p.layer !== undefined ? 1 : 0);
  const field = (k: string) => `roles.${p.role}.${k}`;
  let initStd: number | null = null;
  let depthFactor = 1;
  if (trainable && rule!.initStd !== undefined && o.init !== 'keep') {
    initStd = f.eval(rule!.initStd, field('initStd'), env);
    if (o.depthFactor && p.role === 'hidden' && p.residualOutput) {
      depthFactor = f.eval(o.depthFactor, 'depthFactor', env);
      initStd *= depthFactor;
    }
  }
  const plan: ParamPlan = {
    name: p.name, role: p.role, reason: p.reason, shape: p.shape, dataType: p.dataType, elements: p.elements,
    fanIn: p.fanIn, fanOut: p.fanOut, inputAxis: p.inputAxis, outputAxis: p.outputAxis, layer: p.layer,
    residualOutput: p.residualOutput, tiedWith: p.tiedWith, tie: p.tie,
    rule: rule?.id ?? null, trainable, density, densityReason,
    maskMode: density < 1 ? o.maskMode : null,
    initStd, depthFactor,
    lrAdam: trainable ? f.eval(rule!.adamLr, field('adamLr'), env) : 0,
    lrSgd: trainable ? f.eval(rule!.sgdLr, field('sgdLr'), env) : 0,
    weightDecay: trainable ? f.eval(rule!.weightDecay, field('weightDecay'), env) : 0,
    adamEps: trainable && rule!.adamEps !== undefined ? f.eval(rule!.adamEps, field('adamEps'), env) : 1,
  };
  return plan;
}

/**
 * Density of one parameter: the density map first, then --dense / --sparsify globs, then the rule's
 * `sparsify` flag with the global density. Tied tensors are never masked (DESIGN.md "Tied embeddings").
 */
function densityFor(p: ParamInfo, rule: RoleRule, o: PlanOptions): { density: number; densityReason: string } {
  const tiedEmbedding = p.tiedWith !== undefined && (p.role === 'embedding' || p.role === 'readout');
  const dense = matchesAny(p.name, o.dense);
  if (dense) return { density: 1, densityReason: `dense by --dense '${dense}'` };
  if (p.shape.length < 2) {
    const forced = matchesAny(p.name, o.sparsify) ?? o.densityMap.find((e) => matchGlob(e.pattern, p.name))?.pattern;
    return { density: 1, densityReason: forced ? `dense: glob '${forced}' matches but a ${p.shape.length}-D tensor has no fan-in to sparsify` : 'dense: not a matrix' };
  }
  if (tiedEmbedding) return { density: 1, densityReason: `dense: tied with '${p.tiedWith}' (never masked)` };
  const mapped = o.densityMap.find((e) => matchGlob(e.pattern, p.name));
  if (mapped) return { density: mapped.density, densityReason: `density map '${mapped.pattern}'` };
  const forced = matchesAny(p.name, o.sparsify);
  if (forced) return { density: o.density, densityReason: `sparsified by --sparsify '${forced}'` };
  if (rule.sparsify) return { density: o.density, densityReason: o.density < 1 ? `rule ${rule.id} sparsifies ${p.role}` : 'dense: --density 1' };
  return { density: 1, densityReason: `dense: rule ${rule.id} keeps ${p.role} dense` };
}

/** N:M keeps N of every M consecutive entries along the input axis, so M must divide the fan-in. */
function checkNm(p: ParamInfo, nm: { n: number; m: number }): void {
  const fanIn = p.inputAxis !== undefined ? p.shape[p.inputAxis]! : p.fanIn ?? p.shape[0]!;
  if (fanIn % nm.m !== 0) {
    throw new UserInputError(`--nm ${nm.n}:${nm.m}: tensor '${p.name}' has fan-in ${fanIn}, not a multiple of ${nm.m}; choose an M that divides it or --dense '${p.name}'`, ExitCode.usage);
  }
}

/** The copies to fold: value ties between an embedding table and another tensor; the embedding is kept. */
export function tiedCopies(params: readonly ParamPlan[]): { copy: ParamPlan; table: ParamPlan }[] {
  const byName = new Map(params.map((p) => [p.name, p]));
  const out: { copy: ParamPlan; table: ParamPlan }[] = [];
  const taken = new Set<string>();
  for (const p of params) {
    if (!p.tiedWith || (p.tie !== 'value' && p.tie !== 'value-transposed')) continue;
    const other = byName.get(p.tiedWith);
    if (!other || taken.has(p.name) || taken.has(other.name)) continue;
    // Keep the embedding table (the Gather's data); fold the other side into it.
    const [table, copy] = p.role === 'embedding' && other.role !== 'embedding' ? [p, other] : [other, p];
    if (table.role !== 'embedding' && copy.role !== 'readout') continue;
    out.push({ copy, table });
    taken.add(p.name).add(other.name);
  }
  return out;
}

