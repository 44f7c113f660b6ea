/** Study results built by hand (no training) for the page tests. */
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
