/**
 * The child of `tenure run`: one command in a process group of its own (a new session, so a
 * terminal's Ctrl-C reaches tenure alone, which forwards it), started and watched by a runner
 * process ({@link ./child-runner.ts}) that enforces the term's deadline on the group — SIGTERM
 * a grace before it, SIGKILL at it — even while the supervisor is stopped.
 *
 * @packageDocumentation
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { RunnerEvent, RunnerRequest, StopCause } from './child-runner.js';
import { CliError, EXIT } from './exit-codes.js';
import { guardedCommand, type ParentDeathGuard } from './parent-death.js';

/** The runner's script, beside this module once built. */
const RUNNER = fileURLToPath(new URL('./child-runner.js', import.meta.url));

/** How the child ended, as Node reports it. */
export interface ChildExit {
  /** The exit code, when it exited. */
  readonly code: number | null;
  /** The signal that ended it, when one did. */
  readonly signal: NodeJS.Signals | null;
  /**
   * Set when the group was signalled for the term before the child exited: at its deadline
   * (SIGTERM a grace before it, SIGKILL at it), or by a kill request; `runner-died` when the
   * runner itself died and the group was SIGKILLed.
   */
  readonly stoppedBy: StopCause | 'runner-died' | null;
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

/** Thrown by {@link ChildGroup.start} when the term's deadline passed before the child started. */
export class DeadlinePassedError extends Error {
  constructor() {
    super("the term's deadline passed before the command could start");
    this.name = 'DeadlinePassedError';
  }
}

/** What {@link ChildGroup.start} needs besides the command. */
export interface ChildStartOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly guard: ParentDeathGuard;
  /** The term's deadline on `process.hrtime.bigint()`, ns. */
  readonly deadlineNs: bigint;
  /** SIGTERM this long before the deadline, ms. */
  readonly graceMs: number;
  /** Called with each signal the runner sent the group for the term (for log lines). */
  readonly onSignalled?: (event: Extract<RunnerEvent, { event: 'signalled' }>) => void;
}

/** A running child and its process group (the group's id is the child's pid). */
export class ChildGroup {
  /** The child's pid, also its process group's id. */
  readonly pid: number;
  /** Resolves once the child has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  readonly #runner: ChildProcess;
  #exit: ChildExit | undefined;
  #lastDeadlineNs: bigint;

  private constructor(
    runner: ChildProcess,
    pid: number,
    deadlineNs: bigint,
    exited: Promise<ChildExit>,
  ) {
    this.#runner = runner;
    this.pid = pid;
    this.#lastDeadlineNs = deadlineNs;
    this.exited = exited.then((exit) => {
      this.#exit = exit;
      return exit;
    });
  }

  /**
   * Starts the runner, which starts `command` (through the parent-death guard) with `env`,
   * stdin, stdout and stderr shared with tenure, and enforces `deadlineNs` on it. Rejects with
   * a {@link CliError} (127 not found, 126 not executable) when it cannot be started at all,
   * and with {@link DeadlinePassedError} when the deadline passed first.
   */
  static start(command: readonly string[], options: ChildStartOptions): Promise<ChildGroup> {
    const [file, args] = guardedCommand(options.guard, command);
    // A new session: no signal for tenure or its process group (a terminal's Ctrl-Z, a group
    // SIGSTOP) reaches the runner. No environment of the command's (NODE_OPTIONS…) for it.
    const runner = spawn(process.execPath, [RUNNER], {
      env: {},
      stdio: ['pipe', 'pipe', 'inherit', 0, 1],
      detached: true,
    });
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.env)) {
      if (value !== undefined) env[name] = value;
    }
    const request: RunnerRequest = {
      op: 'start',
      file,
      args,
      env,
      deadlineNs: options.deadlineNs.toString(),
      graceMs: options.graceMs,
    };
    return new Promise<ChildGroup>((resolve, reject) => {
      let spawned: { pid: number; resolveExit: (exit: ChildExit) => void } | undefined;
      let reported: ChildExit | undefined;
      const fail = (error: Error) => {
        if (spawned === undefined) reject(error);
      };
      runner.once('error', (error) =>
        fail(
          new CliError(EXIT.software, `cannot start the runner of the command: ${error.message}`, {
            cause: error,
          }),
        ),
      );
      runner.stdin!.on('error', () => {});
      let buffered = '';
      runner.stdout!.setEncoding('utf8');
      runner.stdout!.on('data', (chunk: string) => {
        buffered += chunk;
        for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
          const line = buffered.slice(0, end);
          buffered = buffered.slice(end + 1);
          if (line === '') continue;
          const event = JSON.parse(line) as RunnerEvent;
          switch (event.event) {
            case 'spawned': {
              let resolveExit!: (exit: ChildExit) => void;
              const exited = new Promise<ChildExit>((r) => {
                resolveExit = r;
              });
              spawned = { pid: event.pid, resolveExit };
              resolve(new ChildGroup(runner, event.pid, options.deadlineNs, exited));
              break;
            }
            case 'spawn-error': {
              const notFound = event.code === 'ENOENT';
              fail(
                new CliError(
                  notFound ? EXIT.commandNotFound : EXIT.cannotExecute,
                  `cannot run ${JSON.stringify(command[0])}: ${notFound ? 'command not found' : event.message}`,
                ),
              );
              break;
            }
            case 'expired':
              fail(new DeadlinePassedError());
              break;
            case 'signalled':
              options.onSignalled?.(event);
              break;
            case 'exit':
              reported = { code: event.code, signal: event.signal, stoppedBy: event.stoppedBy };
              break;
          }
        }
      });
      runner.once('close', (code, signal) => {
        if (spawned === undefined) {
          fail(
            new CliError(
              EXIT.software,
              `the runner of the command ended (${code === null ? `signal ${signal}` : `exit code ${code}`}) before starting it`,
            ),
          );
          return;
        }
        if (reported !== undefined) {
          spawned.resolveExit(reported);
          return;
        }
        // The runner died first (killed from outside): its child got the parent-death signal;
        // make sure of the whole group. Its exit status went with the runner.
        try {
          process.kill(-spawned.pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
        spawned.resolveExit({ code: null, signal: 'SIGKILL', stoppedBy: 'runner-died' });
      });
      runner.stdin!.write(`${JSON.stringify(request)}\n`);
    });
  }

  /** How the child ended, once it has. */
  get exit(): ChildExit | undefined {
    return this.#exit;
  }

  /**
   * Moves the deadline the runner enforces to `deadlineNs` (after an acknowledged renewal);
   * an earlier one is ignored.
   */
  extend(deadlineNs: bigint): void {
    if (deadlineNs <= this.#lastDeadlineNs) return;
    this.#lastDeadlineNs = deadlineNs;
    this.#send({ op: 'deadline', deadlineNs: deadlineNs.toString() });
  }

  /** Sends `signal` to every process of the group (through the runner, which tracks SIGSTOP). */
  signal(signal: NodeJS.Signals): void {
    this.#send({ op: 'signal', signal });
  }

  /**
   * Stops the group: SIGTERM now, SIGKILL at the deadline the runner holds (at once if it has
   * passed), and resolves with the child's exit. As a second line of defence (a runner that
   * does not act), SIGKILLs the group itself after `killAfterMs`.
   */
  async stop(killAfterMs: number): Promise<ChildExit> {
    if (this.#exit === undefined) {
      this.#send({ op: 'stop' });
      let timer: NodeJS.Timeout | undefined;
      const backstop = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, killAfterMs);
      });
      await Promise.race([this.exited, backstop]);
      clearTimeout(timer);
      if (this.#exit === undefined) this.kill();
    }
    return this.exited;
  }

  /** SIGKILLs the group at once (through the runner, and directly); resolves with the exit. */
  kill(): Promise<ChildExit> {
    if (this.#exit === undefined) {
      this.#send({ op: 'kill' });
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    return this.exited;
  }

  #send(request: RunnerRequest): void {
    if (this.#exit !== undefined || this.#runner.stdin?.writable !== true) return;
    this.#runner.stdin.write(`${JSON.stringify(request)}\n`);
  }
}
