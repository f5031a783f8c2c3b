#!/usr/bin/env node
/**
 * The `tenure` executable: runs the command line, prints a failure as one line on stderr (a
 * JSON line with `--log-format json`; the stack only with `TENURE_DEBUG=1`), and exits with
 * the command's code, or dies by the stop signal it was asked to re-raise.
 *
 * @packageDocumentation
 */

import { formatLogLine, logFormatOf } from './cli-log.js';
import { CliError, type CommandResult, EXIT } from './exit-codes.js';
import { runCli } from './program.js';

function fail(error: unknown): never {
  const cliError =
    error instanceof CliError
      ? error
      : new CliError(
          EXIT.software,
          `unexpected error: ${error instanceof Error ? error.message : String(error)}`,
        );
  if (cliError.message !== '') {
    process.stderr.write(
      formatLogLine(
        logFormatOf(process.argv.slice(2), process.env),
        'error',
        cliError.message.replace(/\s*\n\s*/g, ' '),
        { exitCode: cliError.exitCode },
      ),
    );
  }
  if (process.env.TENURE_DEBUG === '1') {
    const cause = error instanceof CliError ? error.cause : error;
    if (cause instanceof Error && cause.stack) process.stderr.write(`${cause.stack}\n`);
  }
  process.exit(cliError.exitCode);
}

function finish(result: CommandResult): void {
  if (typeof result === 'number') process.exit(result);
  // Our handlers are gone: the signal's default action ends the process. The exit below only
  // runs if something still catches it.
  process.kill(process.pid, result.reraise);
  setTimeout(() => process.exit(128 + (result.reraise === 'SIGINT' ? 2 : 15)), 1_000);
}

process.on('unhandledRejection', fail);
process.on('uncaughtException', fail);

try {
  finish(await runCli(process.argv));
} catch (error) {
  fail(error);
}
