/**
 * The pages without a browser: the escaping template, the report page as a view of the report (one row per
 * tensor, byte-identical for the same input, warnings first, whatever GPU readiness the report holds), the
 * `report` command and `--no-html`, the study index, and the training page's server. The same pages in a
 * real browser: test/pages-browser.test.ts.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readModel } from '../src/onnx/codec.js';
import { tensorToFloat32 } from '../src/onnx/tensor.js';
import { escapeHtml, html, raw } from '../src/pages/html.js';
import { findReadinessSections } from '../src/pages/readiness.js';
import { reportHtml } from '../src/pages/report-page.js';
import { studyIndexHtml, readStudyFolder } from '../src/pages/study-index.js';
import { loadTrainPageData, startTrainServer } from '../src/pages/train-server.js';
import { writeCoordCheckOutputs, writeSweepOutputs } from '../src/experiments/outputs.js';
import { transform, writeTransformOutputs } from '../src/transform.js';
import { runCli } from './cli-helpers.js';
import { ROOT, tempDir } from './helpers.js';
import { syntheticCoordCheck, syntheticSweep } from './study-fixtures.js';

const GPT = path.join(ROOT, 'fixtures', 'gpt-tiny.onnx');
const GEMMA = path.join(ROOT, 'fixtures', 'hf', 'gemma2_ts.onnx');

const rowsOf = (page: string) => [...page.matchAll(/<tr data-name="([^"]*)" data-role="([^"]*)"/g)].map((m) => ({ name: m[1]!, role: m[2]! }));

test('html escapes every interpolated value; raw and nested templates pass as markup', () => {
  const name = `a<b>&"c'`;
  assert.equal(escapeHtml(name), 'a&lt;b&gt;&amp;&quot;c&#39;');
  assert.equal(html`<td title="${name}">${name}</td>`.text, '<td title="a&lt;b&gt;&amp;&quot;c&#39;">a&lt;b&gt;&amp;&quot;c&#39;</td>');
  assert.equal(html`<ul>${['<x>', 'y'].map((s) => html`<li>${s}</li>`)}</ul>`.text, '<ul><li>&lt;x&gt;</li><li>y</li></ul>');
  assert.equal(html`${raw('<b>ok</b>')}${null}${undefined}${false}${0}`.text, '<b>ok</b>0');
});

test('report page: one row per reported tensor in report order, names escaped, byte-identical for the same input', async () => {
  const a = await transform(readModel(GPT), { density: 0.25, seed: 3 });
  const b = await transform(readModel(GPT), { density: 0.25, seed: 3 });
  const page = reportHtml(a.report);
  assert.equal(page, reportHtml(b.report));
  assert.deepEqual(rowsOf(page), a.report.tensors.map((t) => ({ name: escapeHtml(t.name), role: t.role })));
  // The summary states the settings, the masks section their storage; nothing is loaded from elsewhere.
  assert.match(page, /<dt>density<\/dt><dd>0\.25<\/dd>/);
  assert.match(page, /<dt>seed<\/dt><dd>3<\/dd>/);
  assert.match(page, new RegExp(`Storage: <b>${(a.report.summary.mask_bytes / 1024).toFixed(1)} KiB</b>`));
  assert.doesNotMatch(page, /\b(src|href)="(https?:)?\/\//);
  assert.doesNotMatch(page, /@import|url\(/);
  // One inline per-layer figure: a density series per trained role with a layer.
  const svg = page.slice(page.indexOf('<section id="charts">'), page.indexOf('</section>', page.indexOf('<section id="charts">')));
  assert.ok(svg.includes('data-series="hidden"') && svg.includes('data-series="hidden (before)"'));
});

test('report page of a Hugging Face export: warnings come first, attention sites listed, every tensor a row', async () => {
  const r = await transform(readModel(GEMMA), { density: 0.5 });
  assert.ok(r.report.warnings.length > 0, 'gemma2 is expected to warn (non-standard attention scale)');
  const page = reportHtml(r.report);
  assert.ok(page.indexOf('id="warnings"') < page.indexOf('id="summary"'));
  for (const w of r.report.warnings) assert.ok(page.includes(`<li>${escapeHtml(w)}</li>`), w);
  assert.equal(rowsOf(page).length, r.report.tensors.length);
  assert.ok(r.report.attention.length > 0);
  const sites = page.match(/<section id="attention">[\s\S]*?<\/section>/)![0];
  assert.equal((sites.match(/<tr><td>/g) ?? []).length, r.report.attention.length);
  for (const a of r.report.attention) assert.ok(sites.includes(`<td class="mono">${escapeHtml(a.nodes.join(', '))}</td>`), a.nodes.join(', '));
});

test('GPU readiness: every provider section the report holds is rendered, fallbacks by op and node', async () => {
  const r = await transform(readModel(GPT), { density: 0.5 });
  const extended = { ...r.report, webgpu: [{ graph: 'train' as const, nodes: 12, fallbacks: [{ node: 'n<1>', op: 'Einsum', domain: '', opset: 17, reason: 'no WebGPU kernel' }], types_unknown: 0 }] };
  assert.deepEqual(findReadinessSections(extended).map((s) => s.provider), ['cuda', 'webgpu']);
  const page = reportHtml(extended);
  assert.match(page, /<h3>cuda<\/h3>/);
  assert.match(page, /<h3>webgpu<\/h3>/);
  assert.ok(page.includes('<code>Einsum</code> (<code>n&lt;1&gt;</code>): no WebGPU kernel'));
  assert.deepEqual(findReadinessSections({ gpu: { webgpu: extended.webgpu }, other: [{ a: 1 }] }).map((s) => s.provider), ['gpu.webgpu']);
});

test('CLI: the transform writes the page (not with --no-html); `report --html` regenerates it byte for byte; bad report files are one line', async () => {
  const dir = tempDir();
  fs.copyFileSync(GPT, path.join(dir, 'm.onnx'));
  const t = await runCli(['m.onnx', '--density', '0.25'], { cwd: dir });
  assert.equal(t.code, 0, t.stderr);
  const page = path.join(dir, 'm.supar.report.html');
  assert.match(t.stdout, /m\.supar\.report\.html$/m);
  const first = fs.readFileSync(page);
  fs.rmSync(page);
  const again = await runCli(['report', 'm.supar.report.json', '--html'], { cwd: dir });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(fs.readFileSync(page), first);
  const summary = await runCli(['report', 'm.supar.report.json'], { cwd: dir });
  assert.match(summary.stdout, /^m\.onnx: rules supar, density 0\.25/);
  const bare = await runCli(['m.onnx', '--density', '0.25', '--no-html', '-o', 'n.onnx'], { cwd: dir });
  assert.equal(bare.code, 0, bare.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'n.report.json')) && !fs.existsSync(path.join(dir, 'n.report.html')));
  const notReport = await runCli(['report', 'm.supar.lr.json', '--html'], { cwd: dir });
  assert.equal(notReport.code, 3);
  assert.equal(notReport.stderr, "error: m.supar.lr.json: not a transform report (format \"supar-lr-groups/1\", expected 'supar-report/1'); pass the .report.json the transform wrote\n");
  const missing = await runCli(['report', 'nope.json'], { cwd: dir });
  assert.equal(missing.code, 5);
  assert.match(missing.stderr, /^error: nope\.json: cannot read the report \(ENOENT\)/);
});

test('study index: every SVG in the folder shown and linked, optima and runs tabled, data files linked', () => {
  const dir = tempDir();
  const res = syntheticSweep();
  fs.writeFileSync(path.join(dir, 'extra plot.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
  const files = writeSweepOutputs(res, dir);
  assert.equal(path.basename(files.at(-1)!), 'index.html');
  const page = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
  assert.deepEqual([...page.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]), ['extra%20plot.svg', 'sweep.optima.svg', 'sweep.svg']);
  for (const f of ['sweep.csv', 'sweep.json', 'sweep.optima.md']) assert.ok(page.includes(`<a href="${f}">${f}</a>`), f);
  assert.equal((page.match(/<table class="runs">[\s\S]*?<\/table>/)![0].match(/<tr><td>/g) ?? []).length, res.points.length);
  // sp at density 1: 2^-5 diverged, so the optimum is 2^-7 (loss 3.25); the diverged run is marked.
  assert.match(page, /<tr><td class="num">1<\/td><td class="num">2\^-7 \(loss 3.25\)<\/td>/);
  assert.match(page, /<td class="bad">diverged<\/td>/);
  assert.equal(studyIndexHtml(readStudyFolder(dir)), page);
});

test('study index of a coord check beside a sweep: both results tabled, all their plots shown', () => {
  const dir = tempDir();
  writeSweepOutputs(syntheticSweep(), dir);
  writeCoordCheckOutputs(syntheticCoordCheck(), dir);
  const page = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
  assert.deepEqual([...page.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]), ['coord-check.sp.svg', 'coord-check.supar.svg', 'sweep.optima.svg', 'sweep.svg']);
  const verdicts = page.match(/<table class="verdicts">[\s\S]*?<\/table>/)![0];
  assert.match(verdicts, /<tr><td>sp<\/td><td class="mono">\/h\.0\/attn\/out<\/td><td>attention<\/td><td class="num">0<\/td><td class="num">2<\/td><td class="num">0<\/td><td class="bad">drifts<\/td><\/tr>/);
  assert.match(verdicts, /<td class="num">1<\/td><td class="num">0<\/td><td class="ok">flat<\/td>/);
  assert.ok(page.includes('<h2>LR sweep (<a href="sweep.json">sweep.json</a>)</h2>'));
  assert.ok(page.includes('<h2>Coordinate check (<a href="coord-check.json">coord-check.json</a>)</h2>'));
});

test('study index of a several-model sweep: an optimum row per (model, density), the model in the run list', () => {
  const base = syntheticSweep();
  const models = [{ label: 'w64.onnx', dModel: 64, nLayers: 2 }, { label: 'w128.onnx', dModel: 128, nLayers: 2 }];
  const res = {
    ...base, options: { ...base.options, models },
    points: models.flatMap((m, k) => base.points.map((p) => ({ ...p, model: m.label, finalLoss: p.finalLoss === null ? null : p.finalLoss + k }))),
    optima: models.flatMap((m, k) => base.optima.map((o) => ({ ...o, model: m.label, finalLoss: o.finalLoss! + k }))),
  };
  const page = studyIndexHtml({ name: 'x', plots: [], data: [], plans: [], results: [{ file: 'sweep.json', kind: 'sweep', result: res }] });
  const optima = page.match(/<table class="optima">[\s\S]*?<\/table>/)![0];
  assert.match(optima, /<tr><td>w64\.onnx<\/td><td class="num">1<\/td><td class="num">2\^-7 \(loss 3\.25\)<\/td>/);
  assert.match(optima, /<tr><td>w128\.onnx<\/td><td class="num">1<\/td><td class="num">2\^-7 \(loss 4\.25\)<\/td>/);
  assert.equal((page.match(/<table class="runs">[\s\S]*?<\/table>/)![0].match(/<tr><td>(sp|supar)<\/td><td>w(64|128)\.onnx<\/td>/g) ?? []).length, 24);
});

test('training page server: 127.0.0.1 only, the graph and parameters as the runner reads them, nothing outside its routes', async () => {
  const dir = tempDir();
  const r = await transform(readModel(GPT), { density: 0.25, emitTrain: true });
  await writeTransformOutputs(r, path.join(dir, 'gpt.supar.onnx'));
  const data = loadTrainPageData(path.join(dir, 'gpt.supar.onnx'));
  const server = await startTrainServer(data, 0);
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const session = await (await fetch(`${server.url}session.json`)).json() as typeof data.session;
    assert.equal(session.vocab, 256);
    assert.deepEqual(session.io.params.map((p) => p.name), r.lrGroups.groups.map((g) => g.name));
    const params = new Float32Array(await (await fetch(`${server.url}params.bin`)).arrayBuffer());
    const inits = new Map(readModel(path.join(dir, 'gpt.supar.onnx')).model.graph!.initializer.map((t) => [t.name, t]));
    for (const p of session.params) assert.deepEqual(params.subarray(p.offset, p.offset + p.length), tensorToFloat32(inits.get(p.name)!, dir), p.name);
    const wasm = await fetch(`${server.url}ort/ort-wasm-simd-threaded.asyncify.wasm`);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.equal(wasm.headers.get('cross-origin-embedder-policy'), 'require-corp');
    for (const bad of ['ort/../package.json', 'ort/%2e%2e%2fpackage.json', 'web/train.html', 'gpt.supar.onnx']) {
      assert.equal((await fetch(`${server.url}${bad}`)).status, 404, bad);
    }
    assert.equal((await fetch(`${server.url}session.json`, { method: 'POST' })).status, 405);
  } finally {
    await server.close();
  }
  fs.rmSync(path.join(dir, 'gpt.supar.train.onnx'));
  assert.throws(() => loadTrainPageData(path.join(dir, 'gpt.supar.onnx')), /gpt\.supar\.onnx: no train graph at .*gpt\.supar\.train\.onnx; transform with --emit-train/);
  assert.throws(() => loadTrainPageData(GPT), /^UserInputError: gpt-tiny\.onnx: not a model written by supar-transform \(no supar\.rules metadata\); run supar-transform gpt-tiny\.onnx --emit-train/);
  const port = await runCli(['serve', path.join(dir, 'gpt.supar.onnx'), '--port', '70000']);
  assert.deepEqual([port.code, port.stderr], [2, 'error: --port 70000: expected a whole number from 0 to 65535\n']);
});
