/**
 * The static server behind `supar-transform serve model.supar.onnx`: a page that trains the transformed
 * model in the browser with onnxruntime-web (WebGPU, WASM fallback). It listens on 127.0.0.1 only and
 * serves nothing but:
 *   /                 web/train.html        /train.js      web/train.js (the page's script)
 *   /session.json     the train graph's TrainIO (its `supar.train_io` metadata), the LR groups, the layout
 *                     of /params.bin, the vocabulary and the default batch shape
 *   /train.onnx       the train-step graph written by `--emit-train` (model.supar.train.onnx)
 *   /params.bin       the initial parameters (float32, little-endian, concatenated in TrainIO order) read
 *                     from the forward model's initializers, as the Node runner reads them
 *   /ort/<file>       onnxruntime-web's dist files (scripts and wasm) from node_modules
 * The page loads nothing from elsewhere. Responses carry COOP/COEP so the page is cross-origin isolated
 * (onnxruntime-web's threaded WASM needs SharedArrayBuffer).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, InvariantError, UserInputError } from '../errors.js';
import { readModel } from '../onnx/codec.js';
import { isExternal } from '../onnx/external.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { findValueShape } from '../train/graph-util.js';
import { findTokenInput, trainIOFromMetadata } from '../train/runner.js';
import type { TrainIO } from '../train/train-step.js';
import { outputPaths } from '../transform.js';

export interface TrainSession {
  format: 'supar-train-page/1';
  model: string;
  io: TrainIO;
  lrGroups: unknown;
  /** Where each parameter's float32 values sit in /params.bin (element offsets). */
  params: { name: string; shape: number[]; offset: number; length: number }[];
  vocab: number;
  defaults: { batch: number; seq: number; fixedBatch: boolean; fixedSeq: boolean; lr: number };
}

export interface TrainPageData {
  session: TrainSession;
  trainOnnx: Uint8Array;
  params: Uint8Array;
}

/** Reads the forward model, its train graph and LR groups (the files `--emit-train` writes beside it). */
export function loadTrainPageData(modelPath: string): TrainPageData {
  const files = outputPaths(modelPath);
  const label = path.basename(modelPath);
  if (!fs.existsSync(files.model)) throw new UserInputError(`${label}: no such model (${files.model}); check the path`, ExitCode.io);
  const forward = readModel(files.model);
  if (!forward.model.metadataProps.some((p) => p.key === 'supar.rules')) {
    throw new UserInputError(`${label}: not a model written by supar-transform (no supar.rules metadata); run supar-transform ${label} --emit-train and serve the .supar.onnx it writes`);
  }
  if (!fs.existsSync(files.train)) {
    throw new UserInputError(`${label}: no train graph at ${files.train}; transform with --emit-train (supar-transform <original>.onnx --emit-train) to write ${path.basename(files.train)}`, ExitCode.io);
  }
  const train = readModel(files.train);
  if (train.model.graph?.initializer.some(isExternal)) {
    throw new UserInputError(`${path.basename(files.train)}: its tensors are in an external data file, which the browser page cannot load; serve a model under 1.8 GiB written with --external-data never`, ExitCode.unsupported);
  }
  const io = trainIOFromMetadata(train.model, files.train);
  const inits = new Map(forward.model.graph?.initializer.map((t) => [t.name, t]) ?? []);
  const layout: TrainSession['params'] = [];
  let offset = 0;
  for (const p of io.params) {
    const length = p.shape.reduce((a, b) => a * b, 1);
    layout.push({ name: p.name, shape: p.shape, offset, length });
    offset += length;
  }
  const values = new Float32Array(offset);
  for (const l of layout) {
    const t = inits.get(l.name);
    if (!t) throw new UserInputError(`${label}: parameter '${l.name}' of the train graph is not an initializer of the model; re-run the transform with --emit-train`);
    values.set(tensorToFloat32(t, forward.baseDir), l.offset);
  }
  const lrGroups = fs.existsSync(files.lrGroups) ? JSON.parse(fs.readFileSync(files.lrGroups, 'utf8')) as unknown : null;
  const session: TrainSession = {
    format: 'supar-train-page/1', model: label, io, lrGroups, params: layout,
    vocab: vocabOf(forward.model.graph!, io), defaults: defaultShape(io),
  };
  return { session, trainOnnx: fs.readFileSync(files.train), params: new Uint8Array(values.buffer) };
}

function vocabOf(graph: Parameters<typeof findValueShape>[0], io: TrainIO): number {
  const v = findValueShape(graph, io.output)?.at(-1);
  if (typeof v !== 'number') throw new UserInputError(`output '${io.output}' has no fixed last dimension; the page cannot tell the vocabulary size`);
  return v;
}

/** As the `train` command: the token input's fixed sizes, else batch 8 and seq 64. */
function defaultShape(io: TrainIO): TrainSession['defaults'] {
  const [b, s] = findTokenInput(io).shape;
  return { batch: typeof b === 'number' ? b : 8, seq: typeof s === 'number' ? s : 64, fixedBatch: typeof b === 'number', fixedSeq: typeof s === 'number', lr: 1e-3 };
}

/** web/ of the package: two levels above src/pages/ (tsx) or three above dist/src/pages/. */
export function findWebDir(from = import.meta.url): string {
  for (const rel of ['../../web/', '../../../web/']) {
    const dir = fileURLToPath(new URL(rel, from));
    if (fs.existsSync(path.join(dir, 'train.html'))) return dir;
  }
  throw new InvariantError(`web/train.html not found two or three levels above ${fileURLToPath(from)}; the package is incomplete, reinstall it`);
}

/** onnxruntime-web's dist folder in node_modules. */
export function findOrtWebDir(): string {
  try {
    return path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web/webgpu'));
  } catch {
    throw new UserInputError('onnxruntime-web is not installed; run npm install in the package folder', ExitCode.io);
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm', '.json': 'application/json; charset=utf-8', '.onnx': 'application/octet-stream', '.bin': 'application/octet-stream',
};

export interface TrainServer {
  url: string;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1:`port` (0 = any free port). */
export async function startTrainServer(data: TrainPageData, port: number): Promise<TrainServer> {
  const web = findWebDir();
  const ortDir = findOrtWebDir();
  const ortFiles = new Set(fs.readdirSync(ortDir).filter((f) => /\.(mjs|js|wasm)$/.test(f)));
  const sessionJson = Buffer.from(`${JSON.stringify(data.session)}\n`);
  const routes = new Map<string, () => Uint8Array>([
    ['/', () => fs.readFileSync(path.join(web, 'train.html'))],
    ['/train.js', () => fs.readFileSync(path.join(web, 'train.js'))],
    ['/session.json', () => sessionJson],
    ['/train.onnx', () => data.trainOnnx],
    ['/params.bin', () => data.params],
  ]);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, headers).end();
      return;
    }
    let body: Uint8Array | undefined;
    let ext = path.extname(url.pathname) || '.html';
    const route = routes.get(url.pathname);
    if (route) body = route();
    else if (url.pathname.startsWith('/ort/') && ortFiles.has(url.pathname.slice('/ort/'.length))) {
      body = fs.readFileSync(path.join(ortDir, url.pathname.slice('/ort/'.length)));
    }
    if (!body) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (url.pathname === '/') ext = '.html';
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[ext] ?? 'application/octet-stream', 'Content-Length': String(body.byteLength) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new UserInputError(`--port ${port}: cannot listen on 127.0.0.1 (${e.code ?? e.message}); choose another port`, ExitCode.io)));
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new InvariantError('server has no TCP address');
  return {
    url: `http://127.0.0.1:${addr.port}/`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
