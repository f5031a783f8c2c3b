import { EventEmitter } from 'node:events';
import type { Election } from '@tenure/core';
import { ManagedTerm } from '@tenure/core/internal';
import {
  assertHistory,
  checkHistory,
  HistoryViolationError,
  monotonicNow,
  parseRecord,
  serializeRecord,
  type TermRecord,
  trackTerms,
} from '@tenure/testkit';
import { describe, expect, it } from 'vitest';

const rec = (holder: string, epoch: bigint, start: number, end: number, election = 'e') =>
  ({ election, holder, epoch, start, end }) satisfies TermRecord;

describe('checkHistory', () => {
  it('passes a clean history, in any order', () => {
    const history = [rec('b', 7n, 20, 30), rec('a', 3n, 0, 10), rec('c', 9n, 35, 50)];
    expect(checkHistory(history)).toEqual([]);
    expect(() => assertHistory(history)).not.toThrow();
  });

  it('accepts touching intervals [a, b) [b, c)', () => {
    expect(checkHistory([rec('a', 1n, 0, 10), rec('b', 2n, 10, 20)])).toEqual([]);
  });

  it('reports an overlap', () => {
    const history = [rec('a', 1n, 0, 10), rec('b', 2n, 9.5, 20)];
    const violations = checkHistory(history);
    expect(violations.map((v) => v.kind)).toEqual(['overlap']);
    expect(violations[0]?.records.map((r) => r.holder)).toEqual(['a', 'b']);
    expect(() => assertHistory(history)).toThrow(HistoryViolationError);
  });

  it('reports an interval nested inside a longer one after a shorter one', () => {
    const history = [rec('a', 1n, 0, 100), rec('b', 2n, 10, 20), rec('c', 3n, 50, 60)];
    const kinds = checkHistory(history).map((v) => v.kind);
    expect(kinds).toEqual(['overlap', 'overlap']);
  });

  it('reports a smaller epoch starting later', () => {
    const violations = checkHistory([rec('a', 5n, 0, 10), rec('b', 4n, 10, 20)]);
    expect(violations.map((v) => v.kind)).toEqual(['epoch-order']);
  });

  it('reports a repeated epoch', () => {
    const violations = checkHistory([rec('a', 5n, 0, 10), rec('b', 5n, 10, 20)]);
    expect(violations.map((v) => v.kind)).toEqual(['duplicate-epoch']);
  });

  it('reports bad intervals and leaves them out of the other checks', () => {
    const violations = checkHistory([
      rec('a', 1n, 10, 5),
      rec('b', 2n, Number.NaN, 5),
      rec('c', 3n, 0, Number.POSITIVE_INFINITY),
      rec('d', 4n, 0, 10),
    ]);
    expect(violations.map((v) => [v.kind, v.records[0]?.holder])).toEqual([
      ['bad-interval', 'a'],
      ['bad-interval', 'b'],
      ['bad-interval', 'c'],
    ]);
  });

  it('ignores empty intervals for overlap and order', () => {
    // A term never seen valid: its start says nothing about when it was valid.
    expect(checkHistory([rec('a', 5n, 0, 10), rec('b', 9n, 5, 5), rec('c', 6n, 10, 20)])).toEqual(
      [],
    );
  });

  it('checks each election on its own', () => {
    expect(checkHistory([rec('a', 1n, 0, 10, 'x'), rec('b', 1n, 0, 10, 'y')])).toEqual([]);
    expect(
      checkHistory([rec('a', 1n, 0, 10, 'x'), rec('b', 2n, 5, 10, 'x')]).map((v) => v.election),
    ).toEqual(['x']);
  });

  it('lists every violation in the thrown error', () => {
    try {
      assertHistory([rec('a', 5n, 0, 10), rec('b', 4n, 5, 20)]);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(HistoryViolationError);
      const violations = (error as HistoryViolationError).violations;
      expect(violations.map((v) => v.kind).sort()).toEqual(['epoch-order', 'overlap']);
      expect((error as Error).message).toContain('[overlap]');
      expect((error as Error).message).toContain('[epoch-order]');
    }
  });
});

describe('serializeRecord / parseRecord', () => {
  it('round-trips a record through one JSON line, with bigint epochs beyond 2^53', () => {
    const record: TermRecord = {
      election: 'jobs/nightly',
      holder: 'pid-42',
      epoch: 2n ** 64n + 1n,
      start: 1234.5,
      end: 2345.25,
      reason: 'session-lost',
    };
    const line = serializeRecord(record);
    expect(line).not.toContain('\n');
    expect(JSON.parse(line).epoch).toBe('18446744073709551617');
    expect(parseRecord(line)).toEqual(record);
    const { reason: _reason, ...withoutReason } = record;
    expect(parseRecord(serializeRecord(withoutReason))).toEqual(withoutReason);
  });

  it('refuses malformed lines with InvalidArgumentError', () => {
    for (const line of [
      'not json',
      '42',
      '{"election":"e","holder":"h","epoch":"1","start":0}',
      '{"election":"e","holder":"h","epoch":1,"start":0,"end":1}',
      '{"election":"e","holder":"h","epoch":"-1","start":0,"end":1}',
      '{"election":"e","holder":"h","epoch":"1","start":0,"end":1,"reason":"bored"}',
    ]) {
      expect(() => parseRecord(line), line).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});

describe('monotonicNow', () => {
  it('is process.hrtime.bigint() in milliseconds and never goes back', () => {
    const before = Number(process.hrtime.bigint()) / 1e6;
    const a = monotonicNow();
    const b = monotonicNow();
    const after = Number(process.hrtime.bigint()) / 1e6;
    expect(b).toBeGreaterThanOrEqual(a);
    expect(a).toBeGreaterThanOrEqual(Math.floor(before) - 1);
    expect(b).toBeLessThanOrEqual(after + 1);
  });
});

/** A stand-in for an Election: trackTerms only uses `name`, `term`, `on` and `off`. */
class FakeElection extends EventEmitter {
  readonly name = 'fake';
  term: ManagedTerm | undefined;
}

function fakeTerm(epoch: bigint, remaining: { ms: number }): ManagedTerm {
  return new ManagedTerm(
    { election: 'fake', epoch, key: `k${epoch}` },
    {
      isLive: () => remaining.ms > 0,
      remainingMs: () => remaining.ms,
      put: async () => ({ version: 1 }),
      delete: async () => {},
    },
  );
}

describe('trackTerms', () => {
  it('records each term from `elected` to the moment it ended', () => {
    const election = new FakeElection();
    const records: TermRecord[] = [];
    const stop = trackTerms(election as unknown as Election, 'me', (r) => records.push(r));
    const remaining = { ms: 60_000 };

    const first = fakeTerm(1n, remaining);
    const t0 = monotonicNow();
    election.emit('elected', first);
    first.end('resigned');
    const t1 = monotonicNow();
    election.emit('ended', first, 'resigned');
    const second = fakeTerm(2n, remaining);
    election.emit('elected', second);
    second.end('session-lost');

    expect(records).toHaveLength(2);
    const [r1, r2] = records as [TermRecord, TermRecord];
    expect(r1).toMatchObject({ election: 'fake', holder: 'me', epoch: 1n, reason: 'resigned' });
    expect(r1.start).toBeGreaterThanOrEqual(t0);
    expect(r1.end).toBeGreaterThanOrEqual(r1.start);
    expect(r1.end).toBeLessThanOrEqual(t1);
    expect(r2).toMatchObject({ epoch: 2n, reason: 'session-lost' });
    expect(r2.start).toBeGreaterThanOrEqual(r1.end);
    expect(checkHistory(records)).toEqual([]);
    stop();
    expect(election.listenerCount('elected') + election.listenerCount('ended')).toBe(0);
  });

  it('ends a record no later than the deadline the term reported', () => {
    const election = new FakeElection();
    const records: TermRecord[] = [];
    const stop = trackTerms(election as unknown as Election, 'me', (r) => records.push(r), {
      sampleMs: 1_000,
    });
    const remaining = { ms: 5 };
    const term = fakeTerm(3n, remaining);
    const before = monotonicNow();
    election.emit('elected', term);
    // The deadline lapses; the term is only seen to end much later.
    remaining.ms = 0;
    const later = monotonicNow() + 1_000;
    while (monotonicNow() < before + 20) {
      // Spin a little so that "now" is clearly past the sampled deadline.
    }
    term.end('expired');
    const [record] = records;
    expect(record).toBeDefined();
    expect(record?.end).toBeLessThanOrEqual(monotonicNow());
    expect((record?.end ?? 0) - (record?.start ?? 0)).toBeLessThanOrEqual(5 + 1);
    expect(record?.end).toBeLessThan(later);
    stop();
  });

  it('records a term that was never valid as an empty interval', () => {
    const election = new FakeElection();
    const records: TermRecord[] = [];
    const stop = trackTerms(election as unknown as Election, 'me', (r) => records.push(r));
    const term = fakeTerm(4n, { ms: 0 });
    election.emit('elected', term);
    term.end('expired');
    expect(records).toHaveLength(1);
    expect(records[0]?.end).toBe(records[0]?.start);
    stop();
  });

  it('picks up the current term and records it as ending when stopped', () => {
    const election = new FakeElection();
    const term = fakeTerm(5n, { ms: 60_000 });
    election.term = term;
    const records: TermRecord[] = [];
    const stop = trackTerms(election as unknown as Election, 'me', (r) => records.push(r));
    expect(records).toEqual([]);
    stop();
    stop();
    expect(records).toHaveLength(1);
    expect(records[0]?.epoch).toBe(5n);
    expect(records[0]?.reason).toBeUndefined();
    // Ending after stop() records nothing more and leaves no timer behind.
    term.end('closed');
    expect(records).toHaveLength(1);
  });
});
