// G1 on etcd 3.4 with a member cut off from the raft leader (issue 11.1, etcd part). Before
// 3.5.3 ("linearizable renew lease", etcd PR 13690) a raft leader that has lost its quorum
// answers keep-alives from its own lease table until it steps down, so an acknowledged
// keep-alive does not prove the authority that expires leases saw it. tenure confirms each
// renewal with a linearizable read on the same member, sent after the keep-alive's reply.
//
// A three-member cluster with server-to-server partitions (testkit `partitionable`); in-process
// candidates, each with its own arbitrator; every term recorded with trackTerms on the shared
// monotonic clock and checked for overlap (G1) and epoch order (G2). The assertion that failed
// before the fix: a renewal sent after the member was isolated extended the local deadline.
import { randomBytes } from 'node:crypto';
import type { Election, SessionEvent, Term } from '@tenure/core';
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import {
  checkHistory,
  type EtcdCluster,
  monotonicNow,
  startEtcdCluster,
  type TermRecord,
  Timing,
  trackTerms,
  waitFor,
} from '@tenure/testkit';
import { describe, expect, it } from 'vitest';

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
const TEST_MS = timing.scale(120_000);

/** One in-process candidate and what it saw. */
interface Candidate {
  readonly holder: string;
  readonly arbitrator: EtcdArbitrator;
  readonly election: Election;
  /** Send times (performance.now()) of the renewals that counted. */
  readonly renewalsSentAt: number[];
  campaign(): Promise<Term | undefined>;
  close(): Promise<void>;
}

function candidate(
  holder: string,
  endpoints: readonly string[],
  name: string,
  records: TermRecord[],
): Candidate {
  const arbitrator = createEtcdArbitrator({ endpoints: [...endpoints], ttlMs: TTL_MS });
  arbitrator.on('error', () => {});
  const renewalsSentAt: number[] = [];
  arbitrator.on('session', (event: SessionEvent) => {
    if (event.type === 'renewed') renewalsSentAt.push(performance.now() - event.latencyMs);
  });
  const election = arbitrator.election(name, { value: holder });
  election.on('error', () => {});
  const stopTracking = trackTerms(election, holder, (r) => records.push(r), { sampleMs: 10 });
  const stop = new AbortController();
  return {
    holder,
    arbitrator,
    election,
    renewalsSentAt,
    campaign: () => election.campaign({ signal: stop.signal }).catch(() => undefined),
    async close() {
      stop.abort();
      stopTracking();
      await election.close().catch(() => {});
      await arbitrator.close();
    },
  };
}

const unique = () => `isolated-${randomBytes(4).toString('hex')}`;
const valid = (c: Candidate) => c.election.term?.isValid() === true;

async function withCluster(body: (cluster: EtcdCluster) => Promise<void>): Promise<void> {
  const cluster = await startEtcdCluster(3, { partitionable: true });
  try {
    await body(cluster);
  } finally {
    await cluster.stop();
  }
}

describe('a candidate on an etcd member cut off from the raft leader', () => {
  it(
    'pinned to the raft leader when it is isolated: no renewal sent after the cut counts, never two valid terms, and it leads again after the heal',
    () =>
      withCluster(async (cluster) => {
        const name = unique();
        const records: TermRecord[] = [];
        const leader = await cluster.leader();
        const others = cluster.nodes.filter((n) => n !== leader).map((n) => n.endpoint);
        const a = candidate('a', [leader.endpoint], name, records);
        const b = candidate('b', others, name, records);
        try {
          const first = await a.campaign();
          expect(first).toBeDefined();
          void b.campaign();
          await waitFor(async () => (await b.election.candidates().catch(() => [])).length === 2, {
            timeoutMs: timing.handoverMs,
            intervalMs: timing.pollMs,
            what: 'b to queue behind a',
          });
          let bElected: number | undefined;
          b.election.once('elected', () => {
            bElected = monotonicNow();
          });
          await cluster.isolate(leader);
          const cutAt = performance.now();
          // b leads once etcd's new raft leader expires a's lease.
          await waitFor(() => valid(b), {
            timeoutMs: timing.expiryMs,
            intervalMs: timing.pollMs,
            what: 'b to lead after the isolation',
          });
          const late = a.renewalsSentAt.filter((t) => t > cutAt).map((t) => (t - cutAt).toFixed(0));
          const aEnd = records.find((r) => r.holder === 'a')?.end;
          const gap =
            aEnd === undefined || bElected === undefined ? '?' : (bElected - aEnd).toFixed(0);
          console.log(
            `isolated raft leader: a's renewals counted though sent after the cut: ${late.length} (at +${late.join(', +')} ms); a's term ended ${(first as Term).endReason}, ${gap} ms before b's began`,
          );
          // G1 as DESIGN states it: a renewal counts only if the authority that expires
          // sessions saw it. The isolated member cannot prove that for anything sent after the
          // cut (it failed before the fix: its stale leader acknowledged them).
          expect(late).toEqual([]);
          expect((first as Term).signal.aborted).toBe(true);
          await cluster.heal();
          // a rejoins through its member once it is back in the cluster, and leads when b goes.
          await waitFor(async () => (await b.election.candidates().catch(() => [])).length === 2, {
            timeoutMs: timing.expiryMs,
            intervalMs: timing.pollMs,
            what: 'a to rejoin the queue after the heal',
          });
          await waitFor(
            () =>
              b.election.resign().then(
                () => true,
                () => false,
              ),
            {
              timeoutMs: timing.handoverMs,
              intervalMs: timing.pollMs,
              what: 'b to resign',
            },
          );
          await waitFor(() => valid(a), {
            timeoutMs: timing.handoverMs,
            intervalMs: timing.pollMs,
            what: 'a to lead again after the heal',
          });
        } finally {
          await a.close();
          await b.close();
        }
        expect(checkHistory(records).map((v) => v.message)).toEqual([]);
      }),
    TEST_MS,
  );

  it(
    'with every endpoint when its first member is isolated: renewals fail over to healthy members, never two valid terms',
    () =>
      withCluster(async (cluster) => {
        const name = unique();
        const records: TermRecord[] = [];
        const leader = await cluster.leader();
        const rest = cluster.nodes.filter((n) => n !== leader).map((n) => n.endpoint);
        const a = candidate('a', [leader.endpoint, ...rest], name, records);
        const b = candidate('b', rest, name, records);
        try {
          expect(await a.campaign()).toBeDefined();
          void b.campaign();
          await waitFor(async () => (await b.election.candidates().catch(() => [])).length === 2, {
            timeoutMs: timing.handoverMs,
            intervalMs: timing.pollMs,
            what: 'b to queue behind a',
          });
          await cluster.isolate(leader);
          const cutAt = performance.now();
          // A renewal that fails on the isolated member (its confirming read finds no quorum)
          // resets the connections to it, and the next goes to the next member: a renewal
          // through a healthy one counts (etcd's new raft leader has a's lease, renewed every
          // TTL + election timeout).
          await waitFor(() => a.renewalsSentAt.some((t) => t > cutAt), {
            timeoutMs: timing.expiryMs,
            intervalMs: timing.pollMs,
            what: 'a renewal through a healthy member, after a new raft leader is elected',
          });
          // Someone leads (a, or b if a's term lapsed meanwhile).
          await waitFor(() => valid(a) || valid(b), {
            timeoutMs: timing.expiryMs,
            intervalMs: timing.pollMs,
            what: 'a leader while the member is isolated',
          });
          await cluster.heal();
        } finally {
          await a.close();
          await b.close();
        }
        expect(checkHistory(records).map((v) => v.message)).toEqual([]);
      }),
    TEST_MS,
  );
});
