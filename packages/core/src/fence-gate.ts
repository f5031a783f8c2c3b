import { InvalidArgumentError, StaleEpochError } from './errors.js';
import type { Epoch } from './types.js';

/**
 * Where a {@link FenceGate} keeps the highest epoch admitted per scope. Implement it on the
 * resource's own storage (a database row updated in the same transaction as the write) so the
 * high-water mark survives restarts and is shared by every replica of the resource.
 */
export interface FenceStore {
  /** The highest epoch admitted for `scope`, or `undefined` if none yet. */
  get(scope: string): Promise<Epoch | undefined> | Epoch | undefined;
  /**
   * Atomically sets `scope` to `next` if its current value is still `expected` (`undefined`:
   * absent). Returns whether it did.
   */
  compareAndSet(
    scope: string,
    expected: Epoch | undefined,
    next: Epoch,
  ): Promise<boolean> | boolean;
}

/** A {@link FenceStore} in process memory (one replica, lost on restart). */
export class MemoryFenceStore implements FenceStore {
  readonly #marks = new Map<string, Epoch>();

  get(scope: string): Epoch | undefined {
    return this.#marks.get(scope);
  }

  compareAndSet(scope: string, expected: Epoch | undefined, next: Epoch): boolean {
    if (this.#marks.get(scope) !== expected) return false;
    this.#marks.set(scope, next);
    return true;
  }
}

/**
 * Guards a resource you own against deposed leaders (guarantee G2 at the resource): every
 * write carries its term's epoch; the gate admits epochs at least as high as the highest it has
 * seen for the scope and refuses lower ones with {@link StaleEpochError}. A paused leader that
 * wakes after a new leader has written is refused even though it still believes it leads.
 */
export class FenceGate {
  readonly #store: FenceStore;

  constructor(options: { store?: FenceStore } = {}) {
    this.#store = options.store ?? new MemoryFenceStore();
  }

  /**
   * Admits `epoch` for `scope` (raising the high-water mark if it is higher) or throws
   * {@link StaleEpochError}. Call it, and write, atomically with respect to other writers of
   * the same scope (e.g. in one transaction with a store backed by the same database).
   */
  async admit(epoch: Epoch, scope = 'default'): Promise<void> {
    if (typeof epoch !== 'bigint' || epoch < 0n) {
      throw new InvalidArgumentError(
        'epoch',
        `must be a non-negative bigint (got ${String(epoch)})`,
      );
    }
    for (;;) {
      const highest = await this.#store.get(scope);
      if (highest !== undefined && epoch < highest)
        throw new StaleEpochError(epoch, highest, scope);
      if (highest === epoch) return;
      if (await this.#store.compareAndSet(scope, highest, epoch)) return;
      // Another writer moved the mark between get and set: look again.
    }
  }

  /** The highest epoch admitted for `scope`. */
  async highest(scope = 'default'): Promise<Epoch | undefined> {
    return this.#store.get(scope);
  }
}
