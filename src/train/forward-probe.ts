/**
 * Probes that run the forward model once or twice on CPU (small models, one batch):
 *
 * `probeOutputShape`: the concrete shape of an output whose dims the graph leaves symbolic under names the
 * inputs do not carry (an audio encoder's frame count), so MSE targets can take it.
 *
 * `probeCausal`: is the model's attention causal? Measured, not guessed from the graph (exporters spell causal masks as
 * Trilu, buffers, comparisons of Range outputs, or not at all): run the forward model on a batch, change the
 * last token of every row, run again; a causal model's logits at position 0 cannot change. Used for the hint
 * that next-token training of a bidirectional encoder lets each position see its target (use mlm).
 */
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { encodeModel } from '../onnx/codec.js';
import { isExternal } from '../onnx/external.js';
import type { Feeds } from './runner.js';

/** true/false when measured; undefined when the probe cannot run (external data, a run failure). */
export async function probeCausal(model: ModelProto, feeds: Feeds, tokenInput: string, output: string, vocab: number): Promise<boolean | undefined> {
  if (model.graph?.initializer.some(isExternal)) return undefined;
  const tokens = feeds[tokenInput];
  if (!tokens || tokens.dims.length !== 2 || tokens.dims[1]! < 2) return undefined;
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(encodeModel(model), { executionProviders: ['cpu'], logSeverityLevel: 4 });
    const inputs = Object.fromEntries(Object.entries(feeds).filter(([k]) => session!.inputNames.includes(k)));
    const a = (await session.run(inputs, [output]))[output]!;
    const [b, s] = tokens.dims as [number, number];
    const changed = tokens.type === 'int32' ? Int32Array.from(tokens.data as Int32Array) : BigInt64Array.from(tokens.data as BigInt64Array);
    for (let r = 0; r < b; r++) {
      const i = r * s + s - 1;
      changed[i] = (typeof changed[i] === 'bigint' ? (BigInt(changed[i]) + 1n) % BigInt(vocab) : (Number(changed[i]) + 1) % vocab) as never;
    }
    const c = (await session.run({ ...inputs, [tokenInput]: new ort.Tensor(tokens.type as 'int64', changed as BigInt64Array, tokens.dims) }, [output]))[output]!;
    return firstPositionEqual(a, c, b);
  } catch {
    return undefined;
  } finally {
    await session?.release();
  }
}

/** The shape `output` has when the model runs on `feeds` (model inputs only), or undefined when it cannot run. */
export async function probeOutputShape(model: ModelProto, feeds: Feeds, output: string): Promise<number[] | undefined> {
  if (model.graph?.initializer.some(isExternal)) return undefined;
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(encodeModel(model), { executionProviders: ['cpu'], logSeverityLevel: 4 });
    const inputs = Object.fromEntries(Object.entries(feeds).filter(([k]) => session!.inputNames.includes(k)));
    return [...(await session.run(inputs, [output]))[output]!.dims];
  } catch {
    return undefined;
  } finally {
    await session?.release();
  }
}

/** Whether the outputs at position 0 of every row agree (relative 1e-5). */
function firstPositionEqual(a: ort.Tensor, c: ort.Tensor, batch: number): boolean {
  const x = a.data as Float32Array;
  const y = c.data as Float32Array;
  const perRow = x.length / batch;
  const perPos = perRow / (a.dims[1] ?? 1);
  let scale = 0;
  for (const v of x) scale = Math.max(scale, Math.abs(v));
  for (let r = 0; r < batch; r++) {
    for (let j = 0; j < perPos; j++) if (Math.abs(x[r * perRow + j]! - y[r * perRow + j]!) > 1e-5 * Math.max(1, scale)) return false;
  }
  return true;
}
