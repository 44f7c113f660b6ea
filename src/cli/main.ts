/**
 * CLI entry: parses arguments (commander), runs a command, maps errors to one line and an exit code.
 * Each command lives in its own module under src/cli/ and registers itself in `COMMANDS` below.
 */
import { Command, CommanderError } from 'commander';
import { ExitCode, InvariantError, UserInputError } from '../errors.js';
import { VERSION } from '../version.js';

export interface CliContext {
  debug: boolean;
}

/** A command module: adds its subcommand to the program. */
export type RegisterCommand = (program: Command, ctx: CliContext) => void;

async function loadCommands(): Promise<RegisterCommand[]> {
  // Lazy imports keep `--help` and `inspect` fast (onnxruntime-node loads only where a command needs it).
  const mods = await Promise.all([
    import('./cmd-inspect.js'),
    import('./cmd-coord-check.js'),
    import('./cmd-sweep.js'),
    import('./cmd-transform.js'),
    import('./cmd-train.js'),
    import('./cmd-report.js'),
    import('./cmd-serve.js'),
    import('./cmd-run.js'),
    import('./cmd-merge.js'),
  ]);
  return mods.map((m) => m.register);
}

export async function main(argv: string[]): Promise<number> {
  const ctx: CliContext = { debug: argv.includes('--debug') };
  const program = new Command('supar-transform')
    .description('Sparse maximal update parameterization (SµPar) compiler for ONNX models')
    .version(VERSION, '-V, --version')
    .option('--debug', 'print stack traces on errors')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    for (const register of await loadCommands()) register(program, ctx);
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (e) {
    return reportError(e, ctx);
  }
}

/** One line on stderr, a distinct exit code; the stack only with --debug. */
export function reportError(e: unknown, ctx: CliContext): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.ok;
    return ExitCode.usage; // commander has already printed its one-line message
  }
  if (e instanceof UserInputError) {
    process.stderr.write(`error: ${e.message}\n`);
    if (ctx.debug) process.stderr.write(`${e.stack}\n`);
    return e.exitCode;
  }
  const err = e as Error;
  const kind = e instanceof InvariantError ? 'internal error' : 'unexpected error';
  process.stderr.write(`${kind}: ${err?.message ?? String(e)} (please report it; rerun with --debug for details)\n`);
  if (ctx.debug && err?.stack) process.stderr.write(`${err.stack}\n`);
  return ExitCode.internal;
}
