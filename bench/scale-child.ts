/**
 * One measured step of bench/scale.ts in its own process, so that its peak RSS is its own:
 *
 *     generate <gb> <model.onnx> <seed>   write the synthetic model (fixtures/llm-builder.ts), progress on stderr
 *     ort-load <model.onnx>               onnxruntime-node InferenceSession.create (CPU EP, default options)
 *     cli <rusage.json> <args...>         the CLI's main() with <args>, as bin/supar-transform.js runs it
 *                                         (mainSeconds: main() alone, without importing the CLI), from the
 *                                         module in SUPAR_SCALE_CLI (dist/ or src/, bench/scale.ts --cli)
 *
 * In `cli`, onnxruntime's InferenceSession.create is wrapped to record each session the CLI opens (the
 * load check of every written graph): when it started, how long it took, and the peak RSS before it, which
 * is the transform's own peak without the check.
 *
 * `generate` and `ort-load` print one JSON line on stdout; `cli` writes its JSON to <rusage.json> (stdout
 * is the CLI's own) and exits with the CLI's exit code. Peak RSS = process.resourceUsage().maxRSS.
 */
import * as fs from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface ChildUsage {
  /** Seconds inside the process (after Node and tsx start-up). */
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
}

function usage(t0: number): ChildUsage {
  const r = process.resourceUsage();
  return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (r.userCPUTime + r.systemCPUTime) / 1e6, peakRssBytes: r.maxRSS * 1024 };
}

export interface SessionMark {
  /** Seconds from the child's start to the create() call, and the call's duration. */
  startSeconds: number;
  seconds: number;
  /** Peak RSS of the process before this create() (maxRSS at the call). */
  peakRssBeforeBytes: number;
}

/** Wraps onnxruntime-node's InferenceSession.create (the module instance the CLI imports too). */
async function recordSessions(t0: number): Promise<SessionMark[]> {
  const ort = await import('onnxruntime-node');
  const marks: SessionMark[] = [];
  const create = ort.InferenceSession.create.bind(ort.InferenceSession) as (...a: unknown[]) => Promise<unknown>;
  (ort.InferenceSession as unknown as { create: (...a: unknown[]) => Promise<unknown> }).create = async (...a: unknown[]) => {
    const start = performance.now();
    const peakRssBeforeBytes = process.resourceUsage().maxRSS * 1024;
    try {
      return await create(...a);
    } finally {
      marks.push({ startSeconds: (start - t0) / 1000, seconds: (performance.now() - start) / 1000, peakRssBeforeBytes });
    }
  };
  return marks;
}

const [step, ...args] = process.argv.slice(2);
const t0 = performance.now();
if (step === 'generate') {
  const { shapeForSize, writeLlmModel } = await import('../fixtures/llm-builder.js');
  const { name, shape } = shapeForSize(Number(args[0]));
  let shown = -1;
  const written = writeLlmModel(shape, args[1]!, {
    seed: Number(args[2] ?? 1),
    onProgress: (done, total) => {
      const tenth = Math.floor((10 * done) / total);
      if (tenth > shown) process.stderr.write(`  generate ${name}: ${10 * tenth} %\n`);
      shown = tenth;
    },
  });
  process.stdout.write(`${JSON.stringify({ name, shape, written, ...usage(t0) })}\n`);
} else if (step === 'ort-load') {
  const ort = await import('onnxruntime-node');
  const t1 = performance.now();
  const session = await ort.InferenceSession.create(args[0]!);
  const createSeconds = (performance.now() - t1) / 1000;
  const u = usage(t0);
  await session.release();
  process.stdout.write(`${JSON.stringify({ createSeconds, ...u })}\n`);
} else if (step === 'cli') {
  const sessions = await recordSessions(t0);
  const cli = process.env.SUPAR_SCALE_CLI;
  const { main } = (await (cli ? import(pathToFileURL(cli).href) : import('../src/cli/main.js'))) as { main: (argv: string[]) => Promise<number> };
  const t1 = performance.now();
  const code = await main(args.slice(1));
  const mainSeconds = (performance.now() - t1) / 1000;
  fs.writeFileSync(args[0]!, JSON.stringify({ code, mainSeconds, sessions, ...usage(t0) }));
  process.exitCode = code;
} else {
  process.stderr.write(`bench/scale-child.ts: unknown step '${step}' (generate, ort-load, cli)\n`);
  process.exitCode = 2;
}
