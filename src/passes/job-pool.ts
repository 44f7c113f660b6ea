/**
 * Worker threads for tensor jobs (tensor-jobs.ts): each job draws from its own seeded streams, so what it
 * writes does not depend on which thread runs it or when. Jobs go out in file order, at most one per thread
 * at a time (memory: a chunk and a mask bitset per thread); each worker writes its job's bytes itself at
 * their offsets in the shared data file descriptor and answers with the report's numbers.
 *
 * The worker script is found beside this module: `job-worker.ts` under tsx (tests, `test/cli-entry.ts`; the
 * worker inherits the `--import tsx` of the parent), `job-worker.js` in the built package (dist/).
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { InvariantError, UserInputError, type ExitCodeValue } from '../errors.js';
import type { JobPart, JobStats, TensorJob } from './tensor-jobs.js';

export interface PoolTask {
  job: TensorJob;
  fd: number;
  offsets: Partial<Record<JobPart, number>>;
}

/** What a worker answers: the job's numbers, or its error (a UserInputError keeps its message and exit code). */
export type WorkerReply = { stats: JobStats } | { error: { message: string; user: boolean; exitCode: number } };

/** Default thread count: the cores this process may use, at most 8 (each worker costs ~40 MiB of its own). */
export function defaultThreads(): number {
  return Math.max(1, Math.min(8, os.availableParallelism()));
}

export function workerScriptUrl(): URL {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./job-worker${ext}`, import.meta.url);
}

export class JobPool {
  private workers: Worker[] = [];

  constructor(readonly threads: number) {
    if (!(Number.isInteger(threads) && threads >= 1)) throw new InvariantError(`thread count ${threads} must be a whole number >= 1`);
  }

  /** Runs every task (in order of dispatch = order given) and returns their numbers in the same order. */
  async runAll(tasks: PoolTask[]): Promise<JobStats[]> {
    const results: JobStats[] = new Array(tasks.length);
    let next = 0;
    let failure: unknown;
    const lane = async (w: Worker) => {
      while (next < tasks.length && failure === undefined) {
        const i = next++;
        try {
          results[i] = await runOn(w, tasks[i]!);
        } catch (e) {
          failure ??= e;
        }
      }
    };
    const lanes = Math.min(this.threads, tasks.length);
    while (this.workers.length < lanes) this.workers.push(startWorker());
    await Promise.all(this.workers.slice(0, lanes).map(lane));
    if (failure !== undefined) throw failure;
    return results;
  }

  async close(): Promise<void> {
    const ws = this.workers.splice(0);
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

function startWorker(): Worker {
  const url = workerScriptUrl();
  // Under tsx the parent's loader hooks do not reach a worker: the worker registers tsx itself, then imports the script.
  const w = url.pathname.endsWith('.ts')
    ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((api) => { api.register(); return import(${JSON.stringify(url.href)}); });`, { eval: true })
    : new Worker(url);
  w.unref();
  return w;
}

function runOn(w: Worker, task: PoolTask): Promise<JobStats> {
  return new Promise((resolve, reject) => {
    const cleanup = () => { w.off('message', onMessage); w.off('error', onError); w.off('exit', onExit); };
    const onMessage = (reply: WorkerReply) => {
      cleanup();
      if ('stats' in reply) resolve(reply.stats);
      else reject(reply.error.user ? new UserInputError(reply.error.message, reply.error.exitCode as ExitCodeValue) : new InvariantError(reply.error.message));
    };
    const onError = (e: Error) => { cleanup(); reject(new InvariantError(`tensor job '${task.job.name}' failed in a worker thread: ${e.message}`)); };
    const onExit = (code: number) => { cleanup(); reject(new InvariantError(`worker thread exited (code ${code}) during tensor job '${task.job.name}'`)); };
    w.on('message', onMessage);
    w.once('error', onError);
    w.once('exit', onExit);
    const { job, transfer } = portable(task.job);
    w.postMessage({ ...task, job }, transfer);
  });
}

/** The job with in-memory source bytes copied out of the model's buffer (a view would clone the whole buffer). */
function portable(job: TensorJob): { job: TensorJob; transfer: ArrayBuffer[] } {
  const src = job.init?.source;
  if (src?.kind !== 'bytes') return { job, transfer: [] };
  const bytes = src.bytes.slice();
  return { job: { ...job, init: { ...job.init!, source: { kind: 'bytes', bytes } } }, transfer: [bytes.buffer as ArrayBuffer] };
}
