/**
 * The transform command: both `supar-transform m.onnx …` (default command) and `supar-transform transform
 * m.onnx …` work; --json and --dry-run; bad flags give one line naming the flag (or tensor), the documented
 * exit code, and write nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../src/cli/main.js';
import { ExitCode } from '../src/errors.js';
import { runCli } from './cli-helpers.js';
import { tempDir } from './helpers.js';
import { GPT_TINY } from './transform-helpers.js';

/**
 * Runs the CLI in-process for cases that print nothing on stdout (errors): only stderr is captured, since the
 * test runner reports on stdout.
 */
async function cliError(args: string[]): Promise<{ code: number; stderr: string }> {
  const err: string[] = [];
  const ew = process.stderr.write;
  process.stderr.write = ((s: string) => { err.push(String(s)); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stderr: err.join('') };
  } finally {
    process.stderr.write = ew;
    process.exitCode = undefined;
  }
}

function freshCopy(): { dir: string; model: string } {
  const dir = tempDir();
  const model = path.join(dir, 'gpt.onnx');
  fs.copyFileSync(GPT_TINY, model);
  return { dir, model };
}

test('default command: `supar-transform m.onnx --density 0.125` writes the three outputs beside the input', async () => {
  const { dir, model } = freshCopy();
  const r = await runCli([model, '--density', '0.125']);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['gpt.supar.onnx', 'gpt.supar.lr.json', 'gpt.supar.report.json']) assert.ok(fs.existsSync(path.join(dir, f)), f);
  assert.match(r.stdout, /transformer\.h\.0\.attn\.c_attn\.weight\s+hidden\s+\[64×192\]\s+0\.125\s+1536/);
  const lr = JSON.parse(fs.readFileSync(path.join(dir, 'gpt.supar.lr.json'), 'utf8'));
  assert.equal(lr.format, 'supar-lr-groups/1');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('`transform` subcommand with --json --dry-run prints the result and writes nothing', async () => {
  const { dir, model } = freshCopy();
  const r = await runCli(['transform', model, '--density', '0.25', '--rules', 'mup', '--json', '--dry-run', '--seed', '3']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.files, null);
  assert.equal(j.report.settings.rules, 'mup');
  assert.equal(j.report.settings.seed, 3);
  assert.equal(j.report.summary.masked, 8);
  assert.deepEqual(fs.readdirSync(dir), ['gpt.onnx']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('-o, --mask n:m with --nm 2:4, --hparams and --width-mult reach the outputs', async () => {
  const { dir, model } = freshCopy();
  const hp = path.join(dir, 'hp.json');
  fs.writeFileSync(hp, JSON.stringify({ sigma_base: 0.08, alpha_output: 2 }));
  const out = path.join(dir, 'out', 'm.supar.onnx');
  fs.mkdirSync(path.dirname(out));
  const r = await runCli([model, '--nm', '2:4', '--hparams', hp, '--width-mult', '4', '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.report.settings.mask_mode, 'n:m 2:4');
  assert.equal(j.report.settings.density, 0.5);
  assert.equal(j.report.multipliers.find((m: { kind: string }) => m.kind === 'output').multiplier, 0.5);
  const hidden = j.report.tensors.find((t: { role: string }) => t.role === 'hidden');
  assert.equal(hidden.init.target_std, Number((0.08 / Math.sqrt(4 * 0.5)).toPrecision(12)));
  assert.ok(fs.existsSync(path.join(dir, 'out', 'm.supar.report.json')));
  fs.rmSync(dir, { recursive: true, force: true });
});

const BAD: { args: string[]; code: number; says: RegExp }[] = [
  { args: ['--density', '0'], code: ExitCode.usage, says: /--density 0/ },
  { args: ['--density', '1.5'], code: ExitCode.usage, says: /--density 1\.5/ },
  { args: ['--density', 'abc'], code: ExitCode.usage, says: /--density 'abc'/ },
  { args: ['--rules', 'nosuch'], code: ExitCode.usage, says: /unknown rules 'nosuch'/ },
  { args: ['--nm', '3:5'], code: ExitCode.usage, says: /--nm 3:5: tensor 'transformer\.h\.0\.attn\.c_attn\.weight' has fan-in 64/ },
  { args: ['--width-mult', '0'], code: ExitCode.usage, says: /--width-mult 0/ },
  { args: ['--mask', 'random'], code: ExitCode.usage, says: /--mask 'random'/ },
  { args: ['--mask-storage', 'nibbles'], code: ExitCode.usage, says: /--mask-storage 'nibbles': unknown form; use one of bool, bits/ },
  { args: ['--init', 'zeros'], code: ExitCode.usage, says: /--init 'zeros'/ },
  { args: ['--role', 'lm_head*=head'], code: ExitCode.usage, says: /--role 'lm_head\*=head'/ },
  { args: ['-o', '/nonexistent-dir/x.onnx'], code: ExitCode.io, says: /-o \/nonexistent-dir\/x\.onnx: folder/ },
];

test('bad flags: one line naming the flag or tensor, its exit code, nothing written', async () => {
  for (const b of BAD) {
    const { dir, model } = freshCopy();
    const r = await cliError([model, ...(b.args.includes('--density') || b.args.includes('--nm') ? [] : ['--density', '0.5']), ...b.args]);
    assert.equal(r.code, b.code, `${b.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, b.says, b.args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `${b.args.join(' ')}: one line`);
    assert.deepEqual(fs.readdirSync(dir), ['gpt.onnx'], `${b.args.join(' ')}: nothing written`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses to overwrite the input (-o equal to the input path)', async () => {
  const { dir, model } = freshCopy();
  const before = fs.readFileSync(model);
  const r = await cliError([model, '--density', '0.5', '-o', model]);
  assert.equal(r.code, ExitCode.usage);
  assert.match(r.stderr, /would overwrite the input model/);
  assert.ok(fs.readFileSync(model).equals(before));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('`inspect m.onnx --density 0.125` shows roles and planned rewrites and writes nothing', async () => {
  const { dir, model } = freshCopy();
  const r = await runCli(['inspect', model, '--density', '0.125']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /transformer\.h\.1\.mlp\.c_proj\.weight\s+hidden\s+\[256×64\]\s+0\.125\s+2048/);
  assert.match(r.stdout, /attention div-after-qk layer 0 \(d_head 16\): 0\.25 → 0\.0625/);
  assert.match(r.stdout, /transformer\.wte\.weight: embedding — .*Gather/);
  assert.match(r.stdout, /plan only: nothing written/);
  assert.deepEqual(fs.readdirSync(dir), ['gpt.onnx']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('--emit-train writes the train-step and eval graphs beside the model', async () => {
  const { dir, model } = freshCopy();
  const r = await runCli([model, '--density', '0.5', '--emit-train']);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['gpt.supar.train.onnx', 'gpt.supar.eval.onnx']) assert.ok(fs.existsSync(path.join(dir, f)), f);
  fs.rmSync(dir, { recursive: true, force: true });
});
