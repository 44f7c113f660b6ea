/**
 * Sessions for every command (train, coord-check, sweep, benches): the provider resolved from `--ep`, the
 * session options, and which outputs stay on the device (`preferredOutputLocation: 'gpu-buffer'`).
 *
 * onnxruntime-node 1.30 facts this relies on (measured with WebGPU/SwiftShader):
 * - outputs marked 'gpu-buffer' come back as tensors with `location === 'gpu-buffer'`; fed back as inputs
 *   of the next run they are bound without a copy;
 * - such a tensor's `getData()` aborts the process (the node binding has no downloader), so reading one
 *   back goes through a readback session (an Identity whose output is on the CPU; see device-state.ts);
 * - the CUDA provider takes the same option (the binding maps 'gpu-buffer' to the session's device memory);
 *   not run here (no GPU).
 */
import { describeOrtMessage } from '../train/ort-errors.js';
import * as ort from 'onnxruntime-node';
import { ExitCode, UserInputError } from '../errors.js';
import { CUDA_INSTALL_HINT, findWebGpuProblem, firstLine, missingCudaLibraries, webgpuHint, type Ep, type EpChoice } from './providers.js';

export interface SessionRequest {
  ep: EpChoice;
  /** Intra-op threads (default: onnxruntime's choice). */
  threads?: number;
  /** Outputs to keep on the device when the provider is a GPU one. */
  deviceOutputs?: readonly string[];
  /** One-line warnings (fallbacks to another provider). Default: stderr. */
  warn?: (message: string) => void;
  /** One-line notes (which provider `auto` chose). Default: stderr. */
  say?: (message: string) => void;
  /** onnxruntime log level (0 = verbose: node placements on stderr). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** What the graph is, for error messages. */
  label?: string;
}

export interface RuntimeSession {
  session: ort.InferenceSession;
  ep: Ep;
  /** The outputs that come back as device tensors (empty on CPU). */
  deviceOutputs: ReadonlySet<string>;
}

let saidAuto = false;
const stderr = (prefix: string) => (m: string) => process.stderr.write(`${prefix}${m}\n`);

/** Opens `bytes` on the requested provider; `auto` tries cuda, then webgpu, then cpu. */
export async function openSession(bytes: Uint8Array, req: SessionRequest): Promise<RuntimeSession> {
  const warn = req.warn ?? stderr('warning: ');
  const label = req.label ?? 'the graph';
  const order: Ep[] = req.ep === 'auto' ? ['cuda', 'webgpu', 'cpu'] : [req.ep];
  const skipped: string[] = [];
  for (const ep of order) {
    const why = await unavailable(ep);
    if (why) {
      if (req.ep !== 'auto') throw new UserInputError(`--ep ${ep}: ${why}; or use --ep cpu`, ExitCode.runtime);
      skipped.push(`${ep}: ${why}`);
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(bytes, sessionOptions(ep, req));
      if (req.ep === 'auto' && !saidAuto) (req.say ?? stderr(''))(`--ep auto: running on ${ep}${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
      saidAuto ||= req.ep === 'auto';
      return { session, ep, deviceOutputs: new Set(ep === 'cpu' ? [] : req.deviceOutputs ?? []) };
    } catch (e) {
      const msg = firstLine((e as Error).message);
      if (ep === 'cpu') throw new UserInputError(`onnxruntime rejected ${label}: ${describeOrtMessage((e as Error)?.message ?? String(e))}`, ExitCode.runtime);
      if (req.ep !== 'auto') throw new UserInputError(`--ep ${ep}: onnxruntime could not open ${label} (${msg})${ep === 'cuda' ? `; check CUDA 12 and cuDNN 9 are on the library path (install: ${CUDA_INSTALL_HINT})` : ''}; or use --ep cpu`, ExitCode.runtime);
      warn(`${ep} failed to open ${label} (${msg}); trying the next provider`);
      skipped.push(`${ep}: failed to open`);
    }
  }
  throw new UserInputError(`no execution provider could open ${label}`, ExitCode.runtime);
}

/** Why `ep` cannot run here, or undefined. */
export async function unavailable(ep: Ep): Promise<string | undefined> {
  if (ep === 'cpu') return undefined;
  if (ep === 'cuda') {
    const missing = missingCudaLibraries();
    return missing && `onnxruntime-node's CUDA provider is not installed (${missing}); install it with ${CUDA_INSTALL_HINT}`;
  }
  const problem = await findWebGpuProblem();
  return problem && `no WebGPU adapter (${problem}); ${webgpuHint()}`;
}

/** The session options every command uses on `ep`. */
export function sessionOptions(ep: Ep, req: Pick<SessionRequest, 'threads' | 'deviceOutputs' | 'logSeverityLevel'>): ort.InferenceSession.SessionOptions {
  const device = ep !== 'cpu' && req.deviceOutputs?.length ? { preferredOutputLocation: Object.fromEntries(req.deviceOutputs.map((n) => [n, 'gpu-buffer' as const])) } : {};
  return {
    graphOptimizationLevel: 'all',
    executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'],
    ...(req.threads ? { intraOpNumThreads: req.threads, interOpNumThreads: 1 } : {}),
    ...(req.logSeverityLevel !== undefined ? { logSeverityLevel: req.logSeverityLevel } : {}),
    ...device,
  };
}
