/**
 * Child process of the corpus test: runs the stages (test/corpus-harness.ts) on every file of one shard and prints
 * one `@@RESULT {file, stages}` line per file. The CLI runs in-process here, its stdout captured, which a test
 * process cannot do (node --test reads the test's own stdout).
 */
import { corpusFiles, runStages } from './corpus-harness.js';

const [shard, shards] = process.argv.slice(2).map(Number) as [number, number];
for (const [i, { entry, truth }] of corpusFiles().entries()) {
  if (i % shards !== shard) continue;
  const stages = await runStages(entry, truth);
  process.stdout.write(`\n@@RESULT ${JSON.stringify({ file: entry.file, stages })}\n`);
}
