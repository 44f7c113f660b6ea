/**
 * Loading rule sets: a built-in id (sp, mup, supar: rules/<id>.json shipped with the package) or a user file
 * (.json, or .ts read statically by src/rules/ts-rules.ts, never executed). A file may `extends` a built-in or
 * another file (path relative to it); its fields replace the base's, role fields one by one; its overrides and
 * density globs come before the base's (first match wins).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvariantError, UsageError, UserInputError } from '../errors.js';
import type { Role } from '../analysis/types.js';
import type { RoleRule, RuleSet } from './types.js';
import {
  childPath, placeOf, REQUIRED_ROLE_FIELDS, REQUIRED_SET_FIELDS, validateRuleFile,
  type RoleRuleData, type RuleFileData, type SourceLocator,
} from './schema.js';

export const BUILTIN_RULES = ['sp', 'mup', 'supar', 'completep', 'depth-mup', 'supar-completep', 'supar-init-only', 'supar-lr-only', 'umup'] as const;

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
  const merged = await loadMerged(spec, process.cwd(), []);
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
}

interface Resolved { display: string; file: string; builtin: boolean }

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

async function loadMerged(spec: string, fromDir: string, chain: string[]): Promise<Merged> {
  const resolved = resolveSpec(spec, fromDir);
  if (chain.includes(resolved.file)) {
    throw new UserInputError(`${resolved.display}: 'extends' forms a cycle (${[...chain, resolved.file].join(' -> ')}); remove one link`);
  }
  const { value, src } = await readRuleFile(resolved);
  const data = validateRuleFile(value, src);
  const own = ownParts(data, src);
  if (data.extends === undefined) return { source: resolved.display, src, data, ...own };
  const base = await loadMerged(data.extends, path.dirname(resolved.file), [...chain, resolved.file]);
  return mergeOnto(base, { source: resolved.display, src, data, ...own });
}

async function readRuleFile(r: Resolved): Promise<{ value: unknown; src: SourceLocator }> {
  const display = r.builtin ? path.join('rules', path.basename(r.file)) : r.display;
  if (/\.m?ts$/i.test(r.file)) {
    const { readTsRuleFile } = await import('./ts-rules.js');
    return readTsRuleFile(r.file, display);
  }
  const text = fs.readFileSync(r.file, 'utf8');
  return { value: parseJson(text, display), src: { file: display } };
}

/** JSON.parse with the error located as file:line:col. */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
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

function ownParts(data: RuleFileData, src: SourceLocator): Pick<Merged, 'roles' | 'overrides' | 'densityMap'> {
  const roles = new Map<Role, TrackedRole>();
  for (const [role, rule] of Object.entries(data.roles ?? {}) as [Role, RoleRuleData][]) {
    roles.set(role, { rule, src, path: childPath('roles', role) });
  }
  return {
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
    ...(m.data.residualBranchMultiplier !== undefined ? { residualBranchMultiplier: m.data.residualBranchMultiplier } : {}),
    ...(m.data.alphaDepth !== undefined ? { alphaDepth: m.data.alphaDepth } : {}),
    ...(m.data.weightDecayMode !== undefined ? { weightDecayMode: m.data.weightDecayMode } : {}),
  };
}
