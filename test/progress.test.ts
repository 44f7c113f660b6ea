import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progress } from '../src/cli/progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 40, write: (s: string) => (writes.push(s), true) } };
}

test('progress draws only on a TTY, throttled, truncated to the width, cleared by done()', () => {
  const pipe = fakeStream(false);
  const p0 = progress('reading', 3, { stream: pipe.stream });
  p0.tick(); p0.done();
  assert.deepEqual(pipe.writes, []);

  const tty = fakeStream(true);
  let clock = 0;
  const p = progress('writing', 4, { stream: tty.stream, intervalMs: 100, now: () => clock });
  p.tick(1, 'w1');           // t=0: drawn
  clock = 50; p.tick(1);      // throttled
  clock = 150; p.tick(1, 'a-very-long-tensor-name-that-does-not-fit'); // drawn, truncated
  clock = 160; p.tick(1);     // last unit: always drawn
  p.done(); p.tick();         // ignored after done
  assert.deepEqual(tty.writes, [
    '\rwriting 1/4 25% w1\x1b[K',
    '\rwriting 3/4 75% a-very-long-tensor-nam…\x1b[K',
    '\rwriting 4/4 100% a-very-long-tensor-na…\x1b[K',
    '\r\x1b[K',
  ]);
  assert.ok(tty.writes.slice(0, 3).every((w) => w.length - '\r\x1b[K'.length <= 39));
});
