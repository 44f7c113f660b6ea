// The browser training page's script (served by `supar-transform serve`; see src/pages/train-server.ts).
// It runs the train-step graph with onnxruntime-web exactly as the Node runner (src/train/runner.ts) runs it
// with onnxruntime-node: parameters from /params.bin and zero Adam moments are fed, each step's `P.new` and
// moment outputs become the next step's inputs, `step` is t (int64, from 1), `lr` the base LR (each group's
// multiplier is inside the graph). Feeds for a token batch follow feedsForBatch (src/train/runner.ts): the
// first integer model input gets the tokens, `*mask*` inputs ones, integer `*position*` inputs 0..seq-1 per
// row, other inputs zeros; symbolic dims take the token input's batch/seq, other symbolic dims 0.
import * as ort from '/ort/ort.webgpu.min.mjs';

const DT = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 };

ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
ort.env.logLevel = 'error';

const $ = (id) => document.getElementById(id);

/** mulberry32: a small seeded generator for the page's batches (uniform in [0, 1)). */
function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A batch source: next() gives {batch, seq, input, target} with [batch, seq] BigInt64Array token ids. */
function syntheticCount(vocab, batch, seq, seed) {
  // As `--data synthetic:count`: x[i+1] = (x[i] + 1) mod symbols, a random start per row.
  const symbols = Math.min(16, vocab);
  const rand = seededRandom(seed);
  return {
    description: `synthetic count over ${symbols} symbols`,
    next() {
      const input = new BigInt64Array(batch * seq);
      const target = new BigInt64Array(batch * seq);
      for (let b = 0; b < batch; b++) {
        const start = Math.floor(rand() * symbols);
        for (let i = 0; i < seq; i++) {
          input[b * seq + i] = BigInt((start + i) % symbols);
          target[b * seq + i] = BigInt((start + i + 1) % symbols);
        }
      }
      return { batch, seq, input, target };
    },
  };
}

function textSource(text, vocab, batch, seq, seed) {
  const tokens = new TextEncoder().encode(text);
  if (vocab < 256) throw new Error(`the model's vocabulary (${vocab}) is smaller than 256 byte tokens; train it on the synthetic task`);
  if (tokens.length < seq + 1) throw new Error(`the text has ${tokens.length} bytes, fewer than seq + 1 = ${seq + 1}; paste more text or lower seq`);
  const rand = seededRandom(seed);
  return {
    description: `pasted text (${tokens.length} bytes)`,
    next() {
      const input = new BigInt64Array(batch * seq);
      const target = new BigInt64Array(batch * seq);
      for (let b = 0; b < batch; b++) {
        const o = Math.floor(rand() * (tokens.length - seq));
        for (let i = 0; i < seq; i++) {
          input[b * seq + i] = BigInt(tokens[o + i]);
          target[b * seq + i] = BigInt(tokens[o + i + 1]);
        }
      }
      return { batch, seq, input, target };
    },
  };
}

function tokenInput(io) {
  const v = io.modelInputs.find((x) => x.elemType === DT.INT64 || x.elemType === DT.INT32);
  if (!v) throw new Error(`the model has no integer token input (inputs: ${io.modelInputs.map((x) => x.name).join(', ')})`);
  return v;
}

function intTensor(elemType, values, dims) {
  if (elemType === DT.INT32) return new ort.Tensor('int32', Int32Array.from(values, Number), dims);
  return new ort.Tensor('int64', values, dims);
}

function numericTensor(elemType, values, dims) {
  switch (elemType) {
    case DT.INT64: return new ort.Tensor('int64', BigInt64Array.from(values, (x) => BigInt(x)), dims);
    case DT.INT32: return new ort.Tensor('int32', Int32Array.from(values), dims);
    case DT.BOOL: return new ort.Tensor('bool', Uint8Array.from(values), dims);
    case DT.FLOAT: return new ort.Tensor('float32', Float32Array.from(values), dims);
    default: throw new Error(`model input of element type ${elemType} cannot be filled for training`);
  }
}

/** The model inputs and targets for one token batch (the page's copy of feedsForBatch). */
export function feedsForBatch(io, batch) {
  const tok = tokenInput(io);
  const [bDim, sDim] = tok.shape;
  const resolve = (d, i) => (typeof d === 'number' ? d : d === bDim ? batch.batch : d === sDim ? batch.seq : i === 0 ? batch.batch : 0);
  const feeds = {};
  for (const v of io.modelInputs) {
    if (v === tok) {
      feeds[v.name] = intTensor(v.elemType, batch.input, [batch.batch, batch.seq]);
      continue;
    }
    const dims = v.shape.map(resolve);
    const n = dims.reduce((a, b) => a * b, 1);
    const values = new Float64Array(n);
    if (/mask/i.test(v.name)) values.fill(1);
    else if (/position/i.test(v.name) && v.elemType !== DT.FLOAT) for (let i = 0; i < n; i++) values[i] = i % batch.seq;
    feeds[v.name] = numericTensor(v.elemType, values, dims);
  }
  feeds[io.targets.name] = intTensor(io.targets.elemType, io.nextToken ? batch.input : batch.target, [batch.batch, batch.seq]);
  return feeds;
}

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}

async function webgpuAdapter() {
  if (!('gpu' in navigator)) return null;
  try { return await navigator.gpu.requestAdapter(); } catch { return null; }
}

/** A session on the first backend that works: WebGPU (when an adapter exists), else WASM. */
async function openSession(bytes, backend, io, notes) {
  const order = backend === 'auto' ? ['webgpu', 'wasm'] : [backend];
  for (const ep of order) {
    if (ep === 'webgpu' && !(await webgpuAdapter())) { notes.push('no WebGPU adapter in this browser'); continue; }
    // logSeverityLevel 3: errors only (onnxruntime's "nodes not assigned to the preferred EP" note is a warning).
    const options = { executionProviders: [ep], graphOptimizationLevel: 'all', logSeverityLevel: 3 };
    // On WebGPU, parameters and moments stay on the device between steps; only the loss comes back.
    if (ep === 'webgpu') options.preferredOutputLocation = Object.fromEntries(outputNames(io).map((n) => [n, n === io.loss ? 'cpu' : 'gpu-buffer']));
    try {
      return { session: await ort.InferenceSession.create(bytes.slice(), options), ep };
    } catch (e) {
      notes.push(`${ep} could not run the train graph: ${e.message ?? e}`);
    }
  }
  throw new Error(`no backend could run the train graph (${notes.join('; ')})`);
}

/** One session per backend choice, kept across runs (the graph is stateless: parameters and moments are fed). */
const sessions = new Map();
function cachedSession(bytes, backend, io) {
  if (!sessions.has(backend)) {
    const notes = [];
    const opening = openSession(bytes, backend, io, notes).then((s) => ({ ...s, notes }));
    sessions.set(backend, opening);
    opening.catch(() => sessions.delete(backend));
  }
  return sessions.get(backend);
}

function outputNames(io) {
  return [io.loss, ...io.params.map((p) => p.updated), ...io.state.map((s) => s.output)];
}

/** Loaded once: the session description, the graph bytes, the initial parameters. */
const assets = (async () => {
  const session = await (await fetchOk('/session.json')).json();
  const graph = new Uint8Array(await (await fetchOk('/train.onnx')).arrayBuffer());
  const params = new Float32Array(await (await fetchOk('/params.bin')).arrayBuffer());
  return { session, graph, params };
})();

let stopRequested = false;

/**
 * Trains `steps` steps; calls onStep(t, loss) after each. Returns {ep, losses, batches, notes, seconds}
 * (batches as plain arrays, so a test can replay them on onnxruntime-node).
 */
async function run(opts, onStep = () => {}) {
  const { session: info, graph, params } = await assets;
  const io = info.io;
  const batch = opts.batch ?? info.defaults.batch;
  const seq = opts.seq ?? info.defaults.seq;
  const seed = opts.seed ?? 0;
  const source = opts.data === 'text' ? textSource(opts.text ?? '', info.vocab, batch, seq, seed) : syntheticCount(info.vocab, batch, seq, seed);
  const opened = await cachedSession(graph, opts.backend ?? 'auto', io);
  const { session, ep } = opened;
  const notes = [...opened.notes];
  const state = new Map();
  for (const p of info.params) state.set(p.name, new ort.Tensor('float32', params.slice(p.offset, p.offset + p.length), p.shape));
  for (const s of io.state) {
    const shape = io.params.find((p) => p.name === s.param).shape;
    state.set(s.input, new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), shape));
  }
  const fetches = outputNames(io);
  const losses = [];
  const batches = [];
  const stepSeconds = [];
  const started = performance.now();
  stopRequested = false;
  try {
    for (let t = 0; t < opts.steps && !stopRequested; t++) {
      const b = source.next();
      batches.push({ batch: b.batch, seq: b.seq, input: Array.from(b.input, Number), target: Array.from(b.target, Number) });
      const feeds = { ...feedsForBatch(io, b), [io.lr]: new ort.Tensor('float32', Float32Array.of(opts.lr), []) };
      if (io.step) feeds[io.step] = new ort.Tensor('int64', BigInt64Array.of(BigInt(t + 1)), []);
      for (const [name, tensor] of state) feeds[name] = tensor;
      const out = await session.run(feeds, fetches);
      const loss = (await out[io.loss].getData())[0];
      const replace = (key, tensor) => {
        const old = state.get(key);
        state.set(key, tensor);
        if (old && old.location === 'gpu-buffer') old.dispose();
      };
      for (const p of io.params) replace(p.name, out[p.updated]);
      for (const s of io.state) replace(s.input, out[s.output]);
      losses.push(loss);
      stepSeconds.push((performance.now() - started) / 1000 - stepSeconds.reduce((a, b) => a + b, 0));
      onStep(t + 1, loss);
      if (!Number.isFinite(loss)) { notes.push(`loss is ${loss} at step ${t + 1}: training diverged; lower the LR`); break; }
    }
  } finally {
    for (const tensor of state.values()) if (tensor.location === 'gpu-buffer') tensor.dispose();
  }
  return { ep, losses, batches, notes, stepSeconds, seconds: (performance.now() - started) / 1000, data: source.description };
}

/** Loss against step as inline SVG: axes, min/max labels, one polyline. */
function drawChart(svg, losses) {
  const W = 900, H = 320, L = 60, R = 16, T = 16, B = 40;
  const finite = losses.filter(Number.isFinite);
  const lo = finite.length ? Math.min(...finite) : 0;
  const hi = finite.length ? Math.max(...finite) : 1;
  const span = hi - lo || 1;
  const x = (i) => L + (losses.length <= 1 ? 0 : (i / (losses.length - 1)) * (W - L - R));
  const y = (v) => T + (1 - (v - lo) / span) * (H - T - B);
  const pts = losses.map((v, i) => (Number.isFinite(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : '')).filter(Boolean).join(' ');
  svg.innerHTML = `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>` +
    `<text x="${L - 6}" y="${T + 4}" text-anchor="end" font-size="11">${hi.toPrecision(4)}</text>` +
    `<text x="${L - 6}" y="${H - B}" text-anchor="end" font-size="11">${lo.toPrecision(4)}</text>` +
    `<text x="${L}" y="${H - B + 16}" font-size="11">1</text><text x="${W - R}" y="${H - B + 16}" text-anchor="end" font-size="11">${losses.length}</text>` +
    `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle" font-size="12">step</text>` +
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle" font-size="12">train loss</text>` +
    `<polyline points="${pts}" fill="none" stroke="#4e79a7" stroke-width="2"/>`;
}

function formOptions() {
  const data = document.querySelector('input[name=data]:checked').value;
  return {
    backend: $('backend').value, steps: Number($('steps').value), lr: Number($('lr').value), batch: Number($('batch').value),
    seq: Number($('seq').value), seed: Number($('seed').value), data, text: $('text').value,
  };
}

async function startFromForm(event) {
  event.preventDefault();
  $('error').textContent = '';
  $('start').disabled = true;
  $('stop').disabled = false;
  const losses = [];
  try {
    const opts = formOptions();
    if (!(opts.lr > 0)) throw new Error('base LR must be a positive number');
    const r = await run(opts, (t, loss) => {
      losses.push(loss);
      drawChart($('chart'), losses);
      $('status').textContent = `step ${t}: loss ${loss.toFixed(4)}`;
    });
    $('status').textContent = `trained ${r.losses.length} steps on ${r.ep} (${r.data}, batch ${opts.batch}×${opts.seq}, AdamW, base LR ${opts.lr}): ` +
      `loss ${r.losses[0]?.toFixed(4)} → ${r.losses.at(-1)?.toFixed(4)}, ${(r.losses.length / r.seconds).toFixed(2)} steps/s` +
      (r.notes.length ? `\n${r.notes.join('\n')}` : '');
  } catch (e) {
    $('error').textContent = String(e.message ?? e);
  } finally {
    $('start').disabled = false;
    $('stop').disabled = true;
  }
}

async function init() {
  try {
    const { session: info } = await assets;
    $('model-name').textContent = info.model;
    const n = info.params.reduce((a, p) => a + p.length, 0);
    $('session-info').textContent = `${info.params.length} trained tensors (${n} parameters), vocabulary ${info.vocab}, ` +
      `loss ${info.io.lossKind} on '${info.io.output}', optimizer ${info.io.optimizer.kind}.`;
    for (const g of info.lrGroups?.groups ?? []) {
      const row = $('groups-body').insertRow();
      for (const v of [g.name, g.role, `[${g.shape.join('×')}]`, g.lr_adam, g.weight_decay, g.density]) row.insertCell().textContent = String(v);
    }
    $('batch').value = String(info.defaults.batch);
    $('seq').value = String(info.defaults.seq);
    $('batch').disabled = info.defaults.fixedBatch;
    $('seq').disabled = info.defaults.fixedSeq;
    $('status').textContent = `ready (${self.crossOriginIsolated ? 'cross-origin isolated, threaded WASM' : 'single-threaded WASM'}; WebGPU ${(await webgpuAdapter()) ? 'adapter found' : 'not available'})`;
  } catch (e) {
    $('error').textContent = `cannot load the model: ${e.message ?? e}`;
  }
}

$('controls').addEventListener('submit', startFromForm);
$('stop').addEventListener('click', () => { stopRequested = true; });
// For automation (tests): the same run() the Start button uses.
window.suparTrain = { run, ready: assets.then(() => true) };
init();
