/**
 * Raises an ai.onnx opset-11/12 graph to opset 13, the lowest opset the backward pass emits (axes and
 * split sizes as inputs). Only the operators whose signature or meaning changed between 11 and 13 are
 * rewritten (onnx/onnx docs/Changelog.md); every other op keeps its semantics under the new opset:
 *
 * - Squeeze-13 / Unsqueeze-13 / ReduceSum-13: the `axes` attribute becomes an int64 input.
 * - Split-13: the `split` attribute becomes an int64 input.
 * - Softmax / LogSoftmax / Hardmax-13: operate along one axis (default −1) instead of on the input coerced
 *   to 2-D at `axis` (default 1). Same result when `axis` is the last axis; otherwise the old meaning is
 *   kept exactly as Reshape(Softmax(Flatten(x, axis), axis=1), Shape(x)).
 * - Dropout-12: `ratio` moved from an attribute to an input; it only matters in training mode, which an
 *   exported inference graph does not use, so the attribute is dropped.
 *
 * Models below opset 11 (Slice, Upsample, … changed earlier) are refused with a message.
 */
import {
  AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, OperatorSetIdProtoSchema,
  type GraphProto, type ModelProto, type NodeProto, type TensorProto,
} from 'onnx-buf';
import { ExitCode, UserInputError } from '../errors.js';
import { node } from '../onnx/build.js';
import { opsetVersion, type NameAuthority } from '../onnx/ir.js';
import { makeInt64Tensor } from '../onnx/tensor.js';
import { copyWith, ensureOpset, findValueShape } from '../train/graph-util.js';

export const TRAIN_OPSET = 13;

export interface OpsetUpgrade {
  model: ModelProto;
  from: number;
  /** One line per rewritten node kind, e.g. "Unsqueeze ×13: axes attribute → input". */
  changes: string[];
}

/** The model itself when its opset is already ≥ 13, else an upgraded copy (tensors shared, not copied). */
export function upgradeToOpset13(model: ModelProto, names: NameAuthority): OpsetUpgrade {
  const from = opsetVersion(model) ?? 0;
  if (from >= TRAIN_OPSET) return { model, from, changes: [] };
  if (from < 11) {
    throw new UserInputError(`the model uses ai.onnx opset ${from}; training needs opset ${TRAIN_OPSET} and only opsets 11 and 12 are upgraded automatically; re-export the model with opset ≥ 13`, ExitCode.unsupported);
  }
  const counts = new Map<string, number>();
  const constants: TensorProto[] = [];
  const upgradeGraph = (g: GraphProto): GraphProto => {
    const nodes: NodeProto[] = [];
    for (const n of g.node) {
      const hasSubgraphs = n.attribute.some((a) => a.g || a.graphs.length);
      const withSubs = hasSubgraphs
        ? copyWith(NodeProtoSchema, n, { attribute: n.attribute.map((a) => copyWith(AttributeProtoSchema, a, { g: a.g ? upgradeGraph(a.g) : a.g, graphs: a.graphs.map(upgradeGraph) })) })
        : n;
      const rewritten = rewriteNode(withSubs, g, names, constants);
      if (rewritten.length !== 1 || rewritten[0] !== withSubs) counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
      nodes.push(...rewritten);
    }
    return copyWith(GraphProtoSchema, g, { node: nodes });
  };
  const graph = upgradeGraph(model.graph!);
  graph.initializer = [...graph.initializer, ...constants];
  const out = copyWith(ModelProtoSchema, model, { graph, opsetImport: model.opsetImport.map((o) => copyWith(OperatorSetIdProtoSchema, o)) });
  ensureOpset(out, TRAIN_OPSET);
  const changes = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([op, k]) => `${op} ×${k}: ${CHANGE_DOC[op] ?? 'rewritten for opset 13'}`);
  return { model: out, from, changes };
}

const CHANGE_DOC: Record<string, string> = {
  Squeeze: 'axes attribute → input', Unsqueeze: 'axes attribute → input', ReduceSum: 'axes attribute → input',
  Split: 'split attribute → input', Softmax: 'coerce-to-2-D semantics kept via Flatten/Reshape where the axis is not the last',
  LogSoftmax: 'coerce-to-2-D semantics kept via Flatten/Reshape where the axis is not the last',
  Hardmax: 'coerce-to-2-D semantics kept via Flatten/Reshape where the axis is not the last', Dropout: 'ratio attribute dropped (inference graph)',
};

function rewriteNode(n: NodeProto, g: GraphProto, names: NameAuthority, constants: TensorProto[]): NodeProto[] {
  if (n.domain && n.domain !== 'ai.onnx') return [n];
  const attr = (name: string) => n.attribute.find((a) => a.name === name);
  const without = (name: string) => n.attribute.filter((a) => a.name !== name);
  const intsInput = (values: bigint[], base: string) => {
    const name = names.fresh(base);
    constants.push(makeInt64Tensor(name, [values.length], values.map(Number)));
    return name;
  };
  switch (n.opType) {
    case 'Squeeze': case 'Unsqueeze': case 'ReduceSum': {
      const axes = attr('axes');
      if (!axes) return [n];
      return [copyWith(NodeProtoSchema, n, { input: [n.input[0]!, intsInput(axes.ints, `${n.name || n.opType}.axes`)], attribute: without('axes') })];
    }
    case 'Split': {
      const split = attr('split');
      if (!split) return [n];
      return [copyWith(NodeProtoSchema, n, { input: [n.input[0]!, intsInput(split.ints, `${n.name || 'Split'}.split`)], attribute: without('split') })];
    }
    case 'Dropout':
      return attr('ratio') ? [copyWith(NodeProtoSchema, n, { attribute: without('ratio') })] : [n];
    case 'Softmax': case 'LogSoftmax': case 'Hardmax':
      return rewriteSoftmax(n, g, names);
    default:
      return [n];
  }
}

/** Old semantics: softmax of x coerced to 2-D at `axis` (default 1). */
function rewriteSoftmax(n: NodeProto, g: GraphProto, names: NameAuthority): NodeProto[] {
  const a = n.attribute.find((x) => x.name === 'axis');
  const axis = a ? Number(a.i) : 1;
  const rank = findValueShape(g, n.input[0]!)?.length;
  if (axis === -1 || (rank !== undefined && axis === rank - 1)) {
    return [copyWith(NodeProtoSchema, n, { attribute: n.attribute.filter((x) => x.name !== 'axis').concat(a ? [copyWith(AttributeProtoSchema, a, { i: -1n })] : []) })];
  }
  const x = n.input[0]!;
  const base = n.name || n.opType;
  const flat = names.fresh(`${base}.flat`);
  const soft = names.fresh(`${base}.2d`);
  const shape = names.fresh(`${base}.shape`);
  return [
    node('Flatten', [x], [flat], { axis }, names.fresh(`${base}/Flatten`)),
    node(n.opType, [flat], [soft], { axis: 1 }, n.name),
    node('Shape', [x], [shape], {}, names.fresh(`${base}/Shape`)),
    node('Reshape', [soft, shape], [n.output[0]!], {}, names.fresh(`${base}/Reshape`)),
  ];
}
