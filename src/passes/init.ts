/**
 * Initial values of the planned parameters (DESIGN.md "Semantics"; supar-rules.md §3, §8.3):
 * - `resample` (default): the non-zeros ~ N(0, initStd²) (or a truncated normal with that std), drawn from
 *   the seeded per-tensor stream (purpose "init"); SµPar's hidden std is σ_base/√(m_d·m_ρ) with the optional
 *   depth factor already folded in by the plan.
 * - `rescale`: multiply the existing non-zeros so that their std is initStd.
 * - `keep`: leave the values.
 * In every mode a masked weight's pruned entries become exactly 0. Measures the non-zeros' std before and
 * after for the report. One decode and one encode per touched tensor; untouched tensors keep their bytes.
 */
import * as os from 'node:os';
import type { ModelProto, TensorProto } from 'onnx-buf';
import { DataType } from '../onnx/dtype.js';
import { isExternal } from '../onnx/external.js';
import { GraphIndex } from '../onnx/ir.js';
import { setTensorFloats, tensorToFloat32 } from '../onnx/tensor.js';
import type { ParamPlan } from '../plan.js';
import { applyMask, rescaleToStd, sampleInit } from './init-sampling.js';
import type { Pass, PassContext, PassResult } from './manager.js';
import { Rng } from './rng.js';

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
      const mask = ctx.masks.get(p.name)?.bits;
      const wantsValues = p.initStd !== null && ctx.plan.init !== 'keep';
      if (!mask && !wantsValues) continue;
      const t = index.findInitializer(p.name);
      if (!t || !FLOAT_TYPES.has(t.dataType)) continue;
      report.tensors.push(initTensor(t, p, mask, ctx));
    }
    return { model, report };
  },
};

function initTensor(t: TensorProto, p: ParamPlan, mask: Uint8Array | undefined, ctx: PassContext): InitReportEntry {
  const values = readFloats(t, ctx.baseDir);
  const before = nonZeroMoments(values);
  let action: InitReportEntry['action'] = mask ? 'masked' : 'kept';
  if (p.initStd !== null && ctx.plan.init === 'resample') {
    sampleInit(values, mask, p.initStd, Rng.forTensor(ctx.seed, p.name, 'init'), { truncated: ctx.plan.truncated });
    action = 'resampled';
  } else if (p.initStd !== null && ctx.plan.init === 'rescale') {
    rescaleToStd(values, mask, p.initStd, `tensor '${p.name}'`);
    action = 'rescaled';
  } else if (mask) {
    applyMask(values, mask);
  }
  if (ctx.inPlace && isInlineFloat32(t)) t.rawData.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  else setFloatsShared(t, values);
  const after = nonZeroMoments(values);
  return {
    tensor: p.name, action, target_std: p.initStd, std_before: before.std, std_after: after.std, non_zeros: after.count,
  };
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** A float32 tensor whose raw_data holds exactly its values (so they can be copied in and out with memcpy). */
function isInlineFloat32(t: TensorProto): boolean {
  return LITTLE_ENDIAN && t.dataType === DataType.FLOAT && !isExternal(t) && t.rawData.byteLength === 4 * t.dims.reduce((a, b) => a * Number(b), 1);
}

/** The tensor's values as a fresh float32 array; raw float32 data is copied with one memcpy. */
function readFloats(t: TensorProto, baseDir: string): Float32Array {
  if (!isInlineFloat32(t)) return tensorToFloat32(t, baseDir);
  const out = new Float32Array(t.rawData.byteLength / 4);
  new Uint8Array(out.buffer).set(t.rawData);
  return out;
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

/** Like setTensorFloats, but a float32 tensor takes the array's own bytes (no second copy of a big weight). */
function setFloatsShared(t: TensorProto, values: Float32Array): void {
  if (t.dataType !== DataType.FLOAT) {
    setTensorFloats(t, values);
    return;
  }
  setTensorFloats(t, new Float32Array(0));
  t.rawData = new Uint8Array(values.buffer, values.byteOffset, values.byteLength) as Uint8Array<ArrayBuffer>;
}
