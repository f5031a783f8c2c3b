// The fault scenarios every arbitrator runs on its real servers (a three-node etcd cluster, a
// three-server ZooKeeper ensemble): every candidate runs in its own process (a fixture of
// test/fixtures, on the built packages) and reports its terms timed on the machine's monotonic
// clock; each test checks the combined history (G1: no two valid terms overlap; G2: epochs
// strictly increase) and G7 (every process exits by itself after close()) besides its own
// assertions. A backend brings its servers, its fixture and the assertions only it can make;
// test/etcd-faults/etcd-faults.test.ts and test/zookeeper-faults/zookeeper-faults.test.ts run
// these scenarios, then the ones only their arbitrator has.
//
// The one timing threshold is guarantee G3's crash bound in (a). Every other wait is bounded
// only so that a hang fails with a message, never as a performance expectation.

import {
  assertHistory,
  monotonicNow,
  startTcpProxy,
  type TcpProxy,
  Timing,
  waitFor,
} from '@tenure/testkit';
import { describe, expect, it } from 'vitest';
import {
  assertBuilt,
  type CandidateEvent,
  CandidateProcess,
  lingeringBreaches,
  type Reply,
  stopAll,
  timeline,
} from '../etcd-faults/candidate-process.js';
import { candidateQueries, electedAfter, epochOf, sleepUntil } from './candidate-queries.js';

/** What the shared scenarios do to the servers. */
export interface FaultServers {
  /** The member that leads the servers' own consensus (etcd's raft, ZooKeeper's Zab). */
  leader(): Promise<{ readonly name: string; kill(): Promise<void> }>;
  stopAll(): Promise<void>;
  startAll(): Promise<void>;
  /** Stops every member and removes its data, after the test. */
  stop(): Promise<void>;
}

/** The queries of test/faults/candidate-queries.ts, and the timing their waits scale by. */
export type FaultQueries = ReturnType<typeof candidateQueries> & { readonly timing: Timing };

/** Where a shared scenario lets a backend check what only its arbitrator does. */
export interface FaultChecks {
  /** (b) The reply to `fenced-put` sent by a stopped leader of term `oldEpoch`, once it woke. */
  fencedPutRefused(reply: Reply, oldEpoch: string): void;
  /** (b) A note on that refusal for the report (empty for none). */
  fencedPutNote(reply: Reply): string;
  /**
   * (b) Waits until the woken leader `a` (term `oldEpoch`, session `oldSession`) has rejoined
   * after `resumedAt`; `b` reads the queue.
   */
  rejoinAfterPause(
    q: FaultQueries,
    s: FaultScenario<unknown>,
    a: CandidateProcess,
    b: CandidateProcess,
    since: { resumedAt: number; oldEpoch: string; oldSession: string },
  ): Promise<void>;
  /** (c) What `a` reported while cut off since `cutAt`, checked and returned as a note. */
  whileCut(a: CandidateProcess, cutAt: number): string;
  /** (c) What `a` reported after the proxy was restored at `restoredAt`, as a note (or ''). */
  afterRestore(a: CandidateProcess, cutAt: number, restoredAt: number): string;
  /** (e) A note on the candidates after the servers were started again at `startAt` (or ''). */
  afterRestart(all: readonly CandidateProcess[], startAt: number): string;
}

/** An arbitrator's servers, fixture and figures for the shared scenarios. */
export interface FaultBackend<S extends FaultServers> {
  /** `etcd`, `ZooKeeper`: in the suite's name and the test report. */
  readonly name: string;
  /** The suite's name. */
  readonly suite: string;
  /** The fixture of test/fixtures the candidates run, and the packages it loads. */
  readonly fixture: string;
  readonly packages: readonly string[];
  /** The etcd lease TTL / ZooKeeper session timeout every candidate asks for, ms. */
  readonly ttlMs: number;
  /** How the test names speak of `ttlMs` ("TTL", "the session timeout"). */
  readonly ttlName: string;
  /** Guarantee G3 for a crash, and how the name of test (a) states it. */
  readonly crashBound: { readonly ms: number; readonly text: string };
  /** Per-test timeouts of vitest, ms. */
  readonly testTimeoutMs: { readonly default: number; readonly outage: number };
  /** Starts the servers. */
  start(): Promise<S>;
  /** Where a candidate connects to every member. */
  endpoints(servers: S): readonly string[];
  /** The client port of one member. */
  clientPort(servers: S, member: number): number;
  /** How a candidate addresses a proxy (a URL for etcd, `host:port` for ZooKeeper). */
  proxyEndpoint(proxy: TcpProxy): string;
  /** Words of the test names: "etcd raft leader", "cluster", "cut" (what the proxy does in (c)). */
  readonly words: { readonly serverLeader: string; readonly servers: string; readonly cut: string };
  /** (d) The election's name, and the number of handovers after the kill. */
  readonly serverLeaderKill: { readonly election: string; readonly rounds: number };
  /**
   * (e) ZooKeeper sessions may be lost across the restart, so the leader may change once the
   * ensemble is up: the resign then goes to a leader seen steady. etcd's first leader after the
   * restart is the one that resigns.
   */
  readonly leaderMayChangeAfterRestart: boolean;
  readonly checks: FaultChecks;
}

/** One test's servers, candidates and reporting. */
export interface FaultScenario<S> {
  readonly servers: S;
  readonly election: string;
  readonly candidates: CandidateProcess[];
  /** Starts a candidate; by default it connects to every member. */
  spawn(
    holder: string,
    endpoints?: readonly string[],
    options?: { campaign?: boolean },
  ): Promise<CandidateProcess>;
  /** A TCP proxy in front of one member (or of another port), closed after the test. */
  proxy(member: number | { port: number }): Promise<TcpProxy>;
  /** How a candidate addresses `proxy`. */
  endpointOf(proxy: TcpProxy): string;
  /**
   * Closes `close` after the test: with the proxies, while the servers still run, or (`late`)
   * with the servers.
   */
  defer(close: () => Promise<void>, late?: boolean): void;
  /** Notes a figure for the test's report (printed at its end). */
  note(line: string): void;
}

/** The harness of one backend: `scenario()` runs a test's body on fresh servers. */
export function faultHarness<S extends FaultServers>(backend: FaultBackend<S>) {
  const timing = new Timing(backend.ttlMs);

  /**
   * Runs `body` against fresh servers; then stops every candidate (which flushes the records of
   * the terms still running) and checks the history of all of them and G7. Prints the timeline
   * of events when anything fails (TENURE_FAULTS_TIMELINE=1: always). Cleans up in any case.
   */
  async function scenario(
    name: string,
    body: (s: FaultScenario<S>) => Promise<void>,
  ): Promise<void> {
    assertBuilt(backend.packages);
    const t0 = monotonicNow();
    const candidates: CandidateProcess[] = [];
    const proxies: TcpProxy[] = [];
    const early: (() => Promise<void>)[] = [];
    const late: (() => Promise<void>)[] = [];
    const notes: string[] = [];
    const servers = await backend.start();
    notes.push(`servers up in ${(monotonicNow() - t0).toFixed(0)} ms`);
    let failure: { error: unknown } | undefined;
    try {
      const s: FaultScenario<S> = {
        servers,
        election: name,
        candidates,
        spawn: async (holder, endpoints, options = {}) => {
          const candidate = await CandidateProcess.start({
            holder,
            endpoints: endpoints ?? backend.endpoints(servers),
            ttlMs: backend.ttlMs,
            election: name,
            fixture: backend.fixture,
            ...(options.campaign === false ? { campaign: false } : {}),
          });
          candidates.push(candidate);
          return candidate;
        },
        proxy: async (member) => {
          const port =
            typeof member === 'number' ? backend.clientPort(servers, member) : member.port;
          const proxy = await startTcpProxy({ host: '127.0.0.1', port });
          proxies.push(proxy);
          return proxy;
        },
        endpointOf: (proxy) => backend.proxyEndpoint(proxy),
        defer: (close, isLate = false) => (isLate ? late : early).push(close),
        note: (line) => notes.push(line),
      };
      await body(s);
      await stopAll(candidates);
      assertHistory(candidates.flatMap((c) => c.history(name)));
      const forced = candidates.filter((c) => c.forcedStop).map((c) => c.holder);
      expect(forced, 'candidates that had to be killed after `exit`').toEqual([]);
    } catch (error) {
      failure = { error };
    }
    // Candidates first, while the servers still run (a close that cannot reach them is another
    // test).
    const cleanup = await Promise.allSettled([
      stopAll(candidates),
      ...proxies.map((p) => p.close()),
      ...early.map((close) => close()),
    ]);
    cleanup.push(...(await Promise.allSettled([...late.map((close) => close()), servers.stop()])));
    // G7: every candidate exits by itself after close(); one still alive 5 s later fails the test.
    const breaches = lingeringBreaches(candidates, proxies);
    if (breaches.length > 0 && !failure) failure = { error: new Error(breaches.join('\n')) };
    notes.push(...breaches);
    const label = `[${backend.name} ${name}]`;
    if (failure || process.env.TENURE_FAULTS_TIMELINE) {
      console.log(`${label} timeline (ms since the test began):\n${timeline(candidates, t0)}`);
      for (const c of candidates) {
        if (c.stderr) console.log(`${label} ${c.holder} stderr:\n${c.stderr}`);
      }
    }
    if (notes.length > 0) console.log(`${label} ${notes.join('; ')}`);
    if (failure) throw failure.error;
    for (const result of cleanup) {
      if (result.status === 'rejected') throw result.reason;
    }
  }

  return { timing, scenario, ...candidateQueries(timing) };
}

/**
 * Describes the scenarios every arbitrator runs, (a) to (e), on `backend`'s servers; `more`
 * adds the backend's own, in the same sequential suite.
 */
export function describeFaultScenarios<S extends FaultServers>(
  backend: FaultBackend<S>,
  more?: (harness: ReturnType<typeof faultHarness<S>>) => void,
): void {
  const harness = faultHarness(backend);
  const { timing, scenario, queue, queueEntries, queueOrder, firstEvent, steadyLeader } = harness;
  const { checks, ttlMs, ttlName } = backend;
  /** `(ms / ttl)×`, for the notes. */
  const inTtls = (ms: number) => `${(ms / ttlMs).toFixed(2)} × ${ttlName}`;

  describe.sequential(backend.suite, () => {
    it(
      `(a) SIGKILL of the leader process: the next candidate leads within ${backend.crashBound.text}`,
      () =>
        scenario('crash', async (s) => {
          const [a, b, c] = await queue(s, ['a', 'b', 'c']);
          const connected = a.all('connection')[0];
          expect(connected?.ttlMs, `${ttlName} the servers granted`).toBe(ttlMs);
          expect((await a.command('status')).valid).toBe(true);

          const killedAt = a.signal('SIGKILL');
          const next = await b.next(electedAfter(killedAt), {
            timeoutMs: timing.expiryMs,
            what: 'b to lead after the kill',
          });
          const failoverMs = next.t - killedAt;
          s.note(
            `crash failover (SIGKILL → next elected): ${failoverMs.toFixed(0)} ms (${inTtls(failoverMs)})`,
          );
          expect(failoverMs).toBeLessThan(backend.crashBound.ms);
          expect(c.all('elected'), 'c waits behind b (G5)').toEqual([]);
          await waitFor(() => a.exited, { timeoutMs: 5_000, what: 'a to exit' });

          // A graceful handover across processes, measured for the report.
          const resignAt = monotonicNow();
          expect((await b.command('resign')).ok).toBe(true);
          const after = await c.next(electedAfter(resignAt), {
            timeoutMs: timing.handoverMs,
            what: 'c to lead after b resigned',
          });
          s.note(
            `graceful handover (resign sent → next elected): ${(after.t - resignAt).toFixed(0)} ms`,
          );
          expect(epochOf(after)).toBeGreaterThan(epochOf(next));
        }),
      backend.testTimeoutMs.default,
    );

    it(
      `(b) SIGSTOP of the leader for 2 × ${ttlName}: another leads meanwhile; on waking the old term is invalid at once and its writes are refused`,
      () =>
        scenario('pause', async (s) => {
          const [a, b] = await queue(s, ['a', 'b', 'c']);
          const status = await a.command('status');
          expect(status.valid).toBe(true);
          const oldEpoch = String(status.epoch);
          const oldSession = String(status.sessionId);

          const stoppedAt = await a.pause();
          // Written while a is stopped: a runs them the moment it wakes.
          const put = a.send('put fenced-key from-a');
          const fencedPut = a.send('fenced-put fenced-key from-a');
          const bLeads = await b.next(electedAfter(stoppedAt), {
            timeoutMs: timing.expiryMs,
            what: 'b to lead while a is stopped',
          });
          await sleepUntil(stoppedAt + 2 * ttlMs);
          const resumedAt = await a.resume();
          expect(bLeads.t).toBeLessThan(resumedAt);

          const wake = await a.next((e) => e.type === 'sample' && e.t > resumedAt, {
            timeoutMs: timing.handoverMs,
            what: "a's first validity sample after waking",
          });
          expect(
            wake.gapMs as number,
            'the first tick after waking spans the pause',
          ).toBeGreaterThan(ttlMs);
          expect(wake).toMatchObject({ epoch: oldEpoch, valid: false });

          const putReply = await put(timing.handoverMs);
          expect(putReply).toMatchObject({ ok: false, code: 'LEADERSHIP_LOST' });
          // ZooKeeper's raw fenced write opens a session of its own first: the longer bound.
          const fencedReply = await fencedPut(timing.expiryMs);
          checks.fencedPutRefused(fencedReply, oldEpoch);
          const ended = await a.next((e) => e.type === 'ended' && e.epoch === oldEpoch, {
            timeoutMs: timing.handoverMs,
            what: "a's old term to end",
          });
          const fencedNote = checks.fencedPutNote(fencedReply);
          s.note(
            `first sample after waking: epoch ${String(wake.epoch)} valid=${String(wake.valid)} (tick gap ${String(wake.gapMs)} ms); a's old term ended "${String(ended.reason)}" ${(ended.t - resumedAt).toFixed(0)} ms after SIGCONT; b elected ${(bLeads.t - stoppedAt).toFixed(0)} ms after SIGSTOP (${inTtls(bLeads.t - stoppedAt)}); put refused: ${String(putReply.message)}${fencedNote ? `; ${fencedNote}` : ''}`,
          );
          // Let a rejoin and run a while: it must never see its old term valid again.
          await checks.rejoinAfterPause(harness, s, a, b, { resumedAt, oldEpoch, oldSession });
          const revived = a.all('sample', resumedAt).filter((e) => e.epoch === oldEpoch && e.valid);
          expect(revived, 'samples of the old term seen valid after waking').toEqual([]);
        }),
      backend.testTimeoutMs.default,
    );

    it(
      `(c) the leader's connection ${backend.words.cut} for 2 × ${ttlName}: its term ends 'expired' before the next begins; after restore it rejoins with a larger epoch`,
      () =>
        scenario('partition', async (s) => {
          const proxy = await s.proxy(0);
          const [a, b, c] = await queue(s, ['a', 'b', 'c'], (h) =>
            h === 'a' ? [s.endpointOf(proxy)] : undefined,
          );
          const oldEpoch = epochOf(a.all('elected')[0]!);

          const cutAt = monotonicNow();
          proxy.cut();
          const ended = await a.next((e) => e.type === 'ended' && e.t > cutAt, {
            timeoutMs: timing.expiryMs,
            what: "a's term to end during the cut",
          });
          const bLeads = await b.next(electedAfter(cutAt), {
            timeoutMs: timing.expiryMs,
            what: 'b to lead during the cut',
          });
          expect(ended.reason).toBe('expired');
          expect(ended.t, "a's term ended before b's began").toBeLessThan(bLeads.t);
          const cutNote = checks.whileCut(a, cutAt);
          s.note(
            `cut → ${cutNote ? `${cutNote}, → ` : ''}a ended: ${(ended.t - cutAt).toFixed(0)} ms, → b elected: ${(bLeads.t - cutAt).toFixed(0)} ms (${(bLeads.t - ended.t).toFixed(0)} ms after a's end)`,
          );
          await sleepUntil(cutAt + 2 * ttlMs);
          const restoredAt = monotonicNow();
          proxy.restore();

          // Back in the queue with a new key (its lease, or session, expired during the cut).
          let back: { value: string; epoch: bigint } | undefined;
          try {
            back = await waitFor(
              async () =>
                (await queueEntries(b)).find((e) => e.value === 'a' && e.epoch > oldEpoch),
              { timeoutMs: timing.expiryMs, intervalMs: 100, what: 'a to rejoin the queue' },
            );
          } catch (error) {
            const last = a.all('error', restoredAt).at(-1);
            throw new Error(
              `a did not rejoin within ${timing.expiryMs} ms after the proxy was restored; its requests still fail: ${String(last?.message ?? 'no error reported')}`,
              { cause: error },
            );
          }
          const restoreNote = checks.afterRestore(a, cutAt, restoredAt);
          s.note(
            `restore → a back in the queue: ${(monotonicNow() - restoredAt).toFixed(0)} ms${restoreNote ? ` (${restoreNote})` : ''}`,
          );
          expect(await queueOrder(b)).toEqual(['b', 'c', 'a']);

          // Hand over twice: c, then a leads again, with its new (larger) epoch.
          let since = monotonicNow();
          await b.command('resign');
          const cLeads = await c.next(electedAfter(since), {
            timeoutMs: timing.handoverMs,
            what: 'c to lead',
          });
          // a's leader watch lived through the cut (its stream was on the black-holed
          // connection) and the new lease or session: it must report c, not stay silent.
          const seen = await a.next(
            (e) => e.type === 'leader' && e.epoch === String(epochOf(cLeads)),
            { timeoutMs: timing.expiryMs, what: "a's leader-changed to c" },
          );
          s.note(`a saw c lead ${(seen.t - cLeads.t).toFixed(0)} ms after c's elected`);
          since = monotonicNow();
          await c.command('resign');
          const aLeads = await a.next(electedAfter(since), {
            timeoutMs: timing.handoverMs,
            what: 'a to lead again',
          });
          expect(epochOf(aLeads)).toBe(back.epoch);
          expect(epochOf(aLeads)).toBeGreaterThan(oldEpoch);
        }),
      backend.testTimeoutMs.default,
    );

    it(
      `(d) kill of the ${backend.words.serverLeader}: no overlap, and elections go on (each resign hands over to the next in the queue)`,
      () =>
        scenario(backend.serverLeaderKill.election, async (s) => {
          const all = await queue(s, ['a', 'b', 'c']);
          const serverLeader = await s.servers.leader();
          const killedAt = monotonicNow();
          await serverLeader.kill();
          const successor = await s.servers.leader();
          s.note(
            `killed the ${backend.words.serverLeader} ${serverLeader.name}, ${successor.name} leads ${(monotonicNow() - killedAt).toFixed(0)} ms later`,
          );

          // Several handovers with one member down: a client may send a request (a resign's
          // delete among them) to the dead member; a handover must not depend on which member
          // a request went to.
          const handovers: string[] = [];
          for (let round = 1; round <= backend.serverLeaderKill.rounds; round += 1) {
            const { leader, epoch, order } = await steadyLeader(all);
            const resignAt = monotonicNow();
            const resigned = await leader.command('resign', timing.handoverMs);
            expect(resigned.ok).toBe(true);
            const next = await firstEvent(all, electedAfter(resignAt), {
              timeoutMs: timing.handoverMs,
              what: `the next candidate to lead after ${leader.holder} resigned (round ${round})`,
            });
            if (next.holder === leader.holder && String(next.epoch) === epoch) {
              const failedLeave = leader
                .all('error', resignAt)
                .find((e) => /leave/.test(String(e.message)));
              throw new Error(
                `round ${round}: ${leader.holder} resigned its term with epoch ${epoch}, then was elected again with the same epoch ${epoch} (resign's delete ${failedLeave ? `failed: ${String(failedLeave.message)}` : 'was not seen to fail'}): no handover to ${String(order[1])}, and a new term reused an ended term's epoch (G2)`,
              );
            }
            expect(next.holder, `round ${round}: the next in the queue leads (G5)`).toBe(order[1]);
            expect(epochOf(next)).toBeGreaterThan(BigInt(epoch));
            handovers.push((next.t - resignAt).toFixed(0));
          }
          const ends = all
            .flatMap((c) => c.all('ended', killedAt))
            .filter((e) => e.reason !== 'resigned');
          s.note(
            `terms ended involuntarily after the kill: ${ends.map((e) => `${e.holder}:${String(e.reason)}`).join(', ') || 'none'}; handovers (resign sent → next elected): ${handovers.join(', ')} ms`,
          );
        }),
      backend.testTimeoutMs.default,
    );

    it(
      `(e) the whole ${backend.words.servers} down for 10 s: every term ends, then leadership resumes with larger epochs`,
      () =>
        scenario('outage', async (s) => {
          const all = await queue(s, ['a', 'b', 'c']);
          let maxBefore = 0n;
          for (const e of all.flatMap((c) => c.all('elected'))) {
            if (epochOf(e) > maxBefore) maxBefore = epochOf(e);
          }

          const stoppedAt = monotonicNow();
          await s.servers.stopAll();
          const downAt = monotonicNow();
          const ended = await firstEvent(all, (e) => e.type === 'ended' && e.t > stoppedAt, {
            timeoutMs: timing.expiryMs,
            what: "the leader's term to end during the outage",
          });
          await sleepUntil(stoppedAt + 10_000);
          for (const candidate of all) {
            const status = await candidate.command('status');
            expect(status, `${candidate.holder} during the outage`).toMatchObject({
              leading: false,
              valid: false,
            });
          }
          const startAt = monotonicNow();
          await s.servers.startAll();
          const upAt = monotonicNow();
          expect(all.flatMap((c) => c.all('elected', downAt)).filter((e) => e.t < startAt)).toEqual(
            [],
          );

          const next = await firstEvent(all, electedAfter(stoppedAt), {
            timeoutMs: 3 * timing.expiryMs,
            what: 'a leader after the restart',
          });
          expect(epochOf(next)).toBeGreaterThan(maxBefore);
          const restartNote = checks.afterRestart(all, startAt);
          s.note(
            `${ended.holder}'s term ended "${String(ended.reason)}" ${(ended.t - stoppedAt).toFixed(0)} ms after stopAll began (down ${(downAt - stoppedAt).toFixed(0)} ms after); up ${(upAt - startAt).toFixed(0)} ms after startAll; ${next.holder} elected ${(next.t - upAt).toFixed(0)} ms after the servers were up${restartNote ? `; ${restartNote}` : ''}`,
          );

          // Elections go on: the leader resigns, the next one in the queue leads.
          const { leader, epoch, order } = backend.leaderMayChangeAfterRestart
            ? await steadyLeader(all)
            : await firstLeader(all, next);
          const resignAt = monotonicNow();
          await leader.command('resign', timing.handoverMs);
          const after = await firstEvent(all, electedAfter(resignAt), {
            timeoutMs: timing.handoverMs,
            what: 'the next leader after a resign',
          });
          expect(after.holder).toBe(order[1]);
          expect(epochOf(after)).toBeGreaterThan(BigInt(epoch));
        }),
      backend.testTimeoutMs.outage,
    );

    more?.(harness);
  });

  /** The candidate of `elected`, its epoch and the queue as it reads it. */
  async function firstLeader(
    all: readonly CandidateProcess[],
    elected: CandidateEvent,
  ): Promise<{ leader: CandidateProcess; epoch: string; order: string[] }> {
    const leader = all.find((c) => c.holder === elected.holder)!;
    return { leader, epoch: String(elected.epoch), order: await queueOrder(leader) };
  }
}
