/**
 * The exit codes of the `tenure` command (docs/cli.md lists them). tenure's own failures use
 * the BSD `sysexits.h` numbers, so they stay apart from the small codes commands usually exit
 * with; `tenure run` passes its child's code through unchanged.
 *
 * @packageDocumentation
 */

/** Every exit code `tenure` itself chooses. */
export const EXIT = Object.freeze({
  /** Done. */
  ok: 0,
  /** Nothing to show: `leader` on an empty election, `history` of a job with no record. */
  notFound: 1,
  /** Bad command line: unknown command or option, missing `--`, bad URL or duration (EX_USAGE). */
  usage: 64,
  /** The arbitrator did not answer within `--timeout` (EX_UNAVAILABLE). */
  unavailable: 69,
  /** An unexpected failure inside tenure (EX_SOFTWARE). */
  software: 70,
  /** `tenure run --once`: the term ended before the child did; the child was stopped (EX_TEMPFAIL). */
  leadershipLost: 75,
  /**
   * `tenure run --wait-timeout`: leadership did not come in time; tenure left the queue without
   * running the command (124, as `timeout(1)` exits when its command times out).
   */
  waitTimeout: 124,
  /** The arbitrator refused us: authentication or permission (EX_NOPERM). */
  permission: 77,
  /** `tenure run`: the command was found but could not be executed (as shells do). */
  cannotExecute: 126,
  /** `tenure run`: the command was not found (as shells do). */
  commandNotFound: 127,
});

/** A failure that ends the command with a one-line message and a chosen exit code. */
export class CliError extends Error {
  /** The process's exit code. */
  readonly exitCode: number;

  constructor(exitCode: number, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A usage error: the command line is wrong, nothing was done. */
export function usageError(message: string): CliError {
  return new CliError(EXIT.usage, message);
}

/**
 * How a command ends: an exit code, or a stop signal to re-raise once everything is closed
 * (the process then dies by that signal, as a program told to stop is expected to).
 */
export type CommandResult = number | { readonly reraise: NodeJS.Signals };
