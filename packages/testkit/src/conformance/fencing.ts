import type { Arbitrator } from '@tenure/core';
import { describe, expect } from 'vitest';
import { storedView } from './assertions.js';
import { assertTenureError, type ConformanceTest, rejectionOf } from './context.js';

/**
 * The G2 fencing tests: fenced writes beside the election, unfenced posts, refusal once the
 * session is gone. Each registers through `test`, the suite's fixture: a fresh
 * `ConformanceContext` per test, disposed however it ends.
 */
export function describeFencingTests(test: ConformanceTest): void {
  describe('G2 fencing', () => {
    test('term.put/delete write beside the election, with ifVersion, and election.get reads them', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const ta = await t.within(ea.campaign(), 'campaign()');

      expect(await t.within(ea.get('cfg'), 'get() of a missing key')).toBeUndefined();
      expect(await t.within(ta.put('cfg', 'one'), 'put()')).toEqual({ version: 1 });
      expect(storedView(await t.within(ea.get('cfg'), 'get()'))).toEqual({
        value: 'one',
        version: 1,
      });
      expect(await t.within(ta.put('cfg', 'two'), 'a second put()')).toEqual({ version: 2 });
      assertTenureError(
        await rejectionOf(ta.put('cfg', 'stale', { ifVersion: 1 }), 'put() with a stale ifVersion'),
        'CONFLICT',
        'put() with a stale ifVersion',
      );
      expect(
        await t.within(ta.put('cfg', 'three', { ifVersion: 2 }), 'put() with ifVersion'),
      ).toEqual({ version: 3 });
      expect(storedView(await t.within(ea.get('cfg'), 'get()'))).toEqual({
        value: 'three',
        version: 3,
      });

      expect(
        await t.within(ta.put('fresh', 'n', { ifVersion: 'absent' }), "put() with 'absent'"),
      ).toEqual({ version: 1 });
      assertTenureError(
        await rejectionOf(
          ta.put('fresh', 'again', { ifVersion: 'absent' }),
          "put() with 'absent' on an existing key",
        ),
        'CONFLICT',
        "put() with 'absent' on an existing key",
      );
      await t.within(ta.delete('fresh'), 'delete()');
      expect(await t.within(ea.get('fresh'), 'get() after delete()')).toBeUndefined();
      await t.within(ta.delete('fresh'), 'delete() of a missing key');
      expect(
        await t.within(
          ta.put('fresh', 'reborn', { ifVersion: 'absent' }),
          "put() with 'absent' after delete()",
        ),
      ).toEqual({ version: 1 });
      await t.within(ta.put('nested/key', 'ok'), "put() of a key with '/'");
      expect((await t.within(ea.get('nested/key'), 'get()'))?.value).toBe('ok');

      // Another participant reads the same store.
      await t.until(
        async () => (await eb.get('cfg'))?.value === 'three',
        'another participant to read the stored value',
      );
      // Stored values are not candidates.
      expect((await t.within(ea.candidates(), 'candidates()')).map((q) => q.key)).toEqual([ta.key]);

      await t.within(ea.resign(), 'resign()');
      assertTenureError(
        await rejectionOf(ta.put('cfg', 'late'), 'put() after resign()'),
        'LEADERSHIP_LOST',
        'put() after resign()',
      );
      assertTenureError(
        await rejectionOf(ta.delete('cfg'), 'delete() after resign()'),
        'LEADERSHIP_LOST',
        'delete() after resign()',
      );
      expect(storedView(await t.within(ea.get('cfg'), 'get()'))).toEqual({
        value: 'three',
        version: 3,
      });

      // The next leader's term writes on, with the versions left by the previous one.
      const tb = await t.within(eb.campaign(), 'campaign() of b');
      expect(
        await t.within(tb.put('cfg', 'four', { ifVersion: 3 }), 'put() of the next leader'),
      ).toEqual({ version: 4 });
    });

    test('election.post() writes unfenced from any participant, as a compare-and-set the leader can consume', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const ta = await t.within(ea.campaign(), 'campaign()');

      // b never campaigned: it may still post.
      expect(
        await t.within(eb.post('inbox', 'r1', { ifVersion: 'absent' }), "post() with 'absent'"),
      ).toEqual({ version: 1 });
      assertTenureError(
        await rejectionOf(
          eb.post('inbox', 'r1-again', { ifVersion: 'absent' }),
          "post() with 'absent' on an existing key",
        ),
        'CONFLICT',
        "post() with 'absent' on an existing key",
      );
      expect(
        await t.within(eb.post('inbox', 'r1,r2', { ifVersion: 1 }), 'post() with ifVersion'),
      ).toEqual({ version: 2 });
      assertTenureError(
        await rejectionOf(eb.post('inbox', 'x', { ifVersion: 1 }), 'post() with a stale ifVersion'),
        'CONFLICT',
        'post() with a stale ifVersion',
      );
      expect(await t.within(eb.post('other', 'plain'), 'post() without ifVersion')).toEqual({
        version: 1,
      });
      await t.until(
        async () => (await ea.get('inbox'))?.value === 'r1,r2',
        'the leader to read the posted value',
      );
      // The leader consumes it with a fenced compare-and-set on the same key.
      expect(
        await t.within(ta.put('inbox', '', { ifVersion: 2 }), 'fenced put() of a posted key'),
      ).toEqual({ version: 3 });
      // Not a candidacy: b is not in the queue.
      expect((await t.within(ea.candidates(), 'candidates()')).map((q) => q.value)).toEqual(['a']);
      assertTenureError(
        await rejectionOf(eb.post('', 'v'), 'post() with an empty key'),
        'INVALID_ARGUMENT',
        'post() with an empty key',
      );
      assertTenureError(
        await rejectionOf(eb.post('k', 'v', { ifVersion: 0 }), 'post() with ifVersion 0'),
        'INVALID_ARGUMENT',
        'post() with ifVersion 0',
      );
      await t.within(eb.close(), 'close()');
      assertTenureError(
        await rejectionOf(eb.post('inbox', 'late'), 'post() after close()'),
        'CLOSED',
        'post() after close()',
      );
    });

    test('a fenced write is refused as soon as the session is gone', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const reader = b.election(name, { value: 'reader' });
      const ta = await t.within(ea.campaign(), 'campaign()');
      await t.within(ta.put('k', 'one'), 'put()');

      await t.expire(a);
      // No waiting for the client to notice: the backend must refuse the write by itself.
      assertTenureError(
        await t.within(
          rejectionOf(ta.put('k', 'stale'), 'put() after the session expired'),
          'put() after the session expired',
        ),
        'LEADERSHIP_LOST',
        'put() after the session expired',
      );
      assertTenureError(
        await t.within(
          rejectionOf(ta.delete('k'), 'delete() after the session expired'),
          'delete() after the session expired',
        ),
        'LEADERSHIP_LOST',
        'delete() after the session expired',
      );
      // `revoked` when the key's deletion is seen before the session's loss (etcd).
      expect(['session-lost', 'revoked']).toContain(
        await t.within(ta.ended, 'term.ended', t.timing.expiryMs),
      );
      await t.until(
        async () => (await reader.get('k'))?.value === 'one',
        'the store to still hold the value of the valid term',
      );
      expect(storedView(await t.within(reader.get('k'), 'get()'))).toEqual({
        value: 'one',
        version: 1,
      });

      // Still campaigning, a rejoins and leads again with a new term that may write.
      const ta2 = await t.within(ea.campaign(), 'the rejoined campaign()', t.timing.expiryMs);
      expect(ta2).not.toBe(ta);
      expect(ta2.epoch > ta.epoch).toBe(true);
      assertTenureError(
        await rejectionOf(ta.put('k', 'stale'), 'put() of the old term'),
        'LEADERSHIP_LOST',
        'put() of the old term while the same candidate leads again',
      );
      expect(
        await t.within(ta2.put('k', 'two', { ifVersion: 1 }), 'put() of the new term'),
      ).toEqual({ version: 2 });
    });
  });
}
