/** Helpers for the transform tests: seeded feeds for the LM fixtures, ORT runs, tensor bytes. */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { encodeModel, readModel, type LoadedModel } from '../src/onnx/codec.js';
import { tensorRawBytes } from '../src/onnx/tensor.js';
import { ROOT, REAL_FIXTURES } from './helpers.js';

export const REAL = path.join(REAL_FIXTURES);
export const GPT_TINY = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');

/** The LMs the issue names, with seeded feeds (batch 2 × 8 tokens unless the export fixes other sizes). */
export const LMS: { name: string; file: string; feeds: () => Record<string, ort.Tensor> }[] = [
  { name: 'gpt-tiny', file: GPT_TINY, feeds: () => ({ input_ids: ids(256, [2, 8], 1) }) },
  { name: 'hf_gpt2_w32_dynamo', file: path.join(REAL, 'hf_gpt2_w32_dynamo.onnx'), feeds: () => ({ input_ids: ids(256, [2, 8], 2) }) },
  { name: 'hf_llama_w32_tied_dynamo', file: path.join(REAL, 'hf_llama_w32_tied_dynamo.onnx'), feeds: () => ({ input_ids: ids(256, [2, 8], 3) }) },
  {
    name: 'optimum_tiny_distilbert_cls', file: path.join(REAL, 'optimum_tiny_distilbert_cls.onnx'),
    feeds: () => ({ input_ids: ids(30522, [2, 8], 4), attention_mask: new ort.Tensor('int64', new BigInt64Array(16).fill(1n), [2, 8]) }),
  },
  {
    name: 'ort_gpt2_megatron', file: path.join(REAL, 'ort_gpt2_megatron.onnx'),
    feeds: () => {
      const causal = new Float32Array(64 * 64);
      for (let i = 0; i < 64; i++) for (let j = 0; j <= i; j++) causal[i * 64 + j] = 1;
      return {
        input_ids: ids(10, [1, 4], 5),
        position_ids: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n, 3n]), [1, 4]),
        attention_mask: new ort.Tensor('float32', causal, [1, 1, 64, 64]),
        past_0: new ort.Tensor('float32', new Float32Array(0), [2, 1, 2, 0, 4]),
      };
    },
  },
];

/** Token ids from a small LCG (seeded, deterministic). */
export function ids(vocab: number, dims: number[], seed: number): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const out = new BigInt64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = BigInt(s % vocab);
  }
  return new ort.Tensor('int64', out, dims);
}

const QUIET: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

export async function runOrt(model: ModelProto | string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, QUIET) : await ort.InferenceSession.create(encodeModel(model), QUIET);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

export function floats(t: ort.Tensor): Float32Array {
  return t.data as Float32Array;
}

export function load(file: string): LoadedModel {
  return readModel(file);
}

/** Initializer bytes by name (raw little-endian, whatever the storage). */
export function initializerBytes(model: ModelProto, baseDir: string): Map<string, Uint8Array> {
  return new Map(model.graph!.initializer.map((t) => [t.name, tensorRawBytes(t, baseDir)]));
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}
