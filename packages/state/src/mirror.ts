import type { Clock, StateEvent, StateToken } from '@tenure/core';

const MAX_PENDING_HEADS = 64;

interface TokenWaiter {
  readonly token: StateToken;
  readonly resolve: () => void;
}

/**
 * A replica's copy of one map, fed by the backend's subscription: the entries at
 * {@link Mirror.token}, and when it was last *known current*: the send time of the last head
 * read (a linearizable read of the token of the map's last write) whose token the mirror has
 * reached. Every write the mirror lacks was acknowledged after that moment, so the time since it
 * bounds the mirror's lag from above, whatever happened to the subscription.
 */
export class Mirror {
  readonly entries = new Map<string, string>();
  readonly #clock: Clock;
  #token: StateToken | undefined;
  #currentAt: number | undefined;
  #waiters: TokenWaiter[] = [];
  /** Head reads the mirror has not reached yet: their token and send time. */
  #heads: { token: StateToken; sentAt: number }[] = [];
  /** Called after each applied event with the keys it changed (`undefined`: a snapshot). */
  onApplied: (changed: readonly string[] | undefined, token: StateToken) => void = () => {};

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The token the mirror has reached, `undefined` before its first snapshot. */
  get token(): StateToken | undefined {
    return this.#token;
  }

  /** Milliseconds since the mirror was last known current (`Infinity`: never yet). */
  stalenessMs(): number {
    return this.#currentAt === undefined
      ? Number.POSITIVE_INFINITY
      : Math.max(0, this.#clock.now() - this.#currentAt);
  }

  /** Whether the mirror has applied every write with a token ≤ `token`. */
  reached(token: StateToken): boolean {
    return this.#token !== undefined && this.#token >= token;
  }

  /** Applies one event of the subscription (events at or below the mirror's token are ignored). */
  apply(event: StateEvent): void {
    if (this.#token !== undefined && event.token <= this.#token) {
      // A snapshot at the same token repeats what the mirror holds.
      return;
    }
    let changed: string[] | undefined;
    if (event.kind === 'snapshot') {
      this.entries.clear();
      for (const [key, value] of event.entries) this.entries.set(key, value);
    } else {
      changed = [];
      for (const change of event.changes) {
        if (change.value === undefined) this.entries.delete(change.key);
        else this.entries.set(change.key, change.value);
        changed.push(change.key);
      }
    }
    this.#token = event.token;
    this.#settleHeads();
    this.onApplied(changed, event.token);
    const ready = this.#waiters.filter((w) => w.token <= event.token);
    if (ready.length > 0) {
      this.#waiters = this.#waiters.filter((w) => w.token > event.token);
      for (const waiter of ready) waiter.resolve();
    }
  }

  /**
   * Records a head read sent at `sentAt` that answered `token`: the mirror is current as of
   * `sentAt` once it has reached `token` (at once if it has).
   */
  noteHead(token: StateToken, sentAt: number): void {
    this.#heads.push({ token, sentAt });
    // A mirror that stays behind (a black-holed subscription) must not grow this without end:
    // forgetting the oldest reads only ever makes the mirror look staler, never fresher.
    if (this.#heads.length > MAX_PENDING_HEADS) this.#heads.shift();
    this.#settleHeads();
  }

  /** Calls `resolve` once the mirror reaches `token`; returns a function that forgets it. */
  whenReached(token: StateToken, resolve: () => void): () => void {
    if (this.reached(token)) {
      resolve();
      return () => {};
    }
    const waiter: TokenWaiter = { token, resolve };
    this.#waiters.push(waiter);
    return () => {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
    };
  }

  #settleHeads(): void {
    if (this.#token === undefined) return;
    const token = this.#token;
    const kept: { token: StateToken; sentAt: number }[] = [];
    for (const head of this.#heads) {
      if (head.token <= token) {
        if (this.#currentAt === undefined || head.sentAt > this.#currentAt) {
          this.#currentAt = head.sentAt;
        }
      } else {
        kept.push(head);
      }
    }
    this.#heads = kept;
  }
}
