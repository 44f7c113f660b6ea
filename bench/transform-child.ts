/** One measured step of bench/transform.ts, run in its own process; prints one JSON line. */
import * as fs from 'node:fs';

const [step, a, b] = process.argv.slice(2);
const t0 = performance.now();
let note = '';
if (step === 'generate') {
  const { buildGpt } = await import('../fixtures/gpt-builder.js');
  const { writeModel } = await import('../src/onnx/codec.js');
  const m = buildGpt({ vocab: 50257, dModel: 768, layers: Number(b), heads: 12, maxPos: 1024, tied: true, seed: 1 });
  let params = 0;
  for (const t of m.graph!.initializer) if (t.dataType === 1) params += t.dims.reduce((x, y) => x * Number(y), 1);
  writeModel(m, a!, { externalData: 'never' });
  note = `${(params / 1e6).toFixed(1)}M float32 parameters`;
} else if (step === 'copy') {
  fs.writeFileSync(b!, fs.readFileSync(a!));
  note = 'readFileSync + writeFileSync of the model file';
} else if (step === 'ort-load') {
  const ort = await import('onnxruntime-node');
  const s = await ort.InferenceSession.create(a!);
  note = `InferenceSession.create (CPU EP, ${s.inputNames.length} input)`;
} else if (step === 'transform') {
  const { readModel } = await import('../src/onnx/codec.js');
  const { transform, writeTransformOutputs } = await import('../src/transform.js');
  const t1 = performance.now();
  const input = readModel(a!);
  const t2 = performance.now();
  const r = await transform(input, { density: 0.125, rules: "supar", seed: 0, inPlace: true });
  const t3 = performance.now();
  await writeTransformOutputs(r, b!);
  const t4 = performance.now();
  note = `read ${((t2 - t1) / 1000).toFixed(2)} s, transform ${((t3 - t2) / 1000).toFixed(2)} s, write ${((t4 - t3) / 1000).toFixed(2)} s; ${r.report.summary.masked} masked tensors`;
} else if (step === 'write' || step === 'write-checked') {
  // The writer alone on the model as read, without and with the onnxruntime load check (src/onnx/load-check.ts).
  const { readModel, writeModel } = await import('../src/onnx/codec.js');
  const { writeModelChecked } = await import('../src/onnx/load-check.js');
  const input = readModel(a!);
  const t1 = performance.now();
  if (step === 'write') writeModel(input.model, b!, { externalData: 'never' });
  else await writeModelChecked(input.model, b!, { externalData: 'never', graph: 'bench model' });
  note = `${step === 'write' ? 'writeModel' : 'writeModelChecked'} ${((performance.now() - t1) / 1000).toFixed(2)} s (after a ${((t1 - t0) / 1000).toFixed(2)} s read)`;
} else if (step !== 'idle') {
  throw new Error(`unknown step ${step}`);
}
const seconds = (performance.now() - t0) / 1000;
const peakRssMiB = process.resourceUsage().maxRSS / 1024;
const cpu = process.cpuUsage();
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
process.stdout.write(`${JSON.stringify({ step, seconds, cpuSeconds, peakRssMiB, note })}\n`);
