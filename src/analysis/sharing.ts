/**
 * Shared parameters stored more than once. A module used by several layers (ALBERT shares every layer's
 * weights; a weight reused twice in one forward) is one parameter in PyTorch, but an exporter may write it
 * once per use under generated names (dynamo folds each use's transposed weight into its own `val_N`;
 * TorchScript deduplicates only sometimes). Left apart, the copies get their own masks, inits and updates and
 * the layers stop sharing. Copies are found by value:
 *
 *   - exactly equal values in the same order (same dims: `value`; other dims, same count: `value-reshaped`),
 *     or equal to the transpose of a 2-D tensor (`value-transposed`);
 *   - the same role, one that is trained (an embedding and its readout copy are ties.ts's business);
 *   - not equal by chance: values not all equal (zeros, ones and constant vectors never count), not two-valued
 *     (an identity or 0/1 init), and either
 *     ≥ 2-D (a weight: two random matrices are never exactly equal) or — for a 1-D vector — at least one of the
 *     two named by the exporter (`onnx::…`, `val_N`, a number, a node output), not two module parameters.
 *
 * The copy kept is the first with a module name (else the first in initializer order); the others get
 * `tie` and `tiedWith` = the kept one, which lists them in `copies`.
 */
import { DataType } from '../onnx/dtype.js';
import { externalInfo, isExternal, resolveExternalPath } from '../onnx/external.js';
import { forEachFloat32Chunk, tensorToFloat32 } from '../onnx/tensor.js';
import { ValueSurvey } from '../passes/tensor-jobs.js';
import type { SourceStds } from './source-stds.js';
import type { AnalysisGraph } from './graph.js';
import type { ParamInfo, Role } from './types.js';

export type ShareKind = 'value' | 'value-transposed' | 'value-reshaped';

const SHARED_ROLES: ReadonlySet<Role> = new Set(['embedding', 'position_embedding', 'hidden', 'readout', 'bias', 'norm_scale', 'norm_bias']);

/** Names exporters make up for tensors they write (not a module path like `encoder.layer.0.ffn.weight`). */
export const GENERATED_NAME = /^(onnx::.*|_?val_\d+|\d+|.*_output_\d+|_?v_\d+|const(ant)?_\d+)$/;

export interface SharedGroup {
  kept: string;
  copies: { name: string; kind: ShareKind }[];
}

/** Groups of copies among `params` (their tie fields are set); params already tied are left alone. */
export function findSharedCopies(g: AnalysisGraph, params: ParamInfo[], warnings: string[], stds?: SourceStds): SharedGroup[] {
  // Bucket by role, type, count, min, max and a multiset hash (all order-free, equal for equal values; read
  // chunk by chunk, so a model of any size costs a chunk); decode whole tensors only where a bucket has two.
  const buckets = new Map<string, ParamInfo[]>();
  for (const p of params) {
    if (!SHARED_ROLES.has(p.role) || p.tiedWith !== undefined || p.elements < 2) continue;
    const range = fingerprintOf(g, p, warnings, stds);
    if (!range) continue;
    if (!(range.min < range.max)) continue; // constant (or NaN): equal by chance, never a copy
    const key = `${p.role}\0${p.dataType}\0${p.elements}\0${range.min}\0${range.max}\0${range.hash}`;
    const list = buckets.get(key);
    if (list) list.push(p); else buckets.set(key, [p]);
  }
  const groups: SharedGroup[] = [];
  for (const list of buckets.values()) {
    if (list.length < 2) continue;
    const done = new Set<ParamInfo>();
    const ordered = [...list].sort((a, b) => Number(GENERATED_NAME.test(a.name)) - Number(GENERATED_NAME.test(b.name)));
    const values = new Map(ordered.map((p) => [p, valuesOf(g, p, warnings)!]));
    // Two-valued tensors (an identity or 0/1 init) are equal by construction, not by sharing.
    for (const p of ordered) if (twoValued(values.get(p)!)) done.add(p);
    for (const kept of ordered) {
      if (done.has(kept)) continue;
      const copies: SharedGroup['copies'] = [];
      for (const other of ordered) {
        if (other === kept || done.has(other) || !mayShare(kept, other)) continue;
        const kind = sameUpToView(kept.shape, values.get(kept)!, other.shape, values.get(other)!);
        if (!kind) continue;
        copies.push({ name: other.name, kind });
        done.add(other);
      }
      if (copies.length === 0) continue;
      done.add(kept);
      markGroup(kept, copies, params);
      groups.push({ kept: kept.name, copies });
    }
  }
  return groups;
}

/**
 * Min, max and an order-free hash of the values as float32 (tensor-jobs.ts `ValueSurvey`: Σ mix(bits(x)) mod
 * 2^32, −0 counted as +0, as `===` compares), so a copy in any order or layout (transposed, reshaped) lands in
 * the same bucket; a collision only costs a full comparison. External weights surveyed beforehand by worker
 * threads (`surveyExternalWeights`) are not read again; for the others of external data, the same read gives
 * the std before of the init report (recorded in `stds`, so the weight's job does not read it again).
 */
function fingerprintOf(g: AnalysisGraph, p: ParamInfo, warnings: string[], stds?: SourceStds): { min: number; max: number; hash: number } | undefined {
  try {
    const t = g.index.getInitializer(p.name);
    const where = stds && isExternal(t) ? { file: resolveExternalPath(t, g.baseDir), offset: externalInfo(t).offset } : undefined;
    const known = where && stds!.survey(where.file, where.offset, t.dataType, p.elements);
    if (known) return known;
    const survey = new ValueSurvey();
    forEachFloat32Chunk(t, g.baseDir, (v) => survey.add(v));
    const result = survey.result();
    if (where) stds!.record(where.file, where.offset, t.dataType, p.elements, result);
    return result;
  } catch (err) {
    warnings.push(`shared-copy check of '${p.name}' skipped: ${(err as Error).message}`);
    return undefined;
  }
}

/** The values as float32: a view of little-endian float32 raw data when aligned, else decoded. */
function valuesOf(g: AnalysisGraph, p: ParamInfo, warnings: string[]): Float32Array | undefined {
  try {
    const t = g.index.getInitializer(p.name);
    const raw = t.rawData;
    if (t.dataType === DataType.FLOAT && raw.byteLength === p.elements * 4 && raw.byteOffset % 4 === 0 && LITTLE_ENDIAN) {
      return new Float32Array(raw.buffer, raw.byteOffset, p.elements);
    }
    return tensorToFloat32(t, g.baseDir);
  } catch (err) {
    warnings.push(`shared-copy check of '${p.name}' skipped: ${(err as Error).message}`);
    return undefined;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Not equal by chance: a weight (≥ 2 dims larger than 1), or a vector one of whose names is an exporter's. */
function mayShare(a: ParamInfo, b: ParamInfo): boolean {
  const matrix = (p: ParamInfo) => p.shape.filter((d) => d > 1).length >= 2;
  if (matrix(a) && matrix(b)) return true;
  return GENERATED_NAME.test(a.name) || GENERATED_NAME.test(b.name);
}

function markGroup(kept: ParamInfo, copies: SharedGroup['copies'], params: ParamInfo[]): void {
  kept.copies = copies.map((c) => c.name);
  kept.reason += `; shared: stored again as ${copies.map((c) => `'${c.name}'${c.kind === 'value' ? '' : ` (${c.kind.slice(6)})`}`).join(', ')} — one parameter`;
  for (const c of copies) {
    const p = params.find((x) => x.name === c.name)!;
    Object.assign(p, { tie: c.kind, tiedWith: kept.name });
    p.reason += `; a copy of '${kept.name}' (${c.kind === 'value' ? 'equal values' : c.kind === 'value-transposed' ? 'equal to its transpose' : 'equal values, other dims'}): one parameter`;
  }
}

/** How `b` equals `a` exactly: same order (same dims or not), or `b` = `a`ᵀ for 2-D tensors. */
export function sameUpToView(da: number[], a: Float32Array, db: number[], b: Float32Array): ShareKind | undefined {
  if (a.length !== b.length) return undefined;
  if (equalAt(a, b, (k) => k)) return da.length === db.length && da.every((d, i) => d === db[i]) ? 'value' : 'value-reshaped';
  if (da.length !== 2 || db.length !== 2 || da[0] !== db[1] || da[1] !== db[0]) return undefined;
  const [rows, cols] = da as [number, number];
  // b is [cols, rows]; b[j, i] = a[i, j]  ⇔  b[j·rows + i] = a[i·cols + j].
  return equalAt(a, b, (k) => (k % cols) * rows + Math.floor(k / cols)) ? 'value-transposed' : undefined;
}

function equalAt(a: Float32Array, b: Float32Array, at: (k: number) => number): boolean {
  for (let k = 0; k < a.length; k++) if (a[k] !== b[at(k)]) return false;
  return true;
}

function twoValued(v: Float32Array): boolean {
  const a = v[0]!;
  let b: number | undefined;
  for (const x of v) {
    if (x === a || x === b) continue;
    if (b !== undefined) return false;
    b = x;
  }
  return true;
}

