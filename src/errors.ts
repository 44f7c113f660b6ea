/**
 * Typed errors. A `UserInputError` is the user's to fix (bad file, bad flag): the CLI prints its one-line
 * message and exits with its code, no stack trace. An `InvariantError` is ours: a bug, printed with
 * `--debug` detail.
 */

/** Documented process exit codes (README "Exit codes"). */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  badInput: 3,
  unsupported: 4,
  io: 5,
  runtime: 6,
  strict: 7,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class UserInputError extends Error {
  constructor(message: string, readonly exitCode: ExitCodeValue = ExitCode.badInput) {
    super(message);
    this.name = 'UserInputError';
  }
}

/** A bad command-line flag or flag value. */
export class UsageError extends UserInputError {
  constructor(message: string) {
    super(message, ExitCode.usage);
    this.name = 'UsageError';
  }
}

export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
