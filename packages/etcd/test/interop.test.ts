import { randomBytes } from 'node:crypto';
import type { LeaderInfo } from '@tenure/core';
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import {
  type EtcdForTests,
  etcdForTests,
  Timing,
  track,
  waitFor,
  withTimeout,
} from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdctlProcess } from './etcdctl-process.js';

// tenure and etcd's own Go client (`etcdctl elect`, built on concurrency.Election) campaign in
// one queue: same keys (`<election>/<lease id in hex>`), same values, same order.

const TTL_MS = 2_000; // etcd's minimum with default settings
const timing = new Timing(TTL_MS);
const TEST_MS = timing.scale(60_000);

let etcd: EtcdForTests;

beforeAll(async () => {
  etcd = await etcdForTests();
});

afterAll(async () => {
  await etcd?.stop();
});

const unique = () => `interop-${randomBytes(4).toString('hex')}`;
const hex = (sessionId: string) => BigInt(sessionId).toString(16);

/** Reads the queue until it has `count` candidates. */
function queueOf(
  election: { candidates(): Promise<LeaderInfo[]> },
  count: number,
): Promise<LeaderInfo[]> {
  return waitFor(
    async () => {
      const queue = await election.candidates();
      return queue.length === count ? queue : undefined;
    },
    { timeoutMs: timing.handoverMs, intervalMs: timing.pollMs, what: `${count} candidates` },
  );
}

/** Reads `feed` until a leader passes `accept`. */
async function nextLeaderWhere(
  feed: AsyncIterableIterator<LeaderInfo | undefined>,
  accept: (leader: LeaderInfo | undefined) => boolean,
): Promise<LeaderInfo | undefined> {
  const read = async () => {
    for (;;) {
      const step = await feed.next();
      if (step.done) throw new Error('the observer ended');
      if (accept(step.value)) return step.value;
    }
  };
  return withTimeout(read(), { timeoutMs: timing.handoverMs, what: 'the observed leader' });
}

describe('etcdctl elect and tenure share one election', () => {
  it(
    'etcdctl queues behind a tenure leader, sees it with elect -l, and takes over when it resigns',
    async () => {
      const name = unique();
      const arbitrator: EtcdArbitrator = createEtcdArbitrator({
        endpoints: etcd.endpoints,
        ttlMs: TTL_MS,
      });
      let candidate: EtcdctlProcess | undefined;
      let listener: EtcdctlProcess | undefined;
      const feed = arbitrator.observe(name);
      try {
        const election = arbitrator.election(name, { value: 'tenure-leader' });
        const term = await withTimeout(election.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'tenure to lead',
        });
        // The Go layout: `<election>/<lease id in lowercase hex>`, epoch = create revision.
        expect(term.key).toBe(`${name}/${hex(arbitrator.sessionId)}`);

        candidate = new EtcdctlProcess(etcd.endpoints, ['elect', name, 'etcdctl-candidate']);
        const queue = await queueOf(election, 2);
        expect(queue[0]).toEqual({ key: term.key, value: 'tenure-leader', epoch: term.epoch });
        expect(queue[1]?.value).toBe('etcdctl-candidate');
        expect(queue[1]?.key).toMatch(new RegExp(`^${name}/[0-9a-f]+$`));
        expect(queue[1]?.epoch).toBeGreaterThan(term.epoch);
        const etcdctlKey = queue[1]?.key as string;
        // Both keys end in the hex id of the lease they are attached to, as Go writes them.
        for (const key of [term.key, etcdctlKey]) {
          const stored = (await arbitrator.client.get(key).exec()).kvs[0];
          expect(key).toBe(`${name}/${BigInt(stored?.lease ?? -1).toString(16)}`);
        }
        // etcdctl prints the key and value once elected; tenure still leads, so nothing yet.
        expect(candidate.lines).toEqual([]);
        expect(term.isValid()).toBe(true);

        // etcdctl's observer shows tenure's leader, then what tenure proclaims.
        listener = new EtcdctlProcess(etcd.endpoints, ['elect', '-l', name]);
        expect(await listener.waitForLines(2)).toEqual([term.key, 'tenure-leader']);
        await election.proclaim('tenure-proclaimed');
        expect((await listener.waitForLines(4)).slice(2)).toEqual([term.key, 'tenure-proclaimed']);

        await nextLeaderWhere(feed, (leader) => leader?.value === 'tenure-proclaimed');
        await election.resign();

        // Graceful handover to the Go client: it prints its key, then its value.
        expect(await candidate.waitForLines(2)).toEqual([etcdctlKey, 'etcdctl-candidate']);
        const observed = await nextLeaderWhere(feed, (leader) => leader?.key === etcdctlKey);
        expect(observed).toEqual({
          key: etcdctlKey,
          value: 'etcdctl-candidate',
          epoch: queue[1]?.epoch,
        });
        expect(await election.leader()).toEqual(observed);
        expect((await listener.waitForLines(6)).slice(4)).toEqual([
          etcdctlKey,
          'etcdctl-candidate',
        ]);

        // On SIGINT, etcdctl elect resigns (deletes its key) and exits normally.
        expect(await candidate.stop('SIGINT')).toEqual({ code: 0, signal: null });
        expect(await nextLeaderWhere(feed, (leader) => leader === undefined)).toBeUndefined();
        expect(await election.candidates()).toEqual([]);
      } finally {
        await feed.return?.();
        await listener?.stop('SIGINT').catch(() => {});
        await candidate?.stop('SIGINT').catch(() => {});
        await arbitrator.close();
      }
    },
    TEST_MS,
  );

  it(
    'a tenure candidate (with a namespace) waits behind an etcdctl leader and leads once etcdctl gets SIGINT',
    async () => {
      // tenure's namespace is a plain key prefix: namespace `x/` + election `jobs` is the
      // election etcdctl knows as `x/jobs`.
      const namespace = `${unique()}/`;
      const name = 'jobs';
      const full = `${namespace}${name}`;
      const leader = new EtcdctlProcess(etcd.endpoints, ['elect', full, 'etcdctl-leader']);
      let listener: EtcdctlProcess | undefined;
      let arbitrator: EtcdArbitrator | undefined;
      const abort = new AbortController();
      try {
        const [etcdctlKey, etcdctlValue] = await leader.waitForLines(2);
        expect(etcdctlKey).toMatch(new RegExp(`^${full}/[0-9a-f]+$`));
        expect(etcdctlValue).toBe('etcdctl-leader');

        arbitrator = createEtcdArbitrator({ endpoints: etcd.endpoints, ttlMs: TTL_MS, namespace });
        const election = arbitrator.election(name, { value: 'tenure-candidate' });
        expect(await election.leader()).toMatchObject({
          key: etcdctlKey,
          value: 'etcdctl-leader',
        });

        const campaign = track(election.campaign({ signal: abort.signal }));
        const queue = await queueOf(election, 2);
        expect(queue[0]).toMatchObject({ key: etcdctlKey, value: 'etcdctl-leader' });
        expect(queue[1]).toMatchObject({
          key: `${full}/${hex(arbitrator.sessionId)}`,
          value: 'tenure-candidate',
        });
        // The Go client leads: tenure waits.
        expect(campaign.state).toEqual({ status: 'pending' });
        expect(election.term).toBeUndefined();

        expect(await leader.stop('SIGINT')).toEqual({ code: 0, signal: null });
        const term = await withTimeout(campaign.promise, {
          timeoutMs: timing.handoverMs,
          what: 'tenure to lead after etcdctl resigned',
        });
        expect(term.key).toBe(queue[1]?.key);
        expect(term.epoch).toBe(queue[1]?.epoch);
        expect(term.isValid()).toBe(true);

        listener = new EtcdctlProcess(etcd.endpoints, ['elect', '-l', full]);
        expect(await listener.waitForLines(2)).toEqual([term.key, 'tenure-candidate']);
        expect(await election.candidates()).toEqual([
          { key: term.key, value: 'tenure-candidate', epoch: term.epoch },
        ]);
      } finally {
        abort.abort();
        await listener?.stop('SIGINT').catch(() => {});
        await leader.stop('SIGINT').catch(() => {});
        await arbitrator?.close();
      }
    },
    TEST_MS,
  );
});
