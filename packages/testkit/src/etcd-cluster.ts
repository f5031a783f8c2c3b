/**
 * A real multi-member etcd cluster for tests, built from {@link EtcdNode}s on loopback ports:
 * find the raft leader, kill members, or take the whole cluster down and up again.
 *
 * @packageDocumentation
 */

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
import { allocateLoopbackPorts } from './loopback-ports.js';
import { Timing } from './timing.js';

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
   * has not noticed yet is never returned. Polls until `timeoutMs`, then rejects with code
   * `NO_LEADER`.
   */
  leader(options?: EtcdLeaderOptions): Promise<EtcdNode>;
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
  #stopping: Promise<void> | undefined;

  constructor(nodes: readonly EtcdProcess[], options: ResolvedEtcdOptions) {
    this.nodes = nodes;
    this.endpoints = nodes.map((node) => node.endpoint);
    this.#options = options;
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
        const agreeing = seen.filter((status) => status.leaderId === claim.memberId).length;
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
    this.#stopping ??= this.#leaderLast((node) => node.stop());
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
 * leader has been elected). Retries with new ports when one was taken meanwhile; rejects like
 * {@link startEtcd}, stopping whatever it started. Use it with
 * `await using cluster = await startEtcdCluster()`.
 */
export async function startEtcdCluster(size = 3, options: EtcdOptions = {}): Promise<EtcdCluster> {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`startEtcdCluster: size must be a positive integer (got ${String(size)})`);
  }
  const resolved = resolveEtcdOptions(options);
  for (let attempt = 1; ; attempt += 1) {
    const ports = await allocateLoopbackPorts(3 * size);
    const names = Array.from({ length: size }, (_, i) => `etcd-${i + 1}`);
    const peerPort = (i: number) => ports[3 * i + 1]!;
    const initialCluster = names
      .map((name, i) => `${name}=http://127.0.0.1:${peerPort(i)}`)
      .join(',');
    const token = clusterToken();
    const specs: EtcdMemberSpec[] = names.map((name, i) => ({
      name,
      clientPort: ports[3 * i]!,
      peerPort: peerPort(i),
      metricsPort: ports[3 * i + 2]!,
      initialCluster,
      clusterToken: token,
    }));
    const nodes = await Promise.all(specs.map((spec) => EtcdProcess.create(spec, resolved)));
    try {
      // Members wait for each other's peer ports, so all must run before any can be ready.
      await Promise.all(nodes.map((node) => node.launch()));
      await waitAllReady(nodes);
      return new LaunchedEtcdCluster(nodes, resolved);
    } catch (error) {
      const retry = attempt < START_ATTEMPTS && isAddressInUse(error);
      await Promise.all(nodes.map((node) => node.discard(!retry)));
      if (!retry) throw error;
    }
  }
}

/**
 * Waits for every node to be ready; the first failure stops the other waits, and it is the
 * error thrown (never a "stopped waiting" error of a sibling).
 */
async function waitAllReady(nodes: readonly EtcdProcess[]): Promise<void> {
  const abort = new AbortController();
  let first: unknown;
  const results = await Promise.allSettled(
    nodes.map((node) =>
      node.waitUntilReady(undefined, abort.signal).catch((error: unknown) => {
        if (!abort.signal.aborted) {
          first = error;
          abort.abort();
        }
        throw error;
      }),
    ),
  );
  if (results.some((result) => result.status === 'rejected')) throw first;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
