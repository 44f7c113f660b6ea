/**
 * One rule per ai.onnx operator whose signature or meaning changed between opsets 6 and 13
 * (onnx/onnx docs/Changelog.md). Each applies to graphs whose opset is below `before` (the version that
 * changed it) and returns nodes that, read under opset 13, compute what the old node computed:
 *
 *   attributes that became inputs: Slice-10 (starts/ends/axes), TopK-10 (k), Pad-11 (pads, value),
 *     Clip-11 (min, max), Squeeze/Unsqueeze/ReduceSum-13 (axes), Split-13 (split), Dropout-12 (ratio);
 *   ops replaced: Upsample (removed after 9) and Resize-10 → Resize-13 with the old coordinate rule
 *     (asymmetric, nearest = floor); Scatter (deprecated at 11) → ScatterElements;
 *   meaning changed: Softmax/LogSoftmax/Hardmax-13 (one axis instead of coerce-to-2-D);
 *   attributes dropped: BatchNormalization-9 `spatial` (1 is the only meaning kept).
 * A form with no opset-13 equivalent fails with the attribute named (legacy `broadcast`, Scan-8 batching, …).
 */
import type { GraphProto, NodeProto, TensorProto } from 'onnx-buf';
import { AttributeProtoSchema, NodeProtoSchema } from 'onnx-buf';
import { attrFloat, attrInt, attrInts, attrString, getAttr, node } from '../onnx/build.js';
import { DataType } from '../onnx/dtype.js';
import type { NameAuthority } from '../onnx/ir.js';
import { makeFloatTensor, makeInt64Tensor } from '../onnx/tensor.js';
import { copyWith, findValueShape, valueInfoElemType } from '../train/graph-util.js';
import { fail, OK, type Match } from './defuse-rules/types.js';

export interface UpgradeContext {
  graph: GraphProto;
  names: NameAuthority;
  /** Constants the rewrites add (initializers of the main graph). */
  constants: TensorProto[];
  /** Element type of a value when recorded. */
  elemType(value: string): number | undefined;
}

export interface UpgradeRule {
  id: string;
  opType: string;
  /** The rule applies when the model's opset is below this version. */
  before: number;
  doc: string;
  match(n: NodeProto, ctx: UpgradeContext): Match;
  rewrite(n: NodeProto, ctx: UpgradeContext): NodeProto[];
}

const without = (n: NodeProto, ...names: string[]) => n.attribute.filter((a) => !names.includes(a.name));
const baseName = (n: NodeProto) => n.name || n.output[0] || n.opType;

function int64Input(ctx: UpgradeContext, n: NodeProto, what: string, values: number[], dims = [values.length]): string {
  const name = ctx.names.fresh(`${baseName(n)}.${what}`);
  ctx.constants.push(makeInt64Tensor(name, dims, values));
  return name;
}

function floatInput(ctx: UpgradeContext, n: NodeProto, what: string, value: number): string {
  const name = ctx.names.fresh(`${baseName(n)}.${what}`);
  ctx.constants.push(makeFloatTensor(name, [], Float32Array.of(value)));
  return name;
}

/** Pad and Clip values become tensors of the input's type: only float32 (or unrecorded) inputs are handled. */
function float32Input(n: NodeProto, ctx: UpgradeContext, attrs: string[]): Match {
  const t = ctx.elemType(n.input[0]!);
  if (t === undefined || t === DataType.FLOAT || !attrs.some((a) => getAttr(n, a))) return OK;
  return fail(`attributes ${attrs.join('/')} on a non-float32 input cannot be turned into typed inputs`);
}

/** `op(x, attr → int64 input)`: the attribute's ints become input `slot`. */
function intsAttrToInput(opType: string, before: number, attrName: string, id: string): UpgradeRule {
  return {
    id, opType, before, doc: `${opType}: ${attrName} attribute → int64 input (opset ${before})`,
    match: () => OK,
    rewrite: (n, ctx) => {
      const values = attrInts(n, attrName);
      if (!values) return [n];
      return [copyWith(NodeProtoSchema, n, { input: [n.input[0]!, int64Input(ctx, n, attrName, values)], attribute: without(n, attrName) })];
    },
  };
}

const slice: UpgradeRule = {
  id: 'opset/slice-inputs', opType: 'Slice', before: 10, doc: 'Slice: starts/ends/axes attributes → int64 inputs (opset 10)',
  match: (n) => (attrInts(n, 'starts') && attrInts(n, 'ends') ? OK : fail('attributes starts and ends are required before opset 10')),
  rewrite: (n, ctx) => {
    const inputs = [n.input[0]!, int64Input(ctx, n, 'starts', attrInts(n, 'starts')!), int64Input(ctx, n, 'ends', attrInts(n, 'ends')!)];
    const axes = attrInts(n, 'axes');
    if (axes) inputs.push(int64Input(ctx, n, 'axes', axes));
    return [copyWith(NodeProtoSchema, n, { input: inputs, attribute: [] })];
  },
};

const topK: UpgradeRule = {
  id: 'opset/topk-k-input', opType: 'TopK', before: 10, doc: 'TopK: k attribute → int64 input [1] (opset 10)',
  match: (n) => (getAttr(n, 'k') ? OK : fail('attribute k is missing')),
  rewrite: (n, ctx) => [copyWith(NodeProtoSchema, n, { input: [n.input[0]!, int64Input(ctx, n, 'k', [attrInt(n, 'k', 0)])], attribute: without(n, 'k') })],
};

const pad: UpgradeRule = {
  id: 'opset/pad-inputs', opType: 'Pad', before: 11, doc: 'Pad: pads and value attributes → inputs (opset 11)',
  match: (n, ctx) => (attrInts(n, 'pads') ? float32Input(n, ctx, ['value']) : fail('attribute pads is missing')),
  rewrite: (n, ctx) => {
    const inputs = [n.input[0]!, int64Input(ctx, n, 'pads', attrInts(n, 'pads')!)];
    if (getAttr(n, 'value')) inputs.push(floatInput(ctx, n, 'value', attrFloat(n, 'value', 0)));
    return [copyWith(NodeProtoSchema, n, { input: inputs, attribute: without(n, 'pads', 'value') })];
  },
};

const clip: UpgradeRule = {
  id: 'opset/clip-inputs', opType: 'Clip', before: 11, doc: 'Clip: min/max attributes → scalar inputs (opset 11)',
  match: (n, ctx) => float32Input(n, ctx, ['min', 'max']),
  rewrite: (n, ctx) => {
    const min = getAttr(n, 'min') ? floatInput(ctx, n, 'min', attrFloat(n, 'min', 0)) : '';
    const max = getAttr(n, 'max') ? floatInput(ctx, n, 'max', attrFloat(n, 'max', 0)) : '';
    const inputs = max ? [n.input[0]!, min, max] : min ? [n.input[0]!, min] : [n.input[0]!];
    return [copyWith(NodeProtoSchema, n, { input: inputs, attribute: without(n, 'min', 'max') })];
  },
};

/** Upsample (7: scales attribute; 9: scales input) and Resize-10 → Resize-13 with their coordinate rule. */
function toResize13(n: NodeProto, ctx: UpgradeContext): NodeProto[] {
  const attrScales = getAttr(n, 'scales')?.floats;
  let scales = n.input[1] ?? '';
  if (attrScales) {
    scales = ctx.names.fresh(`${baseName(n)}.scales`);
    ctx.constants.push(makeFloatTensor(scales, [attrScales.length], Float32Array.from(attrScales)));
  }
  const mode = attrString(n, 'mode', 'nearest') === 'nearest' ? 'nearest' : 'linear';
  const attrs: Record<string, string> = { mode, coordinate_transformation_mode: 'asymmetric' };
  if (mode === 'nearest') attrs.nearest_mode = 'floor';
  return [node('Resize', [n.input[0]!, '', scales], [n.output[0]!], attrs, n.name, '')];
}

const resizeModes: (n: NodeProto) => Match = (n) => {
  const mode = attrString(n, 'mode', 'nearest');
  return ['nearest', 'linear', 'bilinear'].includes(mode) ? OK : fail(`attribute mode='${mode}' has no Resize equivalent`);
};

const upsample: UpgradeRule = {
  id: 'opset/upsample-to-resize', opType: 'Upsample', before: 14, doc: 'Upsample → Resize-13 (asymmetric coordinates, nearest = floor: Upsample\'s rule)',
  match: (n) => resizeModes(n), rewrite: toResize13,
};

const resize10: UpgradeRule = {
  id: 'opset/resize10-to-resize13', opType: 'Resize', before: 11, doc: 'Resize-10(X, scales) → Resize-13(X, –, scales) with asymmetric coordinates, nearest = floor',
  match: (n) => resizeModes(n), rewrite: toResize13,
};

const scatter: UpgradeRule = {
  id: 'opset/scatter-to-scatter-elements', opType: 'Scatter', before: 14, doc: 'Scatter (deprecated at 11) → ScatterElements (same semantics)',
  match: () => OK,
  rewrite: (n) => [copyWith(NodeProtoSchema, n, { opType: 'ScatterElements' })],
};

const batchNorm: UpgradeRule = {
  id: 'opset/batchnorm-spatial', opType: 'BatchNormalization', before: 9, doc: 'BatchNormalization: spatial attribute dropped (opset 9 keeps only spatial = 1)',
  match: (n) => {
    if (getAttr(n, 'is_test') || getAttr(n, 'consumed_inputs')) return fail('attribute is_test/consumed_inputs (opset < 7) is not supported');
    return attrInt(n, 'spatial', 1) === 1 ? OK : fail('attribute spatial=0 (per-element statistics) has no opset-13 form');
  },
  rewrite: (n) => (getAttr(n, 'spatial') ? [copyWith(NodeProtoSchema, n, { attribute: without(n, 'spatial') })] : [n]),
};

const dropout: UpgradeRule = {
  id: 'opset/dropout-ratio', opType: 'Dropout', before: 12, doc: 'Dropout: ratio attribute dropped (it only acts in training mode, which an exported inference graph does not use)',
  match: (n) => (getAttr(n, 'is_test') ? fail('attribute is_test (opset < 7) is not supported') : OK),
  rewrite: (n) => (getAttr(n, 'ratio') ? [copyWith(NodeProtoSchema, n, { attribute: without(n, 'ratio') })] : [n]),
};

/** Old semantics: softmax of x coerced to 2-D at `axis` (default 1). Kept as Reshape(op(Flatten(x, axis), 1), Shape(x)). */
function softmaxRule(opType: string): UpgradeRule {
  return {
    id: `opset/${opType.toLowerCase()}-axis`, opType, before: 13,
    doc: `${opType}: coerce-to-2-D semantics kept via Flatten/Reshape where the axis is not the last (opset 13)`,
    match: () => OK,
    rewrite: (n, ctx) => {
      const a = getAttr(n, 'axis');
      const axis = a ? Number(a.i) : 1;
      const rank = findValueShape(ctx.graph, n.input[0]!)?.length;
      if (axis === -1 || (rank !== undefined && axis === rank - 1)) {
        return [copyWith(NodeProtoSchema, n, { attribute: without(n, 'axis').concat(a ? [copyWith(AttributeProtoSchema, a, { i: -1n })] : []) })];
      }
      const x = n.input[0]!;
      const base = baseName(n);
      const [flat, soft, shape] = [`${base}.flat`, `${base}.2d`, `${base}.shape`].map((s) => ctx.names.fresh(s));
      return [
        node('Flatten', [x], [flat!], { axis }, ctx.names.fresh(`${base}/Flatten`)),
        node(n.opType, [flat!], [soft!], { axis: 1 }, n.name),
        node('Shape', [x], [shape!], {}, ctx.names.fresh(`${base}/Shape`)),
        node('Reshape', [soft!, shape!], [n.output[0]!], {}, ctx.names.fresh(`${base}/Reshape`)),
      ];
    },
  };
}

/** Binary ops lost `broadcast`/`axis` at opset 7 (numpy broadcasting since). */
function legacyBroadcast(opType: string): UpgradeRule {
  return {
    id: `opset/${opType.toLowerCase()}-legacy-broadcast`, opType, before: 7, doc: `${opType}: refused when it uses the opset-6 broadcast attribute`,
    match: (n) => (getAttr(n, 'broadcast') ? fail(`attribute broadcast=${attrInt(n, 'broadcast', 0)} (opset < 7 broadcasting) is not supported; re-export with opset ≥ 7`) : OK),
    rewrite: (n) => [n],
  };
}

const scan8: UpgradeRule = {
  id: 'opset/scan8', opType: 'Scan', before: 9, doc: 'Scan-8 (batched, sequence_lens input) is refused: its batching has no opset-13 form here',
  match: () => fail('Scan-8 batches over axis 0 with sequence_lens; re-export with opset ≥ 9'),
  rewrite: (n) => [n],
};

export const UPGRADE_RULES: readonly UpgradeRule[] = [
  intsAttrToInput('Squeeze', 13, 'axes', 'opset/squeeze-axes'), intsAttrToInput('Unsqueeze', 13, 'axes', 'opset/unsqueeze-axes'),
  intsAttrToInput('ReduceSum', 13, 'axes', 'opset/reducesum-axes'), intsAttrToInput('Split', 13, 'split', 'opset/split-sizes'),
  softmaxRule('Softmax'), softmaxRule('LogSoftmax'), softmaxRule('Hardmax'),
  dropout, slice, topK, pad, clip, upsample, resize10, scatter, batchNorm, scan8,
  ...['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less', 'PRelu', 'Gemm'].map(legacyBroadcast),
];

export function findUpgradeRule(n: NodeProto, from: number): UpgradeRule | undefined {
  if (n.domain && n.domain !== 'ai.onnx') return undefined;
  return UPGRADE_RULES.find((r) => r.opType === n.opType && from < r.before);
}

export function elemTypeLookup(g: GraphProto): (value: string) => number | undefined {
  const inits = new Map(g.initializer.map((t) => [t.name, t.dataType]));
  const vis = new Map([...g.input, ...g.output, ...g.valueInfo].map((v) => [v.name, valueInfoElemType(v)]));
  return (v) => inits.get(v) ?? vis.get(v);
}
