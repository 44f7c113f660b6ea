/**
 * Units of the analysis: the glob matcher (on real exported names), tie-by-value, base-shape width, and
 * each attention-scale form and weight-access form on small hand-built graphs whose answers are known.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from 'onnx-buf';
import { analyzeModel, compareBaseShapes, detectWidth, layerFromName, matchGlob, type Analysis } from '../src/analysis/index.js';
import { tieByValue } from '../src/analysis/ties.js';
import { attr, node, tensorValueInfo } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { makeFloatTensor, makeInt64Tensor, makeScalarFloat } from '../src/onnx/tensor.js';
import { UserInputError } from '../src/errors.js';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { randomFloats, seededRandom } from './model-builders.js';

const F = DataType.FLOAT;

function makeModel(nodes: NodeProto[], inits: TensorProto[], inputs: ValueInfoProto[], outputs: ValueInfoProto[], opsets: [string, number][] = [['', 17]]): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: 9n,
    opsetImport: opsets.map(([domain, v]) => create(OperatorSetIdProtoSchema, { domain, version: BigInt(v) })),
    graph: create(GraphProtoSchema, { name: 'g', node: nodes, initializer: inits, input: inputs, output: outputs }),
  });
}

const rand = seededRandom(7);
const weight = (name: string, dims: number[]) => makeFloatTensor(name, dims, randomFloats(dims.reduce((a, b) => a * b, 1), rand, 0.5));
const byName = (a: Analysis) => new Map(a.params.map((p) => [p.name, p]));

test('matchGlob: segments split at . and /, anchored, on real exported names', () => {
  const cases: [string, string, boolean][] = [
    ['transformer.h.*.attn.c_attn.weight', 'transformer.h.0.attn.c_attn.weight', true],
    ['transformer.h.*.attn.c_attn.weight', 'transformer.h.11.attn.c_attn.weight', true],
    ['transformer.h.*.attn.c_attn.weight', 'transformer.h.0.attn.c_attn.weight_orig', false],
    ['transformer.h.*.attn.c_attn.weight', 'module.transformer.h.0.attn.c_attn.weight', false],
    ['transformer.h.*.weight', 'transformer.h.0.attn.c_attn.weight', false], // * stays in one segment
    ['transformer.h.**.weight', 'transformer.h.0.attn.c_attn.weight', true],
    ['**.weight', 'lm_head.weight', true],
    ['**.weight', 'weight', true], // ** before a separator may match zero segments
    ['**.weight', 'lm_head.weight_t', false],
    ['*.weight', 'transformer.wte.weight', false],
    ['**bias', 'h.0.attn.bias_resize', false],
    ['**bias*', 'h.0.attn.bias_resize', true],
    ['onnx::MatMul_*', 'onnx::MatMul_123', true],
    ['onnx::MatMul_?23', 'onnx::MatMul_123', true],
    ['onnx::MatMul_?', 'onnx::MatMul_123', false],
    ['val_[0-9]', 'val_0', true],
    ['val_[0-9]', 'val_12', false],
    ['val_[!0]', 'val_0', false],
    ['val_[!0]', 'val_7', true],
    ['val_*', 'val_278', true],
    ['/layer1/*', '/layer1/Gemm', true],
    ['/layer1/*', '/layer1/sub/Gemm', false],
    ['/**/Gemm', '/layer1/Gemm', true],
    ['/**/Gemm', '/blocks.0/fcn_layer/Gemm', true],
    ['a?b', 'a.b', false], // ? never matches a separator
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['embed.weight', 'module.embed.weight', false], // no prefix stripping (mup's strip('module.') bug)
    ['bed.weight', 'embed.weight', false],
    ['m(x)+.w', 'm(x)+.w', true], // regex metacharacters are literal
  ];
  for (const [pattern, name, want] of cases) assert.equal(matchGlob(pattern, name), want, `${pattern} ~ ${name}`);
  assert.throws(() => matchGlob('val_[0-9', 'val_1'), (e: unknown) => e instanceof UserInputError && /no closing/.test((e as Error).message));
});

test('tieByValue: a transposed copy is found, an equal copy is found, a different tensor of the same shape is not', () => {
  const e = weight('wte', [6, 4]);
  const v = Float32Array.from(randomFloats(24, seededRandom(3)));
  const values = (t: TensorProto) => new Float32Array(new Uint8Array(t.rawData).slice().buffer);
  const ev = values(e);
  const transposed = new Float32Array(24);
  for (let i = 0; i < 6; i++) for (let j = 0; j < 4; j++) transposed[j * 6 + i] = ev[i * 4 + j]!;
  assert.equal(tieByValue(e, makeFloatTensor('val_9', [4, 6], transposed), '.'), 'value-transposed');
  assert.equal(tieByValue(e, makeFloatTensor('copy', [6, 4], ev), '.'), 'value');
  assert.equal(tieByValue(e, makeFloatTensor('other', [4, 6], v), '.'), undefined);
  const nudged = Float32Array.from(transposed);
  nudged[5]! += 1e-3;
  assert.equal(tieByValue(e, makeFloatTensor('nudged', [4, 6], nudged), '.'), undefined);
  const ones = new Float32Array(24).fill(1);
  assert.equal(tieByValue(makeFloatTensor('a', [6, 4], ones), makeFloatTensor('b', [4, 6], ones), '.'), undefined, 'constant tensors are never a tie');
});

/** Gather(E) → MatMul(h, head): a tiny LM whose head is either Eᵀ under a generated name or a fresh tensor. */
function tinyLm(head: Float32Array): ModelProto {
  const E = makeFloatTensor('embed.weight', [10, 4], Float32Array.from(randomFloats(40, seededRandom(11))));
  return makeModel(
    [node('Gather', ['embed.weight', 'ids'], ['h'], {}, 'gather'), node('MatMul', ['h', 'val_7'], ['logits'], {}, 'head')],
    [E, makeFloatTensor('val_7', [4, 10], head)],
    [tensorValueInfo('ids', DataType.INT64, [2, 3])], [tensorValueInfo('logits', F, [2, 3, 10])],
  );
}

test('analyzeModel: the LM head equal to the embedding transposed under a generated name is tied; a fresh one is not', () => {
  const ev = Float32Array.from(randomFloats(40, seededRandom(11)));
  const t = new Float32Array(40);
  for (let i = 0; i < 10; i++) for (let j = 0; j < 4; j++) t[j * 10 + i] = ev[i * 4 + j]!;
  const tied = byName(analyzeModel(tinyLm(t), '.'));
  assert.deepEqual([tied.get('val_7')!.role, tied.get('val_7')!.tie, tied.get('val_7')!.tiedWith], ['readout', 'value-transposed', 'embed.weight']);
  assert.equal(tied.get('embed.weight')!.tiedWith, 'val_7');
  const untied = byName(analyzeModel(tinyLm(Float32Array.from(randomFloats(40, seededRandom(12)))), '.'));
  assert.deepEqual([untied.get('val_7')!.role, untied.get('val_7')!.tie], ['readout', undefined]);
});

test('tie by identity: buildGpt({tied}) reads wte in the Gather and, transposed, in the LM head', () => {
  const a = analyzeModel(buildGpt({ vocab: 32, dModel: 16, layers: 1, heads: 2, maxPos: 8, tied: true }), '.');
  const wte = byName(a).get('transformer.wte.weight')!;
  assert.deepEqual([wte.role, wte.tie, a.logits?.readout], ['embedding', 'identity', 'transformer.wte.weight']);
});

/** QKᵀ over graph inputs q [1,2,5,8] and kᵀ [1,2,8,5], then `mid` nodes, then Softmax. */
function attentionModel(mid: NodeProto[], inits: TensorProto[], last: string): ModelProto {
  return makeModel(
    [node('MatMul', ['q', 'kt'], ['s'], {}, 'qk'), ...mid, node('Softmax', [last], ['p'], { axis: -1 }, 'softmax')],
    inits,
    [tensorValueInfo('q', F, [1, 2, 5, 8]), tensorValueInfo('kt', F, [1, 2, 8, 5]), tensorValueInfo('mask', F, [1, 1, 5, 5])],
    [tensorValueInfo('p', F, [1, 2, 5, 5])],
  );
}

test('attention: Mul by 1/√8 after QKᵀ with a mask Add in between', () => {
  const a = analyzeModel(attentionModel([node('Add', ['s', 'mask'], ['sm'], {}, 'mask_add'), node('Mul', ['sm', 'c'], ['z'], {}, 'scale')], [makeScalarFloat('c', 1 / Math.sqrt(8))], 'z'), '.');
  assert.equal(a.attention.length, 1);
  const s = a.attention[0]!;
  assert.deepEqual([s.kind, s.nodes, s.constants, s.dHead, s.logitsValue, s.qkMatMul], ['mul-after-qk', ['scale'], ['c'], 8, 'z', 'qk']);
  assert.ok(Math.abs(s.currentScale - 1 / Math.sqrt(8)) < 1e-7);
});

test('attention: √d computed at run time (Shape → Gather → Cast → Sqrt → Div)', () => {
  const mid = [
    node('Shape', ['q'], ['qs'], {}, 'shape'), node('Gather', ['qs', 'last'], ['d'], { axis: 0 }, 'pick'),
    node('Cast', ['d'], ['df'], { to: F }, 'cast'), node('Sqrt', ['df'], ['sd'], {}, 'sqrt'), node('Div', ['s', 'sd'], ['z'], {}, 'div'),
  ];
  const a = analyzeModel(attentionModel(mid, [makeInt64Tensor('last', [], [-1])], 'z'), '.');
  const s = a.attention[0]!;
  assert.deepEqual([s.kind, s.nodes, s.constants, s.dHead], ['runtime-sqrt', ['div'], [], 8]);
  assert.ok(Math.abs(s.currentScale - 1 / Math.sqrt(8)) < 1e-7);
});

test('attention: scale attribute on com.microsoft Attention (set, and default 1/√head_size) and ai.onnx Attention', () => {
  const fused = (attrs: Record<string, number | { float: number }>) => makeModel(
    [node('Relu', ['x0'], ['x'], {}, 'relu'), node('Attention', ['x', 'w', 'b'], ['y'], attrs, 'attn', 'com.microsoft')],
    [weight('w', [8, 24]), weight('b', [24])],
    [tensorValueInfo('x0', F, [1, 5, 8])], [tensorValueInfo('y', F, [1, 5, 8])], [['', 17], ['com.microsoft', 1]],
  );
  const set = analyzeModel(fused({ num_heads: 2, scale: { float: 0.1 } }), '.').attention[0]!;
  assert.deepEqual([set.kind, set.nodes, set.dHead], ['scale-attribute', ['attn'], 4]);
  assert.ok(Math.abs(set.currentScale - 0.1) < 1e-7);
  const dfltAnalysis = analyzeModel(fused({ num_heads: 2 }), '.');
  const dflt = dfltAnalysis.attention[0]!;
  assert.equal(dflt.currentScale, 0.5);
  assert.deepEqual(dfltAnalysis.params.map((p) => [p.name, p.role, p.fanIn ?? null]), [['w', 'hidden', 8], ['b', 'bias', null]]);
  const onnx23 = makeModel([node('Attention', ['Q', 'K', 'V'], ['Y'], { q_num_heads: 2, kv_num_heads: 2 }, 'sdpa')], [],
    ['Q', 'K', 'V'].map((n) => tensorValueInfo(n, F, [1, 2, 5, 16])), [tensorValueInfo('Y', F, [1, 2, 5, 16])], [['', 23]]);
  const s = analyzeModel(onnx23, '.').attention[0]!;
  assert.deepEqual([s.kind, s.dHead, s.currentScale], ['scale-attribute', 16, 0.25]);
});

test('weights reached through Transpose/Cast, Gemm transB, and inside an If body by outer scope', () => {
  const thenBranch = create(GraphProtoSchema, { name: 'then', node: [node('MatMul', ['x', 'Wif'], ['t_out'], {}, 'if_mm')], output: [tensorValueInfo('t_out', F)] });
  const elseBranch = create(GraphProtoSchema, { name: 'else', node: [node('Identity', ['x'], ['e_out'], {}, 'id')], output: [tensorValueInfo('e_out', F)] });
  const ifNode = node('If', ['cond'], ['y2'], {}, 'branch');
  ifNode.attribute.push(attr('then_branch', 0), attr('else_branch', 0));
  ifNode.attribute[0]!.type = 5; ifNode.attribute[0]!.g = thenBranch; ifNode.attribute[0]!.i = 0n; ifNode.attribute[0]!.name = 'then_branch';
  ifNode.attribute[1]!.type = 5; ifNode.attribute[1]!.g = elseBranch; ifNode.attribute[1]!.i = 0n; ifNode.attribute[1]!.name = 'else_branch';
  const m = makeModel([
    node('Relu', ['x0'], ['x'], {}, 'relu'),
    node('Transpose', ['Wt'], ['Wt_T'], { perm: [1, 0] }, 'tr'), node('Cast', ['Wt_T'], ['Wt_TC'], { to: F }, 'cast'),
    node('MatMul', ['x', 'Wt_TC'], ['y0'], {}, 'mm'),
    node('Gemm', ['x', 'Wg'], ['y1'], { transB: 1 }, 'gemm'),
    ifNode,
  ], [weight('Wt', [3, 6]), weight('Wg', [5, 6]), weight('Wif', [6, 7])],
  [tensorValueInfo('x0', F, [2, 6]), tensorValueInfo('cond', DataType.BOOL, [])],
  [tensorValueInfo('y0', F), tensorValueInfo('y1', F), tensorValueInfo('y2', F)]);
  const p = byName(analyzeModel(m, '.'));
  assert.deepEqual(['Wt', 'Wg', 'Wif'].map((n) => [p.get(n)!.role === 'hidden' || p.get(n)!.role === 'readout', p.get(n)!.fanIn, p.get(n)!.fanOut, p.get(n)!.inputAxis]), [
    [true, 6, 3, 1], [true, 6, 5, 1], [true, 6, 7, 0],
  ]);
  assert.match(p.get('Wif')!.reason, /inside If branch/);
  assert.deepEqual(p.get('Wif')!.consumers, ['if_mm (in branch)']);
});

test('decomposed RMSNorm with Pow(-0.5), and fused SimplifiedLayerNormalization / SkipLayerNormalization', () => {
  const m = makeModel([
    node('Pow', ['x', 'two'], ['sq'], {}, 'sq'), node('ReduceMean', ['sq', 'axes'], ['ms'], { keepdims: 1 }, 'mean'),
    node('Add', ['ms', 'eps'], ['mse'], {}, 'eps_add'), node('Pow', ['mse', 'mhalf'], ['rs'], {}, 'rsqrt'),
    node('Mul', ['x', 'rs'], ['xn'], {}, 'norm'), node('Mul', ['xn', 'g'], ['y'], {}, 'gain'),
    node('SimplifiedLayerNormalization', ['y', 'g2'], ['y2'], { axis: -1 }, 'sln'),
    node('SkipLayerNormalization', ['y2', 'x', 'g3', 'b3', 'sb'], ['y3'], {}, 'skipln', 'com.microsoft'),
  ], [makeScalarFloat('two', 2), makeInt64Tensor('axes', [1], [-1]), makeScalarFloat('eps', 1e-6), makeScalarFloat('mhalf', -0.5),
    weight('g', [8]), weight('g2', [8]), weight('g3', [8]), weight('b3', [8]), weight('sb', [8])],
  [tensorValueInfo('x', F, [2, 8])], [tensorValueInfo('y3', F, [2, 8])], [['', 17], ['com.microsoft', 1]]);
  const p = byName(analyzeModel(m, '.'));
  assert.deepEqual(['g', 'g2', 'g3', 'b3', 'sb', 'eps'].map((n) => p.get(n)!.role), ['norm_scale', 'norm_scale', 'norm_scale', 'norm_bias', 'bias', 'buffer']);
});

test('overrides: glob sets the role with reason "override: <glob>"; a glob matching nothing warns; an unknown role is an error', () => {
  const gpt = buildGpt({ vocab: 32, dModel: 16, layers: 2, heads: 2, maxPos: 8 });
  const a = analyzeModel(gpt, '.', { overrides: [{ match: 'transformer.h.*.attn.c_attn.weight', role: 'buffer' }, { match: 'nothing.*', role: 'hidden' }] });
  const over = a.params.filter((p) => p.reason.startsWith('override:'));
  assert.deepEqual(over.map((p) => [p.name, p.role, p.reason]), [
    ['transformer.h.0.attn.c_attn.weight', 'buffer', 'override: transformer.h.*.attn.c_attn.weight'],
    ['transformer.h.1.attn.c_attn.weight', 'buffer', 'override: transformer.h.*.attn.c_attn.weight'],
  ]);
  assert.ok(a.warnings.some((w) => w.includes("'nothing.*'")));
  assert.throws(() => analyzeModel(gpt, '.', { overrides: [{ match: '*', role: 'weights' as never }] }), /unknown role 'weights'/);
});

test('compareBaseShapes: width dims and m_d against a narrower base, by name and by order; incompatible bases fail clearly', () => {
  const wide = buildGpt({ vocab: 32, dModel: 32, layers: 2, heads: 2, maxPos: 8 });
  const base = buildGpt({ vocab: 32, dModel: 16, layers: 2, heads: 2, maxPos: 8 });
  const widths = { dModel: detectWidth(analyzeModel(wide, '.'))!.dModel, baseDModel: detectWidth(analyzeModel(base, '.'))!.dModel };
  assert.deepEqual(widths, { dModel: 32, baseDModel: 16 });
  const c = compareBaseShapes(wide, base);
  assert.deepEqual([c.dModel, c.baseDModel], [32, 16]);
  assert.match(c.reason, /residual width 32 \/ 16/);
  assert.equal(c.mD, 2);
  assert.deepEqual(c.widthDims['transformer.h.0.attn.c_attn.weight'], [0, 1]);
  assert.deepEqual(c.widthDims['transformer.wte.weight'], [1]);
  assert.deepEqual(c.widthDims['transformer.h.0.mlp.c_proj.weight'], [0, 1]);
  assert.match(c.reason, /matched by name/);
  // Generated names (as a dynamo export writes them): match by order, same answer.
  const rename = (m: ModelProto) => {
    const map = new Map<string, string>();
    m.graph!.initializer.forEach((t, i) => { map.set(t.name, `val_${i}`); t.name = `val_${i}`; });
    for (const n of m.graph!.node) n.input = n.input.map((x) => map.get(x) ?? x);
    return m;
  };
  const byOrder = compareBaseShapes(rename(buildGpt({ vocab: 32, dModel: 32, layers: 2, heads: 2, maxPos: 8 })), rename(buildGpt({ vocab: 32, dModel: 16, layers: 2, heads: 2, maxPos: 8 })));
  assert.equal(byOrder.mD, 2);
  assert.match(byOrder.reason, /matched by order/);
  // A shallower base (depth transfer, --base-model for m_L): the layers both have give the width.
  const shallow = compareBaseShapes(wide, buildGpt({ vocab: 32, dModel: 16, layers: 1, heads: 2, maxPos: 8 }));
  assert.equal(shallow.mD, 2);
  assert.equal(shallow.widthDims['transformer.h.1.attn.c_attn.weight'], undefined);
  const other = buildGpt({ vocab: 32, dModel: 16, layers: 2, heads: 2, maxPos: 8 });
  other.graph!.initializer.find((t) => t.name === 'transformer.h.0.ln_1.weight')!.name = 'transformer.h.0.norm.weight';
  assert.throws(() => compareBaseShapes(wide, other), /no tensor named 'transformer.h.0.ln_1.weight'/);
  const wrongRank = buildGpt({ vocab: 32, dModel: 16, layers: 2, heads: 2, maxPos: 8 });
  wrongRank.graph!.initializer.find((t) => t.name === 'transformer.h.0.ln_1.weight')!.dims = [1n, 16n];
  assert.throws(() => compareBaseShapes(wide, wrongRank), /different rank/);
});

test('attention: no scale between QKᵀ and Softmax is still a site (scale 1, on the QKᵀ node) and is warned about', () => {
  const a = analyzeModel(attentionModel([], [], 's'), '.');
  assert.deepEqual(a.attention.map((s) => [s.kind, s.nodes, s.constants, s.currentScale, s.dHead]), [['mul-after-qk', ['qk'], [], 1, 8]]);
  assert.ok(a.warnings.some((w) => /no scale/.test(w)));
});

test('input-normalisation constants on a raw graph input are buffers, not biases', () => {
  const m = makeModel([node('Sub', ['x', 'mean'], ['c'], {}, 'sub'), node('Mul', ['c', 'inv_std'], ['z'], {}, 'mul'), node('MatMul', ['z', 'W'], ['y'], {}, 'mm')],
    [weight('mean', [6]), weight('inv_std', [6]), weight('W', [6, 3])], [tensorValueInfo('x', F, [2, 6])], [tensorValueInfo('y', F, [2, 3])]);
  const p = byName(analyzeModel(m, '.'));
  assert.deepEqual(['mean', 'inv_std', 'W'].map((n) => p.get(n)!.role), ['buffer', 'buffer', 'readout']);
});

test('attention: torch SDPA (TorchScript) splits a run-time 1/√d as √scale on Q and on Kᵀ', () => {
  const mid = (qDims: boolean) => [
    node('Shape', [qDims ? 'q' : 'q_nodims'], ['qs'], {}, 'shape'), node('Slice', ['qs', 'm1', 'big'], ['dl'], {}, 'slice'),
    node('Cast', ['dl'], ['df'], { to: F }, 'cast'), node('Sqrt', ['df'], ['sd'], {}, 'sqrt'),
    node('Div', ['one', 'sd'], ['sc'], {}, 'recip'), node('Sqrt', ['sc'], ['ssc'], {}, 'sqrt_scale'),
    node('Mul', ['q', 'ssc'], ['qm'], {}, 'mul_q'), node('Mul', ['kt', 'ssc'], ['km'], {}, 'mul_k'),
    node('MatMul', ['qm', 'km'], ['s'], {}, 'qk'), node('Softmax', ['s'], ['p'], { axis: -1 }, 'softmax'),
  ];
  const inits = [makeInt64Tensor('m1', [1], [-1]), makeInt64Tensor('big', [1], [1 << 30]), makeScalarFloat('one', 1)];
  const build = (qDims: boolean) => makeModel(mid(qDims), inits,
    [tensorValueInfo('q', F, [1, 2, 5, 8]), tensorValueInfo('kt', F, [1, 2, 8, 5]), tensorValueInfo('q_nodims', F)], [tensorValueInfo('p', F)]);
  const s = analyzeModel(build(true), '.').attention[0]!;
  assert.deepEqual([s.kind, s.nodes, s.constants, s.dHead], ['runtime-sqrt', ['mul_q', 'mul_k'], [], 8]);
  assert.ok(Math.abs(s.currentScale - 1 / Math.sqrt(8)) < 1e-7, `${s.currentScale}`);
  assert.match(s.reason, /evaluated from known shapes/);
  // The Shape reads a value of unknown dims: the scale cannot be evaluated, 1/√d_head (d from QKᵀ) is assumed.
  const t = analyzeModel(build(false), '.').attention[0]!;
  assert.deepEqual([t.kind, t.dHead], ['runtime-sqrt', 8]);
  assert.match(t.reason, /assumed 1\/√d_head/);
});

test('rotary frequencies (positions × inv_freq → Cos/Sin) are buffers even with position_ids as an input; token-type tables are embeddings', () => {
  const m = makeModel([
    node('Cast', ['position_ids'], ['pf'], { to: F }, 'cast'), node('MatMul', ['pf', 'freq'], ['angles'], {}, 'freqs'),
    node('Cos', ['angles'], ['cos'], {}, 'cos'), node('Sin', ['angles'], ['sin'], {}, 'sin'),
    node('ConstantOfShape', ['ids_shape'], ['tt'], {}, 'zeros'), node('Gather', ['bert.embeddings.token_type_embeddings.weight', 'tt'], ['te'], {}, 'tt_gather'),
  ], [weight('freq', [1, 4]), weight('bert.embeddings.token_type_embeddings.weight', [2, 4]), makeInt64Tensor('ids_shape', [2], [1, 3])],
  [tensorValueInfo('position_ids', DataType.INT64, [1, 3, 1])], [tensorValueInfo('cos', F), tensorValueInfo('sin', F), tensorValueInfo('te', F)]);
  const p = byName(analyzeModel(m, '.'));
  assert.deepEqual([p.get('freq')!.role, p.get('freq')!.reason], ['buffer', 'rotary frequencies: MatMul freqs feeds Cos/Sin']);
  assert.equal(p.get('bert.embeddings.token_type_embeddings.weight')!.role, 'embedding');
});

test('input layers (a linear map reading a graph input through views/affine constants) are µP input weights: role embedding', () => {
  const m = makeModel([
    node('Flatten', ['img'], ['flat'], { axis: 1 }, 'flatten'), node('Sub', ['flat', 'mu'], ['c'], {}, 'center'),
    node('Gemm', ['c', 'W_in'], ['h'], { transB: 1 }, 'in_proj'), node('Relu', ['h'], ['r'], {}, 'relu'),
    node('MatMul', ['r', 'W_hid'], ['h2'], {}, 'hid'), node('Relu', ['h2'], ['r2'], {}, 'relu2'), node('MatMul', ['r2', 'W_out'], ['y'], {}, 'out'),
  ], [weight('mu', [12]), weight('W_in', [8, 12]), weight('W_hid', [8, 8]), weight('W_out', [8, 2])],
  [tensorValueInfo('img', F, [2, 3, 4])], [tensorValueInfo('y', F, [2, 2])]);
  const a = analyzeModel(m, '.');
  const p = byName(a);
  assert.deepEqual(['W_in', 'W_hid', 'W_out', 'mu'].map((n) => p.get(n)!.role), ['embedding', 'hidden', 'readout', 'buffer']);
  assert.deepEqual([p.get('W_in')!.fanIn, p.get('W_in')!.inputAxis], [12, 1]);
  assert.deepEqual(a.embeddingOutputs, [{ param: 'W_in', value: 'h' }]);
  assert.equal(a.dModel, 8);
});

test('layerFromName: module-path layer indices of common exporters', () => {
  const cases: [string, number | undefined][] = [
    ['transformer.h.3.attn.c_attn.weight', 3], ['m.transformer.h.11.mlp.c_fc.weight', 11], ['model.layers.12.self_attn.q_proj.weight', 12],
    ['bert.encoder.layer.3.attention.self.query.weight', 3], ['blocks.0.fcn_layer.weight', 0], ['/blocks.2/fcn_layer/Gemm', 2],
    ['gpt_neox.layers.5.attention.dense.weight', 5], ['model_layers_7_mlp_down_proj_weight', 7], ['h.0.attn.bias_resize', 0],
    ['transformer.wte.weight', undefined], ['layer1.weight', undefined], ['val_3', undefined], ['rnn.weight_ih_l0', undefined], ['h0.weight', undefined],
  ];
  for (const [name, want] of cases) assert.equal(layerFromName(name), want, name);
});

test('ViT-style embeddings: patch Conv (input layer), class token concatenated, position table added', () => {
  const C = 8;
  const m = makeModel([
    node('Conv', ['pixels', 'patch.weight', 'patch.bias'], ['pc'], { kernel_shape: [2, 2], strides: [2, 2] }, 'patch'),
    node('Flatten', ['pc'], ['pf'], { axis: 2 }, 'flat'), node('Reshape', ['pc', 'shape3'], ['p3'], {}, 'r3'),
    node('Transpose', ['p3'], ['seq'], { perm: [0, 2, 1] }, 'tr'),
    node('Expand', ['cls_token', 'cls_shape'], ['cls'], {}, 'expand'), node('Concat', ['cls', 'seq'], ['tokens'], { axis: 1 }, 'cat'),
    node('Add', ['tokens', 'position_embeddings'], ['h0'], {}, 'add_pos'), node('LayerNormalization', ['h0', 'ln.weight', 'ln.bias'], ['hn'], { axis: -1 }, 'ln'),
    node('MatMul', ['hn', 'fc.weight'], ['y'], {}, 'fc'),
  ], [weight('patch.weight', [C, 3, 2, 2]), weight('patch.bias', [C]), makeInt64Tensor('shape3', [3], [1, C, 4]), weight('cls_token', [1, 1, C]),
    makeInt64Tensor('cls_shape', [3], [1, 1, C]), weight('position_embeddings', [1, 5, C]), weight('ln.weight', [C]), weight('ln.bias', [C]), weight('fc.weight', [C, 3])],
  [tensorValueInfo('pixels', F, [1, 3, 4, 4])], [tensorValueInfo('y', F, [1, 5, 3])]);
  const a = analyzeModel(m, '.');
  const p = byName(a);
  assert.deepEqual(['patch.weight', 'patch.bias', 'cls_token', 'position_embeddings', 'ln.weight', 'fc.weight'].map((n) => p.get(n)!.role),
    ['embedding', 'bias', 'embedding', 'position_embedding', 'norm_scale', 'readout']);
  assert.deepEqual(a.embeddingOutputs.map((e) => [e.param, e.value]), [['patch.weight', 'pc'], ['cls_token', 'cls'], ['position_embeddings', 'position_embeddings']]);
  assert.equal(a.dModel, C);
});

test('attention: Einsum QKᵀ (\'bhqd,bhkd->bhqk\') with a Div after it; d_head is the summed index', () => {
  const m = makeModel([
    node('Einsum', ['q', 'k'], ['s'], { equation: 'bhqd,bhkd->bhqk' }, 'qk'), node('Div', ['s', 'c'], ['z'], {}, 'scale'),
    node('Softmax', ['z'], ['p'], { axis: -1 }, 'softmax'),
  ], [makeScalarFloat('c', 4)], [tensorValueInfo('q', F, [1, 2, 5, 16]), tensorValueInfo('k', F, [1, 2, 5, 16])], [tensorValueInfo('p', F)]);
  const s = analyzeModel(m, '.').attention[0]!;
  assert.deepEqual([s.kind, s.currentScale, s.dHead, s.qkMatMul], ['div-after-qk', 0.25, 16, 'qk']);
});

test('layers: an encoder-decoder counts named layers, and each site takes its Q/K/V projections\' layer', () => {
  const d = 8;
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [makeScalarFloat('sqrt_d', Math.sqrt(d))];
  /** Self- or cross-attention: Q from `xq`, K and V from `xkv`; out-proj added back to `xq`. */
  const attention = (prefix: string, xq: string, xkv: string): string => {
    for (const w of ['q', 'k', 'v', 'o']) inits.push(weight(`${prefix}.${w}_proj.weight`, [d, d]));
    const v = (n: string) => `${prefix}.${n}`;
    nodes.push(
      node('MatMul', [xq, `${prefix}.q_proj.weight`], [v('q')], {}, v('q')), node('MatMul', [xkv, `${prefix}.k_proj.weight`], [v('k')], {}, v('k')),
      node('MatMul', [xkv, `${prefix}.v_proj.weight`], [v('v')], {}, v('v')), node('Transpose', [v('k')], [v('kt')], { perm: [1, 0] }, v('kt')),
      node('MatMul', [v('q'), v('kt')], [v('s')], {}, v('qk')), node('Div', [v('s'), 'sqrt_d'], [v('z')], {}, v('div')),
      node('Softmax', [v('z')], [v('p')], { axis: -1 }, v('softmax')), node('MatMul', [v('p'), v('v')], [v('ctx')], {}, v('av')),
      node('MatMul', [v('ctx'), `${prefix}.o_proj.weight`], [v('o')], {}, v('o')), node('Add', [xq, v('o')], [v('out')], {}, v('residual')),
    );
    return v('out');
  };
  nodes.push(node('Relu', ['src'], ['enc_in'], {}, 'enc_relu'), node('Relu', ['tgt'], ['dec_in'], {}, 'dec_relu'));
  const enc = attention('encoder.layers.0.self_attn', 'enc_in', 'enc_in');
  const dec = attention('decoder.layers.0.self_attn', 'dec_in', 'dec_in');
  const cross = attention('decoder.layers.0.encoder_attn', dec, enc);
  nodes.push(node('Relu', [cross], ['y'], {}, 'out_relu'));
  const a = analyzeModel(makeModel(nodes, inits, [tensorValueInfo('src', F, [5, d]), tensorValueInfo('tgt', F, [4, d])], [tensorValueInfo('y', F, [4, d])]), '.');
  assert.deepEqual(a.attention.map((s) => [s.qkMatMul, s.layer, s.dHead]), [
    ['encoder.layers.0.self_attn.qk', 0, d], ['decoder.layers.0.self_attn.qk', 0, d], ['decoder.layers.0.encoder_attn.qk', 0, d],
  ]);
  assert.equal(a.nLayers, 1);
  assert.deepEqual(a.params.filter((p) => p.residualOutput).map((p) => p.name), [
    'encoder.layers.0.self_attn.o_proj.weight', 'decoder.layers.0.self_attn.o_proj.weight', 'decoder.layers.0.encoder_attn.o_proj.weight',
  ]);
});
