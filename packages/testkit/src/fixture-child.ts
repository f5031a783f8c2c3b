/**
 * The parent's side of a fixture process (test/fixtures/*.mjs, the nemesis's and the fault
 * tests' candidates): a Node child tied to this process, its live events (JSON lines on
 * stdout), its commands (`<id> <command>` lines on stdin, answered by a `reply` event), and
 * the signals a test sends it.
 *
 * @packageDocumentation
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { tiedToThisProcess } from './kill-on-exit.js';
import { isProcessGone, processState } from './process-status.js';
import { WaitTimeoutError, waitFor } from './timing.js';

/** One line a fixture printed on stdout. */
export interface FixtureEvent {
  readonly type: string;
  /** Monotonic ms when the child printed it. */
  readonly t: number;
  readonly [field: string]: unknown;
}

/** A fixture running in a child process. */
export class FixtureChild {
  readonly name: string;
  readonly pid: number;
  readonly events: FixtureEvent[] = [];
  /** How it ended, once it has. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** `true` between {@link FixtureChild.pause} and {@link FixtureChild.resume}. */
  paused = false;
  /** `true` once {@link FixtureChild.stop} had to SIGKILL a child that did not exit on `exit`. */
  forcedStop = false;
  /** Called with every event as it arrives. */
  onEvent: ((event: FixtureEvent) => void) | undefined;
  readonly #child: ChildProcess;
  readonly #listeners = new Set<() => void>();
  readonly #exited: Promise<void>;
  #stderr = '';
  #nextId = 1;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    if (child.pid === undefined) throw new Error(`${name} could not be spawned`);
    this.pid = child.pid;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: FixtureEvent;
      try {
        event = JSON.parse(line) as FixtureEvent;
      } catch {
        this.#stderr = `${this.#stderr}(stdout) ${line}\n`.slice(-20_000);
        return;
      }
      this.events.push(event);
      this.onEvent?.(event);
      for (const listener of [...this.#listeners]) listener();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-20_000);
    });
    child.stdin!.on('error', () => {}); // EPIPE after the child died: its exit says it
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const listener of [...this.#listeners]) listener();
        resolve();
      });
    });
  }

  /** Spawns `node script args…` and waits (up to `timeoutMs`) for its `started` event. */
  static async start(
    name: string,
    script: string,
    args: readonly string[],
    options: { cwd: string; timeoutMs: number },
  ): Promise<FixtureChild> {
    const { file, args: argv } = tiedToThisProcess({
      file: process.execPath,
      args: [script, ...args],
    });
    const child = spawn(file, argv, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const started = new FixtureChild(name, child);
    try {
      await started.next((e) => e.type === 'started', {
        timeoutMs: options.timeoutMs,
        what: 'it to start',
      });
    } catch (error) {
      started.kill();
      throw error;
    }
    return started;
  }

  /** Its last 20 kB of stderr. */
  get stderr(): string {
    return this.#stderr;
  }

  /** `true` once the process has exited. */
  get exited(): boolean {
    return this.exit !== undefined;
  }

  /** Resolves with the first event from index `since` on that passes `match`; bounded. */
  next(
    match: (event: FixtureEvent) => boolean,
    options: { timeoutMs: number; what: string; since?: number },
  ): Promise<FixtureEvent> {
    let index = options.since ?? 0;
    return new Promise<FixtureEvent>((resolve, reject) => {
      const check = () => {
        for (; index < this.events.length; index += 1) {
          const event = this.events[index]!;
          if (match(event)) {
            done();
            resolve(event);
            return;
          }
        }
        if (this.exit !== undefined) {
          done();
          reject(
            new Error(
              `${this.name} exited (${JSON.stringify(this.exit)}) before ${options.what}; stderr:\n${this.#stderr}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new WaitTimeoutError(`${this.name}: ${options.what}`, options.timeoutMs));
      }, options.timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** Sends a command line and resolves with its reply (`ok` false: the command failed). */
  command(line: string, timeoutMs: number): Promise<FixtureEvent & { ok: boolean }> {
    return this.send(line)(timeoutMs);
  }

  /**
   * Writes a command now and returns a function that waits for its reply: to a stopped child
   * the command waits in the pipe and runs the moment it wakes.
   */
  send(line: string): (timeoutMs: number) => Promise<FixtureEvent & { ok: boolean }> {
    const id = String(this.#nextId++);
    const since = this.events.length;
    this.#child.stdin!.write(`${id} ${line}\n`);
    return (timeoutMs) =>
      this.next((e) => e.type === 'reply' && e.id === id, {
        timeoutMs,
        what: `the reply to "${line}"`,
        since,
      }) as Promise<FixtureEvent & { ok: boolean }>;
  }

  /** SIGKILL now (a no-op once exited). */
  kill(): void {
    if (this.exit === undefined) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** SIGSTOP, resolving once the kernel reports it stopped. */
  async pause(timeoutMs: number): Promise<void> {
    process.kill(this.pid, 'SIGSTOP');
    this.paused = true;
    await waitFor(() => processState(this.pid) === 'T' || this.exited, {
      timeoutMs,
      what: `${this.name} to stop`,
    });
  }

  /** SIGCONT, resolving once it runs again. */
  async resume(timeoutMs: number): Promise<void> {
    if (this.exit === undefined) process.kill(this.pid, 'SIGCONT');
    this.paused = false;
    await waitFor(() => this.exited || processState(this.pid) !== 'T', {
      timeoutMs,
      what: `${this.name} to continue`,
    });
  }

  /**
   * Asks it to exit (`exit` on stdin, after a SIGCONT if stopped); SIGKILLs it if it has not
   * exited within `timeoutMs`. Resolves once it is gone from the process table.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.exit === undefined) {
      if (this.paused || processState(this.pid) === 'T') {
        try {
          process.kill(this.pid, 'SIGCONT');
        } catch {
          // gone meanwhile
        }
      }
      this.#child.stdin!.write('0 exit\n');
      this.#child.stdin!.end();
      let timer: NodeJS.Timeout | undefined;
      const exited = await Promise.race([
        this.#exited.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (!exited) {
        this.forcedStop = true;
        this.kill();
        await this.#exited;
      }
    }
    await waitFor(() => isProcessGone(this.pid), {
      timeoutMs,
      what: `${this.name} (pid ${this.pid}) to leave the process table`,
    });
  }
}
