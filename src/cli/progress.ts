/**
 * Progress on stderr, only when stderr is a terminal: pipes, CI logs and `--json` consumers see nothing.
 * One line redrawn in place (`\r` + clear-to-end), at most every `intervalMs`, cleared by `done()`.
 *
 * A tiny helper rather than cli-progress: that package pulls in string-width and its ANSI/emoji deps
 * for features (multi-bars, templates, ETA) no command here needs; this is the whole behaviour we use.
 */

export interface Progress {
  /** Records `n` more units done (default 1); `extra` replaces the trailing note (e.g. a tensor name). */
  tick(n?: number, extra?: string): void;
  /** Clears the line; further ticks are ignored. */
  done(): void;
}

export interface ProgressOptions {
  stream?: Pick<NodeJS.WriteStream, 'write' | 'isTTY' | 'columns'>;
  intervalMs?: number;
  /** Clock in ms (tests inject one). */
  now?: () => number;
}

const NOOP: Progress = { tick: () => {}, done: () => {} };

export function progress(label: string, total: number, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (!stream.isTTY) return NOOP;
  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? 100;
  let count = 0;
  let note = '';
  let last = -Infinity;
  let finished = false;
  const render = () => {
    const pct = total > 0 ? ` ${Math.floor((100 * Math.min(count, total)) / total)}%` : '';
    const line = `${label} ${count}/${total}${pct}${note ? ` ${note}` : ''}`;
    const width = Math.max(10, (stream.columns ?? 80) - 1);
    stream.write(`\r${line.length > width ? `${line.slice(0, width - 1)}…` : line}\x1b[K`);
  };
  return {
    tick(n = 1, extra) {
      if (finished) return;
      count += n;
      if (extra !== undefined) note = extra;
      const t = now();
      if (t - last >= interval || count >= total) {
        last = t;
        render();
      }
    },
    done() {
      if (finished) return;
      finished = true;
      stream.write('\r\x1b[K');
    },
  };
}
