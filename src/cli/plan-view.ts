/**
 * `inspect model.onnx --density …`: the dry-run view of the transform: roles with their reasons and the
 * planned rewrites (masks, init, multipliers, attention sites, LR groups), without writing anything.
 * Called by the inspect command when a transform flag is given.
 */
import { readModel } from '../onnx/codec.js';
import { transform } from '../transform.js';
import { toTransformOptions, type TransformFlags } from './transform-options.js';

const PLAN_FLAGS: (keyof TransformFlags)[] = ['density', 'rules', 'widthMult', 'baseWidth', 'baseModel', 'nm', 'mask', 'sparsify', 'dense', 'densityMap', 'role'];

/** True when the inspect flags ask for the plan view (any transform flag such as --density). */
export function wantsPlanView(flags: object): boolean {
  return PLAN_FLAGS.some((k) => (flags as Record<string, unknown>)[k] !== undefined);
}

export async function planView(file: string, flags: TransformFlags & { json?: boolean }): Promise<string> {
  // Values are computed for their numbers only, one tensor at a time (nothing kept: bounded memory).
  const result = await transform(readModel(file), { ...toTransformOptions(flags), deferValues: true });
  result.deferred?.measure();
  result.refreshReport();
  if (flags.json) return `${JSON.stringify(result.report, null, 2)}\n`;
  const why = result.report.tensors.map((t) => `  ${t.name}: ${t.role} — ${t.reason}${t.trained ? `; ${t.density_reason}` : ''}`);
  return `${result.summaryText}roles:\n${why.join('\n')}\n(plan only: nothing written)\n`;
}
