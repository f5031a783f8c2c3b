// ZooKeeper fault tests with server-to-server partitions (issue 11.1): a candidate whose only
// server is cut off from the others, on a three-server ensemble whose syncLimit × tickTime
// (8 s) is much longer than the session timeout (2 s), so the cut-off server goes on serving
// its clients for 8 s while the rest of the ensemble may already have expired their sessions. Every candidate runs in its own process (test/fixtures/zookeeper-candidate.mjs, on
// the built packages) and reports its terms, each ending at its local deadline at the latest,
// on the machine's monotonic clock; the combined history must never hold two valid terms at
// one instant (G1) and its epochs must increase (G2).
//
// Every wait is bounded only so that a hang fails with a message, never as a performance
// expectation.

import {
  checkHistory,
  HistoryViolationError,
  monotonicNow,
  startZooKeeperEnsemble,
  Timing,
  type ZooKeeperEnsemble,
  type ZooKeeperNode,
} from '@tenure/testkit';
import { describe, expect, it } from 'vitest';
import {
  assertBuilt,
  CandidateProcess,
  stopAll,
  timeline,
} from '../etcd-faults/candidate-process.js';
import { candidateQueries, electedAfter, epochOf } from '../faults/candidate-queries.js';

const SESSION_TIMEOUT_MS = 2_000;

/** The ensemble's ticks: syncLimit × tickTime is 8 s, four session timeouts, in both. */
interface Ticks {
  readonly tickMs: number;
  readonly syncLimit: number;
}
const timing = new Timing(SESSION_TIMEOUT_MS);
/**
 * How long the side without the ZooKeeper leader may take to lead: syncLimit × tickTime before
 * its servers give up on the old leader, an election, then a session timeout. Only a bound on
 * a hang (a loaded machine slows ZooKeeper's election most).
 */
const ELECTION_AFTER_CUT_MS = timing.scale(120_000);
const { queueOrder } = candidateQueries(timing);

interface Cut {
  readonly ensemble: ZooKeeperEnsemble;
  /** The server `a` was connected to when the partition began. */
  readonly aServer: ZooKeeperNode;
  /** The partition's sides. */
  readonly groups: readonly (readonly ZooKeeperNode[])[];
}

/** Who talks to which servers, and how the ensemble is cut. */
interface Plan {
  /** The servers `a` (which leads first) may connect to. */
  readonly a: readonly ZooKeeperNode[];
  /** The servers `b` (which waits behind `a`) connects to. */
  readonly b: readonly ZooKeeperNode[];
  /** The partition's sides, given the server `a` is connected to. */
  groups(aServer: ZooKeeperNode): ZooKeeperNode[][];
}

/**
 * Starts a partitionable ensemble of `size` members; `a` leads through the servers of the plan,
 * `b` waits through its own; cuts the ensemble as planned; then `body`; then stops both and
 * checks their combined history (G1 first), then the body's own checks. Prints the timeline
 * when anything fails.
 */
async function partitionScenario(
  name: string,
  size: number,
  ticks: Ticks,
  plan: (leader: ZooKeeperNode, followers: readonly ZooKeeperNode[]) => Plan,
  body: (
    cut: Cut,
    a: CandidateProcess,
    b: CandidateProcess,
    cutAt: number,
    note: (line: string) => void,
  ) => Promise<() => void>,
): Promise<void> {
  assertBuilt(['core', 'zookeeper', 'testkit']);
  const t0 = monotonicNow();
  const candidates: CandidateProcess[] = [];
  const notes: string[] = [];
  const ensemble = await startZooKeeperEnsemble(size, {
    tickTimeMs: ticks.tickMs,
    syncLimit: ticks.syncLimit,
    partitionable: true,
  });
  let failure: { error: unknown } | undefined;
  try {
    const leader = await ensemble.leader();
    const planned = plan(
      leader,
      ensemble.members.filter((m) => m !== leader),
    );
    const spawn = async (holder: string, members: readonly ZooKeeperNode[]) => {
      const candidate = await CandidateProcess.start({
        holder,
        endpoints: members.map((m) => m.connectString),
        ttlMs: SESSION_TIMEOUT_MS,
        election: name,
        fixture: 'zookeeper-candidate.mjs',
      });
      candidates.push(candidate);
      return candidate;
    };
    const a = await spawn('a', planned.a);
    const elected = await a.next((e) => e.type === 'elected', {
      timeoutMs: timing.handoverMs,
      what: 'a to lead',
    });
    const b = await spawn('b', planned.b);
    await waitForQueue(b, ['a', 'b']);
    const aServer = await serverOf(ensemble, String(elected.sessionId));
    const groups = planned.groups(aServer);
    const names = (members: readonly ZooKeeperNode[]) => members.map((m) => m.name).join(', ');
    notes.push(
      `ZooKeeper leader ${leader.name}; a on ${aServer.name} (of ${names(planned.a)}), b on ${names(planned.b)}; cut: ${groups.map((g) => `[${names(g)}]`).join(' | ')}`,
    );
    const cutAt = monotonicNow();
    await ensemble.partition(groups);
    const verify = await body({ ensemble, aServer, groups }, a, b, cutAt, (line) =>
      notes.push(line),
    );
    await stopAll(candidates);
    // G1 first: the overlap, if any, is the failure to report.
    const violations = checkHistory(candidates.flatMap((c) => c.history(name)));
    if (violations.length > 0) throw new HistoryViolationError(violations);
    verify();
  } catch (error) {
    failure = { error };
  }
  const cleanup = await Promise.allSettled([stopAll(candidates)]);
  cleanup.push(...(await Promise.allSettled([ensemble.stop()])));
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

/** The member whose `cons` lists the session `sessionId` (16 hex digits). */
async function serverOf(ensemble: ZooKeeperEnsemble, sessionId: string): Promise<ZooKeeperNode> {
  const id = BigInt(`0x${sessionId}`);
  for (const member of ensemble.members) {
    const cons = await member.fourLetter('cons');
    for (const match of cons.matchAll(/sid=0x([0-9a-f]+)/g)) {
      if (BigInt(`0x${match[1]}`) === id) return member;
    }
  }
  throw new Error(`no server lists session ${sessionId}`);
}

async function waitForQueue(from: CandidateProcess, order: readonly string[]): Promise<void> {
  const deadline = monotonicNow() + timing.handoverMs;
  for (;;) {
    const seen = await queueOrder(from);
    if (seen.join() === order.join()) return;
    if (monotonicNow() > deadline) {
      throw new Error(`the queue is ${JSON.stringify(seen)}, not ${JSON.stringify(order)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.sequential('ZooKeeper faults: a member cut off from the others for syncLimit × tickTime = 4 × the session timeout', () => {
  it(
    "(a) the leader's only server is a follower cut off from the ZooKeeper leader: its term ends before the candidate on the leader's side leads",
    () =>
      partitionScenario(
        'isolated-follower',
        3,
        { tickMs: 200, syncLimit: 40 },
        (leader, followers) => ({
          a: [followers[0]!],
          b: [leader, followers[1]!],
          groups: (aServer) => [[aServer], followers.filter((f) => f !== aServer).concat(leader)],
        }),
        async (cut, a, b, cutAt, note) => {
          const bLeads = await b.next(electedAfter(cutAt), {
            timeoutMs: timing.expiryMs,
            what: "b to lead on the ZooKeeper leader's side",
          });
          // The cut-off follower serves a until it gives up on its leader, syncLimit ticks after
          // the cut: watch a until then (its history must not overlap b's).
          const servesUntil = cutAt + 40 * 200;
          await new Promise((resolve) =>
            setTimeout(resolve, Math.max(0, servesUntil - monotonicNow())),
          );
          const ended = a.all('ended', cutAt)[0];
          note(
            `cut → a's term ended ${ended ? `"${String(ended.reason)}" ${(ended.t - cutAt).toFixed(0)} ms` : 'never while cut off'}, → b elected ${(bLeads.t - cutAt).toFixed(0)} ms (epoch ${epochOf(bLeads)}); ${cut.aServer.name} serves its clients until 8000 ms`,
          );
          return () => {
            expect(ended, "a's term to have ended before b leads").toBeDefined();
            expect(ended!.t).toBeLessThan(bLeads.t);
            expect(a.all('elected', cutAt), 'a elected again while cut off').toEqual([]);
          };
        },
      ),
    90_000,
  );

  it(
    "(c) the leader's server, a follower, is cut off while its client may move to another follower: no overlap, and a leader afterwards",
    () =>
      partitionScenario(
        'moving-client',
        3,
        { tickMs: 200, syncLimit: 40 },
        (leader, followers) => ({
          a: followers,
          b: [leader],
          groups: (aServer) => [[aServer], followers.filter((f) => f !== aServer).concat(leader)],
        }),
        async (_cut, a, b, cutAt, note) => {
          // a's heartbeat fails on the cut-off follower; the watchdog moves its client to the
          // other follower with the same session (revalidated by the ZooKeeper leader). a may
          // keep its term (if it renews in time) or lose it to b: either way never beside b.
          const servesUntil = cutAt + 40 * 200;
          await new Promise((resolve) =>
            setTimeout(resolve, Math.max(0, servesUntil - monotonicNow())),
          );
          const ended = a.all('ended', cutAt)[0];
          const bLeads = b.all('elected', cutAt)[0];
          const moved = a.all('client', cutAt).filter((e) => e.state === 'SYNC_CONNECTED')[0];
          note(
            `cut → a's client reconnected ${moved ? `${(moved.t - cutAt).toFixed(0)} ms` : 'never'}; a's term ${ended ? `ended "${String(ended.reason)}" ${(ended.t - cutAt).toFixed(0)} ms` : 'kept'}; b ${bLeads ? `elected ${(bLeads.t - cutAt).toFixed(0)} ms` : 'still waiting'} after the cut`,
          );
          const aLeads = a.all('elected', cutAt).length > 0;
          const status = await a.command('status');
          return () => {
            expect(
              Boolean(status.valid) || bLeads !== undefined || aLeads,
              'someone leads once the client has moved',
            ).toBe(true);
          };
        },
      ),
    90_000,
  );
});

/**
 * The ZooKeeper leader on the cut-off side: the other side must elect a new leader before the
 * session can expire there, which through the held (black-holed) connections takes ZooKeeper
 * tens of seconds on this machine (42.5 s from the cut to a new leader on three servers,
 * syncLimit 40 × 200 ms, one run), so these two run only with TENURE_LONG_FAULTS=1
 * (`pnpm --filter @tenure/zookeeper test:long-faults`). Without it they are not declared at all,
 * so the suite reports no skipped test: they belong to their own command, like the long nemesis.
 */
const describeLong: (name: string, body: () => void) => void =
  process.env.TENURE_LONG_FAULTS === '1'
    ? (name, body) => describe.sequential(name, body)
    : () => {};
describeLong(
  'ZooKeeper faults, long: the ZooKeeper leader cut off with a minority for syncLimit × tickTime = 4 × the session timeout',
  () => {
    it(
      "(b) the leader's only server is the ZooKeeper leader, cut off from its followers: its term ends before the candidate on the followers' side leads",
      () =>
        partitionScenario(
          'isolated-leader',
          3,
          { tickMs: 200, syncLimit: 40 },
          (leader, followers) => ({
            a: [leader],
            b: followers,
            groups: () => [[leader], [...followers]],
          }),
          async (cut, a, b, cutAt, note) => {
            // The cut-off leader answers syncs on its own until it notices, syncLimit ticks after
            // the cut (a heartbeat of syncs renewed through it until then); the followers elect a
            // new leader once they give up on it, which gives a's session a full timeout, which
            // then runs out: b leads.
            const bLeads = await b.next(electedAfter(cutAt), {
              timeoutMs: ELECTION_AFTER_CUT_MS,
              what: "b to lead on the followers' side",
            });
            const ended = a.all('ended', cutAt)[0];
            note(
              `cut → a's term ended ${ended ? `"${String(ended.reason)}" ${(ended.t - cutAt).toFixed(0)} ms` : 'never'}, → b elected ${(bLeads.t - cutAt).toFixed(0)} ms; new ZooKeeper leader ${(await cut.ensemble.leader()).name}`,
            );
            return () => {
              expect(ended, "a's term to have ended before b leads").toBeDefined();
              expect(ended!.t).toBeLessThan(bLeads.t);
            };
          },
        ),
      240_000,
    );

    it(
      "(d) five servers split 2 + 3, the ZooKeeper leader and the leading candidate's server on the minority side: its term ends before the candidate on the majority side leads",
      () =>
        partitionScenario(
          'split',
          5,
          { tickMs: 200, syncLimit: 40 },
          (leader, followers) => ({
            a: [followers[0]!],
            b: followers.slice(1),
            groups: () => [[leader, followers[0]!], followers.slice(1)],
          }),
          async (_cut, a, b, cutAt, note) => {
            // The minority's leader goes on leading, and answering syncs, until syncLimit ticks
            // after the cut; the majority elects its own once it gives up on it.
            const bLeads = await b.next(electedAfter(cutAt), {
              timeoutMs: ELECTION_AFTER_CUT_MS,
              what: "b to lead on the majority's side",
            });
            const ended = a.all('ended', cutAt)[0];
            note(
              `cut → a's term ended ${ended ? `"${String(ended.reason)}" ${(ended.t - cutAt).toFixed(0)} ms` : 'never'}, → b elected ${(bLeads.t - cutAt).toFixed(0)} ms`,
            );
            return () => {
              expect(ended, "a's term to have ended before b leads").toBeDefined();
              expect(ended!.t).toBeLessThan(bLeads.t);
            };
          },
        ),
      240_000,
    );
  },
);
