/**
 * The rule formulas' expression language: parsed by hand (recursive descent), checked at load, evaluated by
 * walking the tree. Never `eval`/`Function`.
 *
 * Grammar (usual precedence; `^` binds tighter than unary minus and is right-associative, so `-2^2 = -4` and
 * `2^3^2 = 2^9`; an exponent may carry its own sign, `2^-1 = 0.5`):
 *
 *     expr    := term (('+' | '-') term)*
 *     term    := unary (('*' | '/') unary)*
 *     unary   := ('-' | '+') unary | power
 *     power   := primary ('^' unary)?
 *     primary := NUMBER | VARIABLE | FUNC '(' expr (',' expr)* ')' | '(' expr ')'
 *     NUMBER  := digits ['.' digits] [('e'|'E') ['+'|'-'] digits]   (also '.5')
 *
 * Functions: sqrt, exp, log (natural), abs (one argument); min, max (one or more). Variables: EXPR_VARIABLES.
 * Limits (rule files are untrusted input): at most MAX_EXPR_LENGTH characters and MAX_EXPR_DEPTH nested
 * parentheses, calls, signs or powers, so that no formula can exhaust the stack.
 */
import { UserInputError } from '../errors.js';
import { EXPR_VARIABLES, type ExprEnv, type ExprVariable } from './types.js';
import { shown } from './text.js';

type Node =
  | { kind: 'num'; value: number }
  | { kind: 'var'; name: ExprVariable; col: number }
  | { kind: 'neg'; arg: Node }
  | { kind: 'bin'; op: '+' | '-' | '*' | '/' | '^'; left: Node; right: Node }
  | { kind: 'call'; fn: FunctionName; args: Node[] };

const FUNCTIONS = {
  sqrt: { arity: [1, 1], apply: (a: number[]) => Math.sqrt(a[0]!) },
  exp: { arity: [1, 1], apply: (a: number[]) => Math.exp(a[0]!) },
  log: { arity: [1, 1], apply: (a: number[]) => Math.log(a[0]!) },
  abs: { arity: [1, 1], apply: (a: number[]) => Math.abs(a[0]!) },
  min: { arity: [1, Infinity], apply: (a: number[]) => Math.min(...a) },
  max: { arity: [1, Infinity], apply: (a: number[]) => Math.max(...a) },
} as const;
type FunctionName = keyof typeof FUNCTIONS;
const isFunctionName = (name: string): name is FunctionName => Object.hasOwn(FUNCTIONS, name);

/** Longest formula accepted, in characters (the built-in rules' longest is 27). */
export const MAX_EXPR_LENGTH = 1000;
/** Deepest nesting accepted (parentheses, function calls, unary signs and powers each count one level). */
export const MAX_EXPR_DEPTH = 64;

export interface CompiledExpr {
  readonly source: string;
  /** Variables the expression reads, sorted, without duplicates. */
  readonly variables: readonly ExprVariable[];
  /** Evaluates with `env`; throws UserInputError when a needed variable is missing or the result is not finite. */
  eval(env: Partial<ExprEnv>): number;
  /** The value with `env`, finite or not (the caller checks what it means: src/plan.ts); throws only for a missing variable. */
  value(env: Partial<ExprEnv>): number;
}

/** A parse or check error with its 1-based column in the expression; the message is one line. */
export class ExprError extends UserInputError {
  constructor(message: string, readonly source: string, readonly column: number) {
    super(message);
    this.name = 'ExprError';
  }

  /** Two lines for a terminal: the expression, and a caret under the column. */
  caret(): string {
    return `${this.source}\n${' '.repeat(Math.max(0, this.column - 1))}^`;
  }
}

const KNOWN_VARIABLES = new Set<string>(EXPR_VARIABLES);

/** Parses and checks `source`; `where` names the place (e.g. "rules/my.json: roles.hidden.initStd"). */
export function compileExpr(source: string, where: string): CompiledExpr {
  const root = new Parser(source, where).parseAll();
  const variables = [...collectVariables(root, new Set())].sort();
  return {
    source,
    variables,
    value(env: Partial<ExprEnv>): number {
      return evaluate(root, env, source, where);
    },
    eval(env: Partial<ExprEnv>): number {
      const value = evaluate(root, env, source, where);
      if (!Number.isFinite(value)) {
        const vars = variables.map((v) => `${v}=${env[v]}`).join(', ');
        throw new UserInputError(`${prefix(where)}expression '${shown(source)}' evaluates to ${value}${vars ? ` with ${vars}` : ''}; check the formula and the hyperparameters`);
      }
      return value;
    },
  };
}

/** Evaluates a one-off expression (convenience for tests and flags). */
export function evalExpr(source: string, env: Partial<ExprEnv>, where = 'expression'): number {
  return compileExpr(source, where).eval(env);
}

function prefix(where: string): string {
  return where ? `${where}: ` : '';
}

function collectVariables(node: Node, into: Set<ExprVariable>): Set<ExprVariable> {
  switch (node.kind) {
    case 'num': break;
    case 'var': into.add(node.name); break;
    case 'neg': collectVariables(node.arg, into); break;
    case 'bin': collectVariables(node.left, into); collectVariables(node.right, into); break;
    case 'call': node.args.forEach((a) => collectVariables(a, into)); break;
  }
  return into;
}

function evaluate(node: Node, env: Partial<ExprEnv>, source: string, where: string): number {
  const ev = (n: Node) => evaluate(n, env, source, where);
  switch (node.kind) {
    case 'num': return node.value;
    case 'var': {
      const v = env[node.name];
      if (v === undefined) {
        throw new UserInputError(`${prefix(where)}expression '${shown(source)}' needs ${node.name}, which is not known here; give it (or use a rule that does not need it)`);
      }
      return v;
    }
    case 'neg': return -ev(node.arg);
    case 'call': return FUNCTIONS[node.fn].apply(node.args.map(ev));
    case 'bin': {
      const a = ev(node.left);
      const b = ev(node.right);
      switch (node.op) {
        case '+': return a + b;
        case '-': return a - b;
        case '*': return a * b;
        case '/': return a / b;
        case '^': return Math.pow(a, b);
      }
    }
  }
}

type Token =
  | { kind: 'num'; value: number; col: number; text: string }
  | { kind: 'id'; name: string; col: number; text: string }
  | { kind: 'op'; op: string; col: number; text: string }
  | { kind: 'end'; col: number; text: string };

const NUMBER_RE = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/;
const IDENT_RE = /^[A-Za-z_][A-Za-z_0-9]*/;

function tokenize(source: string, fail: (message: string, column: number) => never): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i]!;
    if (ch === ' ' || ch === '\t') { i++; continue; }
    const rest = source.slice(i);
    const num = NUMBER_RE.exec(rest);
    if (num) {
      const after = rest[num[0].length] ?? '';
      if (/[A-Za-z_.]/.test(after)) fail(`malformed number '${shown(num[0] + after)}'`, i + 1);
      tokens.push({ kind: 'num', value: Number(num[0]), col: i + 1, text: num[0] });
      i += num[0].length;
      continue;
    }
    const id = IDENT_RE.exec(rest);
    if (id) {
      tokens.push({ kind: 'id', name: id[0], col: i + 1, text: id[0] });
      i += id[0].length;
      continue;
    }
    if ('+-*/^(),'.includes(ch)) {
      tokens.push({ kind: 'op', op: ch, col: i + 1, text: ch });
      i++;
      continue;
    }
    fail(`unexpected character '${shown(ch)}'`, i + 1);
  }
  tokens.push({ kind: 'end', col: source.length + 1, text: 'end of expression' });
  return tokens;
}

class Parser {
  private readonly tokens: Token[];
  private pos = 0;
  private depth = 0;

  constructor(private readonly source: string, private readonly where: string) {
    if (typeof source !== 'string') this.fail(`expected a formula string, got ${typeof source}`, 1);
    if (source.trim() === '') this.fail('empty expression', 1);
    if (source.length > MAX_EXPR_LENGTH) {
      throw new ExprError(`${prefix(where)}formula of ${source.length} characters is longer than ${MAX_EXPR_LENGTH}: '${shown(source, 40)}'`, source, MAX_EXPR_LENGTH + 1);
    }
    this.tokens = tokenize(source, (m, c) => this.fail(m, c));
  }

  /** Runs `parse` one nesting level deeper; past MAX_EXPR_DEPTH the formula is refused. */
  private nested<T>(col: number, parse: () => T): T {
    if (++this.depth > MAX_EXPR_DEPTH) this.fail(`nested more than ${MAX_EXPR_DEPTH} levels deep`, col);
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  parseAll(): Node {
    const node = this.parseExpr();
    const t = this.peek();
    if (t.kind !== 'end') this.fail(`unexpected '${t.text}' (expected an operator or the end)`, t.col);
    return node;
  }

  /** Message shape: "<where>: <what> at column <n> in '<source>'<detail>". */
  private fail(message: string, column: number, detail = ''): never {
    const text = `${prefix(this.where)}${message} at column ${column} in '${shown(this.source)}'${detail}`;
    throw new ExprError(text, this.source, column);
  }

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private next(): Token {
    return this.tokens[this.pos++]!;
  }

  private isOp(op: string): boolean {
    const t = this.peek();
    return t.kind === 'op' && t.op === op;
  }

  private expectOp(op: string, context: string): void {
    const t = this.next();
    if (t.kind !== 'op' || t.op !== op) this.fail(`expected '${op}' ${context}, found '${t.text}'`, t.col);
  }

  private parseExpr(): Node {
    let left = this.parseTerm();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.next() as { op: '+' | '-' }).op;
      left = { kind: 'bin', op, left, right: this.parseTerm() };
    }
    return left;
  }

  private parseTerm(): Node {
    let left = this.parseUnary();
    while (this.isOp('*') || this.isOp('/')) {
      const op = (this.next() as { op: '*' | '/' }).op;
      left = { kind: 'bin', op, left, right: this.parseUnary() };
    }
    return left;
  }

  private parseUnary(): Node {
    if (this.isOp('-')) { const t = this.next(); return { kind: 'neg', arg: this.nested(t.col, () => this.parseUnary()) }; }
    if (this.isOp('+')) { const t = this.next(); return this.nested(t.col, () => this.parseUnary()); }
    return this.parsePower();
  }

  private parsePower(): Node {
    const base = this.parsePrimary();
    if (!this.isOp('^')) return base;
    const t = this.next();
    return { kind: 'bin', op: '^', left: base, right: this.nested(t.col, () => this.parseUnary()) };
  }

  private parsePrimary(): Node {
    const t = this.next();
    if (t.kind === 'num') return { kind: 'num', value: t.value };
    if (t.kind === 'id') return this.isOp('(') ? this.parseCall(t) : this.variable(t);
    if (t.kind === 'op' && t.op === '(') {
      const inner = this.nested(t.col, () => this.parseExpr());
      this.expectOp(')', `to close '(' at column ${t.col}`);
      return inner;
    }
    return this.fail(`expected a number, variable, function or '(' but found '${t.text}'`, t.col);
  }

  private variable(t: Token & { kind: 'id' }): Node {
    if (!KNOWN_VARIABLES.has(t.name)) {
      const hint = isFunctionName(t.name) ? ` ('${t.name}' is a function: write ${t.name}(...))` : '';
      this.fail(`unknown variable '${shown(t.name)}'`, t.col, `${hint} (known: ${EXPR_VARIABLES.join(', ')})`);
    }
    return { kind: 'var', name: t.name as ExprVariable, col: t.col };
  }

  private parseCall(t: Token & { kind: 'id' }): Node {
    if (!isFunctionName(t.name)) {
      this.fail(`unknown function '${shown(t.name)}'`, t.col, ` (known: ${Object.keys(FUNCTIONS).join(', ')})`);
    }
    const fn = t.name;
    this.expectOp('(', `after '${fn}'`);
    const args = this.nested(t.col, () => {
      const list: Node[] = [this.parseExpr()];
      while (this.isOp(',')) { this.next(); list.push(this.parseExpr()); }
      return list;
    });
    this.expectOp(')', `to close ${fn}(`);
    const [lo, hi] = FUNCTIONS[fn].arity;
    if (args.length < lo || args.length > hi) {
      const want = hi === lo ? `${lo} argument${lo === 1 ? '' : 's'}` : `at least ${lo} argument`;
      this.fail(`${fn}() takes ${want}, got ${args.length}`, t.col);
    }
    return { kind: 'call', fn, args };
  }
}
