/**
 * An independent witness of fenced writes to many resources (work items, partitions): per
 * resource it refuses a token lower than the highest it has accepted, as a `FenceGate` would,
 * and it keeps every write with the monotonic instant it was made, so that two holders writing
 * to one resource at the same time show as overlapping intervals of different tokens.
 *
 * @packageDocumentation
 */

/** One write to a resource: who made it, under which token, and when (monotonic ms). */
export interface WitnessedWrite {
  readonly holder: string;
  readonly token: bigint;
  readonly at: number;
}

/** Per resource: the writes it accepted, and those it refused (a token below the highest seen). */
export class TokenWitness {
  /** The accepted writes of each resource, in arrival order. */
  readonly accepted = new Map<string, WitnessedWrite[]>();
  /** Every refused write, with its resource. */
  readonly refused: { resource: string; write: WitnessedWrite }[] = [];
  readonly #highest = new Map<string, bigint>();
  /** Every write, accepted or not: the overlap check looks at when they were made. */
  readonly #all = new Map<string, WitnessedWrite[]>();

  /** Records `write` to `resource`; `false` when its token is below the highest accepted one. */
  write(resource: string, write: WitnessedWrite): boolean {
    const all = this.#all.get(resource) ?? [];
    all.push(write);
    this.#all.set(resource, all);
    const highest = this.#highest.get(resource);
    if (highest !== undefined && write.token < highest) {
      this.refused.push({ resource, write });
      return false;
    }
    this.#highest.set(resource, write.token);
    const list = this.accepted.get(resource) ?? [];
    list.push(write);
    this.accepted.set(resource, list);
    return true;
  }

  /**
   * Two tokens of one resource whose writes (refused ones included) interleave in time: two
   * holders at once. One line per pair of consecutive tokens that overlap; `[]` when none do.
   */
  overlaps(): string[] {
    const found: string[] = [];
    for (const [resource, writes] of this.#all) {
      const spans = new Map<bigint, { from: number; to: number; holder: string }>();
      for (const w of writes) {
        const s = spans.get(w.token);
        if (s === undefined) spans.set(w.token, { from: w.at, to: w.at, holder: w.holder });
        else {
          s.from = Math.min(s.from, w.at);
          s.to = Math.max(s.to, w.at);
        }
      }
      const sorted = [...spans].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (let i = 1; i < sorted.length; i += 1) {
        const [ta, a] = sorted[i - 1]!;
        const [tb, b] = sorted[i]!;
        if (a.to >= b.from) {
          found.push(
            `${resource}: ${a.holder}@${ta} wrote until ${a.to}, ${b.holder}@${tb} from ${b.from}`,
          );
        }
      }
    }
    return found;
  }
}
