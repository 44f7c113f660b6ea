/**
 * Loading rule sets: a built-in id (sp, mup, supar: rules/<id>.json shipped with the package) or a user file
 * (.json, or .ts read statically by src/rules/ts-rules.ts, never executed). A file may `extends` a built-in or
 * another file (path relative to it); its fields replace the base's, role fields one by one; its overrides and
 * density globs come before the base's (first match wins).
 *
 * Rule files are untrusted input (they are shared): `extends` may only name a built-in id or a .json/.ts file in
 * the extending file's folder or below it (no absolute path, no `..` out of it, no symlink out of it), at most
 * MAX_EXTENDS_DEPTH files deep; a rule file is at most MAX_RULE_FILE_BYTES. Messages quote the rule text that is
 * wrong (the `extends` value, a key, a formula), never the contents of a file that is not a rule file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvariantError, UsageError, UserInputError } from '../errors.js';
import type { Role } from '../analysis/types.js';
import type { RoleRule, RuleSet } from './types.js';
import { shown } from './text.js';
import {
  childPath, placeOf, REQUIRED_ROLE_FIELDS, REQUIRED_SET_FIELDS, validateRuleFile,
  type RoleRuleData, type RuleFileData, type SourceLocator,
} from './schema.js';

export const BUILTIN_RULES = ['sp', 'mup', 'supar', 'completep', 'depth-mup', 'supar-completep', 'supar-init-only', 'supar-lr-only', 'umup'] as const;
/** Longest `extends` chain (files) accepted. */
export const MAX_EXTENDS_DEPTH = 16;
/** Largest rule file read (the built-in ones are about 4 kB). */
export const MAX_RULE_FILE_BYTES = 1 << 20;

export interface RoleOverride { match: string; role: Role }
export interface DensityRule { match: string; density: number }

export interface LoadedRules {
  ruleSet: RuleSet;
  /** "builtin:<id>" or the path as given. */
  source: string;
  /** Role overrides by glob, first match wins (the extending file's before its base's). */
  overrides: RoleOverride[];
  /** Per-tensor density by glob, first match wins. */
  densityMap: DensityRule[];
}

/**
 * The folder of built-in rule files. The module runs from src/rules/ (tsx, tests) or dist/src/rules/ (the built
 * package), so rules/ is two or three levels up; the first that holds supar.json wins.
 */
export function findBuiltinRulesDir(moduleUrl: string, exists: (p: string) => boolean = fs.existsSync): string | undefined {
  for (const rel of ['../../rules/', '../../../rules/']) {
    const dir = fileURLToPath(new URL(rel, moduleUrl));
    if (exists(path.join(dir, 'supar.json'))) return dir;
  }
  return undefined;
}

export function getBuiltinRulesDir(): string {
  const dir = findBuiltinRulesDir(import.meta.url);
  if (!dir) throw new InvariantError(`built-in rules not found two or three levels above ${fileURLToPath(import.meta.url)}; the package is incomplete, reinstall it`);
  return dir;
}

/** Loads the rule set named by `spec` (built-in id, or a path to a .json or .ts rule file). */
export async function loadRules(spec: string): Promise<LoadedRules> {
  const merged = await loadMerged(resolveSpec(spec, process.cwd()), []);
  return {
    ruleSet: finish(merged),
    source: merged.source,
    overrides: merged.overrides,
    densityMap: merged.densityMap,
  };
}

interface TrackedRole { rule: RoleRuleData; src: SourceLocator; path: string }

interface Merged {
  source: string;
  src: SourceLocator;
  data: RuleFileData;
  roles: Map<Role, TrackedRole>;
  overrides: RoleOverride[];
  densityMap: DensityRule[];
  /** JSON path of each formula → the file (and line:col) that wrote it. */
  origins: Map<string, string>;
}

interface Resolved { display: string; file: string; builtin: boolean }

/** The file an `extends` in `from` names; refused unless a built-in id or a rule file in from's folder or below. */
function resolveExtends(spec: string, from: Resolved): Resolved {
  if ((BUILTIN_RULES as readonly string[]).includes(spec)) return resolveSpec(spec, path.dirname(from.file));
  const at = `${from.display}: extends '${shown(spec)}'`;
  const rule = `extends takes ${BUILTIN_RULES.join(', ')} or a .json or .ts rule file in this file's folder or below it`;
  if (from.builtin) throw new InvariantError(`${at}: a built-in rule set extends a file`);
  if (path.isAbsolute(spec) || /^[A-Za-z]:/.test(spec)) throw new UserInputError(`${at}: an absolute path; ${rule} (e.g. "extends": "base.json")`);
  const dir = path.dirname(from.file);
  const file = path.resolve(dir, spec);
  const inside = (root: string, p: string) => { const rel = path.relative(root, p); return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel); };
  if (!inside(dir, file)) throw new UserInputError(`${at}: leaves the folder of ${from.display}; ${rule}`);
  if (!/\.(json|m?ts)$/i.test(spec)) throw new UserInputError(`${at}: not a built-in id nor a .json or .ts file; ${rule}`);
  if (!fs.existsSync(file)) throw new UserInputError(`${at}: no such file (looked at ${file})`);
  if (!inside(fs.realpathSync(dir), fs.realpathSync(file))) throw new UserInputError(`${at}: a link that leads out of the folder of ${from.display}; ${rule}`);
  return { display: path.join(path.dirname(from.display), spec), file, builtin: false };
}

function resolveSpec(spec: string, fromDir: string): Resolved {
  if ((BUILTIN_RULES as readonly string[]).includes(spec)) {
    const file = path.join(getBuiltinRulesDir(), `${spec}.json`);
    return { display: `builtin:${spec}`, file, builtin: true };
  }
  const file = path.resolve(fromDir, spec);
  const looksLikePath = /\.(json|ts|mts)$/i.test(spec) || spec.includes('/') || spec.includes(path.sep);
  if (!looksLikePath && !fs.existsSync(file)) {
    throw new UsageError(`unknown rules '${spec}': give one of ${BUILTIN_RULES.join(', ')} or a path to a .json or .ts rule file`);
  }
  if (!fs.existsSync(file)) throw new UserInputError(`rules file '${spec}' not found (looked at ${file})`);
  return { display: spec, file, builtin: false };
}

/** Loads `resolved` and what it extends; `chain` holds the files that extend it, outermost first. */
async function loadMerged(resolved: Resolved, chain: Resolved[]): Promise<Merged> {
  const names = () => [...chain, resolved].map((r) => r.display).join(' -> ');
  const real = resolved.builtin ? resolved.file : fs.realpathSync(resolved.file);
  if (chain.some((r) => (r.builtin ? r.file : fs.realpathSync(r.file)) === real)) {
    throw new UserInputError(`${chain[0]!.display}: 'extends' forms a cycle (${names()}); remove one link`);
  }
  if (chain.length >= MAX_EXTENDS_DEPTH) throw new UserInputError(`${chain[0]!.display}: 'extends' chain is more than ${MAX_EXTENDS_DEPTH} files deep (${names()})`);
  const { value, src } = await readRuleFile(resolved);
  const data = validateRuleFile(value, src);
  const own = ownParts(data, src);
  if (data.extends === undefined) return { source: resolved.display, src, data, ...own };
  const base = await loadMerged(resolveExtends(data.extends, resolved), [...chain, resolved]);
  return mergeOnto(base, { source: resolved.display, src, data, ...own });
}

async function readRuleFile(r: Resolved): Promise<{ value: unknown; src: SourceLocator }> {
  const display = r.builtin ? path.join('rules', path.basename(r.file)) : r.display;
  checkSize(r);
  if (/\.m?ts$/i.test(r.file)) {
    const { readTsRuleFile } = await import('./ts-rules.js');
    return readTsRuleFile(r.file, display);
  }
  const text = fs.readFileSync(r.file, 'utf8');
  return { value: parseJson(text, display), src: { file: display } };
}

function checkSize(r: Resolved): void {
  const stat = fs.statSync(r.file);
  if (!stat.isFile()) throw new UserInputError(`${r.display}: not a file`);
  if (stat.size > MAX_RULE_FILE_BYTES) throw new UserInputError(`${r.display}: ${stat.size} bytes; a rule file is at most ${MAX_RULE_FILE_BYTES} bytes`);
}

/**
 * JSON.parse with the error located as file:line:col. V8's message quotes the text it stopped at
 * (`Unexpected token 'r', "root:x:0:0"... is not valid JSON`); that quote is dropped, the place says where.
 */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message
      .replace(/^Unexpected token ('.{1,2}'), .* is not valid JSON$/su, (_m, tok: string) => `unexpected character ${shown(tok)}`)
      .replace(/^Unexpected non-whitespace character after JSON/, 'unexpected text after the JSON value');
    const pos = /position (\d+)/.exec(message);
    let at = '';
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      at = `:${line}:${before.length - before.lastIndexOf('\n')}`;
    }
    throw new UserInputError(`${file}${at}: not valid JSON: ${message.replace(/ in JSON at position \d+.*$/, '')}`);
  }
}

/** Fields of a rule file (top level, and of each role) that hold formulas. */
const SET_FORMULAS = ['attentionScale', 'embeddingMultiplier', 'outputMultiplier', 'depthFactor', 'residualBranchMultiplier'] as const;
const ROLE_FORMULAS = ['initStd', 'adamLr', 'sgdLr', 'weightDecay', 'adamEps'] as const;

function ownParts(data: RuleFileData, src: SourceLocator): Pick<Merged, 'roles' | 'overrides' | 'densityMap' | 'origins'> {
  const roles = new Map<Role, TrackedRole>();
  const origins = new Map<string, string>();
  const origin = (at: string) => { const where = src.locate?.(at); return `${src.file}${where ? `:${where}` : ''}`; };
  for (const k of SET_FORMULAS) if (data[k] !== undefined) origins.set(k, origin(k));
  for (const [role, rule] of Object.entries(data.roles ?? {}) as [Role, RoleRuleData][]) {
    roles.set(role, { rule, src, path: childPath('roles', role) });
    for (const k of ROLE_FORMULAS) if (rule[k] !== undefined) origins.set(`roles.${role}.${k}`, origin(`roles.${role}.${k}`));
  }
  return {
    origins,
    roles,
    overrides: (data.overrides ?? []).map(({ match, role }) => ({ match, role })),
    densityMap: Object.entries(data.density ?? {}).map(([match, density]) => ({ match, density })),
  };
}

/** The child's fields replace the base's; role rules merge field by field. */
function mergeOnto(base: Merged, child: Merged): Merged {
  const childId = setIdOf(child);
  const roles = new Map(base.roles);
  for (const [role, tracked] of child.roles) {
    const under = base.roles.get(role);
    if (!under) { roles.set(role, tracked); continue; }
    const changed = Object.keys(tracked.rule).filter((k) => k !== 'id' && k !== 'doc');
    const rule: RoleRuleData = {
      ...under.rule,
      ...tracked.rule,
      id: tracked.rule.id ?? `${childId}.${role}`,
      doc: tracked.rule.doc ?? `${under.rule.doc ?? ''} [${childId} sets ${changed.join(', ') || 'nothing'}]`.trim(),
    };
    roles.set(role, { rule, src: tracked.src, path: tracked.path });
  }
  const { roles: _ignored, ...childFields } = child.data;
  const data: RuleFileData = { ...base.data, ...childFields, id: childId, doc: child.data.doc ?? `${base.data.doc ?? ''} (extended by ${child.source})`.trim() };
  return {
    source: child.source,
    src: child.src,
    data,
    roles,
    overrides: [...child.overrides, ...base.overrides],
    densityMap: [...child.densityMap, ...base.densityMap],
    origins: new Map([...base.origins, ...child.origins]),
  };
}

function setIdOf(m: Merged): string {
  return m.data.id ?? path.basename(m.source).replace(/\.(json|m?ts)$/i, '');
}

/** Checks completeness and builds the RuleSet contract. */
function finish(m: Merged): RuleSet {
  const id = setIdOf(m);
  for (const field of REQUIRED_SET_FIELDS) {
    if (m.data[field] === undefined) {
      throw new UserInputError(`${placeOf(m.src, '')}: missing required field '${field}' (give it, or "extends": "supar" to inherit it)`);
    }
  }
  if (m.roles.size === 0) throw new UserInputError(`${placeOf(m.src, '')}: no roles; give "roles" or "extends" a built-in rule set`);
  const roles: Partial<Record<Role, RoleRule>> = {};
  for (const [role, { rule, src, path: at }] of m.roles) {
    for (const field of REQUIRED_ROLE_FIELDS) {
      if (rule[field] === undefined) throw new UserInputError(`${placeOf(src, at)}: missing required field '${field}' (every role needs ${REQUIRED_ROLE_FIELDS.join(', ')})`);
    }
    roles[role] = {
      id: rule.id ?? `${id}.${role}`,
      doc: rule.doc ?? `${role} rule of ${id}`,
      ...(rule.initStd !== undefined ? { initStd: rule.initStd } : {}),
      adamLr: rule.adamLr!, sgdLr: rule.sgdLr!, weightDecay: rule.weightDecay!, sparsify: rule.sparsify!,
      ...(rule.adamEps !== undefined ? { adamEps: rule.adamEps } : {}),
    };
  }
  return {
    id,
    doc: m.data.doc ?? `rules from ${m.source}`,
    roles,
    attentionScale: m.data.attentionScale!,
    embeddingMultiplier: m.data.embeddingMultiplier!,
    outputMultiplier: m.data.outputMultiplier!,
    ...(m.data.depthFactor !== undefined ? { depthFactor: m.data.depthFactor } : {}),
    origins: Object.fromEntries(m.origins),
    ...(m.data.residualBranchMultiplier !== undefined ? { residualBranchMultiplier: m.data.residualBranchMultiplier } : {}),
    ...(m.data.alphaDepth !== undefined ? { alphaDepth: m.data.alphaDepth } : {}),
    ...(m.data.weightDecayMode !== undefined ? { weightDecayMode: m.data.weightDecayMode } : {}),
  };
}
