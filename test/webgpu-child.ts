/**
 * Child process of test/webgpu-train.test.ts (it needs SwiftShader's Vulkan loader in LD_LIBRARY_PATH,
 * which a process reads only at start). Two modes, one JSON line on stdout each:
 *
 *   train <model> <steps> <batch> <seq> <outDir>  10 steps on CPU and on WebGPU from the same batches:
 *       losses of both, masked-weight violations after WebGPU training (state read back from the device),
 *       the max |Δ| between the two saved models' trained weights.
 *   place <model> <forward|train|eval>             opens that graph on WebGPU with verbose logs (the node
 *       placements go to stderr, which the parent reads) and prints the kernel table's predicted fallbacks.
 */
import * as path from 'node:path';
import { readModel } from '../src/onnx/codec.js';
import { tensorToFloat32 } from '../src/onnx/tensor.js';
import { maskEntries } from '../src/passes/mask-storage.js';
import { checkWebGpuKernels } from '../src/runtime/kernels.js';
import * as ort from 'onnxruntime-node';
import { sessionOptions } from '../src/runtime/session.js';
import { encodeModel } from '../src/onnx/codec.js';
import { transform } from '../src/transform.js';
import { openBatchSource } from '../src/train/data.js';
import { findValueShape } from '../src/train/graph-util.js';
import { createTrainer, feedsForBatch, type Ep } from '../src/train/runner.js';
import { buildTrainStep } from '../src/train/train-step.js';

const [mode, file, ...rest] = process.argv.slice(2);
const input = readModel(file!);
const r = await transform(input, { density: 0.25, seed: 0 });
const ts = buildTrainStep(r.model, input.baseDir, r.lrGroups, { loss: 'cross_entropy', optimizer: { kind: 'adamw' } });

if (mode === 'place') {
  const graph = rest[0] === 'forward' ? r.model : rest[0] === 'eval' ? ts.eval : ts.train;
  const fallbacks = checkWebGpuKernels(graph).fallbacks;
  const predicted = fallbacks.map((f) => f.node);
  const names = graph.graph!.node.map((n) => n.name);
  const forwardNames = new Set(r.model.graph!.node.map((n) => n.name));
  const emitted = fallbacks.filter((f) => !forwardNames.has(f.node)).map((f) => ({ node: f.node, op: f.op, reason: f.reason }));
  // Unoptimized, so that the placements name the graph's own nodes (ORT's fusions rename them).
  const s = await ort.InferenceSession.create(encodeModel(graph), { ...sessionOptions('webgpu', { logSeverityLevel: 0 }), graphOptimizationLevel: 'disabled' });
  await s.release();
  process.stdout.write(`${JSON.stringify({ predicted, names, emitted })}\n`);
} else {
  const [steps, batch, seq, outDir] = [Number(rest[0]), Number(rest[1]), Number(rest[2]), rest[3]!];
  const vocab = Number(findValueShape(r.model.graph!, ts.io.output)!.at(-1));
  const run = async (ep: Ep) => {
    const src = openBatchSource('synthetic:count', { batch, seq, seed: 0, vocab });
    const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { ...input, model: r.model }, ep, threads: 1 });
    const losses: number[] = [];
    try {
      for (let i = 0; i < steps; i++) losses.push((await tr.step(feedsForBatch(ts.io, src.next()), 3e-3)).loss);
      const saved = path.join(outDir, `${ep}.onnx`);
      await tr.save(saved);
      // Masked entries exactly 0 in the weights read back from the device.
      let maskViolations = 0;
      const inits = new Map(r.model.graph!.initializer.map((t) => [t.name, t]));
      for (const p of ts.io.params) {
        if (!p.mask) continue;
        const w = await tr.readParam(p.name);
        const bits = maskEntries(inits.get(p.mask)!, p.shape, r.sourceBaseDir); // bool or bit-packed
        for (let i = 0; i < w.length; i++) if (!bits[i] && w[i] !== 0) maskViolations++;
      }
      return { losses, saved, maskViolations, stateOnDevice: tr.stateOnDevice, ep: tr.ep };
    } finally {
      await tr.release();
    }
  };
  const cpu = await run('cpu');
  const gpu = await run('webgpu');
  const a = readModel(cpu.saved).model.graph!.initializer;
  const b = new Map(readModel(gpu.saved).model.graph!.initializer.map((t) => [t.name, t]));
  let maxAbsDiff = 0, maxAbs = 0;
  for (const p of ts.io.params) {
    const x = tensorToFloat32(a.find((t) => t.name === p.name)!, outDir);
    const y = tensorToFloat32(b.get(p.name)!, outDir);
    for (let i = 0; i < x.length; i++) { maxAbsDiff = Math.max(maxAbsDiff, Math.abs(x[i]! - y[i]!)); maxAbs = Math.max(maxAbs, Math.abs(x[i]!)); }
  }
  process.stdout.write(`${JSON.stringify({ cpu: cpu.losses, webgpu: gpu.losses, maskViolations: gpu.maskViolations, stateOnDevice: gpu.stateOnDevice, ep: gpu.ep, maxAbsDiff, maxAbs })}\n`);
}
