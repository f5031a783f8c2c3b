// Fault tests of the etcd adapter on a real three-node etcd cluster, candidates in separate
// processes (test/fixtures/etcd-candidate.mjs): the shared fault scenarios
// (test/faults/fault-scenarios.ts), then (f), which only etcd has (compaction).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type EtcdCluster, findEtcdBinary, monotonicNow, startEtcdCluster } from '@tenure/testkit';
import { expect, it } from 'vitest';
import { electedAfter } from '../faults/candidate-queries.js';
import { describeFaultScenarios, type FaultBackend } from '../faults/fault-scenarios.js';

/** etcd's minimum lease TTL (1.5 × its 1 s election timeout, rounded up to whole seconds). */
const TTL_MS = 2_000;
const run = promisify(execFile);

/** A three-member etcd cluster and the etcd fixture; etcd fences a write by a transaction. */
const etcd: FaultBackend<EtcdCluster> = {
  name: 'etcd',
  suite: 'etcd faults, candidates in separate processes, three-node cluster',
  fixture: 'etcd-candidate.mjs',
  packages: ['core', 'etcd', 'testkit'],
  ttlMs: TTL_MS,
  ttlName: 'TTL',
  // Guarantee G3 for a crash: ttl + the arbitrator's expiry granularity + 1 s (the issue: TTL + 1.5 s).
  crashBound: { ms: TTL_MS + 1_500, text: 'TTL + 1.5 s' },
  testTimeoutMs: { default: 60_000, outage: 90_000 },
  start: () => startEtcdCluster(3),
  endpoints: (cluster) => cluster.endpoints,
  clientPort: (cluster, member) => cluster.nodes[member]!.clientPort,
  proxyEndpoint: (proxy) => proxy.url,
  words: { serverLeader: 'etcd raft leader', servers: 'cluster', cut: 'cut' },
  // The etcd3 client sends each request to one member picked at random, so some requests meet
  // the dead one.
  serverLeaderKill: { election: 'raft-leader', rounds: 6 },
  leaderMayChangeAfterRestart: false,
  checks: {
    fencedPutRefused: (reply) =>
      expect(reply, 'etcd refuses a transaction fenced by the old term').toMatchObject({
        ok: true,
        succeeded: false,
      }),
    fencedPutNote: () => '',
    rejoinAfterPause: async ({ timing }, _s, a, _b, { resumedAt }) => {
      await a.next((e) => e.type === 'connection' && e.t > resumedAt, {
        timeoutMs: timing.expiryMs,
        what: 'a to open a new session',
      });
    },
    whileCut: () => '',
    afterRestore: () => '',
    afterRestart: () => '',
  },
};

/** Runs etcdctl (v3 API) against every member of `cluster`; resolves with its stdout. */
async function etcdctl(cluster: EtcdCluster, ...args: string[]): Promise<string> {
  const { stdout } = await run(
    findEtcdBinary('etcdctl'),
    [`--endpoints=${cluster.endpoints.join(',')}`, '--command-timeout=5s', ...args],
    { timeout: 10_000, env: { ...process.env, ETCDCTL_API: '3' } },
  );
  return stdout;
}

describeFaultScenarios(etcd, ({ timing, scenario, queue, queueOrder }) => {
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
        const status = JSON.parse(await etcdctl(s.servers, 'endpoint', 'status', '-w', 'json'));
        const revision = Math.max(
          ...(status as { Status: { header: { revision: number } } }[]).map(
            (m) => m.Status.header.revision,
          ),
        );
        await etcdctl(s.servers, 'compact', String(revision));
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
