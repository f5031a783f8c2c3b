/**
 * The nemesis's fault kinds, and which arbitrator each applies to.
 *
 * @packageDocumentation
 */

/** The arbitrators the nemesis runs on. */
export type NemesisArbitrator = 'etcd' | 'zk';

/**
 * Every fault the nemesis can inject. Candidate faults: `kill-leader`, `kill-follower` (SIGKILL,
 * then a new process), `kill-elected` (the leader resigns; its successor is SIGKILLed the moment
 * it reports `elected`), `pause-leader` (SIGSTOP at a random phase of the renewal interval, so
 * some stops land during a renewal, then SIGCONT), `pause-elected`, `pause-follower`. Network
 * between candidates and servers (the testkit TCP proxy): `blackhole-leader`,
 * `blackhole-follower` (cut, then restore and reset), `reset-leader` (RST every connection),
 * `double-reset-watch` (the leader resigns; every waiting candidate's connections are reset twice
 * within ~150 ms, around the moment its watch is re-created), `lost-create-reply` (a candidate
 * resigns and rejoins; its connections are cut the moment its rejoin is sent, so the create's
 * reply is lost when the create reached the server first: approximate, the proxy cannot see
 * requests). Operator: `delete-leader-key`, `expire-session` (ZooKeeper), `compaction` (etcd:
 * compaction to the current revision every 100 ms during a window with a handover in it).
 * Servers: `kill-member`, `kill-arbitrator-leader` (SIGKILL, down a while, restart),
 * `restart-cluster` (every member down at once, then up). Server-to-server partitions (clients
 * stay connected to every member): `isolate-arbitrator-leader` (the raft or ZooKeeper leader
 * cut off from the other members), `isolate-member` (a follower cut off),
 * `isolate-leaders-member` (the member the leading candidate is connected to, whichever it is:
 * a renewal answered by a member cut off from the authority that expires sessions),
 * `split-cluster` (a random minority apart from the majority: 2 + 3 on five members, 1 + 2 on
 * three); each held 1 to 3 TTLs, longer than a ZooKeeper follower's `syncLimit`, then healed.
 */
export const FAULT_KINDS = [
  'kill-leader',
  'kill-elected',
  'kill-follower',
  'pause-leader',
  'pause-elected',
  'pause-follower',
  'blackhole-leader',
  'blackhole-follower',
  'reset-leader',
  'double-reset-watch',
  'lost-create-reply',
  'delete-leader-key',
  'expire-session',
  'compaction',
  'kill-member',
  'kill-arbitrator-leader',
  'restart-cluster',
  'isolate-arbitrator-leader',
  'isolate-member',
  'isolate-leaders-member',
  'split-cluster',
] as const;

/** One of {@link FAULT_KINDS}. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The kinds that apply to `arbitrator` (session expiry is ZooKeeper's, compaction etcd's). */
export function faultKindsFor(arbitrator: NemesisArbitrator): FaultKind[] {
  return FAULT_KINDS.filter((kind) =>
    arbitrator === 'etcd' ? kind !== 'expire-session' : kind !== 'compaction',
  );
}

/**
 * The kinds the CI schedule leaves out, per arbitrator, each with the open bug it still trips;
 * a kind returns to the CI schedule when its fix lands. The long schedule (`npm run nemesis`)
 * runs every kind. Empty since the fixes of issues 11 §2 (a deleted leader key), 18 §1 (a watch
 * across two quick resets) and 18 §2 (compaction at a delete) landed.
 */
export const KNOWN_FAILING: Readonly<
  Record<NemesisArbitrator, Readonly<Partial<Record<FaultKind, string>>>>
> = { etcd: {}, zk: {} };

/** The kinds the CI schedule runs on `arbitrator`: all that apply, minus {@link KNOWN_FAILING}. */
export function ciFaultKinds(arbitrator: NemesisArbitrator): FaultKind[] {
  return faultKindsFor(arbitrator).filter((kind) => !(kind in KNOWN_FAILING[arbitrator]));
}

/** Throws a `RangeError` naming the kind that is not a fault of `arbitrator`. */
export function assertFaultKinds(
  arbitrator: NemesisArbitrator,
  kinds: readonly string[],
): asserts kinds is readonly FaultKind[] {
  const allowed = faultKindsFor(arbitrator) as readonly string[];
  for (const kind of kinds) {
    if (!allowed.includes(kind)) {
      throw new RangeError(
        `nemesis: kinds: "${kind}" is not a fault on ${arbitrator} (one of ${allowed.join(', ')})`,
      );
    }
  }
  if (kinds.length === 0) throw new RangeError('nemesis: kinds: give at least one fault kind');
}
