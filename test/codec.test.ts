import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeModel, readModel } from '../src/onnx/codec.js';
import { REAL_FIXTURES } from './helpers.js';

test('every real fixture re-encodes to the same bytes', () => {
  const dir = path.join(REAL_FIXTURES);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx'));
  assert.ok(files.length >= 10);
  for (const f of files) {
    const p = path.join(dir, f);
    const out = encodeModel(readModel(p).model);
    assert.ok(Buffer.from(out).equals(fs.readFileSync(p)), f);
  }
});
