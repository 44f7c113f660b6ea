/** A worker thread of job-pool.ts: runs one tensor job per message, writing into the shared data file. */
import { parentPort } from 'node:worker_threads';
import { UserInputError } from '../errors.js';
import { writeJob } from './tensor-jobs.js';
import type { PoolTask, WorkerReply } from './job-pool.js';

parentPort!.on('message', (task: PoolTask) => {
  let reply: WorkerReply;
  try {
    reply = { stats: writeJob(task.job, task.fd, task.offsets) };
  } catch (e) {
    const user = e instanceof UserInputError;
    reply = { error: { message: (e as Error).message ?? String(e), user, exitCode: user ? e.exitCode : 1 } };
  }
  parentPort!.postMessage(reply);
});
