/** A worker thread of job-pool.ts: runs one tensor job (writing into the shared data file) or one survey per message. */
import { parentPort } from 'node:worker_threads';
import { UserInputError } from '../errors.js';
import { surveySource, writeJob } from './tensor-jobs.js';
import type { WorkerMessage, WorkerReply } from './job-pool.js';

parentPort!.on('message', (message: WorkerMessage) => {
  let reply: WorkerReply;
  try {
    reply = message.kind === 'job'
      ? { stats: writeJob(message.task.job, message.task.fd, message.task.offsets) }
      : { survey: surveySource(message.task) };
  } catch (e) {
    const user = e instanceof UserInputError;
    reply = { error: { message: (e as Error).message ?? String(e), user, exitCode: user ? e.exitCode : 1 } };
  }
  parentPort!.postMessage(reply);
});
