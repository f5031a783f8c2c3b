import { createMemoryArbitrator, createMemoryServer, type MemoryArbitrator } from '@tenure/memory';
import { createPool, type Pool, type PoolOptions, readPool, setPoolItems } from '@tenure/pool';
import { Timing, TokenWitness, waitFor } from '@tenure/testkit';
import { afterEach, describe, expect, it } from 'vitest';

// Members of one pool on the memory arbitrator (one arbitrator, so one session, per member),
// real timers. A witness per item refuses a token lower than the highest it has seen; every
// write a handler makes while its claim is valid is recorded with its monotonic time, so two
// holders of one item at the same instant would show as overlapping intervals.

const TTL_MS = 1_000;
const timing = new Timing(TTL_MS);
const SYNC_MS = 50;
const ITEMS = Array.from({ length: 64 }, (_, i) => `item-${String(i).padStart(2, '0')}`);

interface Member {
  readonly id: string;
  readonly arbitrator: MemoryArbitrator;
  readonly pool: Pool;
}

const server = createMemoryServer();
let members: Member[] = [];
let witness: TokenWitness;

afterEach(async () => {
  await Promise.all(
    members.map(async (m) => {
      await m.pool.stop();
      await m.arbitrator.close();
    }),
  );
  members = [];
});

/** A handler that writes to the witness every 20 ms while its claim is valid. */
function handlerFor(id: string): NonNullable<PoolOptions['handler']> {
  return async ({ item, token, signal, term }) => {
    while (!signal.aborted) {
      const at = performance.now();
      if (!term.isValid()) break;
      witness.write(item, { holder: id, token, at });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
}

function join(id: string, options: PoolOptions = {}, name = 'p'): Member {
  const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
  const pool = createPool(arbitrator, name, {
    memberId: id,
    items: ITEMS,
    syncIntervalMs: SYNC_MS,
    handler: handlerFor(id),
    ...options,
  });
  pool.on('error', () => {}); // background retries; the assertions below are what count
  pool.start();
  const member = { id, arbitrator, pool };
  members.push(member);
  return member;
}

/** Settled: one assignment everywhere, every item held by its owner and by no one else. */
function settled(live: readonly Member[], items: readonly string[] = ITEMS): boolean {
  const first = live[0]?.pool.assignment();
  if (first === undefined) return false;
  if (first.members.length !== live.length) return false;
  for (const m of live) {
    const a = m.pool.assignment();
    if (a?.epoch !== first.epoch || a.generation !== first.generation) return false;
  }
  const holders = new Map<string, string[]>();
  for (const m of live) {
    for (const item of m.pool.heldItems()) holders.set(item, [...(holders.get(item) ?? []), m.id]);
  }
  return items.every((item) => {
    const h = holders.get(item);
    return h?.length === 1 && h[0] === first.owners.get(item);
  });
}

function countsOf(m: Member): number {
  return m.pool.heldItems().length;
}

async function waitSettled(live: readonly Member[], what: string): Promise<void> {
  await waitFor(() => settled(live), { timeoutMs: timing.expiryMs, what, intervalMs: 10 });
}

function ownersNow(live: readonly Member[]): Map<string, string> {
  return new Map(live[0]!.pool.assignment()!.owners);
}

function moved(before: Map<string, string>, after: Map<string, string>, live: Set<string>): number {
  let n = 0;
  for (const [item, owner] of before) if (live.has(owner) && after.get(item) !== owner) n += 1;
  return n;
}

describe('pool on the memory arbitrator', () => {
  it('5 members, 64 items: balanced, a join moves ≤ ⌈64/6⌉, a leave moves only its items, a crash is covered within TTL + bound; never two holders', async () => {
    witness = new TokenWitness();
    const five = ['a', 'b', 'c', 'd', 'e'].map((id) => join(id));
    await waitSettled(five, 'five members to settle');
    for (const m of five) expect([12, 13]).toContain(countsOf(m));

    // join
    let before = ownersNow(five);
    const six = [...five, join('f')];
    await waitSettled(six, 'the join to settle');
    let after = ownersNow(six);
    expect(moved(before, after, new Set(six.map((m) => m.id)))).toBeLessThanOrEqual(11);
    for (const m of six) expect([10, 11]).toContain(countsOf(m));

    // graceful leave of b
    before = after;
    const b = six[1]!;
    await b.pool.stop();
    const five2 = six.filter((m) => m !== b);
    await waitSettled(five2, 'the leave to settle');
    after = ownersNow(five2);
    expect(moved(before, after, new Set(five2.map((m) => m.id)))).toBe(0);

    // crash of c: its session is cut off (no renewals reach the server, no release)
    before = after;
    const c = five2[1]!;
    const cItems = c.pool.heldItems();
    const cutAt = performance.now();
    c.arbitrator.partition();
    const four = five2.filter((m) => m !== c);
    await waitFor(
      () => cItems.every((item) => four.some((m) => m.pool.heldItems().includes(item))),
      { timeoutMs: timing.expiryMs, what: "c's items to be held again" },
    );
    const coveredMs = performance.now() - cutAt;
    await waitSettled(four, 'the crash to settle');
    after = ownersNow(four);
    expect(moved(before, after, new Set(four.map((m) => m.id)))).toBe(0);
    // TTL + the session expiry check + one sync interval + claims: well inside the expiry bound.
    expect(coveredMs).toBeLessThan(timing.expiryMs);

    expect(witness.overlaps()).toEqual([]);
    // Every accepted write of an item came with a token no lower than the earlier ones.
    for (const writes of witness.accepted.values()) {
      for (let i = 1; i < writes.length; i += 1) {
        expect(writes[i]!.token >= writes[i - 1]!.token).toBe(true);
      }
    }
    expect(witness.refused).toEqual([]);
  }, 60_000);

  it('weights: a weight-3 member takes three times the items of a weight-1 member', async () => {
    witness = new TokenWitness();
    const ms = [join('w1', { weight: 1 }, 'pw'), join('w3', { weight: 3 }, 'pw')];
    await waitSettled(ms, 'the weighted pool to settle');
    expect(countsOf(ms[0]!)).toBe(16);
    expect(countsOf(ms[1]!)).toBe(48);
  }, 30_000);

  it('items kept in the arbitrator change at run time; readPool shows the pool from outside', async () => {
    witness = new TokenWitness();
    const admin = createMemoryArbitrator({ server, ttlMs: TTL_MS });
    try {
      await setPoolItems(admin, 'pr', ['x', 'y']);
      const ms = [join('r1', { items: undefined }, 'pr'), join('r2', { items: undefined }, 'pr')];
      await waitFor(() => settled(ms, ['x', 'y']), { timeoutMs: timing.expiryMs, what: 'x, y' });
      await setPoolItems(admin, 'pr', ['x', 'y', 'z', 'w']);
      await waitFor(() => settled(ms, ['w', 'x', 'y', 'z']), {
        timeoutMs: timing.expiryMs,
        what: 'four items',
      });
      expect(countsOf(ms[0]!)).toBe(2);
      const snapshot = await readPool(admin, 'pr', { holders: true });
      expect(snapshot.members.map((m) => m.id).sort()).toEqual(['r1', 'r2']);
      expect([...snapshot.assignment!.owners.keys()].sort()).toEqual(['w', 'x', 'y', 'z']);
      expect([...snapshot.holders!].sort()).toEqual([...snapshot.assignment!.owners].sort());
      await setPoolItems(admin, 'pr', ['x']);
      await waitFor(() => settled(ms, ['x']) && ms.every((m) => m.pool.heldItems().length <= 1), {
        timeoutMs: timing.expiryMs,
        what: 'one item left',
      });
    } finally {
      await admin.close();
    }
  }, 30_000);

  it('events: assigned then released per claim, with the same token; stats count them', async () => {
    witness = new TokenWitness();
    const m = join('solo', { items: ['one', 'two'] }, 'pe');
    const seen: string[] = [];
    m.pool.on('assigned', (lease) => seen.push(`+${lease.item}@${lease.token}`));
    m.pool.on('released', (item, token, reason) => seen.push(`-${item}@${token}:${reason}`));
    await waitFor(() => settled([m], ['one', 'two']), { timeoutMs: timing.expiryMs, what: 'solo' });
    await m.pool.stop();
    expect(seen.filter((e) => e.startsWith('+')).length).toBe(2);
    for (const e of seen.filter((x) => x.startsWith('+'))) {
      expect(seen).toContain(`-${e.slice(1)}:stopped`);
    }
    const stats = m.pool.stats();
    expect(stats.claims).toBe(2);
    expect(stats.releases.stopped).toBe(2);
    expect(stats.published).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('an item moved away and back while its claim still releases is claimed again (one candidacy per election and arbitrator)', async () => {
    witness = new TokenWitness();
    const items = ['x0', 'x1', 'x2', 'x3'];
    // a's handlers take 300 ms to settle after their signal aborts: its releases are slow.
    const slow: PoolOptions['handler'] = async ({ signal }) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 300));
    };
    const a = join('a', { items, handler: slow }, 'pb');
    await waitFor(() => settled([a], items), { timeoutMs: timing.expiryMs, what: 'a alone' });
    const b = join('b', { items }, 'pb');
    // As soon as the assignment gives b half of the items, b leaves: they go back to a while
    // a's claims on them are still releasing.
    await waitFor(() => (a.pool.assignment()?.members.length ?? 0) === 2, {
      timeoutMs: timing.expiryMs,
      what: 'the assignment with b',
    });
    await b.pool.stop();
    members = members.filter((m) => m !== b);
    await b.arbitrator.close();
    await waitFor(() => settled([a], items), {
      timeoutMs: timing.expiryMs,
      what: 'a to hold every item again',
    });
  }, 30_000);

  it('release after the work (G10): a moved item is resigned only once its handler settled, even a handler slow to stop', async () => {
    witness = new TokenWitness();
    const items = ['y0', 'y1', 'y2', 'y3'];
    // Writes every 10 ms until 150 ms after its signal aborts, without looking at the term: only
    // the pool's wait for it keeps the next holder out meanwhile.
    const lingering =
      (id: string): NonNullable<PoolOptions['handler']> =>
      async ({ item, token, signal }) => {
        let stopAt = Number.POSITIVE_INFINITY;
        signal.addEventListener('abort', () => {
          stopAt = performance.now() + 150;
        });
        while (performance.now() < stopAt) {
          witness.write(item, { holder: id, token, at: performance.now() });
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      };
    const a = join('a', { items, handler: lingering('a') }, 'pg');
    await waitFor(() => settled([a], items), { timeoutMs: timing.expiryMs, what: 'a alone' });
    const b = join('b', { items, handler: lingering('b') }, 'pg');
    await waitFor(() => settled([a, b], items), { timeoutMs: timing.expiryMs, what: 'a and b' });
    expect(b.pool.heldItems().length).toBe(2);
    expect(witness.overlaps()).toEqual([]);
    expect(witness.refused).toEqual([]);
  }, 30_000);

  it('an assignment too large for a candidate value is stored beside the election and read from there', async () => {
    witness = new TokenWitness();
    // 400 items of 60 characters: about 25 kB of item names, over a value's 16 KiB.
    const items = Array.from(
      { length: 400 },
      (_, i) => `${'x'.repeat(56)}${String(i).padStart(4, '0')}`,
    );
    const ms = [
      join('s1', { items, handler: undefined }, 'ps'),
      join('s2', { items, handler: undefined }, 'ps'),
    ];
    await waitFor(() => settled(ms, items), { timeoutMs: timing.expiryMs, what: '400 items' });
    expect(countsOf(ms[0]!)).toBe(200);
    const admin = createMemoryArbitrator({ server, ttlMs: TTL_MS, lazySession: true });
    try {
      const snapshot = await readPool(admin, 'ps');
      expect(snapshot.assignment?.owners.size).toBe(400);
      const leader = await admin.leader('ps.members');
      expect(leader?.value).toMatch(/"stored":true/);
    } finally {
      await admin.close();
    }
  }, 30_000);

  it('an arbitrator closed under a running member ends its loops: no retry against a closed arbitrator', async () => {
    witness = new TokenWitness();
    const m = join('lone', { items: ['k1', 'k2'] }, 'pc');
    await waitFor(() => settled([m], ['k1', 'k2']), { timeoutMs: timing.expiryMs, what: 'lone' });
    const errors: string[] = [];
    m.pool.on('error', (error) => errors.push(error.code));
    await m.arbitrator.close();
    await new Promise((resolve) => setTimeout(resolve, 20 * SYNC_MS));
    // Each loop may report the closing once; none retries.
    expect(errors.length).toBeLessThanOrEqual(4);
    await m.pool.stop();
    expect(m.pool.state).toBe('stopped');
  }, 30_000);

  it('bad options are typed errors naming the field', () => {
    const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS, lazySession: true });
    try {
      expect(() => createPool(arbitrator, 'x', { weight: 0 })).toThrow(/options\.weight/);
      expect(() => createPool(arbitrator, 'x', { items: ['a', 'a'] })).toThrow(
        /options\.items\[1\]/,
      );
      expect(() => createPool(arbitrator, 'x', { items: ['a/b'] })).toThrow(/options\.items\[0\]/);
      expect(() => createPool(arbitrator, 'x/y')).toThrow(/name/);
      expect(() => createPool(arbitrator, 'x', { sync: 5 } as never)).toThrow(/options\.sync/);
    } finally {
      void arbitrator.close();
    }
  });
});
