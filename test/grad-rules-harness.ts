/**
 * Finite-difference harness for gradient rules. A case is a few forward nodes over graph inputs; the
 * harness appends loss = Σ_k ReduceSum(out_k ⊙ R_k) with fixed seeded random R_k, runs buildBackward, and
 * compares the backward gradients with central differences (L(x+h·e_j) − L(x−h·e_j)) / 2h over every entry of
 * every differentiated input, all evaluations in ONE onnxruntime-node CPU session (many runs).
 */
import { create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto, type NodeProto, type TensorProto } from 'onnx-buf';
import { encodeModel } from '../src/onnx/codec.js';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { NameAuthority } from '../src/onnx/ir.js';
import { makeByteTensor, makeInt64Tensor } from '../src/onnx/tensor.js';
import { buildBackward } from '../src/train/autodiff.js';
import { floatConstTensor } from '../src/train/grad-helpers.js';
import { mulberry32 } from '../src/passes/rng.js';

export interface CaseInput {
  name: string;
  shape: number[];
  /** Differentiate with respect to this input (default true for float inputs). */
  wrt?: boolean;
  /** int64 values (indices, axes); the input is then an int64 graph input, never differentiated. */
  ints?: number[];
  /** With `ints`: a bool tensor (0/1) instead of int64. */
  bool?: boolean;
  /** Fixed float values instead of random ones. */
  values?: number[];
  /** Random range [lo, hi] (default [-1, 1]). */
  range?: [number, number];
  /** Keep static dims even in a `symbolic` case (weights are initializers of known shape in real models). */
  fixedShape?: boolean;
  /** An initializer that is also a graph input (a trainable weight ORT lets a feed override), differentiated. */
  asInitializer?: boolean;
  /** Feed as an initializer (constant) instead of a graph input. */
  constant?: boolean;
}

export interface GradCase {
  nodes: NodeProto[];
  inputs: CaseInput[];
  /** Outputs entering the loss (default: the first output of the last node). */
  outputs?: string[];
  opset?: number;
  dtype?: 'float64' | 'float32';
  /** Declare graph inputs with symbolic dims (exercises the run-time shape paths); 'all' also hides dims of 1. */
  symbolic?: boolean | 'all';
  /** Extra initializers (weights given as constants). */
  initializers?: TensorProto[];
  step?: number;
  seed?: number;
}

/** A case in the rule table; `rule` is the registry key it covers ('domain:Op' for contrib ops). */
export interface NamedCase { name: string; rule: string; case: GradCase }

export interface GradReport {
  /** max |analytic − FD| / max(max |FD|, 1e-3), over all differentiated inputs. */
  relError: number;
  perInput: Record<string, number>;
  backwardOps: string[];
  fdRuns: number;
}

/** Seeded uniforms in [0, 1) (tests are deterministic). */
export const rng = mulberry32;

/** Basic optimizations only: ORT's extended fusions (e.g. x·Sigmoid(x) → QuickGelu) have float-only kernels. */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic' };

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function makeModel(nodes: NodeProto[], c: GradCase, inputs: CaseInput[], outputs: string[], inits: TensorProto[], floatType: number): ModelProto {
  const opset = c.opset ?? 17;
  const graph = create(GraphProtoSchema, {
    name: 'case',
    node: nodes,
    input: inputs.filter((i) => !i.constant).map((i) => tensorValueInfo(i.name, i.bool ? DataType.BOOL : i.ints ? DataType.INT64 : floatType,
      c.symbolic && !i.fixedShape ? i.shape.map((d, k) => (d === 1 && c.symbolic !== 'all' ? 1 : `${i.name}_d${k}`)) : i.shape)),
    output: outputs.map((o) => tensorValueInfo(o, floatType)),
    initializer: inits,
  });
  return create(ModelProtoSchema, {
    irVersion: BigInt(opset >= 23 ? 11 : opset >= 21 ? 10 : opset >= 19 ? 9 : 8),
    producerName: 'grad-rules-harness',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) }), create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n })],
    graph,
  });
}

function constInit(i: CaseInput, values: Float64Array, floatType: number): TensorProto {
  if (i.ints && i.bool) return makeByteTensor(i.name, i.shape, Uint8Array.from(i.ints), DataType.BOOL);
  return i.ints ? makeInt64Tensor(i.name, i.shape, i.ints) : floatConstTensor(i.name, i.shape, Array.from(values), floatType);
}

export async function checkGradient(c: GradCase): Promise<GradReport> {
  const f64 = (c.dtype ?? 'float64') === 'float64';
  const floatType = f64 ? DataType.DOUBLE : DataType.FLOAT;
  const ortType = f64 ? 'float64' : 'float32';
  const rand = rng(c.seed ?? 1234);
  const values = new Map<string, Float64Array>();
  for (const i of c.inputs) {
    const [lo, hi] = i.range ?? [-1, 1];
    values.set(i.name, i.values ? Float64Array.from(i.values) : Float64Array.from({ length: count(i.shape) }, () => lo + (hi - lo) * rand()));
  }
  const inits = (withParams: boolean) => [...(c.initializers ?? []),
    ...c.inputs.filter((i) => i.constant || (withParams && i.asInitializer)).map((i) => constInit(i, values.get(i.name)!, floatType))];
  // The FD model feeds every non-constant input (onnxruntime-node cannot override initializers); the
  // backward model holds `asInitializer` weights as initializers, as exported models do.
  const fdInputs = c.inputs.filter((i) => !i.constant);
  const backInputs = c.inputs.filter((i) => !i.constant && !i.asInitializer);
  const feedsOf = (fed: CaseInput[], override?: { name: string; data: Float64Array }) => Object.fromEntries(fed.map((i) => {
    if (i.ints && i.bool) return [i.name, new ort.Tensor('bool', Uint8Array.from(i.ints), i.shape)];
    if (i.ints) return [i.name, new ort.Tensor('int64', BigInt64Array.from(i.ints.map(BigInt)), i.shape)];
    const data = override?.name === i.name ? override.data : values.get(i.name)!;
    return [i.name, new ort.Tensor(ortType, f64 ? Float64Array.from(data) : Float32Array.from(data), i.shape)];
  }));
  const outputs = c.outputs ?? [c.nodes[c.nodes.length - 1]!.output[0]!];

  // 1. forward only: output shapes for the random weights R_k
  const fwd = await ort.InferenceSession.create(encodeModel(makeModel(c.nodes, c, fdInputs, outputs, inits(false), floatType)), SESSION_OPTIONS);
  const fwdOut = await fwd.run(feedsOf(fdInputs));
  const lossNodes: NodeProto[] = [];
  const lossInits: TensorProto[] = [];
  const terms: string[] = [];
  outputs.forEach((o, k) => {
    const dims = fwdOut[o]!.dims.map(Number);
    lossInits.push(floatConstTensor(`R_${k}`, dims, Array.from({ length: count(dims) }, () => 2 * rand() - 1), floatType));
    lossNodes.push(node('Mul', [o, `R_${k}`], [`weighted_${k}`]), node('ReduceSum', [`weighted_${k}`], [`term_${k}`], { keepdims: 0 }));
    terms.push(`term_${k}`);
  });
  let loss = terms[0]!;
  for (let k = 1; k < terms.length; k++) {
    lossNodes.push(node('Add', [loss, terms[k]!], [`loss_${k}`]));
    loss = `loss_${k}`;
  }

  // 2. forward + loss + backward in one model
  const model = makeModel([...c.nodes, ...lossNodes], c, backInputs, [loss], [...inits(true), ...lossInits], floatType);
  const wrt = fdInputs.filter((i) => !i.ints && i.wrt !== false).map((i) => i.name);
  const back = buildBackward(model.graph!, { loss, wrt, names: new NameAuthority(model), opset: c.opset ?? 17 });
  model.graph!.node.push(...back.nodes);
  model.graph!.initializer.push(...back.initializers);
  for (const w of wrt) model.graph!.output.push(tensorValueInfo(back.grads.get(w)!, floatType));
  const session = await ort.InferenceSession.create(encodeModel(model), SESSION_OPTIONS);
  const base = await session.run(feedsOf(backInputs));
  const fdSession = await ort.InferenceSession.create(encodeModel(makeModel([...c.nodes, ...lossNodes], c, fdInputs, [loss], [...inits(false), ...lossInits], floatType)), SESSION_OPTIONS);

  // 3. central differences, one session, many runs
  const h = c.step ?? (f64 ? 1e-5 : 1e-2);
  const perInput: Record<string, number> = {};
  let fdRuns = 0;
  let worst = 0;
  for (const w of wrt) {
    const analytic = base[back.grads.get(w)!]!.data as Float64Array | Float32Array;
    const x = values.get(w)!;
    const fd = new Float64Array(x.length);
    for (let j = 0; j < x.length; j++) {
      const plus = Float64Array.from(x); plus[j] += h;
      const minus = Float64Array.from(x); minus[j] -= h;
      const lp = Number((await fdSession.run(feedsOf(fdInputs, { name: w, data: plus })))[loss]!.data[0]);
      const lm = Number((await fdSession.run(feedsOf(fdInputs, { name: w, data: minus })))[loss]!.data[0]);
      fd[j] = (lp - lm) / (2 * h);
      fdRuns += 2;
    }
    if (analytic.length !== fd.length) throw new Error(`gradient of '${w}' has ${analytic.length} entries, expected ${fd.length}`);
    let maxDiff = 0, maxFd = 1e-3;
    for (let j = 0; j < fd.length; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(analytic[j]! - fd[j]!));
      maxFd = Math.max(maxFd, Math.abs(fd[j]!));
    }
    perInput[w] = maxDiff / maxFd;
    worst = Math.max(worst, perInput[w]!);
  }
  return { relError: worst, perInput, backwardOps: [...new Set(back.nodes.map((n) => n.opType))].sort(), fdRuns };
}

/**
 * The case's forward graph + loss Σ_k ReduceSum(out_k) + backward, at element type `floatType`, without
 * running it (for static checks such as CUDA kernel coverage). Returns the model and its backward node names.
 */
export function caseWithBackward(c: GradCase, floatType: number): { model: ModelProto; backwardNodes: Set<string> } {
  const rand = rng(c.seed ?? 1234);
  const inits = [...(c.initializers ?? []), ...c.inputs.filter((i) => i.constant || i.asInitializer).map((i) =>
    constInit(i, Float64Array.from(i.values ?? Array.from({ length: count(i.shape) }, () => rand())), floatType))];
  const outputs = c.outputs ?? [c.nodes[c.nodes.length - 1]!.output[0]!];
  const lossNodes = outputs.map((o, k) => node('ReduceSum', [o], [`term_${k}`], { keepdims: 0 }));
  let loss = 'term_0';
  outputs.slice(1).forEach((_, k) => { lossNodes.push(node('Add', [loss, `term_${k + 1}`], [`loss_${k + 1}`])); loss = `loss_${k + 1}`; });
  const model = makeModel([...c.nodes, ...lossNodes], c, c.inputs.filter((i) => !i.constant && !i.asInitializer), [loss], inits, floatType);
  const wrt = c.inputs.filter((i) => !i.constant && !i.ints && i.wrt !== false).map((i) => i.name);
  const back = buildBackward(model.graph!, { loss, wrt, names: new NameAuthority(model), opset: c.opset ?? 17 });
  model.graph!.node.push(...back.nodes);
  model.graph!.initializer.push(...back.initializers);
  return { model, backwardNodes: new Set(back.nodes.map((n) => n.name)) };
}
