/**
 * Globs over tensor names. Names are paths whose segments are separated by `.` or `/`
 * (`transformer.h.0.attn.c_attn.weight`, `/layer1/Gemm`, `onnx::MatMul_123`).
 *
 *   `*`      any run of characters within one segment (never `.` or `/`)
 *   `**`     any run of characters across segments; `**.` / `**` + `/` also match zero segments
 *   `?`      one character other than `.` or `/`
 *   `[abc]`, `[a-z]`, `[!abc]` / `[^abc]`   one character from (or not from) a class
 *   `\x`     the character x literally
 *
 * The match is anchored at both ends: `attn.*` does not match `h.0.attn.c_attn`. No prefix is stripped
 * (mup's `name.strip('module.')` removes *characters*, not a prefix, and silently mangles names).
 */
import { UserInputError } from '../errors.js';

const SEP = '[./]';
const NOT_SEP = '[^./]';

const cache = new Map<string, RegExp>();

/** True when `name` matches `pattern` in full. */
export function matchGlob(pattern: string, name: string): boolean {
  return compileGlob(pattern).test(name);
}

/** The anchored RegExp for a glob; throws UserInputError naming the glob when it is malformed. */
export function compileGlob(pattern: string): RegExp {
  const hit = cache.get(pattern);
  if (hit) return hit;
  const re = new RegExp(`^${globToRegexSource(pattern)}$`, 'u');
  cache.set(pattern, re);
  return re;
}

function globToRegexSource(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      if (i + 1 >= pattern.length) throw new UserInputError(`glob '${pattern}': ends with a lone backslash; write '\\\\' for a literal one`);
      out += escapeRegex(pattern[++i]!);
    } else if (c === '*' && pattern[i + 1] === '*') {
      const next = pattern[i + 2];
      if (next === '.' || next === '/') {
        out += `(?:.*${SEP})?`;
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') {
      out += `${NOT_SEP}*`;
    } else if (c === '?') {
      out += NOT_SEP;
    } else if (c === '[') {
      const end = classEnd(pattern, i);
      out += classToRegex(pattern.slice(i + 1, end));
      i = end;
    } else {
      out += escapeRegex(c);
    }
  }
  return out;
}

function classEnd(pattern: string, start: number): number {
  let j = start + 1;
  if (pattern[j] === '!' || pattern[j] === '^') j++;
  if (pattern[j] === ']') j++;
  while (j < pattern.length && pattern[j] !== ']') j++;
  if (j >= pattern.length) throw new UserInputError(`glob '${pattern}': '[' at position ${start} has no closing ']'`);
  return j;
}

function classToRegex(body: string): string {
  let negate = false;
  if (body[0] === '!' || body[0] === '^') {
    negate = true;
    body = body.slice(1);
  }
  const inner = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
  return negate ? `(?![./])[^${inner}]` : `[${inner}]`;
}

function escapeRegex(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
