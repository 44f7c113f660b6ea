/** Study results built by hand (no training) for the page tests. */
import type { CoordCheckResult } from '../src/experiments/coord-check.js';
import type { SweepResult } from '../src/experiments/sweep.js';

/** A small sweep result (no training): two rule sets, two densities, three LRs, one diverged run. */
export function syntheticSweep(): SweepResult {
  const lrs = [2 ** -9, 2 ** -7, 2 ** -5];
  const points = ['sp', 'supar'].flatMap((rules) => [1, 0.25].flatMap((density) => lrs.map((lr, i) => {
    const diverged = rules === 'sp' && density === 1 && i === 2;
    const finalLoss = diverged ? null : 3 + Math.abs(i - (rules === 'sp' ? density * 2 : 1)) / 4;
    return { rules, density, lr, log2Lr: Math.log2(lr), status: diverged ? 'diverged' as const : 'ok' as const, finalLoss, divergedAtStep: diverged ? 2 : null, losses: [4, finalLoss ?? NaN] };
  })));
  const optima = ['sp', 'supar'].flatMap((rules) => [1, 0.25].map((density) => {
    const best = points.filter((p) => p.rules === rules && p.density === density && p.finalLoss !== null).sort((a, b) => a.finalLoss! - b.finalLoss!)[0]!;
    return { rules, density, lr: best.lr, log2Lr: best.log2Lr, finalLoss: best.finalLoss, atEdge: best.lr === lrs[0] || best.lr === lrs[2] };
  }));
  return { format: 'supar-sweep/1', options: { rules: ['sp', 'supar'], densities: [1, 0.25], lrs, steps: 2, seed: 0, lastK: 1 }, points, optima, optimumSpreadLog2: { sp: 2, supar: 0 } };
}

/** A small coordinate-check result (no training): one rule set flat, one drifting. */
export function syntheticCoordCheck(): CoordCheckResult {
  const records = ['sp', 'supar'].flatMap((rules) => [1, 0.5].flatMap((density) => [0, 1].map((step) => ({
    rules, density, step, block: '/h.0/attn/out', kind: 'attention' as const, layer: 0,
    meanAbs: rules === 'sp' ? (1 + step) / density : 1.1,
  }))));
  return {
    format: 'supar-coord-check/1',
    options: { rules: ['sp', 'supar'], densities: [1, 0.5], steps: 2, lr: 2 ** -8, seed: 0, threshold: 1.5 },
    records,
    verdicts: [
      { rules: 'sp', block: '/h.0/attn/out', kind: 'attention', layer: 0, maxRatio: 2, worstStep: 0, pass: false },
      { rules: 'supar', block: '/h.0/attn/out', kind: 'attention', layer: 0, maxRatio: 1, worstStep: 0, pass: true },
    ],
    losses: ['sp', 'supar'].flatMap((rules) => [1, 0.5].map((density) => ({ rules, density, losses: [5.5, 5.25] }))),
  };
}
