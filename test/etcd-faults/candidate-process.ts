/**
 * The parent's side of test/fixtures/etcd-candidate.mjs (or another fixture speaking the same
 * protocol, such as test/fixtures/zookeeper-candidate.mjs): one election candidate in a child
 * process, its events (JSON lines, timed on the machine's monotonic clock) and its commands.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FixtureChild, monotonicNow, parseRecord, type TermRecord } from '@tenure/testkit';

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

/** An election candidate running the fixture in its own process (a testkit {@link FixtureChild}). */
export class CandidateProcess {
  readonly holder: string;
  readonly pid: number;
  /** When the parent sent SIGKILL (monotonic ms), if it did. */
  killedAt: number | undefined;
  readonly #process: FixtureChild;

  private constructor(holder: string, child: FixtureChild) {
    this.holder = holder;
    this.#process = child;
    this.pid = child.pid;
  }

  /** Spawns the fixture and waits until it has created its arbitrator. */
  static async start(options: CandidateOptions, timeoutMs = 10_000): Promise<CandidateProcess> {
    const args = [
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
    const child = await FixtureChild.start(
      options.holder,
      join(FIXTURES, options.fixture ?? 'etcd-candidate.mjs'),
      args,
      { cwd: root, timeoutMs },
    );
    return new CandidateProcess(options.holder, child);
  }

  /** Every line the fixture printed, in order. */
  get events(): readonly CandidateEvent[] {
    return this.#process.events as CandidateEvent[];
  }

  /** How the process ended, once it has. */
  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.#process.exit;
  }

  /** `true` if `stop()` had to SIGKILL a process that did not exit by itself after `exit`. */
  get forcedStop(): boolean {
    return this.#process.forcedStop;
  }

  /** The process's stderr (the last 20 kB), for failure messages. */
  get stderr(): string {
    return this.#process.stderr;
  }

  /** `true` once the process has exited (it may still need reaping: see `isProcessGone`). */
  get exited(): boolean {
    return this.#process.exited;
  }

  /**
   * Resolves with the first event (from index `since` on) that passes `match`; rejects after
   * `timeoutMs`, or at once if the process exits without printing one.
   */
  next(
    match: (event: CandidateEvent) => boolean,
    options: { timeoutMs: number; what: string; since?: number },
  ): Promise<CandidateEvent> {
    return this.#process.next(
      (event) => match(event as CandidateEvent),
      options,
    ) as Promise<CandidateEvent>;
  }

  /**
   * Sends a command and resolves with its reply. `timeoutMs` bounds the wait (a stopped process
   * answers once it is resumed).
   */
  command(line: string, timeoutMs = 10_000): Promise<Reply> {
    return this.send(line)(timeoutMs);
  }

  /**
   * Writes a command now and returns a function that waits for its reply: for a process that
   * is stopped, the command waits in the pipe and runs the moment it wakes.
   */
  send(line: string): (timeoutMs?: number) => Promise<Reply> {
    const reply = this.#process.send(line);
    return (timeoutMs = 10_000) => reply(timeoutMs) as Promise<Reply>;
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
    const at = monotonicNow();
    await this.#process.pause(5_000);
    return at;
  }

  /** SIGCONT, resolving once the process runs again; returns when it was sent. */
  async resume(): Promise<number> {
    const at = monotonicNow();
    await this.#process.resume(5_000);
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
    const wasForced = this.#process.forcedStop;
    await this.#process.stop(timeoutMs);
    // stop()'s SIGKILL counts as a kill in the history of its terms.
    if (!wasForced && this.#process.forcedStop) this.killedAt ??= monotonicNow();
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
