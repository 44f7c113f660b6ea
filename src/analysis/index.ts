/**
 * `analyzeModel`: what the graph says about each initializer (role, reason, fan-in, layer, ties), the
 * attention-logit scale sites, the logits and embedding outputs, and the values a coordinate check records.
 * Pure: reads the model (and external data under `baseDir` for the tie-by-value check), changes nothing.
 */
import type { ModelProto } from 'onnx-buf';
import { findAttentionSites } from './attention.js';
import { compileGlob } from './glob.js';
import { AnalysisGraph } from './graph.js';
import { assignStructure } from './layers.js';
import { classifyRoles } from './roles.js';
import { findSharedCopies } from './sharing.js';
import type { SourceStds } from './source-stds.js';
import type { Analysis, ParamInfo, Role } from './types.js';
import { ROLES } from './types.js';
import { compareShapes, detectWidth, type BaseShapeComparison } from './width.js';
import { UserInputError } from '../errors.js';

export { matchGlob, compileGlob } from './glob.js';
export { detectWidth, type BaseShapeComparison } from './width.js';
export { layerFromName } from './layers.js';
export type { Analysis, AttentionSite, BlockOutput, ParamInfo, Role } from './types.js';

export interface RoleOverride {
  /** Glob over initializer names (see glob.ts). */
  match: string;
  role: Role;
}

export interface AnalyzeOptions {
  /** Applied after detection, in order; the last matching override wins. */
  overrides?: RoleOverride[];
  /** Filled with the std before of the external weights the analysis reads (source-stds.ts). */
  sourceStds?: SourceStds;
}

export function analyzeModel(model: ModelProto, baseDir: string, opts: AnalyzeOptions = {}): Analysis {
  const g = new AnalysisGraph(model, baseDir);
  const found = findAttentionSites(g);
  const roles = classifyRoles(g, found);
  const structure = assignStructure(g, found, roles);
  const warnings = [...roles.warnings];
  for (const s of found) {
    if (s.unresolved) warnings.push(s.unresolved);
    else if (s.headSizeGuessed) warnings.push(`attention at QKᵀ ${s.site.qkMatMul}: head size not inferable from shapes; d_head ${s.site.dHead} assumes the current scale ${+s.site.currentScale.toPrecision(4)} is 1/√d_head (wrong for a model already in µP form): check it`);
    else if (s.site.constants.length === 0 && s.site.kind === 'mul-after-qk') warnings.push(`attention at ${s.site.qkMatMul}: ${s.site.reason}`);
  }
  const sites = found.filter((s) => !s.unresolved);
  const params = [...roles.params.values()];
  applyOverrides(params, opts.overrides ?? [], warnings);
  findSharedCopies(g, params, warnings, opts.sourceStds);

  const logitsSrc = roles.logits;
  const readoutParam = logitsSrc ? params.find((p) => p.name === logitsSrc.weight) : undefined;
  const blocks = [...structure.blocks];
  if (logitsSrc) blocks.push({ value: logitsSrc.output, kind: 'output_logits' });
  else warnings.push('no readout found: no graph output is produced by a MatMul/Gemm/Conv with a weight initializer (through bias/reshape/softmax)');
  const dHeads = sites.map((s) => s.site.dHead);
  const width = detectWidth({ params });
  const analysis: Analysis = {
    params,
    attention: sites.map((s) => s.site),
    ...(logitsSrc ? { logits: { output: logitsSrc.output, node: g.label(logitsSrc.node), ...(readoutParam ? { readout: readoutParam.name } : {}) } } : {}),
    embeddingOutputs: roles.embeddings.map((e) => ({ param: e.weight, value: e.value })),
    blocks,
    residualBranches: structure.branches,
    ...(width ? { dModel: width.dModel } : {}),
    ...(dHeads.length ? { dHead: mode(dHeads) } : {}),
    ...(structure.nLayers ? { nLayers: structure.nLayers } : {}),
    warnings,
  };
  return analysis;
}

function applyOverrides(params: ParamInfo[], overrides: RoleOverride[], warnings: string[]): void {
  for (const o of overrides) {
    if (!ROLES.includes(o.role)) throw new UserInputError(`override '${o.match}': unknown role '${o.role}'; roles are ${ROLES.join(', ')}`);
    const re = compileGlob(o.match);
    const hits = params.filter((p) => re.test(p.name));
    if (hits.length === 0) warnings.push(`override '${o.match}' → ${o.role} matches no initializer`);
    for (const p of hits) {
      p.role = o.role;
      p.reason = `override: ${o.match}`;
      if ((o.role === 'hidden' || o.role === 'readout') && p.fanIn === undefined && p.shape.length === 2) {
        Object.assign(p, { fanIn: p.shape[0], fanOut: p.shape[1], inputAxis: 0, outputAxis: 1 });
        p.reason += ' (fan-in assumed along axis 0: no MatMul/Gemm use found)';
      }
    }
  }
}

function mode(xs: number[]): number {
  const counts = new Map<number, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
}

/**
 * mup-style base shapes: match `model`'s tensors with `base`'s (by name, or by order for generated names);
 * the dims that differ are width dims, and m_d = d_model / d_model,base with both residual widths detected
 * by `analyzeModel` (`dModel`/`baseDModel` override them). Throws UserInputError when the shapes cannot be
 * matched (different rank, missing tensor, different tensor count).
 */
export function compareBaseShapes(model: ModelProto, base: ModelProto, opts: { modelDir?: string; baseDir?: string; dModel?: number; baseDModel?: number } = {}): BaseShapeComparison {
  const dModel = opts.dModel ?? detectWidth(analyzeModel(model, opts.modelDir ?? '.'))?.dModel;
  const baseDModel = opts.baseDModel ?? detectWidth(analyzeModel(base, opts.baseDir ?? '.'))?.dModel;
  return compareShapes(model, base, { ...(dModel ? { dModel } : {}), ...(baseDModel ? { baseDModel } : {}) });
}
