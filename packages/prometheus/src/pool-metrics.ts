import { ConflictError, END_REASONS, InvalidArgumentError } from '@tenure/core';
import type { Pool, ReleaseReason } from '@tenure/pool';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Release reasons as label values (a fixed set: anything newer becomes `other`). */
const RELEASE_REASONS: ReadonlySet<string> = new Set<ReleaseReason>([
  'moved',
  'stopped',
  ...END_REASONS,
]);

/**
 * The metrics of `@tenure/pool` members, labelled by pool and member id (one member per
 * replica: bounded by the replicas). Items are never labels.
 */
export class PoolMetrics {
  readonly #pools = new Set<Pool>();
  readonly #claims: Counter<'pool' | 'member'>;
  readonly #releases: Counter<'pool' | 'member' | 'reason'>;
  readonly #moved: Counter<'pool'>;
  readonly #placed: Counter<'pool'>;
  readonly #wait: Histogram<'pool'>;

  constructor(registry: Registry, prefix: string) {
    const registers = [registry];
    const pools = () => [...this.#pools];
    new Gauge({
      name: `${prefix}pool_items_held`,
      help: 'Items this member holds now (a claim whose term is valid).',
      labelNames: ['pool', 'member'],
      registers,
      collect() {
        this.reset();
        for (const p of pools()) {
          this.set({ pool: p.name, member: p.memberId }, p.heldItems().length);
        }
      },
    });
    new Gauge({
      name: `${prefix}pool_items_assigned`,
      help: 'Items the latest assignment this member applied gives it: held once it settles.',
      labelNames: ['pool', 'member'],
      registers,
      collect() {
        this.reset();
        for (const p of pools()) {
          this.set({ pool: p.name, member: p.memberId }, p.stats().assigned);
        }
      },
    });
    new Gauge({
      name: `${prefix}pool_leader`,
      help: "1 while this member is its pool's leader (it computes and publishes the assignment).",
      labelNames: ['pool', 'member'],
      registers,
      collect() {
        this.reset();
        for (const p of pools()) this.set({ pool: p.name, member: p.memberId }, p.leading ? 1 : 0);
      },
    });
    this.#claims = new Counter({
      name: `${prefix}pool_claims_total`,
      help: 'Claims this member won (it began to hold an item).',
      labelNames: ['pool', 'member'],
      registers,
    });
    this.#releases = new Counter({
      name: `${prefix}pool_releases_total`,
      help: 'Claims this member gave up: moved (reassigned), stopped, or the claim term ended (expired, session-lost, revoked…).',
      labelNames: ['pool', 'member', 'reason'],
      registers,
    });
    this.#moved = new Counter({
      name: `${prefix}pool_items_moved_total`,
      help: "Items the assignments published by this member (as leader) took from a live member: the rebalancing's moves.",
      labelNames: ['pool'],
      registers,
    });
    this.#placed = new Counter({
      name: `${prefix}pool_items_placed_total`,
      help: 'Items the assignments published by this member (as leader) gave an owner they had not: new items, or a departed member’s.',
      labelNames: ['pool'],
      registers,
    });
    this.#wait = new Histogram({
      name: `${prefix}pool_claim_wait_seconds`,
      help: 'From a claim’s campaign (right after the assignment named this member) to holding the item: how long a moved item went unowned, as its new holder sees it.',
      labelNames: ['pool'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
  }

  instrument(pool: Pool): () => void {
    if (
      typeof pool !== 'object' ||
      pool === null ||
      typeof pool.heldItems !== 'function' ||
      typeof pool.stats !== 'function' ||
      typeof pool.on !== 'function'
    ) {
      throw new InvalidArgumentError('pool', 'must be a @tenure/pool Pool');
    }
    if (this.#pools.has(pool)) {
      throw new ConflictError(
        'This pool member is instrumented already: its events would count twice',
      );
    }
    const labels = { pool: pool.name, member: pool.memberId };
    const onAssigned = (_lease: unknown, details: { readonly waitedMs: number }) => {
      this.#claims.inc(labels);
      this.#wait.observe({ pool: pool.name }, details.waitedMs / 1000);
    };
    const onReleased = (_item: string, _token: bigint, reason: ReleaseReason) => {
      this.#releases.inc({ ...labels, reason: RELEASE_REASONS.has(reason) ? reason : 'other' });
    };
    const onRebalanced = (details: { readonly moved: number; readonly placed: number }) => {
      if (details.moved > 0) this.#moved.inc({ pool: pool.name }, details.moved);
      if (details.placed > 0) this.#placed.inc({ pool: pool.name }, details.placed);
    };
    pool.on('assigned', onAssigned);
    pool.on('released', onReleased);
    pool.on('rebalanced', onRebalanced);
    this.#pools.add(pool);
    return () => {
      pool.off('assigned', onAssigned);
      pool.off('released', onReleased);
      pool.off('rebalanced', onRebalanced);
      this.#pools.delete(pool);
    };
  }
}
