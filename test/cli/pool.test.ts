// `tenure pool NAME` against a real etcd: two members of a @tenure/pool in this process, the
// CLI in a child process reading the pool from outside.
import type { Arbitrator } from '@tenure/core';
import { createPool, type Pool } from '@tenure/pool';
import { Timing, waitFor } from '@tenure/testkit';
import { connect } from 'tenure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliBackend, etcdBackend } from './cli-backends.js';
import { assertCliBuilt, runTenure } from './cli-process.js';

const timing = new Timing(2_000);

describe('tenure pool on etcd', () => {
  let server: Awaited<ReturnType<CliBackend['start']>> | undefined;
  let url = '';
  const arbitrators: Arbitrator[] = [];
  const pools: Pool[] = [];

  beforeAll(async () => {
    assertCliBuilt();
    server = await etcdBackend.start();
    url = server.url();
  });

  afterAll(async () => {
    await Promise.allSettled(pools.map((p) => p.stop()));
    await Promise.allSettled(arbitrators.map((a) => a.close()));
    await server?.stop();
  });

  it('shows the leader, members, weights and items; --holders who holds them; exit 1 for an empty pool', async () => {
    const items = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const [id, weight] of [
      ['m1', 1],
      ['m2', 2],
    ] as const) {
      const arbitrator = await connect(url);
      arbitrators.push(arbitrator);
      const pool = createPool(arbitrator, 'cli-pool', {
        memberId: id,
        weight,
        items,
        syncIntervalMs: 100,
      });
      pools.push(pool);
      pool.start();
    }
    await waitFor(() => pools[0]!.heldItems().length === 2 && pools[1]!.heldItems().length === 4, {
      timeoutMs: timing.expiryMs,
      what: 'the pool to settle',
    });
    const json = await runTenure(['pool', 'cli-pool', '--url', url, '--json', '--holders']);
    expect(json.code, json.stderr).toBe(0);
    const shown = JSON.parse(json.stdout) as {
      leader: string;
      members: { id: string; weight: number; items: string[]; held: number }[];
      holders: Record<string, string>;
    };
    expect(['m1', 'm2']).toContain(shown.leader);
    const byId = Object.fromEntries(shown.members.map((m) => [m.id, m]));
    expect(byId.m1).toMatchObject({ weight: 1, items: pools[0]!.heldItems(), held: 2 });
    expect(byId.m2).toMatchObject({ weight: 2, items: pools[1]!.heldItems(), held: 4 });
    expect(Object.keys(shown.holders).sort()).toEqual(items);

    const table = await runTenure(['pool', 'cli-pool', '--url', url]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/MEMBER\s+WEIGHT\s+ITEMS\s+ROLE/);
    expect(table.stdout).toMatch(/m2\s+2\s+4\s+(leader|member)/);

    const empty = await runTenure(['pool', 'nobody', '--url', url]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/pool "nobody" has no member/);
  }, 60_000);
});
