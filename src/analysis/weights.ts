/**
 * Weights of linear maps (MatMul, Gemm, Conv) and their geometry: which stored axis runs over the inputs
 * each output unit sums over (fan-in) and which over the output units, and the readout producing the logits.
 *
 *   MatMul(x, W[in, out])             fan-in = in,  inputAxis 0
 *   MatMul(W[out, in], x)             fan-in = in,  inputAxis 1
 *   Gemm(x, B, transB=1): B[out, in]  inputAxis 1   (each Transpose on the way flips the axes of a 2-D weight)
 *   Conv W[out, in/groups, k…]        fan-in = in/groups · ∏k, inputAxis 1 (the kernel axes 2… also sum)
 */
import type { NodeProto } from 'onnx-buf';
import { attrInt, attrInts } from '../onnx/build.js';
import type { Use } from '../onnx/ir.js';
import { DataType } from '../onnx/dtype.js';
import type { AnalysisGraph } from './graph.js';

export interface LinearUse {
  weight: string;
  node: NodeProto;
  /** Input slot of `node` the weight (or its view) feeds. */
  slot: number;
  /** A node inside an If/Loop/Scan body: the main-graph node owning that body. */
  via?: NodeProto;
  fanIn: number;
  fanOut: number;
  inputAxis: number;
  outputAxis: number;
  /** How the geometry was read, for reasons ("MatMul B [in,out]", "Gemm transB=1"). */
  form: string;
}

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

export function isFloatTensor(dataType: number): boolean {
  return FLOAT_TYPES.has(dataType);
}

/** Uses of initializer `name` as the weight of a MatMul/Gemm/Conv whose other operand carries activations. */
export function linearUses(g: AnalysisGraph, name: string, shape: number[]): LinearUse[] {
  const out: LinearUse[] = [];
  for (const { use, through } of g.viewUses(name)) {
    const flips = through.filter((t) => t.opType === 'Transpose' && isAxisSwap(t, shape.length)).length % 2 === 1;
    const lu = geometry(g, use, shape, flips);
    if (lu) out.push({ ...lu, weight: name, node: use.node, slot: use.index, ...(use.via ? { via: use.via } : {}) });
  }
  return out;
}

function isAxisSwap(t: NodeProto, rank: number): boolean {
  const perm = attrInts(t, 'perm');
  if (!perm) return rank >= 2;
  const n = perm.length;
  return n >= 2 && perm[n - 1] === n - 2 && perm[n - 2] === n - 1;
}

type Geometry = Omit<LinearUse, 'weight' | 'node' | 'slot' | 'via'>;

function otherIsActivation(g: AnalysisGraph, use: Use, slot: number): boolean {
  const v = use.node.input[slot];
  return !!v && (g.dynamic.has(v) || (!!use.via && !g.isInitializer(v)));
}

function geometry(g: AnalysisGraph, use: Use, shape: number[], flipped: boolean): Geometry | undefined {
  const n = use.node;
  const r = shape.length;
  if (r < 2) return undefined;
  const matrix = (contractAxis: number, form: string): Geometry => {
    const inAxis = flipped ? (contractAxis === r - 1 ? r - 2 : r - 1) : contractAxis;
    const outAxis = inAxis === r - 1 ? r - 2 : r - 1;
    return { fanIn: shape[inAxis]!, fanOut: shape[outAxis]!, inputAxis: inAxis, outputAxis: outAxis, form: flipped ? `${form}, stored transposed` : form };
  };
  if (n.opType === 'MatMul' || n.opType === 'MatMulInteger' || n.opType === 'FusedMatMul') {
    if (feedsCosSin(g, n)) return undefined; // positions × inv_freq: rotary frequencies, not a weight
    // com.microsoft FusedMatMul transposes its operands by attribute.
    const tA = n.opType === 'FusedMatMul' && attrInt(n, 'transA', 0) === 1;
    const tB = n.opType === 'FusedMatMul' && attrInt(n, 'transB', 0) === 1;
    if (use.index === 1 && otherIsActivation(g, use, 0)) return matrix(tB ? r - 1 : r - 2, tB ? 'FusedMatMul transB=1, W[out,in]' : 'MatMul(x, W[in,out])');
    if (use.index === 0 && otherIsActivation(g, use, 1)) return matrix(tA ? r - 2 : r - 1, 'MatMul(W[out,in], x)');
    return undefined;
  }
  if (n.opType === 'Attention' && n.domain === 'com.microsoft' && use.index === 1 && otherIsActivation(g, use, 0) && !flipped) {
    return { fanIn: shape[0]!, fanOut: shape[1]!, inputAxis: 0, outputAxis: 1, form: 'com.microsoft Attention QKV weight W[in, 3·hidden]' };
  }
  if (n.opType === 'Gemm') {
    if (use.index === 1 && otherIsActivation(g, use, 0)) {
      const t = attrInt(n, 'transB', 0) === 1;
      return matrix(t ? 1 : 0, t ? 'Gemm transB=1, B[out,in]' : 'Gemm B[in,out]');
    }
    if (use.index === 0 && otherIsActivation(g, use, 1)) {
      const t = attrInt(n, 'transA', 0) === 1;
      return matrix(t ? 0 : 1, t ? 'Gemm transA=1, A[in,out]' : 'Gemm A[out,in]');
    }
    return undefined;
  }
  if ((n.opType === 'Conv' || n.opType === 'ConvTranspose') && use.index === 1 && otherIsActivation(g, use, 0) && !flipped) {
    const kernel = shape.slice(2).reduce((a, b) => a * b, 1);
    if (n.opType === 'Conv') {
      return { fanIn: shape[1]! * kernel, fanOut: shape[0]!, inputAxis: 1, outputAxis: 0, form: `Conv W[out, in/groups, k…]: fan-in = ${shape[1]}·${kernel} over axes 1… (inputAxis 1)` };
    }
    const groups = attrInt(n, 'group', 1);
    return { fanIn: shape[0]! * kernel, fanOut: shape[1]! * groups, inputAxis: 0, outputAxis: 1, form: 'ConvTranspose W[in, out/groups, k…] (inputAxis 0)' };
  }
  return undefined;
}

const TO_TRIG_OPS = new Set(['Transpose', 'Concat', 'Reshape', 'Cast', 'Mul', 'Unsqueeze', 'Expand', 'MatMul', 'Einsum', 'Gather', 'Slice']);

/** The MatMul's output reaches Cos or Sin within a few view/concat hops (rotary embedding frequencies). */
export function feedsCosSin(g: AnalysisGraph, n: NodeProto): boolean {
  const stack: { v: string; d: number }[] = [{ v: n.output[0]!, d: 0 }];
  while (stack.length > 0) {
    const { v, d } = stack.pop()!;
    for (const u of g.directUses(v)) {
      if (u.node.opType === 'Cos' || u.node.opType === 'Sin') return true;
      if (d < 5 && TO_TRIG_OPS.has(u.node.opType)) stack.push({ v: u.node.output[0]!, d: d + 1 });
    }
  }
  return false;
}

/** Ops the logits may pass through after the readout (bias, reshapes, output non-linearities). */
const LOGITS_TAIL_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Reshape', 'Transpose', 'Cast', 'Identity', 'Squeeze', 'Unsqueeze', 'Flatten',
  'Softmax', 'LogSoftmax', 'Sigmoid', 'Tanh', 'DepthToSpace', 'Slice',
]);

export interface LogitsSource {
  output: string;
  node: NodeProto;
  weight: string;
  tail: NodeProto[];
}

/**
 * The graph output holding the logits and the linear map producing them: walk back from each output over
 * LOGITS_TAIL_OPS (a binary op only when its other operand is constant: a residual Add stops the walk) to a
 * MatMul/Gemm/Conv with an initializer weight. Prefers an output named like `logits`, then graph order.
 */
export function findLogitsSource(g: AnalysisGraph): LogitsSource | undefined {
  const outputs = g.model.graph!.output.map((o) => o.name);
  const ranked = [...outputs.filter((o) => /logit/i.test(o)), ...outputs.filter((o) => !/logit/i.test(o))];
  for (const output of ranked) {
    const src = walkToLinear(g, output);
    if (src) return { output, ...src };
  }
  return undefined;
}

function walkToLinear(g: AnalysisGraph, output: string): { node: NodeProto; weight: string; tail: NodeProto[] } | undefined {
  const tail: NodeProto[] = [];
  let v = output;
  for (let hops = 0; hops < 10; hops++) {
    const p = g.producer(v);
    if (!p) return undefined;
    if (['MatMul', 'Gemm', 'Conv'].includes(p.opType)) {
      const weight = p.input.slice(0, 2).map((i) => g.viewSource(i).value).find((w) => g.isInitializer(w));
      const data = p.input.slice(0, 2).find((i) => g.dynamic.has(i));
      return weight && data ? { node: p, weight, tail } : undefined;
    }
    if (!LOGITS_TAIL_OPS.has(p.opType)) return undefined;
    const dyn = p.input.filter((i) => i && g.dynamic.has(i));
    if (dyn.length !== 1) return undefined;
    tail.push(p);
    v = dyn[0]!;
  }
  return undefined;
}
