/**
 * `tenure run` finds its command before campaigning, as `execvp` would: a name with a `/` is a
 * path, any other name is looked up on `PATH`. A command that cannot run is then one line of
 * tenure's with the shell's exit code (127 not found, 126 not executable), before any term is
 * taken for it, instead of a message of `setpriv`'s (which execs the command) after the term
 * was taken.
 *
 * @packageDocumentation
 */

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CliError, EXIT } from './exit-codes.js';

/** `execvp`'s search path when `PATH` is unset (glibc). */
const DEFAULT_PATH = '/bin:/usr/bin';

/** What is at `path`: an executable file, something else, or nothing. */
function probe(path: string): 'executable' | 'directory' | 'not-executable' | 'missing' {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path);
  } catch {
    return 'missing';
  }
  if (stats.isDirectory()) return 'directory';
  try {
    accessSync(path, constants.X_OK);
    return stats.isFile() ? 'executable' : 'not-executable';
  } catch {
    return 'not-executable';
  }
}

/**
 * Checks that `file` (a command's first word) can be executed with `env`'s `PATH`. Throws a
 * {@link CliError}: exit 127 when it is not found, 126 when what was found is not executable.
 * The command is still started by its name: this only moves the failure before the campaign.
 */
export function assertRunnable(file: string, env: NodeJS.ProcessEnv = process.env): void {
  const fail = (code: number, why: string) =>
    new CliError(code, `cannot run ${JSON.stringify(file)}: ${why}`);
  if (file.includes('/')) {
    const found = probe(file);
    if (found === 'executable') return;
    if (found === 'missing') throw fail(EXIT.commandNotFound, 'command not found (no such file)');
    throw fail(
      EXIT.cannotExecute,
      found === 'directory'
        ? 'not executable (a directory)'
        : 'not executable (no execute permission)',
    );
  }
  const dirs = (env.PATH ?? DEFAULT_PATH).split(delimiter);
  let notExecutable = false;
  for (const dir of dirs) {
    // An empty entry is the current directory, as for execvp.
    const found = probe(join(dir === '' ? '.' : dir, file));
    if (found === 'executable') return;
    if (found === 'not-executable') notExecutable = true;
  }
  if (notExecutable) {
    throw fail(EXIT.cannotExecute, 'not executable (found on PATH without execute permission)');
  }
  throw fail(EXIT.commandNotFound, 'command not found (not on PATH)');
}
