/**
 * Worker threads for tensor jobs (tensor-jobs.ts): each job draws from its own seeded streams, so what it
 * writes does not depend on which thread runs it or when. Jobs go out largest first, at most one per thread
 * at a time (memory: a chunk and a mask bitset per thread); each worker writes its job's bytes itself at
 * their offsets in the shared data file descriptor and answers with the report's numbers. The same workers
 * survey external weights for the analysis before any job (`survey`: one read of each, spread over the
 * threads).
 *
 * The worker script is found beside this module: `job-worker.ts` under tsx (tests, `test/cli-entry.ts`; the
 * worker inherits the `--import tsx` of the parent), `job-worker.js` in the built package (dist/).
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { InvariantError, UserInputError, type ExitCodeValue } from '../errors.js';
import type { JobPart, JobStats, SurveyTask, TensorJob, ValueSurveyResult } from './tensor-jobs.js';

export interface PoolTask {
  job: TensorJob;
  fd: number;
  offsets: Partial<Record<JobPart, number>>;
}

/** What a worker is sent: a tensor job to write, or a weight to survey (tensor-jobs.ts `surveySource`). */
export type WorkerMessage = { kind: 'job'; task: PoolTask } | { kind: 'survey'; task: SurveyTask };

/** What a worker answers: the job's numbers or the survey, or its error (a UserInputError keeps its message and exit code). */
export type WorkerReply = { stats: JobStats } | { survey: ValueSurveyResult } | { error: { message: string; user: boolean; exitCode: number } };

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

  /** Runs every tensor job and returns their numbers in the order given. */
  async runAll(tasks: PoolTask[]): Promise<JobStats[]> {
    return this.dispatch(tasks, (t) => t.job.elements, (t) => {
      const { job, transfer } = portable(t.job);
      return { message: { kind: 'job', task: { ...t, job } }, transfer, what: `tensor job '${t.job.name}'` };
    }, (reply) => ('stats' in reply ? reply.stats : undefined));
  }

  /**
   * Surveys every weight (fingerprint and std before) and returns the results in the order given; a survey
   * the data file refuses (missing, short) is undefined, and the others go on.
   */
  async survey(tasks: SurveyTask[]): Promise<(ValueSurveyResult | undefined)[]> {
    return this.dispatch<SurveyTask, ValueSurveyResult | undefined>(tasks, (t) => t.elements,
      (t) => ({ message: { kind: 'survey', task: t }, transfer: [], what: `survey of '${t.name}'` }),
      (reply) => ('survey' in reply ? reply.survey : undefined),
      (e) => (e instanceof UserInputError ? null : e));
  }

  /**
   * Sends each task to the next free worker, largest first (the longest task does not start last while the
   * other threads wait; what a task writes does not depend on when it runs), at most one per thread at a
   * time; the first failure stops the dispatch and is thrown once the running tasks end. `tolerate` maps an
   * error to null (that task's result is left undefined) or to the failure to throw.
   */
  private async dispatch<T, R>(tasks: T[], size: (t: T) => number, send: (t: T) => Outgoing, pick: (r: WorkerReply) => R | undefined, tolerate: (e: unknown) => unknown = (e) => e): Promise<R[]> {
    const results: R[] = new Array(tasks.length);
    const order = tasks.map((_, i) => i).sort((a, b) => size(tasks[b]!) - size(tasks[a]!) || a - b);
    let next = 0;
    let failure: unknown;
    const lane = async (w: Worker) => {
      while (next < order.length && failure === undefined) {
        const i = order[next++]!;
        try {
          const out = send(tasks[i]!);
          const reply = await runOn(w, out);
          const r = pick(reply);
          if (r === undefined) throw new InvariantError(`${out.what}: the worker thread answered another kind of message`);
          results[i] = r;
        } catch (e) {
          const f = tolerate(e);
          if (f !== null) failure ??= f;
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

interface Outgoing { message: WorkerMessage; transfer: ArrayBuffer[]; what: string }

function runOn(w: Worker, out: Outgoing): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const cleanup = () => { w.off('message', onMessage); w.off('error', onError); w.off('exit', onExit); };
    const onMessage = (reply: WorkerReply) => {
      cleanup();
      if ('error' in reply) reject(reply.error.user ? new UserInputError(reply.error.message, reply.error.exitCode as ExitCodeValue) : new InvariantError(reply.error.message));
      else resolve(reply);
    };
    const onError = (e: Error) => { cleanup(); reject(new InvariantError(`${out.what} failed in a worker thread: ${e.message}`)); };
    const onExit = (code: number) => { cleanup(); reject(new InvariantError(`worker thread exited (code ${code}) during ${out.what}`)); };
    w.on('message', onMessage);
    w.once('error', onError);
    w.once('exit', onExit);
    w.postMessage(out.message, out.transfer);
  });
}

/** The job with in-memory source bytes copied out of the model's buffer (a view would clone the whole buffer). */
function portable(job: TensorJob): { job: TensorJob; transfer: ArrayBuffer[] } {
  const src = job.init?.source;
  if (src?.kind !== 'bytes') return { job, transfer: [] };
  const bytes = src.bytes.slice();
  return { job: { ...job, init: { ...job.init!, source: { kind: 'bytes', bytes } } }, transfer: [bytes.buffer as ArrayBuffer] };
}
