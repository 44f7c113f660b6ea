/**
 * Static sparsity masks (DESIGN.md "Semantics"; paper §3.1, Y = X(W ⊙ M)). For every weight the plan gives
 * density < 1: draw the mask from the seeded per-tensor stream (src/passes/rng.ts, purpose "mask"), store it
 * as an initializer `<W>__mask` (`--mask-storage`, ./mask-storage.ts: BOOL, 1 byte per entry, or UINT8 bits,
 * 8 entries per byte), and insert the nodes that turn it into W's type (a `Cast`, or the unpack) and
 * `Mul(W, maskf)` in front of EVERY consumer of W — tied uses and outer-scope reads inside If/Loop/Scan bodies
 * included — so the product keeps pruned entries at zero through training (their gradient is masked). The
 * weight's masked entries are zeroed by the init pass. The mask initializer sits right after its weight, and
 * its bytes are a deferred job's (deferred.ts) that the init pass extends with the weight's new values: one
 * draw, written next to each other.
 */
import type { ModelProto, TensorProto } from 'onnx-buf';
import { node } from '../onnx/build.js';
import { DataType } from '../onnx/dtype.js';
import { GraphIndex, NameAuthority, opsetVersion } from '../onnx/ir.js';
import { makeByteTensor } from '../onnx/tensor.js';
import type { MaskMode, ParamPlan } from '../plan.js';
import { addInitializer, addInitializerAfter, redirectUses } from './graph-edit.js';
import type { DeferredValues } from './deferred.js';
import type { DrawnMask, Pass, PassContext, PassResult } from './manager.js';
import { checkMaskSpec, drawMask, type MaskSpec, type MaskMode as PatternMode } from './mask-patterns.js';
import { DEFAULT_MASK_STORAGE, maskStoredBytes, MaskUseBuilder, packedLength, type MaskStorage } from './mask-storage.js';
import { Rng } from './rng.js';
import type { TensorJob } from './tensor-jobs.js';

export interface MaskReportEntry {
  tensor: string;
  mask: string;
  mode: MaskMode;
  density: number;
  elements: number;
  non_zeros: number;
  /** Inputs rewired to read the masked weight (direct and inside subgraphs). */
  uses_rewired: number;
}

export interface MaskPassReport {
  masks: MaskReportEntry[];
  mask_bytes: number;
  masked_weight_bytes: number;
}

const PATTERN_MODE: Record<MaskMode, PatternMode> = { 'per-tensor': 'exact', bernoulli: 'bernoulli', 'per-row': 'per-row', 'n:m': 'n:m' };

/** Bytes per element of the float types a mask multiplies. */
function bytesPerElement(dataType: number): number {
  return dataType === DataType.DOUBLE ? 8 : dataType === DataType.FLOAT16 || dataType === DataType.BFLOAT16 ? 2 : 4;
}

/** What to draw for one planned weight's mask. */
export function maskSpecFor(p: ParamPlan, nm?: { n: number; m: number }): MaskSpec {
  const rank = p.shape.length;
  const inputAxis = p.inputAxis ?? 0;
  const outputAxis = p.outputAxis ?? (rank > 1 ? rank - 1 : 0);
  return {
    shape: p.shape, density: p.density, mode: PATTERN_MODE[p.maskMode ?? 'per-tensor'],
    n: p.maskMode === 'n:m' ? nm?.n : undefined, m: p.maskMode === 'n:m' ? nm?.m : undefined,
    inputAxis, outputAxis, name: p.name,
  };
}

/** Draws the mask of one planned weight as 0/1 bytes (pure given seed and name). */
export function maskFor(p: ParamPlan, seed: number, nm?: { n: number; m: number }): Uint8Array {
  return drawMask(maskSpecFor(p, nm), Rng.forTensor(seed, p.name, 'mask'));
}

/** Number of 1 bytes in a 0/1 mask, four bytes per step (each byte is 0 or 1, so a word's bytes sum to < 256). */
export function countOnes(bits: Uint8Array): number {
  let n = 0;
  let i = 0;
  if (bits.byteOffset % 4 === 0) {
    const words = new Uint32Array(bits.buffer, bits.byteOffset, bits.byteLength >>> 2);
    for (let w = 0; w < words.length; w++) n += Math.imul(words[w]!, 0x01010101) >>> 24;
    i = words.length * 4;
  }
  for (; i < bits.length; i++) n += bits[i]!;
  return n;
}

export const maskPass: Pass<MaskPassReport> = {
  id: 'masks',
  doc: 'store a seeded static mask per sparsified weight and multiply the weight by it before every use',
  run(model: ModelProto, ctx: PassContext): PassResult<MaskPassReport> {
    const g = model.graph!;
    const names = new NameAuthority(model);
    const index = new GraphIndex(model);
    const report: MaskPassReport = { masks: [], mask_bytes: 0, masked_weight_bytes: 0 };
    const front = [];
    const storage = ctx.maskStorage ?? DEFAULT_MASK_STORAGE;
    const maskUses = new MaskUseBuilder(names, opsetVersion(model) ?? 13);
    for (const p of ctx.plan.params) {
      if (p.density >= 1 || !p.maskMode) continue;
      const spec = maskSpecFor(p, ctx.plan.nm);
      checkMaskSpec(spec);
      const job: TensorJob = { name: p.name, seed: ctx.seed, elements: p.elements, mask: spec };
      const maskName = names.fresh(`${p.name}__mask`);
      const maskF = names.fresh(`${p.name}__maskf`);
      const masked = names.fresh(`${p.name}__masked`);
      const stored = emptyMaskInitializer(maskName, p.shape, storage);
      addInitializerAfter(g, p.name, stored);
      job.maskStorage = storage;
      ctx.deferred.add(stored, job, 'mask');
      const unpack = maskUses.nodes(stored, p.name, p.shape, p.dataType, maskF);
      const mul = node('Mul', [p.name, maskF], [masked], {}, names.fresh(`supar.mask_mul.${p.name}`));
      const rewired = redirectUses(index, p.name, masked);
      front.push(...unpack, mul);
      ctx.masks.set(p.name, { name: maskName, spec, job } satisfies DrawnMask);
      report.masks.push({
        tensor: p.name, mask: maskName, mode: p.maskMode, density: p.density, elements: p.elements,
        non_zeros: NaN, uses_rewired: rewired, // filled from the job's count (fillMaskReport)
      });
      report.mask_bytes += maskStoredBytes(stored);
      report.masked_weight_bytes += p.elements * bytesPerElement(p.dataType);
    }
    maskUses.initializers.forEach((t) => addInitializer(g, t));
    g.node.unshift(...front);
    return { model, report };
  },
};

/** The mask initializer in `storage`'s type and shape (mask-storage.ts maskInitializer), its bytes left to its job. */
function emptyMaskInitializer(name: string, shape: number[], storage: MaskStorage): TensorProto {
  const n = shape.reduce((a, b) => a * b, 1);
  return storage === 'bool' ? makeByteTensor(name, shape, new Uint8Array(0), DataType.BOOL) : makeByteTensor(name, [packedLength(n)], new Uint8Array(0), DataType.UINT8);
}

/** The mask report's non-zeros, from the jobs' counts (once their values are computed). */
export function fillMaskReport(report: MaskPassReport, deferred: DeferredValues): void {
  for (const m of report.masks) {
    const n = deferred.stats.get(m.tensor)?.maskNonZeros;
    if (n !== undefined) m.non_zeros = n;
  }
}
