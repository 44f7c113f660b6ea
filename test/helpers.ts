/** Shared test helpers: where ../shared is, temp dirs. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Third-party ONNX models with provenance and licences (fixtures/real/CATALOG.md). */
export const REAL_FIXTURES = path.join(ROOT, 'fixtures', 'real');
/** The read-only shared folder beside the checkout (tests and CI may read it; the product never does). */
export const SHARED = process.env.SUPAR_SHARED ?? path.resolve(ROOT, '..', 'shared');

export function tempDir(prefix = 'supar-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
