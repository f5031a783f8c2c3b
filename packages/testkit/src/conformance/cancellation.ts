import type { Arbitrator } from '@tenure/core';
import {
  MAX_KEY_BYTES,
  MAX_NAME_BYTES,
  MAX_STORED_VALUE_BYTES,
  MAX_VALUE_BYTES,
} from '@tenure/core';
import { describe, expect } from 'vitest';
import {
  argumentErrorOf,
  assertTenureError,
  type ConformanceTest,
  rejectionOf,
  rejectionOfCall,
  thrownBy,
} from './context.js';

/**
 * The G8 tests: AbortSignals, one candidacy per election, typed errors for bad input, isValid().
 * Each registers through `test`, the suite's fixture: a fresh `ConformanceContext` per test,
 * disposed however it ends.
 */
export function describeCancellationTests(
  test: ConformanceTest,
  slashInNames: 'allowed' | 'forbidden',
): void {
  describe('G8 cancellation and errors', () => {
    test('campaign() honours an AbortSignal, aborted before or while waiting', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const ea = a.election(name, { value: 'a' });
      const eb = b.election(name, { value: 'b' });
      const rb = t.record(eb);

      // Already aborted, on an empty election: no term, no key.
      const empty = t.name('empty');
      const ec = b.election(empty, { value: 'c' });
      const early = new AbortController();
      const earlyReason = new Error('cancelled before the call');
      early.abort(earlyReason);
      const first = await t.within(
        rejectionOfCall(
          () => ec.campaign({ signal: early.signal }),
          'campaign() with an aborted signal',
        ),
        'campaign() with an aborted signal',
      );
      assertTenureError(first, 'ABORTED', 'campaign() with an aborted signal');
      expect((first as Error).cause).toBe(earlyReason);
      expect(ec.term).toBeUndefined();
      expect(await t.within(b.leader(empty), 'leader()')).toBeUndefined();

      const ta = await t.within(ea.campaign(), 'campaign() of a');
      // Already aborted behind a leader.
      assertTenureError(
        await t.within(
          rejectionOf(eb.campaign({ signal: early.signal }), 'campaign()'),
          'campaign() with an aborted signal',
        ),
        'ABORTED',
        'campaign() with an aborted signal',
      );
      expect((await t.within(ea.candidates(), 'candidates()')).map((q) => q.key)).toEqual([ta.key]);

      // Aborted while waiting: rejects, and the key is withdrawn.
      const later = new AbortController();
      const laterReason = new Error('cancelled while waiting');
      const pb = t.track(eb.campaign({ signal: later.signal }));
      await t.queueOf(ea, 2);
      later.abort(laterReason);
      const second = await t.within(
        rejectionOf(pb.promise, 'campaign() aborted while waiting'),
        'campaign() aborted while waiting',
      );
      assertTenureError(second, 'ABORTED', 'campaign() aborted while waiting');
      expect((second as Error).cause).toBe(laterReason);
      await t.until(
        async () => (await ea.candidates()).length === 1,
        "the aborted candidate's key to be deleted",
      );
      expect((await t.within(ea.candidates(), 'candidates()')).map((q) => q.key)).toEqual([ta.key]);
      await t.within(ea.resign(), 'resign() of a');
      expect(await t.within(ea.leader(), 'leader()')).toBeUndefined();
      expect(eb.term).toBeUndefined();
      expect(rb.terms).toEqual([]);

      // The candidate may campaign again after an abort.
      const tb = await t.within(eb.campaign(), 'campaign() after an aborted one');
      expect(tb.epoch > ta.epoch).toBe(true);
    });

    test('one arbitrator holds at most one candidacy per election', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name();
      const first = a.election(name, { value: 'first' });
      assertTenureError(
        thrownBy(() => a.election(name), 'a second election() of an open one'),
        'CONFLICT',
        'a second election() of an open one',
      );
      const other = b.election(name, { value: 'other' });
      const t1 = await t.within(first.campaign(), 'campaign()');
      assertTenureError(
        thrownBy(() => a.election(name, { value: 'x' }), 'election() while leading'),
        'CONFLICT',
        'election() of a leading one',
      );
      await t.within(first.close(), 'close()');
      const second = a.election(name, { value: 'second' });
      expect(second).not.toBe(first);
      const po = t.track(other.campaign());
      const t2 = await t.within(po.promise, 'campaign() of the other arbitrator');
      expect(t2.epoch > t1.epoch).toBe(true);
      const ps = t.track(second.campaign());
      await t.queueOf(other, 2);
      await t.within(other.resign(), 'resign()');
      const t3 = await t.within(ps.promise, 'campaign() of the new candidacy');
      expect(t3.epoch > t2.epoch).toBe(true);
    });

    test('invalid election names and values throw InvalidArgumentError synchronously', async (t) => {
      const a = await t.connect();
      const badNames: Array<[string, unknown]> = [
        ['empty', ''],
        ['too long', 'x'.repeat(MAX_NAME_BYTES + 1)],
        ['too many UTF-8 bytes', 'é'.repeat(Math.floor(MAX_NAME_BYTES / 2) + 1)],
        ['a NUL', 'a\u0000b'],
        ['a newline', 'a\nb'],
        ['a control character', 'bell\u0007'],
        ['DEL', 'del\u007f'],
        ['an empty segment', 'a//b'],
        ['a leading slash', '/a'],
        ['a trailing slash', 'a/'],
        ['undefined', undefined],
        ['null', null],
        ['a number', 42],
        ['an object', { name: 'x' }],
      ];
      for (const [what, bad] of badNames) {
        const label = `election() with a name that is ${what}`;
        assertTenureError(
          thrownBy(() => a.election(bad as string), label),
          'INVALID_ARGUMENT',
          label,
          'name',
        );
        const observeLabel = `observe() with a name that is ${what}`;
        assertTenureError(
          thrownBy(() => a.observe(bad as string), observeLabel),
          'INVALID_ARGUMENT',
          observeLabel,
          'name',
        );
        const leaderLabel = `arbitrator.leader() with a name that is ${what}`;
        assertTenureError(
          await argumentErrorOf(() => a.leader(bad as string), leaderLabel),
          'INVALID_ARGUMENT',
          leaderLabel,
          'name',
        );
      }

      const slashed = `${t.name()}/b`;
      if (slashInNames === 'allowed') {
        const e = a.election(slashed, { value: 'slash' });
        expect(e.name).toBe(slashed);
        const term = await t.within(e.campaign(), "campaign() of a name with '/'");
        expect((await t.within(a.leader(slashed), 'leader()'))?.epoch).toBe(term.epoch);
        // A name and its "child" are different elections.
        expect(await t.within(a.leader(slashed.slice(0, -2)), 'leader()')).toBeUndefined();
      } else {
        assertTenureError(
          thrownBy(() => a.election(slashed), "election() with '/'"),
          'INVALID_ARGUMENT',
          "election() with '/' on a backend that forbids it",
          'name',
        );
      }

      const unique = t.name();
      const longest = a.election(`${unique}-${'x'.repeat(MAX_NAME_BYTES - unique.length - 1)}`);
      expect(new TextEncoder().encode(longest.name).length).toBe(MAX_NAME_BYTES);
      await t.within(longest.close(), 'close()');
      const unicode = a.election(`élection-ü-${t.name()}`);
      await t.within(unicode.close(), 'close()');

      const name = t.name();
      const badValues: Array<[string, unknown]> = [
        ['too long', 'x'.repeat(MAX_VALUE_BYTES + 1)],
        ['too many UTF-8 bytes', '€'.repeat(Math.floor(MAX_VALUE_BYTES / 3) + 1)],
        ['a lone surrogate', 'a\uD800b'],
        ['a number', 42],
        ['null', null],
      ];
      for (const [what, bad] of badValues) {
        const label = `election() with a value that is ${what}`;
        assertTenureError(
          thrownBy(() => a.election(name, { value: bad as string }), label),
          'INVALID_ARGUMENT',
          label,
          'value',
        );
      }
      // The refused calls reserved nothing: the name is still free on this arbitrator.
      const largest = 'v'.repeat(MAX_VALUE_BYTES);
      const e = a.election(name, { value: largest });
      await t.within(e.campaign(), 'campaign() with the largest value');
      expect((await t.within(e.leader(), 'leader()'))?.value).toBe(largest);
    });

    test('term.put/delete and election.get refuse invalid keys, values and versions', async (t) => {
      const a = await t.connect();
      const e = a.election(t.name(), { value: 'a' });
      const term = await t.within(e.campaign(), 'campaign()');
      const badKeys: Array<[string, unknown]> = [
        ['empty', ''],
        ['too long', 'k'.repeat(MAX_KEY_BYTES + 1)],
        ['a NUL', 'a\u0000b'],
        ['a number', 7],
      ];
      for (const [what, bad] of badKeys) {
        for (const [op, call] of [
          ['term.put()', () => term.put(bad as string, 'v')],
          ['term.delete()', () => term.delete(bad as string)],
          ['election.get()', () => e.get(bad as string)],
        ] as const) {
          const label = `${op} with a key that is ${what}`;
          assertTenureError(await argumentErrorOf(call, label), 'INVALID_ARGUMENT', label, 'key');
        }
      }
      const badStored: Array<[string, unknown]> = [
        ['too long', 's'.repeat(MAX_STORED_VALUE_BYTES + 1)],
        ['a number', 42],
      ];
      for (const [what, bad] of badStored) {
        const label = `term.put() with a value that is ${what}`;
        assertTenureError(
          await argumentErrorOf(() => term.put('k', bad as string), label),
          'INVALID_ARGUMENT',
          label,
          'value',
        );
      }
      for (const bad of [0, -1, 1.5, 'newest', Number.NaN]) {
        const label = `term.put() with ifVersion ${String(bad)}`;
        assertTenureError(
          await argumentErrorOf(() => term.put('k', 'v', { ifVersion: bad as number }), label),
          'INVALID_ARGUMENT',
          label,
          'ifVersion',
        );
      }
      assertTenureError(
        await argumentErrorOf(
          () => e.campaign({ signal: 'soon' as unknown as AbortSignal }),
          'campaign() with a signal that is not an AbortSignal',
        ),
        'INVALID_ARGUMENT',
        'campaign() with a signal that is not an AbortSignal',
      );
      expect(await t.within(e.get('k'), 'get()'), 'nothing was written').toBeUndefined();
      expect(term.isValid()).toBe(true);
    });

    test('isValid() is synchronous, agrees with remainingMs(), and renewals keep the term valid', async (t) => {
      const a = await t.connect();
      const e = a.election(t.name(), { value: 'a' });
      const term = await t.within(e.campaign(), 'campaign()');
      const samples: string[] = [];
      const check = (): boolean => {
        const before = term.remainingMs();
        const valid = term.isValid();
        const after = term.remainingMs();
        if (typeof valid !== 'boolean') samples.push(`isValid() returned ${typeof valid}`);
        if (valid && !(before > 0)) samples.push(`valid with remainingMs() ${before}`);
        if (!valid && after > 0) samples.push(`invalid with remainingMs() ${after}`);
        if (before > a.ttlMs) samples.push(`remainingMs() ${before} exceeds the TTL ${a.ttlMs}`);
        return valid;
      };
      expect(check(), 'valid right after election').toBe(true);
      // Wait until the term has outlived the deadline it started with: only renewals can
      // have kept it valid since.
      const firstDeadline = performance.now() + term.remainingMs();
      await t.until(
        () => {
          check();
          return performance.now() > firstDeadline + 1;
        },
        'the first deadline to pass',
        t.timing.expiryMs,
      );
      expect(check(), 'still valid after the first deadline: renewals extend it').toBe(true);
      expect(term.endReason).toBeUndefined();

      await t.within(e.resign(), 'resign()');
      expect(check()).toBe(false);
      expect(term.remainingMs()).toBeLessThanOrEqual(0);
      assertTenureError(
        thrownBy(() => term.assertValid(), 'assertValid() after resign()'),
        'LEADERSHIP_LOST',
        'assertValid() after resign()',
      );
      expect(samples).toEqual([]);
    });
  });
}
