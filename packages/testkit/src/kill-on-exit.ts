/**
 * The defences against a stray server outliving the test process that started it:
 *
 * - {@link tiedToThisProcess} starts the server under util-linux `setpriv --pdeathsig KILL`, so
 *   the kernel SIGKILLs it when this process dies by any means, a signal included (vitest ends
 *   its workers with one, which runs no `exit` handler). The kernel ties it to the spawning
 *   *thread*: launched from a worker thread, the server dies when that thread ends.
 * - {@link killOnExit} SIGKILLs every registered process from an `exit` handler, for systems
 *   without `setpriv`, where only a normal exit is covered.
 *
 * @packageDocumentation
 */

import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

const registered = new Set<number>();
let installed = false;

function killRegistered(): void {
  for (const pid of registered) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone: exactly what we want.
    }
  }
  registered.clear();
}

/**
 * Registers `pid` to be SIGKILLed when the current process exits. Returns the function that
 * unregisters it (call it once the process has exited, so a recycled pid is never killed).
 */
export function killOnExit(pid: number): () => void {
  if (!installed) {
    // One listener for every process, so many launches never trip MaxListenersExceeded.
    process.on('exit', killRegistered);
    installed = true;
  }
  registered.add(pid);
  return () => {
    registered.delete(pid);
  };
}

/** A command to spawn: the executable and its arguments. */
export interface Command {
  /** The executable. */
  readonly file: string;
  /** Its arguments. */
  readonly args: readonly string[];
}

let setpriv: string | null | undefined;

/**
 * `command` wrapped so the kernel SIGKILLs it once this process dies: `setpriv --pdeathsig KILL
 * -- file args…`. setpriv execs the command, so the pid stays the command's own. Where setpriv
 * (Linux, util-linux ≥ 2.33) is missing, `command` as it is.
 */
export function tiedToThisProcess(command: Command): Command {
  setpriv ??= findSetpriv();
  if (setpriv === null) return command;
  return { file: setpriv, args: ['--pdeathsig', 'KILL', '--', command.file, ...command.args] };
}

function findSetpriv(): string | null {
  if (process.platform !== 'linux') return null;
  for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv']) {
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    // Older setpriv lacks --pdeathsig; ask it once.
    const probe = spawnSync(candidate, ['--pdeathsig', 'KILL', '--', 'true'], {
      stdio: 'ignore',
      timeout: 5_000,
    });
    return probe.status === 0 ? candidate : null;
  }
  return null;
}
