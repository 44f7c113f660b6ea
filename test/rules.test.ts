/**
 * Rule sets: the built-in files evaluate to DESIGN.md's table, user files extend and override them, malformed
 * files fail with located one-line messages, built-ins are found from src/ and dist/src/.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { findBuiltinRulesDir, getBuiltinRulesDir, loadRules } from '../src/rules/load.js';
import { compileExpr } from '../src/rules/expr.js';
import type { ExprEnv, RuleSet } from '../src/rules/types.js';
import { UsageError, UserInputError } from '../src/errors.js';
import { ROOT, tempDir } from './helpers.js';

const ENV: ExprEnv = { m_d: 2, m_rho: 0.125, rho: 0.125, sigma_base: 0.02, alpha_input: 3, alpha_output: 5, d_head: 64, n_layers: 12, fan_in: 768, fan_out: 3072, m_L: 1, n_layers_base: 12, alpha_depth: 0, in_block: 1 };
const ev = (src: string | undefined) => (src === undefined ? undefined : compileExpr(src, 'test').eval(ENV));

function roleValues(set: RuleSet, role: keyof RuleSet['roles']) {
  const r = set.roles[role]!;
  return { initStd: ev(r.initStd), adamLr: ev(r.adamLr), sgdLr: ev(r.sgdLr), wd: ev(r.weightDecay), sparsify: r.sparsify };
}

const close = (a: number | undefined, b: number | undefined, what: string) =>
  assert.ok(a !== undefined && b !== undefined && Math.abs(a - b) <= 1e-12 * Math.abs(b), `${what}: ${a} vs ${b}`);

test('built-in rule sets evaluate to the DESIGN.md table at m_d=2, ρ=0.125, σ=0.02, α_in=3, α_out=5, d_head=64', async () => {
  const σ = 0.02;
  // [set, hidden std, hidden Adam LR, hidden SGD LR, attention scale, embedding mult, output mult]
  const table: [string, number, number, number, number, number, number][] = [
    ['sp', σ, 1, 1, 1 / 8, 1, 1],
    ['mup', σ / Math.sqrt(2), 1 / 2, 1, 1 / 64, 3, 5 / 2],
    ['supar', σ / Math.sqrt(0.25), 4, 8, 1 / 64, 3, 5 / 2],
  ];
  for (const [id, std, adam, sgd, attn, emb, out] of table) {
    const { ruleSet, source, overrides, densityMap } = await loadRules(id);
    assert.equal(ruleSet.id, id);
    assert.equal(source, `builtin:${id}`);
    assert.deepEqual([overrides, densityMap], [[], []]);
    const h = roleValues(ruleSet, 'hidden');
    close(h.initStd, std, `${id} hidden std`);
    close(h.adamLr, adam, `${id} hidden adam`);
    close(h.sgdLr, sgd, `${id} hidden sgd`);
    assert.equal(h.wd, 1);
    assert.equal(h.sparsify, true);
    close(ev(ruleSet.attentionScale), attn, `${id} attention`);
    close(ev(ruleSet.embeddingMultiplier), emb, `${id} embedding multiplier`);
    close(ev(ruleSet.outputMultiplier), out, `${id} output multiplier`);
    close(ev(ruleSet.depthFactor), 1 / Math.sqrt(24), `${id} depth factor`);
    for (const role of ['embedding', 'position_embedding', 'readout'] as const) {
      assert.deepEqual(roleValues(ruleSet, role), { initStd: σ, adamLr: 1, sgdLr: 1, wd: 1, sparsify: false }, `${id} ${role}`);
    }
    for (const role of ['bias', 'norm_scale', 'norm_bias'] as const) {
      assert.deepEqual(roleValues(ruleSet, role), { initStd: undefined, adamLr: 1, sgdLr: 1, wd: 0, sparsify: false }, `${id} ${role}`);
    }
    for (const [role, rule] of Object.entries(ruleSet.roles)) {
      assert.equal(rule.id, `${id}.${role}`);
      assert.ok(rule.doc.length > 10 && !rule.doc.includes('\n'));
    }
  }
});

test('SµPar at m_d=1, ρ=1 equals µP at m_d=1 (only the attention scale differs from SP)', async () => {
  const env1 = { ...ENV, m_d: 1, m_rho: 1, rho: 1 };
  const [sp, supar] = [(await loadRules('sp')).ruleSet, (await loadRules('supar')).ruleSet];
  const e = (s: string | undefined) => (s === undefined ? undefined : compileExpr(s, 't').eval(env1));
  for (const role of Object.keys(sp.roles) as (keyof RuleSet['roles'])[]) {
    for (const f of ['initStd', 'adamLr', 'sgdLr', 'weightDecay'] as const) assert.equal(e(supar.roles[role]![f]), e(sp.roles[role]![f]), `${role}.${f}`);
  }
  assert.equal(e(supar.outputMultiplier), 5);
});

test('built-in rules are found from src/rules/ and dist/src/rules/', () => {
  const rulesDir = path.join(ROOT, 'rules') + path.sep;
  assert.equal(getBuiltinRulesDir(), rulesDir);
  const exists = (p: string) => p === path.join(rulesDir, 'supar.json');
  assert.equal(findBuiltinRulesDir(pathToFileURL(path.join(ROOT, 'src/rules/load.ts')).href, exists), rulesDir);
  assert.equal(findBuiltinRulesDir(pathToFileURL(path.join(ROOT, 'dist/src/rules/load.js')).href, exists), rulesDir);
  assert.equal(findBuiltinRulesDir(pathToFileURL('/elsewhere/a/b/c/load.js').href, exists), undefined);
});

function writeRules(dir: string, name: string, body: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body, null, 2));
  return file;
}

test('a user file extends supar: field-by-field role merge, overrides and density map first', async () => {
  const dir = tempDir();
  const base = writeRules(dir, 'base.json', { extends: 'supar', density: { 'h.*.attn.**': 0.5 }, overrides: [{ match: 'lm_head.weight', role: 'readout' }] });
  const file = writeRules(dir, 'mine.json', {
    extends: './base.json',
    roles: { hidden: { sgdLr: '1/(m_rho*m_d)' }, readout: { id: 'mine.zero_readout', doc: 'zero readout', initStd: '0' } },
    overrides: [{ match: '**.c_proj.weight', role: 'hidden' }],
    density: { 'h.0.**': 0.25 },
  });
  const { ruleSet, source, overrides, densityMap } = await loadRules(file);
  assert.equal(source, file);
  assert.equal(ruleSet.id, 'mine');
  const h = ruleSet.roles.hidden!;
  assert.equal(h.id, 'mine.hidden');
  assert.match(h.doc, /^Hidden weight, sparsified.*\[mine sets sgdLr\]$/);
  assert.equal(ev(h.sgdLr), 4);
  assert.equal(ev(h.adamLr), 4); // inherited from supar
  assert.equal(ruleSet.roles.readout!.id, 'mine.zero_readout');
  assert.equal(ev(ruleSet.roles.readout!.initStd), 0);
  assert.equal(ruleSet.roles.embedding!.id, 'supar.embedding');
  assert.equal(ruleSet.attentionScale, '1/d_head');
  assert.deepEqual(overrides, [{ match: '**.c_proj.weight', role: 'hidden' }, { match: 'lm_head.weight', role: 'readout' }]);
  assert.deepEqual(densityMap, [{ match: 'h.0.**', density: 0.25 }, { match: 'h.*.attn.**', density: 0.5 }]);
});

async function loadError(body: unknown, name = 'my.json'): Promise<UserInputError> {
  const dir = tempDir();
  const file = writeRules(dir, name, body);
  try {
    await loadRules(file);
  } catch (e) {
    assert.ok(e instanceof UserInputError, String(e));
    assert.ok(!e.message.includes('\n'), e.message);
    return e;
  }
  assert.fail(`no error for ${JSON.stringify(body)}`);
}

test('malformed rule files fail with file, JSON path and what is wrong', async () => {
  const cases: [unknown, RegExp][] = [
    [{ extends: 'supar', roles: { hidden: { initStd: 'sigma_base/sqrt(m_dd)' } } },
      /my\.json: roles\.hidden\.initStd: unknown variable 'm_dd' at column 17 in 'sigma_base\/sqrt\(m_dd\)' \(known: m_d, m_rho/],
    [{ extends: 'supar', roles: { hidden: { adamLr: '1/(m_d*' } } }, /my\.json: roles\.hidden\.adamLr: expected a number, variable, function or '\(' but found 'end of expression' at column 8/],
    [{ extends: 'supar', roles: { hiden: { adamLr: '1' } } }, /my\.json: roles\.hiden: unknown role 'hiden' \(known: embedding, position_embedding, hidden/],
    [{ extends: 'supar', overrides: [{ match: 'a.*', role: 'head' }] }, /my\.json: overrides\[0\]\.role: unknown role 'head'/],
    [{ extends: 'supar', overrides: [{ match: 'a.*' }] }, /my\.json: overrides\[0\]: missing required field 'role'/],
    [{ extends: 'supar', roles: { hidden: { sparsify: 'yes' } } }, /my\.json: roles\.hidden\.sparsify: expected true or false, got string "yes"/],
    [{ extends: 'supar', roles: { hidden: { adamLr: 0.5 } } }, /my\.json: roles\.hidden\.adamLr: expected a formula string, got number 0\.5/],
    [{ extends: 'supar', roles: { hidden: { initstd: '1' } } }, /my\.json: roles\.hidden\.initstd: unknown key 'initstd' \(did you mean 'initStd'\?\)/],
    [{ extends: 'supar', roles: [] }, /my\.json: roles: expected an object, got an array/],
    [{ extends: 'supar', density: { 'h.*': 1.5 } }, /my\.json: density\["h\.\*"\]: density 1\.5 is outside \(0, 1\]/],
    [{ extends: 'supar', density: { 'h.[0-': 0.5 } }, /my\.json: density\["h\.\[0-"\]: glob 'h\.\[0-': '\[' at position 2 has no closing '\]'/],
    [{ extends: 'supar', colour: 'red' }, /my\.json: colour: unknown key 'colour' \(known: id, doc, extends/],
    [{ id: 'x', attentionScale: '1', embeddingMultiplier: '1', outputMultiplier: '1', roles: { hidden: { adamLr: '1', sgdLr: '1', weightDecay: '1' } } },
      /my\.json: roles\.hidden: missing required field 'sparsify'/],
    [{ id: 'x', roles: { hidden: { adamLr: '1', sgdLr: '1', weightDecay: '1', sparsify: true } } }, /my\.json: missing required field 'attentionScale'/],
    [{ extends: 'nosuch' }, /unknown rules 'nosuch': give one of sp, mup, supar/],
    [{ extends: './missing.json' }, /rules file '\.\/missing\.json' not found/],
    [{ extends: './my.json' }, /'extends' forms a cycle/],
    ['{\n  "extends": "supar",\n  "roles": {,}\n}', /my\.json:3:13: not valid JSON: /],
    [[1, 2], /my\.json: expected an object, got an array/],
  ];
  for (const [body, re] of cases) assert.match((await loadError(body)).message, re);
});

test('unknown rule names are usage errors; a missing path is a file error', async () => {
  await assert.rejects(loadRules('supr'), (e: unknown) => e instanceof UsageError && /unknown rules 'supr'/.test(e.message));
  await assert.rejects(loadRules('nope/rules.json'), (e: unknown) => e instanceof UserInputError && !(e instanceof UsageError) && /not found/.test(e.message));
});

// ---- TypeScript rule files: read statically, type-checked, never executed ----

const TS_HEADER = "import type { RuleFile } from 'supar-transform/rules';\n";

test('TS rule file: default export with satisfies, arithmetic, template strings, as const', async () => {
  const dir = tempDir();
  const file = writeRules(dir, 'mine.ts', `${TS_HEADER}
export default {
  extends: 'supar',
  id: \`mine\`,
  roles: { hidden: { sgdLr: \`1/m_rho\`, sparsify: true }, readout: { initStd: '0' } },
  overrides: [{ match: 'lm_head.weight', role: 'readout' as const }],
  density: { 'h.0.**': 1 / 4, 'h.1.**': -(-0.5) },
} satisfies RuleFile;
`);
  const { ruleSet, densityMap, overrides } = await loadRules(file);
  assert.equal(ruleSet.id, 'mine');
  assert.equal(ev(ruleSet.roles.hidden!.sgdLr), 8);
  assert.equal(ruleSet.roles.hidden!.adamLr, '1/(m_d*m_rho)');
  assert.deepEqual(densityMap, [{ match: 'h.0.**', density: 0.25 }, { match: 'h.1.**', density: 0.5 }]);
  assert.deepEqual(overrides, [{ match: 'lm_head.weight', role: 'readout' }]);
  const other = writeRules(dir, 'other.ts', "export const rules = { extends: 'mup', roles: { hidden: { adamLr: '2/m_d' } } };\n");
  assert.equal(ev((await loadRules(other)).ruleSet.roles.hidden!.adamLr), 1);
});

test('TS rule file with top-level side effects is never executed', async () => {
  const dir = tempDir();
  const marker = path.join(dir, 'EXECUTED');
  const file = writeRules(dir, 'evil.mts', `${TS_HEADER}
const specifier = 'node:fs';
const fs = await import(specifier);
fs.writeFileSync(${JSON.stringify(marker)}, 'the rule file ran');
export default { extends: 'supar', roles: { hidden: { adamLr: '1/m_d' } } } satisfies RuleFile;
`);
  const { ruleSet } = await loadRules(file);
  assert.equal(ruleSet.roles.hidden!.adamLr, '1/m_d');
  assert.equal(fs.existsSync(marker), false, 'loading the rule file executed it');
  // Control: running the same file does create the marker, so the check above can fail.
  const { execFileSync } = await import('node:child_process');
  execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, stdio: 'ignore' });
  assert.equal(fs.existsSync(marker), true);
});

test('TS rule files: non-literal code, type errors and schema errors are located at file:line:col', async () => {
  const cases: [string, RegExp][] = [
    [`${TS_HEADER}export default { extends: 'supar', roles: { hidden: { adamLr: String(1) } } } satisfies RuleFile;\n`,
      /my\.ts:2:63: call expression 'String\(1\)': only literals, arrays, objects/],
    [`${TS_HEADER}const base = { adamLr: '1' };\nexport default { extends: 'supar', roles: { hidden: { ...base } } };\n`,
      /my\.ts:3:55: spread assignment '\.\.\.base': only literals/],
    [`${TS_HEADER}const lr = '1';\nexport default { extends: 'supar', roles: { hidden: { adamLr: lr } } };\n`,
      /my\.ts:3:63: identifier 'lr': only literals/],
    [`${TS_HEADER}export default { extends: 'supar', density: { [\`h\${1}\`]: 0.5 } };\n`, /my\.ts:2:47: computed key/],
    [`${TS_HEADER}export default {\n  extends: 'supar',\n  roles: { hidden: { sparsify: 'yes' } },\n} satisfies RuleFile;\n`,
      /my\.ts:4:22: type error TS2322: Type 'string' is not assignable to type 'boolean \| undefined'/],
    [`export default {\n  extends: 'supar',\n  roles: { hiden: { adamLr: '1' } },\n};\n`, /my\.ts:3:12: roles\.hiden: unknown role 'hiden'/],
    [`export default {\n  extends: 'supar',\n  roles: { hidden: { adamLr: '1/m_dd' } },\n};\n`, /my\.ts:3:22: roles\.hidden\.adamLr: unknown variable 'm_dd' at column 3/],
    [`export const other = {};\n`, /my\.ts:1:1: no rule object/],
  ];
  for (const [body, re] of cases) assert.match((await loadError(body, 'my.ts')).message, re);
});

test('rules/rule-file.d.ts lists the same roles, variables and keys as the code', async () => {
  const { ROLES } = await import('../src/analysis/types.js');
  const { EXPR_VARIABLES } = await import('../src/rules/types.js');
  const { RULE_FILE_SCHEMA } = await import('../src/rules/schema.js');
  const dts = fs.readFileSync(path.join(ROOT, 'rules', 'rule-file.d.ts'), 'utf8');
  const union = (name: string) => [...new RegExp(`export type ${name} =([^;]*);`).exec(dts)![1]!.matchAll(/'([A-Za-z_]+)'/g)].map((m) => m[1]);
  assert.deepEqual(union('RoleName'), [...ROLES]);
  assert.deepEqual(union('ExprVariable'), [...EXPR_VARIABLES]);
  const body = /export interface RuleFile \{([\s\S]*?)\n\}/.exec(dts)![1]!;
  const keys = [...body.matchAll(/^\s+([$A-Za-z]+)\?:/gm)].map((m) => m[1]);
  assert.deepEqual(keys, Object.keys((RULE_FILE_SCHEMA as { properties: object }).properties));
});
