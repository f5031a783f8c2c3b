import { ConflictError, InvalidArgumentError } from '@tenure/core';
import { createMemoryArbitrator, createMemoryServer, type MemoryArbitrator } from '@tenure/memory';
import { createPool, type Pool } from '@tenure/pool';
import { createTenureMetrics } from '@tenure/prometheus';
import { Timing, waitFor } from '@tenure/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSamples, type Sample } from './prometheus-text.js';

// instrumentPool: two members of a pool on the memory arbitrator, scraped from one registry.

const timing = new Timing(1_000);
const server = createMemoryServer();
const members: { arbitrator: MemoryArbitrator; pool: Pool }[] = [];

afterEach(async () => {
  for (const m of members.splice(0)) {
    await m.pool.stop();
    await m.arbitrator.close();
  }
});

/** Sum of a metric's samples whose labels include `labels`. */
function total(samples: readonly Sample[], name: string, labels: Record<string, string> = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('@tenure/prometheus: pools', () => {
  it('items held and assigned per member, the leader, claims, releases by reason, moves and claim waits', async () => {
    const metrics = createTenureMetrics();
    const items = Array.from({ length: 8 }, (_, i) => `i${i}`);
    for (const id of ['m1', 'm2']) {
      const arbitrator = createMemoryArbitrator({ server, ttlMs: 1_000 });
      const pool = createPool(arbitrator, 'metered', { memberId: id, items, syncIntervalMs: 50 });
      members.push({ arbitrator, pool });
      metrics.instrumentPool(pool);
      pool.start();
    }
    const scrape = async () => parseSamples(await metrics.registry.metrics());
    await waitFor(
      async () => {
        const s = await scrape();
        return (
          total(s, 'tenure_pool_items_held', { member: 'm1' }) === 4 &&
          total(s, 'tenure_pool_items_held', { member: 'm2' }) === 4
        );
      },
      { timeoutMs: timing.expiryMs, what: 'four items held by each member' },
    );
    let s = await scrape();
    expect(total(s, 'tenure_pool_items_assigned', { pool: 'metered' })).toBe(8);
    expect(total(s, 'tenure_pool_leader', { pool: 'metered' })).toBe(1);
    const claims = total(s, 'tenure_pool_claims_total');
    expect(claims).toBeGreaterThanOrEqual(8);
    // Every claim beyond the 8 items followed a release (a move while the pool formed).
    expect(claims - total(s, 'tenure_pool_releases_total')).toBe(8);
    expect(total(s, 'tenure_pool_claim_wait_seconds_count')).toBe(claims);
    expect(
      total(s, 'tenure_pool_items_placed_total') + total(s, 'tenure_pool_items_moved_total'),
    ).toBeGreaterThanOrEqual(8);

    const before = total(s, 'tenure_pool_releases_total', { member: 'm2', reason: 'stopped' });
    await members[1]!.pool.stop();
    s = await scrape();
    expect(total(s, 'tenure_pool_releases_total', { member: 'm2', reason: 'stopped' })).toBe(
      before + 4,
    );
    expect(() => metrics.instrumentPool(members[0]!.pool)).toThrow(ConflictError);
    expect(() => metrics.instrumentPool({} as never)).toThrow(InvalidArgumentError);
  });
});
