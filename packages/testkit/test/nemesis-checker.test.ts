import { describe, expect, it } from 'vitest';
import {
  checkNemesisHistory,
  type NemesisCandidateEvent,
  type NemesisCandidateHistory,
  type NemesisHistory,
  SeededRandom,
  type WitnessEntry,
} from '../src/nemesis/index.js';

/** A term held from `from` to `to`, sampled every 5 ms, then ended. */
function term(epoch: number, from: number, to: number, endedAt = to + 1): NemesisCandidateEvent[] {
  const events: NemesisCandidateEvent[] = [{ type: 'elected', t: from, epoch: String(epoch) }];
  for (let t = from + 5; t <= to; t += 5) {
    events.push({ type: 'sample', t, epoch: String(epoch), valid: true });
  }
  events.push({ type: 'sample', t: endedAt, epoch: String(epoch), valid: false });
  events.push({ type: 'ended', t: endedAt, epoch: String(epoch), reason: 'expired' });
  return events;
}

function candidate(
  process: string,
  events: NemesisCandidateEvent[],
  alive = true,
): NemesisCandidateHistory {
  return { process, holder: process.split('#')[0]!, events, alive };
}

function history(overrides: Partial<NemesisHistory>): NemesisHistory {
  return {
    candidates: [],
    witness: [],
    faults: [],
    leaderBoundMs: 1_000,
    end: 10_000,
    ...overrides,
  };
}

function kinds(h: NemesisHistory): string[] {
  return checkNemesisHistory(h).violations.map((v) => v.kind);
}

describe('checkNemesisHistory', () => {
  it('passes a clean handover with monotonic epochs and in-order witness writes', () => {
    const witness: WitnessEntry[] = [
      { t: 10, process: 'a#1', epoch: '5', seq: 1, accepted: true },
      { t: 600, process: 'b#1', epoch: '9', seq: 1, accepted: true },
      { t: 601, process: 'a#1', epoch: '5', seq: 2, accepted: false },
    ];
    const h = history({
      candidates: [
        candidate('a#1', [
          ...term(5, 0, 500),
          { type: 'write', t: 9, epoch: '5', seq: 1, validBefore: true, outcome: 'accepted' },
        ]),
        candidate('b#1', term(9, 550, 2_000)),
      ],
      witness,
      faults: [{ kind: 'kill-leader', at: 500, healedAt: 500 }],
      end: 2_000,
    });
    const check = checkNemesisHistory(h);
    expect(check.violations).toEqual([]);
    expect(check.writes).toEqual({ accepted: 2, refused: 1 });
    expect(check.faults[0]?.toNewLeaderMs).toBe(50);
    expect(check.faults[0]?.healToLeaderMs).toBe(0);
  });

  it('fails two candidates valid at the same instant, even for one sample', () => {
    const h = history({
      candidates: [
        candidate('a#1', term(5, 0, 500)),
        candidate('b#1', [
          ...term(9, 550, 2_000),
          // a stale process waking from SIGSTOP still valid, once
        ]),
        candidate('c#1', [{ type: 'sample', t: 700, epoch: '4', valid: true }]),
      ],
    });
    const check = checkNemesisHistory(h);
    expect(check.violations.map((v) => v.kind)).toEqual(['overlap']);
    expect(check.violations[0]?.message).toContain('c#1 epoch 4');
  });

  it('counts a term valid over the whole span between its valid readings (a SIGSTOP woken valid)', () => {
    // a was stopped from 100 to 3 000 and its first reading on waking said valid: it counts
    // as valid over the stop, during which b led.
    const h = history({
      candidates: [
        candidate('a#1', [
          { type: 'elected', t: 0, epoch: '5' },
          { type: 'sample', t: 100, epoch: '5', valid: true },
          { type: 'sample', t: 3_000, epoch: '5', valid: true },
          { type: 'ended', t: 3_001, epoch: '5', reason: 'expired' },
        ]),
        candidate('b#1', term(9, 2_000, 2_500)),
      ],
    });
    expect(kinds(h)).toEqual(['overlap']);
  });

  it('passes a stopped leader that wakes invalid', () => {
    const h = history({
      candidates: [
        candidate('a#1', [
          { type: 'elected', t: 0, epoch: '5' },
          { type: 'sample', t: 100, epoch: '5', valid: true },
          { type: 'sample', t: 3_000, epoch: '5', valid: false },
          { type: 'ended', t: 3_001, epoch: '5', reason: 'expired' },
        ]),
        candidate('b#1', term(9, 2_000, 2_500)),
      ],
    });
    expect(kinds(h)).toEqual([]);
  });

  it('counts valid witness-write readings as valid evidence', () => {
    const h = history({
      candidates: [
        candidate('a#1', [
          { type: 'elected', t: 0, epoch: '5' },
          {
            type: 'write',
            t: 10,
            epoch: '5',
            seq: 1,
            validBefore: true,
            tAfter: 800,
            validAfter: true,
            outcome: 'accepted',
          },
        ]),
        candidate('b#1', term(9, 700, 900)),
      ],
    });
    expect(kinds(h)).toEqual(['overlap']);
  });

  it('fails two terms of one process valid at once, and one epoch elected twice', () => {
    const h = history({
      candidates: [candidate('a#1', [...term(5, 0, 500), ...term(5, 400, 600)])],
    });
    // one process, one epoch: the spans merge; the second elected repeats epoch 5
    expect(kinds(h)).toContain('epoch-order');
    const two = history({
      candidates: [candidate('a#1', [...term(5, 0, 500), ...term(6, 400, 600)])],
    });
    expect(kinds(two)).toEqual(['overlap']);
  });

  it('allows the one delivery after a deletion of the leader key, and only that', () => {
    // a's key deleted at 500: b elected on the deletion at 505, a learns it at 512.
    const a = candidate('a#1', [
      { type: 'elected', t: 0, epoch: '5' },
      { type: 'sample', t: 100, epoch: '5', valid: true },
      { type: 'sample', t: 510, epoch: '5', valid: true },
      { type: 'ended', t: 512, epoch: '5', reason: 'revoked' },
    ]);
    const b = candidate('b#1', term(9, 505, 900));
    const deleted = {
      kind: 'delete-leader-key',
      at: 500,
      healedAt: 500,
      process: 'a#1',
      epoch: '5',
    };
    const allowed = history({ candidates: [a, b], faults: [deleted], deleteWindowMs: 250 });
    const check = checkNemesisHistory(allowed);
    expect(check.violations).toEqual([]);
    expect(check.deleteWindows).toEqual([
      { deleted: 'a#1 epoch 5', successor: 'b#1 epoch 9', overlapMs: 5, at: 505 },
    ]);
    // no allowance, no delete of that term, a window too long, or another end reason: overlap
    expect(kinds({ ...allowed, deleteWindowMs: 0 })).toEqual(['overlap']);
    expect(kinds({ ...allowed, faults: [{ ...deleted, epoch: '4' }] })).toEqual(['overlap']);
    expect(kinds({ ...allowed, deleteWindowMs: 5 })).toEqual(['overlap']);
    const expired = candidate('a#1', [
      ...a.events.slice(0, 3),
      { type: 'ended', t: 512, epoch: '5', reason: 'expired' },
    ]);
    expect(kinds({ ...allowed, candidates: [expired, b] })).toEqual(['overlap']);
  });

  it('fails an epoch not larger than every earlier one', () => {
    const h = history({
      candidates: [
        candidate('a#1', term(9, 0, 500)),
        candidate('b#1', term(7, 600, 900)),
        candidate('c#1', term(12, 1_000, 1_100)),
      ],
    });
    const check = checkNemesisHistory(h);
    expect(check.violations.map((v) => v.kind)).toEqual(['epoch-order']);
    expect(check.violations[0]?.message).toContain('epoch 7');
  });

  it('fails a valid reading after the term ended', () => {
    const h = history({
      candidates: [
        candidate('a#1', [
          { type: 'elected', t: 0, epoch: '5' },
          { type: 'ended', t: 100, epoch: '5', reason: 'revoked' },
          { type: 'sample', t: 120, epoch: '5', valid: true },
        ]),
      ],
    });
    expect(kinds(h)).toEqual(['valid-after-end']);
  });

  it('fails a witness write accepted after a higher epoch', () => {
    const h = history({
      candidates: [candidate('a#1', term(5, 0, 500)), candidate('b#1', term(9, 550, 900))],
      witness: [
        { t: 600, process: 'b#1', epoch: '9', seq: 1, accepted: true },
        { t: 610, process: 'a#1', epoch: '5', seq: 7, accepted: true },
        { t: 620, process: 'b#1', epoch: '9', seq: 2, accepted: true },
      ],
    });
    const check = checkNemesisHistory(h);
    expect(check.violations.map((v) => v.kind)).toEqual(['stale-write']);
    expect(check.violations[0]?.message).toContain('a#1 write #7');
  });

  it('fails an accepted write sent after its term ended, or sent while not valid', () => {
    const h = history({
      candidates: [
        candidate('a#1', [
          { type: 'elected', t: 0, epoch: '5' },
          { type: 'ended', t: 100, epoch: '5', reason: 'revoked' },
          { type: 'write', t: 150, epoch: '5', seq: 1, validBefore: false, outcome: 'accepted' },
        ]),
      ],
      witness: [{ t: 151, process: 'a#1', epoch: '5', seq: 1, accepted: true }],
    });
    expect(kinds(h)).toEqual(['write-after-end']);
  });

  it('fails no leader within the bound after a heal, and passes one inside it', () => {
    const late = history({
      candidates: [candidate('a#1', term(5, 0, 500)), candidate('b#1', term(9, 2_000, 2_500))],
      faults: [{ kind: 'pause-leader', at: 400, healedAt: 600 }],
      leaderBoundMs: 1_000,
      end: 3_000,
    });
    const check = checkNemesisHistory(late);
    expect(check.violations.map((v) => v.kind)).toEqual(['no-leader']);
    expect(check.faults[0]?.healToLeaderMs).toBe(1_400);
    const inTime = history({ ...late, leaderBoundMs: 2_000 });
    expect(kinds(inTime)).toEqual([]);
  });

  it('fails a live candidate that was not elected during the closing rotation', () => {
    const h = history({
      candidates: [
        candidate('a#1', [...term(5, 0, 500), ...term(11, 1_000, 1_100)]),
        candidate('b#1', term(9, 550, 900)),
        candidate('c#1', [], false), // killed: not expected to lead
      ],
      rotationFrom: 950,
      end: 2_000,
    });
    const check = checkNemesisHistory(h);
    expect(check.violations.map((v) => v.kind)).toEqual(['stuck']);
    expect(check.violations[0]?.message).toContain('b#1');
  });
});

describe('SeededRandom', () => {
  it('replays the same sequence for the same seed and another for another seed', () => {
    const draw = (seed: number) => {
      const r = new SeededRandom(seed);
      return Array.from({ length: 8 }, () => r.int(0, 1_000));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    const r = new SeededRandom(7);
    for (let i = 0; i < 1_000; i += 1) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});
