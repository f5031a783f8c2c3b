import type { Arbitrator } from '@tenure/core';
import { describe, expect } from 'vitest';
import { expectEnded } from './assertions.js';
import {
  assertTenureError,
  type ConformanceTest,
  leaderView,
  rejectionOfCall,
  thrownBy,
} from './context.js';

/**
 * The G3/G7 tests: resign(), election.close() and arbitrator.close() end the term and hand over at
 * once. Each registers through `test`, the suite's fixture: a fresh `ConformanceContext` per test,
 * disposed however it ends.
 */
export function describeHandoverTests(test: ConformanceTest): void {
  describe('G3/G7 handover and clean exit', () => {
    test('resign() ends the term and hands over at once', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const ta = await t.within(ea.campaign(), 'campaign() of a');
      const pb = t.track(eb.campaign());
      await t.queueOf(ea, 2);

      const ended = t.next(ea, 'ended');
      await t.within(ea.resign(), 'resign()');
      expectEnded(ta, 'resigned');
      expect(ea.term).toBeUndefined();
      expect(await t.within(ta.ended, 'term.ended')).toBe('resigned');
      const [endedTerm, reason] = await ended.promise;
      expect(endedTerm).toBe(ta);
      expect(reason).toBe('resigned');
      // The key is deleted by the time resign() resolves (read through the same client).
      const keys = (await t.within(ea.candidates(), 'candidates()')).map((q) => q.key);
      expect(keys).not.toContain(ta.key);

      const tb = await t.within(pb.promise, 'campaign() of the next candidate after resign()');
      expect(tb.epoch > ta.epoch).toBe(true);

      // A resigned candidate may campaign again: it joins at the tail.
      const pa = t.track(ea.campaign());
      await t.queueOf(eb, 2);
      expect(pa.settled).toBe(false);
      await t.within(eb.resign(), 'resign() of b');
      const ta2 = await t.within(pa.promise, 'campaign() of a again');
      expect(ta2).not.toBe(ta);
      expect(ta2.epoch > tb.epoch).toBe(true);
    });

    test('election.close() ends the term with `closed`, hands over, and refuses later calls', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const ta = await t.within(ea.campaign(), 'campaign() of a');
      const pb = t.track(eb.campaign());
      await t.queueOf(ea, 2);

      const ended = t.next(ea, 'ended');
      await t.within(ea.close(), 'election.close()');
      expectEnded(ta, 'closed');
      expect(await t.within(ta.ended, 'term.ended')).toBe('closed');
      const [endedTerm, reason] = await ended.promise;
      expect(endedTerm).toBe(ta);
      expect(reason).toBe('closed');
      const tb = await t.within(pb.promise, 'campaign() of b after close()');
      expect(tb.epoch > ta.epoch).toBe(true);

      await t.within(ea.close(), 'a second election.close()');
      await t.within(ea[Symbol.asyncDispose](), 'election[Symbol.asyncDispose]()');
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['campaign()', () => ea.campaign()],
        ['leader()', () => ea.leader()],
        ['candidates()', () => ea.candidates()],
        ['get()', () => ea.get('k')],
      ];
      for (const [what, call] of calls) {
        const error = await t.within(
          rejectionOfCall(call, `${what} after close()`),
          `${what} after close()`,
        );
        assertTenureError(error, 'CLOSED', `${what} after close()`);
      }
      // Closing an election leaves its arbitrator usable.
      expect(leaderView(await t.within(a.leader(name), 'arbitrator.leader()'))?.key).toBe(tb.key);
    });

    test('arbitrator.close() ends its terms with `closed`, hands over, and refuses later calls', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const ta = await t.within(ea.campaign(), 'campaign() of a');
      const pb = t.track(eb.campaign());
      await t.queueOf(eb, 2);

      const ended = t.next(ea, 'ended');
      await t.within(a.close(), 'arbitrator.close()');
      expectEnded(ta, 'closed');
      const [, reason] = await ended.promise;
      expect(reason).toBe('closed');
      const tb = await t.within(pb.promise, 'campaign() of b after arbitrator.close()');
      expect(tb.epoch > ta.epoch).toBe(true);
      expect(
        (await t.within(eb.candidates(), 'candidates()')).map((q) => q.key),
        'the closed arbitrator left no key behind',
      ).toEqual([tb.key]);

      await t.within(a.close(), 'a second arbitrator.close()');
      await t.within(a[Symbol.asyncDispose](), 'arbitrator[Symbol.asyncDispose]()');
      assertTenureError(
        thrownBy(() => a.election(t.name()), 'arbitrator.election() after close()'),
        'CLOSED',
        'arbitrator.election() after close()',
      );
      assertTenureError(
        await rejectionOfCall(() => a.leader(name), 'arbitrator.leader() after close()'),
        'CLOSED',
        'arbitrator.leader() after close()',
      );
      assertTenureError(
        await rejectionOfCall(() => ea.campaign(), 'campaign() after arbitrator.close()'),
        'CLOSED',
        'campaign() after arbitrator.close()',
      );
    });
  });
}
