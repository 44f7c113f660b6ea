/**
 * Chunked ModelProto encoding with bounded memory: the same bytes as `toBinary(ModelProtoSchema, m)`,
 * as a list of chunks that a writer streams to disk. protobuf-es joins every nested message into a new
 * buffer (tensor → graph → model: three copies of every weight byte, ~3.7× the model in RSS for a 400 MB
 * file). Here the model, graph and initializer levels are split around their big field and never joined,
 * and raw_data chunks are the tensors' own bytes (no copy): memory stays about the model itself.
 *
 * Wire format (protobuf encoding spec): a length-delimited field is tag (field_number << 3 | 2), varint
 * length, payload. protobuf-es writes known fields in field-number order, then unknown fields, so a
 * message splits into [fields below N] + [field N, written here] + [fields above N] + [unknown fields].
 */
import { clearField, create, isFieldSet, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, TensorProtoSchema, type GraphProto, type ModelProto, type TensorProto } from 'onnx-buf';
import { forEachTensor } from './walk.js';

const MODEL_GRAPH_FIELD = 7; // ModelProto.graph
const GRAPH_INITIALIZER_FIELD = 5; // GraphProto.initializer
const TENSOR_RAW_DATA_FIELD = 9; // TensorProto.raw_data
const RAW_DATA = TensorProtoSchema.field.rawData!;
const WIRE_LEN = 2;

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

function lengthDelimited(field: number, payloadBytes: number): Uint8Array {
  const tag = varint(field * 8 + WIRE_LEN);
  const len = varint(payloadBytes);
  const out = new Uint8Array(tag.length + len.length);
  out.set(tag);
  out.set(len, tag.length);
  return out;
}

/** A shallow copy of `msg` holding only the set fields whose number passes `keep` (its own unknown fields are not copied). */
function pickFields<D extends DescMessage>(schema: D, msg: MessageShape<D>, keep: (no: number) => boolean): MessageShape<D> {
  const out = create(schema) as Record<string, unknown>;
  for (const f of schema.fields) {
    if (keep(f.number) && isFieldSet(msg, f)) out[f.localName] = (msg as Record<string, unknown>)[f.localName];
  }
  return out as MessageShape<D>;
}

function unknownChunks(msg: { $unknown?: { no: number; wireType: number; data: Uint8Array }[] }): Uint8Array[] {
  return (msg.$unknown ?? []).flatMap((u) => [varint(u.no * 8 + u.wireType), u.data]);
}

const sum = (chunks: readonly Uint8Array[]) => chunks.reduce((s, c) => s + c.byteLength, 0);
// Partial copies carry no $unknown of their own (written once, last); nested messages keep theirs.
const OPTS = { writeUnknownFields: true };

/** Chunks of `msg` with field `no` replaced by `middle` (already encoded, tag included). */
function around<D extends DescMessage>(schema: D, msg: MessageShape<D>, no: number, middle: Uint8Array[]): Uint8Array[] {
  return [
    toBinary(schema, pickFields(schema, msg, (n) => n < no), OPTS),
    ...middle,
    toBinary(schema, pickFields(schema, msg, (n) => n > no), OPTS),
    ...unknownChunks(msg as { $unknown?: { no: number; wireType: number; data: Uint8Array }[] }),
  ];
}

/** The typed value fields of TensorProto (onnx.proto: exactly one of these or raw_data holds the values). */
const TYPED_FIELDS = (['floatData', 'int32Data', 'stringData', 'int64Data', 'doubleData', 'uint64Data'] as const).map((k) => TensorProtoSchema.field[k]!);

/**
 * Whether raw_data goes on the wire: when set, except empty beside values in a typed field (an empty
 * raw_data there makes onnxruntime read the tensor from raw_data and reject it as too short).
 */
export function writesRawData(t: TensorProto): boolean {
  if (!isFieldSet(t, RAW_DATA)) return false;
  return t.rawData.byteLength > 0 || !TYPED_FIELDS.some((f) => isFieldSet(t, f));
}

/** A tensor as chunks; raw_data is passed by reference (no copy of the weight bytes). */
function tensorChunks(t: TensorProto): Uint8Array[] {
  const raw = writesRawData(t) ? [lengthDelimited(TENSOR_RAW_DATA_FIELD, t.rawData.byteLength), t.rawData] : [];
  return around(TensorProtoSchema, t, TENSOR_RAW_DATA_FIELD, raw);
}

function graphChunks(g: GraphProto): Uint8Array[] {
  const inits = g.initializer.flatMap((t) => {
    const c = tensorChunks(t);
    return [lengthDelimited(GRAPH_INITIALIZER_FIELD, sum(c)), ...c];
  });
  return around(GraphProtoSchema, g, GRAPH_INITIALIZER_FIELD, inits);
}

/** `toBinary(ModelProtoSchema, model, {writeUnknownFields: true})`, as chunks (concatenate for the bytes). */
export function encodeModelChunks(model: ModelProto): Uint8Array[] {
  // Tensors outside the initializer lists (Constant attributes, subgraphs) go through toBinary: drop the
  // presence of an empty raw_data beside typed values there too (the value read back is the same).
  forEachTensor(model, (t) => { if (isFieldSet(t, RAW_DATA) && !writesRawData(t)) clearField(t, RAW_DATA); });
  const graph = model.graph ? graphChunks(model.graph) : undefined;
  const middle = graph ? [lengthDelimited(MODEL_GRAPH_FIELD, sum(graph)), ...graph] : [];
  return around(ModelProtoSchema, model, MODEL_GRAPH_FIELD, middle).filter((c) => c.byteLength > 0);
}

export function chunksByteLength(chunks: readonly Uint8Array[]): number {
  return sum(chunks);
}
