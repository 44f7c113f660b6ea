/**
 * The library API (DESIGN.md "What it is"): `transform(model, options)` runs
 * bytes → IR → analysis → plan (rules × roles) → passes → IR + report, and `writeTransformOutputs` writes
 * `model.supar.onnx`, `model.supar.lr.json` and `model.supar.report.json` (each atomically).
 * The input model is never modified: passes work on a structural copy that shares tensor bytes until a pass
 * replaces them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clearField, clone, isFieldSet } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProtoSchema, type ModelProto, type TensorProto } from 'onnx-buf';
import { ExitCode, UsageError, UserInputError } from './errors.js';
import type { Analysis, Role } from './analysis/types.js';
import { DEFAULT_HYPERPARAMETERS, type Hyperparameters } from './rules/types.js';
import type { LrGroupsFile } from './train/types.js';
import { estimateWriteBytes, type LoadedModel, type WrittenFiles } from './onnx/codec.js';
import { defaultThreads, JobPool } from './passes/job-pool.js';
import { writeModelsChecked } from './onnx/load-check.js';
import { writeFileAtomic } from './onnx/atomic.js';
import type { ExternalDataMode } from './onnx/external.js';
import { forEachTensor } from './onnx/walk.js';
import { buildPlan, DEFAULT_DEPTH_FACTOR, type DensityEntry, type InitMode, type MaskMode, type TransformPlan } from './plan.js';
import { labelNodes, runPasses, type Pass, type PassContext } from './passes/manager.js';
import { tiePass } from './passes/ties.js';
import { fillMaskReport, maskPass, type MaskPassReport } from './passes/masks.js';
import { fillInitReport, initPass, type InitPassReport } from './passes/init.js';
import { DeferredValues } from './passes/deferred.js';
import { SourceStds, surveyExternalWeights } from './analysis/source-stds.js';
import { DEFAULT_MASK_STORAGE, MASK_STORAGES, type MaskStorage } from './passes/mask-storage.js';
import { multiplierPass } from './passes/multipliers.js';
import { residualBranchPass } from './passes/residual-branches.js';
import { lrGroupsPass, type LrGroupsPassReport } from './passes/lr-groups.js';
import { setMetadata, supArMetadata } from './passes/metadata.js';
import { reportHtml } from './pages/report-page.js';
import { buildReport, reportJson, summaryText, type CudaReadiness, type TransformReport } from './report.js';
import { checkCudaKernels, checkWebGpuKernels, type KernelReport } from './runtime/kernels.js';
import { analyze, loadRuleSpec, resolveBaseModelWidth } from './transform-deps.js';
import { normalizeForAnalysis, TRAIN_OPSET } from './normalize/index.js';

const RAW_DATA = TensorProtoSchema.field.rawData!;

export interface TransformOptions {
  /** Density ρ of sparsified tensors, in (0, 1]; default 1 (dense). */
  density?: number;
  /** Built-in rule set (`sp`, `mup`, `supar`) or a rule file path; default `supar`. */
  rules?: string;
  /** Width multiplier m_d; or `baseWidth` (m_d = detected d_model / baseWidth); or a base model's shapes. */
  widthMult?: number;
  baseWidth?: number;
  /** A base (proxy) model: m_d from its shapes, and its layer count as the base depth unless `baseDepth` is given. */
  baseModel?: LoadedModel;
  /** Base depth L_base (transformer blocks) for m_L = n_layers / L_base; default: the base model's, else the model's own. */
  baseDepth?: number;
  /** Overrides of σ_base, η_base, α_input, α_output (defaults: DEFAULT_HYPERPARAMETERS). */
  hyperparameters?: Partial<Hyperparameters>;
  seed?: number;
  mask?: MaskMode;
  nm?: { n: number; m: number };
  /** How masks are stored: `bool` (1 byte per entry) or `bits` (8 per byte, unpacked in the graph); default DEFAULT_MASK_STORAGE. */
  maskStorage?: MaskStorage;
  sparsify?: string[];
  dense?: string[];
  /** Per-tensor density by glob, first match wins. */
  densityMap?: DensityEntry[];
  /** Role overrides by glob. */
  roles?: { pattern: string; role: Role }[];
  init?: InitMode;
  truncated?: boolean;
  /** Depth factor on residual output projections: true = the rule's (or 1/√(2L)); a string = that formula. */
  depthFactor?: boolean | string;
  /** Refuse to go on when some tensor could not be classified. */
  strict?: boolean;
  /**
   * Overwrite rewritten float32 tensors inside the input model's own buffers (saves one copy of the weights;
   * the input LoadedModel then holds the new values). Default false: the input is left as it was.
   */
  inPlace?: boolean;
  /** Also build the train-step graph (src/train/train-step.ts); an object passes TrainStepOptions. */
  emitTrain?: boolean | Record<string, unknown>;
  /** Observer of progress: called with each stage ('analyze', then each pass id) as it starts. */
  onStage?: (stage: string) => void;
  /**
   * Leave the new masks and weights to be computed by `writeTransformOutputs`, tensor by tensor, straight into
   * the output's external data (the streaming path: memory stays bounded whatever the model's size). Until
   * then `result.model` holds those tensors without their new values, and the report's value-based numbers
   * (non-zeros, init std) are null. Default false: every value is computed now (the same bytes either way).
   */
  deferValues?: boolean;
  /**
   * Worker threads (passes/job-pool.ts) that read the weights in external data for the analysis, each weight
   * once, spread over the threads (`surveyExternalWeights`); pass the same pool to `writeTransformOutputs`.
   * Default none: the analysis reads them on this thread (the same numbers either way).
   */
  pool?: JobPool;
}

export interface TransformResult {
  model: ModelProto;
  lrGroups: LrGroupsFile;
  report: TransformReport;
  summaryText: string;
  plan: TransformPlan;
  analysis: Analysis;
  /** Where the input's external data resolves (needed to write the model). */
  sourceBaseDir: string;
  sourcePath: string;
  /** Tensors whose values are still to be computed (only with `deferValues`); the writer consumes them. */
  deferred?: DeferredValues;
  /** Rebuilds `report` and `summaryText` from the numbers known now (called by the writer after it computed deferred values). */
  refreshReport: () => void;
  train?: { train: ModelProto; eval?: ModelProto; report: unknown; kernels: { train: KernelReport; eval?: KernelReport }; opsetUpgrade: { from: number; changes: string[] } };
}

export const PASSES: readonly Pass[] = [tiePass, maskPass, initPass, multiplierPass, residualBranchPass, lrGroupsPass];

export async function transform(input: LoadedModel, options: TransformOptions = {}): Promise<TransformResult> {
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError(`--seed ${seed}: must be a non-negative integer`);
  if (options.maskStorage !== undefined && !MASK_STORAGES.includes(options.maskStorage)) {
    throw new UsageError(`--mask-storage '${String(options.maskStorage)}': unknown form; use one of ${MASK_STORAGES.join(', ')}`);
  }
  const loaded = await loadRuleSpec(options.rules ?? 'supar');
  // De-fused contrib ops: analysis, passes and the written model see ai.onnx ops in their place.
  const normalized = normalizeForAnalysis(input.model);
  const source: LoadedModel = normalized.model === input.model ? input : { ...input, model: normalized.model };
  options.onStage?.('analyze');
  const sourceStds = new SourceStds();
  if (options.pool) await surveyExternalWeights(source.model, input.baseDir, options.pool, sourceStds);
  const analysis = analyze(source, [...loaded.overrides, ...(options.roles ?? [])], sourceStds);
  analysis.warnings.unshift(...normalized.warnings);
  const done = input.model.metadataProps.find((p) => p.key === 'supar.rules');
  if (done) {
    // Its masks, multipliers and 1/d_head scales are read as part of the model and rewritten again.
    analysis.warnings.unshift(`the input was already transformed (supar.rules = ${done.value}): its masks, multipliers and attention scales are taken as part of the model and transformed again; start from the original model unless that is what you want`);
  }
  checkStrict(analysis, options.strict ?? false, input.path);
  const { mD, widthSource } = resolveWidth(analysis, options, input);
  const depthFactor = options.depthFactor === true ? loaded.ruleSet.depthFactor ?? DEFAULT_DEPTH_FACTOR : options.depthFactor || undefined;
  const plan = buildPlan(analysis, loaded.ruleSet, {
    density: options.density ?? 1, mD,
    hyperparameters: { ...DEFAULT_HYPERPARAMETERS, ...loaded.hyperparameters, ...definedOnly(options.hyperparameters ?? {}) },
    maskMode: options.mask ?? 'per-tensor', nm: options.nm,
    sparsify: options.sparsify ?? [], dense: options.dense ?? [],
    densityMap: [...(options.densityMap ?? []), ...loaded.densityMap],
    init: options.init ?? 'resample', truncated: options.truncated ?? false, depthFactor, strict: options.strict ?? false,
    nLayersBase: resolveBaseDepth(analysis, options, loaded.overrides),
  });
  const work = cloneSharingData(source.model);
  const deferred = new DeferredValues();
  deferred.inPlace = options.inPlace ?? false;
  const ctx: PassContext = {
    baseDir: input.baseDir, plan, analysis, seed, masks: new Map(), deferred, nodes: labelNodes(work), inPlace: options.inPlace ?? false,
    maskStorage: options.maskStorage, sourceStds,
  };
  const { model, reports } = runPasses(work, ctx, PASSES, options.onStage);
  // The in-memory path computes every value now; the streaming path leaves them to the writer.
  if (!options.deferValues) deferred.materialize();
  const lrGroups = (reports.get('lr-groups') as LrGroupsPassReport).lr_groups;
  setMetadata(model, supArMetadata(plan, lrGroups, seed, options.maskStorage ?? DEFAULT_MASK_STORAGE));
  const result: TransformResult = {
    model, lrGroups, report: undefined as unknown as TransformReport, summaryText: '', plan, analysis, sourceBaseDir: input.baseDir, sourcePath: input.path,
    refreshReport: () => {},
  };
  if (deferred.size > 0) result.deferred = deferred;
  const cuda = [cudaReadiness('forward', checkCudaKernels(model))];
  const webgpu = [cudaReadiness('forward', checkWebGpuKernels(model))];
  let trainOpsetUpgrade: TransformReport['train_opset_upgrade'];
  if (options.emitTrain) {
    const train = await buildTrain(result, typeof options.emitTrain === 'object' ? options.emitTrain : {});
    result.train = train;
    cuda.push(cudaReadiness('train', train.kernels.train));
    if (train.kernels.eval) cuda.push(cudaReadiness('eval', train.kernels.eval));
    webgpu.push(cudaReadiness('train', checkWebGpuKernels(train.train)));
    if (train.eval) webgpu.push(cudaReadiness('eval', checkWebGpuKernels(train.eval)));
    if (train.opsetUpgrade.changes.length > 0) trainOpsetUpgrade = { from: train.opsetUpgrade.from, to: TRAIN_OPSET, changes: train.opsetUpgrade.changes };
  }
  // The report reads the jobs' numbers (non-zeros, init std): built now, and again once deferred values are written.
  result.refreshReport = () => {
    fillMaskReport(reports.get('masks') as MaskPassReport, deferred);
    fillInitReport(reports.get('init') as InitPassReport, deferred);
    const report = buildReport({
      sourceFile: input.path, input: input.model, plan, seed, widthSource, depthFactor: depthFactor ?? null, maskStorage: options.maskStorage, analysis,
      passes: PASSES.map((p) => ({ id: p.id, doc: p.doc })), reports,
    });
    if (normalized.defused.length > 0) report.defused = normalized.defused.map((d) => ({ node: d.node, op: d.op, rule: d.rule, into: d.into }));
    report.cuda = cuda;
    report.webgpu = webgpu;
    if (trainOpsetUpgrade) report.train_opset_upgrade = trainOpsetUpgrade;
    result.report = report;
    result.summaryText = summaryText(report);
  };
  result.refreshReport();
  return result;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkStrict(analysis: Analysis, strict: boolean, file: string): void {
  if (!strict) return;
  const unknown = analysis.params.filter((p) => p.role === 'unknown');
  if (unknown.length === 0) return;
  const shown = unknown.slice(0, 3).map((p) => `'${p.name}' (${p.reason})`).join(', ');
  throw new UserInputError(
    `${path.basename(file)}: --strict: ${unknown.length} tensor(s) could not be classified: ${shown}${unknown.length > 3 ? ', …' : ''}; give them a role with --role GLOB=ROLE`,
    ExitCode.strict,
  );
}

function resolveWidth(analysis: Analysis, o: TransformOptions, input: LoadedModel): { mD: number; widthSource: string } {
  const given = [o.widthMult !== undefined && '--width-mult', o.baseWidth !== undefined && '--base-width', o.baseModel && '--base-model'].filter(Boolean);
  if (given.length > 1) throw new UsageError(`${given.join(' and ')}: give only one way to set the width multiplier`);
  if (o.widthMult !== undefined) {
    if (!(o.widthMult > 0) || !Number.isFinite(o.widthMult)) throw new UsageError(`--width-mult ${o.widthMult}: must be a positive number`);
    return { mD: o.widthMult, widthSource: '--width-mult' };
  }
  if (o.baseWidth !== undefined) {
    if (!(o.baseWidth > 0) || !Number.isFinite(o.baseWidth)) throw new UsageError(`--base-width ${o.baseWidth}: must be a positive number`);
    if (!analysis.dModel) throw new UsageError(`--base-width: could not detect the width of ${path.basename(input.path)}; give --width-mult instead`);
    return { mD: analysis.dModel / o.baseWidth, widthSource: `d_model ${analysis.dModel} / --base-width ${o.baseWidth}` };
  }
  if (o.baseModel) {
    const mD = resolveBaseModelWidth(input, o.baseModel);
    return { mD, widthSource: `--base-model ${path.basename(o.baseModel.path)}` };
  }
  return { mD: 1, widthSource: 'default (no base given)' };
}

/** L_base: --base-depth, else the base model's layer count (its analysis), else undefined (m_L = 1). */
function resolveBaseDepth(analysis: Analysis, o: TransformOptions, overrides: { pattern: string; role: Role }[]): number | undefined {
  if (o.baseDepth !== undefined) {
    if (!(Number.isInteger(o.baseDepth) && o.baseDepth >= 1)) throw new UsageError(`--base-depth ${o.baseDepth}: must be a whole number of blocks >= 1`);
    return o.baseDepth;
  }
  if (!o.baseModel) return undefined;
  // Models without countable layers (an MLP) keep m_L = 1; the width still comes from the base model.
  if (analysis.nLayers === undefined) return undefined;
  return analyze(o.baseModel, overrides).nLayers;
}

/**
 * A deep copy of the model's structure whose tensors share the input's bytes (no copy of gigabytes): bytes
 * are detached while cloning, then both sides point at the same arrays. Passes replace `rawData`, never
 * write into it, so the input stays as it was.
 */
export function cloneSharingData(model: ModelProto): ModelProto {
  const tensors: TensorProto[] = [];
  forEachTensor(model, (t) => tensors.push(t));
  // raw_data is proto2 `optional`: a tensor whose values sit in a typed field (int64_data …) has it unset, and
  // assigning even an empty array would set it (onnxruntime then rejects "insufficient raw_data").
  const saved = tensors.map((t) => (isFieldSet(t, RAW_DATA) ? t.rawData : undefined));
  let copy: ModelProto;
  try {
    tensors.forEach((t, i) => { if (saved[i] !== undefined) clearField(t, RAW_DATA); });
    copy = clone(ModelProtoSchema, model);
  } finally {
    tensors.forEach((t, i) => { if (saved[i] !== undefined) t.rawData = saved[i]!; });
  }
  let i = 0;
  forEachTensor(copy, (t) => {
    const raw = saved[i++];
    if (raw !== undefined) t.rawData = raw;
  });
  return copy;
}

function cudaReadiness(graph: CudaReadiness['graph'], r: KernelReport): CudaReadiness {
  return { graph, nodes: r.nodes, fallbacks: r.fallbacks.map((f) => ({ ...f })), types_unknown: r.typesUnknown };
}

/** The train-step graph (src/train/train-step.ts) over the rewritten model; loaded only when asked for. */
async function buildTrain(result: TransformResult, opts: Record<string, unknown>): Promise<NonNullable<TransformResult['train']>> {
  const { buildTrainStep } = await import('./train/train-step.js');
  const { objectiveOfModel } = await import('./train/objective.js');
  // The same objective `train` picks (src/train/objective.ts), unless the caller passes a loss or objective.
  const objective = opts.loss || opts.objective ? undefined : objectiveOfModel(result.model, { readoutOutput: result.analysis.logits?.output, requested: opts.objectiveKind as never });
  const step = buildTrainStep(result.model, result.sourceBaseDir, result.lrGroups, {
    optimizer: { kind: 'adamw' }, ...(objective ? { objective } : {}), ...opts,
  } as Parameters<typeof buildTrainStep>[3]);
  return { train: step.train, eval: step.eval, report: { io: step.io, kernels: step.kernelReport }, kernels: step.kernelReport, opsetUpgrade: step.opsetUpgrade };
}

export interface WriteOutputsOptions {
  externalData?: ExternalDataMode;
  /** Worker threads computing deferred values (default: os.availableParallelism(); 1 = none). */
  threads?: number;
  /** Those threads, already started (e.g. the pool given to `transform`); left open. */
  pool?: JobPool;
  /**
   * Free bytes assumed in the output folder instead of asking the file system (fs.statfsSync): a test hook,
   * also read by the CLI from SUPAR_FREE_BYTES.
   */
  freeBytes?: number;
  /** Also write the report as a page, `<stem>.report.html` (default true). */
  html?: boolean;
}

export interface WrittenOutputs {
  model: string;
  data?: string;
  lrGroups: string;
  report: string;
  reportHtml?: string;
  train?: string;
  eval?: string;
}

/** `x.supar.onnx` → `{model: x.supar.onnx, lrGroups: x.supar.lr.json, report: x.supar.report.json, …}`. */
export function outputPaths(outPath: string): { model: string; lrGroups: string; report: string; reportHtml: string; train: string; eval: string } {
  const abs = path.resolve(outPath);
  const stem = abs.endsWith('.onnx') ? abs.slice(0, -'.onnx'.length) : abs;
  return { model: `${stem}.onnx`, lrGroups: `${stem}.lr.json`, report: `${stem}.report.json`, reportHtml: `${stem}.report.html`, train: `${stem}.train.onnx`, eval: `${stem}.eval.onnx` };
}

/** The default output next to the input: `dir/model.onnx` → `dir/model.supar.onnx`. */
export function defaultOutputPath(inputPath: string): string {
  const dir = path.dirname(path.resolve(inputPath));
  const base = path.basename(inputPath).replace(/\.onnx$/i, '');
  return path.join(dir, `${base}.supar.onnx`);
}

/** Bytes of the report, LR groups and page written beside the model (they are small; a generous bound). */
const SIDE_FILES_BYTES = 16 << 20;

/**
 * Refuses, before anything is computed or written, an output folder without room for the outputs (temp files
 * are written beside their targets, so the folder needs all of them at once).
 */
export function checkFreeSpace(writes: { bytes: number }[], dir: string, freeBytes?: number): void {
  const need = writes.reduce((s, w) => s + w.bytes, 0) + SIDE_FILES_BYTES;
  const free = freeBytes ?? freeBytesIn(dir);
  if (free === undefined || need <= free) return;
  throw new UserInputError(
    `${dir}: not enough disk space for the outputs: they need ${formatBytes(need)} (${need} bytes) and the folder's file system has ${formatBytes(free)} (${free} bytes) free; free some space or write elsewhere with -o`,
    ExitCode.io,
  );
}

function freeBytesIn(dir: string): number | undefined {
  try {
    const s = fs.statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined; // a file system that cannot say: the write itself reports a full disk
  }
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Refuses output paths that would overwrite the input, and output folders that cannot be written. */
export function checkOutputPath(outPath: string, inputPath: string): void {
  const out = outputPaths(outPath);
  const input = path.resolve(inputPath);
  for (const p of Object.values(out)) {
    if (p === input) throw new UsageError(`-o ${outPath}: would overwrite the input model; choose another output name`);
  }
  const dir = path.dirname(out.model);
  try {
    if (!fs.statSync(dir).isDirectory()) throw new Error('not a folder');
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new UserInputError(`-o ${outPath}: folder '${dir}' does not exist or is not writable; create it or choose another output`, ExitCode.io);
  }
}

/**
 * Writes the transform's outputs, each atomically. Every model (forward, train step, eval) is first loaded by
 * onnxruntime from its temp file (src/onnx/load-check.ts); if one is refused none is written (exit 1).
 */
export async function writeTransformOutputs(result: TransformResult, outPath: string, opts: WriteOutputsOptions = {}): Promise<WrittenOutputs> {
  checkOutputPath(outPath, result.sourcePath);
  const out = outputPaths(outPath);
  const wopts = (graph: string) => ({ externalData: opts.externalData ?? 'auto', sourceBaseDir: result.sourceBaseDir, graph, deferred: result.deferred });
  const models = [{ model: result.model, file: out.model, opts: wopts('transformed model') }];
  if (result.train) {
    models.push({ model: result.train.train, file: out.train, opts: wopts('train-step graph') });
    if (result.train.eval) models.push({ model: result.train.eval, file: out.eval, opts: wopts('eval graph') });
  }
  checkFreeSpace(models.map((m) => ({ bytes: estimateWriteBytes(m.model, m.file, m.opts) })), path.dirname(out.model), opts.freeBytes);
  const threads = opts.threads ?? defaultThreads();
  const ownPool = !opts.pool && result.deferred && threads > 1 ? new JobPool(threads) : undefined;
  if (result.deferred) result.deferred.pool = opts.pool ?? ownPool;
  let written: WrittenFiles | undefined;
  try {
    [written] = await writeModelsChecked(models);
  } finally {
    await ownPool?.close();
    result.deferred?.forgetWritten();
  }
  // The report's non-zeros and init std come from the values just computed.
  if (result.deferred) result.refreshReport();
  writeFileAtomic(out.lrGroups, new TextEncoder().encode(`${JSON.stringify(result.lrGroups, null, 2)}\n`));
  writeFileAtomic(out.report, new TextEncoder().encode(reportJson(result.report)));
  const files: WrittenOutputs = { model: written!.model, data: written!.data, lrGroups: out.lrGroups, report: out.report };
  if (opts.html ?? true) {
    writeFileAtomic(out.reportHtml, new TextEncoder().encode(reportHtml(result.report)));
    files.reportHtml = out.reportHtml;
  }
  if (result.train) {
    files.train = out.train;
    if (result.train.eval) files.eval = out.eval;
  }
  return files;
}
