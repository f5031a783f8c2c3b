// Fault tests of the ZooKeeper adapter on a real three-server ensemble (tickTime 200 ms). Every
// candidate runs in its own process (test/fixtures/zookeeper-candidate.mjs, on the built
// packages) with a 2 s session timeout and reports its terms timed on the machine's monotonic
// clock; each test checks the combined history (G1: no two valid terms overlap; G2: epochs
// strictly increase) besides its own assertions.
//
// The one timing threshold is guarantee G3's crash bound in (a). Every other wait is bounded
// only so that a hang fails with a message, never as a performance expectation.
import { describe, expect, it } from 'vitest';
import {
  checkHistory,
  HistoryViolationError,
  monotonicNow,
  startTcpProxy,
  startZooKeeperEnsemble,
  type TcpProxy,
  Timing,
  waitFor,
  type ZooKeeperEnsemble,
} from '../../packages/testkit/src/index.js';
import {
  assertBuilt,
  CandidateProcess,
  lingeringBreaches,
  stopAll,
  timeline,
} from '../etcd-faults/candidate-process.js';
import {
  candidateQueries,
  electedAfter,
  epochOf,
  type QueueEntry,
  sleepUntil,
} from '../faults/candidate-queries.js';
import { connectRaw, type RawZooKeeper } from './raw-zookeeper.js';
import { type RequestTap, startRequestTap } from './request-tap.js';

/** The session timeout every candidate asks for (the ensemble grants it: 2 s is 10 ticks). */
const SESSION_TIMEOUT_MS = 2_000;
const TICK_MS = 200;
/** Guarantee G3 for a crash: the session timeout + the server's expiry granularity + 1.5 s. */
const CRASH_FAILOVER_BOUND_MS = SESSION_TIMEOUT_MS + TICK_MS + 1_500;
/** The root under which the candidates' elections live (the adapter's default). */
const ROOT = '/tenure';
const timing = new Timing(SESSION_TIMEOUT_MS);
const { queue, queueEntries, queueOrder, firstEvent, steadyLeader } = candidateQueries(timing);
const FIXTURE = 'zookeeper-candidate.mjs';

interface Scenario {
  readonly ensemble: ZooKeeperEnsemble;
  readonly election: string;
  /** The latch path of the election: the parent of the candidates' znodes. */
  readonly latch: string;
  readonly candidates: CandidateProcess[];
  /** Starts a candidate; by default it connects to every server. */
  spawn(
    holder: string,
    endpoints?: readonly string[],
    options?: { campaign?: boolean },
  ): Promise<CandidateProcess>;
  /** A TCP proxy in front of one server (or of another port), closed after the test. */
  proxy(member: number | { port: number }): Promise<TcpProxy>;
  /** A request tap in front of one server, closed after the test. */
  tap(member: number, match: (path: string) => boolean, onCreate: () => void): Promise<RequestTap>;
  /** A plain client session on the ensemble, closed after the test. */
  raw(): Promise<RawZooKeeper>;
  /** Notes a figure for the test's report (printed at its end). */
  note(line: string): void;
}

/**
 * Runs `body` against a fresh three-server ensemble; then stops every candidate (which flushes
 * the records of the terms still running) and checks the history of all of them. Prints the
 * timeline of events when anything fails. Cleans up everything in any case.
 */
async function scenario(name: string, body: (s: Scenario) => Promise<void>): Promise<void> {
  assertBuilt(['core', 'zookeeper', 'testkit']);
  const t0 = monotonicNow();
  const candidates: CandidateProcess[] = [];
  const proxies: TcpProxy[] = [];
  const taps: RequestTap[] = [];
  const raws: RawZooKeeper[] = [];
  const notes: string[] = [];
  const ensemble = await startZooKeeperEnsemble(3, { tickTimeMs: TICK_MS });
  notes.push(`ensemble up in ${(monotonicNow() - t0).toFixed(0)} ms`);
  let failure: { error: unknown } | undefined;
  try {
    const s: Scenario = {
      ensemble,
      election: name,
      latch: `${ROOT}/${name}`,
      candidates,
      spawn: async (holder, endpoints, options = {}) => {
        const candidate = await CandidateProcess.start({
          holder,
          endpoints: endpoints ?? ensemble.members.map((m) => m.connectString),
          ttlMs: SESSION_TIMEOUT_MS,
          election: name,
          fixture: FIXTURE,
          ...(options.campaign === false ? { campaign: false } : {}),
        });
        candidates.push(candidate);
        return candidate;
      },
      proxy: async (member) => {
        const port =
          typeof member === 'number' ? ensemble.members[member]!.clientPort : member.port;
        const proxy = await startTcpProxy({ host: '127.0.0.1', port });
        proxies.push(proxy);
        return proxy;
      },
      tap: async (member, match, onCreate) => {
        const port = ensemble.members[member]!.clientPort;
        const tap = await startRequestTap({ host: '127.0.0.1', port }, match, onCreate);
        taps.push(tap);
        return tap;
      },
      raw: async () => {
        const raw = await connectRaw(ensemble.connectString, timing.handoverMs);
        raws.push(raw);
        return raw;
      },
      note: (line) => notes.push(line),
    };
    await body(s);
    await stopAll(candidates);
    const violations = checkHistory(candidates.flatMap((c) => c.history(name)));
    if (violations.length > 0) throw new HistoryViolationError(violations);
    const killed = candidates.filter((c) => c.forcedStop).map((c) => c.holder);
    expect(killed, 'candidates that had to be killed after `exit`').toEqual([]);
  } catch (error) {
    failure = { error };
  }
  // Candidates first, while ZooKeeper still runs (a close that cannot reach it is another test).
  const cleanup = await Promise.allSettled([
    stopAll(candidates),
    ...proxies.map((p) => p.close()),
    ...raws.map((r) => r.close()),
  ]);
  cleanup.push(...(await Promise.allSettled([...taps.map((t) => t.close()), ensemble.stop()])));
  // G7: every candidate exits by itself after close(); one still alive 5 s later fails the test.
  const breaches = lingeringBreaches(candidates, proxies);
  if (breaches.length > 0 && !failure) failure = { error: new Error(breaches.join('\n')) };
  notes.push(...breaches);
  // TENURE_FAULTS_TIMELINE=1 prints the timeline of a passing test too.
  if (failure || process.env.TENURE_FAULTS_TIMELINE) {
    console.log(`[zk ${name}] timeline (ms since the test began):\n${timeline(candidates, t0)}`);
    for (const c of candidates) {
      if (c.stderr) console.log(`[zk ${name}] ${c.holder} stderr:\n${c.stderr}`);
    }
  }
  if (notes.length > 0) console.log(`[zk ${name}] ${notes.join('; ')}`);
  if (failure) throw failure.error;
  for (const result of cleanup) {
    if (result.status === 'rejected') throw result.reason;
  }
}

/** Starts candidates one after another, each in the queue before the next starts (G5 order). */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `_c_<uuid>-latch-` of a candidate's node (a path or a name). */
function prefixOf(key: string): string {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const match = /^(_c_[0-9a-f-]{36}-latch-)-?\d+$/.exec(name);
  if (!match) throw new Error(`${key} is not a candidate node of tenure's layout`);
  return match[1]!;
}

/** `(ms / timeout)×`, for the notes. */
function inTimeouts(ms: number): string {
  return `${(ms / SESSION_TIMEOUT_MS).toFixed(2)} × the session timeout`;
}

describe.sequential('ZooKeeper faults, candidates in separate processes, three-server ensemble', () => {
  it(
    '(a) SIGKILL of the leader process: the next candidate leads within timeout + tickTime + 1.5 s',
    () =>
      scenario('crash', async (s) => {
        const [a, b, c] = await queue(s, ['a', 'b', 'c']);
        const connected = a.all('connection')[0];
        expect(connected?.ttlMs, 'the session timeout the ensemble granted').toBe(
          SESSION_TIMEOUT_MS,
        );
        expect((await a.command('status')).valid).toBe(true);

        const killedAt = a.signal('SIGKILL');
        const next = await b.next(electedAfter(killedAt), {
          timeoutMs: timing.expiryMs,
          what: 'b to lead after the kill',
        });
        const failoverMs = next.t - killedAt;
        s.note(
          `crash failover (SIGKILL → next elected): ${failoverMs.toFixed(0)} ms (${inTimeouts(failoverMs)})`,
        );
        expect(failoverMs).toBeLessThan(CRASH_FAILOVER_BOUND_MS);
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
    90_000,
  );

  it(
    '(b) SIGSTOP of the leader for 2 × the session timeout: another leads meanwhile; on waking the old term is invalid at once and its writes are refused',
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
        await sleepUntil(stoppedAt + 2 * SESSION_TIMEOUT_MS);
        const resumedAt = await a.resume();
        expect(bLeads.t).toBeLessThan(resumedAt);

        const wake = await a.next((e) => e.type === 'sample' && e.t > resumedAt, {
          timeoutMs: timing.handoverMs,
          what: "a's first validity sample after waking",
        });
        expect(wake.gapMs as number, 'the first tick after waking spans the pause').toBeGreaterThan(
          SESSION_TIMEOUT_MS,
        );
        expect(wake).toMatchObject({ epoch: oldEpoch, valid: false });

        const putReply = await put(timing.handoverMs);
        expect(putReply).toMatchObject({ ok: false, code: 'LEADERSHIP_LOST' });
        const fencedReply = await fencedPut(timing.expiryMs);
        expect(
          fencedReply,
          "ZooKeeper refuses a multi that checks the old term's node: the node is gone",
        ).toMatchObject({ ok: true, epoch: oldEpoch, succeeded: false, zkCode: -101 });
        const ended = await a.next((e) => e.type === 'ended' && e.epoch === oldEpoch, {
          timeoutMs: timing.handoverMs,
          what: "a's old term to end",
        });
        s.note(
          `first sample after waking: epoch ${String(wake.epoch)} valid=${String(wake.valid)} (tick gap ${String(wake.gapMs)} ms); a's old term ended "${String(ended.reason)}" ${(ended.t - resumedAt).toFixed(0)} ms after SIGCONT; b elected ${(bLeads.t - stoppedAt).toFixed(0)} ms after SIGSTOP (${inTimeouts(bLeads.t - stoppedAt)}); put refused: ${String(putReply.message)}; raw fenced multi refused: ${String(fencedReply.zkError)}`,
        );
        // Let a rejoin on a new session and run a while: it must never see its old term valid
        // again.
        const rejoined = await a.next(
          (e) =>
            e.type === 'connection' &&
            e.t > resumedAt &&
            e.state === 'reconnected' &&
            e.sessionId !== oldSession,
          { timeoutMs: timing.expiryMs, what: 'a to open a new session' },
        );
        s.note(`a on a new session ${(rejoined.t - resumedAt).toFixed(0)} ms after SIGCONT`);
        await waitFor(
          async () =>
            (await queueEntries(b)).some((e) => e.value === 'a' && e.epoch > BigInt(oldEpoch)),
          { timeoutMs: timing.expiryMs, intervalMs: 100, what: 'a back in the queue' },
        );
        const revived = a.all('sample', resumedAt).filter((e) => e.epoch === oldEpoch && e.valid);
        expect(revived, 'samples of the old term seen valid after waking').toEqual([]);
      }),
    90_000,
  );

  it(
    "(c) the leader's connection black-holed for 2 × the session timeout: its term ends 'expired' before the next begins; after restore it rejoins with a larger epoch",
    () =>
      scenario('partition', async (s) => {
        const proxy = await s.proxy(0);
        const [a, b, c] = await queue(s, ['a', 'b', 'c'], (h) =>
          h === 'a' ? [proxy.endpoint] : undefined,
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
        const suspended = a.all('connection', cutAt).find((e) => e.state === 'suspended');
        // node-zookeeper-client has no read timeout: through the black hole it goes on saying
        // SYNC_CONNECTED until tenure's heartbeat, unanswered, drops its socket.
        const clientSaw = a.all('client', cutAt)[0];
        expect(suspended, "a's heartbeat to go unanswered").toBeDefined();
        expect(
          clientSaw === undefined || clientSaw.t >= suspended!.t,
          `the client library reported nothing before tenure's watchdog (it reported ${JSON.stringify(clientSaw)})`,
        ).toBe(true);
        s.note(
          `cut → a suspended (heartbeat unanswered, socket dropped): ${(suspended!.t - cutAt).toFixed(0)} ms, → the client library's first state change: ${clientSaw ? `${String(clientSaw.state)} at ${(clientSaw.t - cutAt).toFixed(0)} ms` : 'none'}, → a ended: ${(ended.t - cutAt).toFixed(0)} ms, → b elected: ${(bLeads.t - cutAt).toFixed(0)} ms (${(bLeads.t - ended.t).toFixed(0)} ms after a's end)`,
        );
        await sleepUntil(cutAt + 2 * SESSION_TIMEOUT_MS);
        const restoredAt = monotonicNow();
        proxy.restore();

        // Back in the queue with a new node (its session expired during the cut).
        let back: QueueEntry | undefined;
        try {
          back = await waitFor(
            async () => (await queueEntries(b)).find((e) => e.value === 'a' && e.epoch > oldEpoch),
            { timeoutMs: timing.expiryMs, intervalMs: 100, what: 'a to rejoin the queue' },
          );
        } catch (error) {
          const last = a.all('error', restoredAt).at(-1);
          throw new Error(
            `a did not rejoin within ${timing.expiryMs} ms after the proxy was restored; its requests still fail: ${String(last?.message ?? 'no error reported')}`,
            { cause: error },
          );
        }
        const lost = a.all('connection', cutAt).find((e) => e.state === 'lost');
        s.note(
          `restore → a back in the queue: ${(monotonicNow() - restoredAt).toFixed(0)} ms (a told its session was lost ${lost ? `${(lost.t - restoredAt).toFixed(0)} ms after restore` : 'never'})`,
        );
        expect(await queueOrder(b)).toEqual(['b', 'c', 'a']);

        // Hand over twice: c, then a leads again, with its new (larger) epoch.
        let since = monotonicNow();
        await b.command('resign');
        const cLeads = await c.next(electedAfter(since), {
          timeoutMs: timing.handoverMs,
          what: 'c to lead',
        });
        // a's leader watch lived through the cut and the new session: it must report c.
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
    90_000,
  );

  it(
    '(d) kill of the ZooKeeper leader server: no overlap, and elections go on (each resign hands over to the next in the queue)',
    () =>
      scenario('zk-leader', async (s) => {
        const all = await queue(s, ['a', 'b', 'c']);
        const zkLeader = await s.ensemble.leader();
        const killedAt = monotonicNow();
        await zkLeader.kill();
        const successor = await s.ensemble.leader();
        s.note(
          `killed ZooKeeper leader ${zkLeader.name}, ${successor.name} leads a quorum ${(monotonicNow() - killedAt).toFixed(0)} ms later`,
        );

        const handovers: string[] = [];
        for (let round = 1; round <= 4; round += 1) {
          const { leader, epoch, order } = await steadyLeader(all);
          const resignAt = monotonicNow();
          const resigned = await leader.command('resign', timing.handoverMs);
          expect(resigned.ok).toBe(true);
          const next = await firstEvent(all, electedAfter(resignAt), {
            timeoutMs: timing.handoverMs,
            what: `the next candidate to lead after ${leader.holder} resigned (round ${round})`,
          });
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
    90_000,
  );

  it(
    '(e) the whole ensemble down for 10 s: every term ends, then leadership resumes with larger epochs',
    () =>
      scenario('outage', async (s) => {
        const all = await queue(s, ['a', 'b', 'c']);
        let maxBefore = 0n;
        for (const e of all.flatMap((c) => c.all('elected'))) {
          if (epochOf(e) > maxBefore) maxBefore = epochOf(e);
        }

        const stoppedAt = monotonicNow();
        await s.ensemble.stopAll();
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
        await s.ensemble.startAll();
        const upAt = monotonicNow();
        expect(all.flatMap((c) => c.all('elected', downAt)).filter((e) => e.t < startAt)).toEqual(
          [],
        );

        const next = await firstEvent(all, electedAfter(stoppedAt), {
          timeoutMs: 3 * timing.expiryMs,
          what: 'a leader after the restart',
        });
        expect(epochOf(next)).toBeGreaterThan(maxBefore);
        const lost = all
          .flatMap((c) => c.all('connection', startAt))
          .filter((e) => e.state === 'lost');
        s.note(
          `${ended.holder}'s term ended "${String(ended.reason)}" ${(ended.t - stoppedAt).toFixed(0)} ms after stopAll began (ensemble down ${(downAt - stoppedAt).toFixed(0)} ms after); ensemble up ${(upAt - startAt).toFixed(0)} ms after startAll; ${next.holder} elected ${(next.t - upAt).toFixed(0)} ms after the ensemble was up; sessions lost after the restart: ${lost.map((e) => e.holder).join(', ') || 'none'}`,
        );

        // Elections go on: the leader resigns, the next one in the queue leads.
        const { leader, epoch, order } = await steadyLeader(all);
        const resignAt = monotonicNow();
        await leader.command('resign', timing.handoverMs);
        const after = await firstEvent(all, electedAfter(resignAt), {
          timeoutMs: timing.handoverMs,
          what: 'the next leader after a resign',
        });
        expect(after.holder).toBe(order[1]);
        expect(epochOf(after)).toBeGreaterThan(BigInt(epoch));
      }),
    120_000,
  );

  it(
    "(f) forced expiry of the leader's session: its term ends 'session-lost', the next leads, it rejoins with a larger epoch",
    () =>
      scenario('expiry', async (s) => {
        const [a, b, c] = await queue(s, ['a', 'b', 'c']);
        const status = await a.command('status');
        const oldEpoch = BigInt(String(status.epoch));
        const oldSession = String(status.sessionId);

        // a's term ends before the server ends its session: no overlap with b's (G1).
        const expireAt = monotonicNow();
        const expired = await a.command('expire', timing.expiryMs);
        expect(expired).toMatchObject({ ok: true, sessionId: oldSession });
        const ended = await a.next((e) => e.type === 'ended' && e.t > expireAt, {
          timeoutMs: timing.expiryMs,
          what: "a's term to end",
        });
        expect(ended).toMatchObject({ epoch: String(oldEpoch), reason: 'session-lost' });
        const bLeads = await b.next(electedAfter(expireAt), {
          timeoutMs: timing.expiryMs,
          what: 'b to lead after the expiry',
        });
        expect(c.all('elected'), 'c waits behind b (G5)').toEqual([]);
        const back = await waitFor(
          async () => (await queueEntries(b)).find((e) => e.value === 'a' && e.epoch > oldEpoch),
          { timeoutMs: timing.expiryMs, intervalMs: 100, what: 'a to rejoin the queue' },
        );
        const newSession = String((await a.command('status')).sessionId);
        expect(newSession).not.toBe(oldSession);
        s.note(
          `expireSession() → a ended "session-lost": ${(ended.t - expireAt).toFixed(0)} ms, → b elected: ${(bLeads.t - expireAt).toFixed(0)} ms (${(bLeads.t - ended.t).toFixed(0)} ms after a's end); a rejoined on session ${newSession}`,
        );
        expect(await queueOrder(b)).toEqual(['b', 'c', 'a']);

        let since = monotonicNow();
        await b.command('resign');
        await c.next(electedAfter(since), { timeoutMs: timing.handoverMs, what: 'c to lead' });
        since = monotonicNow();
        await c.command('resign');
        const aLeads = await a.next(electedAfter(since), {
          timeoutMs: timing.handoverMs,
          what: 'a to lead again',
        });
        expect(epochOf(aLeads)).toBe(back.epoch);
      }),
    90_000,
  );

  it(
    '(g) a create whose reply is lost: the candidate adopts the node it made; exactly one node of it, no orphan, no second candidacy',
    () =>
      scenario('lost-reply', async (s) => {
        const [a] = await queue(s, ['a']);
        const raw = await s.raw();
        // d → proxy → tap → server 0: the tap cuts the proxy the moment it has passed d's create
        // of its candidate node on to the server, so the server makes the node and its reply
        // is dropped.
        let cutAt: number | undefined;
        let proxy: TcpProxy | undefined;
        const tap = await s.tap(
          0,
          (path) => path.startsWith(`${s.latch}/_c_`),
          () => {
            proxy!.cut();
            cutAt = monotonicNow();
          },
        );
        proxy = await s.proxy({ port: tap.port });
        const d = await s.spawn('d', [proxy.endpoint]);
        await waitFor(() => cutAt, {
          timeoutMs: timing.expiryMs,
          what: "d's create of its candidate node",
        });
        const connected = await d.next((e) => e.type === 'connection', {
          timeoutMs: timing.handoverMs,
          what: 'd connected',
        });
        const sentPrefix = prefixOf(`${tap.matched!}0000000000`);
        // The node exists on the server, though d never heard of it.
        const made = await waitFor(
          async () => {
            const names = (await raw.children(s.latch)).filter((n) => n.startsWith(sentPrefix));
            return names.length > 0 ? names : undefined;
          },
          { timeoutMs: timing.handoverMs, intervalMs: 20, what: 'the node of the lost create' },
        );
        expect(made, 'nodes the lost create made').toHaveLength(1);
        // A short cut: d's session outlives it, so its retried join finds the node by its prefix.
        await sleepUntil(cutAt! + 300);
        const restoredAt = monotonicNow();
        proxy.restore();

        // a hands over at once: d leads as soon as its join has found its node.
        await a.command('resign');
        const dLeads = await d.next(electedAfter(restoredAt), {
          timeoutMs: timing.expiryMs,
          what: 'd to lead',
        });
        // Let d's retries settle (a late duplicate would show up within a few requests).
        await sleep(SESSION_TIMEOUT_MS);
        const names = await raw.children(s.latch);
        const entries = await queueEntries(a);
        const dStatus = await d.command('status');
        const sameSession = dStatus.sessionId === connected.sessionId;
        const ofPrefix = (prefix: string) => names.filter((n) => n.startsWith(prefix));
        const client = d
          .all('client', cutAt!)
          .filter((e) => e.t < dLeads.t)
          .map((e) => `${String(e.state)} +${(e.t - cutAt!).toFixed(0)}`);
        s.note(
          `create cut ${(cutAt! - connected.t).toFixed(0)} ms after d's session opened, restored 300 ms later; d led ${(dLeads.t - restoredAt).toFixed(0)} ms after restore (its client meanwhile, ms after the cut: ${client.join(', ') || 'no change'}); d ${sameSession ? 'kept its session' : `lost its session (${String(connected.sessionId)} → ${String(dStatus.sessionId)})`}; node of the lost create: ${made.join(', ')}; d leads with: ${String(dLeads.key).slice(s.latch.length + 1)}`,
        );
        expect(
          entries.filter((e) => e.value === 'd'),
          'd is a candidate once (no second candidacy)',
        ).toHaveLength(1);
        expect(ofPrefix(prefixOf(String(dLeads.key))), "nodes with d's current prefix").toEqual([
          String(dLeads.key).slice(s.latch.length + 1),
        ]);
        expect(names, 'children of the latch: d, and a behind it').toHaveLength(2);
        expect(entries.map((e) => e.value)).toEqual(['d', 'a']);
        if (sameSession) {
          // The lost create's node was adopted, not left as an orphan beside a second one.
          expect(dLeads.key, 'd leads with the node of the lost create').toBe(
            `${s.latch}/${made[0]}`,
          );
        } else {
          // The session ended: its node went with it.
          expect(ofPrefix(sentPrefix), 'nodes of the lost create').toEqual([]);
        }
        expect(epochOf(dLeads)).toBe(entries[0]!.epoch);
      }),
    90_000,
  );

  it(
    "(h) 200 flaps of a candidate's connection leave at most one node per candidate once things settle",
    () =>
      scenario('flaps', async (s) => {
        const proxy = await s.proxy(0);
        const all = await queue(s, ['e', 'a', 'b'], (h) =>
          h === 'e' ? [proxy.endpoint] : undefined,
        );
        const raw = await s.raw();
        const e = all[0];
        let most = 0;
        let mostOfE = 0;
        let resets = 0;
        let cuts = 0;
        // e also leaves and rejoins the queue all along (a resign puts it back at the end, on
        // the same session and node prefix): its deletes and creates go through the flapping
        // connection, and some of their replies are lost.
        let rejoining: Promise<void> | undefined;
        let rejoins = 0;
        const refused: string[] = [];
        const startedAt = monotonicNow();
        for (let flap = 0; flap < 200; flap += 1) {
          if (rejoining === undefined) {
            rejoins += 1;
            rejoining = e
              .send('resign')(timing.expiryMs)
              .then(
                (reply) => {
                  if (!reply.ok) refused.push(`${String(reply.code)}: ${String(reply.message)}`);
                },
                (error: unknown) => {
                  refused.push(String(error));
                },
              )
              .finally(() => {
                rejoining = undefined;
              });
          }
          if (flap % 2 === 0) {
            proxy.reset();
            resets += 1;
          } else {
            proxy.cut();
            await sleep(20 + Math.floor(Math.random() * 130));
            proxy.restore();
            cuts += 1;
          }
          await sleep(20 + Math.floor(Math.random() * 80));
          const names = await raw.children(s.latch);
          const values = await Promise.all(names.map((n) => raw.data(`${s.latch}/${n}`)));
          most = Math.max(most, names.length);
          mostOfE = Math.max(mostOfE, values.filter((v) => v === 'e').length);
        }
        const flappedAt = monotonicNow();
        await rejoining;
        expect(refused, "e's resigns that failed").toEqual([]);
        // Settled: the sessions the flaps ended have expired (timeout + a tick) and every
        // candidate has rejoined: one node each, never more.
        await sleep(SESSION_TIMEOUT_MS + TICK_MS);
        const settled = await waitFor(
          async () => {
            const names = await raw.children(s.latch);
            const values = await Promise.all(names.map((n) => raw.data(`${s.latch}/${n}`)));
            const sorted = values.filter((v) => v !== undefined).sort();
            return sorted.join(',') === 'a,b,e' && names.length === 3 ? names : undefined;
          },
          { timeoutMs: timing.expiryMs, intervalMs: 100, what: 'one node per candidate' },
        );
        const settledAt = monotonicNow();
        let after = settled.length;
        for (let i = 0; i < 10; i += 1) {
          await sleep(SESSION_TIMEOUT_MS / 5);
          after = Math.max(after, (await raw.children(s.latch)).length);
        }
        const ends = all.flatMap((c) => c.all('ended', startedAt)).map((e) => String(e.reason));
        const count = (reason: string) => ends.filter((r) => r === reason).length;
        s.note(
          `${resets} resets + ${cuts} cuts in ${(flappedAt - startedAt).toFixed(0)} ms, ${rejoins} resign-and-rejoins of e; most children seen while flapping: ${most} (of e: ${mostOfE}); e's failed requests: ${e.all('error', startedAt).length} (creates ${e.all('error', startedAt).filter((x) => /create candidate/.test(String(x.message))).length}); one node per candidate ${(settledAt - flappedAt).toFixed(0)} ms after the last flap (polled after waiting timeout + tick); terms ended: ${ends.length} (expired ${count('expired')}, session-lost ${count('session-lost')}, other ${ends.length - count('expired') - count('session-lost')}); e's sessions: ${new Set(e.all('connection').map((c) => c.sessionId)).size}`,
        );
        expect(after, 'children of the latch path after settling').toBeLessThanOrEqual(3);

        // The election still works: a full round of handovers.
        for (let round = 1; round <= 3; round += 1) {
          const { leader, epoch, order } = await steadyLeader(all);
          const resignAt = monotonicNow();
          await leader.command('resign', timing.handoverMs);
          const next = await firstEvent(all, electedAfter(resignAt), {
            timeoutMs: timing.handoverMs,
            what: `the next leader after ${leader.holder} resigned (round ${round})`,
          });
          expect(next.holder).toBe(order[1]);
          expect(epochOf(next)).toBeGreaterThan(BigInt(epoch));
        }
      }),
    120_000,
  );
});
