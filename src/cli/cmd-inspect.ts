/** `supar-transform inspect model.onnx`: what is in the model (placeholder until the foundation issue lands). */
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { readModel } from '../onnx/codec.js';

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('inspect <model>')
    .description('print IR version, opsets, producer, op histogram, initializers, inputs and outputs')
    .option('--json', 'print JSON instead of text')
    .action((file: string) => {
      const { model } = readModel(file);
      process.stdout.write(`ir_version ${model.irVersion}\n`);
    });
}
