/**
 * The pool leader's assignment: pure, deterministic, weighted and sticky. No I/O.
 *
 * @packageDocumentation
 */

/** A live member as the assignment sees it. */
export interface MemberWeight {
  /** The member's id (unique in the pool). */
  readonly id: string;
  /** Its capacity: a positive integer. */
  readonly weight: number;
}

/** What {@link computeAssignment} returns. */
export interface AssignmentPlan {
  /** Item → member id, for every item. Empty when there is no member. */
  readonly owners: ReadonlyMap<string, string>;
  /** Member id → how many items it may hold: ⌊share⌋ or ⌊share⌋ + 1, share = items × weight / Σ weights. */
  readonly quotas: ReadonlyMap<string, number>;
  /** Items taken from a live member that held them before (each a release then a claim). */
  readonly moved: number;
  /** Items without a live previous owner (new items, or a departed member's) now given one. */
  readonly placed: number;
}

/**
 * Assigns `items` to `members` balanced by weight and sticky to `previous` (item → member id):
 *
 * - **balance**: each member gets ⌊s⌋ or ⌊s⌋ + 1 items, where s = items × weight / Σ weights
 *   (its ideal share), so it is always within one item of it. The extra items go first to
 *   members that already hold more than ⌊s⌋ (fewer moves), then to the larger fractional
 *   shares, then by id.
 * - **stickiness**: a live member keeps its previous items up to its quota (the first ones in
 *   item order); only the excess of members over their quota moves, plus the items that have no
 *   live owner. That is the fewest moves any assignment with these quotas can make:
 *   `moved = Σ max(0, kept − quota)`. With equal weights a joining member takes at most
 *   ⌈items / (N + 1)⌉ items and a leaving member's items go to the others without moving
 *   anything else.
 * - **determinism**: the same inputs give the same plan, whatever their order.
 *
 * Weights must be positive integers (the arithmetic is exact); items and member ids unique.
 */
export function computeAssignment(
  items: readonly string[],
  members: readonly MemberWeight[],
  previous: ReadonlyMap<string, string> = new Map(),
): AssignmentPlan {
  const sortedItems = [...new Set(items)].sort(compare);
  const sortedMembers = [...members].sort((a, b) => compare(a.id, b.id));
  const owners = new Map<string, string>();
  const quotas = new Map<string, number>();
  if (sortedMembers.length === 0) return { owners, quotas, moved: 0, placed: 0 };

  // What each live member held before, in item order.
  const held = new Map<string, string[]>(sortedMembers.map((m) => [m.id, []]));
  for (const item of sortedItems) {
    const owner = previous.get(item);
    if (owner !== undefined) held.get(owner)?.push(item);
  }

  // Quotas: ⌊n·w/W⌋ with the remainder handed out one by one (exact integer arithmetic).
  const n = sortedItems.length;
  const total = sortedMembers.reduce((sum, m) => sum + m.weight, 0);
  let remainder = n;
  const shares = sortedMembers.map((m) => {
    const floor = Math.floor((n * m.weight) / total);
    remainder -= floor;
    return {
      id: m.id,
      floor,
      fraction: (n * m.weight) % total,
      keeps: held.get(m.id)!.length > floor,
    };
  });
  const byPriority = [...shares].sort(
    (a, b) => Number(b.keeps) - Number(a.keeps) || b.fraction - a.fraction || compare(a.id, b.id),
  );
  for (const share of shares) quotas.set(share.id, share.floor);
  for (let i = 0; i < remainder; i += 1) {
    const share = byPriority[i]!;
    quotas.set(share.id, share.floor + 1);
  }

  // Keep what each member may keep; everything else is free.
  const counts = new Map<string, number>();
  let moved = 0;
  for (const [id, list] of held) {
    const quota = quotas.get(id)!;
    for (const item of list.slice(0, quota)) owners.set(item, id);
    counts.set(id, Math.min(list.length, quota));
    moved += Math.max(0, list.length - quota);
  }
  let placed = 0;
  for (const item of sortedItems) {
    if (owners.has(item)) continue;
    if (!held.has(previous.get(item) ?? '\u0000')) placed += 1;
    // The member furthest below its quota takes it (ties: by id), which spreads the free
    // items evenly instead of filling one member first.
    let best: string | undefined;
    let bestGap = 0;
    for (const m of sortedMembers) {
      const gap = quotas.get(m.id)! - counts.get(m.id)!;
      if (gap > bestGap) {
        best = m.id;
        bestGap = gap;
      }
    }
    // Σ quotas = n, so a member below its quota always exists here.
    owners.set(item, best!);
    counts.set(best!, counts.get(best!)! + 1);
  }
  return { owners, quotas, moved, placed };
}

/** Code-unit order, the same on every machine (localeCompare is not). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
