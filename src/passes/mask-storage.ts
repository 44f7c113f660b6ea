/**
 * How a static mask is stored in the model and turned back into a multiplier in the graph
 * (`--mask-storage`, docs/transform.md "Mask storage").
 *
 * - `bool`: a BOOL initializer of W's shape, 1 byte per entry; in the graph `Cast(mask → T)`.
 * - `bits`: a UINT8 initializer of ceil(n/8) bytes, entry i (row-major) in byte i >> 3, bit i & 7, least
 *   significant bit first (entries past n are 0):  p[j] = Σ_{k=0..7} m[8j+k]·2^k  (numpy: `packbits(m,
 *   bitorder='little')`). In the graph, standard ops with CPU, CUDA and WebGPU kernels for these types:
 *     idx  = Cast(p → int32)                       [B]          B = ceil(n/8)
 *     rows = Cast(Gather(TABLE, idx, axis 0) → float) [B, 8]    TABLE[v][k] = ⌊v / 2^k⌋ mod 2 = (v >> k) & 1
 *     flat = Reshape(rows, [8B]); Slice(flat, 0, n) only when n < 8B
 *     mask = Reshape(·, W's shape); Cast(→ T) only when T is not float32
 *   Row-major flattening of rows puts rows[j][k] = TABLE[p[j]][k] = m[8j+k] at index 8j+k, so the result is
 *   the bool mask exactly (every value is 0.0 or 1.0). TABLE (256×8 UINT8, 2 KiB) is one initializer shared
 *   by every mask of the model; being an integer tensor it is never taken for a parameter when a transformed
 *   model is analyzed again. BitShift/BitwiseAnd have no CUDA or WebGPU kernels and Mod none on WebGPU
 *   (data/ort-kernels*.json), hence the table. Every input of these nodes is an initializer, so onnxruntime's
 *   constant folding runs them once at session creation.
 * The autodiff differentiates only what depends on a parameter, so the unpack path carries no gradient.
 */
import type { ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { InvariantError, UserInputError } from '../errors.js';
import { node } from '../onnx/build.js';
import { DataType } from '../onnx/dtype.js';
import type { NameAuthority } from '../onnx/ir.js';
import { dimsOf, elementCount, makeByteTensor, makeInt64Tensor, tensorRawBytes } from '../onnx/tensor.js';

export type MaskStorage = 'bool' | 'bits';
export const MASK_STORAGES: readonly MaskStorage[] = ['bool', 'bits'];
export const DEFAULT_MASK_STORAGE: MaskStorage = 'bits';

/** Bytes of a bit-packed mask of n entries. */
export const packedLength = (n: number) => Math.ceil(n / 8);

/** Packs a 0/1 mask 8 entries per byte, LSB first (format above). */
export function packMaskBits(mask: Uint8Array): Uint8Array {
  const out = new Uint8Array(packedLength(mask.length));
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[i >>> 3]! |= 1 << (i & 7);
  return out;
}

/** The n 0/1 entries of a packed mask (inverse of packMaskBits). */
export function unpackMaskBits(packed: Uint8Array, n: number): Uint8Array {
  if (packed.length !== packedLength(n)) throw new InvariantError(`packed mask has ${packed.length} bytes; ${n} entries need ${packedLength(n)}`);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (packed[i >>> 3]! >>> (i & 7)) & 1;
  return out;
}

/** The mask initializer in the chosen storage (`bits` is a 0/1 array, one entry per weight element). */
export function maskInitializer(name: string, shape: readonly number[], bits: Uint8Array, storage: MaskStorage): TensorProto {
  if (storage === 'bool') return makeByteTensor(name, shape, bits, DataType.BOOL);
  return makeByteTensor(name, [packedLength(bits.length)], packMaskBits(bits), DataType.UINT8);
}

/**
 * Whether mask initializer `t` of a weight shaped `shape` is bit-packed: UINT8 with ceil(n/8) elements where
 * that is not also one byte per entry. (A UINT8 mask of W's own shape holds 0/1 per entry; for n = 1 the two
 * readings give the same value.)
 */
export function isPackedMask(t: TensorProto, shape: readonly number[]): boolean {
  const n = elementCount(shape);
  const dims = dimsOf(t);
  const sameShape = dims.length === shape.length && dims.every((d, i) => d === shape[i]);
  return t.dataType === DataType.UINT8 && !sameShape && elementCount(dims) === packedLength(n);
}

/** A mask initializer's entries as 0/1 bytes, whatever its storage (bool, 0/1 bytes, or bits). */
export function maskEntries(t: TensorProto, shape: readonly number[], baseDir: string): Uint8Array {
  const n = elementCount(shape);
  const raw = tensorRawBytes(t, baseDir);
  if (isPackedMask(t, shape)) return unpackMaskBits(raw, n);
  if ((t.dataType === DataType.BOOL || t.dataType === DataType.UINT8) && elementCount(dimsOf(t)) === n) return raw.map((v) => (v ? 1 : 0));
  throw new UserInputError(`mask '${t.name}': ${t.dataType === DataType.BOOL ? 'bool' : `type ${t.dataType}`} [${dimsOf(t).join(', ')}] fits neither a bool mask of [${shape.join(', ')}] nor ${packedLength(n)} packed bytes; regenerate it with the transform`);
}

/** Stored bytes of a mask initializer. */
export function maskStoredBytes(t: TensorProto): number {
  return elementCount(dimsOf(t));
}

/** TABLE[v][k] = (v >> k) & 1 for v in 0..255, k in 0..7 (row-major bytes). */
export function bitTableValues(): Uint8Array {
  const out = new Uint8Array(256 * 8);
  for (let v = 0; v < 256; v++) for (let k = 0; k < 8; k++) out[v * 8 + k] = (v >> k) & 1;
  return out;
}

/** The name of an initializer holding the bit table, if `inits` has one (found by value). */
export function findBitTable(inits: readonly TensorProto[]): string | undefined {
  const want = bitTableValues();
  return inits.find((t) => t.dataType === DataType.UINT8 && dimsOf(t).join() === '256,8' && t.rawData.byteLength === want.length
    && t.rawData.every((b, i) => b === want[i]))?.name;
}

/**
 * Emits the nodes that turn a stored mask into a multiplier of W's type, named after the weight.
 * One per pass run (or train graph): it adds the shared bit table once, on first use.
 */
export class MaskUseBuilder {
  /** Initializers the emitted nodes read (the bit table, shape and slice constants), in creation order. */
  readonly initializers: TensorProto[] = [];
  private table: string | undefined;

  constructor(private readonly names: NameAuthority, private readonly opset: number, existingTable?: string) {
    this.table = existingTable;
  }

  /** Nodes computing `out` (type `dataType`, shape `shape`) from mask initializer `mask`. */
  nodes(mask: TensorProto, weight: string, shape: readonly number[], dataType: number, out: string): NodeProto[] {
    if (!isPackedMask(mask, shape)) {
      return [node('Cast', [mask.name], [out], { to: dataType }, this.names.fresh(`supar.mask_cast.${weight}`))];
    }
    const n = elementCount(shape);
    const b = packedLength(n);
    const v = (what: string) => this.names.fresh(`${weight}__mask_${what}`);
    const nodeName = (what: string) => this.names.fresh(`supar.mask_unpack.${weight}/${what}`);
    const idx = v('index');
    const table = v('table_rows');
    const rows = v('rows');
    const nodes = [
      node('Cast', [mask.name], [idx], { to: DataType.INT32 }, nodeName('Cast')),
      node('Gather', [this.bitTable(), idx], [table], { axis: 0 }, nodeName('Gather')),
      node('Cast', [table], [rows], { to: DataType.FLOAT }, nodeName('ToFloat')),
    ];
    let flat = rows;
    if (n < 8 * b) {
      const whole = v('flat');
      flat = v('entries');
      nodes.push(node('Reshape', [rows, this.int64Const(`${weight}__mask_flat_shape`, [8 * b])], [whole], {}, nodeName('Reshape')));
      nodes.push(this.sliceNode(whole, n, flat, weight, nodeName('Slice')));
    }
    const asFloat = dataType === DataType.FLOAT;
    const shaped = asFloat ? out : v('shaped');
    nodes.push(node('Reshape', [flat, this.int64Const(`${weight}__mask_shape`, [...shape])], [shaped], {}, nodeName('Reshape')));
    if (!asFloat) nodes.push(node('Cast', [shaped], [out], { to: dataType }, this.names.fresh(`supar.mask_cast.${weight}`)));
    return nodes;
  }

  private bitTable(): string {
    if (!this.table) {
      this.table = this.names.fresh('supar.mask_bit_table');
      this.initializers.push(makeByteTensor(this.table, [256, 8], bitTableValues(), DataType.UINT8));
    }
    return this.table;
  }

  private int64Const(base: string, values: number[]): string {
    const name = this.names.fresh(base);
    this.initializers.push(makeInt64Tensor(name, [values.length], values));
    return name;
  }

  /** flat[0 : n] along axis 0 (inputs from opset 10, attributes before). */
  private sliceNode(x: string, n: number, out: string, weight: string, name: string): NodeProto {
    if (this.opset < 10) return node('Slice', [x], [out], { starts: [0], ends: [n], axes: [0] }, name);
    const starts = this.int64Const(`${weight}__mask_slice_start`, [0]);
    const ends = this.int64Const(`${weight}__mask_slice_end`, [n]);
    return node('Slice', [x, starts, ends], [out], {}, name);
  }
}

export interface StoredMask {
  /** The masked parameter and its mask initializer (from the model's `supar.lr_groups` metadata). */
  tensor: string;
  mask: string;
  storage: MaskStorage;
  shape: number[];
  elements: number;
  non_zeros: number;
  density: number;
  /** Bytes the mask initializer stores. */
  bytes: number;
}

/**
 * Every mask of a transformed model, read from the mask tensors themselves (either storage), in the order
 * of its `supar.lr_groups` metadata; undefined when the model carries no LR groups (not transformed).
 */
export function findStoredMasks(model: ModelProto, baseDir: string): StoredMask[] | undefined {
  const meta = model.metadataProps.find((p) => p.key === 'supar.lr_groups');
  if (!meta) return undefined;
  let groups: { name: string; shape: number[]; mask: string | null }[];
  try {
    groups = (JSON.parse(meta.value) as { groups: typeof groups }).groups;
  } catch {
    throw new UserInputError(`metadata supar.lr_groups is not valid JSON; regenerate the model with the transform`);
  }
  const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name, t]));
  return groups.filter((g) => g.mask).map((g) => {
    const t = inits.get(g.mask!);
    if (!t) throw new UserInputError(`mask '${g.mask}' of '${g.name}' (metadata supar.lr_groups) is not an initializer of the model`);
    const entries = maskEntries(t, g.shape, baseDir);
    const nonZeros = entries.reduce((a, b) => a + b, 0);
    return {
      tensor: g.name, mask: t.name, storage: isPackedMask(t, g.shape) ? 'bits' : 'bool', shape: g.shape,
      elements: entries.length, non_zeros: nonZeros, density: entries.length ? nonZeros / entries.length : 1, bytes: maskStoredBytes(t),
    };
  });
}
