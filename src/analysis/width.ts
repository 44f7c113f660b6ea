/**
 * Width of the residual stream and m_d = d_model / d_model,base.
 *
 * `compareBaseShapes` follows mup's base shapes (mup/shape.py `make_base_shapes`, `get_infshapes`): a base
 * model of the same architecture at another width is matched tensor by tensor; the dims that differ are
 * the width dims. Tensors are matched by name, or by order among float tensors when names are generated
 * by the exporter (`val_12`, `onnx::MatMul_123`, `223`), which differ between exports.
 */
import { layerFromName } from './layers.js';
import type { ModelProto } from 'onnx-buf';
import { UserInputError } from '../errors.js';
import { dimsOf } from '../onnx/tensor.js';
import type { Analysis, ParamInfo } from './types.js';
import { isFloatTensor } from './weights.js';

export interface BaseShapeComparison {
  /** Per initializer name (of `model`): the axes whose size differs from the base (the width dims). */
  widthDims: Record<string, number[]>;
  /** m_d = d_model / d_model,base. */
  mD: number;
  dModel: number;
  baseDModel: number;
  /** How tensors were matched and where the widths came from. */
  reason: string;
}

const GENERATED_NAME = /^(val_\d+|onnx::.*|\d+|_v_\d+|.*_output_0|(embedding|unsqueeze|view|linear|initializer|const)_\d+)$/;

export function isGeneratedName(name: string): boolean {
  return GENERATED_NAME.test(name);
}

interface Shaped { name: string; shape: number[] }

function floatInits(model: ModelProto): Shaped[] {
  return (model.graph?.initializer ?? []).filter((t) => isFloatTensor(t.dataType) && t.dims.length > 0).map((t) => ({ name: t.name, shape: dimsOf(t) }));
}

/**
 * Compares `model` with `base` (same architecture, another width). `dModel`/`baseDModel` are the residual
 * widths when the caller knows them (`compareBaseShapes` in index.ts finds them with `analyzeModel`);
 * otherwise m_d is the most common ratio of differing dims.
 */
export function compareShapes(model: ModelProto, base: ModelProto, widths: { dModel?: number; baseDModel?: number } = {}): BaseShapeComparison {
  // A base of another depth (CompleteP's m_L): the blocks only one side has say nothing about width.
  const [mine, theirs] = sharedLayers(floatInits(model), floatInits(base));
  const byName = new Map(theirs.map((t) => [t.name, t]));
  const named = mine.filter((t) => !isGeneratedName(t.name));
  const allNamedMatch = named.length > 0 && named.every((t) => byName.has(t.name));
  const pairs = pairUp(mine, theirs, byName, allNamedMatch);
  const widthDims: Record<string, number[]> = {};
  const ratios: number[] = [];
  for (const [a, b] of pairs) {
    if (a.shape.length !== b.shape.length) {
      throw new UserInputError(`base model: tensor '${a.name}' has shape ${JSON.stringify(a.shape)} but its base '${b.name}' has ${JSON.stringify(b.shape)} (different rank); pass a base model of the same architecture`);
    }
    const dims = a.shape.map((d, i) => (d !== b.shape[i] ? i : -1)).filter((i) => i >= 0);
    if (dims.length > 0) widthDims[a.name] = dims;
    for (const i of dims) ratios.push(a.shape[i]! / b.shape[i]!);
  }
  const ratio = widths.dModel && widths.baseDModel ? widths.dModel / widths.baseDModel : mostCommon(ratios) ?? 1;
  const how = allNamedMatch ? 'matched by name' : `matched by order (${mine.length} float tensors; names are generated)`;
  const from = widths.dModel && widths.baseDModel ? `residual width ${widths.dModel} / ${widths.baseDModel}` : `most common ratio of differing dims`;
  return {
    widthDims, mD: ratio,
    dModel: widths.dModel ?? NaN, baseDModel: widths.baseDModel ?? NaN,
    reason: `${pairs.length} tensors ${how}; ${Object.keys(widthDims).length} have width dims; m_d = ${from} = ${ratio}`,
  };
}

/** Drops tensors of named layers (h.3., layers.3.) that the other model does not have. */
function sharedLayers(mine: Shaped[], theirs: Shaped[]): [Shaped[], Shaped[]] {
  const layersOf = (ts: Shaped[]) => new Set(ts.map((t) => layerFromName(t.name)).filter((l) => l !== undefined));
  const [a, b] = [layersOf(mine), layersOf(theirs)];
  const keep = (other: Set<number>) => (t: Shaped) => { const l = layerFromName(t.name); return l === undefined || other.has(l); };
  return [mine.filter(keep(b)), theirs.filter(keep(a))];
}

function pairUp(mine: Shaped[], theirs: Shaped[], byName: Map<string, Shaped>, allNamedMatch: boolean): [Shaped, Shaped][] {
  if (allNamedMatch && mine.every((t) => byName.has(t.name) || isGeneratedName(t.name))) {
    const generatedMine = mine.filter((t) => !byName.has(t.name));
    const generatedTheirs = theirs.filter((t) => !mine.some((m) => m.name === t.name));
    if (generatedMine.length !== generatedTheirs.length) {
      throw new UserInputError(`base model: ${generatedMine.length} tensors with generated names here but ${generatedTheirs.length} in the base; pass a base model exported the same way`);
    }
    return [
      ...mine.filter((t) => byName.has(t.name)).map((t): [Shaped, Shaped] => [t, byName.get(t.name)!]),
      ...generatedMine.map((t, i): [Shaped, Shaped] => [t, generatedTheirs[i]!]),
    ];
  }
  const missing = mine.find((t) => !isGeneratedName(t.name) && !byName.has(t.name));
  if (missing && theirs.some((t) => !isGeneratedName(t.name))) {
    throw new UserInputError(`base model: has no tensor named '${missing.name}'; pass a base model of the same architecture (same parameter names)`);
  }
  if (mine.length !== theirs.length) {
    throw new UserInputError(`base model: ${theirs.length} float tensors but the model has ${mine.length}; pass a base model of the same architecture`);
  }
  return mine.map((t, i) => [t, theirs[i]!]);
}

function mostCommon(xs: number[]): number | undefined {
  const counts = new Map<number, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  let best: number | undefined;
  let n = 0;
  for (const [x, c] of counts) if (c > n || (c === n && best !== undefined && x > best)) { best = x; n = c; }
  return best;
}

/**
 * d_model from an analysis: the token-embedding width, else the most common input width of the hidden and
 * readout weights (their size along the input axis: channels for a Conv).
 */
export function detectWidth(a: Pick<Analysis, 'params'>): { dModel: number; reason: string } | undefined {
  // A lookup table (fan-in 1); an input layer's fan-out may be several widths (LSTM gates).
  const emb = a.params.find((p) => p.role === 'embedding' && p.fanIn === 1);
  if (emb && emb.fanOut) return { dModel: emb.fanOut, reason: `width of token embedding '${emb.name}'` };
  const widths = a.params.filter((p: ParamInfo) => (p.role === 'hidden' || p.role === 'readout') && p.inputAxis !== undefined).map((p) => p.shape[p.inputAxis!]!);
  const inputLayer = a.params.find((p) => p.role === 'embedding' && p.outputAxis !== undefined);
  if (widths.length === 0 && inputLayer) return { dModel: inputLayer.shape[inputLayer.outputAxis!]!, reason: `output width of input layer '${inputLayer.name}'` };
  const w = mostCommon(widths);
  return w === undefined ? undefined : { dModel: w, reason: `most common input width of ${widths.length} hidden/readout weights` };
}
