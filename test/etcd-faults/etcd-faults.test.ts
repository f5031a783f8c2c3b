// Fault tests of the etcd adapter on a real three-node etcd cluster. Every candidate runs in
// its own process (test/fixtures/etcd-candidate.mjs, on the built packages) and reports its
// terms timed on the machine's monotonic clock; each test checks the combined history (G1: no
// two valid terms overlap; G2: epochs strictly increase) besides its own assertions.
//
// The one timing threshold is guarantee G3's crash bound in (a). Every other wait is bounded
// only so that a hang fails with a message, never as a performance expectation.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  assertHistory,
  type EtcdCluster,
  findEtcdBinary,
  monotonicNow,
  startEtcdCluster,
  startTcpProxy,
  type TcpProxy,
  Timing,
  waitFor,
} from '../../packages/testkit/src/index.js';
import {
  candidateQueries,
  electedAfter,
  epochOf,
  sleepUntil,
} from '../faults/candidate-queries.js';
import {
  assertBuilt,
  CandidateProcess,
  lingeringBreaches,
  stopAll,
  timeline,
} from './candidate-process.js';

/** etcd's minimum lease TTL (1.5 × its 1 s election timeout, rounded up to whole seconds). */
const TTL_MS = 2_000;
/** Guarantee G3 for a crash: ttl + the arbitrator's expiry granularity + 1 s (the issue: TTL + 1.5 s). */
const CRASH_FAILOVER_BOUND_MS = TTL_MS + 1_500;
const timing = new Timing(TTL_MS);
const { queue, queueEntries, queueOrder, firstEvent, steadyLeader } = candidateQueries(timing);
const run = promisify(execFile);

interface Scenario {
  readonly cluster: EtcdCluster;
  readonly election: string;
  readonly candidates: CandidateProcess[];
  /** Starts a candidate; by default it connects to every member. */
  spawn(holder: string, endpoints?: readonly string[]): Promise<CandidateProcess>;
  /** A TCP proxy in front of one member, closed after the test. */
  proxy(member: number): Promise<TcpProxy>;
  /** Notes a figure for the test's report (printed at its end). */
  note(line: string): void;
}

/**
 * Runs `body` against a fresh three-member cluster; then stops every candidate (which flushes
 * the records of the terms still running) and checks the history of all of them. Prints the
 * timeline of events when anything fails. Cleans up everything in any case.
 */
async function scenario(name: string, body: (s: Scenario) => Promise<void>): Promise<void> {
  assertBuilt();
  const t0 = monotonicNow();
  const candidates: CandidateProcess[] = [];
  const proxies: TcpProxy[] = [];
  const notes: string[] = [];
  const cluster = await startEtcdCluster(3);
  let failure: { error: unknown } | undefined;
  try {
    const s: Scenario = {
      cluster,
      election: name,
      candidates,
      spawn: async (holder, endpoints = cluster.endpoints) => {
        const candidate = await CandidateProcess.start({
          holder,
          endpoints,
          ttlMs: TTL_MS,
          election: name,
        });
        candidates.push(candidate);
        return candidate;
      },
      proxy: async (member) => {
        const node = cluster.nodes[member]!;
        const proxy = await startTcpProxy({ host: '127.0.0.1', port: node.clientPort });
        proxies.push(proxy);
        return proxy;
      },
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
  // Candidates first, while etcd still runs (a close that cannot reach etcd is another test).
  const cleanup = await Promise.allSettled([stopAll(candidates), ...proxies.map((p) => p.close())]);
  cleanup.push(...(await Promise.allSettled([cluster.stop()])));
  // G7: every candidate exits by itself after close(); one still alive 5 s later fails the test.
  const breaches = lingeringBreaches(candidates, proxies);
  if (breaches.length > 0 && !failure) failure = { error: new Error(breaches.join('\n')) };
  notes.push(...breaches);
  if (failure) {
    console.log(`[${name}] timeline (ms since the test began):\n${timeline(candidates, t0)}`);
    for (const c of candidates) {
      if (c.stderr) console.log(`[${name}] ${c.holder} stderr:\n${c.stderr}`);
    }
  }
  if (notes.length > 0) console.log(`[${name}] ${notes.join('; ')}`);
  if (failure) throw failure.error;
  for (const result of cleanup) {
    if (result.status === 'rejected') throw result.reason;
  }
}

/** Starts candidates one after another, each in the queue before the next starts (G5 order). */
/** Runs etcdctl (v3 API) against every member of `cluster`; resolves with its stdout. */
async function etcdctl(cluster: EtcdCluster, ...args: string[]): Promise<string> {
  const { stdout } = await run(
    findEtcdBinary('etcdctl'),
    [`--endpoints=${cluster.endpoints.join(',')}`, '--command-timeout=5s', ...args],
    { timeout: 10_000, env: { ...process.env, ETCDCTL_API: '3' } },
  );
  return stdout;
}

describe.sequential('etcd faults, candidates in separate processes, three-node cluster', () => {
  it(
    '(a) SIGKILL of the leader process: the next candidate leads within TTL + 1.5 s',
    () =>
      scenario('crash', async (s) => {
        const [a, b, c] = await queue(s, ['a', 'b', 'c']);
        const connected = a.all('connection')[0];
        expect(connected?.ttlMs, 'the TTL etcd granted').toBe(TTL_MS);
        expect((await a.command('status')).valid).toBe(true);

        const killedAt = a.signal('SIGKILL');
        const next = await b.next(electedAfter(killedAt), {
          timeoutMs: timing.expiryMs,
          what: 'b to lead after the kill',
        });
        const failoverMs = next.t - killedAt;
        s.note(`crash failover (SIGKILL → next elected): ${failoverMs.toFixed(0)} ms`);
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
    60_000,
  );

  it(
    '(b) SIGSTOP of the leader for 2 × TTL: another leads meanwhile; on waking the old term is invalid at once and its writes are refused',
    () =>
      scenario('pause', async (s) => {
        const [a, b] = await queue(s, ['a', 'b', 'c']);
        const status = await a.command('status');
        expect(status.valid).toBe(true);
        const oldEpoch = String(status.epoch);

        const stoppedAt = await a.pause();
        // Written while a is stopped: a runs them the moment it wakes.
        const put = a.send('put fenced-key from-a');
        const fencedPut = a.send('fenced-put fenced-key from-a');
        const bLeads = await b.next(electedAfter(stoppedAt), {
          timeoutMs: timing.expiryMs,
          what: 'b to lead while a is stopped',
        });
        await sleepUntil(stoppedAt + 2 * TTL_MS);
        const resumedAt = await a.resume();
        expect(bLeads.t).toBeLessThan(resumedAt);

        const wake = await a.next((e) => e.type === 'sample' && e.t > resumedAt, {
          timeoutMs: timing.handoverMs,
          what: "a's first validity sample after waking",
        });
        expect(wake.gapMs as number, 'the first tick after waking spans the pause').toBeGreaterThan(
          TTL_MS,
        );
        expect(wake).toMatchObject({ epoch: oldEpoch, valid: false });

        const putReply = await put(timing.handoverMs);
        expect(putReply).toMatchObject({ ok: false, code: 'LEADERSHIP_LOST' });
        const fencedReply = await fencedPut(timing.handoverMs);
        expect(fencedReply, 'etcd refuses a transaction fenced by the old term').toMatchObject({
          ok: true,
          succeeded: false,
        });
        const ended = await a.next((e) => e.type === 'ended' && e.epoch === oldEpoch, {
          timeoutMs: timing.handoverMs,
          what: "a's old term to end",
        });
        s.note(
          `first sample after waking: epoch ${String(wake.epoch)} valid=${String(wake.valid)} (tick gap ${String(wake.gapMs)} ms); a's old term ended "${String(ended.reason)}" ${(ended.t - resumedAt).toFixed(0)} ms after SIGCONT; b elected ${(bLeads.t - stoppedAt).toFixed(0)} ms after SIGSTOP; put refused: ${String(putReply.message)}`,
        );
        // Let a rejoin and run a while: it must never see its old term valid again.
        await a.next((e) => e.type === 'connection' && e.t > resumedAt, {
          timeoutMs: timing.expiryMs,
          what: 'a to open a new session',
        });
        const revived = a.all('sample', resumedAt).filter((e) => e.epoch === oldEpoch && e.valid);
        expect(revived, 'samples of the old term seen valid after waking').toEqual([]);
      }),
    60_000,
  );

  it(
    "(c) the leader's connection cut for 2 × TTL: its term ends 'expired' before the next begins; after restore it rejoins with a larger epoch",
    () =>
      scenario('partition', async (s) => {
        const proxy = await s.proxy(0);
        const [a, b, c] = await queue(s, ['a', 'b', 'c'], (h) =>
          h === 'a' ? [proxy.url] : undefined,
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
        s.note(
          `cut → a ended: ${(ended.t - cutAt).toFixed(0)} ms, → b elected: ${(bLeads.t - cutAt).toFixed(0)} ms`,
        );
        await sleepUntil(cutAt + 2 * TTL_MS);
        const restoredAt = monotonicNow();
        proxy.restore();

        // Back in the queue with a fresh key (its lease expired during the cut).
        let back: { value: string; epoch: bigint } | undefined;
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
        s.note(`restore → a back in the queue: ${(monotonicNow() - restoredAt).toFixed(0)} ms`);
        expect(await queueOrder(b)).toEqual(['b', 'c', 'a']);

        // Hand over twice: c, then a leads again, with its new (larger) epoch.
        let since = monotonicNow();
        await b.command('resign');
        const cLeads = await c.next(electedAfter(since), {
          timeoutMs: timing.handoverMs,
          what: 'c to lead',
        });
        // a's leader watch lived through the cut (its stream was on the black-holed connection):
        // it must report c, not stay silent.
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
    60_000,
  );

  it(
    '(d) kill of the etcd raft leader: no overlap, and elections go on (each resign hands over to the next in the queue)',
    () =>
      scenario('raft-leader', async (s) => {
        const all = await queue(s, ['a', 'b', 'c']);
        const raftLeader = await s.cluster.leader();
        const killedAt = monotonicNow();
        await raftLeader.kill();
        const successor = await s.cluster.leader();
        s.note(
          `killed raft leader ${raftLeader.name}, ${successor.name} leads raft ${(monotonicNow() - killedAt).toFixed(0)} ms later`,
        );

        // Several handovers with one member down: the etcd3 client sends each request to one
        // member picked at random, so some requests (a resign's delete among them) meet the
        // dead one; a handover must not depend on which member a request went to.
        const handovers: string[] = [];
        for (let round = 1; round <= 6; round += 1) {
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
    60_000,
  );

  it(
    '(e) the whole cluster down for 10 s: every term ends, then leadership resumes with larger epochs',
    () =>
      scenario('outage', async (s) => {
        const all = await queue(s, ['a', 'b', 'c']);
        let maxBefore = 0n;
        for (const e of all.flatMap((c) => c.all('elected'))) {
          if (epochOf(e) > maxBefore) maxBefore = epochOf(e);
        }

        const stoppedAt = monotonicNow();
        await s.cluster.stopAll();
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
        await s.cluster.startAll();
        const upAt = monotonicNow();
        expect(all.flatMap((c) => c.all('elected', downAt)).filter((e) => e.t < startAt)).toEqual(
          [],
        );

        const next = await firstEvent(all, electedAfter(stoppedAt), {
          timeoutMs: 3 * timing.expiryMs,
          what: 'a leader after the restart',
        });
        expect(epochOf(next)).toBeGreaterThan(maxBefore);
        s.note(
          `${ended.holder}'s term ended "${String(ended.reason)}" ${(ended.t - stoppedAt).toFixed(0)} ms after stopAll began; cluster up ${(upAt - startAt).toFixed(0)} ms after startAll; ${next.holder} elected ${(next.t - upAt).toFixed(0)} ms after the cluster was up`,
        );

        // Elections go on: the leader resigns, the next one in the queue leads.
        const leader = all.find((c) => c.holder === next.holder)!;
        const order = await queueOrder(leader);
        const resignAt = monotonicNow();
        await leader.command('resign', timing.handoverMs);
        const after = await firstEvent(all, electedAfter(resignAt), {
          timeoutMs: timing.handoverMs,
          what: 'the next leader after a resign',
        });
        expect(after.holder).toBe(order[1]);
        expect(epochOf(after)).toBeGreaterThan(epochOf(next));
      }),
    90_000,
  );

  it(
    '(f) compaction while candidates wait, then a resign: the next candidate leads without stalling',
    () =>
      scenario('compaction', async (s) => {
        // b, next in line, talks to etcd through a proxy: resetting it after the compaction
        // makes b's watch on a's key reconnect from a revision that is compacted away.
        const proxy = await s.proxy(1);
        const [a, b, c] = await queue(s, ['a', 'b', 'c'], (h) =>
          h === 'b' ? [proxy.url] : undefined,
        );
        for (let i = 1; i <= 5; i += 1) {
          expect((await a.command(`put key-${i} value-${i}`)).ok).toBe(true);
        }
        const status = JSON.parse(await etcdctl(s.cluster, 'endpoint', 'status', '-w', 'json'));
        const revision = Math.max(
          ...(status as { Status: { header: { revision: number } } }[]).map(
            (m) => m.Status.header.revision,
          ),
        );
        await etcdctl(s.cluster, 'compact', String(revision));
        proxy.reset();

        const order = await queueOrder(a);
        expect(order).toEqual(['a', 'b', 'c']);
        let since = monotonicNow();
        await a.command('resign');
        const bLeads = await b.next(electedAfter(since), {
          timeoutMs: timing.handoverMs,
          what: 'b to lead after the compaction',
        });
        s.note(
          `compacted at revision ${revision}; a resign → b: ${(bLeads.t - since).toFixed(0)} ms`,
        );
        since = monotonicNow();
        await b.command('resign');
        await c.next(electedAfter(since), {
          timeoutMs: timing.handoverMs,
          what: 'c to lead after b',
        });
      }),
    60_000,
  );
});
