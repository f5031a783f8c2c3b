/**
 * The child of `tenure run`: one command in a process group of its own (a new session, so a
 * terminal's Ctrl-C reaches tenure alone, which forwards it), signalled as a group, stopped with
 * SIGTERM, a grace, then SIGKILL.
 *
 * @packageDocumentation
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { CliError, EXIT } from './exit-codes.js';
import { guardedCommand, type ParentDeathGuard } from './parent-death.js';

/** How the child ended, as Node reports it. */
export interface ChildExit {
  /** The exit code, when it exited. */
  readonly code: number | null;
  /** The signal that ended it, when one did. */
  readonly signal: NodeJS.Signals | null;
}

/** The exit code a shell would report for `exit`: the code, or 128 + the signal's number. */
export function exitCodeOf(exit: ChildExit): number {
  if (exit.code !== null) return exit.code;
  const number = exit.signal === null ? undefined : constants.signals[exit.signal];
  return number === undefined ? EXIT.software : 128 + number;
}

/** `exit` in words, for log lines. */
export function describeExit(exit: ChildExit): string {
  return exit.code !== null ? `exit code ${exit.code}` : `signal ${exit.signal ?? 'unknown'}`;
}

/** A running child and its process group (the group's id is the child's pid). */
export class ChildGroup {
  /** The child's pid, also its process group's id. */
  readonly pid: number;
  /** Resolves once the child has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  #exit: ChildExit | undefined;

  private constructor(child: ChildProcess, pid: number) {
    this.pid = pid;
    this.exited = new Promise<ChildExit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  /**
   * Starts `command` (through the parent-death guard) with `env`, stdin, stdout and stderr
   * shared with tenure. Rejects with a {@link CliError} (127 not found, 126 not executable)
   * when it cannot be started at all.
   */
  static start(
    command: readonly string[],
    env: NodeJS.ProcessEnv,
    guard: ParentDeathGuard,
  ): Promise<ChildGroup> {
    const [file, args] = guardedCommand(guard, command);
    const child = spawn(file, args, { env, stdio: 'inherit', detached: true });
    return new Promise<ChildGroup>((resolve, reject) => {
      child.once('spawn', () => {
        child.removeAllListeners('error');
        // Later errors (a failed kill) are handled where signals are sent.
        child.on('error', () => {});
        resolve(new ChildGroup(child, child.pid!));
      });
      child.once('error', (error: NodeJS.ErrnoException) => {
        const notFound = error.code === 'ENOENT';
        reject(
          new CliError(
            notFound ? EXIT.commandNotFound : EXIT.cannotExecute,
            `cannot run ${JSON.stringify(command[0])}: ${notFound ? 'command not found' : error.message}`,
            { cause: error },
          ),
        );
      });
    });
  }

  /** How the child ended, once it has. */
  get exit(): ChildExit | undefined {
    return this.#exit;
  }

  /** Sends `signal` to every process of the group; a group already gone is not an error. */
  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /**
   * Stops the group: SIGTERM, then SIGKILL once `killAfterMs` has passed (at once for 0), and
   * resolves with the child's exit. Whatever of the group is left once the child has exited
   * (its own children) is SIGKILLed too: nothing of it outlives the term.
   */
  async stop(killAfterMs: number): Promise<ChildExit> {
    if (this.#exit === undefined) {
      if (killAfterMs > 0) {
        this.signal('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, killAfterMs);
        });
        await Promise.race([this.exited, graceOver]);
        clearTimeout(timer);
      }
      if (this.#exit === undefined) this.signal('SIGKILL');
    }
    const exit = await this.exited;
    this.killLeftovers();
    return exit;
  }

  /**
   * SIGKILLs whatever is left of the group once the child has exited (processes it started in
   * the background): nothing of it may run on after the term. Call it right after the exit.
   */
  killLeftovers(): void {
    this.signal('SIGKILL');
  }
}
