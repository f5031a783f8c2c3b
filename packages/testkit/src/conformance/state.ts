import { type Arbitrator, isStateCapable, stateBackendOf, type Term } from '@tenure/core';
import {
  MAX_STATE_VALUE_BYTES,
  NotLeaderError,
  openReplicatedMap,
  type ReplicatedMap,
} from '@tenure/state';
import { describe, expect } from 'vitest';
import {
  assertTenureError,
  type ConformanceContext,
  type ConformanceTest,
  rejectionOf,
} from './context.js';

/** The period of the maps' currency checks in these tests, ms. */
const CHECK_MS = 100;

/**
 * The replicated map (`@tenure/state`) on the adapter, through core's state SPI: fenced writes
 * with ordered tokens, batching, mirrors on every replica, the four read strategies, and the
 * SPI's own contract (a deposed leader's write is refused and never applied). Each registers
 * through `test`, the suite's fixture.
 */
export function describeStateTests(test: ConformanceTest): void {
  describe('replicated map (@tenure/state)', () => {
    test('the adapter implements core state SPI', async (t) => {
      const a = await t.connect();
      expect(isStateCapable(a), 'the arbitrator offers a StateBackend (STATE_BACKEND)').toBe(true);
    });

    test('the leader writes with increasing tokens; every mirror converges; the four reads answer', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name('state');
      const ea = a.election(name, { value: 'a', endpoint: 'http://leader.test:8080' });
      const term = await t.within(ea.campaign(), 'campaign()');
      const leader = open(t, a, ea, 'm');
      const follower = open(t, b, name, 'm');
      await t.within(leader.ready(), 'the leader mirror to load');
      await t.within(follower.ready(), 'the follower mirror to load');

      const t1 = await t.within(leader.set('k1', 'v1'), 'set()');
      const t2 = await t.within(leader.set('k2', 'v2'), 'a second set()');
      const t3 = await t.within(leader.delete('k1'), 'delete()');
      expect(t2 > t1 && t3 > t2, `tokens ${t1} < ${t2} < ${t3}`).toBe(true);
      const t4 = await t.within(leader.delete('never-set'), 'delete() of a missing key');
      expect(t4 > t3).toBe(true);

      // read-your-writes on another replica never answers older than the token.
      const ryw = await t.within(
        follower.get('k2', { consistency: 'read-your-writes', token: t3 }),
        'a read-your-writes read',
      );
      expect(ryw.value).toBe('v2');
      expect(ryw.token >= t3).toBe(true);
      const gone = await t.within(
        follower.get('k1', { consistency: 'read-your-writes', token: t3 }),
        'a read-your-writes read of a deleted key',
      );
      expect(gone.value).toBeUndefined();

      const quorum = await t.within(follower.get('k2', { consistency: 'quorum' }), 'a quorum read');
      expect(quorum).toMatchObject({ value: 'v2', consistency: 'quorum', stalenessMs: 0 });
      expect(quorum.token >= t3).toBe(true);
      const all = await t.within(
        follower.entries({ consistency: 'quorum' }),
        'a quorum read of all',
      );
      expect([...all.entries]).toEqual([['k2', 'v2']]);

      await t.until(
        () => follower.token !== undefined && follower.token >= t4,
        'the follower mirror to reach the last token',
      );
      const local = await t.within(follower.get('k2'), 'a follower read');
      expect(local).toMatchObject({ value: 'v2', consistency: 'follower' });
      expect([...(await follower.entries()).entries]).toEqual([['k2', 'v2']]);
      await t.until(
        () => follower.stalenessMs() < Number.POSITIVE_INFINITY,
        'the follower mirror to be known current',
      );

      const fromLeader = await t.within(
        leader.get('k2', { consistency: 'leader' }),
        'a leader read',
      );
      expect(fromLeader).toMatchObject({ value: 'v2', consistency: 'leader', stalenessMs: 0 });
      await t.until(() => follower.leader?.epoch === term.epoch, 'the follower to see the leader');
      const refused = await rejectionOf(
        follower.get('k2', { consistency: 'leader' }),
        'a leader read on a follower',
      );
      expect(refused).toBeInstanceOf(NotLeaderError);
      expect((refused as NotLeaderError).leaderEpoch).toBe(term.epoch);
      expect((refused as NotLeaderError).endpoint).toBe('http://leader.test:8080');
      assertTenureError(
        await rejectionOf(follower.set('x', 'y'), 'set() on a follower'),
        'LEADERSHIP_LOST',
        'set() on a follower',
      );
    });

    test('writes of one tick go out in one write; a large batch is split within the limits', async (t) => {
      const a = await t.connect();
      const name = t.name('state');
      const ea = a.election(name);
      await t.within(ea.campaign(), 'campaign()');
      const map = open(t, a, ea, 'batch');
      const tokens = await t.within(
        Promise.all([map.set('a', '1'), map.set('b', '2'), map.delete('c'), map.set('a', '3')]),
        'four writes in one tick',
      );
      expect(new Set(tokens).size, 'one token for one batch').toBe(1);
      const many = await t.within(
        Promise.all(Array.from({ length: 300 }, (_, i) => map.set(`many-${i}`, String(i)))),
        '300 writes in one tick',
      );
      const distinct = [...new Set(many)];
      expect(distinct.length > 1, 'split into several writes').toBe(true);
      expect(distinct.length <= 300 / 2, `${distinct.length} writes for 300 keys`).toBe(true);
      const all = await t.within(map.entries({ consistency: 'quorum' }), 'a quorum read');
      expect(all.entries.get('a')).toBe('3');
      expect(all.entries.get('many-299')).toBe('299');
      expect(all.entries.size).toBe(302);
    });

    test("a deposed leader's write is refused by the arbitrator and never applied", async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name('state');
      const ea = a.election(name, { value: 'a' });
      const old: Term = await t.within(ea.campaign(), 'campaign()');
      const map = open(t, a, ea, 'fence');
      await t.within(map.set('k', 'first'), 'set()');
      const eb = b.election(name, { value: 'b' });
      const next = t.track(eb.campaign());
      // b queues behind a before a's session goes: else a's rejoin may queue first and lead again.
      await t.queueOf(ea, 2);
      await t.expire(a);
      await t.within(old.ended, 'the old term to end');
      const fresh = await t.within(next.promise, 'the next leader');
      // The old term's fence, sent straight to the backend (as a paused leader would send it).
      const backend = stateBackendOf(a, name, 'fence');
      assertTenureError(
        await rejectionOf(
          backend.write({ key: old.key, epoch: old.epoch }, [
            { op: 'put', key: 'k', value: 'stale' },
          ]),
          "the old term's write",
        ),
        'LEADERSHIP_LOST',
        "the old term's write",
      );
      assertTenureError(
        await rejectionOf(map.set('k', 'late'), 'set() after the term ended'),
        'LEADERSHIP_LOST',
        'set() after the term ended',
      );
      const mb = open(t, b, eb, 'fence');
      const token = await t.within(mb.set('k2', 'new'), "the new leader's set()");
      const all = await t.within(mb.entries({ consistency: 'quorum' }), 'a quorum read');
      expect(Object.fromEntries(all.entries)).toEqual({ k: 'first', k2: 'new' });
      expect(token > 0n && fresh.epoch > old.epoch).toBe(true);
      // The new leader's read waits for every earlier term's writes.
      expect((await t.within(mb.get('k', { consistency: 'leader' }), 'a leader read')).value).toBe(
        'first',
      );
    });

    test('bad input is refused with a typed error naming the field', async (t) => {
      const a = await t.connect();
      const name = t.name('state');
      const ea = a.election(name);
      await t.within(ea.campaign(), 'campaign()');
      const map = open(t, a, ea, 'input');
      await expect(map.set('k', 'x'.repeat(MAX_STATE_VALUE_BYTES + 1))).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'value',
      });
      await expect(map.set('', 'x')).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'key',
      });
      await expect(map.get('k', { consistency: 'read-your-writes' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'token',
      });
      await expect(map.get('k', { consistency: 'strong' as 'quorum' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'consistency',
      });
      expect(() => open(t, a, ea, 'bad/name')).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'name' }),
      );
      await t.within(map.set('k', 'x'.repeat(MAX_STATE_VALUE_BYTES)), 'set() of the largest value');
    });
  });
}

/** Opens a map with quick currency checks, closed before the test's arbitrators. */
function open(
  t: ConformanceContext,
  arbitrator: Arbitrator,
  election: Parameters<typeof openReplicatedMap>[0]['election'],
  name: string,
): ReplicatedMap {
  const map = openReplicatedMap({ arbitrator, election, name, currencyCheckMs: CHECK_MS });
  t.onDispose(() => map.close());
  return map;
}
