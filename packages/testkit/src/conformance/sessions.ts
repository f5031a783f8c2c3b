import type { Arbitrator } from '@tenure/core';
import { describe, expect } from 'vitest';
import { expectEnded } from './assertions.js';
import type { ConformanceTest } from './context.js';

/**
 * The session tests: a lost session ends the term, and a stale key never leads. Each registers
 * through `test`, the suite's fixture: a fresh `ConformanceContext` per test, disposed however it
 * ends.
 */
export function describeSessionTests(test: ConformanceTest): void {
  describe('sessions', () => {
    test('a session loss ends the term with `session-lost`; the candidate rejoins and leads again later', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const ra = t.record(ea);
      const ta = await t.within(ea.campaign(), 'campaign() of a');
      const pb = t.track(eb.campaign());
      await t.queueOf(eb, 2);

      const ended = t.next(ea, 'ended', t.timing.expiryMs);
      await t.expire(a);
      const [endedTerm, reason] = await ended.promise;
      expect(endedTerm).toBe(ta);
      // The term ends at first sight (G9): `session-lost` when the client hears of the
      // session's end first (ZooKeeper), `revoked` when it sees its key's deletion first
      // (etcd deletes a revoked lease's keys and tells their watchers before any renewal).
      expect(['session-lost', 'revoked']).toContain(reason);
      expectEnded(ta, reason);

      const tb = await t.within(pb.promise, 'campaign() of b', t.timing.expiryMs);
      expect(tb.epoch > ta.epoch).toBe(true);
      // a is still campaigning: it rejoins behind b with a fresh key.
      const queue = await t.queueOf(eb, 2, t.timing.expiryMs);
      expect(queue.map((q) => q.value)).toEqual(['b', 'a']);
      expect(queue[1]?.key).not.toBe(ta.key);

      const electedAgain = t.next(ea, 'elected');
      await t.within(eb.resign(), 'resign() of b');
      const [ta2] = await electedAgain.promise;
      expect(ta2).not.toBe(ta);
      expect(ta2.key).not.toBe(ta.key);
      expect(ta2.key).toBe(queue[1]?.key);
      expect(ta2.epoch > tb.epoch).toBe(true);
      expect(await t.within(ea.campaign(), 'campaign() while leading')).toBe(ta2);
      expect(
        ra.events
          .filter((x) => x.type === 'elected' || x.type === 'ended')
          .map((x) => (x.type === 'ended' ? `ended:${x.reason}` : x.type)),
      ).toEqual(['elected', `ended:${reason}`, 'elected']);
    });

    test('a waiting candidate whose session was lost never leads with its stale key', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const ra = t.record(ea);
      const rb = t.record(eb);
      const ta = await t.within(ea.campaign(), 'campaign() of a');
      const pb = t.track(eb.campaign());
      const queue = await t.queueOf(ea, 2);
      const old = queue[1];
      expect(old?.value).toBe('b');
      if (old === undefined) return;

      await t.expire(b);
      await t.until(
        async () => !(await ea.candidates()).some((q) => q.key === old.key),
        "the expired session's key to be gone",
      );
      // Read the queue as soon as b is elected, while its first term is surely current.
      const keyAtElection: Array<Promise<string[]>> = [];
      eb.on('elected', () => {
        keyAtElection.push(t.track(eb.candidates().then((q) => q.map((x) => x.key))).promise);
      });
      await t.within(ea.resign(), 'resign() of a');

      const tb = await t.within(
        pb.promise,
        'campaign() of b after its session was replaced',
        t.timing.expiryMs,
      );
      expect(tb.key, 'b leads with a new key').not.toBe(old.key);
      expect(tb.epoch > old.epoch, 'b leads with a larger epoch than its old key').toBe(true);
      expect(tb.epoch > ta.epoch).toBe(true);
      expect(tb.isValid()).toBe(true);
      const keys = await t.within(
        keyAtElection[0] ?? eb.candidates().then((q) => q.map((x) => x.key)),
        'candidates() at election',
      );
      expect(keys, "b's key is in the queue when it is elected").toContain(tb.key);
      for (const term of rb.terms) {
        expect(term.key, 'no term of b carries its old key').not.toBe(old.key);
      }
      for (const leader of [...ra.leaders, ...rb.leaders]) {
        expect(leader?.key, 'no participant saw the old key lead').not.toBe(old.key);
      }
    });
  });
}
