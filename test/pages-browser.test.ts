/**
 * The pages in a real browser: Debian's chromium, headless, driven over the DevTools protocol (test/cdp.ts).
 * - Report page of the fixture GPT and of a Hugging Face export (Gemma 2, which warns): one row per reported
 *   tensor; filtering by each role shows exactly that role's rows; sorting by non-zeros orders them; no console
 *   error; no request outside file://; a full-page screenshot is written to a temp folder (its path is printed).
 * - Training page (`serve`): 5 AdamW steps of the fixture GPT on WASM, and on WebGPU where chromium finds an
 *   adapter (SwiftShader's Vulkan here); the losses equal onnxruntime-node's on the same batches within 1e-4.
 * - Sweep index.html: every SVG the folder holds is shown (loaded, with a size).
 * Where chromium is missing, one test is skipped with that reason (counted as skipped; CI installs it: .ci/run).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { writeSweepOutputs } from '../src/experiments/outputs.js';
import { readModel } from '../src/onnx/codec.js';
import { loadTrainPageData, startTrainServer, type TrainServer } from '../src/pages/train-server.js';
import { createTrainer, feedsForBatch, trainIOFromMetadata } from '../src/train/runner.js';
import { transform, writeTransformOutputs } from '../src/transform.js';
import { Browser, findChromium, type Page } from './cdp.js';
import { ROOT, tempDir } from './helpers.js';
import { syntheticSweep } from './study-fixtures.js';

const CHROMIUM = findChromium();
const SKIP_REASON = 'chromium not installed (apt-get install chromium; CI installs it in .ci/run)';
// WebGPU on SwiftShader's Vulkan (shipped with Debian's chromium) where the machine has no GPU.
const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader', '--disable-vulkan-surface'];
const SHOTS = path.join(os.tmpdir(), 'supar-pages-screenshots');

interface RunOut { ep: string; losses: number[]; notes: string[]; batches: { batch: number; seq: number; input: number[]; target: number[] }[] }

// Without chromium: one skipped test carrying the reason (a skipped suite would not be counted as skipped).
if (!CHROMIUM) test('pages in headless chromium', { skip: SKIP_REASON }, () => {});
else describe('pages in headless chromium', { timeout: 180_000 }, () => {
  let browser: Browser;
  let dir: string;
  before(() => {
    browser = Browser.launch(CHROMIUM!, WEBGPU_FLAGS);
    dir = tempDir('supar-pages-');
  });
  after(async () => {
    await browser?.close();
  });

  /** Transforms `model` into `dir` and opens its report page. */
  async function openReport(model: string, name: string, density: number): Promise<{ page: Page; tensors: { name: string; role: string; rule: string | null; layer: number | null; non_zeros: number }[] }> {
    const r = await transform(readModel(model), { density });
    await writeTransformOutputs(r, path.join(dir, `${name}.supar.onnx`));
    const page = await browser.newPage();
    await page.setViewport(1400, 900);
    await page.goto(pathToFileURL(path.join(dir, `${name}.supar.report.html`)).href);
    return { page, tensors: r.report.tensors };
  }

  /** Names of the visible (laid out) rows after choosing `value` in the filter `id`. */
  const visibleAfterFilter = (page: Page, id: string, value: string) => page.evaluate<string[]>(`(() => {
    const s = document.getElementById(${JSON.stringify(id)});
    s.value = ${JSON.stringify(value)};
    s.dispatchEvent(new Event('change'));
    return Array.from(document.querySelectorAll('#tensors tbody tr')).filter((r) => r.getClientRects().length > 0).map((r) => r.dataset.name);
  })()`);

  for (const [label, file, density] of [['gpt-tiny', path.join(ROOT, 'fixtures', 'gpt-tiny.onnx'), 0.25], ['gemma2_ts', path.join(ROOT, 'fixtures', 'hf', 'gemma2_ts.onnx'), 0.5]] as const) {
    test(`report page of ${label}: a row per tensor, filters by role exact, sorts, no console error, no network`, async (t) => {
      const { page, tensors } = await openReport(file, label, density);
      assert.deepEqual(await visibleAfterFilter(page, 'filter-role', ''), tensors.map((x) => x.name));
      const roles = [...new Set(tensors.map((x) => x.role))];
      assert.ok(roles.length >= 4, roles.join(', '));
      for (const role of roles) {
        assert.deepEqual(await visibleAfterFilter(page, 'filter-role', role), tensors.filter((x) => x.role === role).map((x) => x.name), role);
        assert.equal(await page.evaluate<string>(`document.getElementById('shown-count').textContent`), String(tensors.filter((x) => x.role === role).length));
      }
      await visibleAfterFilter(page, 'filter-role', '');
      // Rule and layer filters combine: layer 0's tensors of the hidden rule.
      const rule = tensors.find((x) => x.role === 'hidden')!.rule!;
      await visibleAfterFilter(page, 'filter-rule', rule);
      const layer0 = tensors.filter((x) => x.rule === rule && x.layer === 0).map((x) => x.name);
      assert.ok(layer0.length > 0 && layer0.length < tensors.filter((x) => x.rule === rule).length);
      assert.deepEqual(await visibleAfterFilter(page, 'filter-layer', '0'), layer0);
      await visibleAfterFilter(page, 'filter-rule', '');
      await visibleAfterFilter(page, 'filter-layer', '');
      const sorted = await page.evaluate<number[]>(`(() => {
        const th = Array.from(document.querySelectorAll('#tensors th')).find((h) => h.textContent === 'non-zeros');
        th.click();
        return Array.from(document.querySelectorAll('#tensors tbody tr')).map((r) => Number(r.cells[th.cellIndex].dataset.v));
      })()`);
      assert.deepEqual(sorted, tensors.map((x) => x.non_zeros).sort((a, b) => a - b));
      const shot = path.join(SHOTS, `report-${label}.png`);
      await page.screenshot(shot, true);
      t.diagnostic(`screenshot: ${shot}`);
      assert.deepEqual(page.errors, []);
      assert.deepEqual(page.requests.filter((u) => !u.startsWith('file://') && !u.startsWith('data:')), []);
    });
  }

  describe('training page', () => {
    let server: TrainServer;
    let page: Page;
    let groups = 0;
    before(async () => {
      const r = await transform(readModel(path.join(ROOT, 'fixtures', 'gpt-tiny.onnx')), { density: 0.25, emitTrain: true });
      await writeTransformOutputs(r, path.join(dir, 'train.supar.onnx'));
      groups = r.lrGroups.groups.length;
      server = await startTrainServer(loadTrainPageData(path.join(dir, 'train.supar.onnx')), 0);
      page = await browser.newPage();
      await page.setViewport(1100, 900);
      await page.goto(server.url);
      await page.evaluate('window.suparTrain.ready');
    });
    after(async () => {
      await server?.close();
    });

    /** The same batches through onnxruntime-node's runner (src/train/runner.ts) from the same files. */
    async function nodeLosses(run: RunOut, lr: number): Promise<number[]> {
      const forward = readModel(path.join(dir, 'train.supar.onnx'));
      const trainer = await createTrainer({ train: path.join(dir, 'train.supar.train.onnx'), forward });
      const io = trainIOFromMetadata(readModel(path.join(dir, 'train.supar.train.onnx')).model, 'train');
      const losses: number[] = [];
      for (const b of run.batches) {
        const batch = { batch: b.batch, seq: b.seq, input: BigInt64Array.from(b.input, BigInt), target: BigInt64Array.from(b.target, BigInt) };
        losses.push((await trainer.step(feedsForBatch(io, batch), lr)).loss);
      }
      await trainer.release();
      return losses;
    }

    for (const backend of ['wasm', 'webgpu'] as const) {
      test(`trains 5 steps on ${backend}; losses equal onnxruntime-node's within 1e-4`, async (t) => {
        if (backend === 'webgpu') {
          const adapter = await page.evaluate<boolean>(`navigator.gpu ? navigator.gpu.requestAdapter().then((a) => !!a) : false`);
          if (!adapter) { t.skip('chromium found no WebGPU adapter'); return; }
        }
        const lr = 2 ** -8;
        const run = await page.evaluate<RunOut>(`window.suparTrain.run({ steps: 5, lr: ${lr}, batch: 2, seq: 16, backend: '${backend}', seed: 1 })`);
        assert.equal(run.ep, backend, run.notes.join('; '));
        assert.equal(run.losses.length, 5);
        const expected = await nodeLosses(run, lr);
        t.diagnostic(`${backend}: ${run.losses.map((x) => x.toFixed(6)).join(' ')}; node: ${expected.map((x) => x.toFixed(6)).join(' ')}`);
        for (let i = 0; i < 5; i++) assert.ok(Math.abs(run.losses[i]! - expected[i]!) <= 1e-4, `step ${i + 1}: ${run.losses[i]} vs ${expected[i]}`);
        assert.ok(expected[4]! < expected[0]!, 'the loss goes down');
        assert.deepEqual(page.errors, []);
        assert.deepEqual(page.requests.filter((u) => !u.startsWith(server.url)), []);
      });
    }

    test('trains on pasted text: byte tokens in windows of the text, losses as onnxruntime-node\'s; too short a text is refused', async () => {
      const text = 'SµPar keeps the optimal learning rate put as density changes. '.repeat(3);
      const run = await page.evaluate<RunOut>(`window.suparTrain.run({ steps: 2, lr: 1e-3, batch: 2, seq: 8, backend: 'wasm', data: 'text', text: ${JSON.stringify(text)} })`);
      const bytes = Buffer.from(text, 'utf8').toString('latin1');
      for (const b of run.batches) {
        for (let r = 0; r < b.batch; r++) {
          const window = String.fromCharCode(...b.input.slice(r * b.seq, (r + 1) * b.seq), b.target[(r + 1) * b.seq - 1]!);
          assert.ok(bytes.includes(window), window);
        }
      }
      const expected = await nodeLosses(run, 1e-3);
      for (let i = 0; i < 2; i++) assert.ok(Math.abs(run.losses[i]! - expected[i]!) <= 1e-4, `step ${i + 1}: ${run.losses[i]} vs ${expected[i]}`);
      await assert.rejects(page.evaluate(`window.suparTrain.run({ steps: 1, lr: 1e-3, batch: 2, seq: 8, backend: 'wasm', data: 'text', text: 'short' })`),
        /the text has 5 bytes, fewer than seq \+ 1 = 9; paste more text or lower seq/);
    });

    test('the page plots the loss as it trains (Start button)', async (t) => {
      await page.evaluate(`(() => { document.getElementById('steps').value = '3'; document.getElementById('backend').value = 'wasm';
        document.getElementById('batch').value = '2'; document.getElementById('seq').value = '8'; document.getElementById('start').click(); })()`);
      const status = await page.evaluate<string>(`new Promise((resolve) => { const poll = () => { const s = document.getElementById('status').textContent;
        if (s.startsWith('trained') || document.getElementById('error').textContent) resolve(s + document.getElementById('error').textContent); else setTimeout(poll, 100); }; poll(); })`);
      assert.match(status, /^trained 3 steps on wasm \(synthetic count over 16 symbols, batch 2×8/);
      assert.equal(await page.evaluate<number>(`document.querySelector('#chart polyline').getAttribute('points').split(' ').length`), 3);
      assert.equal(await page.evaluate<number>(`document.getElementById('groups-body').rows.length`), groups, 'one row per LR group');
      const shot = path.join(SHOTS, 'train-page.png');
      await page.screenshot(shot, true);
      t.diagnostic(`screenshot: ${shot}`);
      assert.deepEqual(page.errors, []);
    });
  });

  test('sweep index.html shows every plot the folder holds', async (t) => {
    const out = path.join(dir, 'sweep');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'coord-check.supar.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#4e79a7"/></svg>');
    writeSweepOutputs(syntheticSweep(), out);
    const page = await browser.newPage();
    await page.goto(pathToFileURL(path.join(out, 'index.html')).href);
    const images = await page.evaluate<{ src: string; width: number }[]>(`Array.from(document.images).map((i) => ({ src: i.getAttribute('src'), width: i.complete ? i.naturalWidth : 0 }))`);
    const svgs = fs.readdirSync(out).filter((f) => f.endsWith('.svg')).sort();
    assert.deepEqual(images.map((i) => i.src), svgs);
    for (const i of images) assert.ok(i.width > 0, `${i.src} did not load`);
    await page.screenshot(path.join(SHOTS, 'sweep-index.png'), true);
    t.diagnostic(`screenshot: ${path.join(SHOTS, 'sweep-index.png')}`);
    assert.deepEqual(page.errors, []);
    assert.deepEqual(page.requests.filter((u) => !u.startsWith('file://')), []);
  });
});
