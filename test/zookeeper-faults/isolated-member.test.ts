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
import { describe, expect, it } from 'vitest';
import {
  checkHistory,
  HistoryViolationError,
  monotonicNow,
  startZooKeeperEnsemble,
  Timing,
  type ZooKeeperEnsemble,
  type ZooKeeperNode,
} from '../../packages/testkit/src/index.js';
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
const { queueOrder } = candidateQueries(timing);

interface Cut {
  readonly ensemble: ZooKeeperEnsemble;
  /** The member cut off: the candidate `a` talks to it alone. */
  readonly isolated: ZooKeeperNode;
  /** The members on the other side: the candidate `b` talks to them. */
  readonly others: readonly ZooKeeperNode[];
}

/**
 * Starts a partitionable ensemble; `a` leads through `pick(leader, followers)` alone, `b` waits
 * through the others; cuts that member off from the others; then `body`; then stops both and
 * checks their combined history. Prints the timeline when anything fails.
 */
async function isolatedScenario(
  name: string,
  ticks: Ticks,
  pick: (leader: ZooKeeperNode, followers: readonly ZooKeeperNode[]) => ZooKeeperNode,
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
  const ensemble = await startZooKeeperEnsemble(3, {
    tickTimeMs: ticks.tickMs,
    syncLimit: ticks.syncLimit,
    partitionable: true,
  });
  let failure: { error: unknown } | undefined;
  try {
    const leader = await ensemble.leader();
    const followers = ensemble.members.filter((m) => m !== leader);
    const isolated = pick(leader, followers);
    const others = ensemble.members.filter((m) => m !== isolated);
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
    const a = await spawn('a', [isolated]);
    await a.next((e) => e.type === 'elected', { timeoutMs: timing.handoverMs, what: 'a to lead' });
    const b = await spawn('b', others);
    await waitForQueue(b, ['a', 'b']);
    notes.push(
      `ZooKeeper leader ${leader.name}; a on ${isolated.name} only, b on ${others.map((m) => m.name).join(' and ')}`,
    );
    const cutAt = monotonicNow();
    await ensemble.isolate(isolated);
    const verify = await body({ ensemble, isolated, others }, a, b, cutAt, (line) =>
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
      isolatedScenario(
        'isolated-follower',
        { tickMs: 200, syncLimit: 40 },
        (_leader, followers) => followers[0]!,
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
            `cut → a's term ended ${ended ? `"${String(ended.reason)}" ${(ended.t - cutAt).toFixed(0)} ms` : 'never while cut off'}, → b elected ${(bLeads.t - cutAt).toFixed(0)} ms (epoch ${epochOf(bLeads)}); ${cut.isolated.name} serves its clients until 8000 ms`,
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
    "(b) the leader's only server is the ZooKeeper leader, cut off from its followers: its term ends before the candidate on the followers' side leads",
    () =>
      isolatedScenario(
        'isolated-leader',
        { tickMs: 200, syncLimit: 40 },
        (leader) => leader,
        async (cut, a, b, cutAt, note) => {
          // The cut-off leader answers syncs on its own until it notices, syncLimit ticks after
          // the cut (a heartbeat of syncs renewed through it until then); the followers elect a
          // new leader once they give up on it, which gives a's session a full timeout, which
          // then runs out: b leads.
          const bLeads = await b.next(electedAfter(cutAt), {
            timeoutMs: 8_000 + 2 * timing.expiryMs,
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
    90_000,
  );
});
