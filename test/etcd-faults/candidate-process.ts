/**
 * The parent's side of test/fixtures/etcd-candidate.mjs (or another fixture speaking the same
 * protocol, such as test/fixtures/zookeeper-candidate.mjs): one election candidate in a child
 * process, its events (JSON lines, timed on the machine's monotonic clock) and its commands.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  isProcessGone,
  monotonicNow,
  parseRecord,
  processState,
  type TermRecord,
  tiedToThisProcess,
  WaitTimeoutError,
  waitFor,
} from '../../packages/testkit/src/index.js';

const root = join(import.meta.dirname, '..', '..');
const FIXTURES = join(root, 'test', 'fixtures');

/** One line the fixture printed. */
export interface CandidateEvent {
  readonly type: string;
  /** Monotonic ms (process.hrtime) when the child printed it. */
  readonly t: number;
  readonly holder: string;
  readonly [field: string]: unknown;
}

/** A command's answer. */
export interface Reply extends CandidateEvent {
  readonly ok: boolean;
  readonly code?: string;
}

/** Options of {@link CandidateProcess.start}. */
export interface CandidateOptions {
  /** The label of this candidate: its value in the election and its holder in records. */
  readonly holder: string;
  /** Where the fixture connects: etcd URLs, or ZooKeeper `host:port`s. */
  readonly endpoints: readonly string[];
  readonly ttlMs: number;
  readonly election: string;
  /** Campaign at once (default) or wait for a `campaign` command. */
  readonly campaign?: boolean;
  /** The fixture to run, a file of test/fixtures. Default `etcd-candidate.mjs`. */
  readonly fixture?: string;
}

/** Fails with a clear message when the packages (default: the etcd fixture's) have not been built. */
export function assertBuilt(packages: readonly string[] = ['core', 'etcd', 'testkit']): void {
  for (const pkg of packages) {
    const file = join(root, 'packages', pkg, 'dist', 'index.js');
    if (!existsSync(file)) {
      throw new Error(
        `${file} is missing: the fault tests run candidates as child processes on the built ` +
          'packages. Run `npx tsc -b` first (`pnpm test` does).',
      );
    }
  }
}

/** An election candidate running the fixture in its own process. */
export class CandidateProcess {
  readonly holder: string;
  readonly pid: number;
  readonly events: CandidateEvent[] = [];
  /** When the parent sent SIGKILL (monotonic ms), if it did. */
  killedAt: number | undefined;
  /** How the process ended, once it has. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** `true` if `stop()` had to SIGKILL a process that did not exit by itself after `exit`. */
  forcedStop = false;
  readonly #child: ChildProcess;
  readonly #listeners = new Set<() => void>();
  readonly #exited: Promise<void>;
  #stderr = '';
  #nextId = 1;

  private constructor(holder: string, child: ChildProcess) {
    this.holder = holder;
    this.#child = child;
    if (child.pid === undefined) throw new Error(`candidate ${holder} could not be spawned`);
    this.pid = child.pid;
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let event: CandidateEvent;
      try {
        event = JSON.parse(line) as CandidateEvent;
      } catch {
        this.#stderr += `(unparsed stdout) ${line}\n`;
        return;
      }
      this.events.push(event);
      for (const listener of [...this.#listeners]) listener();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-20_000);
    });
    // A write to a dead child's stdin fails with EPIPE: that is the child's exit, seen elsewhere.
    child.stdin!.on('error', () => {});
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const listener of [...this.#listeners]) listener();
        resolve();
      });
    });
  }

  /** Spawns the fixture and waits until it has created its arbitrator. */
  static async start(options: CandidateOptions, timeoutMs = 10_000): Promise<CandidateProcess> {
    const args = [
      join(FIXTURES, options.fixture ?? 'etcd-candidate.mjs'),
      '--endpoints',
      options.endpoints.join(','),
      '--ttl',
      String(options.ttlMs),
      '--election',
      options.election,
      '--holder',
      options.holder,
      ...(options.campaign === false ? ['--no-campaign'] : []),
    ];
    const { file, args: argv } = tiedToThisProcess({ file: process.execPath, args });
    const child = spawn(file, argv, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    const candidate = new CandidateProcess(options.holder, child);
    await candidate.next((e) => e.type === 'started', { timeoutMs, what: 'the fixture to start' });
    return candidate;
  }

  /** The process's stderr (the last 20 kB), for failure messages. */
  get stderr(): string {
    return this.#stderr;
  }

  /** `true` once the process has exited (it may still need reaping: see `isProcessGone`). */
  get exited(): boolean {
    return this.exit !== undefined;
  }

  /**
   * Resolves with the first event (from index `since` on) that passes `match`; rejects after
   * `timeoutMs`, or at once if the process exits without printing one.
   */
  next(
    match: (event: CandidateEvent) => boolean,
    options: { timeoutMs: number; what: string; since?: number },
  ): Promise<CandidateEvent> {
    let index = options.since ?? 0;
    return new Promise<CandidateEvent>((resolve, reject) => {
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
              `${this.holder} exited (${JSON.stringify(this.exit)}) before ${options.what}; stderr:\n${this.#stderr}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new WaitTimeoutError(`${this.holder}: ${options.what}`, options.timeoutMs));
      }, options.timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
      check();
    });
  }

  /**
   * Sends a command and resolves with its reply. `timeoutMs` bounds the wait (a stopped process
   * answers once it is resumed).
   */
  command(line: string, timeoutMs = 10_000): Promise<Reply> {
    const reply = this.send(line);
    return reply(timeoutMs);
  }

  /**
   * Writes a command now and returns a function that waits for its reply: for a process that
   * is stopped, the command waits in the pipe and runs the moment it wakes.
   */
  send(line: string): (timeoutMs?: number) => Promise<Reply> {
    const id = String(this.#nextId++);
    const since = this.events.length;
    this.#child.stdin!.write(`${id} ${line}\n`);
    return (timeoutMs = 10_000) =>
      this.next((e) => e.type === 'reply' && e.id === id, {
        timeoutMs,
        what: `the reply to "${line}"`,
        since,
      }) as Promise<Reply>;
  }

  /** Sends `signal` to the process (SIGKILL is remembered, for the history of its terms). */
  signal(signal: NodeJS.Signals): number {
    const at = monotonicNow();
    if (signal === 'SIGKILL') this.killedAt ??= at;
    process.kill(this.pid, signal);
    return at;
  }

  /** SIGSTOP, resolving once the kernel reports the process stopped; returns when it was sent. */
  async pause(): Promise<number> {
    const at = this.signal('SIGSTOP');
    await waitFor(() => processState(this.pid) === 'T', {
      timeoutMs: 5_000,
      what: `${this.holder} to stop`,
    });
    return at;
  }

  /** SIGCONT, resolving once the process runs again; returns when it was sent. */
  async resume(): Promise<number> {
    const at = this.signal('SIGCONT');
    await waitFor(() => processState(this.pid) !== 'T', {
      timeoutMs: 5_000,
      what: `${this.holder} to continue`,
    });
    return at;
  }

  /** The terms this candidate reported (each once it ended). */
  records(): TermRecord[] {
    return this.events.filter((e) => e.type === 'term').map((e) => parseRecord(String(e.record)));
  }

  /**
   * Every term this candidate held, for the history check: the reported ones, plus, for a
   * process killed while leading, its open term, valid at most from `elected` until the kill.
   */
  history(election: string): TermRecord[] {
    const records = this.records();
    const reported = new Set(records.map((r) => r.epoch));
    for (const e of this.events) {
      if (e.type !== 'elected') continue;
      const epoch = BigInt(String(e.epoch));
      if (reported.has(epoch)) continue;
      if (this.killedAt === undefined) {
        throw new Error(`${this.holder} never reported its term ${epoch} and was not killed`);
      }
      records.push({ election, holder: this.holder, epoch, start: e.t, end: this.killedAt });
    }
    return records;
  }

  /** Events of `type` (optionally after `after`, monotonic ms). */
  all(type: string, after = Number.NEGATIVE_INFINITY): CandidateEvent[] {
    return this.events.filter((e) => e.type === type && e.t > after);
  }

  /**
   * Asks the process to close its arbitrator and exit; SIGKILLs it if it has not exited
   * `timeoutMs` later (and sets `forcedStop`). Resolves once it is gone from the process table.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.exited) {
      if (processState(this.pid) === 'T') process.kill(this.pid, 'SIGCONT');
      this.#child.stdin!.write('0 exit\n');
      this.#child.stdin!.end();
      const exited = await Promise.race([
        this.#exited.then(() => true),
        new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), timeoutMs);
          void this.#exited.then(() => clearTimeout(timer));
        }),
      ]);
      if (!exited) {
        this.forcedStop = true;
        this.signal('SIGKILL');
        await this.#exited;
      }
    }
    await waitFor(() => isProcessGone(this.pid), {
      timeoutMs: 5_000,
      what: `${this.holder} (pid ${this.pid}) to leave the process table`,
    });
  }
}

/**
 * Guarantee G7 for the processes of a test: one line per candidate that was still alive 5 s
 * after `arbitrator.close()` resolved (the fixture then prints `lingering` with what kept it
 * alive and exits 7), or that `stop()` had to SIGKILL. Empty when every process exited by
 * itself. Call it after {@link stopAll}; `proxies` names the proxy ports in the message.
 */
export function lingeringBreaches(
  candidates: readonly CandidateProcess[],
  proxies: readonly { readonly port: number }[] = [],
): string[] {
  const breaches: string[] = [];
  const ports = proxies.map((p) => p.port).join(', ') || 'none';
  for (const c of candidates) {
    const lingering = c.all('lingering');
    for (const e of lingering) {
      breaches.push(
        `G7 BREACH: ${c.holder} still alive 5 s after close(): ${JSON.stringify(e.handles)}, sockets ${JSON.stringify(e.sockets)} (proxies on ${ports}), timers created at ${JSON.stringify(e.timers)}`,
      );
    }
    // Exit code 7 is the fixture's own report of the same; its stdout may not have been read yet.
    if (lingering.length === 0 && c.exit?.code === 7) {
      breaches.push(`G7 BREACH: ${c.holder} still alive 5 s after close() (exit code 7)`);
    }
    if (c.forcedStop)
      breaches.push(`G7 BREACH: ${c.holder} did not exit after \`exit\`: SIGKILLed`);
  }
  return breaches;
}

/** Stops every candidate (in parallel), whatever state it is in. */
export async function stopAll(candidates: readonly CandidateProcess[]): Promise<void> {
  const results = await Promise.allSettled(candidates.map((c) => c.stop()));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** Every event of every candidate, in time order, relative to `t0`, one per line. */
export function timeline(candidates: readonly CandidateProcess[], t0: number): string {
  return candidates
    .flatMap((c) => c.events)
    .filter((e) => e.type !== 'sample' || (e.gapMs as number) >= 250 || e.valid === false)
    .sort((a, b) => a.t - b.t)
    .map((e) => {
      const { type, t, holder, ...rest } = e;
      return `${(t - t0).toFixed(1).padStart(9)} ms  ${holder.padEnd(3)} ${type.padEnd(10)} ${JSON.stringify(rest)}`;
    })
    .join('\n');
}
