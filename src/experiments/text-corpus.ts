/**
 * Real text for the transfer experiment, read at run time from packages the project installs anyway
 * (nothing is copied into the repository):
 *   - TypeScript's standard-library declarations `typescript/lib/lib.es*.d.ts` and `lib.decorators*.d.ts`:
 *     code with long English JSDoc comments (ECMAScript API docs);
 *   - Node's API declarations `@types/node/*.d.ts`: mostly English prose (the Node.js docs as JSDoc),
 *     with code examples.
 * Both are dev dependencies every checkout installs (`npm ci`) to build and test, MIT/Apache-2.0 licensed,
 * and about 3 MB together — enough that a small model cannot memorize them in a short run. The repeated
 * licence header at the top of each TypeScript lib file is dropped. Tokenization is byte-level (vocab 256).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { UserInputError } from '../errors.js';
import { mulberry32 } from '../passes/rng.js';

export interface CorpusFile { path: string; bytes: number }

export interface TextCorpus {
  bytes: Uint8Array;
  files: CorpusFile[];
  description: string;
}

/** Package-relative file lists, in the order they are concatenated (sorted within each package). */
const SOURCES: { pkg: string; dir: string; include: RegExp }[] = [
  { pkg: 'typescript', dir: 'lib', include: /^lib\.(es\d{4}|es5|esnext|decorators)[\w.]*\.d\.ts$/ },
  { pkg: '@types/node', dir: '.', include: /^[\w-]+\.d\.ts$/ },
];

/** Where an installed package lives (its package.json's folder), resolved like `import` would from here. */
export function findPackageDir(pkg: string, from: string = import.meta.url): string | undefined {
  try {
    return path.dirname(createRequire(from).resolve(`${pkg}/package.json`));
  } catch {
    return undefined;
  }
}

/** The corpus files, absolute paths, in a fixed order. */
export function corpusFilePaths(): string[] {
  const out: string[] = [];
  for (const s of SOURCES) {
    const dir = findPackageDir(s.pkg);
    if (!dir) throw new UserInputError(`text corpus: package '${s.pkg}' is not installed; run 'npm ci' in the project first`);
    const full = path.join(dir, s.dir);
    const names = fs.readdirSync(full).filter((n) => s.include.test(n)).sort();
    for (const n of names) out.push(path.join(full, n));
  }
  return out;
}

/** Drops a leading `/*! ... *\/` licence block (repeated verbatim at the top of every TypeScript lib file). */
export function stripLicenceHeader(text: string): string {
  if (!text.startsWith('/*!')) return text;
  const end = text.indexOf('*/');
  return end < 0 ? text : text.slice(end + 2).replace(/^\s+/, '');
}

/** Reads and concatenates the corpus (files separated by a blank line), at most `maxBytes` bytes. */
export function loadTextCorpus(maxBytes = Infinity): TextCorpus {
  const chunks: Buffer[] = [];
  const files: CorpusFile[] = [];
  let total = 0;
  for (const p of corpusFilePaths()) {
    if (total >= maxBytes) break;
    const text = stripLicenceHeader(fs.readFileSync(p, 'utf8'));
    let buf = Buffer.from(text + '\n\n', 'utf8');
    if (total + buf.length > maxBytes) buf = buf.subarray(0, maxBytes - total);
    chunks.push(buf);
    files.push({ path: p, bytes: buf.length });
    total += buf.length;
  }
  const bytes = new Uint8Array(Buffer.concat(chunks));
  const description = `${files.length} files from typescript/lib (lib.es*.d.ts) and @types/node (*.d.ts), ${bytes.length} bytes, byte-level tokens`;
  return { bytes, files, description };
}

export { mulberry32 } from '../passes/rng.js';

export interface TokenBatch {
  /** [batch, seq] token ids (bytes), int64 as ONNX wants them. */
  inputIds: BigInt64Array;
  /** [batch, seq] next-token targets: the window shifted by one. */
  targets: BigInt64Array;
  dims: [number, number];
}

/**
 * A seeded stream of next-token batches: each row is a window of seq + 1 bytes at a uniformly random
 * offset; inputs are bytes 0..seq-1, targets bytes 1..seq. The same seed gives the same batches.
 */
export function byteBatchStream(bytes: Uint8Array, batch: number, seq: number, seed: number): () => TokenBatch {
  if (bytes.length < seq + 2) throw new UserInputError(`text corpus: ${bytes.length} bytes is too short for windows of ${seq + 1}`);
  const rand = mulberry32(seed);
  return () => {
    const inputIds = new BigInt64Array(batch * seq);
    const targets = new BigInt64Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      const start = Math.floor(rand() * (bytes.length - seq - 1));
      for (let t = 0; t < seq; t++) {
        inputIds[b * seq + t] = BigInt(bytes[start + t]);
        targets[b * seq + t] = BigInt(bytes[start + t + 1]);
      }
    }
    return { inputIds, targets, dims: [batch, seq] };
  };
}
