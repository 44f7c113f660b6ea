/**
 * A headless Chromium driven over the DevTools protocol for the page tests (test/pages-browser.test.ts).
 *
 * Transport: `--remote-debugging-pipe` (CDP messages as NUL-terminated JSON on file descriptors 3 and 4), so
 * no port to pick or race for, no WebSocket client (Node 20 has none without a flag) and no dependency:
 * puppeteer-core would bring @puppeteer/browsers (yargs, proxy-agent, tar-fs, …) for the ~100 lines below.
 *
 * Each page records what the tests check: console errors and uncaught exceptions, and every URL the page
 * requested (Network.requestWillBeSent).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { tempDir } from './helpers.js';

/** The chromium binary, or undefined (tests that need it skip and say why). */
export function findChromium(): string | undefined {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

type Message = { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string }; sessionId?: string };

export class Browser {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }>();
  private listeners: ((m: Message) => void)[] = [];
  private buffer = '';
  private readonly profile: string;

  private constructor(private readonly child: ChildProcess, profile: string) {
    this.profile = profile;
    const out = child.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => this.receive(chunk));
    child.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited during ${p.method}`));
      this.pending.clear();
    });
  }

  /** Starts headless chromium; `extraArgs` e.g. enable WebGPU on SwiftShader. */
  static launch(binary: string, extraArgs: string[] = []): Browser {
    const profile = tempDir('supar-chromium-');
    const child = spawn(binary, [
      '--headless=new', '--no-sandbox', '--remote-debugging-pipe', `--user-data-dir=${profile}`, '--no-first-run',
      '--no-default-browser-check', '--disable-extensions', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--metrics-recording-only', '--mute-audio', '--disable-dev-shm-usage', ...extraArgs, 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    child.stderr!.resume(); // chromium's own log (dbus noise); not the page's console
    return new Browser(child, profile);
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\0')) >= 0) {
      const m = JSON.parse(this.buffer.slice(0, end)) as Message;
      this.buffer = this.buffer.slice(end + 1);
      if (m.id !== undefined) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p?.reject(new Error(`${p.method}: ${m.error.message}`));
        else p?.resolve(m.result ?? {});
      } else {
        for (const l of this.listeners) l(m);
      }
    }
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const input = this.child.stdio[3] as Writable;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      input.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  on(listener: (m: Message) => void): void {
    this.listeners.push(listener);
  }

  async newPage(): Promise<Page> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId as string);
    await Promise.all(['Runtime.enable', 'Log.enable', 'Network.enable', 'Page.enable'].map((m) => page.send(m)));
    return page;
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      await Promise.race([this.send('Browser.close'), new Promise((r) => setTimeout(r, 2000))]);
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}

export class Page {
  /** Console errors, uncaught exceptions and error log entries, as text. */
  readonly errors: string[] = [];
  /** Every URL the page requested. */
  readonly requests: string[] = [];
  private events: Message[] = [];
  private waiters: { method: string; resolve: (m: Message) => void }[] = [];

  constructor(private readonly browser: Browser, readonly sessionId: string) {
    browser.on((m) => {
      if (m.sessionId !== sessionId) return;
      const p = m.params ?? {};
      if (m.method === 'Runtime.consoleAPICalled' && p.type === 'error') {
        this.errors.push(`console.error: ${(p.args as { value?: unknown; description?: string }[]).map((a) => a.value ?? a.description).join(' ')}`);
      } else if (m.method === 'Runtime.exceptionThrown') {
        const d = p.exceptionDetails as { text: string; exception?: { description?: string } };
        this.errors.push(`exception: ${d.exception?.description ?? d.text}`);
      } else if (m.method === 'Log.entryAdded') {
        const e = p.entry as { level: string; text: string; url?: string };
        if (e.level === 'error') this.errors.push(`log: ${e.text}${e.url ? ` (${e.url})` : ''}`);
      } else if (m.method === 'Network.requestWillBeSent') {
        this.requests.push((p.request as { url: string }).url);
      }
      const i = this.waiters.findIndex((w) => w.method === m.method);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else this.events.push(m);
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.browser.send(method, params, this.sessionId);
  }

  private waitFor(method: string, timeoutMs: number): Promise<Message> {
    const i = this.events.findIndex((e) => e.method === method);
    if (i >= 0) return Promise.resolve(this.events.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${method} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ method, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    });
  }

  /** Navigates and waits for the load event. */
  async goto(url: string, timeoutMs = 15_000): Promise<void> {
    this.events = this.events.filter((e) => e.method !== 'Page.loadEventFired');
    const loaded = this.waitFor('Page.loadEventFired', timeoutMs);
    const r = await this.send('Page.navigate', { url });
    if (r.errorText) throw new Error(`navigate ${url}: ${String(r.errorText)}`);
    await loaded;
  }

  /** Evaluates an expression in the page (awaiting a promise) and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    const ex = r.exceptionDetails as { text: string; exception?: { description?: string } } | undefined;
    if (ex) throw new Error(`evaluate: ${ex.exception?.description ?? ex.text}`);
    return (r.result as { value: T }).value;
  }

  async setViewport(width: number, height: number): Promise<void> {
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
  }

  /** A PNG of the page (full page when `fullPage`). */
  async screenshot(file: string, fullPage = false): Promise<void> {
    const r = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: fullPage });
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.from(r.data as string, 'base64'));
  }
}
