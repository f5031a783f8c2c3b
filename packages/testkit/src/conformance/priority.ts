import { type Arbitrator, deferHandover, type Election, type LeaderInfo } from '@tenure/core';
import { describe, expect } from 'vitest';
import { expectEnded, expectStrictlyIncreasing } from './assertions.js';
import {
  assertTenureError,
  type ConformanceContext,
  type ConformanceTest,
  describeError,
  thrownBy,
} from './context.js';

/**
 * Preferred leaders (issue 17): `ElectionOptions.priority` and `preemptAfterMs`. A candidate of
 * higher priority than the leader takes over once it has stood in the queue, connected, for the
 * stability period, and not before; the lower ones queued between step back without a term; the
 * leader's term ends `preempted` and its key stays while work held with `deferHandover` runs,
 * bounded by the term's deadline; equal and lower priorities never take over; foreign
 * candidates are never deleted nor changed (registered unless `foreignCandidates` is `'none'`:
 * memory has no foreign clients). Each stability period is the harness's TTL,
 * so the tests take seconds; the lower bounds asserted follow from causality (a candidate
 * cannot be stable before it joined, or reconnected), never from a machine's speed.
 */
export function describePriorityTests(
  test: ConformanceTest,
  foreignCandidates: 'supported' | 'none',
): void {
  describe('preferred leaders (priority)', () => {
    test('a candidate of higher priority takes over within preemptAfterMs + one handover; those between step back with no term; the leader’s term ends `preempted`', async (t) => {
      const [a, b, c, d, o] = (await t.connectMany(5)) as [
        Arbitrator,
        Arbitrator,
        Arbitrator,
        Arbitrator,
        Arbitrator,
      ];
      const name = t.name('prio');
      const preemptAfterMs = stability(t);
      const observer = t.observe(o.observe(name));
      const el = a.election(name, { value: 'l' });
      const w1 = b.election(name, { value: 'w1' });
      // Of priority above the leader's, but never stable during the test: only ever asked.
      const w2 = c.election(name, { value: 'w2', priority: 3, preemptAfterMs: 3_600_000 });
      const ep = d.election(name, { value: 'p', priority: 7, preemptAfterMs });
      const [rl, rw1, rw2, rp] = [t.record(el), t.record(w1), t.record(w2), t.record(ep)];
      const tl = await t.within(el.campaign(), 'campaign() of l');
      t.track(w1.campaign());
      t.track(w2.campaign());
      await t.queueOf(el, 3);

      const ended = t.next(el, 'ended', t.timing.scale(preemptAfterMs) + t.timing.handoverMs);
      const joinedAt = performance.now();
      const tp = await t.within(
        ep.campaign(),
        'the preferred candidate to lead (preemptAfterMs + one handover)',
        t.timing.scale(preemptAfterMs) + t.timing.handoverMs,
      );
      const tookMs = performance.now() - joinedAt;
      expect(
        tookMs,
        'the preferred candidate led before it was stable for preemptAfterMs',
      ).toBeGreaterThanOrEqual(preemptAfterMs);
      const [endedTerm, reason] = await ended.promise;
      expect(endedTerm).toBe(tl);
      expect(reason).toBe('preempted');
      expectEnded(tl, 'preempted');
      expect(await t.within(tl.ended, 'term.ended of l')).toBe('preempted');
      expect(tp.epoch > tl.epoch).toBe(true);
      expect(rw1.terms, 'w1 stepped back without a term').toHaveLength(0);
      expect(rw2.terms, 'w2 stepped back without a term').toHaveLength(0);
      expect(rl.terms).toEqual([tl]);
      expect(rp.terms).toEqual([tp]);

      // The preempted leader and those that stepped back queue again, behind the preferred one.
      const queue = await t.queueOf(ep, 4);
      expect(queue[0]).toMatchObject({ key: tp.key, value: 'p', priority: 7, epoch: tp.epoch });
      expect(
        queue
          .slice(1)
          .map((q) => q.value)
          .sort(),
      ).toEqual(['l', 'w1', 'w2']);
      expect(queue.find((q) => q.value === 'w2')?.priority).toBe(3);
      expect(queue.find((q) => q.value === 'l')?.priority).toBeUndefined();

      // One change per leader change, for observers and for leader-changed listeners alike.
      await t.until(() => observer.items.some((i) => i?.epoch === tp.epoch), 'the observer');
      await t.until(() => rw1.leaders.some((i) => i?.epoch === tp.epoch), 'leader-changed');
      for (const [what, seen] of [
        ['observe()', observer.items],
        ['leader-changed of w1', rw1.leaders],
        ['leader-changed of w2', rw2.leaders],
      ] as const) {
        expectOneChangePerLeader(seen, what);
        expect(
          seen.filter((i) => i !== undefined).map((i) => i.epoch),
          what,
        ).toEqual([tl.epoch, tp.epoch]);
      }
      // The preempted candidate's own listeners see the same single change.
      expectOneChangePerLeader(rl.leaders, 'leader-changed of l');
    });

    test('lower and equal priorities never take over; equal priorities keep queue order', async (t) => {
      const [a, b, c, d] = (await t.connectMany(4)) as [
        Arbitrator,
        Arbitrator,
        Arbitrator,
        Arbitrator,
      ];
      const name = t.name('prio');
      const preemptAfterMs = stability(t);
      const options = (value: string, priority: number) => ({ value, priority, preemptAfterMs });
      const el = a.election(name, { value: 'l' });
      const p1 = b.election(name, options('p1', 5));
      const p2 = c.election(name, options('p2', 5));
      const lo = d.election(name, options('lo', 2));
      const [rl, r1, r2, rlo] = [t.record(el), t.record(p1), t.record(p2), t.record(lo)];
      const tl = await t.within(el.campaign(), 'campaign() of l');
      const pp1 = t.track(p1.campaign());
      await t.queueOf(el, 2);
      const pp2 = t.track(p2.campaign());
      await t.queueOf(el, 3);
      const plo = t.track(lo.campaign());
      await t.queueOf(el, 4);

      // p1 takes over from l (priority 0); p2, equal to p1, and lo, lower, never do.
      const t1 = await t.within(
        pp1.promise,
        'p1 to lead',
        t.timing.scale(preemptAfterMs) + t.timing.handoverMs,
      );
      expectEnded(tl, 'preempted');
      await quiet(t, 2.5 * preemptAfterMs);
      expect(p1.term, 'p1 still leads').toBe(t1);
      expect(t1.isValid()).toBe(true);
      expect(r2.terms, 'p2 (equal priority) never led').toHaveLength(0);
      expect(rlo.terms, 'lo (lower priority) never led').toHaveLength(0);
      expect(rl.terms).toEqual([tl]);
      expect(pp2.settled).toBe(false);
      expect(plo.settled).toBe(false);
      const queue = await t.queueOf(el, 4);
      expect(queue.slice(0, 3).map((q) => q.value)).toEqual(['p1', 'p2', 'lo']);

      // The equal one is next in queue order.
      await t.within(p1.resign(), 'resign() of p1');
      const t2 = await t.within(pp2.promise, 'p2 to lead after p1 resigned');
      expect(t2.epoch > t1.epoch).toBe(true);
      await quiet(t, 1.5 * preemptAfterMs);
      expect(p2.term).toBe(t2);
      expect(rlo.terms).toHaveLength(0);
      expect(r1.terms).toEqual([t1]);
    });

    test('deferHandover keeps the preempted leader’s key, and no new leader, until released', async (t) => {
      const { el, ep, preemptAfterMs } = await leaderAndPreferred(t);
      const rp = t.record(ep);
      const tl = await t.within(el.campaign(), 'campaign() of l');
      const release = deferHandover(tl);
      const ended = t.next(el, 'ended', t.timing.scale(preemptAfterMs) + t.timing.handoverMs);
      const pp = t.track(ep.campaign());
      const [, reason] = await ended.promise;
      expect(reason).toBe('preempted');
      expectEnded(tl, 'preempted');
      // The term ended at once; its key stays while the hold lasts (well within its bound:
      // the term's remaining time at the preemption, at least two thirds of a TTL).
      await delay(t.timing.ttlMs / 4);
      expect(rp.terms, 'a new leader while the hold lasted').toHaveLength(0);
      expect((await t.within(ep.leader(), 'leader()'))?.key).toBe(tl.key);
      release();
      release(); // idempotent
      const tp = await t.within(pp.promise, 'the preferred candidate to lead after the release');
      expect(tp.epoch > tl.epoch).toBe(true);
    });

    test('a hold never released is bounded by the term’s deadline', async (t) => {
      const { el, ep, preemptAfterMs } = await leaderAndPreferred(t);
      const tl = await t.within(el.campaign(), 'campaign() of l');
      deferHandover(tl); // never released
      const tp = await t.within(
        ep.campaign(),
        'the preferred candidate to lead once the hold’s bound passed',
        t.timing.scale(preemptAfterMs) + t.timing.expiryMs,
      );
      expectEnded(tl, 'preempted');
      expect(tp.epoch > tl.epoch).toBe(true);
      // l queues again (on etcd and memory under the same key name): with a new epoch.
      const queue = await t.queueOf(ep, 2);
      expect(queue.map((q) => q.epoch)).not.toContain(tl.epoch);
    });

    test('the preempted leader’s session lost during the hold: the preferred one leads, the term stays ended `preempted`, the old leader rejoins behind', async (t) => {
      const { a, el, ep, preemptAfterMs } = await leaderAndPreferred(t);
      const rl = t.record(el);
      const tl = await t.within(el.campaign(), 'campaign() of l');
      const release = deferHandover(tl);
      const ended = t.next(el, 'ended', t.timing.scale(preemptAfterMs) + t.timing.handoverMs);
      const pp = t.track(ep.campaign());
      expect((await ended.promise)[1]).toBe('preempted');
      await t.expire(a);
      const tp = await t.within(pp.promise, 'p to lead once l’s session was dropped');
      expect(tp.epoch > tl.epoch).toBe(true);
      release();
      // l queues again with its new session, behind p; its ended term ended once.
      const queue = await t.queueOf(ep, 2, t.timing.expiryMs);
      expect(queue[0]?.epoch).toBe(tp.epoch);
      expect((queue[1]?.epoch ?? 0n) > tp.epoch).toBe(true);
      expect(await tl.ended).toBe('preempted');
      expect(rl.events.filter((e) => e.type === 'ended')).toHaveLength(1);
      expect(rl.terms).toEqual([tl]);
      expect(ep.term).toBe(tp);
    });

    test('resign() and close() during a hold release the key at once', async (t) => {
      const [a, b, c] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name('prio');
      const preemptAfterMs = stability(t);
      const bound = t.timing.scale(preemptAfterMs) + t.timing.handoverMs;
      const el = a.election(name, { value: 'l' });
      const ep = b.election(name, { value: 'p', priority: 1, preemptAfterMs });
      const eq = c.election(name, { value: 'q', priority: 2, preemptAfterMs });
      const tl = await t.within(el.campaign(), 'campaign() of l');
      deferHandover(tl); // never released: resign() must not wait for it
      const endedL = t.next(el, 'ended', bound);
      const pp = t.track(ep.campaign());
      expect((await endedL.promise)[1]).toBe('preempted');
      await t.within(el.resign(), 'resign() during the hold');
      const afterResign = await t.within(el.candidates(), 'candidates()');
      expect(afterResign.map((q) => q.key)).not.toContain(tl.key);
      const tp = await t.within(pp.promise, 'p to lead after l resigned');
      expect(tp.epoch > tl.epoch).toBe(true);

      deferHandover(tp);
      const endedP = t.next(ep, 'ended', bound);
      const pq = t.track(eq.campaign());
      expect((await endedP.promise)[1]).toBe('preempted');
      expectEnded(tp, 'preempted');
      await t.within(ep.close(), 'close() during the hold');
      const afterClose = await t.within(eq.candidates(), 'candidates()');
      expect(afterClose.map((q) => q.key)).not.toContain(tp.key);
      const tq = await t.within(pq.promise, 'q to lead after p closed');
      expectStrictlyIncreasing([tl.epoch, tp.epoch, tq.epoch], 'the epochs of l, p, q');
    });

    test('a leader that proclaims often is still preempted (a request is not taken for its own write)', async (t) => {
      const [a, b, o] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name('prio');
      const preemptAfterMs = stability(t);
      const el = a.election(name, { value: 'l' });
      const ep = b.election(name, { value: 'p', priority: 1, preemptAfterMs });
      const tl = await t.within(el.campaign(), 'campaign() of l');
      const observer = t.observe(o.observe(name));
      // A status value rewritten every few ms, as a leader reporting its progress might: a
      // proclaim is in flight much of the time. (Back to back, a proclaim is always in flight
      // and on ZooKeeper the request's compare-and-set almost never finds the key unchanged.)
      let proclaims = 0;
      const proclaiming = (async () => {
        while (tl.isValid()) {
          proclaims += 1;
          await el.proclaim(`l-${proclaims}`).catch(() => {});
          await delay(5);
        }
      })();
      t.onDispose(() => proclaiming);
      const tp = await t
        .within(
          ep.campaign(),
          'the preferred candidate to lead (preemptAfterMs + one handover)',
          t.timing.scale(preemptAfterMs) + t.timing.handoverMs,
        )
        .catch((error: unknown) => {
          throw new Error(`${describeError(error)}; the leader proclaimed ${proclaims} times`);
        });
      expectEnded(tl, 'preempted');
      expect(tp.epoch > tl.epoch).toBe(true);
      await t.within(proclaiming, 'the proclaim loop to stop');
      // A request writes back the bytes it read only if nothing was written since: it never
      // puts an older value back over a newer proclaim.
      await t.until(() => observer.items.some((i) => i?.epoch === tp.epoch), 'the observer');
      const seen = observer.items
        .filter((i) => i?.epoch === tl.epoch && i.value.startsWith('l-'))
        .map((i) => Number(i?.value.slice(2)));
      expect(seen.length, 'proclaimed values observed').toBeGreaterThan(0);
      expect(seen, 'the leader’s values went back').toEqual([...seen].sort((x, y) => x - y));
    });

    test('two preferred candidates joining together: the higher one leads; the lower one leads at most once, never after it', async (t) => {
      const [a, b, c] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name('prio');
      const preemptAfterMs = stability(t);
      const el = a.election(name, { value: 'l' });
      const e5 = b.election(name, { value: 'p5', priority: 5, preemptAfterMs });
      const e9 = c.election(name, { value: 'p9', priority: 9, preemptAfterMs });
      const [r5, r9] = [t.record(e5), t.record(e9)];
      const tl = await t.within(el.campaign(), 'campaign() of l');
      t.track(e5.campaign());
      const p9 = t.track(e9.campaign());
      // p5 becomes stable first (by the time its join took): it may lead for one handover
      // before p9 asks it to pass (memory: always; etcd and ZooKeeper: p9's request usually
      // overtakes it). Never more than that, and never p5 after p9.
      const t9 = await t.within(
        p9.promise,
        'p9 to lead (preemptAfterMs + two handovers)',
        t.timing.scale(preemptAfterMs) + 2 * t.timing.handoverMs,
      );
      expectEnded(tl, 'preempted');
      expect(r5.terms.length, 'terms of p5, queued between l and p9').toBeLessThanOrEqual(1);
      for (const t5 of r5.terms) {
        expectEnded(t5, 'preempted');
        expect(t5.epoch < t9.epoch).toBe(true);
      }
      await quiet(t, 1.5 * preemptAfterMs);
      expect(r9.terms).toEqual([t9]);
      expect(r5.terms.length).toBeLessThanOrEqual(1);
    });

    test('a bad priority or preemptAfterMs is refused at once with INVALID_ARGUMENT naming it', async (t) => {
      const a = await t.connect();
      const bad: Array<[string, Record<string, unknown>]> = [
        ['priority', { priority: -1 }],
        ['priority', { priority: 1.5 }],
        ['priority', { priority: '5' }],
        ['priority', { priority: Number.NaN }],
        ['priority', { priority: 1_000_000_001 }],
        ['preemptAfterMs', { priority: 1, preemptAfterMs: 0 }],
        ['preemptAfterMs', { priority: 1, preemptAfterMs: -5 }],
        ['preemptAfterMs', { priority: 1, preemptAfterMs: Number.POSITIVE_INFINITY }],
        ['preemptAfterMs', { priority: 1, preemptAfterMs: '10s' }],
      ];
      for (const [field, options] of bad) {
        const what = `election(${JSON.stringify(options)})`;
        assertTenureError(
          thrownBy(() => a.election(t.name('prio'), options), what),
          'INVALID_ARGUMENT',
          what,
          field,
        );
      }
      // The bounds themselves are accepted, and the arbitrator stays usable.
      const top = a.election(t.name('prio'), { priority: 1_000_000_000, preemptAfterMs: 1 });
      const zero = a.election(t.name('prio'), { priority: 0 });
      await t.within(top.close(), 'close()');
      await t.within(zero.close(), 'close()');
    });

    test('a burst of proclaims is not taken for a request: a candidate of higher priority that is not stable yet does not take over', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name('prio');
      const el = a.election(name, { value: 'l' });
      // Never stable during the test: it never asks; only a misread write could preempt l.
      const ep = b.election(name, { value: 'p', priority: 9, preemptAfterMs: 3_600_000 });
      const rp = t.record(ep);
      const tl = await t.within(el.campaign(), 'campaign() of l');
      t.track(ep.campaign());
      await t.queueOf(el, 2);
      for (let round = 0; round < 3; round += 1) {
        await t.within(
          Promise.all(Array.from({ length: 40 }, (_, i) => el.proclaim(`l-${round}-${i}`))),
          '40 proclaims at once',
        );
        await quiet(t, 200);
      }
      await quiet(t, stability(t));
      expect(tl.endReason, 'l’s term ended').toBeUndefined();
      expect(el.term).toBe(tl);
      expect(rp.terms).toHaveLength(0);
    });

    test('hysteresis: after each involuntary end of its term, the preferred candidate waits twice as long before it asks again', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name('prio');
      // Longer than the pacing of repeated requests (1 s, doubling): the waits measured here
      // are the stability periods, not that pacing.
      const preemptAfterMs = Math.max(stability(t), 1_000);
      const el = a.election(name, { value: 'l' });
      const ep = b.election(name, { value: 'p', priority: 1, preemptAfterMs });
      const rl = t.record(el);
      await t.within(el.campaign(), 'campaign() of l');
      let elected = t.next(ep, 'elected', t.timing.scale(preemptAfterMs) + t.timing.handoverMs);
      let from = performance.now();
      t.track(ep.campaign());
      for (const factor of [1, 2]) {
        const [term] = await elected.promise;
        const waited = performance.now() - from;
        expect(waited, `the wait before takeover ${factor}`).toBeGreaterThanOrEqual(
          factor * preemptAfterMs,
        );
        // The term ends involuntarily at once (its session dropped): the next wait doubles.
        // l leads in between (it was preempted, then first in the queue).
        const next = 2 * factor;
        // l back in the queue behind p first: were p's session to go before l had queued
        // again, p's new key would come first and p would lead at once, with no wait at all
        // (seen on ZooKeeper in a clean-clone run: 6.8 ms).
        await t.queueOf(el, 2);
        elected = t.next(ep, 'elected', t.timing.scale(next * preemptAfterMs) + t.timing.expiryMs);
        from = performance.now();
        await t.expire(b);
        // etcd: the revoked lease's key deletion may reach the candidate first (`revoked`).
        expect(await t.within(term.ended, 'the term to end')).toMatch(/^(session-lost|revoked)$/);
      }
      await elected.promise;
      expect(performance.now() - from).toBeGreaterThanOrEqual(4 * preemptAfterMs);
      expect(rl.terms.length, 'l led between the takeovers').toBeGreaterThanOrEqual(3);
    });

    test('repeated takeovers from the same candidate are not slowed down by the pacing of requests', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name('prio');
      const preemptAfterMs = stability(t) / 4;
      const el = a.election(name, { value: 'l' });
      const ep = b.election(name, { value: 'p', priority: 1, preemptAfterMs });
      await t.within(el.campaign(), 'campaign() of l');
      // Each round, p takes over from l, then resigns: l (preempted, queued again) leads, and
      // p, queued behind it, asks it again. Nothing failed: each takeover takes the stability
      // period and a handover.
      for (let round = 1; round <= 5; round += 1) {
        const tp = await t.within(
          ep.campaign(),
          `takeover ${round} (preemptAfterMs + one handover)`,
          t.timing.scale(preemptAfterMs) + t.timing.handoverMs,
        );
        await t.queueOf(ep, 2);
        await t.within(ep.resign(), 'resign() of p');
        await t.until(async () => {
          const leader = await b.leader(name);
          return leader !== undefined && leader.epoch > tp.epoch && leader.value === 'l';
        }, 'l to lead again');
      }
    });

    test('candidates() and leader() report each priority; a proclaim keeps it', async (t) => {
      const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
      const name = t.name('prio');
      const ea = a.election(name, { value: 'a', priority: 4, preemptAfterMs: 3_600_000 });
      const eb = b.election(name, { value: 'b', priority: 0 });
      const ta = await t.within(ea.campaign(), 'campaign() of a');
      t.track(eb.campaign());
      const [first, second] = await t.queueOf(eb, 2);
      expect(first).toMatchObject({ key: ta.key, value: 'a', priority: 4 });
      // Priority 0 is not stored: the value reads exactly as a plain one.
      expect(second).toEqual({ key: second?.key, value: 'b', epoch: second?.epoch });
      await t.within(ea.proclaim('a2'), 'proclaim()');
      const leader = await t.until(async () => {
        const now = await b.leader(name);
        return now?.value === 'a2' ? now : undefined;
      }, 'the proclaimed value');
      expect(leader.priority).toBe(4);
      expect(ea.term).toBe(ta);
    });

    test('a candidate suspended during its stability period does not preempt until stable again', async (t) => {
      const a = await t.connect();
      const severable = await t.connectSeverable();
      const name = t.name('prio');
      const preemptAfterMs = 2 * stability(t);
      const el = a.election(name, { value: 'l' });
      const ep = severable.arbitrator.election(name, { value: 'p', priority: 1, preemptAfterMs });
      const tl = await t.within(el.campaign(), 'campaign() of l');
      const pp = t.track(ep.campaign());
      await t.queueOf(el, 2);

      const suspended = t.next(ep, 'connection', t.timing.expiryMs);
      await severable.cut();
      expect((await suspended.promise)[0]).toMatch(/^(suspended|lost)$/);
      await severable.heal();
      const healedAt = performance.now();
      const tp = await t.within(
        pp.promise,
        'the preferred candidate to lead once stable again',
        t.timing.scale(preemptAfterMs) + t.timing.expiryMs,
      );
      expect(
        performance.now() - healedAt,
        'preempted before being stable for preemptAfterMs since the connection came back',
      ).toBeGreaterThanOrEqual(preemptAfterMs);
      expectEnded(tl, 'preempted');
      expect(tp.epoch > tl.epoch).toBe(true);
    });

    if (foreignCandidates === 'none') return;
    test('a foreign candidate ahead is never deleted nor changed; the preferred one waits behind it', async (t) => {
      const [a, b, o] = (await t.connectMany(3)) as [Arbitrator, Arbitrator, Arbitrator];
      const name = t.name('prio');
      const preemptAfterMs = stability(t);
      // Not valid UTF-8: a rewrite through a string would change these bytes.
      const bytes = Uint8Array.from([0xff, 0x00, 0x41, 0xfe, 0xc3]);
      const foreign = await t.addForeignCandidate(name, bytes);
      const observer = t.observe(o.observe(name));
      const ew = a.election(name, { value: 'w' });
      const ep = b.election(name, { value: 'p', priority: 9, preemptAfterMs });
      const [rw, rp] = [t.record(ew), t.record(ep)];
      const pw = t.track(ew.campaign());
      await t.queueOf(ew, 2);
      const pp = t.track(ep.campaign());
      await t.queueOf(ew, 3);

      // p asks w (tenure, priority 0) to let it pass, then keeps asking the foreign leader,
      // which ignores it: several requests at growing intervals fit in this wait.
      await quiet(t, 3 * preemptAfterMs + 4_000);
      expect(Buffer.from((await foreign.read()) ?? [])).toEqual(Buffer.from(bytes));
      const queue = await t.queueOf(ew, 3);
      expect(queue[0]?.key).toBe(foreign.key);
      expect(queue.slice(1).map((q) => q.value)).toEqual(['p', 'w']);
      expect(rw.terms).toHaveLength(0);
      expect(rp.terms).toHaveLength(0);
      expect(pp.settled || pw.settled).toBe(false);
      const leaders = observer.items.filter((i) => i !== undefined);
      expect(
        leaders.map((i) => i.key),
        'observe() saw the nudged leader once',
      ).toEqual([foreign.key]);
      expectOneChangePerLeader(rp.leaders, 'leader-changed of p');

      await foreign.remove();
      const tp = await t.within(pp.promise, 'p to lead once the foreign one left');
      expect(ep.term).toBe(tp);
      expect(rw.terms).toHaveLength(0);
    });
  });
}

/** The stability period the tests use: the TTL, at most 1 s (short tests). */
/**
 * Two arbitrators, and on one new election a candidate `l` of priority 0 on the first and a
 * candidate `p` of priority 1 on the second (stability period {@link stability}); neither has
 * campaigned yet.
 */
async function leaderAndPreferred(t: ConformanceContext): Promise<{
  a: Arbitrator;
  name: string;
  preemptAfterMs: number;
  el: Election;
  ep: Election;
}> {
  const [a, b] = (await t.connectMany(2)) as [Arbitrator, Arbitrator];
  const name = t.name('prio');
  const preemptAfterMs = stability(t);
  const el = a.election(name, { value: 'l' });
  const ep = b.election(name, { value: 'p', priority: 1, preemptAfterMs });
  return { a, name, preemptAfterMs, el, ep };
}

function stability(t: ConformanceContext): number {
  return Math.min(t.timing.ttlMs, 1_000);
}

/**
 * Lets `ms` pass (scaled by the timing factor): the time in which something must NOT happen.
 * A longer wait only makes such a test stricter.
 */
function quiet(t: ConformanceContext, ms: number): Promise<void> {
  return delay(t.timing.scale(ms));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Fails if a leader (same epoch and value) is reported twice in a row, or twice at all. */
function expectOneChangePerLeader(seen: ReadonlyArray<LeaderInfo | undefined>, what: string): void {
  const keys = seen.map((l) => (l === undefined ? 'none' : `${l.epoch}:${l.value}`));
  for (let i = 1; i < keys.length; i += 1) {
    if (keys[i] === keys[i - 1]) {
      throw new Error(`${what}: the same leader twice in a row (${keys.join(' → ')})`);
    }
  }
  const leaders = keys.filter((k) => k !== 'none');
  if (new Set(leaders).size !== leaders.length) {
    throw new Error(`${what}: a leader reported twice (${keys.join(' → ')})`);
  }
}
