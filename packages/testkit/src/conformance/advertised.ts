import { type Arbitrator, LeaderTracker } from '@tenure/core';
import { describe, expect } from 'vitest';
import type { ConformanceTest } from './context.js';

/**
 * Advertised endpoints (issue 15, routing): a candidate's `endpoint` option reaches every
 * participant and observer through what they already read or watch (leader(), candidates(),
 * observe(), a {@link LeaderTracker}), a proclaimed value keeps it, a candidate without one
 * reads exactly as before (bad endpoints: core's own tests, the check is core's).
 */
export function describeAdvertisedTests(test: ConformanceTest): void {
  describe('advertised endpoints', () => {
    test('every participant sees the leader’s endpoint; a proclaim keeps it; a tracker follows a handover', async (t) => {
      const [a, b, c] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name('adv');
      const ea = a.election(name, { value: 'a', endpoint: 'http://a.example:8080' });
      const eb = b.election(name, { value: 'b', endpoint: 'https://[::1]:8443/api' });
      const ta = await t.within(ea.campaign(), 'campaign() of a');
      const pb = t.track(eb.campaign());
      const queue = await t.queueOf(ea, 2);
      expect(queue.map((q) => [q.value, q.endpoint])).toEqual([
        ['a', 'http://a.example:8080'],
        ['b', 'https://[::1]:8443/api'],
      ]);
      expect(ea.value).toBe('a');

      // An observer without a candidacy, and a tracker on a candidate: no read per lookup.
      const observer = new LeaderTracker({ observe: (o) => c.observe(name, o) });
      const follower = new LeaderTracker(eb);
      try {
        const seen = await t.within(observer.next(), 'the observer tracker’s first leader');
        expect(seen).toMatchObject({ value: 'a', epoch: ta.epoch, key: ta.key });
        expect(observer.endpoint).toBe('http://a.example:8080');
        expect(observer.known).toBe(true);
        await t.within(follower.next(), 'the follower tracker’s first leader');
        expect(follower.endpoint).toBe('http://a.example:8080');
        expect(await c.leader(name)).toMatchObject({
          value: 'a',
          endpoint: 'http://a.example:8080',
        });

        await t.within(ea.proclaim('a2'), 'proclaim()');
        expect(ea.value).toBe('a2');
        const proclaimed = await t.until(async () => {
          const leader = await c.leader(name);
          return leader?.value === 'a2' ? leader : undefined;
        }, 'the proclaimed value');
        expect(proclaimed.endpoint).toBe('http://a.example:8080');
        await t.until(() => observer.leader?.value === 'a2', 'the tracker to see the proclaim');
        expect(observer.endpoint).toBe('http://a.example:8080');

        const handover = observer.next({ after: ta.epoch });
        const followed = follower.next({ after: ta.epoch });
        await t.within(ea.resign(), 'resign() of a');
        const tb = await t.within(pb.promise, 'campaign() of b');
        const next = await t.within(handover, 'the tracker to see b lead');
        expect(next).toMatchObject({
          value: 'b',
          epoch: tb.epoch,
          endpoint: 'https://[::1]:8443/api',
        });
        expect((await t.within(followed, 'the follower tracker to see b lead')).epoch).toBe(
          tb.epoch,
        );
        expect(observer.endpoint).toBe('https://[::1]:8443/api');
        expect(observer.epoch).toBe(tb.epoch);
      } finally {
        observer.close();
        follower.close();
      }
      await expect(observer.next()).rejects.toMatchObject({ code: 'CLOSED' });
    });

    test('without an endpoint a value reads exactly as given, even one that looks like an envelope', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name('adv');
      const lookalike = '{"tenure":1,"value":"not me","endpoint":"http://x.example"}';
      const ea = a.election(name, { value: 'plain' });
      const eb = b.election(name, { value: lookalike });
      const ta = await t.within(ea.campaign(), 'campaign() of a');
      t.track(eb.campaign());
      const [first, second] = await t.queueOf(ea, 2);
      // No `endpoint` member at all for a raw value: the objects are what they were before.
      expect(first).toEqual({ key: ta.key, value: 'plain', epoch: ta.epoch });
      expect(first !== undefined && 'endpoint' in first).toBe(false);
      expect(second?.value).toBe(lookalike);
      expect(second?.endpoint).toBeUndefined();
    });
  });
}
