/**
 * Fuzz of the rule loader and the expression language (rule files are untrusted input, issue 12). Seeded and
 * bounded: random formulas, and rule files made by mutating the built-in supar.json (random values and keys at
 * random places, prototype keys, huge and tiny numbers, long strings, unicode and control characters, deep
 * nesting, hostile `extends`, broken JSON text). Each case must end in a valid plan or a UserInputError with a
 * one-line message, within a second of CPU time; afterwards no prototype has gained a key. A valid plan's values must mean
 * something (positive init stds, LRs >= 0, non-zero multipliers). JSON only: a .ts rule file costs a
 * type-check (about a second), so the TS reader's prototype keys are covered in rules-untrusted.test.ts.
 * Prints the case count and the outcomes. FUZZ_SEED / FUZZ_CASES override the defaults.
 */
import { mulberry32 } from '../src/passes/rng.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readModel } from '../src/onnx/codec.js';
import { analyzeModel } from '../src/analysis/index.js';
import { loadRules } from '../src/rules/load.js';
import { compileExpr } from '../src/rules/expr.js';
import { buildPlan, type TransformPlan } from '../src/plan.js';
import { DEFAULT_HYPERPARAMETERS, EXPR_VARIABLES, type ExprEnv } from '../src/rules/types.js';
import { UserInputError } from '../src/errors.js';
import { ROOT, tempDir } from './helpers.js';
import { GPT_TINY } from './transform-helpers.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const CASES = Number(process.env.FUZZ_CASES ?? 400);
const FORMULA_CASES = Number(process.env.FUZZ_CASES ?? 2000);

const rng = mulberry32;

class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number { return Math.floor(this.r() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  chance(p: number): boolean { return this.r() < p; }

  number(): string {
    return this.pick(['0', '1', '2', '0.5', '.5', '1e308', '1e309', '1e-400', '999999', '9'.repeat(400), '1e', '1.2.3', '0x10', '-0', String(this.r() * 100)]);
  }

  /** A formula from the grammar, sometimes broken on purpose. */
  formula(depth = 0): string {
    const leaf = () => (this.chance(0.5) ? this.number() : this.pick([...EXPR_VARIABLES, '__proto__', 'constructor', 'toString', 'sigma', 'ρ', 'm_d']));
    if (depth > 4 || this.chance(0.3)) return leaf();
    switch (this.int(6)) {
      case 0: return `${this.formula(depth + 1)}${this.pick(['+', '-', '*', '/', '^', '**', '%', ''])}${this.formula(depth + 1)}`;
      case 1: return `(${this.formula(depth + 1)})`;
      case 2: return `${this.pick(['sqrt', 'exp', 'log', 'abs', 'min', 'max', 'constructor', '__proto__', 'hasOwnProperty', 'eval', 'Math'])}(${this.formula(depth + 1)}${this.chance(0.3) ? `, ${this.formula(depth + 1)}` : ''})`;
      case 3: return `-${this.formula(depth + 1)}`;
      case 4: return `${this.formula(depth + 1)}^${this.pick(['999999', '-999999', '0.5', '-1', '1e308'])}`;
      default: return this.mutateText(this.formula(depth + 1));
    }
  }

  /** A few characters changed, inserted or removed; or wrapped very deep; or made very long. */
  mutateText(s: string): string {
    const odd = ['\n', '\u0000', '\u2028', '\ud800', '😀', 'ß', '"', '\\', '${x}', ' ', '(', ')', ',', '^', 'e', '.'];
    switch (this.int(6)) {
      case 0: { const i = this.int(s.length + 1); return s.slice(0, i) + this.pick(odd) + s.slice(i); }
      case 1: { const i = this.int(s.length); return s.slice(0, i) + s.slice(i + 1); }
      case 2: { const n = this.pick([10, 63, 64, 65, 1000, 100000]); return '('.repeat(n) + s + ')'.repeat(n); }
      case 3: return s.slice(0, 20000).repeat(this.pick([2, 100, 2000])).slice(0, 200000);
      case 4: return this.pick(['-', '+', '2^']).repeat(this.pick([10, 70, 5000])) + s;
      default: return s + this.pick(odd);
    }
  }

  key(): string {
    return this.pick(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'initStd', 'adamLr', 'density', 'roles', 'extends',
      'hidden', 'readout', 'bias', '', 'ключ', '😀', 'h.**', '**', '[', 'a\nb', 'x'.repeat(5000), '*a*a*a*a*a*a*a*a*b']);
  }

  /** Any JSON value, sometimes deeply nested. */
  value(depth = 0): unknown {
    switch (depth > 3 ? this.int(4) : this.int(8)) {
      case 0: return this.formula();
      case 1: return this.pick([0, 1, -1, 0.5, 1.5, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER + 2, 1e-400]);
      case 2: return this.pick([true, false, null]);
      case 3: return this.pick(['supar', 'sp', 'mup', 'x'.repeat(100000), '', 'ρ', '\u0000']);
      case 4: return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
      case 5: return Object.fromEntries(Array.from({ length: this.int(4) }, () => [this.key(), this.value(depth + 1)]));
      case 6: return `DEEP_${this.pick(['[', '{'])}_${this.pick([10, 1000, 50000])}_`; // spelled out in the text by ruleFileText
      default: return { match: this.key(), role: this.pick(['hidden', 'readout', 'nosuch', '__proto__']) };
    }
  }

  extendsValue(): string {
    return this.pick(['supar', 'sp', 'mup', 'nosuch', 'case.json', './case.json', 'base.json', 'sub/base.json', '../base.json', '/etc/passwd', '../../../../etc/passwd', 'passwd.json', '', 'C:\\x.json', 'base.json\u0000', '😀.json']);
  }
}

/** Every [parent, key] of `v`'s containers, for a random place to change. */
function places(v: unknown, out: [Record<string, unknown> | unknown[], string | number][] = [], depth = 0): typeof out {
  if (depth > 6 || typeof v !== 'object' || v === null) return out;
  for (const [k, child] of Object.entries(v)) {
    out.push([v as Record<string, unknown>, Array.isArray(v) ? Number(k) : k]);
    places(child, out, depth + 1);
  }
  return out;
}

/** A rule file's text: supar.json with a few changes, or that text broken. */
function ruleFileText(g: Gen, base: Record<string, unknown>): string {
  const doc = structuredClone(base) as Record<string, unknown>;
  if (g.chance(0.6)) { delete doc.roles; doc.extends = g.chance(0.5) ? g.pick(['supar', 'base.json', 'sub/base.json']) : g.extendsValue(); }
  for (let n = g.int(3); n > 0; n--) {
    const spots = places(doc);
    const [parent, key] = g.pick(spots);
    const roll = g.int(5);
    if (roll === 0) (parent as Record<string, unknown>)[key] = g.formula();
    else if (roll === 1) (parent as Record<string, unknown>)[key] = g.value();
    else if (roll === 2 && !Array.isArray(parent)) delete parent[key as string];
    else if (roll === 3 && !Array.isArray(parent)) Object.defineProperty(parent, g.key(), { value: g.value(), enumerable: true, configurable: true, writable: true });
    else doc.density = { [g.key()]: g.value() };
  }
  // Deep nesting is written into the text (JSON.stringify itself would overflow the stack on it).
  let text = JSON.stringify(doc).replace(/"DEEP_([[{])_(\d+)_"/g, (_m, open: string, n: string) =>
    open === '[' ? `${'['.repeat(Number(n))}1${']'.repeat(Number(n))}` : `${'{"a":'.repeat(Number(n))}1${'}'.repeat(Number(n))}`);
  if (g.chance(0.1)) { const i = g.int(text.length); text = text.slice(0, i) + g.pick(['"', '{', ',', '\\', '\u0000', 'ß']) + text.slice(i + 1); }
  if (g.chance(0.05)) text = text.slice(0, g.int(text.length));
  return text;
}

function prototypeKeys(): string {
  return [Object.prototype, Array.prototype, String.prototype, Function.prototype, Number.prototype]
    .map((p) => Object.getOwnPropertyNames(p).sort().join(',')).join('|');
}

/** Throws unless `plan`'s values mean something (what the plan's checks promise). */
function checkPlanValues(plan: TransformPlan): void {
  for (const p of plan.params) {
    if (p.initStd !== null) assert.ok(Number.isFinite(p.initStd) && (p.initStd > 0 || (p.initStd === 0 && p.role === 'readout')), `${p.name} initStd ${p.initStd}`);
    for (const v of [p.lrAdam, p.lrSgd, p.weightDecay]) assert.ok(Number.isFinite(v) && v >= 0, `${p.name}: ${v}`);
    assert.ok(Number.isFinite(p.adamEps) && p.adamEps > 0, `${p.name} adamEps ${p.adamEps}`);
  }
  for (const v of [plan.embeddingMultiplier, plan.outputMultiplier, ...plan.attention.map((a) => a.targetScale ?? 1), ...plan.residualBranches.map((b) => b.multiplier)]) assert.ok(Number.isFinite(v) && v !== 0, `multiplier ${v}`);
}

const TOP_KEYS = new Set(['$schema', 'id', 'doc', 'extends', 'attentionScale', 'embeddingMultiplier', 'outputMultiplier', 'depthFactor', 'residualBranchMultiplier', 'alphaDepth', 'weightDecayMode', 'roles', 'overrides', 'density']);
const ROLE_KEYS = new Set(['id', 'doc', 'initStd', 'adamLr', 'sgdLr', 'weightDecay', 'adamEps', 'sparsify']);

/** Throws unless every key of an accepted file is a key of the format (an unknown one must have been refused). */
function checkKnownKeys(text: string): void {
  const doc = JSON.parse(text) as Record<string, unknown>;
  for (const k of Object.keys(doc)) assert.ok(TOP_KEYS.has(k), `accepted unknown key ${JSON.stringify(k)}`);
  for (const [role, rule] of Object.entries((doc.roles ?? {}) as Record<string, Record<string, unknown>>)) {
    for (const k of Object.keys(rule)) assert.ok(ROLE_KEYS.has(k), `accepted unknown key roles.${role}.${JSON.stringify(k)}`);
  }
  for (const o of (doc.overrides ?? []) as Record<string, unknown>[]) for (const k of Object.keys(o)) assert.ok(k === 'match' || k === 'role', `accepted overrides key ${JSON.stringify(k)}`);
}

/** A short class for the outcome tally: the error message without its file, path and quoted text. */
function outcomeClass(message: string): string {
  const known = ['empty expression', 'argument', 'unknown key', 'unknown role', 'unknown variable', 'unknown function', 'not valid JSON', 'expected a formula', 'expected an object', 'expected true or false',
    'expected a string', 'expected an array', 'expected a density', 'outside (0, 1]', 'missing required field', 'no roles', 'nested more than', 'longer than', 'cycle',
    'leaves the folder', 'absolute path', 'not a built-in id', 'no such file', 'must be finite', 'unexpected character', 'malformed number', 'expected', 'glob', 'unexpected', 'bytes; a rule file'];
  return known.find((k) => message.includes(k)) ?? message.slice(0, 60);
}

/** CPU milliseconds this process has used (a per-case bound that a loaded machine does not break). */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function tally(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function oneLine(e: unknown, what: string): string {
  assert.ok(e instanceof UserInputError, `${what}: not a clean error: ${e instanceof Error ? e.stack : String(e)}`);
  assert.doesNotMatch(e.message, /[\n\r\u2028\u2029]/, `${what}: message is not one line: ${JSON.stringify(e.message.slice(0, 300))}`);
  assert.ok(e.message.length < 4000, `${what}: message of ${e.message.length} characters: ${e.message.slice(0, 400)}`);
  return e.message;
}

test('fuzz: random formulas compile and evaluate to a number or a clean one-line error', () => {
  const g = new Gen(rng(SEED));
  const before = prototypeKeys();
  const counts = new Map<string, number>();
  const t0 = performance.now();
  for (let i = 0; i < FORMULA_CASES; i++) {
    const src = g.chance(0.2) ? g.mutateText(g.formula()) : g.formula();
    const env = Object.fromEntries(EXPR_VARIABLES.map((v) => [v, g.pick([0, 1, 2, 0.125, 64, 1e308, -1, 1e-320])])) as ExprEnv;
    const t = cpuMs();
    try {
      const value = compileExpr(src, `case ${i}`).value(env);
      assert.equal(typeof value, 'number');
      tally(counts, Number.isFinite(value) ? 'finite number' : 'non-finite number (the plan refuses it)');
    } catch (e) {
      tally(counts, outcomeClass(oneLine(e, `formula case ${i} ${JSON.stringify(src.slice(0, 80))}`)));
    }
    assert.ok(cpuMs() - t < 1000, `formula case ${i} took ${cpuMs() - t} ms of CPU`);
  }
  assert.equal(prototypeKeys(), before, 'a prototype gained or lost a key');
  console.log(`formula fuzz: seed ${SEED}, ${FORMULA_CASES} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${[...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join(', ')}`);
});

test('fuzz: mutated rule files load into a valid plan or a clean one-line error, each within a second', async () => {
  const g = new Gen(rng(SEED + 1));
  const { model, baseDir } = readModel(GPT_TINY);
  const analysis = analyzeModel(model, baseDir);
  const base = JSON.parse(fs.readFileSync(path.join(ROOT, 'rules', 'supar.json'), 'utf8')) as Record<string, unknown>;
  const dir = tempDir('supar-rules-fuzz-');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'base.json'), JSON.stringify({ extends: 'supar', roles: { hidden: { sgdLr: '1' } } }));
  fs.writeFileSync(path.join(dir, 'sub', 'base.json'), JSON.stringify({ extends: '../base.json' }));
  fs.writeFileSync(path.join(dir, 'passwd.json'), 'root:x:0:0:root:/root:/bin/bash\n');
  const file = path.join(dir, 'case.json');
  const before = prototypeKeys();
  const counts = new Map<string, number>();
  const t0 = performance.now();
  for (let i = 0; i < CASES; i++) {
    const text = ruleFileText(g, base);
    fs.writeFileSync(file, text);
    const t = cpuMs();
    try {
      const loaded = await loadRules(file);
      const plan = buildPlan(analysis, loaded.ruleSet, {
        density: 0.125, mD: 2, hyperparameters: DEFAULT_HYPERPARAMETERS, maskMode: 'per-tensor', sparsify: [], dense: [],
        densityMap: loaded.densityMap.map((d) => ({ pattern: d.match, density: d.density })), init: 'resample', truncated: false,
        depthFactor: loaded.ruleSet.depthFactor, strict: false,
      });
      checkPlanValues(plan);
      checkKnownKeys(text);
      tally(counts, 'valid plan');
    } catch (e) {
      const message = oneLine(e, `rule file case ${i} ${JSON.stringify(text.slice(0, 200))}`);
      assert.doesNotMatch(message, /root:x/, `case ${i}: the message quotes another file`);
      tally(counts, outcomeClass(message));
    }
    assert.ok(cpuMs() - t < 1000, `rule file case ${i} took ${cpuMs() - t} ms of CPU: ${JSON.stringify(text.slice(0, 200))}`);
  }
  assert.equal(prototypeKeys(), before, 'a prototype gained or lost a key');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  console.log(`rule-file fuzz: seed ${SEED + 1}, ${CASES} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${[...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join(', ')}`);
  assert.ok((counts.get('valid plan') ?? 0) > CASES / 20, 'the mutations leave some files valid');
});
