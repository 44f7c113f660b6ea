/**
 * Initializer values for (possibly masked) weights. `std` is always the standard deviation of the NON-ZERO
 * (kept) entries: DESIGN.md "σ² is the variance of the non-zero weights"; the paper's σ²_W (App. D.3.2), and
 * nanoGPT-mup draws the dense original with that std before masking. Masked entries are written as exact 0.
 */
import { UserInputError } from '../errors.js';
import type { Rng } from './rng.js';

/** Truncation point of the truncated normal, in units of the underlying normal's σ. */
export const TRUNCATION_SIGMAS = 2;

/**
 * Standard deviation of N(0, 1) truncated to [−2, 2]: sqrt(1 − 2·2·φ(2) / (2Φ(2) − 1)) with φ(2) = e^{−2}/√(2π)
 * = 0.05399096651318806 and 2Φ(2) − 1 = erf(√2) = 0.9544997361036416, i.e. sqrt(1 − 0.22625843…) = 0.87962566…
 * (checked by numerical integration in test/init.test.ts).
 */
export const TRUNCATED_NORMAL_STD = 0.8796256610342398;

export interface SampleInitOptions {
  /**
   * Truncated normal: draws z ~ N(0, 1) conditioned on |z| ≤ 2 (rejection), then multiplies by
   * std / TRUNCATED_NORMAL_STD so the non-zeros' std equals `std`; values then lie within ±2.2737·std.
   */
  truncated?: boolean;
  /** Mean of the non-zeros (default 0). */
  mean?: number;
}

/**
 * Fills `values` in place: kept entries (mask 1, or all without a mask) ~ N(mean, std²) (or the rescaled
 * truncated normal), masked entries exactly 0. Draws only for kept entries, in index order.
 */
export function sampleInit(values: Float32Array, mask: Uint8Array | undefined, std: number, rng: Rng, opts: SampleInitOptions = {}): void {
  checkMaskLength(values, mask);
  if (!(std >= 0) || !Number.isFinite(std)) throw new UserInputError(`init std ${std} is not a finite non-negative number; check the rule's initStd formula`);
  const mean = opts.mean ?? 0;
  const draw = opts.truncated ? truncatedDraw(rng, std / TRUNCATED_NORMAL_STD) : () => std * rng.normal();
  if (!mask) {
    for (let i = 0; i < values.length; i++) values[i] = mean + draw();
    return;
  }
  for (let i = 0; i < values.length; i++) values[i] = mask[i] ? mean + draw() : 0;
}

function truncatedDraw(rng: Rng, scale: number): () => number {
  return () => {
    for (;;) {
      const z = rng.normal();
      if (z >= -TRUNCATION_SIGMAS && z <= TRUNCATION_SIGMAS) return scale * z;
    }
  };
}

export interface NonZeroStats {
  /** Entries counted: kept by the mask and non-zero. */
  count: number;
  mean: number;
  /** Population std (divide by count) about the mean; 0 when count is 0. */
  std: number;
}

/** Mean and std of the kept, non-zero entries (float64 accumulation, two passes). */
export function nonZeroStats(values: Float32Array, mask?: Uint8Array): NonZeroStats {
  checkMaskLength(values, mask);
  let count = 0;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== 0 && (!mask || mask[i])) { count++; sum += v; }
  }
  if (count === 0) return { count: 0, mean: 0, std: 0 };
  const mean = sum / count;
  let squares = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== 0 && (!mask || mask[i])) squares += (v - mean) * (v - mean);
  }
  return { count, mean, std: Math.sqrt(squares / count) };
}

/**
 * Multiplies the kept values by std / (their current non-zero std), and zeroes the masked ones. Returns the
 * factor and the std before. Throws when the kept non-zeros have no spread (nothing to rescale).
 */
export function rescaleToStd(values: Float32Array, mask: Uint8Array | undefined, std: number, what = 'tensor'): { scale: number; stdBefore: number } {
  const before = nonZeroStats(values, mask);
  if (!(before.std > 0)) {
    throw new UserInputError(`${what}: cannot rescale to std ${std}: its kept values have no spread (${before.count} non-zeros, std 0); use --init resample`);
  }
  const scale = std / before.std;
  for (let i = 0; i < values.length; i++) values[i] = !mask || mask[i] ? values[i]! * scale : 0;
  return { scale, stdBefore: before.std };
}

/** Zeroes the masked entries (mask 0) in place. */
export function applyMask(values: Float32Array, mask: Uint8Array): void {
  checkMaskLength(values, mask);
  for (let i = 0; i < values.length; i++) if (!mask[i]) values[i] = 0;
}

function checkMaskLength(values: Float32Array, mask: Uint8Array | undefined): void {
  if (mask && mask.length !== values.length) {
    throw new UserInputError(`mask has ${mask.length} entries but the tensor has ${values.length}`);
  }
}
