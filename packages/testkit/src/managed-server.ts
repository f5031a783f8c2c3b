/**
 * The process machinery every server launcher of the testkit shares: spawn a server tied to
 * this process with its output in a log file, wait for it to be ready while failing fast when it
 * exits, kill, pause (SIGSTOP), resume, restart, halt and stop it, and remove its directory.
 * `EtcdProcess` and `ZooKeeperProcess` add only what is specific to their server: the command,
 * the readiness probe, the files and the error type.
 *
 * @packageDocumentation
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '@tenure/core/internal';
import { killOnExit, tiedToThisProcess } from './kill-on-exit.js';
import { releaseLoopbackPorts } from './loopback-ports.js';
import { isProcessGone, processState } from './process-status.js';
import { Timing, waitFor, withTimeout } from './timing.js';

/**
 * Where a launched server is in its life: `starting → running ⇄ paused`, then `exited` (killed
 * or crashed; `restart()` brings it back to `starting`), and finally `stopping → stopped` (data
 * removed; nothing more is possible).
 */
export type LaunchedServerState =
  | 'starting'
  | 'running'
  | 'paused'
  | 'exited'
  | 'stopping'
  | 'stopped';

/**
 * What every server the testkit launches offers (`EtcdNode`, `ZooKeeperNode`). Its ports and
 * data directory stay the same across `kill()` / `restart()`; only `stop()` (or `await using`)
 * releases them.
 */
export interface LaunchedServer extends AsyncDisposable {
  /** The server's name: `etcd-1`, `zk-1`, … */
  readonly name: string;
  /** The pid of the current (or, after it exited, the last) server process. */
  readonly pid: number;
  /** The data directory, removed by `stop()`. */
  readonly dataDir: string;
  /** The file that receives the server's log across restarts. */
  readonly logFile: string;
  /** Where the server is in its life. */
  readonly state: LaunchedServerState;
  /** `true` while the process exists and can run: `starting`, `running` or `paused`. */
  readonly running: boolean;
  /**
   * Sends `signal` (default `SIGKILL`, a crash) and resolves once the process is really gone
   * (reaped, or at least a zombie). The server keeps its ports and data for `restart()`. A
   * no-op when the process has already exited. `SIGSTOP`/`SIGCONT` are refused: use
   * `pause()`/`resume()`.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Freezes the process with SIGSTOP, resolving once the kernel reports it stopped: its sockets
   * stay open but nothing answers, as with a server stuck in a long GC pause or a hung host.
   */
  pause(): Promise<void>;
  /** Lets a paused process run again (SIGCONT), resolving once it is no longer stopped. */
  resume(): Promise<void>;
  /**
   * Kills the process if it runs (SIGKILL), starts the server again on the same ports and data
   * directory, and resolves once it is ready again (healthy, serving). A cluster member is
   * ready only once its cluster has a quorum.
   */
  restart(): Promise<void>;
  /**
   * SIGTERM, then SIGKILL if the process is still there after 5 s; then removes the data
   * directory (and the log file unless `keepLogs`). Idempotent: every call shares one promise.
   */
  stop(): Promise<void>;
  /** The last `lines` lines (default 40) the server logged since its latest start. */
  logTail(lines?: number): string;
  /** The same as {@link LaunchedServer.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The error codes the shared machinery raises; each launcher's error type has them all. */
export type ManagedServerErrorCode = 'EXITED_EARLY' | 'NOT_READY' | 'NOT_GONE' | 'ILLEGAL_STATE';

/** How a server process ended. */
export interface ProcessExit {
  /** Its exit code, or `null` when a signal ended it. */
  readonly code: number | null;
  /** The signal that ended it, or `null`. */
  readonly signal: NodeJS.Signals | null;
  /** Why it could not be spawned at all. */
  readonly error?: Error;
}

/** What to run for one start of a server. */
export interface ServerCommand {
  /** The executable. */
  readonly file: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** Its environment. */
  readonly env: NodeJS.ProcessEnv;
  /** Its working directory. Default: this process's. */
  readonly cwd?: string;
}

/** What a {@link ManagedServer} is told when it is created. */
export interface ManagedServerSetup {
  /** The server's name, for messages. */
  readonly name: string;
  /** Its temporary directory, removed by `stop()`. */
  readonly root: string;
  /** The log file's name inside `root`. */
  readonly logName: string;
  /** How long a start may take to become ready, ms (already scaled). */
  readonly readyTimeoutMs: number;
  /** Keep the log file when stopped. */
  readonly keepLogs: boolean;
}

/** How long `stop()` and `halt()` let a server shut down gracefully before SIGKILL. */
const GRACEFUL_STOP_MS = 5_000;
const POLL_MS = 50;

/**
 * A server process the testkit launched. Internal to the testkit: subclasses are handed out
 * as `EtcdNode` and `ZooKeeperNode`, and the cluster launchers use {@link ManagedServer.launch},
 * {@link ManagedServer.waitUntilReady} and {@link ManagedServer.halt} to move members together.
 */
export abstract class ManagedServer implements LaunchedServer {
  readonly name: string;
  /** The data directory, removed by `stop()`. */
  readonly dataDir: string;
  /** The file that receives the server's output across restarts. */
  readonly logFile: string;
  /** The server's temporary directory. */
  protected readonly root: string;
  readonly #readyTimeoutMs: number;
  readonly #keepLogs: boolean;
  // A server that was never launched counts as exited: `launch()` is its only way forward.
  #state: LaunchedServerState = 'exited';
  #child: ChildProcess | undefined;
  #exit: Promise<ProcessExit> | undefined;
  #lastExit: ProcessExit | undefined;
  #pid = -1;
  #logOffset = 0;
  /** Whether the process of the latest `launch()` became ready. */
  #ready = false;
  #stopping: Promise<void> | undefined;

  protected constructor(setup: ManagedServerSetup) {
    this.name = setup.name;
    this.root = setup.root;
    this.dataDir = join(setup.root, 'data');
    this.logFile = join(setup.root, setup.logName);
    this.#readyTimeoutMs = setup.readyTimeoutMs;
    this.#keepLogs = setup.keepLogs;
  }

  /** The server's kind in messages: `etcd`, `ZooKeeper`. */
  protected abstract readonly kind: string;
  /** What the server does once ready, in messages: `became ready`, `started serving`. */
  protected abstract readonly readyVerb: string;
  /** The ports this server holds, released when it stops. */
  abstract get ports(): readonly number[];
  /** The command of the next start. Called by `launch()` just before it spawns. */
  protected abstract command(): ServerCommand;
  /** `true` once the server is ready; never rejects. */
  protected abstract probeReady(signal: AbortSignal | undefined): Promise<boolean>;
  /** The message of a start that was not ready within `timeoutMs`. */
  protected abstract notReadyMessage(timeoutMs: number): string;
  /** The launcher's own error type for one of the shared codes. */
  protected abstract error(
    code: ManagedServerErrorCode,
    message: string,
    options?: { logTail?: string; cause?: unknown },
  ): Error;

  /**
   * Called once the process of a launch has exited; `served` says whether it became ready
   * and was still this server's current process.
   */
  protected onExit(_exit: ProcessExit, _served: boolean): void {}

  /** Called once a stopped server's files are removed (`keepLog`: its log was kept). */
  protected async onRemoved(_keepLog: boolean): Promise<void> {}

  /** The pid of the current (or, after it exited, the last) process. */
  get pid(): number {
    return this.#pid;
  }

  /** Where the server is in its life. */
  get state(): LaunchedServerState {
    return this.#state;
  }

  /** `true` while the process exists and can run: `starting`, `running` or `paused`. */
  get running(): boolean {
    return this.#state === 'starting' || this.#state === 'running' || this.#state === 'paused';
  }

  /**
   * Spawns the server (state `exited` → `starting`) without waiting for it to be ready.
   * Rejects if the process could not be spawned at all.
   */
  async launch(): Promise<void> {
    if (this.#state !== 'exited') {
      throw this.illegal(`launch: the node is ${this.#state}, not exited`);
    }
    const command = this.command();
    this.#logOffset = fileSize(this.logFile);
    const fd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      writeSync(
        fd,
        `--- tenure testkit ${new Date().toISOString()}: ${command.file} ${command.args.join(' ')}\n`,
      );
      const tied = tiedToThisProcess({ file: command.file, args: command.args });
      child = spawn(tied.file, tied.args, {
        stdio: ['ignore', fd, fd],
        env: command.env,
        ...(command.cwd === undefined ? {} : { cwd: command.cwd }),
      });
    } finally {
      // The child holds its own copy of the descriptor.
      closeSync(fd);
    }
    this.#child = child;
    this.#state = 'starting';
    this.#ready = false;
    const exit = new Promise<ProcessExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      // 'error' also reports a failed kill(); only a failed spawn (no pid) means no 'exit'.
      child.on('error', (error) => {
        if (child.pid === undefined) resolve({ code: null, signal: null, error });
      });
    });
    const pid = child.pid;
    const unregister = pid === undefined ? () => {} : killOnExit(pid);
    this.#exit = exit.then((info) => {
      unregister();
      const current = this.#child === child;
      this.onExit(info, current && this.#ready);
      this.#lastExit = info;
      if (current && this.running) this.#state = 'exited';
      return info;
    });
    if (pid === undefined) {
      const info = await this.#exit;
      throw this.error(
        'EXITED_EARLY',
        `${this.kind} ${this.name} could not be spawned (${command.file}): ${info.error?.message ?? 'no pid'}`,
        { cause: info.error },
      );
    }
    this.#pid = pid;
  }

  /**
   * Resolves once the server is ready (state `starting` → `running`). Fails fast with the log
   * tail when the process exits, after `timeoutMs` (default: the launcher's `readyTimeoutMs`),
   * or when `signal` aborts.
   */
  async waitUntilReady(timeoutMs = this.#readyTimeoutMs, signal?: AbortSignal): Promise<void> {
    const started = performance.now();
    for (;;) {
      if (signal?.aborted) throw this.illegal('waitUntilReady: aborted');
      if (this.#state === 'exited') {
        const exit = this.#lastExit;
        const how =
          exit === undefined
            ? 'exited'
            : exit.signal !== null
              ? `was killed by ${exit.signal}`
              : `exited with code ${String(exit.code)}`;
        throw this.#startupError(
          'EXITED_EARLY',
          `${this.kind} ${this.name} ${how} before it ${this.readyVerb}`,
        );
      }
      if (this.#state === 'paused') throw this.illegal('waitUntilReady: the node is paused');
      if (this.#state !== 'starting' && this.#state !== 'running') {
        throw this.illegal(`waitUntilReady: the node is ${this.#state}`);
      }
      if (await this.probeReady(signal)) {
        this.#ready = true;
        if (this.#state === 'starting') this.#state = 'running';
        if (this.#state === 'running') return;
        continue;
      }
      if (performance.now() - started > timeoutMs) {
        throw this.#startupError('NOT_READY', this.notReadyMessage(timeoutMs));
      }
      await sleep(POLL_MS);
    }
  }

  /**
   * Sends `signal` (default `SIGKILL`, a crash) and resolves once the process is really gone.
   * The server keeps its ports and data for `restart()`. A no-op when the process has already
   * exited. `SIGSTOP`/`SIGCONT` are refused: use `pause()`/`resume()`.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGSTOP' || signal === 'SIGCONT' || signal === 'SIGTSTP') {
      throw new RangeError(
        `kill(${signal}): use pause() and resume() to stop and continue ${this.kind}`,
      );
    }
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw this.illegal(`kill: the node is ${this.#state}`);
    }
    if (!this.running) return;
    await this.#signalAndWait(signal, new Timing(1_000).scale(10_000));
  }

  /** Freezes the process with SIGSTOP, resolving once the kernel reports it stopped. */
  async pause(): Promise<void> {
    if (this.#state !== 'running') {
      throw this.illegal(`pause: the node is ${this.#state}, not running`);
    }
    const pid = this.#pid;
    process.kill(pid, 'SIGSTOP');
    this.#state = 'paused';
    await waitFor(
      () => {
        const state = processState(pid);
        if (state === undefined || state === 'Z' || state === 'X') {
          throw this.illegal(`pause: ${this.kind} ${this.name} (pid ${pid}) exited`);
        }
        return state === 'T' || state === 't';
      },
      {
        timeoutMs: new Timing(1_000).scale(5_000),
        what: `${this.kind} ${this.name} to stop (SIGSTOP)`,
      },
    );
  }

  /** Lets a paused process run again (SIGCONT), resolving once it is no longer stopped. */
  async resume(): Promise<void> {
    if (this.#state !== 'paused') {
      throw this.illegal(`resume: the node is ${this.#state}, not paused`);
    }
    const pid = this.#pid;
    process.kill(pid, 'SIGCONT');
    await waitFor(
      () => {
        const state = processState(pid);
        return state !== 'T' && state !== 't';
      },
      {
        timeoutMs: new Timing(1_000).scale(5_000),
        what: `${this.kind} ${this.name} to continue (SIGCONT)`,
      },
    );
    if (this.#state === 'paused') this.#state = 'running';
  }

  /** Kills the process if it runs (SIGKILL), starts it again and waits until it is ready. */
  async restart(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw this.illegal(`restart: the node is ${this.#state}`);
    }
    if (this.running) await this.#signalAndWait('SIGKILL', new Timing(1_000).scale(10_000));
    await this.launch();
    await this.waitUntilReady();
  }

  /**
   * SIGTERM, then SIGKILL if the process is still there after 5 s; then removes the server's
   * directory (all but the log file with `keepLogs`). Idempotent: every call shares one promise.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop(this.#keepLogs);
    return this.#stopping;
  }

  /** Stops the server after a failed start: keeps the log (its path is in the error) if asked. */
  discard(keepLog: boolean): Promise<void> {
    this.#stopping ??= this.#stop(keepLog);
    return this.#stopping;
  }

  /** The same as {@link ManagedServer.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /**
   * Ends the process gracefully (SIGTERM, SIGKILL after 5 s) and keeps ports and data, for a
   * whole-cluster outage. A no-op when it is not running.
   */
  async halt(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw this.illegal(`halt: the node is ${this.#state}`);
    }
    await this.#haltProcess();
  }

  /** The last `lines` lines (default 40) the server logged since its latest start. */
  logTail(lines = 40): string {
    return readTail(this.logFile, this.#logOffset, lines);
  }

  /** The last `lines` lines of the latest start's log (at most its last 256 KiB). */
  protected logSinceLaunch(lines: number): string {
    return readTail(this.logFile, this.#logOffset, lines);
  }

  /** An `ILLEGAL_STATE` error naming this server. */
  protected illegal(message: string): Error {
    return this.error('ILLEGAL_STATE', `${this.kind} ${this.name}: ${message}`);
  }

  async #stop(keepLog: boolean): Promise<void> {
    this.#state = 'stopping';
    try {
      await this.#haltProcess();
    } finally {
      releaseLoopbackPorts(this.ports);
      await rm(keepLog ? this.dataDir : this.root, { recursive: true, force: true });
      await this.onRemoved(keepLog);
      this.#state = 'stopped';
    }
  }

  async #haltProcess(): Promise<void> {
    if (this.#child === undefined || this.#exit === undefined || isProcessGone(this.#pid)) {
      if (this.#exit !== undefined) await this.#exit;
      return;
    }
    this.#send('SIGTERM');
    // A stopped process cannot act on SIGTERM until it continues.
    this.#send('SIGCONT');
    try {
      await withTimeout(this.#exit, {
        timeoutMs: GRACEFUL_STOP_MS,
        what: `${this.kind} ${this.name} to exit after SIGTERM`,
      });
    } catch {
      await this.#signalAndWait('SIGKILL', new Timing(1_000).scale(10_000));
      return;
    }
    await this.#confirmGone(this.#pid);
  }

  async #signalAndWait(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const exit = this.#exit;
    if (exit === undefined) return;
    const pid = this.#pid;
    this.#send(signal);
    if (signal !== 'SIGKILL' && this.#state === 'paused') this.#send('SIGCONT');
    try {
      await withTimeout(exit, {
        timeoutMs,
        what: `${this.kind} ${this.name} (pid ${pid}) to exit`,
      });
    } catch (error) {
      throw this.error(
        'NOT_GONE',
        `${this.kind} ${this.name} (pid ${pid}) is still there ${timeoutMs} ms after ${signal} (state ${String(processState(pid))})`,
        { cause: error },
      );
    }
    await this.#confirmGone(pid);
  }

  /** After the 'exit' event Node has reaped the child; check the kernel agrees. */
  async #confirmGone(pid: number): Promise<void> {
    await waitFor(() => isProcessGone(pid), {
      timeoutMs: new Timing(1_000).scale(5_000),
      what: `${this.kind} ${this.name} (pid ${pid}) to leave the process table`,
    });
  }

  #send(signal: NodeJS.Signals): void {
    try {
      process.kill(this.#pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  #startupError(code: 'EXITED_EARLY' | 'NOT_READY', message: string): Error {
    const tail = this.logTail();
    return this.error(code, `${message}. Log ${this.logFile}, last lines:\n${indent(tail)}`, {
      logTail: tail,
    });
  }
}

/**
 * Waits for every server to be ready; the first failure stops the other waits, and it is the
 * error thrown (never a "stopped waiting" error of a sibling).
 */
export async function waitAllReady(servers: readonly ManagedServer[]): Promise<void> {
  const abort = new AbortController();
  let first: unknown;
  const results = await Promise.allSettled(
    servers.map((server) =>
      server.waitUntilReady(undefined, abort.signal).catch((error: unknown) => {
        if (!abort.signal.aborted) {
          first = error;
          abort.abort();
        }
        throw error;
      }),
    ),
  );
  if (results.some((result) => result.status === 'rejected')) throw first;
}

/** The environment `process.env` minus the variables `drop` picks. */
export function environmentWithout(drop: (name: string) => boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!drop(key)) env[key] = value;
  }
  return env;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The last `lines` lines of `path` from byte `from` on, reading at most the last 256 KiB. */
function readTail(path: string, from: number, lines: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '(no log)';
  }
  try {
    const size = statSync(path).size;
    const start = Math.max(from, size - 262_144);
    const buffer = Buffer.alloc(Math.max(0, size - start));
    readSync(fd, buffer, 0, buffer.length, start);
    const all = buffer.toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines).join('\n') || '(empty log)';
  } finally {
    closeSync(fd);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
