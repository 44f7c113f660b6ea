/**
 * Loss heads and optimizer updates of the train-step graph, on a linear model logits = x·W + b small enough
 * to check against plain-JS oracles: cross-entropy (with ignore index, next-token shift) and MSE values in
 * float64, gradients by central finite differences of the eval graph, SGD/momentum/AdamW updates by the
 * PyTorch formulas, masks exactly zero.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto } from 'onnx-buf';
import { node, tensorValueInfo } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { encodeModel } from '../src/onnx/codec.js';
import { makeByteTensor, makeFloatTensor } from '../src/onnx/tensor.js';
import { createTrainer, withWeights } from '../src/train/runner.js';
import { buildTrainStep, type TrainStepOptions } from '../src/train/train-step.js';
import { LR_GROUPS_FORMAT, type LrGroup, type LrGroupsFile } from '../src/train/types.js';

const [B, S, D, V] = [2, 3, 4, 5];
const X = Float32Array.from({ length: B * S * D }, (_, i) => Math.sin(i * 0.7) * 0.9);
const W0 = Float32Array.from({ length: D * V }, (_, i) => Math.cos(i * 1.3) * 0.5);
const B0 = Float32Array.from({ length: V }, (_, i) => 0.1 * i - 0.2);
const MASK = Uint8Array.from({ length: D * V }, (_, i) => (i % 3 === 0 ? 0 : 1));
const TARGETS = [1, 4, -100, 0, 2, 3];

/** logits[B,S,V] = x·(W ⊙ mask) + b, with the mask in the transform's layout when `masked`. */
function linearModel(masked: boolean): ModelProto {
  const w0 = masked ? W0.map((v, i) => (MASK[i] ? v : 0)) : W0;
  const nodes = masked
    ? [node('Cast', ['W__mask'], ['maskf'], { to: 1 }), node('Mul', ['W', 'maskf'], ['Wm']), node('MatMul', ['x', 'Wm'], ['xw'])]
    : [node('MatMul', ['x', 'W'], ['xw'])];
  nodes.push(node('Add', ['xw', 'b'], ['logits']));
  const inits = [makeFloatTensor('W', [D, V], w0), makeFloatTensor('b', [V], B0)];
  if (masked) inits.push(makeByteTensor('W__mask', [D, V], MASK, DataType.BOOL));
  const graph = create(GraphProtoSchema, {
    name: 'linear', node: nodes, initializer: inits,
    input: [tensorValueInfo('x', DataType.FLOAT, ['batch', 'seq', D])],
    output: [tensorValueInfo('logits', DataType.FLOAT, ['batch', 'seq', V])],
  });
  return create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })], graph });
}

function groups(masked: boolean, lrW = 3, lrB = 0.5, wdW = 1): LrGroupsFile {
  const g = (name: string, shape: number[], lr: number, wd: number, mask: string | null): LrGroup =>
    ({ name, role: 'hidden', shape, lr_adam: lr, lr_sgd: lr * 2, weight_decay: wd, density: 1, mask, rule: 'test' }) as LrGroup;
  return { format: LR_GROUPS_FORMAT, rules: 'test', hyperparameters: { sigma_base: 1, eta_base: 1, alpha_input: 1, alpha_output: 1 }, m_d: 1, density: 1, seed: 0,
    groups: [g('W', [D, V], lrW, wdW, masked ? 'W__mask' : null), g('b', [V], lrB, 0, null)] };
}

const xTensor = () => new ort.Tensor('float32', X.slice(), [B, S, D]);
const tTensor = (t = TARGETS) => new ort.Tensor('int64', BigInt64Array.from(t.map(BigInt)), [B, S]);

/** float64 oracle: logits of the linear model with weights w, b. */
function logits64(w: ArrayLike<number>, b: ArrayLike<number>): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < B * S; r++) {
    out.push(Array.from({ length: V }, (_, v) => {
      let s = b[v]!;
      for (let d = 0; d < D; d++) s += X[r * D + d]! * w[d * V + v]!;
      return s;
    }));
  }
  return out;
}

function crossEntropy64(z: number[][], targets: number[]): number {
  let sum = 0;
  let n = 0;
  z.forEach((row, r) => {
    if (targets[r] === -100) return;
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    sum += lse - row[targets[r]!]!;
    n++;
  });
  return sum / n;
}

async function evalLoss(model: ModelProto, opts: TrainStepOptions, w: Float32Array, t = TARGETS): Promise<number> {
  const ts = buildTrainStep(model, '.', groups(false), opts);
  const s = await ort.InferenceSession.create(encodeModel(ts.eval));
  const out = await s.run({ x: xTensor(), [ts.io.targets.name]: tTensor(t), W: new ort.Tensor('float32', w, [D, V]), b: new ort.Tensor('float32', B0.slice(), [V]) });
  await s.release();
  return (out[ts.io.loss]!.data as Float32Array)[0]!;
}

test('cross-entropy: loss = float64 oracle (ignore index −100 skipped), gradient = central differences', async () => {
  const model = linearModel(false);
  const opts: TrainStepOptions = { loss: 'cross_entropy', optimizer: { kind: 'sgd' }, exposeGradients: true };
  const ts = buildTrainStep(model, '.', groups(false), opts);
  const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model, baseDir: '.' }, threads: 1 });
  const r = await tr.step({ x: xTensor(), [ts.io.targets.name]: tTensor() }, 0);
  await tr.release();
  assert.ok(Math.abs(r.loss - crossEntropy64(logits64(W0, B0), TARGETS)) < 1e-6, `loss ${r.loss}`);
  const h = 1e-2;
  let worst = 0;
  for (let i = 0; i < D * V; i++) {
    const plus = W0.slice(); plus[i]! += h;
    const minus = W0.slice(); minus[i]! -= h;
    const fd = (crossEntropy64(logits64(plus, B0), TARGETS) - crossEntropy64(logits64(minus, B0), TARGETS)) / (2 * h);
    worst = Math.max(worst, Math.abs(fd - r.grads['W']![i]!));
  }
  assert.ok(worst < 2e-5, `max |dW − FD| = ${worst}`);
  // The eval graph computes the same loss as the train graph.
  assert.ok(Math.abs((await evalLoss(model, opts, W0.slice())) - r.loss) < 1e-7);
});

test('cross-entropy next-token mode scores position i against token i+1 and ignores the last position', async () => {
  const model = linearModel(false);
  const ids = [3, 1, 4, 1, 0, 2];
  const got = await evalLoss(model, { loss: 'cross_entropy', optimizer: { kind: 'sgd' }, nextToken: true }, W0.slice(), ids);
  const shifted = [1, 4, -100, 0, 2, -100];
  assert.ok(Math.abs(got - crossEntropy64(logits64(W0, B0), shifted)) < 1e-6, `${got}`);
});

test('MSE: loss = mean((y − t)²) and dW = xᵀ·2(y − t)/n', async () => {
  const model = linearModel(false);
  const ts = buildTrainStep(model, '.', groups(false), { loss: 'mse', optimizer: { kind: 'sgd' }, exposeGradients: true });
  assert.equal(ts.io.targets.elemType, DataType.FLOAT);
  const target = Float32Array.from({ length: B * S * V }, (_, i) => Math.cos(i));
  const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model, baseDir: '.' }, threads: 1 });
  const r = await tr.step({ x: xTensor(), [ts.io.targets.name]: new ort.Tensor('float32', target, [B, S, V]) }, 0);
  await tr.release();
  const z = logits64(W0, B0).flat();
  const n = z.length;
  const loss = z.reduce((a, y, i) => a + (y - target[i]!) ** 2, 0) / n;
  assert.ok(Math.abs(r.loss - loss) < 1e-5, `${r.loss} vs ${loss}`);
  for (let d = 0; d < D; d++) {
    for (let v = 0; v < V; v++) {
      let g = 0;
      for (let row = 0; row < B * S; row++) g += X[row * D + d]! * 2 * (z[row * V + v]! - target[row * V + v]!) / n;
      assert.ok(Math.abs(g - r.grads['W']![d * V + v]!) < 1e-5, `dW[${d},${v}]`);
    }
  }
});

test('SGD: p ← p − lr·lr_sgd·g bit for bit (float32), with momentum b ← μb + g; masked entries stay 0', async () => {
  const model = linearModel(true);
  const lr = 0.05;
  const mu = 0.9;
  const ts = buildTrainStep(model, '.', groups(true, 3, 0.5, 0), { loss: 'cross_entropy', optimizer: { kind: 'sgd', momentum: mu }, exposeGradients: true });
  const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model, baseDir: '.' }, threads: 1 });
  const f = Math.fround;
  let w = Float32Array.from(tr.param('W'));
  let buf = new Float32Array(D * V);
  for (let step = 0; step < 2; step++) {
    const r = await tr.step({ x: xTensor(), [ts.io.targets.name]: tTensor() }, lr);
    const g = r.grads['W']!;
    const stepSize = f(lr * 6); // lr_sgd = 2 × lr_adam = 6 for W
    buf = buf.map((bv, i) => f(f(bv * f(mu)) + g[i]!));
    const expect = w.map((p, i) => (MASK[i] ? f(p - f(buf[i]! * stepSize)) : 0));
    assert.deepEqual(Array.from(tr.param('W')), Array.from(expect), `step ${step + 1}`);
    MASK.forEach((m, i) => { if (!m) assert.ok(g[i] === 0, 'gradient of a pruned entry is 0'); });
    w = Float32Array.from(tr.param('W'));
  }
  await tr.release();
});

test('AdamW: two steps match the PyTorch formula (bias correction, decoupled decay with the base LR); dense params too', async () => {
  const model = linearModel(true);
  const [lr, b1, b2, eps, wd] = [0.01, 0.8, 0.95, 1e-6, 0.1];
  const ts = buildTrainStep(model, '.', groups(true, 3, 0.5, 1), {
    loss: 'cross_entropy', optimizer: { kind: 'adamw', beta1: b1, beta2: b2, eps, weightDecay: wd }, exposeGradients: true,
  });
  const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model, baseDir: '.' }, threads: 1 });
  const ref = { W: { p: Array.from(tr.param('W'), Number), m: new Array(D * V).fill(0), v: new Array(D * V).fill(0), mult: 3, wd: wd },
    b: { p: Array.from(tr.param('b'), Number), m: new Array(V).fill(0), v: new Array(V).fill(0), mult: 0.5, wd: 0 } };
  for (let t = 1; t <= 2; t++) {
    const r = await tr.step({ x: xTensor(), [ts.io.targets.name]: tTensor() }, lr);
    for (const [name, s] of Object.entries(ref)) {
      const g = r.grads[name]!;
      s.p = s.p.map((p, i) => {
        s.m[i] = b1 * s.m[i]! + (1 - b1) * g[i]!;
        s.v[i] = b2 * s.v[i]! + (1 - b2) * g[i]! ** 2;
        const mHat = s.m[i]! / (1 - b1 ** t);
        const vHat = s.v[i]! / (1 - b2 ** t);
        const next = p * (1 - lr * s.wd) - lr * s.mult * mHat / (Math.sqrt(vHat) + eps);
        return name === 'W' && !MASK[i] ? 0 : next;
      });
      const got = tr.param(name);
      s.p.forEach((p, i) => assert.ok(Math.abs(got[i]! - p) < 2e-6, `${name}[${i}] step ${t}: ${got[i]} vs ${p}`));
    }
    tr.param('W').forEach((p, i) => { if (!MASK[i]) assert.equal(Object.is(p, 0) || Object.is(p, -0), true); });
  }
  // save() writes the trained values into the forward model; the mask is untouched.
  const saved = withWeights(model, new Map([['W', tr.param('W')]]));
  assert.equal(saved.graph!.initializer.find((t) => t.name === 'W__mask'), model.graph!.initializer.find((t) => t.name === 'W__mask'));
  await tr.release();
});

test('train graph I/O: parameters become inputs, masks stay initializers, outputs are named P.new / P.m.new', () => {
  const ts = buildTrainStep(linearModel(true), '.', groups(true), { loss: 'cross_entropy', optimizer: { kind: 'adamw' } });
  const g = ts.train.graph!;
  const inputs = g.input.map((v) => v.name);
  assert.deepEqual(inputs, ['x', 'targets', 'W', 'b', 'W.m', 'W.v', 'b.m', 'b.v', 'step', 'lr']);
  assert.deepEqual(g.output.map((v) => v.name), ['loss', 'W.new', 'b.new', 'W.m.new', 'W.v.new', 'b.m.new', 'b.v.new']);
  assert.ok(g.initializer.some((t) => t.name === 'W__mask'));
  assert.ok(!g.initializer.some((t) => t.name === 'W' || t.name === 'b'));
  assert.ok(!g.node.some((n) => n.opType === 'SoftmaxCrossEntropyLoss' || n.domain !== ''), 'ai.onnx ops only');
  assert.deepEqual(ts.eval.graph!.output.map((v) => v.name), ['loss']);
});
