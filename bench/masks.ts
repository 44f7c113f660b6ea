/**
 * Mask and init throughput on one core: `node --import tsx bench/masks.ts [n=100000000] [density=0.125]`.
 * Prints wall times; not a test.
 */
import { Rng } from '../src/passes/rng.js';
import { drawMask } from '../src/passes/mask-patterns.js';
import { sampleInit } from '../src/passes/init-sampling.js';

const n = Number(process.argv[2] ?? 1e8);
const density = Number(process.argv[3] ?? 0.125);
const cols = 1000;
const shape = [Math.floor(n / cols), cols];

function time<T>(label: string, f: () => T): T {
  const t0 = performance.now();
  const out = f();
  console.log(`${label}: ${((performance.now() - t0) / 1000).toFixed(3)} s`);
  return out;
}

const spec = { shape, density, inputAxis: 0, outputAxis: 1 };
const exact = time(`exact ${density} of ${n}`, () => drawMask({ ...spec, mode: 'exact' }, Rng.forTensor(0, 'bench', 'mask')));
time(`bernoulli ${density} of ${n}`, () => drawMask({ ...spec, mode: 'bernoulli' }, Rng.forTensor(0, 'bench', 'mask')));
time(`per-row ${density} of ${n}`, () => drawMask({ ...spec, mode: 'per-row' }, Rng.forTensor(0, 'bench', 'mask')));
time(`n:m of ${n}`, () => drawMask({ ...spec, mode: 'n:m' }, Rng.forTensor(0, 'bench', 'mask')));
const values = new Float32Array(n);
time(`sampleInit masked (${density}) ${n}`, () => sampleInit(values, exact, 0.02, Rng.forTensor(0, 'bench', 'init')));
time(`sampleInit dense ${n}`, () => sampleInit(values, undefined, 0.02, Rng.forTensor(0, 'bench', 'init')));
