/**
 * The nemesis's source of randomness: a small seeded generator, so one seed replays the same
 * fault schedule (the same kinds, targets, durations and phases) on every run.
 *
 * @packageDocumentation
 */

/** A deterministic pseudo-random generator (mulberry32 over a 32-bit state). */
export class SeededRandom {
  #state: number;

  /** Starts the sequence of `seed` (any integer; only its low 32 bits count). */
  constructor(seed: number) {
    if (!Number.isInteger(seed)) {
      throw new RangeError(`SeededRandom: seed must be an integer (got ${String(seed)})`);
    }
    this.#state = seed >>> 0;
  }

  /** The next number in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }

  /** An integer in [min, max] (both included). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** A number in [min, max). */
  between(min: number, max: number): number {
    return min + this.next() * (max - min);
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('SeededRandom.pick: no items to pick from');
    return items[Math.floor(this.next() * items.length)]!;
  }
}
