/**
 * The rule-file schema (the shape in rules/rule-file.d.ts) and a small JSON-Schema-like validator: unknown keys,
 * unknown roles, wrong types, bad globs, densities outside (0, 1] and formulas that do not parse are rejected
 * with the file, the place in it and the JSON path. Completeness (required fields) is checked after `extends`
 * is resolved, by `checkComplete`.
 */
import { UserInputError } from '../errors.js';
import { ROLES, type Role } from '../analysis/types.js';
import { compileGlob } from '../analysis/glob.js';
import { compileExpr } from './expr.js';
import { WEIGHT_DECAY_MODES, type WeightDecayMode } from './types.js';

/** A validated rule file, before `extends` is merged. */
export interface RoleRuleData {
  id?: string;
  doc?: string;
  initStd?: string;
  adamLr?: string;
  sgdLr?: string;
  weightDecay?: string;
  adamEps?: string;
  sparsify?: boolean;
}

export interface RuleFileData {
  id?: string;
  doc?: string;
  extends?: string;
  attentionScale?: string;
  embeddingMultiplier?: string;
  outputMultiplier?: string;
  depthFactor?: string;
  residualBranchMultiplier?: string;
  alphaDepth?: number;
  weightDecayMode?: WeightDecayMode;
  roles?: Partial<Record<Role, RoleRuleData>>;
  overrides?: { match: string; role: Role }[];
  density?: Record<string, number>;
}

type Schema =
  | { type: 'string' | 'formula' | 'boolean' | 'glob' | 'density' | 'role' | 'exponent' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'object'; properties: Record<string, Schema>; required?: string[] }
  | { type: 'map'; keys: 'glob' | 'role'; values: Schema }
  | { type: 'array'; items: Schema };

const ROLE_RULE_SCHEMA: Schema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, doc: { type: 'string' },
    initStd: { type: 'formula' }, adamLr: { type: 'formula' }, sgdLr: { type: 'formula' }, weightDecay: { type: 'formula' },
    adamEps: { type: 'formula' }, sparsify: { type: 'boolean' },
  },
};

export const RULE_FILE_SCHEMA: Schema = {
  type: 'object',
  properties: {
    $schema: { type: 'string' }, id: { type: 'string' }, doc: { type: 'string' }, extends: { type: 'string' },
    attentionScale: { type: 'formula' }, embeddingMultiplier: { type: 'formula' }, outputMultiplier: { type: 'formula' },
    depthFactor: { type: 'formula' }, residualBranchMultiplier: { type: 'formula' },
    alphaDepth: { type: 'exponent' }, weightDecayMode: { type: 'enum', values: WEIGHT_DECAY_MODES },
    roles: { type: 'map', keys: 'role', values: ROLE_RULE_SCHEMA },
    overrides: { type: 'array', items: { type: 'object', properties: { match: { type: 'glob' }, role: { type: 'role' } }, required: ['match', 'role'] } },
    density: { type: 'map', keys: 'glob', values: { type: 'density' } },
  },
};

/** Where a value sits: the file, and (for TS files) a "line:col" for a JSON path. */
export interface SourceLocator {
  file: string;
  locate?: (path: string) => string | undefined;
}

/** "<file>[:line:col]: <path>: " — the prefix of every message about the value at `path`. */
export function placeOf(src: SourceLocator, path: string): string {
  const at = src.locate?.(path);
  return `${src.file}${at ? `:${at}` : ''}${path ? `: ${path}` : ''}`;
}

/** Appends a key to a JSON path: `a.b` for identifier-like keys, `a["h.*"]` otherwise. */
export function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

/** Validates a parsed rule file; throws UserInputError at the first problem. */
export function validateRuleFile(value: unknown, src: SourceLocator): RuleFileData {
  check(value, RULE_FILE_SCHEMA, '', src);
  const data = { ...(value as Record<string, unknown>) };
  delete data.$schema;
  return data as RuleFileData;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function fail(src: SourceLocator, path: string, message: string): never {
  throw new UserInputError(`${placeOf(src, path)}: ${message}`);
}

function check(value: unknown, schema: Schema, path: string, src: SourceLocator): void {
  switch (schema.type) {
    case 'string':
    case 'glob':
    case 'formula':
    case 'role':
      if (typeof value !== 'string') fail(src, path, `expected ${schema.type === 'formula' ? 'a formula string' : 'a string'}, got ${describe(value)}`);
      if (schema.type === 'formula') compileExpr(value, placeOf(src, path));
      if (schema.type === 'glob') checkGlob(value, path, src);
      if (schema.type === 'role') checkRole(value, path, src);
      return;
    case 'exponent':
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 2) fail(src, path, `expected a depth exponent (a number in [0, 2], e.g. 1 for CompleteP, 0.5 for depth-µP), got ${describe(value)}`);
      return;
    case 'enum':
      if (typeof value !== 'string' || !schema.values.includes(value)) fail(src, path, `expected one of ${schema.values.join(', ')}, got ${describe(value)}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail(src, path, `expected true or false, got ${describe(value)}`);
      return;
    case 'density':
      if (typeof value !== 'number') fail(src, path, `expected a density (a number in (0, 1]), got ${describe(value)}`);
      if (!(value > 0 && value <= 1)) fail(src, path, `density ${value} is outside (0, 1]`);
      return;
    case 'array':
      if (!Array.isArray(value)) fail(src, path, `expected an array, got ${describe(value)}`);
      value.forEach((item, i) => check(item, schema.items, childPath(path, i), src));
      return;
    case 'object':
      checkObject(value, schema, path, src);
      return;
    case 'map':
      if (!isPlainObject(value)) fail(src, path, `expected an object, got ${describe(value)}`);
      for (const [key, item] of Object.entries(value)) {
        const at = childPath(path, key);
        if (schema.keys === 'role') checkRole(key, at, src);
        else checkGlob(key, at, src);
        check(item, schema.values, at, src);
      }
      return;
  }
}

function checkObject(value: unknown, schema: Schema & { type: 'object' }, path: string, src: SourceLocator): void {
  if (!isPlainObject(value)) fail(src, path, `expected an object, got ${describe(value)}`);
  const known = Object.keys(schema.properties);
  for (const [key, item] of Object.entries(value)) {
    const at = childPath(path, key);
    const propSchema = schema.properties[key];
    if (!propSchema) {
      const near = known.find((k) => k.toLowerCase() === key.toLowerCase());
      fail(src, at, `unknown key '${key}'${near ? ` (did you mean '${near}'?)` : ''} (known: ${known.filter((k) => k !== '$schema').join(', ')})`);
    }
    check(item, propSchema, at, src);
  }
  for (const key of schema.required ?? []) {
    if (!(key in value)) fail(src, path, `missing required field '${key}'`);
  }
}

function checkRole(value: string, path: string, src: SourceLocator): void {
  if (!(ROLES as readonly string[]).includes(value)) fail(src, path, `unknown role '${value}' (known: ${ROLES.join(', ')})`);
}

function checkGlob(value: string, path: string, src: SourceLocator): void {
  if (value === '') fail(src, path, 'empty glob');
  try {
    compileGlob(value);
  } catch (e) {
    if (e instanceof UserInputError) fail(src, path, e.message);
    throw e;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Fields every role rule must end up with (after `extends`). */
export const REQUIRED_ROLE_FIELDS = ['adamLr', 'sgdLr', 'weightDecay', 'sparsify'] as const;
/** Fields every rule set must end up with (after `extends`). */
export const REQUIRED_SET_FIELDS = ['attentionScale', 'embeddingMultiplier', 'outputMultiplier'] as const;
