/** The expression language: values against hand-computed maths, precedence, located errors. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { compileExpr, evalExpr, ExprError } from '../src/rules/expr.js';
import { UserInputError } from '../src/errors.js';

const env = { m_d: 2, m_rho: 0.125, rho: 0.125, sigma_base: 0.02, alpha_input: 3, alpha_output: 5, d_head: 64, n_layers: 12, fan_in: 768, fan_out: 3072 };

test('numbers, operators and precedence', () => {
  const cases: [string, number][] = [
    ['1e-3', 0.001],
    ['2.5E+2', 250],
    ['.5', 0.5],
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['8 / 4 / 2', 1],
    ['10 - 4 - 3', 3],
    ['2^3^2', 512],
    ['-2^2', -4],
    ['2^-1', 0.5],
    ['(-2)^2', 4],
    ['- -3', 3],
    ['+4', 4],
    ['2 * -3', -6],
    ['sqrt(16) + exp(0) + log(1)', 5],
    ['min(3, 1, 2) + max(4, 9) + abs(-2)', 12],
  ];
  for (const [src, want] of cases) assert.equal(evalExpr(src, {}), want, src);
});

test('variables: SµPar table values at m_d=2, rho=0.125', () => {
  assert.equal(evalExpr('sigma_base/sqrt(m_d*m_rho)', env), 0.02 / Math.sqrt(0.25));
  assert.equal(evalExpr('1/(m_d*m_rho)', env), 4);
  assert.equal(evalExpr('1/m_rho', env), 8);
  assert.equal(evalExpr('alpha_output/m_d', env), 2.5);
  assert.equal(evalExpr('1/sqrt(2*n_layers)', env), 1 / Math.sqrt(24));
  assert.equal(evalExpr('1/d_head', env), 1 / 64);
  const c = compileExpr('sigma_base / sqrt(m_d * m_rho) + 0*m_d', 'x');
  assert.deepEqual(c.variables, ['m_d', 'm_rho', 'sigma_base']);
  assert.equal(c.source, 'sigma_base / sqrt(m_d * m_rho) + 0*m_d');
});

function errorOf(src: string, where = 'rules/my.json: roles.hidden.initStd'): ExprError {
  try {
    compileExpr(src, where);
  } catch (e) {
    assert.ok(e instanceof ExprError, `${src}: ${e}`);
    return e;
  }
  assert.fail(`no error for ${src}`);
}

test('unknown variable: located, lists the known ones', () => {
  const e = errorOf('sigma_base/sqrt(m_dd)');
  assert.equal(e.column, 17);
  assert.match(e.message, /^rules\/my\.json: roles\.hidden\.initStd: unknown variable 'm_dd' at column 17 in 'sigma_base\/sqrt\(m_dd\)' \(known: m_d, m_rho, rho, sigma_base/);
  assert.ok(!e.message.includes('\n'));
  assert.equal(e.caret(), 'sigma_base/sqrt(m_dd)\n                ^');
  assert.ok(e instanceof UserInputError);
});

test('syntax errors carry their column', () => {
  const cases: [string, number, RegExp][] = [
    ['1 +', 4, /expected a number, variable, function or '\(' but found 'end of expression'/],
    ['(1 + 2', 7, /expected '\)' to close '\(' at column 1/],
    ['1 + 2)', 6, /unexpected '\)'/],
    ['2 $ 3', 3, /unexpected character '\$'/],
    ['sqrtt(4)', 1, /unknown function 'sqrtt'/],
    ['sqrt(1, 2)', 1, /sqrt\(\) takes 1 argument, got 2/],
    ['sqrt * 2', 1, /unknown variable 'sqrt' at column 1 in 'sqrt \* 2' \('sqrt' is a function/],
    ['1e', 1, /malformed number '1e'/],
    ['1.2.3', 1, /malformed number '1.2.'/],
    ['2 3', 3, /unexpected '3'/],
    ['', 1, /empty expression/],
  ];
  for (const [src, col, re] of cases) {
    const e = errorOf(src);
    assert.equal(e.column, col, src);
    assert.match(e.message, re, src);
  }
});

test('eval: non-finite results and missing variables name the expression', () => {
  const c = compileExpr('1/(m_d - 2)', 'rules/x.json: roles.hidden.adamLr');
  assert.throws(() => c.eval(env), /rules\/x\.json: roles\.hidden\.adamLr: expression '1\/\(m_d - 2\)' evaluates to Infinity with m_d=2/);
  assert.throws(() => evalExpr('log(0-1)', {}), /evaluates to NaN/);
  assert.throws(() => compileExpr('1/d_head', 'w').eval({ m_d: 1 }), /needs d_head/);
});
