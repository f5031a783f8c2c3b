import { computeAssignment, type MemberWeight } from '@tenure/pool';
import { describe, expect, it } from 'vitest';

// The leader's assignment, checked over many random membership histories: balance within one
// item of the weighted share, the stated move bounds, determinism.

/** mulberry32: a seeded PRNG, so a failure names a case that can be repeated. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const items = (n: number) => Array.from({ length: n }, (_, i) => `i${String(i).padStart(4, '0')}`);
const members = (n: number, weight = () => 1): MemberWeight[] =>
  Array.from({ length: n }, (_, i) => ({ id: `m${i}`, weight: weight() }));

function counts(owners: ReadonlyMap<string, string>): Map<string, number> {
  const c = new Map<string, number>();
  for (const owner of owners.values()) c.set(owner, (c.get(owner) ?? 0) + 1);
  return c;
}

/** Items whose live previous owner differs from the new one. */
function movedBetween(
  before: ReadonlyMap<string, string>,
  after: ReadonlyMap<string, string>,
  live: ReadonlySet<string>,
): number {
  let moved = 0;
  for (const [item, owner] of before) {
    if (live.has(owner) && after.get(item) !== owner) moved += 1;
  }
  return moved;
}

function expectBalanced(
  list: readonly string[],
  ms: readonly MemberWeight[],
  owners: ReadonlyMap<string, string>,
): void {
  const total = ms.reduce((s, m) => s + m.weight, 0);
  const c = counts(owners);
  expect(owners.size).toBe(list.length);
  for (const m of ms) {
    const share = (list.length * m.weight) / total;
    expect(Math.abs((c.get(m.id) ?? 0) - share)).toBeLessThan(1);
  }
}

describe('computeAssignment', () => {
  it('gives every item to one member, within one item of each weighted share', () => {
    const random = seeded(1);
    for (let round = 0; round < 300; round += 1) {
      const list = items(Math.floor(random() * 200));
      const ms = members(1 + Math.floor(random() * 12), () => 1 + Math.floor(random() * 5));
      const plan = computeAssignment(list, ms);
      expectBalanced(list, ms, plan.owners);
      expect(plan.moved).toBe(0);
      expect(plan.placed).toBe(list.length);
    }
  });

  it('is deterministic whatever the order of its inputs', () => {
    const list = items(64);
    const ms = members(5, () => 2);
    const previous = computeAssignment(list, ms.slice(0, 4)).owners;
    const a = computeAssignment(list, ms, previous);
    const b = computeAssignment([...list].reverse(), [...ms].reverse(), previous);
    expect([...b.owners].sort()).toEqual([...a.owners].sort());
  });

  it('equal weights: a join moves at most ⌈items/(N+1)⌉ items, a leave moves none but the leaver’s', () => {
    const random = seeded(2);
    for (let round = 0; round < 500; round += 1) {
      const list = items(1 + Math.floor(random() * 300));
      const n = 1 + Math.floor(random() * 20);
      const before = computeAssignment(list, members(n)).owners;
      // join
      const joined = members(n + 1);
      const afterJoin = computeAssignment(list, joined, before);
      expectBalanced(list, joined, afterJoin.owners);
      const live = new Set(joined.map((m) => m.id));
      expect(movedBetween(before, afterJoin.owners, live)).toBe(afterJoin.moved);
      expect(afterJoin.moved).toBeLessThanOrEqual(Math.ceil(list.length / (n + 1)));
      expect(afterJoin.placed).toBe(0);
      if (n === 1) continue;
      // leave of a random member
      const leaver = `m${Math.floor(random() * n)}`;
      const left = members(n).filter((m) => m.id !== leaver);
      const afterLeave = computeAssignment(list, left, before);
      expectBalanced(list, left, afterLeave.owners);
      expect(afterLeave.moved).toBe(0);
      expect(afterLeave.placed).toBe([...before.values()].filter((o) => o === leaver).length);
    }
  });

  it('weighted: moves are exactly the members’ excess over their new quotas (the minimum)', () => {
    const random = seeded(3);
    for (let round = 0; round < 300; round += 1) {
      const list = items(Math.floor(random() * 300));
      const ms = members(2 + Math.floor(random() * 10), () => 1 + Math.floor(random() * 4));
      const before = computeAssignment(list, ms).owners;
      // A random change: a member leaves, one joins, a weight changes.
      const next = ms.filter(() => random() > 0.2);
      if (next.length === 0) continue;
      next.push({ id: 'new', weight: 1 + Math.floor(random() * 4) });
      const plan = computeAssignment(list, next, before);
      expectBalanced(list, next, plan.owners);
      const live = new Set(next.map((m) => m.id));
      expect(movedBetween(before, plan.owners, live)).toBe(plan.moved);
      let excess = 0;
      const held = counts(new Map([...before].filter(([, o]) => live.has(o))));
      for (const [id, q] of plan.quotas) excess += Math.max(0, (held.get(id) ?? 0) - q);
      expect(plan.moved).toBe(excess);
    }
  });

  it('an unchanged membership moves nothing', () => {
    const list = items(64);
    const ms = members(5);
    const first = computeAssignment(list, ms);
    const again = computeAssignment(list, ms, first.owners);
    expect(again.moved).toBe(0);
    expect(again.placed).toBe(0);
    expect([...again.owners].sort()).toEqual([...first.owners].sort());
  });

  it('no member: nothing assigned', () => {
    expect(computeAssignment(items(3), []).owners.size).toBe(0);
  });
});
