import {
  type Arbitrator,
  ClosedError,
  defaultCandidateValue,
  type Election,
  type Epoch,
  IllegalStateError,
  isTenureError,
  type LeaderInfo,
  runAsLeader,
  type StoredValue,
  TaskFailedError,
  type TenureError,
  type Term,
} from '@tenure/core';
import { SafeEmitter, sleep } from '@tenure/core/internal';
import { computeAssignment, type MemberWeight } from './assignment.js';
import { ItemClaim } from './item-claim.js';
import {
  ASSIGNMENT_KEY,
  decodeItems,
  decodeMember,
  decodeStored,
  encodeItems,
  encodeLeaderInline,
  encodeLeaderPointer,
  encodeMember,
  encodeStored,
  ITEMS_KEY,
  type ItemLists,
  itemElection,
  membersElection,
  toAssignment,
} from './pool-codec.js';
import { type ResolvedPoolOptions, resolvePoolOptions } from './pool-options.js';
import type {
  Assignment,
  ItemLease,
  Pool,
  PoolEvents,
  PoolOptions,
  PoolSnapshot,
  PoolState,
  PoolStats,
  ReleaseReason,
} from './types.js';

/**
 * Creates a member of the pool `name` on `arbitrator` (start it with {@link Pool.start}). Every
 * replica creates one with the same name; each needs its own arbitrator (one session per
 * member: its membership and claims end with it). The pool uses the elections `<name>.members`
 * and `<name>.item.<item>` of that arbitrator and nothing adapter-specific, so it works on
 * etcd, ZooKeeper and the memory arbitrator alike.
 *
 * @throws {@link @tenure/core!InvalidArgumentError} for a bad name or option, naming it.
 */
export function createPool(arbitrator: Arbitrator, name: string, options?: PoolOptions): Pool {
  return new PoolMember(arbitrator, name, resolvePoolOptions(name, options));
}

class PoolMember extends SafeEmitter<PoolEvents> implements Pool {
  readonly name: string;
  readonly memberId: string;
  readonly weight: number;
  readonly #arbitrator: Arbitrator;
  readonly #options: ResolvedPoolOptions;
  readonly #members: Election;
  #state: PoolState = 'idle';
  #leading = false;
  readonly #stopping = new AbortController();
  #stopped: Promise<void> | undefined;
  #leaderLoop: Promise<void> | undefined;
  #watchLoop: Promise<void> | undefined;
  /** The latest applied assignment, and its (epoch, generation) order. */
  #assignment: Assignment | undefined;
  readonly #claims = new Map<string, ItemClaim>();
  /** Per item: the last use (claim or read) of its election on this arbitrator. */
  readonly #chains = new Map<string, Promise<void>>();
  /** Claims being released: awaited by stop(). */
  readonly #releasing = new Set<Promise<void>>();
  /** A stored assignment being fetched (one at a time; a newer pointer re-fetches). */
  #fetching = false;
  /** Set once a loop found the arbitrator closed under this member (see #closedUnder). */
  #arbitratorClosed = false;
  #pendingPointer: { epoch: Epoch; generation: number } | undefined;
  #stats = {
    claims: 0,
    releases: {
      moved: 0,
      stopped: 0,
      resigned: 0,
      closed: 0,
      expired: 0,
      'session-lost': 0,
      revoked: 0,
    } as Record<ReleaseReason, number>,
    published: 0,
    moved: 0,
    placed: 0,
    wait: { sum: 0, count: 0, max: 0 },
  };

  constructor(arbitrator: Arbitrator, name: string, options: ResolvedPoolOptions) {
    super();
    this.#arbitrator = arbitrator;
    this.name = name;
    this.#options = options;
    this.weight = options.weight;
    this.memberId = options.memberId ?? defaultCandidateValue();
    // The candidate value carries the member's id and weight: the leader reads both from
    // candidates(), so membership needs no other key.
    this.#members = arbitrator.election(membersElection(name), {
      value: encodeMember(this.memberId, this.weight),
    });
  }

  get state(): PoolState {
    return this.#state;
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    if (this.#state !== 'idle') {
      throw new IllegalStateError(`The pool member is ${this.#state}: start() only once`);
    }
    this.#state = 'running';
    this.#members.on('error', (error) => this.#report(error));
    // observe(), not `leader-changed`: the event reports new leaders only, while observe()
    // also yields the leader's proclaimed values, which carry the assignment.
    this.#watchLoop = this.#follow();
    this.#leaderLoop = runAsLeader(this.#members, (term) => this.#lead(term), {
      signal: this.#stopping.signal,
      requeueDelayMs: 0,
      onError: (error) => this.#report(asTenureError(error, 'the pool leader')),
    }).catch((error: unknown) => this.#report(asTenureError(error, 'the pool membership')));
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #stop(): Promise<void> {
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      await this.#members.close();
      return;
    }
    this.#state = 'stopping';
    // Leave the membership first, so the leader reassigns our items while we release them.
    this.#stopping.abort();
    await this.#leaderLoop;
    await this.#watchLoop;
    await this.#members
      .close()
      .catch((error: unknown) => this.#report(asTenureError(error, 'leaving')));
    for (const claim of this.#claims.values()) this.#release(claim, 'stopped');
    while (this.#releasing.size > 0) await Promise.all([...this.#releasing]);
    this.#state = 'stopped';
  }

  assignment(): Assignment | undefined {
    return this.#assignment;
  }

  heldItems(): string[] {
    return [...this.#claims.values()]
      .filter((c) => c.holds)
      .map((c) => c.item)
      .sort();
  }

  stats(): PoolStats {
    const s = this.#stats;
    return {
      held: this.heldItems().length,
      assigned: this.#assignment?.members.find((m) => m.id === this.memberId)?.items.length ?? 0,
      claims: s.claims,
      releases: { ...s.releases },
      published: s.published,
      moved: s.moved,
      placed: s.placed,
      claimWaitMs: { ...s.wait },
    };
  }

  // --- following the leader's assignment ---

  /** Running, and the arbitrator was not closed under this member. */
  #running(): boolean {
    return this.#state === 'running' && !this.#arbitratorClosed;
  }

  /**
   * The arbitrator was closed without stop(): every loop ends (a closed arbitrator never comes
   * back), once reported; stop() still releases what is left.
   */
  #closedUnder(): void {
    if (this.#arbitratorClosed) return;
    this.#arbitratorClosed = true;
    this.#report(
      new ClosedError(
        `The arbitrator of pool member ${this.memberId} was closed: call stop() first`,
      ),
    );
  }

  async #follow(): Promise<void> {
    const signal = this.#stopping.signal;
    while (!signal.aborted && !this.#arbitratorClosed) {
      try {
        for await (const leader of this.#members.observe({ signal })) this.#onLeader(leader);
      } catch (error) {
        if (signal.aborted) return;
        if (isTenureError(error) && error.code === 'CLOSED') {
          this.#closedUnder();
          return;
        }
        this.#report(asTenureError(error, 'watching the pool leader'));
        await sleep(this.#options.syncIntervalMs, { signals: [signal] }).catch(() => {});
      }
    }
  }

  #onLeader(leader: LeaderInfo | undefined): void {
    if (leader === undefined || this.#state !== 'running') return;
    const value = decodeMember(leader.value);
    const published = value?.published;
    if (published === undefined) return;
    if ('lists' in published) {
      this.#apply(toAssignment(leader.epoch, published.generation, published.lists));
    } else {
      this.#pendingPointer = { epoch: leader.epoch, generation: published.generation };
      void this.#fetchStored();
    }
  }

  /** Reads a stored assignment the leader's value points at (too large for the value). */
  async #fetchStored(): Promise<void> {
    if (this.#fetching) return;
    this.#fetching = true;
    try {
      while (this.#pendingPointer !== undefined && this.#running()) {
        const wanted = this.#pendingPointer;
        const stored = await this.#members.get(ASSIGNMENT_KEY).catch((error: unknown) => {
          if (isTenureError(error) && error.code === 'CLOSED') this.#closedUnder();
          else this.#report(asTenureError(error, 'reading the stored assignment'));
          return undefined;
        });
        const parsed = stored === undefined ? undefined : decodeStored(stored.value);
        if (parsed !== undefined && !isOlder(parsed, wanted)) {
          if (this.#pendingPointer === wanted) this.#pendingPointer = undefined;
          this.#apply(toAssignment(parsed.epoch, parsed.generation, parsed.lists));
        } else {
          await sleep(this.#options.syncIntervalMs / 4, { signals: [this.#stopping.signal] }).catch(
            () => {},
          );
        }
      }
    } finally {
      this.#fetching = false;
    }
  }

  /** Applies an assignment newer than the current one: releases moved items, claims new ones. */
  #apply(next: Assignment): void {
    const current = this.#assignment;
    if (current !== undefined && !isOlder(current, next)) return;
    if (!this.#running()) return;
    this.#assignment = next;
    const mine = new Set(next.members.find((m) => m.id === this.memberId)?.items ?? []);
    for (const claim of this.#claims.values()) {
      if (!mine.has(claim.item)) this.#release(claim, 'moved');
    }
    for (const item of mine) {
      if (!this.#claims.has(item)) this.#claim(item);
    }
    this.emit('assignment', next);
  }

  #claim(item: string): void {
    const after = this.#chains.get(item) ?? Promise.resolve();
    const claim = new ItemClaim(
      this.#arbitrator,
      this.name,
      item,
      this.memberId,
      this.#options.handler,
      {
        assigned: (lease: ItemLease, waitedMs: number) => {
          this.#stats.claims += 1;
          const w = this.#stats.wait;
          w.sum += waitedMs;
          w.count += 1;
          w.max = Math.max(w.max, waitedMs);
          this.emit('assigned', lease, { waitedMs });
        },
        released: (released, token, reason) => {
          this.#stats.releases[reason] += 1;
          this.emit('released', released, token, reason);
        },
        error: (error) => this.#report(error),
        closed: () => this.#closedUnder(),
      },
      () => this.#options.clock.now(),
      after,
    );
    this.#claims.set(item, claim);
    this.#chain(item, claim.done);
    void claim.done.then(async () => {
      // A claim that closed without being released (its election could not be opened): try
      // again while the item is still this member's.
      if (this.#claims.get(item) !== claim) return;
      this.#claims.delete(item);
      await sleep(this.#options.syncIntervalMs, { signals: [this.#stopping.signal] }).catch(
        () => {},
      );
      const mine = this.#assignment?.owners.get(item) === this.memberId;
      if (mine && this.#running() && !this.#claims.has(item)) this.#claim(item);
    });
  }

  /** Makes `done` the last use of the item's election on this arbitrator. */
  #chain(item: string, done: Promise<void>): void {
    this.#chains.set(item, done);
    void done.then(() => {
      if (this.#chains.get(item) === done) this.#chains.delete(item);
    });
  }

  async read(item: string, key: string): Promise<StoredValue | undefined> {
    const open = this.#claims.get(item)?.election;
    if (open !== undefined) return await open.get(key);
    // No claim has the item's election open: open it for this read alone, after whatever
    // used it last (an arbitrator holds one candidacy per election).
    const after = this.#chains.get(item) ?? Promise.resolve();
    const reading = after.then(async () => {
      const current = this.#claims.get(item)?.election;
      if (current !== undefined) return await current.get(key);
      const election = this.#arbitrator.election(itemElection(this.name, item));
      try {
        return await election.get(key);
      } finally {
        await election.close();
      }
    });
    this.#chain(
      item,
      reading.then(
        () => {},
        () => {},
      ),
    );
    return await reading;
  }

  #release(claim: ItemClaim, why: 'moved' | 'stopped'): void {
    if (this.#claims.get(claim.item) === claim) this.#claims.delete(claim.item);
    const done = claim.release(why);
    this.#releasing.add(done);
    void done.finally(() => this.#releasing.delete(done));
  }

  // --- leading the pool ---

  /** The leader's loop for one term: read the members (and items), assign, publish. */
  async #lead(term: Term): Promise<void> {
    this.#setLeading(true);
    try {
      let generation = 0;
      let previous = this.#assignment?.owners ?? (await this.#probeHolders(term));
      let published = '';
      while (term.isValid()) {
        try {
          const [candidates, items] = await Promise.all([
            this.#members.candidates(),
            this.#items(),
          ]);
          const members = liveMembers(candidates);
          const plan = computeAssignment(items, members, previous);
          const lists: ItemLists = {};
          for (const m of members) lists[m.id] = { w: m.weight, i: [] };
          for (const [item, owner] of plan.owners) lists[owner]!.i.push(item);
          const key = JSON.stringify(lists);
          if (key !== published) {
            generation += 1;
            const assignment = toAssignment(term.epoch, generation, lists);
            await this.#publish(term, assignment);
            published = key;
            previous = assignment.owners;
            this.#stats.published += 1;
            this.#stats.moved += plan.moved;
            this.#stats.placed += plan.placed;
            this.emit('rebalanced', { generation, moved: plan.moved, placed: plan.placed });
            this.#apply(assignment);
          }
        } catch (error) {
          if (!term.isValid()) break;
          this.#report(asTenureError(error, 'the pool leader'));
        }
        await sleep(this.#options.syncIntervalMs, {
          signals: [term.signal],
          clock: this.#options.clock,
        }).catch(() => {});
      }
    } finally {
      this.#setLeading(false);
    }
  }

  async #publish(term: Term, assignment: Assignment): Promise<void> {
    const inline = encodeLeaderInline(
      this.memberId,
      this.weight,
      assignment.generation,
      assignment.members,
    );
    if (inline !== undefined) {
      await this.#members.proclaim(inline);
      return;
    }
    await term.put(
      ASSIGNMENT_KEY,
      encodeStored(term.epoch, assignment.generation, assignment.members),
    );
    await this.#members.proclaim(
      encodeLeaderPointer(this.memberId, this.weight, assignment.generation),
    );
  }

  /**
   * A leader that has seen no assignment (the pool's first, or every member restarted) asks
   * each item's election who holds it, so that its first assignment keeps them in place.
   */
  async #probeHolders(term: Term): Promise<Map<string, string>> {
    const owners = new Map<string, string>();
    const items = await this.#items().catch(() => [] as string[]);
    const queue = [...items];
    const worker = async () => {
      for (let item = queue.pop(); item !== undefined && term.isValid(); item = queue.pop()) {
        const holder = await this.#arbitrator
          .leader(itemElection(this.name, item))
          .catch(() => undefined);
        if (holder !== undefined) owners.set(item, holder.value);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return owners;
  }

  async #items(): Promise<readonly string[]> {
    if (this.#options.items !== undefined) return this.#options.items;
    const stored = await this.#members.get(ITEMS_KEY);
    return decodeItems(stored?.value);
  }

  #setLeading(leading: boolean): void {
    if (this.#leading === leading) return;
    this.#leading = leading;
    this.emit('leading', leading);
  }

  #report(error: TenureError): void {
    this.emit('error', error);
  }
}

/** The pool members among an election's candidates, in queue order, one per member id. */
function liveMembers(candidates: readonly LeaderInfo[]): MemberWeight[] {
  const seen = new Map<string, MemberWeight>();
  for (const c of candidates) {
    const value = decodeMember(c.value);
    if (value !== undefined && !seen.has(value.id)) {
      seen.set(value.id, { id: value.id, weight: value.weight });
    }
  }
  return [...seen.values()];
}

/** `a` was published before `b`: a lower leader epoch, or the same and a lower generation. */
function isOlder(
  a: { epoch: Epoch; generation: number },
  b: { epoch: Epoch; generation: number },
): boolean {
  return a.epoch < b.epoch || (a.epoch === b.epoch && a.generation < b.generation);
}

function asTenureError(error: unknown, what: string): TenureError {
  return isTenureError(error) ? error : new TaskFailedError(`${what} failed`, { cause: error });
}

/**
 * Sets the run-time item list of the pool `name` (for pools created without `items`): the
 * leader picks it up within one sync interval. Any process with an arbitrator may call it; it
 * does not join the pool.
 *
 * @throws {@link @tenure/core!InvalidArgumentError} for a bad name or item.
 */
export async function setPoolItems(
  arbitrator: Arbitrator,
  name: string,
  items: readonly string[],
): Promise<void> {
  const checked = resolvePoolOptions(name, { items }).items!;
  const election = arbitrator.election(membersElection(name));
  try {
    await election.post(ITEMS_KEY, encodeItems(checked));
  } finally {
    await election.close();
  }
}

/**
 * Reads a pool from outside without joining it: its leader, members and published
 * assignment; with `holders: true` also who holds each assigned item (one read per item).
 */
export async function readPool(
  arbitrator: Arbitrator,
  name: string,
  options: { holders?: boolean } = {},
): Promise<PoolSnapshot> {
  resolvePoolOptions(name, undefined);
  const election = arbitrator.election(membersElection(name));
  try {
    const candidates = await election.candidates();
    const members = liveMembers(candidates);
    const head = candidates[0];
    const value = head === undefined ? undefined : decodeMember(head.value);
    let assignment: Assignment | undefined;
    const published = value?.published;
    if (head !== undefined && published !== undefined) {
      if ('lists' in published) {
        assignment = toAssignment(head.epoch, published.generation, published.lists);
      } else {
        const stored = await election.get(ASSIGNMENT_KEY);
        const parsed = stored === undefined ? undefined : decodeStored(stored.value);
        if (parsed !== undefined) {
          assignment = toAssignment(parsed.epoch, parsed.generation, parsed.lists);
        }
      }
    }
    const snapshot: PoolSnapshot = { leader: value?.id, members, assignment };
    if (!options.holders) return snapshot;
    const holders = new Map<string, string>();
    for (const item of [...(assignment?.owners.keys() ?? [])]) {
      const holder = await arbitrator.leader(itemElection(name, item));
      if (holder !== undefined) holders.set(item, holder.value);
    }
    return { ...snapshot, holders };
  } finally {
    await election.close();
  }
}
