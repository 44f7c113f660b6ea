/**
 * Writes a model whose tensor data stays inline without building one big encoded buffer: the structure is
 * encoded by protobuf-es piece by piece (model without its graph, graph without its initializers, each
 * initializer without its raw_data), and the raw bytes are written straight from the tensors' own arrays.
 * Protobuf parsers accept fields in any order and concatenate repeated fields in order of appearance
 * (protobuf encoding spec, "Field Order"), so the graph is placed last in the model and the initializers
 * last in the graph; the result decodes to the same ModelProto as `encodeModel` would write. Peak memory is
 * the model's own data plus the small structure, instead of data + a full encoded copy (+ encoder chunks).
 */
import { toBinary } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, TensorProtoSchema, type ModelProto, type TensorProto } from 'onnx-buf';
import { ExitCode, UserInputError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

/** Field numbers (onnx.proto): ModelProto.graph = 7, GraphProto.initializer = 5, TensorProto.raw_data = 9. */
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;
const LEN = 2;

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

const key = (field: number) => varint((field << 3) | LEN);

/**
 * Runs `fn` with a field unset (so protobuf-es does not write it: a repeated field emptied, a singular one
 * deleted so that proto2 presence reads "unset"), then puts it back exactly.
 */
function without<T extends object, K extends keyof T, R>(msg: T, field: K, fn: () => R): R {
  const had = Object.prototype.hasOwnProperty.call(msg, field);
  const saved = msg[field];
  if (Array.isArray(saved)) msg[field] = [] as T[K];
  else delete msg[field];
  try {
    return fn();
  } finally {
    if (had) msg[field] = saved;
  }
}

/** The chunks of one initializer: its structure, then a raw_data field pointing at its own bytes. */
function tensorChunks(t: TensorProto): { chunks: Uint8Array[]; bytes: number } {
  const raw = t.rawData;
  if (raw.byteLength === 0) {
    const whole = toBinary(TensorProtoSchema, t, { writeUnknownFields: true });
    return { chunks: [whole], bytes: whole.byteLength };
  }
  const head = without(t, 'rawData', () => toBinary(TensorProtoSchema, t, { writeUnknownFields: true }));
  const rawHead = Uint8Array.from([...key(TENSOR_RAW_DATA), ...varint(raw.byteLength)]);
  return { chunks: [head, rawHead, raw], bytes: head.byteLength + rawHead.byteLength + raw.byteLength };
}

/** Encodes `model` as a list of chunks whose concatenation is a valid ModelProto. */
export function encodeModelChunks(model: ModelProto): Uint8Array[] {
  const graph = model.graph;
  if (!graph) return [toBinary(ModelProtoSchema, model, { writeUnknownFields: true })];
  const modelHead = without(model, 'graph', () => toBinary(ModelProtoSchema, model, { writeUnknownFields: true }));
  const graphHead = without(graph, 'initializer', () => toBinary(GraphProtoSchema, graph, { writeUnknownFields: true }));
  const chunks: Uint8Array[] = [];
  let graphBytes = graphHead.byteLength;
  for (const t of graph.initializer) {
    const tc = tensorChunks(t);
    const h = Uint8Array.from([...key(GRAPH_INITIALIZER), ...varint(tc.bytes)]);
    chunks.push(h, ...tc.chunks);
    graphBytes += h.byteLength + tc.bytes;
  }
  return [modelHead, Uint8Array.from([...key(MODEL_GRAPH), ...varint(graphBytes)]), graphHead, ...chunks];
}

/** Writes `model` to `file` atomically, inline data only (callers decide external data beforehand). */
export function writeModelStreaming(model: ModelProto, file: string): { model: string; bytes: number } {
  const chunks = encodeModelChunks(model);
  const bytes = chunks.reduce((s, c) => s + c.byteLength, 0);
  if (bytes >= 2 ** 31) throw new UserInputError(`${file}: encoded model is over 2 GiB; write with --external-data always`, ExitCode.unsupported);
  writeFileAtomic(file, ...chunks);
  return { model: file, bytes };
}
