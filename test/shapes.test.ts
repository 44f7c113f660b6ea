/**
 * The shared shape inference (src/shapes) on small graphs built here, each checked against onnxruntime: every
 * value is made an output, the graph is run, and inferred dims and int values are compared with ORT's.
 * Covers what real exports combine: TorchScript's Where(Equal(shape, −1), 1, shape) before Expand, Pad and
 * Tile with pads/repeats computed from Shape, Range from a dim, an If on a constant condition, an If on a
 * run-time condition, and a node list that is not topologically sorted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { AttributeProto_AttributeType, AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type GraphProto, type NodeProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { encodeModel } from '../src/onnx/codec.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeFloatTensor, makeInt64Tensor } from '../src/onnx/tensor.js';
import { inferShapes, type Dim } from '../src/shapes/index.js';

const I = (name: string, values: number[], scalar = false) => makeInt64Tensor(name, scalar ? [] : [values.length], values);
const X = tensorValueInfo('x', DataType.FLOAT, ['b', 's', 4]);

function graph(nodes: NodeProto[], inits = [I('zero', [0]), I('one', [1]), I('two', [2]), I('minus1', [-1]), I('i0', [0], true), I('i1', [1], true)]): GraphProto {
  return create(GraphProtoSchema, { name: 'g', node: nodes, initializer: inits, input: [X], output: [] });
}

const ifBranch = (name: string, op: string) => create(GraphProtoSchema, {
  name, node: [node(op, ['x'], [`${name}_y`])], output: [tensorValueInfo(`${name}_y`, DataType.FLOAT)],
});
/** An If node (the project's node builder has no graph attributes). */
function ifNode(cond: string, out: string, then: GraphProto, otherwise: GraphProto): NodeProto {
  const n = node('If', [cond], [out]);
  n.attribute = [
    create(AttributeProtoSchema, { name: 'then_branch', type: AttributeProto_AttributeType.GRAPH, g: then }),
    create(AttributeProtoSchema, { name: 'else_branch', type: AttributeProto_AttributeType.GRAPH, g: otherwise }),
  ];
  return n;
}

const CASES: { name: string; g: () => GraphProto }[] = [
  {
    name: 'Expand to Where(Equal(shape, -1), 1, shape) of a Concat of dims', g: () => graph([
      node('Shape', ['x'], ['sh']),
      node('Gather', ['sh', 'i0'], ['b']), node('Unsqueeze', ['b', 'zero'], ['b1']),
      node('Gather', ['sh', 'i1'], ['s']), node('Unsqueeze', ['s', 'zero'], ['s1']),
      node('Concat', ['b1', 'minus1', 's1'], ['target'], { axis: 0 }),
      node('Equal', ['target', 'minus1'], ['isneg']),
      node('ConstantOfShape', ['two'], ['ones'], { value: I('v', [1]) }),
      node('Where', ['isneg', 'one', 'target'], ['fixed']),
      node('Concat', ['b1', 's1', 'minus1'], ['bsm'], { axis: 0 }),
      node('Reshape', ['x', 'bsm'], ['xr']),
      node('ReduceSum', ['x', 'minus1'], ['xs'], { keepdims: 1 }),
      node('Expand', ['xs', 'fixed'], ['xe']),
    ]),
  },
  {
    name: 'Pad and Tile with pads and repeats computed from Shape', g: () => graph([
      node('Shape', ['x'], ['sh']),
      node('Gather', ['sh', 'i1'], ['s']), node('Unsqueeze', ['s', 'zero'], ['s1']),
      node('Sub', ['s1', 'one'], ['sm1']),
      node('Concat', ['zero', 'zero', 'sm1', 'zero', 'one', 'two'], ['pads'], { axis: 0 }),
      node('Pad', ['x', 'pads'], ['xp']),
      node('Gather', ['sh', 'i0'], ['b']), node('Unsqueeze', ['b', 'zero'], ['b1']),
      node('Concat', ['zero', 'one'], ['axes01'], { axis: 0 }),
      node('ReduceSum', ['x', 'axes01'], ['x11'], { keepdims: 1 }),
      node('Concat', ['b1', 's1', 'one'], ['reps'], { axis: 0 }),
      node('Tile', ['x11', 'reps'], ['xt']),
      node('Range', ['i0', 's', 'i1'], ['pos']),
      node('Size', ['x'], ['n']),
    ]),
  },
  {
    name: 'If on a constant condition takes its branch; on a run-time condition both branches agree', g: () => {
      const g = graph([
        node('Constant', [], ['c'], { value: I('cv', [0], true) }),
        node('Cast', ['c'], ['cond'], { to: DataType.BOOL }),
        ifNode('cond', 'yi', ifBranch('then', 'Relu'), ifBranch('else', 'Neg')),
        node('ReduceMax', ['x'], ['mx'], { keepdims: 0 }),
        node('Greater', ['mx', 'zf'], ['dyn']),
        ifNode('dyn', 'yd', ifBranch('then2', 'Relu'), ifBranch('else2', 'Neg')),
        node('Transpose', ['yd'], ['ydt'], { perm: [2, 0, 1] }),
      ]);
      g.initializer.push(makeFloatTensor('zf', [], Float32Array.of(0)));
      return g;
    },
  },
  {
    name: 'a node list out of topological order', g: () => graph([
      node('Reshape', ['xt', 'flat'], ['xf']),
      node('Transpose', ['x'], ['xt'], { perm: [1, 0, 2] }),
      node('Concat', ['zero', 'zero', 'minus1'], ['flat'], { axis: 0 }),
    ]),
  },
];

function evalDim(d: Dim, sym: Record<string, number>): number | undefined {
  if (typeof d === 'number') return d;
  if (d === null) return undefined;
  const terms = d.split('+').map((t) => (/^-?\d+$/.test(t) ? Number(t) : sym[t]));
  return terms.some((t) => t === undefined) ? undefined : (terms as number[]).reduce((a, b) => a + b, 0);
}

for (const c of CASES) {
  test(`shapes: ${c.name}`, async () => {
    const g = c.g();
    const table = inferShapes(g);
    const values = g.node.flatMap((n) => n.output).filter((o) => o);
    assert.deepEqual(values.filter((v) => !table.shape(v)), [], 'values of unknown rank');
    g.output = values.map((v) => tensorValueInfo(v, table.elemType(v)!));
    const model = create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })], graph: g });
    const session = await ort.InferenceSession.create(encodeModel(model));
    const sym = { b: 2, s: 3 };
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [2, 3, 4]) });
    let checked = 0;
    for (const v of values) {
      const dims = out[v]!.dims.map(Number);
      const inferred = table.shape(v)!;
      assert.equal(inferred.length, dims.length, `${v}: rank`);
      inferred.forEach((d, i) => {
        const e = evalDim(d, sym);
        assert.ok(e !== undefined, `${v}[${i}]: unknown (${d})`);
        assert.equal(e, dims[i], `${v}[${i}]: inferred ${d}`);
        checked++;
      });
      const ints = table.ints(v);
      if (ints && out[v]!.type === 'int64') assert.deepEqual(ints.map((d) => evalDim(d, sym)), Array.from(out[v]!.data as BigInt64Array, Number), `${v}: values`);
    }
    assert.ok(checked > 3);
  });
}
