// `tenure run` on a real etcd or ZooKeeper: supervisors in separate processes (the built CLI),
// each running test/fixtures/cli-child.mjs, which appends to one shared log file. The log's
// order is the machine's one clock; each child also records, as it starts, whether an earlier
// child still runs (from /proc). Every scenario checks that no child ever started while
// another lived, besides its own assertions.
//
// Time bounds are correctness bounds: the crash failover of guarantee G3 (TTL + the expiry
// granularity + 1 s) plus the start of a node child, and "hands over at once" as less than a
// TTL (a supervisor that did not resign would leave its key until its session expired, a TTL
// after its last renewal); that its key is gone the moment it has exited is checked too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isProcessGone,
  processState,
  startTcpProxy,
  type TcpProxy,
  Timing,
  waitFor,
} from '@tenure/testkit';
import { connect } from 'tenure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliBackend, CliServer } from './cli-backends.js';
import {
  assertCliBuilt,
  CHILD,
  type ChildLine,
  readChildLog,
  runTenure,
  TenureProcess,
} from './cli-process.js';

/** etcd's minimum lease TTL with its default 1 s election timeout. */
const TTL_MS = 2_000;
/** The grace every supervisor gets: below the ceiling for a 2 s TTL (TTL/3 − 1 % − 100 ms = 546 ms). */
const GRACE = '400ms';
/** G3's crash bound (TTL + expiry granularity + 1 s) plus the start of the next node child. */
const CRASH_FAILOVER_BOUND_MS = TTL_MS + 1_500 + 1_000;
const timing = new Timing(TTL_MS);
/**
 * How long a paused supervisor stays paused once the next leader's child has started: the old
 * child, if the pause froze its deadline, would run beside the new one for at least that long.
 * A schedule, not a bound (`CLI_TEST_PAUSE_AFTER_MS` to measure with longer pauses).
 */
const PAUSE_AFTER_NEXT_MS = Number(process.env.CLI_TEST_PAUSE_AFTER_MS ?? '1000');

interface Scenario {
  /** The arbitrator's name (`etcd`, `zookeeper`). */
  readonly backend: string;
  readonly election: string;
  readonly log: string;
  /** Starts `tenure run` (label = the child's holder) through `port`, with the child's env. */
  supervisor(
    label: string,
    options?: { port?: number; env?: NodeJS.ProcessEnv; once?: boolean; args?: string[] },
  ): TenureProcess;
  proxy(): Promise<TcpProxy>;
  /** Waits for the first log line matching `match`. */
  line(match: (line: ChildLine) => boolean, what: string, timeoutMs?: number): Promise<ChildLine>;
  readonly server: CliServer;
  /** Waits until the election has `n` candidates. */
  queued(n: number): Promise<void>;
  /** The values of the election's candidates now, in queue order. */
  values(): Promise<string[]>;
}

export function describeRunScenarios(backend: CliBackend): void {
  describe.sequential(`tenure run on ${backend.name}`, () => {
    let server: CliServer | undefined;
    let counter = 0;

    beforeAll(async () => {
      assertCliBuilt();
      server = await backend.start();
    });

    afterAll(async () => {
      await server?.stop();
    });

    async function scenario(body: (s: Scenario) => Promise<void>): Promise<void> {
      counter += 1;
      const election = `run-${counter}`;
      const dir = mkdtempSync(join(tmpdir(), 'tenure-cli-'));
      const log = join(dir, 'children.jsonl');
      const supervisors: TenureProcess[] = [];
      const proxies: TcpProxy[] = [];
      const arbitrator = await connect(server!.url());
      let failure: { error: unknown } | undefined;
      try {
        await body({
          backend: backend.name,
          election,
          log,
          server: server!,
          supervisor: (label, options = {}) => {
            const supervisor = new TenureProcess(
              label,
              [
                'run',
                '--url',
                server!.url(options.port),
                '--election',
                election,
                '--value',
                label,
                '--grace',
                GRACE,
                ...(options.once ? ['--once'] : []),
                ...(options.args ?? []),
                '--',
                process.execPath,
                CHILD,
              ],
              { CLI_LOG: log, CLI_HOLDER: label, ...options.env },
            );
            supervisors.push(supervisor);
            return supervisor;
          },
          proxy: async () => {
            const proxy = await startTcpProxy({ host: '127.0.0.1', port: server!.port });
            proxies.push(proxy);
            return proxy;
          },
          line: (match, what, timeoutMs = timing.expiryMs) =>
            waitFor(() => readChildLog(log).find(match), {
              timeoutMs,
              intervalMs: 20,
              what,
            }),
          queued: async (n) => {
            const election_ = arbitrator.election(election);
            try {
              await waitFor(async () => (await election_.candidates()).length === n, {
                timeoutMs: timing.handoverMs,
                intervalMs: 50,
                what: `${n} candidates in ${election}`,
              });
            } finally {
              await election_.close();
            }
          },
          values: async () => {
            const election_ = arbitrator.election(election);
            try {
              return (await election_.candidates()).map((c) => c.value);
            } finally {
              await election_.close();
            }
          },
        });
        // No child ever started while an earlier one still ran.
        const starts = readChildLog(log).filter((l) => l.event === 'start');
        expect(starts.filter((l) => (l.alive ?? []).length > 0)).toEqual([]);
        expect(
          noOverlap(readChildLog(log)),
          'each child writes only after the previous one has stopped writing',
        ).toBe(true);
      } catch (error) {
        failure = { error };
      }
      const cleanup = await Promise.allSettled([
        ...supervisors.map((s) => s.stop()),
        ...proxies.map((p) => p.close()),
      ]);
      // Whatever the supervisors did, no child may survive them.
      const pids = [...new Set(readChildLog(log).map((l) => l.pid))];
      const survivors = await Promise.allSettled(
        pids.map((pid) =>
          waitFor(() => isProcessGone(pid), { timeoutMs: 5_000, what: `child ${pid} to be gone` }),
        ),
      );
      await arbitrator.close();
      if (failure) {
        console.log(
          `[${backend.name} ${election}] children's log:\n${readChildLog(log)
            .filter((l) => l.event !== 'tick')
            .map((l) => JSON.stringify(l))
            .join('\n')}`,
        );
        for (const s of supervisors) console.log(`[${s.label}] stderr:\n${s.stderr}`);
      }
      rmSync(dir, { recursive: true, force: true });
      if (failure) throw failure.error;
      for (const result of [...cleanup, ...survivors]) {
        if (result.status === 'rejected') throw result.reason;
      }
    }

    it(
      'SIGKILL of the leading supervisor: its child dies at once, the next child starts within the failover bound, never while the first lives',
      () =>
        scenario(async (s) => {
          const a = s.supervisor('a');
          const first = await s.line((l) => l.event === 'start', 'the first child to start');
          expect(first.holder).toBe('a');
          expect(first.epoch, 'TENURE_EPOCH').toMatch(/^\d+$/);
          expect(first.env?.election).toBe(s.election);
          expect(first.env?.key, 'TENURE_KEY').toBeTruthy();
          s.supervisor('b');
          await s.queued(2);
          const c = s.supervisor('c');
          await s.queued(3);

          const killedAt = Date.now();
          a.signal('SIGKILL');
          await waitFor(() => isProcessGone(first.pid), {
            timeoutMs: 1_000,
            what: "a's child to die with its supervisor (parent-death signal)",
          });
          const next = await s.line(
            (l) => l.event === 'start' && l.holder !== 'a',
            'the next child to start',
          );
          expect(next.holder, 'b joined before c').toBe('b');
          expect(next.t - killedAt).toBeLessThan(CRASH_FAILOVER_BOUND_MS);
          expect(BigInt(next.epoch!)).toBeGreaterThan(BigInt(first.epoch!));

          // c still waits in the queue: SIGTERM makes it leave and die by that signal.
          c.signal('SIGTERM');
          expect(await c.waitExit(timing.handoverMs)).toEqual({ code: null, signal: 'SIGTERM' });
          expect(c.stderr).toMatch(/SIGTERM: left the queue/);
        }),
      60_000,
    );

    it(
      "cut of the leading supervisor's connection: its child gets SIGTERM, then SIGKILL, and is gone before the next child starts",
      () =>
        scenario(async (s) => {
          const proxy = await s.proxy();
          const a = s.supervisor('a', {
            port: proxy.port,
            once: true,
            env: { CLI_ON_SIGTERM: 'ignore' },
          });
          const first = await s.line((l) => l.event === 'start', 'the first child to start');
          expect(first.holder).toBe('a');
          s.supervisor('b');
          await s.queued(2);

          proxy.cut();
          const next = await s.line(
            (l) => l.event === 'start' && l.holder === 'b',
            "b's child to start",
          );
          const lines = readChildLog(s.log);
          const sigterm = lines.find((l) => l.pid === first.pid && l.event === 'sigterm');
          expect(sigterm, "a's child got SIGTERM").toBeDefined();
          const lastOfFirst = lines.filter((l) => l.pid === first.pid).at(-1)!;
          expect(lastOfFirst.index).toBeLessThan(next.index);
          expect(lastOfFirst.t).toBeLessThanOrEqual(next.t);
          expect(next.alive).toEqual([]);
          // It ignored SIGTERM: only SIGKILL ended it. --once: exit 75, leadership lost.
          expect(await a.waitExit(timing.expiryMs)).toEqual({ code: 75, signal: null });
          expect(a.stderr).toMatch(/child stopped: signal SIGKILL/);
        }),
      60_000,
    );

    it('a child that exits 3: tenure run exits 3 and hands over at once (its log in JSON lines)', () =>
      scenario(async (s) => {
        const a = s.supervisor('a', {
          env: { CLI_EXIT_ON: 'SIGUSR1', CLI_EXIT_CODE: '3' },
          args: ['--log-format', 'json'],
        });
        const first = await s.line((l) => l.event === 'start', 'the first child to start');
        s.supervisor('b');
        await s.queued(2);
        process.kill(first.pid, 'SIGUSR1');
        const exited = await s.line((l) => l.event === 'exit', "a's child to exit");
        expect(exited.code).toBe(3);
        expect(await a.waitExit(timing.handoverMs)).toEqual({ code: 3, signal: null });
        expect(
          await s.values(),
          "a's key is gone when it exits: no wait for its session",
        ).not.toContain('a');
        const next = await s.line((l) => l.event === 'start' && l.holder === 'b', "b's child");
        expect(next.t - exited.t).toBeLessThan(TTL_MS);
        const logged = a.stderr
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(logged.find((l) => String(l.msg).startsWith('elected'))).toMatchObject({
          level: 30,
          election: s.election,
          epoch: first.epoch,
          key: first.env!.key,
        });
        expect(logged.find((l) => String(l.msg).startsWith('child exit code 3'))).toMatchObject({
          epoch: first.epoch,
          exitCode: 3,
        });
      }));

    it('SIGTERM to a supervisor: forwarded to the child, then it resigns and exits with the child’s code', () =>
      scenario(async (s) => {
        const a = s.supervisor('a');
        const first = await s.line((l) => l.event === 'start', 'the first child to start');
        s.supervisor('b');
        await s.queued(2);
        const sentAt = Date.now();
        a.signal('SIGTERM');
        const sigterm = await s.line(
          (l) => l.pid === first.pid && l.event === 'sigterm',
          "a's child to get the SIGTERM",
          timing.handoverMs,
        );
        expect(sigterm.t).toBeGreaterThanOrEqual(sentAt - 5);
        expect(await a.waitExit(timing.handoverMs)).toEqual({ code: 0, signal: null });
        expect(
          await s.values(),
          "a's key is gone when it exits: no wait for its session",
        ).not.toContain('a');
        const next = await s.line((l) => l.event === 'start' && l.holder === 'b', "b's child");
        expect(next.t - sigterm.t).toBeLessThan(TTL_MS);
      }));

    it('--wait-timeout: a candidate that does not lead in time leaves the queue and exits 124; one that leads in time keeps running past it', () =>
      scenario(async (s) => {
        const a = s.supervisor('a', { env: { CLI_EXIT_ON: 'SIGUSR1' } });
        const first = await s.line((l) => l.event === 'start', 'the first child to start');
        // Long enough for b to start and join the queue on a loaded machine (its message says
        // whether it was still connecting).
        const waitB = timing.scale(3_000);
        const b = s.supervisor('b', { once: true, args: ['--wait-timeout', `${waitB}ms`] });
        expect(await b.waitExit(waitB + timing.handoverMs), b.stderr).toEqual({
          code: 124,
          signal: null,
        });
        expect(b.stderr).toMatch(
          /tenure: not leading "run-\d+" within --wait-timeout [\d.]+m?s: left the queue without running the command/,
        );
        expect(await s.values(), "b's key is gone: it withdrew its candidacy").toEqual(['a']);
        expect(readChildLog(s.log).filter((l) => l.event === 'start')).toHaveLength(1);

        // c's bound is long enough to lead once a's child exits; once leading, it no longer applies.
        const waitMs = timing.expiryMs;
        const c = s.supervisor('c', { args: ['--wait-timeout', `${waitMs}ms`] });
        await s.queued(2);
        process.kill(first.pid, 'SIGUSR1');
        expect(await a.waitExit(timing.handoverMs)).toEqual({ code: 0, signal: null });
        const next = await s.line((l) => l.event === 'start' && l.holder === 'c', "c's child");
        const past = BigInt(next.hr) + BigInt(waitMs) * 1_000_000n;
        await s.line(
          (l) => l.pid === next.pid && BigInt(l.hr) > past,
          "c's child to run past c's --wait-timeout",
          waitMs + timing.handoverMs,
        );
        expect(c.exit, c.stderr).toBeUndefined();
      }));

    it('tenure resign: the leader in another process is deposed (its child killed at once, no grace), the next candidate leads, the deposed one rejoins the queue', () =>
      scenario(async (s) => {
        const url = s.server.url();
        const resign = (...args: string[]) =>
          runTenure(['resign', s.election, '--url', url, ...args]);
        const none = await resign();
        expect(none.code, none.stderr).toBe(1);
        expect(none.stderr).toMatch(/has no leader: nothing to do/);

        const a = s.supervisor('a');
        const first = await s.line((l) => l.event === 'start', 'the first child to start');
        s.supervisor('b');
        await s.queued(2);
        const wrongEpoch = await resign('--epoch', `${BigInt(first.epoch!) + 1000n}`);
        expect(wrongEpoch.code, wrongEpoch.stderr).toBe(1);
        expect(wrongEpoch.stderr).toMatch(/holds epoch \d+, not \d+: nothing done/);

        const deposed = await resign('--epoch', first.epoch!, '--json');
        expect(deposed.code, deposed.stderr).toBe(0);
        expect(JSON.parse(deposed.stdout)).toMatchObject({
          election: s.election,
          deposed: true,
          leader: { value: 'a', epoch: first.epoch, key: first.env!.key },
        });
        const next = await s.line(
          (l) => l.event === 'start' && l.holder === 'b',
          "b's child to start",
          timing.handoverMs,
        );
        expect(BigInt(next.epoch!)).toBeGreaterThan(BigInt(first.epoch!));
        const lines = readChildLog(s.log);
        expect(lines.filter((l) => l.pid === first.pid && l.event === 'sigterm')).toEqual([]);
        expect(a.stderr).toMatch(/term \d+ ended \(revoked\); killing the child/);
        // a rejoined the queue, behind b: deposed, not stopped.
        await waitFor(async () => (await s.values()).join(',') === 'b,a', {
          timeoutMs: timing.handoverMs,
          what: 'a to rejoin the queue behind b',
        });
        expect(a.exit).toBeUndefined();
        // The same epoch again: a's old term is gone, nothing is deleted (b is not touched).
        const again = await resign('--epoch', first.epoch!);
        expect(again.code, again.stderr).toBe(1);
        expect(await s.values()).toEqual(['b', 'a']);
      }));

    it("the leader's key deleted behind its back: its child is killed at once (no grace: a successor may lead already), then it campaigns again", () =>
      scenario(async (s) => {
        const a = s.supervisor('a');
        const first = await s.line((l) => l.event === 'start', 'the first child to start');
        await s.server.deleteKey(first.env!.key!);
        const next = await s.line(
          (l) => l.event === 'start' && l.pid !== first.pid,
          "a's next child, in a new term",
        );
        expect(next.holder).toBe('a');
        expect(BigInt(next.epoch!)).toBeGreaterThan(BigInt(first.epoch!));
        const lines = readChildLog(s.log);
        expect(lines.filter((l) => l.pid === first.pid && l.event === 'sigterm')).toEqual([]);
        expect(a.stderr).toMatch(/term \d+ ended \(revoked\); killing the child/);
        expect(a.stderr).toMatch(/child stopped: signal SIGKILL/);
      }));

    it(
      'SIGSTOP of the leading supervisor past its TTL: its child gets SIGTERM at deadline − grace and SIGKILL at the deadline all the same, and is gone before the next child starts',
      () =>
        scenario(async (s) => {
          const a = s.supervisor('a', { env: { CLI_ON_SIGTERM: 'ignore' } });
          const first = await s.line((l) => l.event === 'start', 'the first child to start');
          s.supervisor('b');
          await s.queued(2);
          try {
            const stoppedAt = process.hrtime.bigint();
            a.signal('SIGSTOP');
            const next = await pausedUntilNextChildRan(s, 'b');
            a.signal('SIGCONT');
            reportOverlap(s, 'SIGSTOP', first.pid, next, stoppedAt);
            const lines = readChildLog(s.log);
            const sigterm = lines.find((l) => l.pid === first.pid && l.event === 'sigterm');
            expect(sigterm, "a's child got SIGTERM while a was stopped").toBeDefined();
            expect(sigterm!.index).toBeLessThan(next.index);
            expect(next.alive).toEqual([]);
            // Awake again, a finds its term over and its child gone, and rejoins the queue.
            await waitFor(() => /child stopped: signal SIGKILL/.test(a.stderr), {
              timeoutMs: timing.handoverMs,
              what: 'a to report its child stopped',
            });
            await s.queued(2);
            expect(a.exit).toBeUndefined();
          } finally {
            a.signal('SIGCONT');
          }
        }),
      60_000,
    );

    it('SIGTSTP (Ctrl-Z) to the leading supervisor: its child is stopped with it, and both go on after SIGCONT', () =>
      scenario(async (s) => {
        const a = s.supervisor('a');
        const first = await s.line((l) => l.event === 'start', 'the first child to start');
        try {
          a.signal('SIGTSTP');
          await waitFor(() => processState(a.pid) === 'T' && processState(first.pid) === 'T', {
            timeoutMs: timing.handoverMs,
            what: 'a and its child to be stopped',
          });
          const before = readChildLog(s.log).length;
          a.signal('SIGCONT');
          await s.line(
            (l) => l.pid === first.pid && l.event === 'tick' && l.index >= before,
            "a's child to tick again after SIGCONT",
            timing.handoverMs,
          );
          expect(a.exit).toBeUndefined();
        } finally {
          a.signal('SIGCONT');
        }
      }));

    it(
      'SIGTSTP (Ctrl-Z) of the leading supervisor past its TTL: its stopped child is continued to get SIGTERM at deadline − grace, and is gone before the next child starts',
      () =>
        scenario(async (s) => {
          const a = s.supervisor('a');
          const first = await s.line((l) => l.event === 'start', 'the first child to start');
          s.supervisor('b');
          await s.queued(2);
          try {
            const stoppedAt = process.hrtime.bigint();
            a.signal('SIGTSTP');
            const next = await pausedUntilNextChildRan(s, 'b');
            a.signal('SIGCONT');
            reportOverlap(s, 'SIGTSTP', first.pid, next, stoppedAt);
            const lines = readChildLog(s.log);
            const ofFirst = lines.filter((l) => l.pid === first.pid);
            expect(
              ofFirst.find((l) => l.event === 'sigterm'),
              "a's child got SIGTERM (and ran to handle it) while a was stopped",
            ).toBeDefined();
            expect(ofFirst.at(-1)!.event).toBe('exit');
            expect(ofFirst.at(-1)!.index).toBeLessThan(next.index);
            await waitFor(() => /child stopped: exit code 0/.test(a.stderr), {
              timeoutMs: timing.handoverMs,
              what: 'a to report its child stopped',
            });
            await s.queued(2);
            expect(a.exit).toBeUndefined();
          } finally {
            a.signal('SIGCONT');
          }
        }),
      60_000,
    );
  });
}

/** `true` when, in file order, no child writes after a later child's first line. */
function noOverlap(lines: readonly ChildLine[]): boolean {
  const firstIndex = new Map<number, number>();
  for (const line of lines) if (!firstIndex.has(line.pid)) firstIndex.set(line.pid, line.index);
  const order = [...firstIndex.entries()].sort((x, y) => x[1] - y[1]);
  for (let i = 1; i < order.length; i += 1) {
    const [previous] = order[i - 1]!;
    const [, start] = order[i]!;
    if (lines.some((l) => l.pid === previous && l.index > start)) return false;
  }
  return true;
}

/**
 * Waits, while a supervisor is paused, for `holder`'s child to start and then to run for
 * {@link PAUSE_AFTER_NEXT_MS} (by its own ticks, on the shared monotonic clock); returns its
 * start line.
 */
async function pausedUntilNextChildRan(s: Scenario, holder: string): Promise<ChildLine> {
  const next = await s.line(
    (l) => l.event === 'start' && l.holder === holder,
    `${holder}'s child to start`,
  );
  const until = BigInt(next.hr) + BigInt(PAUSE_AFTER_NEXT_MS) * 1_000_000n;
  await s.line(
    (l) => l.pid === next.pid && BigInt(l.hr) >= until,
    `${holder}'s child to run for ${PAUSE_AFTER_NEXT_MS} ms`,
  );
  return next;
}

/**
 * Prints how long the paused supervisor's child went on after the next child started (its last
 * line's time minus the next child's start, on the shared monotonic clock; ≤ 0: no overlap).
 */
function reportOverlap(
  s: Scenario,
  pause: string,
  pid: number,
  next: ChildLine,
  stoppedAt: bigint,
): void {
  const last = readChildLog(s.log)
    .filter((l) => l.pid === pid)
    .at(-1)!;
  const ms = (ns: bigint) => Number(ns / 1_000n) / 1_000;
  console.log(
    `[${s.backend} ${s.election}] ${pause} of the leading supervisor for ${ms(process.hrtime.bigint() - stoppedAt)} ms: its child's last line ${ms(BigInt(last.hr) - BigInt(next.hr))} ms after the next child's start (> 0: overlap)`,
  );
}
