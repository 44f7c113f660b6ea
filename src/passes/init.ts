/**
 * Initial values of the planned parameters (DESIGN.md "Semantics"; supar-rules.md §3, §8.3):
 * - `resample` (default): the non-zeros ~ N(0, initStd²) (or a truncated normal with that std), drawn from
 *   the seeded per-tensor stream (purpose "init"); SµPar's hidden std is σ_base/√(m_d·m_ρ) with the optional
 *   depth factor already folded in by the plan.
 * - `rescale`: multiply the existing non-zeros so that their std is initStd.
 * - `keep`: leave the values.
 * In every mode a masked weight's pruned entries become exactly 0. Measures the non-zeros' std before and
 * after for the report. Untouched tensors keep their bytes. The values are computed by the weight's job
 * (tensor-jobs.ts, chunk by chunk), when the writer reaches the tensor or all at once (deferred.ts).
 */
import type { ModelProto, TensorProto } from 'onnx-buf';
import { UserInputError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { externalInfo, isExternal, resolveExternalPath } from '../onnx/external.js';
import { GraphIndex } from '../onnx/ir.js';
import { tensorDataBytes, tensorRawBytes } from '../onnx/tensor.js';
import type { InitMode, ParamPlan } from '../plan.js';
import type { DeferredValues } from './deferred.js';
import type { Pass, PassContext, PassResult } from './manager.js';
import type { TensorJob, ValueSource } from './tensor-jobs.js';

export interface InitReportEntry {
  tensor: string;
  action: 'resampled' | 'rescaled' | 'kept' | 'masked';
  target_std: number | null;
  /** Std of the non-zero entries before and after (population std, float64 accumulation). */
  std_before: number;
  std_after: number;
  non_zeros: number;
}

export interface InitPassReport {
  tensors: InitReportEntry[];
}

const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

export const initPass: Pass<InitPassReport> = {
  id: 'init',
  doc: 'resample, rescale or keep the non-zeros of each planned parameter, and zero its masked entries',
  run(model: ModelProto, ctx: PassContext): PassResult<InitPassReport> {
    const index = new GraphIndex(model);
    const report: InitPassReport = { tensors: [] };
    for (const p of ctx.plan.params) {
      const mask = ctx.masks.get(p.name);
      const wantsValues = p.initStd !== null && ctx.plan.init !== 'keep';
      if (!mask && !wantsValues) continue;
      const t = index.findInitializer(p.name);
      if (!t || !FLOAT_TYPES.has(t.dataType)) continue;
      const action = initAction(p, ctx.plan.init, mask !== undefined);
      if (action === 'resampled') checkStd(p.initStd!);
      // One job per weight: the mask pass's (one draw for the mask and the zeros) or a new one.
      const job: TensorJob = mask?.job ?? { name: p.name, seed: ctx.seed, elements: p.elements };
      job.init = { action, std: p.initStd, truncated: ctx.plan.truncated, dataType: t.dataType, source: valueSource(t, ctx.baseDir) };
      ctx.deferred.add(t, job, 'weight');
      // The numbers are the job's (fillInitReport), once its values are computed.
      report.tensors.push({ tensor: p.name, action, target_std: p.initStd, std_before: NaN, std_after: NaN, non_zeros: NaN });
    }
    return { model, report };
  },
};

function initAction(p: ParamPlan, mode: InitMode, masked: boolean): InitReportEntry['action'] {
  if (p.initStd !== null && mode === 'resample') return 'resampled';
  if (p.initStd !== null && mode === 'rescale') return 'rescaled';
  return masked ? 'masked' : 'kept';
}

function checkStd(std: number): void {
  if (!(std >= 0) || !Number.isFinite(std)) throw new UserInputError(`init std ${std} is not a finite non-negative number; check the rule's initStd formula`);
}

/** Where the tensor's current values are: its external data file's byte range, or its bytes in memory. */
export function valueSource(t: TensorProto, baseDir: string): ValueSource {
  if (isExternal(t)) {
    const { offset, length } = externalInfo(t);
    return { kind: 'file', file: resolveExternalPath(t, baseDir), offset, length: length ?? tensorDataBytes(t) };
  }
  return { kind: 'bytes', bytes: t.rawData.byteLength > 0 ? t.rawData : tensorRawBytes(t, baseDir) };
}

/** The init report's numbers, from the jobs' statistics (once their values are computed). */
export function fillInitReport(report: InitPassReport, deferred: DeferredValues): void {
  for (const e of report.tensors) {
    const s = deferred.stats.get(e.tensor)?.init;
    if (s) Object.assign(e, s);
  }
}

/**
 * Population std of the non-zero entries, one pass in float64: std² = E[x²] − E[x]² (weights have std ≫ |mean|,
 * so the subtraction loses nothing at the 6 reported digits). Zeros add nothing to the sums, so only the count
 * looks at them; four independent accumulators keep the float adds from waiting on each other. After the
 * init pass the masked entries are exactly 0, so the non-zeros are the kept entries (a mask is not needed).
 */
export function nonZeroMoments(values: Float32Array): { count: number; std: number } {
  let [s0, s1, s2, s3, q0, q1, q2, q3, count] = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  const n4 = values.length - (values.length % 4);
  for (let i = 0; i < n4; i += 4) {
    const a = values[i]!, b = values[i + 1]!, c = values[i + 2]!, d = values[i + 3]!;
    s0 += a; s1 += b; s2 += c; s3 += d;
    q0 += a * a; q1 += b * b; q2 += c * c; q3 += d * d;
    count += (a !== 0 ? 1 : 0) + (b !== 0 ? 1 : 0) + (c !== 0 ? 1 : 0) + (d !== 0 ? 1 : 0);
  }
  for (let i = n4; i < values.length; i++) {
    const v = values[i]!;
    s0 += v; q0 += v * v; count += v !== 0 ? 1 : 0;
  }
  if (count === 0) return { count, std: 0 };
  const mean = (s0 + s1 + s2 + s3) / count;
  return { count, std: Math.sqrt(Math.max(0, (q0 + q1 + q2 + q3) / count - mean * mean)) };
}
