/**
 * `supar-transform serve model.supar.onnx [--port 8080]`: serves the browser training page for a model
 * transformed with --emit-train on http://127.0.0.1:PORT/ (localhost only) until interrupted. The page
 * trains the train-step graph with onnxruntime-web (WebGPU, WASM fallback) and plots the loss.
 */
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { UsageError } from '../errors.js';
import { loadTrainPageData, startTrainServer } from '../pages/train-server.js';

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('serve <model>')
    .description('serve a page on 127.0.0.1 that trains the model (transformed with --emit-train) in the browser')
    .option('--port <n>', 'TCP port on 127.0.0.1 (0: any free port)', '8080')
    .action(async (model: string, flags: { port: string }) => {
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${flags.port}: expected a whole number from 0 to 65535`);
      const server = await startTrainServer(loadTrainPageData(model), port);
      process.stdout.write(`serving the training page for ${model} at ${server.url} (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => { void server.close().then(resolve); };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
