/**
 * TypeScript rule files, read statically with ts-morph and NEVER executed (no import, no eval, no transpile-and-run).
 *
 * 1. Find the rule object: the default export (`export default {...}`, `export default rules` naming a local
 *    `const`), else an exported `const rules = {...}`; `satisfies RuleFile`, `as const` and parentheses are peeled.
 * 2. Evaluate it from the syntax tree, allowing only: object and array literals, string, number, boolean and null
 *    literals, template strings without substitutions, unary minus/plus and + - * / on numbers. Anything else (calls,
 *    identifiers, spreads, computed keys, getters, `${}`) is an error at file:line:col. Other top-level statements
 *    are ignored: they are never run.
 * 3. Type-check the file (strict) with `supar-transform/rules` mapped to rules/rule-file.d.ts, so a file that
 *    writes `satisfies RuleFile` gets TypeScript's own messages at file:line:col.
 * ts-morph (with its own bundled TypeScript) is imported lazily: only `--rules x.ts` pays its load time.
 */
import * as path from 'node:path';
import { UserInputError } from '../errors.js';
import { childPath, type SourceLocator } from './schema.js';
import { getBuiltinRulesDir } from './load.js';

type TsMorph = typeof import('ts-morph');
type Node = import('ts-morph').Node;
type SourceFile = import('ts-morph').SourceFile;

const ALLOWED = 'only literals, arrays, objects, unary minus, arithmetic on numbers and template strings without ${} are allowed; the file is read, never run';

/** Reads `file` statically; `display` is the name used in messages. */
export async function readTsRuleFile(file: string, display: string): Promise<{ value: unknown; src: SourceLocator }> {
  const morph: TsMorph = await import('ts-morph');
  const project = new morph.Project({ compilerOptions: compilerOptions(morph), skipAddingFilesFromTsConfig: true });
  const sf = project.addSourceFileAtPath(file);
  const reader = new StaticReader(morph, sf, display);
  const value = reader.evaluate(reader.findRuleObject(), '');
  reportTypeErrors(project, sf, display, morph);
  const positions = reader.positions;
  return { value, src: { file: display, locate: (p) => positions.get(p) } };
}

function compilerOptions(morph: TsMorph): import('ts-morph').CompilerOptions {
  const ruleTypes = path.join(getBuiltinRulesDir(), 'rule-file.d.ts');
  const { ts } = morph;
  return {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts'],
    types: [],
    skipLibCheck: true,
    paths: {
      'supar-transform/rules': [ruleTypes],
      'supar-transform/rules/rule-file': [ruleTypes],
      'supar-transform/rules/rule-file.js': [ruleTypes],
    },
  };
}

/** Throws the first type error in the user's file (with the count of the rest). */
function reportTypeErrors(project: import('ts-morph').Project, sf: SourceFile, display: string, morph: TsMorph): void {
  const diagnostics = project.getPreEmitDiagnostics().filter((d) => d.getCategory() === morph.DiagnosticCategory.Error);
  if (diagnostics.length === 0) return;
  const first = diagnostics.find((d) => d.getSourceFile() === sf) ?? diagnostics[0]!;
  const where = first.getSourceFile();
  const start = first.getStart();
  let at = display;
  if (where && start !== undefined) {
    const { line, column } = where.getLineAndColumnAtPos(start);
    at = `${where === sf ? display : where.getFilePath()}:${line}:${column}`;
  }
  const text = morph.ts.flattenDiagnosticMessageText(first.getMessageText() as never, ' ').replace(/\s+/g, ' ');
  const more = diagnostics.length > 1 ? ` (and ${diagnostics.length - 1} more type error${diagnostics.length > 2 ? 's' : ''})` : '';
  throw new UserInputError(`${at}: type error TS${first.getCode()}: ${text}${more}`);
}

class StaticReader {
  /** JSON path → "line:col" of the value (or of its property name). */
  readonly positions = new Map<string, string>();

  constructor(private readonly morph: TsMorph, private readonly sf: SourceFile, private readonly display: string) {}

  private at(node: Node): string {
    const { line, column } = this.sf.getLineAndColumnAtPos(node.getStart());
    return `${line}:${column}`;
  }

  private fail(node: Node, message: string): never {
    throw new UserInputError(`${this.display}:${this.at(node)}: ${message}`);
  }

  /** The default export's expression, or the exported `rules` const's initializer. */
  findRuleObject(): Node {
    const { Node: N } = this.morph;
    for (const statement of this.sf.getStatements()) {
      if (N.isExportAssignment(statement) && !statement.isExportEquals()) return this.resolveLocal(statement.getExpression());
    }
    const rules = this.sf.getVariableDeclaration('rules');
    if (rules && rules.getVariableStatement()?.isExported()) return this.initializerOf(rules);
    return this.fail(this.sf, "no rule object: write 'export default { ... } satisfies RuleFile' (or 'export const rules = { ... }')");
  }

  /** `export default rules` may name a local const; nothing else is followed. */
  private resolveLocal(expr: Node): Node {
    const { Node: N } = this.morph;
    if (!N.isIdentifier(expr)) return expr;
    const decl = this.sf.getVariableDeclaration(expr.getText());
    if (!decl) this.fail(expr, `'${expr.getText()}' is not a const declared in this file; export the object literal itself`);
    return this.initializerOf(decl);
  }

  private initializerOf(decl: import('ts-morph').VariableDeclaration): Node {
    const { VariableDeclarationKind } = this.morph;
    if (decl.getVariableStatement()?.getDeclarationKind() !== VariableDeclarationKind.Const) this.fail(decl, `'${decl.getName()}' must be declared with const`);
    const init = decl.getInitializer();
    if (!init) this.fail(decl, `'${decl.getName()}' has no initializer`);
    return init;
  }

  /** The value of an allowed expression; `path` is its JSON path, recorded for located messages. */
  evaluate(node: Node, path: string): unknown {
    const { Node: N, SyntaxKind } = this.morph;
    if (!this.positions.has(path)) this.positions.set(path, this.at(node));
    if (N.isParenthesizedExpression(node) || N.isAsExpression(node) || N.isSatisfiesExpression(node)) return this.evaluate(node.getExpression(), path);
    if (N.isStringLiteral(node) || N.isNoSubstitutionTemplateLiteral(node)) return node.getLiteralValue();
    if (N.isNumericLiteral(node)) return node.getLiteralValue();
    if (N.isTrueLiteral(node) || N.isFalseLiteral(node)) return node.getLiteralValue();
    if (N.isNullLiteral(node)) return null;
    if (N.isObjectLiteralExpression(node)) return this.evaluateObject(node, path);
    if (N.isArrayLiteralExpression(node)) {
      return node.getElements().map((e, i) => {
        if (N.isSpreadElement(e) || N.isOmittedExpression(e)) this.fail(e, `${describeKind(e)} in an array: ${ALLOWED}`);
        return this.evaluate(e, childPath(path, i));
      });
    }
    if (N.isPrefixUnaryExpression(node)) {
      const op = node.getOperatorToken();
      if (op !== SyntaxKind.MinusToken && op !== SyntaxKind.PlusToken) this.fail(node, `operator in '${node.getText()}': ${ALLOWED}`);
      const v = this.number(node.getOperand(), path);
      return op === SyntaxKind.MinusToken ? -v : v;
    }
    if (N.isBinaryExpression(node)) return this.evaluateArithmetic(node, path);
    return this.fail(node, `${describeKind(node)} '${clip(node.getText())}': ${ALLOWED}`);
  }

  private number(node: Node, path: string): number {
    const v = this.evaluate(node, path);
    if (typeof v !== 'number') this.fail(node, `expected a number in arithmetic, got '${clip(node.getText())}'`);
    return v;
  }

  private evaluateArithmetic(node: import('ts-morph').BinaryExpression, path: string): number {
    const { SyntaxKind } = this.morph;
    const op = node.getOperatorToken().getKind();
    const ops: Partial<Record<number, (a: number, b: number) => number>> = {
      [SyntaxKind.PlusToken]: (a, b) => a + b,
      [SyntaxKind.MinusToken]: (a, b) => a - b,
      [SyntaxKind.AsteriskToken]: (a, b) => a * b,
      [SyntaxKind.SlashToken]: (a, b) => a / b,
    };
    const f = ops[op];
    if (!f) this.fail(node, `operator '${node.getOperatorToken().getText()}': ${ALLOWED}`);
    return f(this.number(node.getLeft(), path), this.number(node.getRight(), path));
  }

  private evaluateObject(node: import('ts-morph').ObjectLiteralExpression, path: string): Record<string, unknown> {
    const { Node: N } = this.morph;
    const out: Record<string, unknown> = {};
    for (const prop of node.getProperties()) {
      if (!N.isPropertyAssignment(prop)) this.fail(prop, `${describeKind(prop)} '${clip(prop.getText())}': ${ALLOWED}`);
      const nameNode = prop.getNameNode();
      let key: string;
      if (N.isIdentifier(nameNode) || N.isPrivateIdentifier(nameNode)) key = nameNode.getText();
      else if (N.isStringLiteral(nameNode) || N.isNoSubstitutionTemplateLiteral(nameNode)) key = nameNode.getLiteralValue();
      else if (N.isNumericLiteral(nameNode)) key = String(nameNode.getLiteralValue());
      else return this.fail(nameNode, `computed key '${clip(nameNode.getText())}': ${ALLOWED}`);
      if (Object.hasOwn(out, key)) this.fail(nameNode, `key '${key}' appears twice`);
      const at = childPath(path, key);
      this.positions.set(at, this.at(nameNode));
      // defineProperty: a key '__proto__' becomes an own key (which the schema then refuses), not the prototype.
      Object.defineProperty(out, key, { value: this.evaluate(prop.getInitializerOrThrow(), at), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}

function describeKind(node: Node): string {
  return node.getKindName().replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

function clip(text: string): string {
  const one = text.replace(/\s+/g, ' ');
  return one.length > 40 ? `${one.slice(0, 37)}...` : one;
}
