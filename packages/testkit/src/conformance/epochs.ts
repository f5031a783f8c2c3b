import type { Arbitrator, Election, LeaderInfo } from '@tenure/core';
import { MAX_VALUE_BYTES } from '@tenure/core';
import { describe, expect } from 'vitest';
import { describeLeader, leaderSequenceViolations } from '../leader-sequence.js';
import { assertHistory, type TermRecord } from '../term-history.js';
import { compareBigints, expectStrictlyIncreasing, sameLeader } from './assertions.js';
import {
  argumentErrorOf,
  assertTenureError,
  type ConformanceTest,
  describeError,
  leaderView,
  rejectionOfCall,
} from './context.js';

/**
 * The G2/G6 tests: epochs strictly increase, observers see leaders in epoch order, proclaim().
 * Each registers through `test`, the suite's fixture: a fresh `ConformanceContext` per test,
 * disposed however it ends.
 */
export function describeEpochTests(test: ConformanceTest): void {
  describe('G2/G6 epochs and leader changes', () => {
    test('epochs strictly increase over 50 successive terms', async (t) => {
      const [a, b, o] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const observer = t.observe(o.observe(name));
      const recordings = [t.record(ea), t.record(eb)];
      const history: TermRecord[] = [];
      const stopA = t.trackTerms(ea, 'a', history);
      const stopB = t.trackTerms(eb, 'b', history);
      const overlaps: string[] = [];
      for (const [self, other] of [
        [ea, eb],
        [eb, ea],
      ] as const) {
        self.on('elected', (term) => {
          if (other.term?.isValid()) {
            overlaps.push(`${self.value} elected (epoch ${term.epoch}) while ${other.value} valid`);
          }
        });
      }

      let leader: Election = ea;
      let waiter: Election = eb;
      let term = await t.within(ea.campaign(), 'the first campaign()');
      const epochs = [term.epoch];
      let pending = t.track(eb.campaign());
      while (epochs.length < 50) {
        await t.queueOf(leader, 2);
        await t.within(leader.resign(), `resign() of term ${epochs.length}`);
        term = await t.within(pending.promise, `campaign() for term ${epochs.length + 1}`);
        epochs.push(term.epoch);
        pending = t.track(leader.campaign());
        [leader, waiter] = [waiter, leader];
      }
      expectStrictlyIncreasing(epochs, 'the epochs of 50 successive terms');

      const last = term;
      await t.until(
        () => observer.items.at(-1)?.epoch === last.epoch,
        'the observer to see the last term',
      );
      for (const [i, recording] of recordings.entries()) {
        expect(
          leaderSequenceViolations(recording.leaders, 'events'),
          `leader-changed of ${i === 0 ? 'a' : 'b'}`,
        ).toEqual([]);
        expectStrictlyIncreasing(
          recording.terms.map((x) => x.epoch),
          'the epochs of one participant',
        );
      }
      expect(leaderSequenceViolations(observer.items, 'observer')).toEqual([]);
      const known = new Set(epochs);
      for (const seen of [...observer.items, ...recordings.flatMap((r) => r.leaders)]) {
        if (seen !== undefined && !known.has(seen.epoch)) {
          throw new Error(`a leader that never held a term was reported: ${describeLeader(seen)}`);
        }
      }
      expect(overlaps).toEqual([]);
      stopA();
      stopB();
      assertHistory(history);
      expect(history.map((r) => r.epoch).sort(compareBigints)).toEqual(epochs);
    });

    test('leader-changed and observe() deliver leaders in strictly increasing epoch order', async (t) => {
      const [a, b, c, o] = (await t.connectMany(4)) as [
        Arbitrator,
        Arbitrator,
        Arbitrator,
        Arbitrator,
      ];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const ec = c.election(name, { value: 'c' });
      const [ra, rb, rc] = [t.record(ea), t.record(eb), t.record(ec)];
      const watcher = t.observe(o.observe(name));
      const participantWatcher = t.observe(eb.observe());
      await t.until(() => watcher.items.length > 0, 'the first observed item');

      const ta = await t.within(ea.campaign(), 'campaign() of a');
      const pb = t.track(eb.campaign());
      await t.queueOf(ea, 2);
      const pc = t.track(ec.campaign());
      await t.queueOf(ea, 3);
      await t.within(ea.resign(), 'resign() of a');
      const tb = await t.within(pb.promise, 'campaign() of b');
      await t.within(eb.proclaim('b2'), 'proclaim() of b');
      await t.until(
        () => sameLeader(watcher.items.at(-1), { value: 'b2', epoch: tb.epoch, key: tb.key }),
        'the observer to see the proclaimed value',
      );
      const pa = t.track(ea.campaign());
      await t.queueOf(eb, 3);
      await t.within(eb.resign(), 'resign() of b');
      const tc = await t.within(pc.promise, 'campaign() of c');
      await t.within(ec.close(), 'close() of c');
      const ta2 = await t.within(pa.promise, 'campaign() of a again');
      t.track(eb.campaign());
      await t.queueOf(ea, 2);

      const finalLeader = { value: 'a', epoch: ta2.epoch, key: ta2.key };
      for (const [who, recording] of [
        ['a', ra],
        ['b', rb],
      ] as const) {
        await t.until(
          () => recording.leaders.at(-1)?.epoch === ta2.epoch,
          `${who}'s leader-changed to reach the last leader`,
        );
      }
      await t.until(
        () => sameLeader(watcher.items.at(-1), finalLeader),
        'arbitrator.observe() to reach the last leader',
      );
      await t.until(
        () => sameLeader(participantWatcher.items.at(-1), finalLeader),
        'election.observe() to reach the last leader',
      );

      const terms = new Map(
        [ta, tb, tc, ta2].map((term) => [term.epoch, term.key] as [bigint, string]),
      );
      for (const [who, recording] of [
        ['a', ra],
        ['b', rb],
        ['c', rc],
      ] as const) {
        expect(
          leaderSequenceViolations(recording.leaders, 'events'),
          `leader-changed seen by ${who}`,
        ).toEqual([]);
        for (const leader of recording.leaders) {
          if (leader !== undefined) {
            expect(leader.key, `${who}: key of epoch ${leader.epoch}`).toBe(
              terms.get(leader.epoch),
            );
          }
        }
      }
      for (const [who, feed] of [
        ['arbitrator.observe()', watcher],
        ['election.observe()', participantWatcher],
      ] as const) {
        expect(leaderSequenceViolations(feed.items, 'observer'), who).toEqual([]);
        for (const leader of feed.items) {
          if (leader !== undefined) {
            expect(leader.key, `${who}: key of epoch ${leader.epoch}`).toBe(
              terms.get(leader.epoch),
            );
          }
        }
        expect(feed.failure, `${who} must not fail`).toBeUndefined();
      }
    });

    test('observe() and leader() agree', async (t) => {
      const [a, b, o] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name();
      const watcher = t.observe(o.observe(name));
      await t.until(() => watcher.items.length > 0, 'the first observed item');
      expect(watcher.items[0], 'an empty election is observed as no leader').toBeUndefined();
      expect(await t.within(o.leader(name), 'arbitrator.leader()')).toBeUndefined();

      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const agree = async (what: string, expected: LeaderInfo | undefined) => {
        await t.until(
          () => sameLeader(watcher.items.at(-1), expected),
          `observe() to show ${describeLeader(expected)} (${what})`,
        );
        expect(leaderView(await t.within(o.leader(name), 'arbitrator.leader()')), what).toEqual(
          leaderView(expected),
        );
        expect(leaderView(await t.within(eb.leader(), 'election.leader()')), what).toEqual(
          leaderView(expected),
        );
      };

      const ta = await t.within(ea.campaign(), 'campaign() of a');
      await agree('a leads', { value: 'a', epoch: ta.epoch, key: ta.key });
      const own = t.observe(ea.observe());
      await t.until(() => own.items.length > 0, 'the first item of election.observe()');
      expect(leaderView(own.items[0])).toEqual(leaderView(await t.within(ea.leader(), 'leader()')));

      const pb = t.track(eb.campaign());
      await t.queueOf(ea, 2);
      await t.within(ea.resign(), 'resign() of a');
      const tb = await t.within(pb.promise, 'campaign() of b');
      await agree('b leads', { value: 'b', epoch: tb.epoch, key: tb.key });
      await t.within(eb.resign(), 'resign() of b');
      await agree('nobody leads', undefined);
      expect(await t.within(eb.candidates(), 'candidates()')).toEqual([]);
      expect(leaderSequenceViolations(watcher.items, 'observer')).toEqual([]);
    });

    test('observe() honours its AbortSignal', async (t) => {
      const [a, o] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      await t.within(a.election(name, { value: 'a' }).campaign(), 'campaign()');

      const stop = new AbortController();
      const iterator = o.observe(name, { signal: stop.signal });
      const first = await t.within(iterator.next(), 'the first item of observe()');
      expect(first.done).toBe(false);
      expect(first.value?.value).toBe('a');
      const pending = iterator.next();
      stop.abort();
      const after = await t.within(
        pending.then(
          (result) => ({ result }),
          (error: unknown) => ({ error }),
        ),
        'observe() to end after abort',
      );
      if ('error' in after) {
        assertTenureError(after.error, 'ABORTED', 'observe() after abort');
      } else {
        expect(after.result.done, 'observe() ends once its signal aborts').toBe(true);
      }

      const aborted = new AbortController();
      aborted.abort();
      let never: AsyncIterableIterator<LeaderInfo | undefined>;
      try {
        never = o.observe(name, { signal: aborted.signal });
      } catch (error) {
        throw new Error(
          `observe() with an already-aborted signal threw ${describeError(error)}; expected an iterator that is done (or rejects with AbortedError)`,
          { cause: error },
        );
      }
      const result = await t.within(
        never.next().then(
          (r) => ({ r }),
          (error: unknown) => ({ error }),
        ),
        'observe() with an aborted signal',
      );
      if ('error' in result) {
        assertTenureError(result.error, 'ABORTED', 'observe() with an aborted signal');
      } else {
        expect(result.r.done, 'observe() with an aborted signal yields nothing').toBe(true);
      }
    });

    test('proclaim() updates the value observers see, and is refused without a term', async (t) => {
      const [a, b, o] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'v1' });
      const eb = b.election(name, { value: 'b' });
      const ta = await t.within(ea.campaign(), 'campaign() of a');
      const watcher = t.observe(o.observe(name));
      await t.until(
        () => sameLeader(watcher.items.at(-1), { value: 'v1', epoch: ta.epoch, key: ta.key }),
        'the observer to see v1',
      );
      const pb = t.track(eb.campaign());
      await t.queueOf(ea, 2);
      assertTenureError(
        await rejectionOfCall(() => eb.proclaim('usurper'), 'proclaim() of a waiting candidate'),
        'LEADERSHIP_LOST',
        'proclaim() of a waiting candidate',
      );

      await t.within(ea.proclaim('v2'), 'proclaim()');
      expect(ea.value).toBe('v2');
      const proclaimed = { value: 'v2', epoch: ta.epoch, key: ta.key };
      expect(leaderView(await t.within(ea.leader(), 'leader()'))).toEqual(proclaimed);
      expect(leaderView((await t.within(ea.candidates(), 'candidates()'))[0])).toEqual(proclaimed);
      await t.until(
        () => sameLeader(watcher.items.at(-1), proclaimed),
        'the observer to see v2 with the same epoch',
      );
      expect(ta.isValid(), 'proclaim() keeps the term').toBe(true);

      assertTenureError(
        await argumentErrorOf(
          () => ea.proclaim('x'.repeat(MAX_VALUE_BYTES + 1)),
          'proclaim() of an oversized value',
        ),
        'INVALID_ARGUMENT',
        'proclaim() of an oversized value',
        'value',
      );
      assertTenureError(
        await argumentErrorOf(() => ea.proclaim(42 as unknown as string), 'proclaim() of a number'),
        'INVALID_ARGUMENT',
        'proclaim() of a number',
        'value',
      );
      expect((await t.within(ea.leader(), 'leader()'))?.value).toBe('v2');

      await t.within(ea.resign(), 'resign()');
      assertTenureError(
        await rejectionOfCall(() => ea.proclaim('v3'), 'proclaim() after the term ended'),
        'LEADERSHIP_LOST',
        'proclaim() after the term ended',
      );
      const tb = await t.within(pb.promise, 'campaign() of b');
      expect(leaderView(await t.within(eb.leader(), 'leader()'))).toEqual({
        value: 'b',
        epoch: tb.epoch,
        key: tb.key,
      });
      expect(leaderSequenceViolations(watcher.items, 'observer')).toEqual([]);
    });
  });
}
