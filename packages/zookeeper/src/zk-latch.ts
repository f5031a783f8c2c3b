// The layout of Curator's LeaderLatch, which tenure's ZooKeeper elections share.

/** Curator's LeaderLatch node name: `_c_<uuid>-latch-<10-digit sequence>`. */
export const LATCH = /latch-(-?\d+)$/;

/** A child of the latch path that is a candidate, with its parsed sequence. */
export interface Child {
  readonly name: string;
  readonly sequence: number;
}

/**
 * Orders latch children by sequence. The sequence is the parent's cversion, a signed 32-bit
 * counter: after it wraps, new nodes have negative numbers, which are then the newest.
 */
export function sortChildren(names: readonly string[]): Child[] {
  const children: Child[] = [];
  for (const name of names) {
    const match = LATCH.exec(name);
    if (match) children.push({ name, sequence: Number(match[1]) });
  }
  const wrapped =
    children.some((c) => c.sequence < -(2 ** 30)) && children.some((c) => c.sequence > 2 ** 30);
  const rank = (c: Child) => (wrapped && c.sequence < 0 ? c.sequence + 2 ** 32 : c.sequence);
  return children.sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1));
}
