/**
 * Rule files are untrusted input (issue 12): a formula whose value makes no sense for what it sets is refused
 * before anything is written, naming the file, rule, tensor, formula, value and variables; `extends` reaches only
 * built-ins and files in the extending file's folder or below; messages never quote another file's contents;
 * prototype keys are unknown keys. Every message is checked in full.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readModel } from '../src/onnx/codec.js';
import { transform } from '../src/transform.js';
import { BUILTIN_RULES, loadRules } from '../src/rules/load.js';
import { compileExpr } from '../src/rules/expr.js';
import { UserInputError } from '../src/errors.js';
import { tempDir } from './helpers.js';
import { runCli } from './cli-helpers.js';
import { GPT_TINY } from './transform-helpers.js';

const HIDDEN = "tensor 'transformer.h.0.attn.c_attn.weight'";

/** Writes `files` (name → JSON value or raw text) into a fresh folder and returns it. */
function ruleDir(files: Record<string, unknown>): string {
  const dir = tempDir('supar-rules-');
  for (const [name, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), typeof body === 'string' ? body : JSON.stringify(body));
  }
  return dir;
}

/** The message transform() refuses `rules` with (in-memory: nothing is written anyway). */
async function refusal(rules: unknown, options: { depthFactor?: boolean } = {}): Promise<string> {
  const file = path.join(ruleDir({ 'r.json': rules }), 'r.json');
  const err = await transform(readModel(GPT_TINY), { rules: file, density: 0.125, ...options }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof UserInputError, `expected a UserInputError, got ${String(err)}`);
  assert.equal(err.exitCode, 3);
  return err.message.replace(`${file}: `, 'r.json: ');
}

const hidden = (fields: Record<string, string>) => ({ extends: 'supar', roles: { hidden: fields } });

test('rule values: an init std that underflows, is negative or NaN is refused with its formula, value and variables', async () => {
  assert.equal(await refusal(hidden({ initStd: 'sigma_base^999999' })),
    `r.json: roles.hidden.initStd (rule r.hidden, ${HIDDEN}): 'sigma_base^999999' = 0 with sigma_base=0.02; an init std must be finite and > 0: fix the formula or the hyperparameters`);
  assert.equal(await refusal(hidden({ initStd: '-sigma_base/sqrt(m_d*m_rho)' })),
    `r.json: roles.hidden.initStd (rule r.hidden, ${HIDDEN}): '-sigma_base/sqrt(m_d*m_rho)' = -0.056568542494923796 with m_d=1, m_rho=0.125, sigma_base=0.02; an init std must be finite and > 0: fix the formula or the hyperparameters`);
  assert.equal(await refusal(hidden({ initStd: 'log(-1)' })),
    `r.json: roles.hidden.initStd (rule r.hidden, ${HIDDEN}): 'log(-1)' = NaN; an init std must be finite and > 0: fix the formula or the hyperparameters`);
  assert.equal(await refusal(hidden({ initStd: '0' })),
    `r.json: roles.hidden.initStd (rule r.hidden, ${HIDDEN}): '0' = 0; an init std must be finite and > 0: fix the formula or the hyperparameters`);
});

test('rule values: LR and weight-decay multipliers must be finite and >= 0; 0 (frozen, no decay) is accepted', async () => {
  assert.equal(await refusal(hidden({ adamLr: '1/(m_d*m_rho-1/8)' })),
    `r.json: roles.hidden.adamLr (rule r.hidden, ${HIDDEN}): '1/(m_d*m_rho-1/8)' = Infinity with m_d=1, m_rho=0.125; an LR multiplier must be finite and >= 0 (0 freezes the tensor): fix the formula or the hyperparameters`);
  assert.equal(await refusal(hidden({ sgdLr: '-1/m_rho' })),
    `r.json: roles.hidden.sgdLr (rule r.hidden, ${HIDDEN}): '-1/m_rho' = -8 with m_rho=0.125; an LR multiplier must be finite and >= 0 (0 freezes the tensor): fix the formula or the hyperparameters`);
  assert.equal(await refusal(hidden({ weightDecay: 'sqrt(-fan_in)' })),
    `r.json: roles.hidden.weightDecay (rule r.hidden, ${HIDDEN}): 'sqrt(-fan_in)' = NaN with fan_in=64; a weight-decay multiplier must be finite and >= 0 (0: no decay): fix the formula or the hyperparameters`);
  const file = path.join(ruleDir({ 'z.json': hidden({ adamLr: '0', sgdLr: '0', weightDecay: '0' }) }), 'z.json');
  const r = await transform(readModel(GPT_TINY), { rules: file, density: 0.125 });
  const h = r.plan.params.filter((p) => p.role === 'hidden');
  assert.ok(h.length > 0 && h.every((p) => p.lrAdam === 0 && p.lrSgd === 0 && p.weightDecay === 0));
});

test('rule values: an Adam ε multiplier must be finite and > 0', async () => {
  assert.equal(await refusal(hidden({ adamEps: '1/m_d - 1' })),
    `r.json: roles.hidden.adamEps (rule r.hidden, ${HIDDEN}): '1/m_d - 1' = 0 with m_d=1; an Adam ε multiplier must be finite and > 0 (ε guards a division): fix the formula or the hyperparameters`);
});

test('rule values: multipliers and the attention scale must be finite and non-zero; a depth factor > 0', async () => {
  assert.equal(await refusal({ extends: 'supar', outputMultiplier: 'alpha_output*0' }),
    "r.json: outputMultiplier (rule r, the logits): 'alpha_output*0' = 0 with alpha_output=1; a multiplier must be finite and non-zero: fix the formula or the hyperparameters");
  assert.equal(await refusal({ extends: 'supar', embeddingMultiplier: 'exp(alpha_input*1000)' }),
    "r.json: embeddingMultiplier (rule r, the embeddings' output): 'exp(alpha_input*1000)' = Infinity with alpha_input=1; a multiplier must be finite and non-zero: fix the formula or the hyperparameters");
  assert.match(await refusal({ extends: 'supar', attentionScale: '1/d_head - 1/d_head' }),
    /^r\.json: attentionScale \(rule r, attention at [^)]+\): '1\/d_head - 1\/d_head' = 0 with d_head=\d+; a multiplier must be finite and non-zero: fix the formula or the hyperparameters$/);
  assert.equal(await refusal({ extends: 'supar', residualBranchMultiplier: 'm_L^(-alpha_depth) - 1' }),
    "r.json: residualBranchMultiplier (rule r, every residual branch): 'm_L^(-alpha_depth) - 1' = 0 with alpha_depth=0, m_L=1; a multiplier must be finite and non-zero: fix the formula or the hyperparameters");
  assert.equal(await refusal({ extends: 'supar', depthFactor: '1 - 1/n_layers^0' }, { depthFactor: true }),
    "r.json: depthFactor (rule r, tensor 'transformer.h.0.attn.c_proj.weight'): '1 - 1/n_layers^0' = 0 with n_layers=2; a depth factor (it scales an init std) must be finite and > 0: fix the formula or the hyperparameters");
});

test('rule values: a readout may be zero-initialised with the constant 0, not with a formula that comes out 0', async () => {
  const file = path.join(ruleDir({ 'z.json': { extends: 'supar', roles: { readout: { initStd: '0' } } } }), 'z.json');
  const r = await transform(readModel(GPT_TINY), { rules: file, density: 0.125 });
  const readout = r.plan.params.filter((p) => p.role === 'readout' && p.trainable);
  assert.ok(readout.length > 0 && readout.every((p) => p.initStd === 0), JSON.stringify(readout.map((p) => [p.name, p.initStd])));
  assert.match(await refusal({ extends: 'supar', roles: { readout: { initStd: 'sigma_base*0' } } }),
    /^r\.json: roles\.readout\.initStd \(rule r\.readout, tensor '[^']+'\): 'sigma_base\*0' = 0 with sigma_base=0\.02; an init std must be finite and > 0: fix the formula or the hyperparameters$/);
});

test('rule values: densities outside (0, 1] are refused at load', async () => {
  for (const [density, shown] of [[0, '0'], [1.5, '1.5'], [-0.25, '-0.25']] as const) {
    const dir = ruleDir({ 'd.json': { extends: 'supar', density: { 'h.0.**': density } } });
    await assert.rejects(loadRules(path.join(dir, 'd.json')), { message: `${path.join(dir, 'd.json')}: density["h.0.**"]: density ${shown} is outside (0, 1]` });
  }
});

test('rule values: the CLI exits 3 with one line and writes nothing', async () => {
  const dir = ruleDir({ 'evil.json': hidden({ initStd: 'sigma_base^999999' }) });
  fs.copyFileSync(GPT_TINY, path.join(dir, 'gpt.onnx'));
  const before = fs.readdirSync(dir).sort();
  const r = await runCli(['gpt.onnx', '--rules', 'evil.json', '--density', '0.125'], { cwd: dir });
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stderr, `error: evil.json: roles.hidden.initStd (rule evil.hidden, ${HIDDEN}): 'sigma_base^999999' = 0 with sigma_base=0.02; an init std must be finite and > 0: fix the formula or the hyperparameters\n`);
  assert.deepEqual(fs.readdirSync(dir).sort(), before, 'nothing written');
});

/** The message loadRules refuses `name` in `dir` with, the folder shown as '<dir>'. */
async function loadRefusal(dir: string, name: string): Promise<string> {
  const err = await loadRules(path.join(dir, name)).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof UserInputError, `expected a UserInputError, got ${String(err)}`);
  return err.message.split(dir).join('<dir>');
}

const REACH = `extends takes ${BUILTIN_RULES.join(', ')} or a .json or .ts rule file in this file's folder or below it`;

test('extends: built-ins and files in the folder or below; absolute paths, .. and other files are refused unread', async () => {
  const dir = ruleDir({
    'passwd.json': 'root:x:0:0:root:/root:/bin/bash\n',
    'team/house.json': { extends: 'supar', roles: { hidden: { sgdLr: '1' } } },
    'ok.json': { extends: 'team/house.json' },
    'abs.json': { extends: '/etc/passwd' },
    'up.json': { extends: '../../../../etc/passwd' },
    'team/up.json': { extends: '../ok.json' },
    'plain.json': { extends: 'passwd' },
    'leaks.json': { extends: 'passwd.json' },
  });
  const ok = await loadRules(path.join(dir, 'ok.json'));
  assert.equal(ok.ruleSet.roles.hidden!.sgdLr, '1');
  assert.equal(ok.ruleSet.origins!['roles.hidden.sgdLr'], path.join(dir, 'team', 'house.json'));
  assert.equal(ok.ruleSet.origins!['roles.hidden.adamLr'], 'rules/supar.json');
  assert.equal(await loadRefusal(dir, 'abs.json'), `<dir>/abs.json: extends '/etc/passwd': an absolute path; ${REACH} (e.g. "extends": "base.json")`);
  assert.equal(await loadRefusal(dir, 'up.json'), `<dir>/up.json: extends '../../../../etc/passwd': leaves the folder of <dir>/up.json; ${REACH}`);
  assert.equal(await loadRefusal(dir, 'team/up.json'), `<dir>/team/up.json: extends '../ok.json': leaves the folder of <dir>/team/up.json; ${REACH}`);
  assert.equal(await loadRefusal(dir, 'plain.json'), `<dir>/plain.json: extends 'passwd': not a built-in id nor a .json or .ts file; ${REACH}`);
  // A file in the folder that is not JSON: the place and the character, never the text around it.
  const leak = await loadRefusal(dir, 'leaks.json');
  assert.equal(leak, "<dir>/passwd.json: not valid JSON: unexpected character 'r'");
  assert.doesNotMatch(leak, /root:x/);
});

test('extends: a link out of the folder is refused; cycles and over-long chains name the chain', async () => {
  const outside = ruleDir({ 'base.json': { extends: 'supar' } });
  const dir = ruleDir({
    'link.json': { extends: 'base.json' },
    'a.json': { extends: 'b.json' }, 'b.json': { extends: 'c.json' }, 'c.json': { extends: 'a.json' },
    ...Object.fromEntries(Array.from({ length: 18 }, (_, i) => [`l${i}.json`, { extends: `l${i + 1}.json` }])),
    'l18.json': { extends: 'supar' },
  });
  fs.symlinkSync(path.join(outside, 'base.json'), path.join(dir, 'base.json'));
  assert.equal(await loadRefusal(dir, 'link.json'), `<dir>/link.json: extends 'base.json': a link that leads out of the folder of <dir>/link.json; ${REACH}`);
  assert.equal(await loadRefusal(dir, 'a.json'), "<dir>/a.json: 'extends' forms a cycle (<dir>/a.json -> <dir>/b.json -> <dir>/c.json -> <dir>/a.json); remove one link");
  const long = await loadRefusal(dir, 'l0.json');
  assert.match(long, /^<dir>\/l0\.json: 'extends' chain is more than 16 files deep \(<dir>\/l0\.json -> .* -> <dir>\/l16\.json\)$/);
  await loadRules(path.join(dir, 'l4.json')); // l4 … l18 and supar: 16 files
});

test('rule files: prototype keys are unknown keys, never the prototype; oversized files are refused unread', async () => {
  const dir = ruleDir({
    'proto.json': '{"extends": "supar", "__proto__": {"polluted": 1}}',
    'ctor.json': { extends: 'supar', roles: { hidden: { constructor: '1' } } },
    'tostr.json': { extends: 'supar', roles: { toString: { adamLr: '1' } } },
    'big.json': `{"doc": "${'x'.repeat(1 << 20)}"}`,
    'proto.ts': "export default { extends: 'supar', __proto__: { polluted: 1 } };\n",
  });
  assert.match(await loadRefusal(dir, 'proto.json'), /^<dir>\/proto\.json: __proto__: unknown key '__proto__' \(known: id, doc, extends, attentionScale, [a-zA-Z, ]+\)$/);
  assert.match(await loadRefusal(dir, 'ctor.json'), /^<dir>\/ctor\.json: roles\.hidden\.constructor: unknown key 'constructor' \(known: id, doc, initStd, adamLr, [a-zA-Z, ]+\)$/);
  assert.match(await loadRefusal(dir, 'tostr.json'), /^<dir>\/tostr\.json: roles\.toString: unknown role 'toString' \(known: /);
  assert.equal(await loadRefusal(dir, 'big.json'), `<dir>/big.json: ${(1 << 20) + 11} bytes; a rule file is at most 1048576 bytes`);
  assert.match(await loadRefusal(dir, 'proto.ts'), /^<dir>\/proto\.ts:\d+:\d+: __proto__: unknown key '__proto__' \(known: /);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('formulas: nesting, length, prototype names and control characters give one-line messages', () => {
  const msg = (src: string) => { try { compileExpr(src, 'f'); return 'compiled'; } catch (e) { return (e as Error).message; } };
  assert.equal(msg(`${'('.repeat(65)}1${')'.repeat(65)}`), `f: nested more than 64 levels deep at column 65 in '${'('.repeat(65)}1${')'.repeat(54)}…'`);
  assert.equal(msg('1+'.repeat(600) + '1'), `f: formula of 1201 characters is longer than 1000: '${'1+'.repeat(20)}…'`);
  assert.equal(msg('constructor(1)'), "f: unknown function 'constructor' at column 1 in 'constructor(1)' (known: sqrt, exp, log, abs, min, max)");
  assert.equal(msg('1\n+ 2'), "f: unexpected character '\\n' at column 2 in '1\\n+ 2'");
  assert.equal(msg('m_d\u2028'), "f: unexpected character '\\u2028' at column 4 in 'm_d\\u2028'");
  assert.equal(msg(`${'('.repeat(64)}1${')'.repeat(64)}`), 'compiled');
});
