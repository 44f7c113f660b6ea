/**
 * Test helpers for the train-step tests: LR groups for an untransformed model, and a hand-applied static
 * mask in the transform's layout (W with pruned entries 0, `W__mask` bool, Cast → Mul(W, maskf) feeding
 * W's consumers), so the train tests do not depend on the transform.
 */
import type { ModelProto, TensorProto } from 'onnx-buf';
import { node } from '../src/onnx/build.js';
import { DataType } from '../src/onnx/dtype.js';
import { dimsOf, makeByteTensor, setTensorFloats, tensorToFloat32 } from '../src/onnx/tensor.js';
import { Rng } from '../src/passes/rng.js';
import { LR_GROUPS_FORMAT, type LrGroup, type LrGroupsFile } from '../src/train/types.js';

export interface TestParamSpec {
  /** Trainable float initializers (by predicate on name and dims). */
  isParam: (name: string, dims: number[]) => boolean;
  /** Which params get a mask of `density`. */
  isHidden: (name: string, dims: number[]) => boolean;
  density: number;
  /** LR multipliers: hidden weights get 1/density (SµPar, m_d = 1); others `otherLr`, norms `normLr`. */
  isNorm?: (name: string) => boolean;
  otherLr?: number;
  normLr?: number;
  seed?: number;
}

/** Masks the hidden weights in place (exactly round(ρ·n) kept, seeded) and returns the LR groups. */
export function prepareForTraining(model: ModelProto, baseDir: string, spec: TestParamSpec): LrGroupsFile {
  const g = model.graph!;
  const groups: LrGroup[] = [];
  const front = [];
  for (const t of [...g.initializer]) {
    const dims = dimsOf(t);
    if (t.dataType !== DataType.FLOAT || !spec.isParam(t.name, dims)) continue;
    const hidden = spec.isHidden(t.name, dims);
    let mask: string | null = null;
    if (hidden && spec.density < 1) {
      mask = `${t.name}__mask`;
      front.push(...maskWeight(model, t, baseDir, mask, spec.density, spec.seed ?? 0));
    }
    const norm = spec.isNorm?.(t.name) ?? false;
    const lr = hidden ? 1 / spec.density : norm ? spec.normLr ?? 1 : spec.otherLr ?? 1;
    groups.push({ name: t.name, role: hidden ? 'hidden' : norm ? 'norm' : 'other', shape: dims, lr_adam: lr, lr_sgd: hidden ? 1 / spec.density : lr,
      weight_decay: hidden ? 1 : 0, density: hidden ? spec.density : 1, mask, rule: 'test' } as LrGroup);
  }
  g.node.unshift(...front);
  return { format: LR_GROUPS_FORMAT, rules: 'test', hyperparameters: { sigma_base: 0.02, eta_base: 1, alpha_input: 1, alpha_output: 1 }, m_d: 1, density: spec.density, seed: spec.seed ?? 0, groups };
}

function maskWeight(model: ModelProto, t: TensorProto, baseDir: string, maskName: string, density: number, seed: number) {
  const g = model.graph!;
  const values = tensorToFloat32(t, baseDir);
  const n = values.length;
  const keep = Math.round(density * n);
  const bits = new Uint8Array(n);
  const rng = Rng.forTensor(seed, t.name, 'test-mask');
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < keep; i++) { // partial Fisher–Yates
    const j = i + Math.floor(rng.uniform53() * (n - i));
    const tmp = idx[i]!; idx[i] = idx[j]!; idx[j] = tmp;
    bits[idx[i]!] = 1;
  }
  for (let i = 0; i < n; i++) if (!bits[i]) values[i] = 0;
  setTensorFloats(t, values);
  g.initializer.push(makeByteTensor(maskName, dimsOf(t), bits, DataType.BOOL));
  const maskF = `${t.name}__maskf`;
  const masked = `${t.name}__masked`;
  for (const nd of g.node) nd.input = nd.input.map((x) => (x === t.name ? masked : x));
  return [node('Cast', [maskName], [maskF], { to: DataType.FLOAT }, `${t.name}/mask_cast`), node('Mul', [t.name, maskF], [masked], {}, `${t.name}/mask_mul`)];
}
