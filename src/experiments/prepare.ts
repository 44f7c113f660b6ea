/**
 * The default `PrepareModel`: the project's own transform (src/transform.ts) of the user's model for each
 * (rule set, density, seed), with the block outputs the analysis names (attention and MLP block outputs,
 * attention logits, output logits) that still exist as values of the transformed graph.
 */
import { readModel } from '../onnx/codec.js';
import { transform } from '../transform.js';
import type { BlockOutput } from '../analysis/types.js';
import type { Hyperparameters } from '../rules/types.js';
import type { ModelProto } from 'onnx-buf';
import type { PrepareModel } from './train-run.js';

export interface PreparerOptions {
  widthMult?: number;
  /** The base (proxy) model: m_d and m_L of each run come from comparing with it (`--models`, `--base-model`). */
  baseModelPath?: string;
  /** Hyperparameters (σ_base, α_input, α_output, …) per rule-set id; absent = the rule set's defaults. */
  hyperparameters?: Record<string, Partial<Hyperparameters>>;
}

export function transformPreparer(modelPath: string, opts: PreparerOptions = {}): PrepareModel {
  const loaded = readModel(modelPath);
  const baseModel = opts.baseModelPath ? readModel(opts.baseModelPath) : undefined;
  return async (rules, density, seed) => {
    const res = await transform(loaded, { rules, density, seed, widthMult: opts.widthMult, baseModel, hyperparameters: opts.hyperparameters?.[rules] });
    // The stream after the last block: the depth coordinate check's statistic (CompleteP Fig. 7).
    const last = res.analysis.residualBranches.at(-1);
    const stream = last ? [{ value: last.sum, kind: 'residual_stream' as const, ...(last.layer !== undefined ? { layer: last.layer } : {}) }] : [];
    return { model: res.model, baseDir: loaded.baseDir, lrGroups: res.lrGroups, blocks: blocksPresent([...res.analysis.blocks, ...stream], res.model) };
  };
}

/** Blocks whose value is still produced by a node (or is a graph output) of `model`. */
export function blocksPresent(blocks: BlockOutput[], model: ModelProto): BlockOutput[] {
  const g = model.graph;
  if (!g) return [];
  const values = new Set<string>([...g.node.flatMap((n) => n.output), ...g.output.map((o) => o.name)]);
  return blocks.filter((b) => values.has(b.value));
}
