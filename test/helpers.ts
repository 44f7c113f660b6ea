/** Shared test helpers: where the repository and its fixtures are, temp dirs. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Third-party ONNX models with provenance and licences (fixtures/real/CATALOG.md). */
export const REAL_FIXTURES = path.join(ROOT, 'fixtures', 'real');

export function tempDir(prefix = 'supar-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
