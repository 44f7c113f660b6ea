/**
 * The training objective, picked from the model's inputs and outputs (what an ML engineer would train the
 * export with), or named by `--objective`:
 *
 *   next-token  token input and per-token logits [b, s, V] (the output of a readout layer, or named
 *               `logits`): cross-entropy of position i against token i+1 (targets shifted by the data)
 *   class       an output [b, C] from a readout/classifier layer or named `logits` (image classifiers,
 *               audio classifiers, encoders with a classification head): cross-entropy against a label per row
 *   mse         anything else (pooled embeddings [b, d], hidden states [b, s, d], regression): mean squared
 *               error to seeded targets (or `--labels` files) of the output's shape
 *   mlm         on request: masked-LM cross-entropy on per-token logits (BERT's 15 % masking, 80/10/10);
 *               the loss graph is the next-token one (targets −100 where not masked), only the data differs
 *
 * The train-step builder (src/train/train-step.ts), `train`, `coord-check` and `sweep` all use
 * `chooseObjective`, so the loss graph `--emit-train` writes is the one `train` runs.
 */
import type { GraphProto, ModelProto, ValueInfoProto } from 'onnx-buf';
import { ExitCode, UsageError, UserInputError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { findValueShape, valueInfoElemType, type Dim } from './graph-util.js';
import type { LossKind } from './loss.js';

export const OBJECTIVES = ['next-token', 'class', 'mse', 'mlm'] as const;
export type ObjectiveKind = (typeof OBJECTIVES)[number];

export interface Objective {
  kind: ObjectiveKind;
  /** The model output the loss reads. */
  output: string;
  /** Its shape as the graph records it. */
  outputShape: Dim[];
  loss: LossKind;
  /** The integer input holding token ids (next-token, mlm; class/mse on token models), if any. */
  tokenInput?: string;
  /** Number of classes (the logits' last dim) for the cross-entropy objectives. */
  classes?: number;
  /** Why this objective, for the log line. */
  reason: string;
}

export interface ObjectiveOptions {
  /** `--objective`: skip detection. */
  requested?: ObjectiveKind;
  /** `--logits`: the output the loss reads. */
  output?: string;
  /** The graph output the analysis found produced by a readout layer (analysis.logits.output). */
  readoutOutput?: string;
}

/** Inputs the host fills with fixed values, never with data: masks, positions, segment ids, KV caches. */
export type AuxInputKind = 'mask' | 'position' | 'token_type' | 'past';

export function auxInputKind(name: string): AuxInputKind | undefined {
  if (/past|cache/i.test(name)) return 'past';
  if (/mask/i.test(name)) return 'mask';
  if (/position/i.test(name)) return 'position';
  if (/token_type|segment/i.test(name)) return 'token_type';
  return undefined;
}

const isInt = (t: number | undefined) => t === DataType.INT64 || t === DataType.INT32;

/** The integer model input that carries token ids: the first integer input that is not a mask, position, segment or cache input. */
export function findTokenInputName(inputs: readonly { name: string; elemType: number }[]): string | undefined {
  return inputs.find((v) => isInt(v.elemType) && !auxInputKind(v.name))?.name;
}

export function chooseObjective(graph: GraphProto, modelInputs: readonly ValueInfoProto[], opts: ObjectiveOptions = {}): Objective {
  const inputs = modelInputs.map((v) => ({ name: v.name, elemType: valueInfoElemType(v) ?? DataType.FLOAT }));
  const tokenInput = findTokenInputName(inputs);
  const output = opts.output ?? findLossOutput(graph, opts.readoutOutput);
  if (opts.output && !graph.output.some((o) => o.name === opts.output)) {
    throw new UsageError(`--logits ${opts.output}: not an output of the model (outputs: ${graph.output.map((o) => o.name).join(', ')})`);
  }
  const shape = findValueShape(graph, output) ?? [];
  const last = shape.at(-1);
  const classes = typeof last === 'number' && last >= 2 ? last : undefined;
  const isLogits = /(^|[./_])logits$/i.test(output) || (output === opts.readoutOutput && !isEmbeddingOutput(graph, output));
  const desc = `'${output}' [${shape.join(', ')}]`;
  const base = { output, outputShape: shape, ...(tokenInput ? { tokenInput } : {}) };
  const perToken = shape.length === 3 && classes !== undefined;
  const requested = opts.requested;
  if (requested === 'next-token' || requested === 'mlm') {
    if (!tokenInput) throw new UsageError(`--objective ${requested}: the model has no integer token input (inputs: ${inputs.map((v) => v.name).join(', ')}); use --objective class or mse`);
    if (!perToken) throw new UsageError(`--objective ${requested}: output ${desc} is not per-token logits [batch, seq, vocab]; pass --logits NAME or use --objective class or mse`);
    return { ...base, kind: requested, loss: 'cross_entropy', classes, reason: `--objective ${requested}` };
  }
  if (requested === 'class') {
    if (classes === undefined || shape.length < 2) throw new UsageError(`--objective class: output ${desc} has no fixed class dimension (last); pass --logits NAME or use --objective mse`);
    return { ...base, kind: 'class', loss: 'cross_entropy', classes, reason: '--objective class' };
  }
  if (requested === 'mse') return { ...base, kind: 'mse', loss: 'mse', reason: '--objective mse' };
  if (isLogits && perToken && tokenInput) {
    return { ...base, kind: 'next-token', loss: 'cross_entropy', classes, reason: `token input '${tokenInput}' and per-token logits ${desc}` };
  }
  if (isLogits && shape.length === 2 && classes !== undefined) {
    return { ...base, kind: 'class', loss: 'cross_entropy', classes, reason: `class logits ${desc} from a ${output === opts.readoutOutput ? 'readout layer' : 'head named logits'}` };
  }
  const what = shape.length === 2 ? 'one vector per example (pooled embedding or regression)' : shape.length === 3 ? 'hidden states, not logits of a readout layer' : 'not class logits';
  return { ...base, kind: 'mse', loss: 'mse', reason: `output ${desc} is ${what}` };
}

/** Ops after which an output is a representation, not logits (BERT's pooler ends in Tanh; sentence embeddings in a norm). */
const EMBEDDING_TAILS = new Set(['Tanh', 'Relu', 'Gelu', 'Sigmoid', 'LayerNormalization', 'Div', 'LpNormalization', 'ReduceMean', 'Erf']);

/** An output named like an embedding or hidden state, or produced by an activation or normalization. */
function isEmbeddingOutput(graph: GraphProto, output: string): boolean {
  if (/pool|embed|hidden|feature|last_hidden_state/i.test(output)) return true;
  let name = output;
  for (let hops = 0; hops < 3; hops++) {
    const producer = graph.node.find((n) => n.output.includes(name));
    if (!producer) return false;
    if (EMBEDDING_TAILS.has(producer.opType)) return true;
    if (producer.opType !== 'Identity' && producer.opType !== 'Cast') return false;
    name = producer.input[0] ?? '';
  }
  return false;
}

/**
 * The output the loss reads: the single float output (KV-cache `present.*` outputs left out), else the
 * one named `logits`, else the readout layer's, else the float output with the largest last dimension.
 */
export function findLossOutput(graph: GraphProto, readoutOutput?: string): string {
  const floats = graph.output.filter((v) => valueInfoElemType(v) === DataType.FLOAT && !/present|past|cache/i.test(v.name));
  if (floats.length === 1) return floats[0]!.name;
  const named = floats.find((v) => /(^|[./_])logits$/i.test(v.name));
  if (named) return named.name;
  if (readoutOutput && floats.some((v) => v.name === readoutOutput)) return readoutOutput;
  const lastDim = (v: ValueInfoProto) => { const d = findValueShape(graph, v.name)?.at(-1); return typeof d === 'number' ? d : 0; };
  const best = [...floats].sort((a, b) => lastDim(b) - lastDim(a))[0];
  if (best) return best.name;
  throw new UserInputError(`the model has no float output to train on (outputs: ${graph.output.map((v) => v.name).join(', ') || 'none'})`, ExitCode.unsupported);
}

/** The one line `train`, `coord-check` and `sweep` print. */
export function describeObjective(o: Objective): string {
  const what = { 'next-token': 'next-token cross-entropy', class: 'class cross-entropy', mse: 'MSE to targets', mlm: 'masked-LM cross-entropy' }[o.kind];
  return `objective: ${what} on '${o.output}' (${o.reason}; --objective next-token|class|mse|mlm overrides)`;
}

export function parseObjective(text: string | undefined): ObjectiveKind | undefined {
  if (text === undefined || text === 'auto') return undefined;
  if (!(OBJECTIVES as readonly string[]).includes(text)) throw new UsageError(`--objective ${text}: expected one of ${OBJECTIVES.join(', ')} (or auto)`);
  return text as ObjectiveKind;
}

/** `chooseObjective` over the model's graph inputs that are not initializers (the inputs a host feeds). */
export function objectiveOfModel(model: ModelProto, opts: ObjectiveOptions = {}): Objective {
  const g = model.graph;
  if (!g) throw new UserInputError('model has no graph');
  const inits = new Set(g.initializer.map((t) => t.name));
  return chooseObjective(g, g.input.filter((v) => !inits.has(v.name)), opts);
}

/**
 * Rows of the embedding table the token input indexes (a Gather of an initializer by the input, directly or
 * through a Cast), or undefined when the graph does not show one.
 */
export function tokenVocab(graph: GraphProto, tokenInput: string): number | undefined {
  const names = new Set([tokenInput]);
  for (const n of graph.node) if (n.opType === 'Cast' && names.has(n.input[0] ?? '')) n.output.forEach((o) => names.add(o));
  for (const n of graph.node) {
    if (n.opType !== 'Gather' || !names.has(n.input[1] ?? '')) continue;
    const t = graph.initializer.find((x) => x.name === n.input[0]);
    if (t && t.dims.length === 2) return Number(t.dims[0]);
  }
  return undefined;
}
