/**
 * A real multi-member etcd cluster for tests, built from {@link EtcdNode}s on loopback ports:
 * find the raft leader, kill members, or take the whole cluster down and up again.
 *
 * @packageDocumentation
 */

import { sleep } from '@tenure/core/internal';
import { EtcdLauncherError } from './etcd-launcher-error.js';
import {
  clusterToken,
  type EtcdMemberSpec,
  type EtcdNode,
  type EtcdOptions,
  EtcdProcess,
  isAddressInUse,
  type ResolvedEtcdOptions,
  resolveEtcdOptions,
  START_ATTEMPTS,
} from './etcd-node.js';
import { requestJson } from './http-json-request.js';
import { allocateLoopbackPorts, releaseLoopbackPorts } from './loopback-ports.js';
import { waitAllReady } from './managed-server.js';
import { ClusterPartitions, type PartitionOptions, PeerPartitions } from './peer-partition.js';
import { Timing } from './timing.js';

/** Options of {@link startEtcdCluster}. */
export interface EtcdClusterOptions extends EtcdOptions {
  /**
   * Put a partition gateway (a TCP proxy on 127.0.0.1) in front of every member's peer port
   * and have the members reach each other through them, so that
   * {@link EtcdCluster.partition}, {@link EtcdCluster.isolate} and {@link EtcdCluster.heal} can
   * cut members apart while their clients stay connected. Raft traffic then passes through
   * this process: a test that blocks its event loop for long delays the cluster's heartbeats.
   * Default `false`.
   */
  partitionable?: boolean;
}

/**
 * A member of an {@link EtcdCluster}: its node, or its number, 1 … size (`etcd-<number>`,
 * `nodes[number - 1]`).
 */
export type EtcdClusterMember = number | EtcdNode;

/** Options of {@link EtcdCluster.leader}. */
export interface EtcdLeaderOptions {
  /**
   * How long to wait for a leader, ms. Default: 10 × the election timeout, at least 10 s,
   * scaled by `TENURE_TIMING_FACTOR`.
   */
  timeoutMs?: number;
}

/** A real etcd cluster started by {@link startEtcdCluster}. */
export interface EtcdCluster extends AsyncDisposable {
  /** The members, named `etcd-1` … `etcd-<size>`, in that order. */
  readonly nodes: readonly EtcdNode[];
  /** Every member's client URL, in the order of {@link EtcdCluster.nodes}. */
  readonly endpoints: readonly string[];
  /**
   * Resolves with the member that is the raft leader: a running (not paused) member that
   * reports itself as leader, agreed on by a majority of the cluster, so a deposed leader that
   * has not noticed yet is never returned. Under a partition only members on the claimant's
   * side count, so a leader cut off from its majority is not returned either. Polls until `timeoutMs`, then rejects with code
   * `NO_LEADER`.
   */
  leader(options?: EtcdLeaderOptions): Promise<EtcdNode>;
  /**
   * Cuts the cluster into `groups`: members in different groups cannot reach each other (in
   * both directions, over every connection either one dialed); a member named in no group
   * still reaches every member. Clients keep their connections to every member. Replaces any
   * earlier partition, and outlives member restarts until {@link EtcdCluster.heal}. Needs a
   * cluster started with `partitionable: true`. Examples: `partition([[1, 2], [3, 4, 5]])`
   * splits five members 2 + 3; `partition([[await cluster.leader()], [2, 3]])`.
   *
   * @throws {@link EtcdLauncherError} `ILLEGAL_STATE` without `partitionable`, after `stop()`,
   *   or for a member that is not in the cluster.
   */
  partition(
    groups: readonly (readonly EtcdClusterMember[])[],
    options?: PartitionOptions,
  ): Promise<void>;
  /**
   * Cuts `member` off from every other member (`partition([[member], [every other]])`), e.g. the raft leader
   * (`isolate(await cluster.leader())`) or a follower. Its clients stay connected to it.
   */
  isolate(member: EtcdClusterMember, options?: PartitionOptions): Promise<void>;
  /** Ends every partition: every member reaches every member again. A no-op when none is set. */
  heal(): Promise<void>;
  /** The member number (1 … size) of `node`, a member of this cluster. */
  memberNumber(node: EtcdNode): number;
  /**
   * The cluster's current revision, as the first running member that answers reports it.
   *
   * @throws {@link EtcdLauncherError} `UNREACHABLE` when no member answers.
   */
  revision(): Promise<bigint>;
  /**
   * Compacts the key-value history at `revision` (default: the current one), as
   * `etcdctl compact --physical` does: resolves with the revision once every member has
   * physically removed the older versions, so a watch or read from an earlier revision fails
   * with a compaction error from then on.
   *
   * @throws {@link EtcdLauncherError} `REQUEST_FAILED` when etcd refuses (a revision already
   *   compacted, or not reached yet); `UNREACHABLE` when no member answers.
   */
  compact(revision?: bigint | number): Promise<bigint>;
  /**
   * A whole-cluster crash: SIGKILLs every running (or paused) member at once and resolves once
   * every process is gone, keeping ports and data for {@link EtcdCluster.startAll}.
   */
  killAll(): Promise<void>;
  /**
   * A whole-cluster outage: stops every running member gracefully (SIGTERM, SIGKILL after
   * 5 s), all at once, keeping ports and data for {@link EtcdCluster.startAll}.
   */
  stopAll(): Promise<void>;
  /**
   * Starts every member that is not running, on its old ports and data, and resolves once every
   * member is healthy (which needs a leader).
   */
  startAll(): Promise<void>;
  /** Stops every member and removes its data. Idempotent: every call shares one promise. */
  stop(): Promise<void>;
  /** The same as {@link EtcdCluster.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** What `/v3/maintenance/status` reports, reduced to what leader detection needs. */
interface MemberStatus {
  readonly node: EtcdProcess;
  readonly memberId: string;
  readonly leaderId: string;
  readonly raftTerm: bigint;
}

class LaunchedEtcdCluster implements EtcdCluster {
  readonly nodes: readonly EtcdProcess[];
  readonly endpoints: readonly string[];
  readonly #options: ResolvedEtcdOptions;
  readonly #partitions: ClusterPartitions<EtcdProcess>;
  #stopping: Promise<void> | undefined;

  constructor(
    nodes: readonly EtcdProcess[],
    options: ResolvedEtcdOptions,
    gateways: PeerPartitions | undefined,
  ) {
    this.nodes = nodes;
    this.endpoints = nodes.map((node) => node.endpoint);
    this.#options = options;
    this.#partitions = new ClusterPartitions(
      nodes,
      gateways,
      'cluster',
      (message) => new EtcdLauncherError('ILLEGAL_STATE', message),
    );
  }

  async partition(
    groups: readonly (readonly EtcdClusterMember[])[],
    options: PartitionOptions = {},
  ): Promise<void> {
    this.#assertNotStopped('partition');
    this.#partitions.partition(groups as readonly (readonly (number | EtcdProcess)[])[], options);
  }

  async isolate(member: EtcdClusterMember, options: PartitionOptions = {}): Promise<void> {
    this.#assertNotStopped('isolate');
    this.#partitions.isolate(member as number | EtcdProcess, options);
  }

  async heal(): Promise<void> {
    this.#assertNotStopped('heal');
    this.#partitions.heal();
  }

  memberNumber(node: EtcdNode): number {
    return this.#partitions.number(node as EtcdProcess);
  }

  async leader(options: EtcdLeaderOptions = {}): Promise<EtcdNode> {
    const timeoutMs =
      options.timeoutMs ??
      new Timing(1_000).scale(Math.max(10_000, 10 * this.#options.electionTimeoutMs));
    const quorum = Math.floor(this.nodes.length / 2) + 1;
    const started = performance.now();
    let seen: MemberStatus[] = [];
    for (;;) {
      this.#assertNotStopped('leader');
      seen = await this.#statuses();
      const claims = seen
        .filter((status) => status.leaderId !== '0' && status.leaderId === status.memberId)
        .sort((a, b) => (a.raftTerm > b.raftTerm ? -1 : a.raftTerm < b.raftTerm ? 1 : 0));
      for (const claim of claims) {
        // Under a partition, only members that can reach the claimant count: a cut-off leader
        // keeps the agreement of its old followers until they notice.
        const agreeing = seen.filter(
          (status) =>
            status.leaderId === claim.memberId && this.#partitions.reach(status.node, claim.node),
        ).length;
        if (agreeing >= quorum) return claim.node;
      }
      if (performance.now() - started > timeoutMs) break;
      await sleep(50);
    }
    const report =
      seen.length === 0
        ? 'no member answered'
        : seen
            .map(
              (s) =>
                `${s.node.name}: member ${s.memberId}, leader ${s.leaderId}, term ${s.raftTerm}`,
            )
            .join('; ');
    throw new EtcdLauncherError(
      'NO_LEADER',
      `No raft leader agreed on by ${quorum} of ${this.nodes.length} members within ${timeoutMs} ms (${report})`,
    );
  }

  async revision(): Promise<bigint> {
    this.#assertNotStopped('revision');
    const response = await this.#request('/v3/kv/range', {
      key: Buffer.from('\0').toString('base64'),
    });
    return BigInt((response.body as { header: { revision: string } }).header.revision);
  }

  async compact(revision?: bigint | number): Promise<bigint> {
    this.#assertNotStopped('compact');
    if (
      revision !== undefined &&
      !(typeof revision === 'bigint'
        ? revision > 0n
        : Number.isSafeInteger(revision) && revision > 0)
    ) {
      throw new RangeError(
        `compact: revision must be a positive integer (got ${String(revision)})`,
      );
    }
    const at = revision === undefined ? await this.revision() : BigInt(revision);
    await this.#request('/v3/kv/compaction', { revision: at.toString(), physical: true });
    return at;
  }

  async killAll(): Promise<void> {
    this.#assertNotStopped('killAll');
    await Promise.all(this.nodes.map((node) => node.kill('SIGKILL')));
  }

  /**
   * POSTs `body` to `path` of the gRPC gateway of the first running member that answers; a
   * member that answers with an error status fails the call with etcd's message.
   */
  async #request(path: string, body: unknown): Promise<{ body: unknown }> {
    const failures: string[] = [];
    for (const node of this.nodes.filter((member) => member.state === 'running')) {
      let response: { status: number; body: unknown };
      try {
        response = await requestJson(`${node.endpoint}${path}`, {
          body,
          timeoutMs: new Timing(1_000).scale(10_000),
          ...(node.probeTls === undefined ? {} : { tls: node.probeTls }),
        });
      } catch (error) {
        failures.push(`${node.name}: ${(error as Error).message}`);
        continue;
      }
      if (response.status === 200) return response;
      const message = (response.body as { error?: unknown; message?: unknown } | undefined) ?? {};
      throw new EtcdLauncherError(
        'REQUEST_FAILED',
        `${path} on ${node.name} answered ${response.status}: ${String(message.message ?? message.error ?? JSON.stringify(response.body))}`,
      );
    }
    throw new EtcdLauncherError(
      'UNREACHABLE',
      `${path}: no running member answered (${failures.join('; ') || 'none is running'})`,
    );
  }

  async stopAll(): Promise<void> {
    this.#assertNotStopped('stopAll');
    await this.#leaderLast((node) => node.halt());
  }

  async startAll(): Promise<void> {
    this.#assertNotStopped('startAll');
    const down = this.nodes.filter((node) => node.state === 'exited');
    await Promise.all(down.map((node) => node.launch()));
    await waitAllReady(
      this.nodes.filter((node) => node.state === 'starting' || node.state === 'running'),
    );
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#leaderLast((node) => node.stop()).finally(() =>
      this.#partitions.close(),
    );
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /**
   * Applies `action` to the followers, all at once, then to the leader. On SIGTERM an etcd 3.4
   * leader first hands leadership to a peer and waits up to its request timeout (5 s + 2 election
   * timeouts) for that to succeed, so a leader stopped together with its followers always ran
   * into the SIGKILL deadline. Stopped last, once it has noticed that its peers are gone (else
   * it still picks a dead one to hand over to), it skips the handover and exits at once.
   */
  async #leaderLast(action: (node: EtcdProcess) => Promise<void>): Promise<void> {
    const statuses = await this.#statuses();
    const leaders = new Set(
      statuses.filter((status) => status.leaderId === status.memberId).map((status) => status.node),
    );
    await Promise.all(this.nodes.filter((node) => !leaders.has(node)).map(action));
    await Promise.all(
      [...leaders].map(async (node) => {
        await untilNoActivePeers(node);
        await action(node);
      }),
    );
  }

  async #statuses(): Promise<MemberStatus[]> {
    const live = this.nodes.filter((node) => node.state === 'running');
    const answers = await Promise.all(live.map((node) => memberStatus(node)));
    return answers.filter((status): status is MemberStatus => status !== undefined);
  }

  #assertNotStopped(call: string): void {
    if (this.#stopping !== undefined) {
      throw new EtcdLauncherError('ILLEGAL_STATE', `${call}: the cluster has been stopped`);
    }
  }
}

/**
 * Starts a `size`-member etcd cluster (default 3) on free loopback ports, every member in its
 * own temporary directory, and resolves once every member answers `/health` as healthy (so a
 * leader has been elected). With `partitionable: true` the members reach each other through
 * partition gateways (see {@link EtcdCluster.partition}). Retries with new ports when one was
 * taken meanwhile; rejects like {@link startEtcd}, stopping whatever it started. Use it with
 * `await using cluster = await startEtcdCluster()`.
 */
export async function startEtcdCluster(
  size = 3,
  options: EtcdClusterOptions = {},
): Promise<EtcdCluster> {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`startEtcdCluster: size must be a positive integer (got ${String(size)})`);
  }
  const resolved = resolveEtcdOptions(options);
  const partitionable = options.partitionable ?? false;
  const perMember = partitionable ? 4 : 3;
  for (let attempt = 1; ; attempt += 1) {
    const ports = await allocateLoopbackPorts(perMember * size);
    const names = Array.from({ length: size }, (_, i) => `etcd-${i + 1}`);
    const peerPort = (i: number) => ports[perMember * i + 1]!;
    const gatewayPort = (i: number) => (partitionable ? ports[perMember * i + 3]! : peerPort(i));
    const initialCluster = names
      .map((name, i) => `${name}=http://127.0.0.1:${gatewayPort(i)}`)
      .join(',');
    const token = clusterToken();
    const specs: EtcdMemberSpec[] = names.map((name, i) => ({
      name,
      clientPort: ports[perMember * i]!,
      peerPort: peerPort(i),
      advertisedPeerPort: gatewayPort(i),
      metricsPort: ports[perMember * i + 2]!,
      initialCluster,
      clusterToken: token,
    }));
    const nodes = await Promise.all(specs.map((spec) => EtcdProcess.create(spec, resolved)));
    let partitions: PeerPartitions | undefined;
    try {
      if (partitionable) {
        partitions = await PeerPartitions.start(
          nodes,
          nodes.map((_, i) => ({ port: gatewayPort(i), member: i + 1, targetPort: peerPort(i) })),
        );
      }
      // Members wait for each other's peer ports, so all must run before any can be ready.
      await Promise.all(nodes.map((node) => node.launch()));
      await waitAllReady(nodes);
      return new LaunchedEtcdCluster(nodes, resolved, partitions);
    } catch (error) {
      const retry =
        attempt < START_ATTEMPTS && (isAddressInUse(error) || isCode(error, 'EADDRINUSE'));
      await Promise.all(nodes.map((node) => node.discard(!retry)));
      await partitions?.close();
      if (partitionable) releaseLoopbackPorts(nodes.map((_, i) => gatewayPort(i)));
      if (!retry) throw error;
    }
  }
}

function isCode(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

/**
 * Waits (briefly, best effort) until `node`'s `etcd_network_active_peers` gauges are all 0: the
 * moment it has noticed that every peer connection is gone.
 */
async function untilNoActivePeers(node: EtcdProcess): Promise<void> {
  const deadline = performance.now() + 2_000;
  while (node.state === 'running' && performance.now() < deadline) {
    try {
      const response = await requestJson(node.metricsUrl, { timeoutMs: 1_000 });
      const text = typeof response.body === 'string' ? response.body : '';
      const active = [...text.matchAll(/^etcd_network_active_peers\{[^}]*\} (\d+)$/gm)].some(
        (match) => match[1] !== '0',
      );
      if (!active) return;
    } catch {
      return;
    }
    await sleep(20);
  }
}

async function memberStatus(node: EtcdProcess): Promise<MemberStatus | undefined> {
  try {
    const response = await requestJson(`${node.endpoint}/v3/maintenance/status`, {
      body: {},
      timeoutMs: 1_000,
      ...(node.probeTls === undefined ? {} : { tls: node.probeTls }),
    });
    if (response.status !== 200) return undefined;
    const body = response.body as {
      header?: { member_id?: unknown };
      leader?: unknown;
      raftTerm?: unknown;
    };
    const memberId = body.header?.member_id;
    if (typeof memberId !== 'string') return undefined;
    // The gRPC gateway writes uint64 as strings and omits zero values (no leader → no field).
    const leaderId = typeof body.leader === 'string' ? body.leader : '0';
    const raftTerm = typeof body.raftTerm === 'string' ? BigInt(body.raftTerm) : 0n;
    return { node, memberId, leaderId, raftTerm };
  } catch {
    return undefined;
  }
}
