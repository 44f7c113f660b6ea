/**
 * Depth rules (issue 8; docs/notes/depth-unit-rules.md): the rule files completep, depth-mup,
 * supar-completep, supar-init-only, supar-lr-only and umup against a hand computation of their formulas
 * for 2- and 4-layer GPTs at m_L = 2; residual-branch multiplier sites (exactly two per block, the Mul
 * right before the residual Add, measured in onnxruntime) on the fixture GPT and on sequential, parallel and
 * encoder HF exports; the per-group Adam ε and the PyTorch-coupled weight decay in the train step; and a
 * small depth coordinate check: the change of the last block's output over the first steps stays within
 * ×1.5 across depths 2, 4, 8 under CompleteP, and grows with depth under µP.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildGpt } from '../fixtures/gpt-builder.js';
import { encodeModel, readModel, type LoadedModel } from '../src/onnx/codec.js';
import { transform, type TransformResult } from '../src/transform.js';
import { buildTrainStep } from '../src/train/train-step.js';
import { createTrainer } from '../src/train/runner.js';
import { markovTokenStream } from '../src/experiments/train-run.js';
import { tensorToFloat32 } from '../src/onnx/tensor.js';
import { ROOT } from './helpers.js';
import { runCli } from './cli-helpers.js';

function gpt(layers: number, dModel = 32): LoadedModel {
  return { model: buildGpt({ vocab: 64, dModel, layers, heads: 4, maxPos: 16, seed: 3 }), path: `gpt-L${layers}.onnx`, baseDir: ROOT, fileBytes: 0 };
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} ≠ ${b}`);

/** Expected (initStd, adamLr, sgdLr, weightDecay, adamEps) per role, in/out of block, from the notes' tables. */
type Expect = (role: string, inBlock: boolean) => [number | null, number, number, number, number];
const S = 0.02;

function depthRule(alpha: number, mD: number, mL: number, rho: number, sparse: boolean): Expect {
  return (role, inBlock) => {
    const small: [null, number, number, number, number] = [null, inBlock ? mL ** (alpha - 1) : 1, inBlock ? mL ** (2 * alpha - 1) : 1, 0, inBlock ? 1 / (mD * mL ** alpha) : 1];
    switch (role) {
      case 'embedding': case 'position_embedding': case 'readout': return [S, 1, 1, 1, 1];
      case 'hidden': return sparse
        ? [S / Math.sqrt(mD * rho), mL ** (alpha - 1) / (mD * rho), mL ** (2 * alpha - 1) / rho, mL ** (alpha - 1), mL ** -alpha / mD]
        : [S / Math.sqrt(mD), mL ** (alpha - 1) / mD, mL ** (2 * alpha - 1), mL ** (alpha - 1), mL ** -alpha / mD];
      default: return small;
    }
  };
}

function checkNumbers(r: TransformResult, expect: Expect, branch: number): void {
  let hidden = 0;
  for (const p of r.plan.params.filter((x) => x.trainable)) {
    const [std, lr, sgd, wd, eps] = expect(p.role, p.layer !== undefined);
    if (std !== null) close(p.initStd!, std, `${p.name} init std`);
    close(p.lrAdam, lr, `${p.name} Adam LR`);
    close(p.lrSgd, sgd, `${p.name} SGD LR`);
    close(p.weightDecay, wd, `${p.name} weight decay`);
    close(p.adamEps, eps, `${p.name} Adam ε`);
    const g = r.lrGroups.groups.find((x) => x.name === p.name)!;
    close(g.adam_eps!, eps, `${p.name} lr.json adam_eps`);
    if (p.role === 'hidden') hidden++;
  }
  assert.ok(hidden >= 8);
  assert.equal(r.plan.residualBranches.length, 2 * r.plan.depth.nLayers);
  for (const b of r.plan.residualBranches) close(b.multiplier, branch, `branch ${b.branch.value}`);
}

test('completep, depth-mup, supar-completep: per-tensor init std, LRs, weight decay, ε and branch multipliers at m_L 2 (2 and 4 layers)', async () => {
  for (const [layers, base] of [[2, 1], [4, 2]] as const) {
    const cp = await transform(gpt(layers), { rules: 'completep', baseDepth: base, widthMult: 2 });
    assert.equal(cp.plan.depth.mL, 2);
    checkNumbers(cp, depthRule(1, 2, 2, 1, false), 0.5);
    assert.equal(cp.lrGroups.m_L, 2);
    assert.equal(cp.lrGroups.alpha_depth, 1);
    assert.equal(cp.lrGroups.weight_decay_mode, 'base_lr');
    const dm = await transform(gpt(layers), { rules: 'depth-mup', baseDepth: base, widthMult: 2 });
    checkNumbers(dm, depthRule(0.5, 2, 2, 1, false), 2 ** -0.5);
    const sc = await transform(gpt(layers), { rules: 'supar-completep', baseDepth: base, widthMult: 2, density: 0.25 });
    checkNumbers(sc, depthRule(1, 2, 2, 0.25, true), 0.5);
    // The final norm is out of block: LR 1 and ε 1; the blocks' norms are in: ε 1/(m_d·m_L).
    const lnF = sc.plan.params.find((p) => p.name === 'transformer.ln_f.weight')!;
    assert.deepEqual([lnF.layer, lnF.lrAdam, lnF.adamEps], [undefined, 1, 1]);
    assert.equal(sc.plan.params.find((p) => p.name === 'transformer.h.0.ln_1.weight')!.adamEps, 0.25);
    const meta = Object.fromEntries(sc.model.metadataProps.map((e) => [e.key, e.value]));
    assert.deepEqual([meta['supar.m_L'], meta['supar.n_layers_base'], meta['supar.alpha_depth']], ['2', String(base), '1']);
  }
});

test('ablations and umup: supar-init-only / supar-lr-only change one correction each; umup folds u-µP\'s per-tensor scales', async () => {
  const full = await transform(gpt(2), { rules: 'supar', density: 0.25, widthMult: 2 });
  const init = await transform(gpt(2), { rules: 'supar-init-only', density: 0.25, widthMult: 2 });
  const lr = await transform(gpt(2), { rules: 'supar-lr-only', density: 0.25, widthMult: 2 });
  const h = (r: TransformResult) => r.plan.params.find((p) => p.name === 'transformer.h.0.mlp.c_fc.weight')!;
  assert.deepEqual([h(full).initStd, h(full).lrAdam, h(full).lrSgd], [S / Math.sqrt(0.5), 2, 4]);
  assert.deepEqual([h(init).initStd, h(init).lrAdam, h(init).lrSgd], [S / Math.sqrt(0.5), 0.5, 1]);
  assert.deepEqual([h(lr).initStd, h(lr).lrAdam, h(lr).lrSgd], [S / Math.sqrt(2), 2, 4]);
  assert.equal(h(init).density, 0.25);
  // u-µP: unit init at the effective fan-in, Adam LR (fan_in·ρ)^-1·L^-1/2, embedding LR d^-1/2, readout 1/fan_in.
  const u = await transform(gpt(4), { rules: 'umup', density: 0.5 });
  const fc = u.plan.params.find((p) => p.name === 'transformer.h.0.mlp.c_fc.weight')!;
  close(fc.initStd!, (32 * 0.5) ** -0.5, 'umup hidden std');
  close(fc.lrAdam, 1 / (32 * 0.5) / Math.sqrt(4), 'umup hidden LR');
  const wte = u.plan.params.find((p) => p.role === 'embedding')!;
  close(wte.lrAdam, 32 ** -0.5, 'umup embedding LR');
  const head = u.plan.params.find((p) => p.role === 'readout')!;
  close(head.initStd!, 1 / 32, 'umup readout std');
  close(u.plan.params.find((p) => p.name === 'transformer.h.1.ln_2.weight')!.lrAdam, 0.5, 'umup in-block norm LR');
  close(u.plan.params.find((p) => p.name === 'transformer.ln_f.weight')!.lrAdam, 1, 'umup final norm LR');
  for (const b of u.plan.residualBranches) close(b.multiplier, 0.5, 'umup branch n_layers^-1/2');
});

/** Runs the transformed model with each branch's product and its input as outputs: product / input = multiplier. */
async function measuredBranchRatios(r: TransformResult, loaded: LoadedModel): Promise<number[]> {
  const g = r.model.graph!;
  const outs: string[] = [];
  for (const b of r.report.residual_branches) {
    const mul = g.node.find((n) => n.output[0] === b.value)!;
    assert.equal(mul.opType, 'Mul', `${b.value} is produced by the branch Mul`);
    const add = g.node.find((n) => n.output[0] === r.analysis.residualBranches.find((x) => x.value === b.value)!.sum)!;
    // The scaled branch reaches the residual Add directly, or through the other branch's Add of a parallel block.
    const reaches = add.input.includes(b.value) || g.node.some((n) => n.input.includes(b.value) && n.opType === 'Add' && add.input.includes(n.output[0]!));
    assert.ok(reaches, `${b.value} feeds the residual Add ${b.add}`);
    outs.push(b.value, mul.input[0]!);
  }
  const m = { ...r.model, graph: { ...g, output: [...g.output, ...outs.map((name) => ({ ...g.output[0]!, name, type: undefined }))] } };
  const session = await ort.InferenceSession.create(encodeModel(m as typeof r.model));
  const feeds: Record<string, ort.Tensor> = {};
  for (const inp of g.input.filter((i) => !g.initializer.some((t) => t.name === i.name))) {
    const dims = (inp.type?.value.case === 'tensorType' ? inp.type.value.value.shape?.dim ?? [] : []).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : 2));
    const n = dims.reduce((a, b) => a * b, 1);
    const elem = inp.type?.value.case === 'tensorType' ? inp.type.value.value.elemType : 1;
    feeds[inp.name] = elem === 7 ? new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 7)), dims)
      : new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(i)), dims);
  }
  const res = await session.run(feeds, outs);
  await session.release();
  void loaded;
  const ratios: number[] = [];
  for (let i = 0; i < outs.length; i += 2) {
    const y = res[outs[i]!]!.data as Float32Array;
    const x = res[outs[i + 1]!]!.data as Float32Array;
    let num = 0, den = 0;
    for (let k = 0; k < y.length; k++) { num += y[k]! * x[k]!; den += x[k]! * x[k]!; }
    ratios.push(num / den);
  }
  return ratios;
}

test('branch multiplier sites: two per block, a Mul right before the residual Add, product/branch = m_L^-1 in onnxruntime', async () => {
  const files = ['fixtures/gpt-tiny.onnx', 'fixtures/hf/qwen2_ts.onnx', 'fixtures/hf/gpt_neox_ts.onnx', 'fixtures/hf/vit_ts.onnx'];
  for (const f of files) {
    const loaded = readModel(path.join(ROOT, f));
    const r = await transform(loaded, { rules: 'completep', baseDepth: 1 });
    const br = r.report.residual_branches;
    assert.equal(r.plan.depth.nLayers, 2, f);
    for (const layer of [0, 1]) {
      assert.deepEqual(br.filter((b) => b.layer === layer).map((b) => b.kind).sort(), ['attention', 'mlp'], `${f} layer ${layer}`);
    }
    assert.equal(new Set(br.map((b) => b.value)).size, 4, `${f}: four distinct branches`);
    for (const ratio of await measuredBranchRatios(r, loaded)) assert.ok(Math.abs(ratio - 0.5) < 1e-5, `${f}: measured ${ratio}`);
    assert.ok(!r.plan.warnings.some((w) => w.includes('branch')), `${f}: ${r.plan.warnings.join('; ')}`);
  }
  // Sandwich norms (Gemma 2) hide the branches: said, not guessed.
  const gemma = await transform(readModel(path.join(ROOT, 'fixtures/hf/gemma2_ts.onnx')), { rules: 'completep', baseDepth: 1 });
  assert.ok(gemma.plan.warnings.some((w) => /but 0 branches were found for 2 layers/.test(w)), gemma.plan.warnings.join('\n'));
  // m_L = 1 inserts nothing; rules without depth rules warn when a base depth is given.
  const same = await transform(gpt(2), { rules: 'completep' });
  assert.ok(same.report.residual_branches.every((b) => b.node === null));
  const mup = await transform(gpt(4), { rules: 'mup', baseDepth: 2 });
  assert.ok(mup.plan.warnings.some((w) => w.startsWith("base depth 2 gives m_L = 2, but rules 'mup' have no depth rules")));
});

test('train step: each group\'s Adam ε multiplier and PyTorch-coupled weight decay enter the update exactly', async () => {
  const r = await transform(gpt(2), { rules: 'completep', baseDepth: 1 });
  const fwd = { model: r.model, baseDir: ROOT };
  const b = markovTokenStream(64, 2, 8, 0)();
  const first = async (groups: typeof r.lrGroups, eps: number, wd: number) => {
    const ts = buildTrainStep(r.model, ROOT, groups, { loss: 'cross_entropy', optimizer: { kind: 'adamw', eps, weightDecay: wd }, exposeGradients: true });
    const tr = await createTrainer({ train: ts.train, io: ts.io, forward: fwd, threads: 1 });
    const feeds = { [ts.io.modelInputs[0]!.name]: new ort.Tensor('int64', b.inputIds, b.dims), [ts.io.targets.name]: new ort.Tensor('int64', b.targets, b.dims) };
    const s = await tr.step(feeds, 0.01);
    const out = new Map(ts.io.params.map((p) => [p.name, { p: Float32Array.from(tr.param(p.name)), g: s.grads[p.name]! }]));
    await tr.release();
    return out;
  };
  // Step 1 of AdamW with bias correction: Δ = lr·lr_mult·g/(|g| + ε·eps_mult) (m̂ = g, v̂ = g²).
  const name = 'transformer.h.0.mlp.c_fc.weight';
  const init = tensorToFloat32(r.model.graph!.initializer.find((t) => t.name === name)!, ROOT);
  const g0 = r.lrGroups.groups.find((x) => x.name === name)!;
  assert.equal(g0.adam_eps, 0.5);
  const res = (await first(r.lrGroups, 1e-3, 0)).get(name)!;
  let worst = 0;
  let withoutMult = 0;
  for (let i = 0; i < init.length; i += 7) {
    const g = res.g[i]!;
    const step = (eps: number) => init[i]! - (0.01 * g0.lr_adam * g) / (Math.abs(g) + eps);
    worst = Math.max(worst, Math.abs(res.p[i]! - step(1e-3 * 0.5)) / (0.01 * g0.lr_adam));
    withoutMult = Math.max(withoutMult, Math.abs(res.p[i]! - step(1e-3)) / (0.01 * g0.lr_adam));
  }
  assert.ok(worst < 1e-3, `ε·eps_mult in the update: worst relative error ${worst}`);
  assert.ok(withoutMult > 0.05, `the check can tell ε from ε·eps_mult (${withoutMult})`);
  // Coupled decay: p·(1 − lr·lr_mult·wd_mult·λ); with base_lr it is p·(1 − lr·wd_mult·λ).
  const coupled = { ...r.lrGroups, weight_decay_mode: 'group_lr' as const, groups: r.lrGroups.groups.map((x) => (x.name === name ? { ...x, lr_adam: 0.25 } : x)) };
  const [a, c] = [(await first({ ...coupled, weight_decay_mode: 'base_lr' }, 1e-8, 0.5)).get(name)!, (await first(coupled, 1e-8, 0.5)).get(name)!];
  for (let i = 0; i < init.length; i += 131) {
    const step = a.p[i]! - init[i]! * (1 - 0.01 * 0.5);
    const got = c.p[i]! - init[i]! * (1 - 0.01 * 0.25 * 0.5);
    assert.ok(Math.abs(got - step) <= 2e-6 * Math.abs(init[i]!) + 1e-9, `decay of entry ${i}: ${got} vs ${step}`);
  }
});

test('depth coordinate check: Δ of the last block output over 5 steps stays within ×1.5 across depths 2, 4, 8 under CompleteP, not under µP', async () => {
  const drift = async (rules: string, layers: number): Promise<number[]> => {
    const r = await transform(gpt(layers, 64), { rules, baseDepth: 2, seed: 1 });
    const last = r.analysis.residualBranches.at(-1)!.sum;
    const ts = buildTrainStep(r.model, ROOT, r.lrGroups, { loss: 'cross_entropy', optimizer: { kind: 'adamw' }, extraOutputs: [last] });
    const tr = await createTrainer({ train: ts.train, io: ts.io, forward: { model: r.model, baseDir: ROOT }, threads: 1 });
    const b = markovTokenStream(64, 4, 16, 0)();
    const feeds = { [ts.io.modelInputs[0]!.name]: new ort.Tensor('int64', b.inputIds, b.dims), [ts.io.targets.name]: new ort.Tensor('int64', b.targets, b.dims) };
    let h0: Float32Array | undefined;
    const out: number[] = [];
    for (let t = 0; t < 6; t++) {
      const h = (await tr.step(feeds, 2 ** -7)).extras[last]!.data as Float32Array;
      if (!h0) { h0 = Float32Array.from(h); continue; }
      let s = 0;
      for (let i = 0; i < h.length; i++) s += Math.abs(h[i]! - h0[i]!);
      out.push(s / h.length);
    }
    await tr.release();
    return out;
  };
  const spread = async (rules: string) => {
    const runs = [await drift(rules, 2), await drift(rules, 4), await drift(rules, 8)];
    return runs[0]!.map((_, t) => Math.max(...runs.map((x) => x[t]!)) / Math.min(...runs.map((x) => x[t]!)));
  };
  const cp = await spread('completep');
  const mu = await spread('mup');
  assert.ok(cp.every((x) => x <= 1.5), `CompleteP max/min across depths per step: ${cp.map((x) => x.toFixed(2))}`);
  assert.ok(mu.some((x) => x > 2), `µP max/min across depths per step: ${mu.map((x) => x.toFixed(2))}`);
});

test('CLI: --base-depth and --base-model set m_L; a bad --base-depth is one line', async () => {
  const bad = await runCli(['fixtures/gpt-tiny.onnx', '--rules', 'completep', '--base-depth', '0', '--dry-run']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'error: --base-depth 0: must be a whole number of blocks >= 1\n');
  const r = await transform(gpt(4), { rules: 'completep', baseModel: gpt(2) });
  assert.deepEqual([r.plan.depth.nLayersBase, r.plan.depth.mL], [2, 2]);
  assert.match(r.summaryText, /m_L 2 \(4 layers \/ base 2, α 1\)/);
  assert.match(r.summaryText, /^residual branches: 8 \(4 attention, 4 MLP\) × 0\.5$/m);
});
