/**
 * A real ZooKeeper ensemble (a quorum of servers) for tests, built from {@link ZooKeeperNode}s
 * on loopback ports: find the leader, kill members, or take the whole ensemble down and up again.
 *
 * @packageDocumentation
 */

import { sleep } from '@tenure/core/internal';
import { allocateLoopbackPorts, releaseLoopbackPorts } from './loopback-ports.js';
import { waitAllReady } from './managed-server.js';
import { ClusterPartitions, type PartitionOptions, PeerPartitions } from './peer-partition.js';
import { Timing } from './timing.js';
import { fourLetterWord, parseZooKeeperMode } from './zookeeper-four-letter-word.js';
import { ZooKeeperLauncherError } from './zookeeper-launcher-error.js';
import {
  isExitedEarly,
  type ResolvedZooKeeperOptions,
  resolveZooKeeperOptions,
  ZOOKEEPER_START_ATTEMPTS,
  type ZooKeeperMemberSpec,
  type ZooKeeperNode,
  type ZooKeeperOptions,
  ZooKeeperProcess,
} from './zookeeper-node.js';

/** Options of {@link startZooKeeperEnsemble}. */
export interface ZooKeeperEnsembleOptions extends ZooKeeperOptions {
  /**
   * Put partition gateways (TCP proxies on 127.0.0.1) in front of every member's quorum and
   * election ports, and give each member a `zoo.cfg` whose *other* `server.<id>` lines name
   * those gateways, so that {@link ZooKeeperEnsemble.partition},
   * {@link ZooKeeperEnsemble.isolate} and {@link ZooKeeperEnsemble.heal} can cut members apart
   * while their clients stay connected. Quorum traffic then passes through this process: a
   * test that blocks its event loop for long delays the ensemble's pings. Default `false`.
   */
  partitionable?: boolean;
}

/**
 * A member of a {@link ZooKeeperEnsemble}: its node, or its id, 1 … size (`zk-<id>`,
 * `members[id - 1]`).
 */
export type ZooKeeperEnsembleMember = number | ZooKeeperNode;

/** Options of {@link ZooKeeperEnsemble.leader}. */
export interface ZooKeeperLeaderOptions {
  /**
   * How long to wait for a leader, ms. Default: 4 × (`initLimit` + `syncLimit`) ticks, at least
   * 20 s, scaled by `TENURE_TIMING_FACTOR`.
   */
  timeoutMs?: number;
}

/** A real ZooKeeper ensemble started by {@link startZooKeeperEnsemble}. */
export interface ZooKeeperEnsemble extends AsyncDisposable {
  /** The members, named `zk-1` … `zk-<size>` with ids 1 … size, in that order. */
  readonly members: readonly ZooKeeperNode[];
  /** Every member's `127.0.0.1:<clientPort>`, comma-separated: the ensemble's connect string. */
  readonly connectString: string;
  /**
   * Resolves with the member that leads: a running (not paused) member whose `srvr` reports
   * `Mode: leader` and whose `mntr` counts enough synced followers to make a quorum, so a leader
   * that has lost its followers but not yet noticed is never returned (of two such claims, the
   * one with the newer epoch wins). Under a partition a claimant also needs a quorum of
   * members on its side. Polls until `timeoutMs`, then rejects with code `NO_LEADER`.
   */
  leader(options?: ZooKeeperLeaderOptions): Promise<ZooKeeperNode>;
  /**
   * Cuts the ensemble into `groups`: members in different groups cannot reach each other (in
   * both directions, quorum and election connections alike, whichever side dialed); a member
   * named in no group still reaches every member. Clients keep their connections to every
   * member. Replaces any earlier partition, and outlives member restarts until
   * {@link ZooKeeperEnsemble.heal}. Needs an ensemble started with `partitionable: true`.
   * Examples: `partition([[1, 2], [3, 4, 5]])` splits five members 2 + 3;
   * `partition([[await ensemble.leader()], [2, 3]])`.
   *
   * A follower cut off from the leader keeps serving its clients' reads and pings until it
   * gives up on the leader after `syncLimit` ticks, while the leader, which alone expires
   * sessions, hears nothing of those sessions and expires them after their timeout.
   *
   * @throws {@link ZooKeeperLauncherError} `ILLEGAL_STATE` without `partitionable`, after
   *   `stop()`, or for a member that is not in the ensemble.
   */
  partition(
    groups: readonly (readonly ZooKeeperEnsembleMember[])[],
    options?: PartitionOptions,
  ): Promise<void>;
  /**
   * Cuts `member` off from every other member (`partition([[member], [every other]])`), e.g.
   * the leader (`isolate(await ensemble.leader())`) or a follower. Its clients stay connected
   * to it.
   */
  isolate(member: ZooKeeperEnsembleMember, options?: PartitionOptions): Promise<void>;
  /** Ends every partition: every member reaches every member again. A no-op when none is set. */
  heal(): Promise<void>;
  /**
   * A whole-ensemble crash: SIGKILLs every running (or paused) member at once and resolves once
   * every process is gone, keeping ports and data for {@link ZooKeeperEnsemble.startAll}.
   */
  killAll(): Promise<void>;
  /**
   * A whole-ensemble outage: stops every running member gracefully (SIGTERM, SIGKILL after
   * 5 s), all at once, keeping ports and data for {@link ZooKeeperEnsemble.startAll}.
   */
  stopAll(): Promise<void>;
  /**
   * Starts every member that is not running, on its old ports and data (so znodes and, within
   * their timeout, sessions survive), and resolves once every member serves and a leader is
   * found.
   */
  startAll(): Promise<void>;
  /** Stops every member and removes its data. Idempotent: every call shares one promise. */
  stop(): Promise<void>;
  /** The same as {@link ZooKeeperEnsemble.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A member's claim to lead, from its `srvr` and `mntr` answers. */
interface LeaderClaim {
  readonly node: ZooKeeperProcess;
  /** The epoch it leads in. */
  readonly epoch: bigint;
  /** `zk_synced_followers` of its `mntr`. */
  readonly syncedFollowers: number;
}

class LaunchedZooKeeperEnsemble implements ZooKeeperEnsemble {
  readonly members: readonly ZooKeeperProcess[];
  readonly connectString: string;
  readonly #options: ResolvedZooKeeperOptions;
  readonly #partitions: ClusterPartitions<ZooKeeperProcess>;
  #stopping: Promise<void> | undefined;

  constructor(
    members: readonly ZooKeeperProcess[],
    options: ResolvedZooKeeperOptions,
    gateways: PeerPartitions | undefined,
  ) {
    this.members = members;
    this.connectString = members.map((node) => node.connectString).join(',');
    this.#options = options;
    this.#partitions = new ClusterPartitions(
      members,
      gateways,
      'ensemble',
      (message) => new ZooKeeperLauncherError('ILLEGAL_STATE', message),
    );
  }

  async partition(
    groups: readonly (readonly ZooKeeperEnsembleMember[])[],
    options: PartitionOptions = {},
  ): Promise<void> {
    this.#assertNotStopped('partition');
    this.#partitions.partition(
      groups as readonly (readonly (number | ZooKeeperProcess)[])[],
      options,
    );
  }

  async isolate(member: ZooKeeperEnsembleMember, options: PartitionOptions = {}): Promise<void> {
    this.#assertNotStopped('isolate');
    this.#partitions.isolate(member as number | ZooKeeperProcess, options);
  }

  async heal(): Promise<void> {
    this.#assertNotStopped('heal');
    this.#partitions.heal();
  }

  async leader(options: ZooKeeperLeaderOptions = {}): Promise<ZooKeeperNode> {
    const o = this.#options;
    const timeoutMs =
      options.timeoutMs ??
      new Timing(1_000).scale(Math.max(20_000, 4 * (o.initLimit + o.syncLimit) * o.tickTimeMs));
    const quorum = Math.floor(this.members.length / 2) + 1;
    const started = performance.now();
    let seen: LeaderClaim[] = [];
    for (;;) {
      this.#assertNotStopped('leader');
      seen = await this.#claims();
      // Under a partition, a claimant needs a quorum on its own side too: a cut-off leader
      // still counts its old followers as synced until syncLimit passes.
      const valid = seen
        .filter(
          (claim) =>
            claim.syncedFollowers + 1 >= quorum &&
            this.members.filter((node) => this.#partitions.reach(node, claim.node)).length >=
              quorum,
        )
        .sort((a, b) => (a.epoch > b.epoch ? -1 : a.epoch < b.epoch ? 1 : 0));
      if (valid[0] !== undefined) return valid[0].node;
      if (performance.now() - started > timeoutMs) break;
      await sleep(50);
    }
    const report =
      seen.length === 0
        ? 'no member reported Mode: leader'
        : seen
            .map(
              (claim) =>
                `${claim.node.name} claims to lead epoch ${claim.epoch} with ${claim.syncedFollowers} synced followers`,
            )
            .join('; ');
    throw new ZooKeeperLauncherError(
      'NO_LEADER',
      `No leader with a quorum of ${quorum} of ${this.members.length} members within ${timeoutMs} ms (${report}; ` +
        `states: ${this.members.map((node) => `${node.name} ${node.state}`).join(', ')})`,
    );
  }

  async killAll(): Promise<void> {
    this.#assertNotStopped('killAll');
    await Promise.all(this.members.map((node) => node.kill('SIGKILL')));
  }

  async stopAll(): Promise<void> {
    this.#assertNotStopped('stopAll');
    await Promise.all(this.members.map((node) => node.halt()));
  }

  async startAll(): Promise<void> {
    this.#assertNotStopped('startAll');
    const down = this.members.filter((node) => node.state === 'exited');
    await Promise.all(down.map((node) => node.launch()));
    await waitAllReady(
      this.members.filter((node) => node.state === 'starting' || node.state === 'running'),
    );
    await this.leader();
  }

  stop(): Promise<void> {
    this.#stopping ??= Promise.all(this.members.map((node) => node.stop()))
      .then(() => {})
      .finally(() => this.#partitions.close());
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #claims(): Promise<LeaderClaim[]> {
    const live = this.members.filter((node) => node.state === 'running');
    const answers = await Promise.all(live.map((node) => leaderClaim(node)));
    return answers.filter((claim): claim is LeaderClaim => claim !== undefined);
  }

  #assertNotStopped(call: string): void {
    if (this.#stopping !== undefined) {
      throw new ZooKeeperLauncherError('ILLEGAL_STATE', `${call}: the ensemble has been stopped`);
    }
  }
}

/**
 * Starts a `size`-member ZooKeeper ensemble (default 3) on loopback: each member with its own
 * client, quorum and election ports (free ones), its own temporary directory with a `myid` file,
 * and `server.<id>=127.0.0.1:<quorum>:<election>;127.0.0.1:<client>` lines (with
 * `partitionable: true`, the other members' lines name their partition gateways). Resolves
 * once every member serves as leader or follower and the leader has a quorum. Retries with new
 * ports when one was taken meanwhile; rejects like {@link startZooKeeper}, stopping whatever it
 * started. Use it with `await using ensemble = await startZooKeeperEnsemble()`.
 */
export async function startZooKeeperEnsemble(
  size = 3,
  options: ZooKeeperEnsembleOptions = {},
): Promise<ZooKeeperEnsemble> {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(
      `startZooKeeperEnsemble: size must be a positive integer (got ${String(size)})`,
    );
  }
  const resolved = resolveZooKeeperOptions(options);
  const partitionable = options.partitionable ?? false;
  // client, quorum, election, and with gateways: quorum gateway, election gateway.
  const perMember = partitionable ? 5 : 3;
  for (let attempt = 1; ; attempt += 1) {
    const ports = await allocateLoopbackPorts(perMember * size);
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const port = (id: number, which: 0 | 1 | 2 | 3 | 4) => ports[perMember * (id - 1) + which]!;
    const gateway = (id: number, which: 1 | 2) =>
      partitionable ? port(id, which === 1 ? 3 : 4) : port(id, which);
    // Member `self` binds the ports of its own line; it reaches the others through theirs.
    const serverLines = (self: number) =>
      ids.map((id) => {
        const quorum = id === self ? port(id, 1) : gateway(id, 1);
        const election = id === self ? port(id, 2) : gateway(id, 2);
        return `server.${id}=127.0.0.1:${quorum}:${election}:participant;127.0.0.1:${port(id, 0)}`;
      });
    const specs: ZooKeeperMemberSpec[] = ids.map((id) => ({
      id,
      name: `zk-${id}`,
      clientPort: port(id, 0),
      peers: { quorumPort: port(id, 1), electionPort: port(id, 2), serverLines: serverLines(id) },
    }));
    const gatewayPorts = partitionable ? ids.flatMap((id) => [port(id, 3), port(id, 4)]) : [];
    const created = await Promise.allSettled(
      specs.map((spec) => ZooKeeperProcess.create(spec, resolved)),
    );
    const nodes = created
      .filter((r): r is PromiseFulfilledResult<ZooKeeperProcess> => r.status === 'fulfilled')
      .map((r) => r.value);
    const failed = created.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(nodes.map((node) => node.discard(false)));
      releaseLoopbackPorts(ports);
      throw failed.reason;
    }
    let partitions: PeerPartitions | undefined;
    try {
      if (partitionable) {
        partitions = await PeerPartitions.start(
          nodes,
          ids.flatMap((id) => [
            { port: port(id, 3), member: id, targetPort: port(id, 1) },
            { port: port(id, 4), member: id, targetPort: port(id, 2) },
          ]),
        );
      }
      const ensemble = new LaunchedZooKeeperEnsemble(nodes, resolved, partitions);
      // Members wait for each other's election ports, so all must run before any can serve.
      await Promise.all(nodes.map((node) => node.launch()));
      await waitAllReady(nodes);
      await ensemble.leader();
      return ensemble;
    } catch (error) {
      const retry =
        attempt < ZOOKEEPER_START_ATTEMPTS &&
        ((isExitedEarly(error) && nodes.some((node) => node.failedToBind())) ||
          (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE');
      await Promise.all(nodes.map((node) => node.discard(!retry)));
      await partitions?.close();
      releaseLoopbackPorts(gatewayPorts);
      if (!retry) throw error;
    }
  }
}

/** `node`'s claim to lead, or `undefined` when it does not claim to (or does not answer). */
async function leaderClaim(node: ZooKeeperProcess): Promise<LeaderClaim | undefined> {
  const address = { host: '127.0.0.1', port: node.clientPort };
  try {
    const srvr = await fourLetterWord(address, 'srvr', { timeoutMs: 1_000 });
    if (parseZooKeeperMode(srvr) !== 'leader') return undefined;
    // From the data directory: srvr's Zxid is the last transaction processed, not the epoch.
    const epoch = node.currentEpoch();
    const mntr = await fourLetterWord(address, 'mntr', { timeoutMs: 1_000 });
    const synced = /^zk_synced_followers\s+(\d+)\s*$/m.exec(mntr)?.[1];
    // A leader that stopped serving between the two answers has no such line.
    if (synced === undefined) return undefined;
    return { node, epoch: epoch ?? 0n, syncedFollowers: Number(synced) };
  } catch {
    return undefined;
  }
}
