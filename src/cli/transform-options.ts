/**
 * Command-line flags of `transform` (and `inspect --density`) → TransformOptions. Every bad value becomes a
 * one-line UsageError naming the flag; files named by flags (--hparams, --density-map) are read here.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { ExitCode, UsageError, UserInputError } from '../errors.js';
import { ROLES, type Role } from '../analysis/types.js';
import { readModel } from '../onnx/codec.js';
import { INIT_MODES, MASK_MODES, type DensityEntry, type InitMode, type MaskMode } from '../plan.js';
import type { Hyperparameters } from '../rules/types.js';
import type { TransformOptions } from '../transform.js';
import { DEFAULT_MASK_STORAGE, MASK_STORAGES, type MaskStorage } from '../passes/mask-storage.js';

export interface TransformFlags {
  density?: string; rules?: string; widthMult?: string; baseWidth?: string; baseModel?: string; baseDepth?: string;
  sigmaBase?: string; lr?: string; alphaInput?: string; alphaOutput?: string; hparams?: string;
  seed?: string; mask?: string; maskStorage?: string; nm?: string; sparsify?: string[]; dense?: string[]; densityMap?: string;
  role?: string[]; init?: string; truncated?: boolean; depthFactor?: string | boolean; strict?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** Adds the flags shared by `transform` and `inspect --density`. */
export function addTransformFlags(cmd: Command): Command {
  return cmd
    .option('--density <rho>', 'density ρ of the sparsified weights, in (0, 1] (default 1: dense)')
    .option('--rules <name|file>', 'rule set: sp, mup, supar (default), completep, depth-mup, supar-completep, supar-init-only, supar-lr-only, umup, or a rule file (JSON or TypeScript, read statically)')
    .option('--width-mult <m_d>', 'width multiplier m_d = d_model / d_model_base (default 1)')
    .option('--base-width <n>', 'base width: m_d = detected d_model / n')
    .option('--base-model <file>', 'base (proxy) model: m_d from comparing shapes tensor by tensor, and its depth as the base depth')
    .option('--base-depth <n>', 'base depth L_base (blocks): m_L = n_layers / n (depth rules: completep, depth-mup; default m_L 1)')
    .option('--sigma-base <x>', 'σ_base, the proxy\'s init std (default 0.02)')
    .option('--lr <x>', 'η_base, the proxy\'s learning rate (recorded in the outputs; default 0.001)')
    .option('--alpha-input <x>', 'α_input, the embedding multiplier (default 1)')
    .option('--alpha-output <x>', 'α_output, the output-logit multiplier (default 1)')
    .option('--hparams <file.json>', 'hyperparameters {sigma_base, eta_base, alpha_input, alpha_output}; flags win')
    .option('--seed <n>', 'seed of masks and initializers (default 0)')
    .option('--mask <mode>', `mask pattern: ${MASK_MODES.join(', ')} (default per-tensor: exactly round(ρ·n) non-zeros)`)
    .option('--mask-storage <form>', `how masks are stored: ${MASK_STORAGES.join(', ')} (default ${DEFAULT_MASK_STORAGE}; bits: 8 entries per byte, unpacked in the graph)`)
    .option('--nm <N:M>', 'N:M pattern, e.g. 2:4 (implies --mask n:m and density N/M)')
    .option('--sparsify <globs>', 'also sparsify tensors matching these globs (comma-separated, repeatable)', collect)
    .option('--dense <globs>', 'keep tensors matching these globs dense (comma-separated, repeatable)', collect)
    .option('--density-map <file.json>', 'per-tensor density by glob: {"glob": density, ...}; first match wins')
    .option('--role <glob=role>', `override a role by glob (repeatable); roles: ${ROLES.join(', ')}`, (v: string, p: string[] = []) => [...p, v])
    .option('--init <mode>', `initializers: ${INIT_MODES.join(', ')} (default resample)`)
    .option('--truncated', 'resample from a truncated normal (±2σ) with the same std')
    .option('--depth-factor [formula]', 'scale residual output projections\' std (default formula 1/sqrt(2*n_layers))')
    .option('--strict', 'fail when a tensor cannot be classified');
}

export function parseNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`${flag} '${v}': not a number`);
  return x;
}

function parseNm(v: string): { n: number; m: number } {
  const m = /^(\d+):(\d+)$/.exec(v.trim());
  if (!m) throw new UsageError(`--nm '${v}': expected N:M with whole numbers, e.g. 2:4`);
  const nm = { n: Number(m[1]), m: Number(m[2]) };
  if (nm.n < 1 || nm.n > nm.m) throw new UsageError(`--nm '${v}': need 1 <= N <= M`);
  return nm;
}

function readJson(flag: string, file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserInputError(`${flag} ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the path`, ExitCode.io);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserInputError(`${flag} ${file}: not valid JSON (${(e as Error).message})`);
  }
}

const HP_KEYS = ['sigma_base', 'eta_base', 'alpha_input', 'alpha_output'] as const;

function readHparams(file: string): Partial<Hyperparameters> {
  const j = readJson('--hparams', file);
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new UserInputError(`--hparams ${file}: expected an object like {"sigma_base": 0.02}`);
  const out: Partial<Hyperparameters> = {};
  for (const [k, v] of Object.entries(j)) {
    if (!(HP_KEYS as readonly string[]).includes(k)) throw new UserInputError(`--hparams ${file}: unknown key '${k}' (known: ${HP_KEYS.join(', ')})`);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserInputError(`--hparams ${file}: '${k}' must be a number`);
    out[k as keyof Hyperparameters] = v;
  }
  return out;
}

function readDensityMap(file: string): DensityEntry[] {
  const j = readJson('--density-map', file);
  const entries: [string, unknown][] = Array.isArray(j)
    ? j.map((e: { pattern?: string; glob?: string; density?: unknown }) => [String(e.pattern ?? e.glob), e.density])
    : typeof j === 'object' && j !== null ? Object.entries(j) : [];
  if (entries.length === 0) throw new UserInputError(`--density-map ${file}: expected {"glob": density, ...} with at least one entry`);
  return entries.map(([pattern, d]) => {
    if (typeof d !== 'number' || !(d > 0 && d <= 1)) throw new UserInputError(`--density-map ${file}: '${pattern}' has density ${JSON.stringify(d)}; must be a number in (0, 1]`);
    return { pattern, density: d };
  });
}

function parseRoles(list: string[] | undefined): { pattern: string; role: Role }[] {
  return (list ?? []).map((v) => {
    const i = v.lastIndexOf('=');
    const role = v.slice(i + 1) as Role;
    if (i <= 0 || !ROLES.includes(role)) throw new UsageError(`--role '${v}': expected GLOB=ROLE with ROLE one of ${ROLES.join(', ')}`);
    return { pattern: v.slice(0, i), role };
  });
}

export function toTransformOptions(f: TransformFlags): TransformOptions {
  let mask = f.mask as MaskMode | undefined;
  if (mask !== undefined && !MASK_MODES.includes(mask)) throw new UsageError(`--mask '${f.mask}': unknown mode; use one of ${MASK_MODES.join(', ')}`);
  const nm = f.nm !== undefined ? parseNm(f.nm) : undefined;
  const maskStorage = f.maskStorage as MaskStorage | undefined;
  if (maskStorage !== undefined && !MASK_STORAGES.includes(maskStorage)) throw new UsageError(`--mask-storage '${f.maskStorage}': unknown form; use one of ${MASK_STORAGES.join(', ')}`);
  if (nm && mask === undefined) mask = 'n:m';
  if (mask === 'n:m' && !nm) throw new UsageError('--mask n:m: give the pattern with --nm N:M, e.g. --nm 2:4');
  if (nm && mask !== 'n:m') throw new UsageError(`--nm ${f.nm}: only with --mask n:m`);
  let density = parseNumber('--density', f.density);
  if (density !== undefined && !(density > 0 && density <= 1)) throw new UsageError(`--density ${f.density}: must be in (0, 1], e.g. 0.125`);
  if (nm) {
    if (density !== undefined && Math.abs(density - nm.n / nm.m) > 1e-12) throw new UsageError(`--density ${f.density} contradicts --nm ${f.nm} (density ${nm.n / nm.m}); drop one`);
    density = nm.n / nm.m;
  }
  const init = f.init as InitMode | undefined;
  if (init !== undefined && !INIT_MODES.includes(init)) throw new UsageError(`--init '${f.init}': use one of ${INIT_MODES.join(', ')}`);
  const widthMult = parseNumber('--width-mult', f.widthMult);
  if (widthMult !== undefined && !(widthMult > 0)) throw new UsageError(`--width-mult ${f.widthMult}: must be > 0`);
  const baseWidth = parseNumber('--base-width', f.baseWidth);
  if (baseWidth !== undefined && !(baseWidth > 0)) throw new UsageError(`--base-width ${f.baseWidth}: must be > 0`);
  const baseDepth = parseNumber('--base-depth', f.baseDepth);
  if (baseDepth !== undefined && !(Number.isInteger(baseDepth) && baseDepth >= 1)) throw new UsageError(`--base-depth ${f.baseDepth}: must be a whole number of blocks >= 1`);
  const seed = parseNumber('--seed', f.seed);
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0)) throw new UsageError(`--seed ${f.seed}: must be a whole number >= 0`);
  if (f.rules !== undefined && f.rules.trim() === '') throw new UsageError('--rules: empty; use sp, mup, supar or a rule file');
  const fromFile = f.hparams ? readHparams(f.hparams) : {};
  const hyperparameters: Partial<Hyperparameters> = {
    ...fromFile,
    ...defined({
      sigma_base: parseNumber('--sigma-base', f.sigmaBase), eta_base: parseNumber('--lr', f.lr),
      alpha_input: parseNumber('--alpha-input', f.alphaInput), alpha_output: parseNumber('--alpha-output', f.alphaOutput),
    }),
  };
  if (hyperparameters.sigma_base !== undefined && !(hyperparameters.sigma_base >= 0)) throw new UsageError(`--sigma-base ${hyperparameters.sigma_base}: must be >= 0`);
  return {
    density, rules: f.rules, widthMult, baseWidth, baseDepth, baseModel: f.baseModel ? readModel(f.baseModel) : undefined,
    hyperparameters, seed, mask, maskStorage, nm, sparsify: f.sparsify, dense: f.dense,
    densityMap: f.densityMap ? readDensityMap(f.densityMap) : undefined, roles: parseRoles(f.role),
    init, truncated: f.truncated, depthFactor: f.depthFactor, strict: f.strict,
  };
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
