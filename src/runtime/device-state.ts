/**
 * Named tensors that live between session runs (a trainer's parameters and optimizer moments). On a GPU
 * provider they are the previous run's 'gpu-buffer' outputs: fed back as inputs without a copy, disposed
 * when replaced, and read back only on request (save, checkpoints, explicit logging) through a readback
 * session: y = Identity(x) with y on the CPU. The node binding cannot download a 'gpu-buffer' tensor by
 * itself (`getData()` aborts the process in 1.30).
 */
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema } from 'onnx-buf';
import { InvariantError } from '../errors.js';
import { node, tensorValueInfo } from '../onnx/build.js';
import { encodeModel } from '../onnx/codec.js';
import { DataType } from '../onnx/dtype.js';
import { sessionOptions } from './session.js';
import type { Ep } from './providers.js';

export class DeviceState {
  private readonly tensors = new Map<string, ort.Tensor>();
  private readback: Promise<ort.InferenceSession> | undefined;
  /** Bytes read back to the host so far (device tensors only). */
  bytesRead = 0;

  constructor(readonly ep: Ep) {}

  set(name: string, t: ort.Tensor): void {
    const old = this.tensors.get(name);
    if (old && old !== t && old.location === 'gpu-buffer') old.dispose();
    this.tensors.set(name, t);
  }

  get(name: string): ort.Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new InvariantError(`no state tensor named '${name}'`);
    return t;
  }

  has(name: string): boolean { return this.tensors.has(name); }
  entries(): IterableIterator<[string, ort.Tensor]> { return this.tensors.entries(); }

  /** True when `name` lives on the device (read it with `read`). */
  onDevice(name: string): boolean { return this.get(name).location === 'gpu-buffer'; }

  /** The host value of a float tensor (a copy from the device, or the CPU tensor's own data). */
  async read(name: string): Promise<Float32Array> {
    const t = this.get(name);
    if (t.location !== 'gpu-buffer') return t.data as Float32Array;
    const s = await (this.readback ??= ort.InferenceSession.create(identityModel(), sessionOptions(this.ep, {})));
    const out = await s.run({ x: t });
    this.bytesRead += out.y!.size * 4;
    return out.y!.data as Float32Array;
  }

  async release(): Promise<void> {
    for (const t of this.tensors.values()) if (t.location === 'gpu-buffer') t.dispose();
    this.tensors.clear();
    if (this.readback) await (await this.readback).release();
  }
}

/** y = Identity(x), float32 of any shape. */
function identityModel(): Uint8Array {
  const graph = create(GraphProtoSchema, {
    name: 'readback', node: [node('Identity', ['x'], ['y'], {}, 'readback')],
    input: [tensorValueInfo('x', DataType.FLOAT)], output: [tensorValueInfo('y', DataType.FLOAT)],
  });
  return encodeModel(create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })], graph }));
}
