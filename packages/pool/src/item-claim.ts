/**
 * One member's claim on one item: a candidacy in the item's own election, whose term is the
 * claim. Its epoch is the item's fencing token; a second holder is impossible by the item
 * election's G1 (at most one valid term), and a moved item is handed over only after the
 * handler settled (G10), by resigning.
 *
 * @packageDocumentation
 */

import {
  AbortedError,
  type Arbitrator,
  type Election,
  type Epoch,
  isTenureError,
  TaskFailedError,
  type TenureError,
  type Term,
} from '@tenure/core';
import { sleep } from '@tenure/core/internal';
import { itemElection } from './pool-codec.js';
import type { ItemHandler, ItemLease, ReleaseReason } from './types.js';

/**
 * - `campaigning`: in the item's queue, waiting for the previous holder to release (or its
 *   session to expire).
 * - `holding`: leading the item's election; the handler runs.
 * - `releasing`: the handler's signal has aborted; waiting for it to settle, then resigning.
 * - `closed`: out of the queue, election closed.
 */
export type ClaimState = 'campaigning' | 'holding' | 'releasing' | 'closed';

/** What a claim reports to its pool. */
export interface ClaimHooks {
  assigned(lease: ItemLease, waitedMs: number): void;
  released(item: string, token: Epoch, reason: ReleaseReason): void;
  error(error: TenureError): void;
  /** The arbitrator was closed under the claim (no point in trying again). */
  closed(): void;
}

/** Backoff after an unexpected campaign failure, ms. */
const RETRY_MS = 500;

/** The claim of one item by this member; starts campaigning at construction. */
export class ItemClaim {
  readonly item: string;
  #state: ClaimState = 'campaigning';
  #term: Term | undefined;
  /** Aborted when the claim is no longer wanted: the item moved or the member stops. */
  readonly #unwanted = new AbortController();
  #why: 'moved' | 'stopped' = 'moved';
  #election: Election | undefined;
  readonly #done: Promise<void>;

  /**
   * Starts campaigning once `after` has settled: the previous user of the item's election on
   * this arbitrator (an earlier claim still closing, a read) must have closed it, since an
   * arbitrator holds one candidacy per election.
   */
  constructor(
    private readonly arbitrator: Arbitrator,
    private readonly pool: string,
    item: string,
    private readonly memberId: string,
    private readonly handler: ItemHandler | undefined,
    private readonly hooks: ClaimHooks,
    private readonly now: () => number,
    after: Promise<void>,
  ) {
    this.item = item;
    this.#done = after.then(() => this.#run());
  }

  /** Resolves once the claim is closed (its election too). Never rejects. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** The item's election while this claim has it open, for reads of its stored values. */
  get election(): Election | undefined {
    return this.#state === 'closed' ? undefined : this.#election;
  }

  get state(): ClaimState {
    return this.#state;
  }

  /** `true` while the claim's term is valid. */
  get holds(): boolean {
    return this.#state === 'holding' && this.#term?.isValid() === true;
  }

  /**
   * Gives the item up: aborts the handler's signal, waits for it to settle (bounded by the
   * term's deadline), resigns and closes the item's election. Resolves once done.
   */
  release(why: 'moved' | 'stopped'): Promise<void> {
    if (!this.#unwanted.signal.aborted) {
      this.#why = why;
      this.#unwanted.abort(new AbortedError(`The claim on ${this.item} (${why})`));
    }
    return this.#done;
  }

  async #run(): Promise<void> {
    const unwanted = this.#unwanted.signal;
    if (unwanted.aborted) {
      this.#state = 'closed';
      return;
    }
    let election: Election;
    try {
      election = this.arbitrator.election(itemElection(this.pool, this.item), {
        value: this.memberId,
      });
    } catch (error) {
      this.#state = 'closed';
      if (isClosed(error)) this.hooks.closed();
      else this.hooks.error(asTenureError(error, `claiming item ${this.item}`));
      return;
    }
    this.#election = election;
    try {
      while (!unwanted.aborted) {
        const joined = this.now();
        let term: Term;
        try {
          term = await election.campaign({ signal: unwanted });
        } catch (error) {
          if (unwanted.aborted) break;
          if (isClosed(error)) {
            this.hooks.closed();
            break;
          }
          this.hooks.error(asTenureError(error, `campaign for item ${this.item}`));
          await sleep(RETRY_MS, { signals: [unwanted] }).catch(() => {});
          continue;
        }
        if (unwanted.aborted) break; // elected as the item moved away: hand it on at once
        await this.#hold(term, this.now() - joined);
      }
    } finally {
      this.#state = 'closed';
      // close() resigns a term still held (deleting the key: the next holder's campaign
      // resolves) and withdraws a waiting candidacy.
      await election.close().catch((error: unknown) => {
        this.hooks.error(asTenureError(error, `closing the claim on ${this.item}`));
      });
      const term = this.#term;
      if (term !== undefined && this.#reported !== term) {
        this.#reported = term;
        this.hooks.released(this.item, term.epoch, this.#why);
      }
    }
  }

  /** The term whose release was reported. */
  #reported: Term | undefined;

  /** Runs the handler for one term until the term ends or the claim is unwanted. */
  async #hold(term: Term, waitedMs: number): Promise<void> {
    this.#term = term;
    this.#state = 'holding';
    const signal = AbortSignal.any([term.signal, this.#unwanted.signal]);
    const lease: ItemLease = { item: this.item, token: term.epoch, signal, term };
    this.hooks.assigned(lease, waitedMs);
    const work = this.#runHandler(lease);
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    this.#state = 'releasing';
    if (term.endReason !== undefined) {
      // The term ended by itself (deadline, session, key deleted): another member may hold the
      // item already. Wait for the handler in full before campaigning again, so this member
      // never runs two handlers of one item.
      await work;
      this.#reported = term;
      this.hooks.released(this.item, term.epoch, term.endReason);
      this.#state = 'campaigning';
      return;
    }
    // Unwanted: hand over after the handler has settled (G10), at the latest at the term's
    // deadline, past which the term is invalid anyway.
    const remaining = term.remainingMs();
    if (remaining > 0) {
      await Promise.race([work, sleep(remaining, { signals: [term.signal] }).catch(() => {})]);
    }
  }

  async #runHandler(lease: ItemLease): Promise<void> {
    if (this.handler === undefined) return;
    try {
      await this.handler(lease);
    } catch (error) {
      if (lease.signal.aborted && isTenureError(error) && error.code === 'ABORTED') return;
      this.hooks.error(
        new TaskFailedError(`The handler of item ${this.item} threw`, { cause: error }),
      );
    }
  }
}

/** The election or its arbitrator was closed: nothing to retry. */
function isClosed(error: unknown): boolean {
  return isTenureError(error) && error.code === 'CLOSED';
}

function asTenureError(error: unknown, what: string): TenureError {
  return isTenureError(error) ? error : new TaskFailedError(`${what} failed`, { cause: error });
}
