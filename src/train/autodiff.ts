/**
 * Reverse-mode autodiff over an ONNX graph, emitting standard ai.onnx ops only (so the backward runs in a
 * plain onnxruntime inference session on any EP; docs/notes/autodiff.md §0).
 *
 * Differentiated nodes are those on a path from a `wrt` value to `loss` through floating-point values;
 * constants, shape subgraphs and integer tensors are left alone. Nodes are visited in reverse topological
 * (graph) order; a value with several consumers gets the Add/Sum of its contributions; the seed is
 * dLoss = 1 shaped like the loss. Each op's vector-Jacobian product comes from the rule registry
 * (./grad-rules/).
 */
import type { GraphProto, NodeProto, TensorProto } from 'onnx-buf';
import { dataTypeName, isFloatType } from '../onnx/dtype.js';
import type { NameAuthority } from '../onnx/ir.js';
import { subgraphsOf } from '../onnx/walk.js';
import { ExitCode, UserInputError } from '../errors.js';
import { floatConstTensor, GradEmitter } from './grad-helpers.js';
import { inferShapes, type ShapeTable } from '../shapes/infer.js';
import { findGradRule } from './grad-rules/index.js';
import type { GradContext, GradRule } from './grad-rules/types.js';

/**
 * Lowest ai.onnx opset the backward is emitted for. Rules read forward nodes with the model's own opset
 * semantics and emit ops valid at it (axes/sizes as attributes below 13, as inputs from 13; OneHot·MatMul
 * below 16 where ScatterND has no reduction). Below 13, broadcast reductions need known ranks and shapes.
 */
export const MIN_OPSET = 11;

export interface BackwardOptions {
  /** Name of the (scalar) loss value in the graph. */
  loss: string;
  /** Initializer / graph-input names to differentiate. */
  wrt: string[];
  names: NameAuthority;
  /** ai.onnx opset of the model. */
  opset: number;
  /**
   * Optional vector-Jacobian seeds: value name → name of its given gradient (same shape). When present the
   * pass starts from these instead of dLoss = 1, and `loss` only names the objective in messages.
   */
  seeds?: Map<string, string>;
}

export interface BackwardResult {
  nodes: NodeProto[];
  initializers: TensorProto[];
  /** wrt name → name of its gradient value (same shape and type). */
  grads: Map<string, string>;
}

/** Ops whose outputs carry no gradient whatever their type (indices, shapes, masks, random draws). */
const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual',
  'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf', 'ConstantOfShape', 'Constant', 'RandomNormal', 'RandomUniform',
  'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial', 'EyeLike', 'Range', 'OneHot',
]);

export function buildBackward(graph: GraphProto, opts: BackwardOptions): BackwardResult {
  if (opts.opset < MIN_OPSET) {
    throw new UserInputError(`autodiff: the model's ai.onnx opset ${opts.opset} is below ${MIN_OPSET}; convert the model to opset ${MIN_OPSET} or newer first`, ExitCode.unsupported);
  }
  const shapes = inferShapes(graph);
  const seeds = opts.seeds && opts.seeds.size > 0 ? opts.seeds : undefined;
  const lossType = shapes.elemType(seeds ? [...seeds.keys()][0]! : opts.loss);
  if (lossType !== undefined && !isFloatType(lossType)) {
    throw new UserInputError(`autodiff: loss '${opts.loss}' has type ${dataTypeName(lossType)}; the loss must be a floating-point tensor`);
  }
  const floatType = lossType ?? 1;
  checkNamesExist(graph, opts.wrt, seeds ? [...seeds.keys()] : [opts.loss]);
  const dependent = forwardDependents(graph, opts.wrt, shapes);
  const reaching = valuesReachingLoss(graph, seeds ? [...seeds.keys()] : [opts.loss]);
  const e = new GradEmitter(opts.names, opts.opset);
  const acc = new GradAccumulator(e);
  if (seeds) for (const [value, grad] of seeds) acc.add(value, grad);
  else acc.add(opts.loss, seedGradient(e, opts.loss, shapes, floatType));

  for (let k = graph.node.length - 1; k >= 0; k--) {
    const n = graph.node[k]!;
    const onPath = n.output.some((o) => o && dependent.has(o) && reaching.has(o));
    if (!onPath || !allInputs(n).some((i) => dependent.has(i))) continue;
    // Downstream of a zero-gradient op (Floor, Sign, …) nothing arrives: no contribution to propagate.
    if (!n.output.some((o) => o && acc.has(o))) continue;
    const rule = getGradRule(n, opts);
    e.scope = `${n.name || n.opType}_grad`;
    const ctx = makeContext(n, rule, e, shapes, acc, dependent, floatType, opts.opset);
    const grads = rule.build(ctx);
    n.input.forEach((name, i) => {
      const g = grads[i];
      if (g && ctx.needsGrad(i)) acc.add(name, g);
    });
  }

  const result = new Map<string, string>();
  e.scope = 'grad';
  for (const w of opts.wrt) {
    const total = acc.total(w) ?? e.zerosLike(w, shapes.elemType(w) ?? floatType);
    const name = opts.names.fresh(`${w}_grad`);
    e.opInto('Identity', [total], name);
    result.set(w, name);
  }
  return { nodes: e.nodes, initializers: e.initializers, grads: result };
}

function checkNamesExist(graph: GraphProto, wrt: string[], objectives: string[]): void {
  const known = new Set<string>([...graph.initializer.map((t) => t.name), ...graph.input.map((v) => v.name), ...graph.node.flatMap((n) => n.output)]);
  for (const o of objectives) {
    if (!known.has(o)) throw new UserInputError(`autodiff: loss '${o}' is not a value of the graph; name an existing output`);
  }
  for (const w of wrt) {
    if (!known.has(w)) throw new UserInputError(`autodiff: '${w}' (to differentiate) is not an initializer or input of the graph; check the parameter name`);
  }
}

/** dLoss = 1, shaped like the loss (a constant when its shape is static). */
function seedGradient(e: GradEmitter, loss: string, shapes: ShapeTable, floatType: number): string {
  e.scope = 'grad_seed';
  const shape = shapes.shape(loss);
  if (shape && shape.every((d) => typeof d === 'number')) {
    const dims = shape as number[];
    return e.constFloat(new Array<number>(dims.reduce((a, b) => a * b, 1)).fill(1), floatType, dims);
  }
  return e.op('ConstantOfShape', [e.shapeOf(loss)], { value: floatConstTensor('', [1], [1], floatType) });
}

/** Inputs of a node including outer-scope names its subgraphs read. */
function allInputs(n: NodeProto): string[] {
  const names = n.input.filter((s) => s);
  for (const sub of subgraphsOf(n)) {
    const local = new Set<string>([...sub.input.map((v) => v.name), ...sub.initializer.map((t) => t.name)]);
    for (const m of sub.node) {
      for (const i of allInputs(m)) if (!local.has(i)) names.push(i);
      m.output.forEach((o) => local.add(o));
    }
  }
  return names;
}

/** Values that depend on a wrt value through floating-point data flow. */
function forwardDependents(graph: GraphProto, wrt: string[], shapes: ShapeTable): Set<string> {
  const dep = new Set(wrt);
  for (const n of graph.node) {
    if (NON_DIFFERENTIABLE.has(n.opType) || !allInputs(n).some((i) => dep.has(i))) continue;
    for (const o of n.output) {
      const t = shapes.elemType(o);
      if (o && (t === undefined || isFloatType(t))) dep.add(o);
    }
  }
  return dep;
}

function valuesReachingLoss(graph: GraphProto, objectives: string[]): Set<string> {
  const reach = new Set(objectives);
  for (let k = graph.node.length - 1; k >= 0; k--) {
    const n = graph.node[k]!;
    if (n.output.some((o) => reach.has(o))) for (const i of allInputs(n)) reach.add(i);
  }
  return reach;
}

function nodeLabel(n: NodeProto): string {
  const dom = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}:` : '';
  return `${dom}${n.opType} node '${n.name || n.output[0]}'`;
}

function getGradRule(n: NodeProto, opts: BackwardOptions): GradRule {
  const rule = findGradRule(n.opType, n.domain);
  if (rule) return rule;
  throw new UserInputError(
    `autodiff: no gradient rule for op ${n.domain ? `${n.domain}:` : ''}${n.opType} (node '${n.name || n.output[0]}'), which lies between a trained parameter and the loss '${opts.loss}'; ` +
    'freeze the parameters that feed it, re-export the model without this op, or add a rule in src/train/grad-rules/',
    ExitCode.unsupported,
  );
}

class GradAccumulator {
  private readonly parts = new Map<string, string[]>();
  private readonly totals = new Map<string, string>();
  constructor(private readonly e: GradEmitter) {}

  add(value: string, grad: string): void {
    const list = this.parts.get(value);
    if (list) list.push(grad);
    else this.parts.set(value, [grad]);
    this.totals.delete(value);
  }

  has(value: string): boolean {
    return this.parts.has(value);
  }

  total(value: string): string | undefined {
    const cached = this.totals.get(value);
    if (cached) return cached;
    const list = this.parts.get(value);
    if (!list) return undefined;
    const t = this.e.sum(list);
    this.parts.set(value, [t]);
    this.totals.set(value, t);
    return t;
  }
}

function makeContext(
  n: NodeProto, rule: GradRule, e: GradEmitter, shapes: ShapeTable, acc: GradAccumulator,
  dependent: Set<string>, floatType: number, opset: number,
): GradContext {
  const fail = (what: string): never => {
    throw new UserInputError(`autodiff: ${nodeLabel(n)}: ${what}`, ExitCode.unsupported);
  };
  const needsGrad = (i: number): boolean => {
    const name = n.input[i];
    if (!name || !dependent.has(name)) return false;
    const t = shapes.elemType(name);
    return t === undefined || isFloatType(t);
  };
  n.input.forEach((name, i) => {
    if (needsGrad(i) && rule.inputs !== 'all' && !rule.inputs.includes(i)) fail(`the gradient with respect to input ${i} ('${name}') is not supported; freeze the parameters that feed it`);
  });
  return {
    node: n, opset, e, shapes, fail, needsGrad,
    input: (i) => n.input[i] ?? '',
    output: (i) => n.output[i] ?? '',
    gradOut: (i) => (n.output[i] ? acc.total(n.output[i]!) : undefined),
    shape: (name) => shapes.shape(name),
    getRank: (name) => shapes.rank(name) ?? fail(`the rank of '${name}' cannot be inferred from the graph (it comes from an op the shape inference does not follow); please report the model`),
    elemType: (name) => { const t = shapes.elemType(name); return t !== undefined && isFloatType(t) ? t : floatType; },
    ints: (name) => (name ? shapes.ints(name) : undefined),
  };
}
