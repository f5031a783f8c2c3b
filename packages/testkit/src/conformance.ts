/**
 * The shared conformance suite: one function every adapter's tests call with a harness for its
 * backend, checking guarantees G1–G8 (the table in docs/concepts.md, "The guarantees") through
 * the public interfaces only.
 *
 * @packageDocumentation
 */

import type { Arbitrator, Election, LeaderInfo, Term } from '@tenure/core';
import {
  MAX_KEY_BYTES,
  MAX_NAME_BYTES,
  MAX_STORED_VALUE_BYTES,
  MAX_VALUE_BYTES,
} from '@tenure/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  argumentErrorOf,
  assertTenureError,
  ConformanceContext,
  describeError,
  leaderView,
  rejectionOf,
  rejectionOfCall,
  thrownBy,
} from './conformance-context.js';
import { describeLeader, leaderSequenceViolations } from './leader-sequence.js';
import { assertHistory, type TermRecord } from './term-history.js';
import { Timing } from './timing.js';

/** What the conformance suite needs from a backend. */
export interface ConformanceHarness {
  /** TTL (ms) the arbitrators are opened with; tests scale their waits from it. */
  readonly ttlMs: number;
  /** Opens a new arbitrator (client + its own session) on the shared backend. */
  connect(): Promise<Arbitrator>;
  /**
   * Makes the backend drop `arbitrator`'s current session, as a lease/session expiry would
   * (e.g. memory: `arbitrator.expire()`; etcd: revoke the lease from another client). Resolves
   * once dropped on the backend side.
   */
  expireSession(arbitrator: Arbitrator): Promise<void>;
  /** Releases the backend (called once in `afterAll`). */
  close(): Promise<void>;
}

/** Options of {@link describeElectionConformance}. */
export interface ConformanceOptions {
  /**
   * Whether the backend accepts `/` between non-empty segments of an election name: memory
   * does (`'allowed'`, the default), etcd and ZooKeeper do not (`'forbidden'`). Empty segments
   * (`a//b`) are refused everywhere.
   */
  slashInNames?: 'allowed' | 'forbidden';
  /** The vitest timeout of each test, ms. Default 60 000; waits inside are bounded tighter. */
  testTimeoutMs?: number;
}

/**
 * Registers the conformance suite as a vitest `describe(name, …)` block. `makeHarness` runs
 * once (in `beforeAll`); one backend serves every test, each test uses fresh election names and
 * closes every arbitrator it opened. Waits are bounded by {@link Timing} from the harness's TTL;
 * no test asserts on a duration.
 */
export function describeElectionConformance(
  name: string,
  makeHarness: () => Promise<ConformanceHarness>,
  options: ConformanceOptions = {},
): void {
  const slashInNames = options.slashInNames ?? 'allowed';
  const testTimeoutMs = options.testTimeoutMs ?? 60_000;

  describe(name, () => {
    let harness: ConformanceHarness | undefined;
    let timing: Timing | undefined;

    beforeAll(async () => {
      harness = await makeHarness();
      timing = new Timing(harness.ttlMs);
    });

    afterAll(async () => {
      await harness?.close();
    });

    /** A test with a fresh {@link ConformanceContext}, disposed however the test ends. */
    const test = (title: string, body: (t: ConformanceContext) => Promise<void>) => {
      it(
        title,
        async () => {
          if (harness === undefined || timing === undefined) {
            throw new Error('The conformance harness was not created (see beforeAll)');
          }
          const t = new ConformanceContext(harness, timing);
          let failure: { error: unknown } | undefined;
          try {
            await body(t);
          } catch (error) {
            failure = { error };
          }
          const cleanup = await t.dispose();
          if (failure !== undefined) throw failure.error;
          if (cleanup.length > 0) {
            throw new Error(
              `Releasing the test's arbitrators failed: ${cleanup.map(describeError).join('; ')}`,
            );
          }
        },
        testTimeoutMs,
      );
    };

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
              overlaps.push(
                `${self.value} elected (epoch ${term.epoch}) while ${other.value} valid`,
              );
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
            throw new Error(
              `a leader that never held a term was reported: ${describeLeader(seen)}`,
            );
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
        expect(leaderView(own.items[0])).toEqual(
          leaderView(await t.within(ea.leader(), 'leader()')),
        );

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
        expect(leaderView((await t.within(ea.candidates(), 'candidates()'))[0])).toEqual(
          proclaimed,
        );
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
          await argumentErrorOf(
            () => ea.proclaim(42 as unknown as string),
            'proclaim() of a number',
          ),
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
          await rejectionOf(
            ta.put('cfg', 'stale', { ifVersion: 1 }),
            'put() with a stale ifVersion',
          ),
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
        expect((await t.within(ea.candidates(), 'candidates()')).map((q) => q.key)).toEqual([
          ta.key,
        ]);

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
          await rejectionOf(
            eb.post('inbox', 'x', { ifVersion: 1 }),
            'post() with a stale ifVersion',
          ),
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
        expect((await t.within(ea.candidates(), 'candidates()')).map((q) => q.value)).toEqual([
          'a',
        ]);
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
        expect((await t.within(ea.candidates(), 'candidates()')).map((q) => q.key)).toEqual([
          ta.key,
        ]);

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
        expect((await t.within(ea.candidates(), 'candidates()')).map((q) => q.key)).toEqual([
          ta.key,
        ]);
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
  });
}

/** Asserts the state of a term that ended for `reason`. */
function expectEnded(term: Term, reason: Term['endReason']): void {
  expect(term.endReason).toBe(reason);
  expect(term.isValid()).toBe(false);
  expect(term.remainingMs()).toBeLessThanOrEqual(0);
  expect(term.signal.aborted).toBe(true);
  const cause: unknown = term.signal.reason;
  assertTenureError(cause, 'LEADERSHIP_LOST', `term.signal.reason after ${reason}`);
  expect((cause as { reason?: unknown }).reason).toBe(reason);
  expect((cause as { epoch?: unknown }).epoch).toBe(term.epoch);
  assertTenureError(
    thrownBy(() => term.assertValid(), `assertValid() after ${reason}`),
    'LEADERSHIP_LOST',
    `assertValid() after ${reason}`,
  );
}

function expectStrictlyIncreasing(epochs: readonly bigint[], what: string): void {
  for (let i = 1; i < epochs.length; i += 1) {
    const previous = epochs[i - 1] as bigint;
    const current = epochs[i] as bigint;
    if (!(current > previous)) {
      throw new Error(`${what}: epoch ${current} at ${i} does not exceed ${previous}`);
    }
  }
}

function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameLeader(a: LeaderInfo | undefined, b: LeaderInfo | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.value === b.value && a.epoch === b.epoch && a.key === b.key;
}

function storedView(
  stored: { value: string; version: number } | undefined,
): { value: string; version: number } | undefined {
  return stored === undefined ? undefined : { value: stored.value, version: stored.version };
}
