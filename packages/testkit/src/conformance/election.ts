import type { Arbitrator } from '@tenure/core';
import { describe, expect } from 'vitest';
import { assertHistory, type TermRecord } from '../term-history.js';
import { expectStrictlyIncreasing } from './assertions.js';
import { type ConformanceTest, leaderView, rejectionOf } from './context.js';

/**
 * The G1/G5 election tests: one leader, FIFO order, a re-read queue when a predecessor leaves, no
 * two valid terms. Each registers through `test`, the suite's fixture: a fresh
 * `ConformanceContext` per test, disposed however it ends.
 */
export function describeElectionTests(test: ConformanceTest): void {
  describe('G1/G5 election', () => {
    test('a single candidate is elected', async (t) => {
      const a = await t.connect();
      const name = t.name();
      const e = a.election(name, { value: 'solo' });
      expect(e.name).toBe(name);
      expect(e.value).toBe('solo');
      expect(e.term).toBeUndefined();
      expect(await t.within(e.leader(), 'leader() of an empty election')).toBeUndefined();
      expect(await t.within(e.candidates(), 'candidates() of an empty election')).toEqual([]);

      const elected = t.next(e, 'elected');
      const term = await t.within(e.campaign(), 'campaign() of the only candidate');
      const [electedTerm] = await elected.promise;
      expect(electedTerm, '`elected` carries the term campaign() resolved with').toBe(term);
      expect(typeof term.epoch).toBe('bigint');
      expect(term.election).toBe(name);
      expect(typeof term.key).toBe('string');
      expect(term.key.length).toBeGreaterThan(0);
      expect(term.endReason).toBeUndefined();
      expect(term.signal.aborted).toBe(false);
      expect(term.isValid()).toBe(true);
      expect(() => term.assertValid()).not.toThrow();
      expect(e.term).toBe(term);

      const expected = { value: 'solo', epoch: term.epoch, key: term.key };
      expect(leaderView(await t.within(e.leader(), 'leader()'))).toEqual(expected);
      expect(leaderView(await t.within(a.leader(name), 'arbitrator.leader()'))).toEqual(expected);
      const queue = await t.within(e.candidates(), 'candidates()');
      expect(queue.map(leaderView)).toEqual([expected]);
      expect(await t.within(e.campaign(), 'campaign() while leading')).toBe(term);
    });

    test('candidates lead in the order they joined (FIFO)', async (t) => {
      const [a, b, c] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'first' });
      const eb = b.election(name, { value: 'second' });
      const ec = c.election(name, { value: 'third' });
      const order: string[] = [];
      for (const e of [ea, eb, ec]) e.on('elected', () => order.push(e.value));

      const ta = await t.within(ea.campaign(), 'campaign() of the first candidate');
      const pb = t.track(eb.campaign());
      await t.queueOf(ea, 2);
      const pc = t.track(ec.campaign());
      const queue = await t.queueOf(ea, 3);
      expect(queue.map((q) => q.value)).toEqual(['first', 'second', 'third']);
      expect(queue[0]?.key).toBe(ta.key);
      expect(queue[0]?.epoch).toBe(ta.epoch);
      expectStrictlyIncreasing(
        queue.map((q) => q.epoch),
        'the epochs of the keys in queue order',
      );
      expect(pb.settled, 'the second candidate is still waiting').toBe(false);
      expect(pc.settled, 'the third candidate is still waiting').toBe(false);

      await t.within(ea.resign(), 'resign() of the first leader');
      const tb = await t.within(pb.promise, 'campaign() of the second candidate');
      expect(tb.key, 'the second leads with the key it queued with').toBe(queue[1]?.key);
      expect(tb.epoch).toBe(queue[1]?.epoch);
      expect(pc.settled, 'the third candidate waits while the second leads').toBe(false);

      await t.within(eb.resign(), 'resign() of the second leader');
      const tc = await t.within(pc.promise, 'campaign() of the third candidate');
      expect(tc.key).toBe(queue[2]?.key);
      expectStrictlyIncreasing([ta.epoch, tb.epoch, tc.epoch], 'the epochs of the terms');
      expect(order).toEqual(['first', 'second', 'third']);
    });

    test('a candidate whose predecessor leaves re-reads the queue instead of assuming it won (G4)', async (t) => {
      const [a, b, c] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const ec = c.election(name, { value: 'c' });
      const ta = await t.within(ea.campaign(), 'campaign() of the leader');
      const stop = new AbortController();
      const pb = t.track(eb.campaign({ signal: stop.signal }));
      await t.queueOf(ea, 2);
      const pc = t.track(ec.campaign());
      await t.queueOf(ea, 3);
      const wrongful: string[] = [];
      ec.on('elected', (term) => {
        if (ta.isValid()) wrongful.push(`c elected with epoch ${term.epoch} while a was valid`);
      });

      // The middle candidate leaves: c's predecessor is gone, but a still leads.
      stop.abort();
      await rejectionOf(pb.promise, 'campaign() of the middle candidate after abort');
      const queue = await t.queueOf(ea, 2);
      expect(queue.map((q) => q.value)).toEqual(['a', 'c']);
      expect(leaderView(await t.within(ec.leader(), 'leader() as seen by c'))).toEqual(
        leaderView({ value: 'a', epoch: ta.epoch, key: ta.key }),
      );
      expect(pc.settled, 'c must keep waiting while a leads').toBe(false);
      expect(ec.term).toBeUndefined();
      expect(ta.endReason).toBeUndefined();

      await t.within(ea.resign(), 'resign() of the leader');
      const tc = await t.within(pc.promise, 'campaign() of c');
      expect(tc.epoch > ta.epoch).toBe(true);
      expect(wrongful).toEqual([]);
    });

    test('every elected candidate sees no other valid term at that instant (G1)', async (t) => {
      const [a, b, c] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name();
      const elections = [a, b, c].map((x, i) => x.election(name, { value: `p${i}` }));
      const problems: string[] = [];
      const history: TermRecord[] = [];
      for (const [i, e] of elections.entries()) {
        t.trackTerms(e, `p${i}`, history);
        e.on('elected', (term) => {
          for (const other of elections) {
            if (other !== e && other.term?.isValid()) {
              problems.push(
                `${e.value} elected (epoch ${term.epoch}) while ${other.value} held a valid term (epoch ${other.term.epoch})`,
              );
            }
          }
        });
      }
      // Every candidate campaigns all the time; each leader resigns and rejoins at the tail.
      for (const e of elections) t.track(e.campaign());
      for (let round = 0; round < 9; round += 1) {
        const leader = await t.until(
          () => elections.find((e) => e.term?.isValid()),
          `a leader in round ${round}`,
        );
        await t.within(leader.resign(), 'resign()');
        t.track(leader.campaign());
      }
      expect(problems).toEqual([]);
      await Promise.all(elections.map((e) => t.within(e.close(), 'election.close()')));
      assertHistory(history);
      expect(history.length).toBeGreaterThanOrEqual(9);
    });
  });
}
