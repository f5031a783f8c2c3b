// The checks of the cron failover tests must be able to fail: each is shown a log with the fault
// it looks for.
import { describe, expect, it } from 'vitest';
import {
  busyIntervals,
  epochRegressions,
  gapSlots,
  type MissedReport,
  missedButRun,
  missedWithoutLatestRun,
  type RunLine,
  repeatedCatchUps,
  repeatedSlots,
  runsBySlot,
} from './run-log.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');

function start(second: number, holder: string, epoch: number, trigger = 'schedule'): RunLine {
  return {
    phase: 'start',
    slot: new Date(T0 + second * 1_000).toISOString(),
    holder,
    pid: holder.charCodeAt(0),
    epoch: String(epoch),
    attempt: 1,
    trigger,
    start: T0 + second * 1_000 + 5,
  };
}

const none = { missed: [], claimed: new Map<number, string>(), skipped: new Map<number, string>() };

describe('run log checks', () => {
  it('finds a slot run twice, and only that one', () => {
    const runs = runsBySlot([start(0, 'a', 10), start(1, 'a', 10), start(1, 'b', 20)]);
    const repeated = repeatedSlots(runs);
    expect(repeated).toHaveLength(1);
    expect(repeated[0]!.map((r) => r.holder)).toEqual(['a', 'b']);
    expect(repeatedSlots(runsBySlot([start(0, 'a', 10), start(1, 'b', 20)]))).toEqual([]);
  });

  it('finds an epoch that goes down in slot order', () => {
    const runs = runsBySlot([start(0, 'a', 10), start(1, 'b', 20), start(2, 'a', 10)]);
    expect(epochRegressions(runs).map(([x, y]) => [x.epoch, y.epoch])).toEqual([['20', '10']]);
    expect(epochRegressions(runsBySlot([start(0, 'a', 10), start(1, 'a', 10)]))).toEqual([]);
  });

  it('accounts for gap slots by missed reports of a leader between the two runs, claims and skips', () => {
    const runs = runsBySlot([start(0, 'a', 10), start(5, 'b', 20, 'catch-up'), start(6, 'b', 20)]);
    const missedByB: MissedReport = { holder: 'b', epoch: 20n, slots: [T0 + 2_000, T0 + 3_000] };
    const gaps = gapSlots(runs, 1_000, {
      missed: [missedByB, { holder: 'c', epoch: 30n, slots: [T0 + 4_000] }],
      claimed: new Map([[T0 + 1_000, 'record']]),
      skipped: new Map(),
    });
    expect(gaps.map((g) => [(g.slotMs - T0) / 1_000, g.cause])).toEqual([
      [1, 'claimed'],
      [2, 'missed'],
      [3, 'missed'],
      // Reported by a leader of a later term (30 > 20): not an account of this gap.
      [4, undefined],
    ]);
    expect(gapSlots(runs, 1_000, none).every((g) => g.cause === undefined)).toBe(true);
  });

  it("accounts for a slot that fell during the same leader's unfinished run (overlap skip)", () => {
    const lines = [start(0, 'a', 10), start(3, 'b', 20, 'catch-up')];
    const runs = runsBySlot(lines);
    // a's run of slot 0 never returned (killed at 1.2 s): slot 1 fell while it was going; a
    // skipped it by the overlap policy and died before saying so. Slot 2 fell after the kill.
    const killedAt = T0 + 1_200;
    const gaps = gapSlots(runs, 1_000, {
      ...none,
      missed: [{ holder: 'b', epoch: 20n, slots: [T0 + 2_000] }],
      busy: busyIntervals(lines).map((b) => (b.epoch === '10' ? { ...b, end: killedAt } : b)),
    });
    expect(gaps.map((g) => [(g.slotMs - T0) / 1_000, g.cause])).toEqual([
      [1, 'overlap'],
      [2, 'missed'],
    ]);
    // A run that returned before the slot accounts for nothing.
    const done = gapSlots(runs, 1_000, {
      ...none,
      busy: busyIntervals(lines).map((b) => ({ ...b, end: b.start + 300 })),
    });
    expect(done.map((g) => g.cause)).toEqual([undefined, undefined]);
  });

  it('finds a missed slot that ran, and two catch-up runs in one term', () => {
    const runs = runsBySlot([
      start(0, 'a', 10),
      start(3, 'b', 20, 'catch-up'),
      start(4, 'b', 20, 'catch-up'),
    ]);
    expect(
      missedButRun(runs, [{ holder: 'b', epoch: 20n, slots: [T0 + 3_000] }]).map((r) => r.slot),
    ).toEqual([new Date(T0 + 3_000).toISOString()]);
    expect(repeatedCatchUps(runs)).toHaveLength(1);
  });

  it("finds a term that reported slots missed but did not run the latest one ('skip', not 'latest')", () => {
    const report: MissedReport = { holder: 'b', epoch: 20n, slots: [T0 + 1_000, T0 + 2_000] };
    expect(missedWithoutLatestRun([report], [{ slotMs: T0 + 3_000, epoch: '20' }], 1_000)).toEqual(
      [],
    );
    // The right slot by another term, or a later slot by this one, is not the policy's run.
    expect(
      missedWithoutLatestRun(
        [report],
        [
          { slotMs: T0 + 3_000, epoch: '30' },
          { slotMs: T0 + 4_000, epoch: '20' },
        ],
        1_000,
      ),
    ).toEqual([report]);
  });
});
