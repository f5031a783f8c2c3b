/**
 * Server-to-server partitions of a launched cluster, on loopback only: every member's peer
 * ports (etcd's raft peer port, ZooKeeper's quorum and election ports) sit behind a TCP proxy,
 * a *gateway*, and the members are configured to reach each other through the gateways. A
 * gateway learns which member dialed each connection by looking the connection's source port
 * up in `/proc` (the socket belongs to exactly one member's process), so it can cut any pair of
 * members, in both directions, whatever protocol they speak and whichever side dialed.
 *
 * @packageDocumentation
 */

import { readdir, readFile, readlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { releaseLoopbackPorts } from './loopback-ports.js';
import type { ManagedServer } from './managed-server.js';
import { hardClose, socketClosed } from './tcp-proxy.js';

/**
 * How a partition cuts the connections between members on opposite sides:
 *
 * - `black-hole` (the default): nothing passes either way and nothing is closed, as when
 *   packets are dropped: each side's writes are buffered and then block, its reads wait, until
 *   its own timeouts give up on the connection. New connections are accepted and black-holed
 *   too; one whose dialer closes it meanwhile is forgotten. On `heal()` the bytes held back are
 *   delivered, as TCP retransmission would after a short partition.
 * - `reset`: every connection between the sides is reset (RST) at once, and new ones are reset
 *   as soon as the gateway learns who dialed them, as by a firewall that rejects.
 */
export type PartitionMode = 'black-hole' | 'reset';

/** Options of a cluster's `partition()` and `isolate()`. */
export interface PartitionOptions {
  /** How the connections between the sides are cut. Default `black-hole`. */
  mode?: PartitionMode;
}

/** Where a {@link PeerGateway} forwards to and for whom. */
export interface PeerGatewaySpec {
  /** The member behind the gateway (1-based member number). */
  readonly member: number;
  /** The port the member really listens on, on 127.0.0.1. */
  readonly targetPort: number;
}

/** A gateway to start: its port, and the member and port behind it. */
export interface PeerGatewayPort extends PeerGatewaySpec {
  /** The gateway's own port on 127.0.0.1, as the other members' configurations name it. */
  readonly port: number;
}

const LOOPBACK = '127.0.0.1';

/**
 * The partition table of one cluster and its gateways. Members are numbered from 1 (member
 * `n` is `members[n - 1]`). Internal to the testkit: the clusters expose `partition()`,
 * `isolate()` and `heal()` through {@link ClusterPartitions}.
 */
export class PeerPartitions {
  readonly #members: readonly ManagedServer[];
  readonly #gateways: PeerGateway[] = [];
  /** Cut pairs as `low:high` member numbers. */
  #cut = new Set<string>();
  #mode: PartitionMode = 'black-hole';
  #closing: Promise<void> | undefined;

  private constructor(members: readonly ManagedServer[]) {
    this.#members = members;
  }

  /**
   * Starts the gateways of `members`; rejects (closing those it started) when a port cannot be
   * bound, e.g. one taken since it was allocated (code `EADDRINUSE`).
   */
  static async start(
    members: readonly ManagedServer[],
    gateways: readonly PeerGatewayPort[],
  ): Promise<PeerPartitions> {
    const table = new PeerPartitions(members);
    const started = await Promise.allSettled(
      gateways.map((gateway) => PeerGateway.start(gateway.port, gateway, table)),
    );
    for (const result of started)
      if (result.status === 'fulfilled') table.#gateways.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed !== undefined) {
      await table.close();
      throw failed.reason;
    }
    return table;
  }

  /** The pairs of members that cannot talk now, each as `[low, high]`. */
  get cutPairs(): Array<[number, number]> {
    return [...this.#cut].map((pair) => pair.split(':').map(Number) as [number, number]);
  }

  /** How the current partition cuts. */
  get mode(): PartitionMode {
    return this.#mode;
  }

  /** `true` when members `a` and `b` may not talk. */
  isCut(a: number, b: number): boolean {
    return this.#cut.has(pairKey(a, b));
  }

  /** The number of the running member whose process is `pid`. */
  memberOfPid(pid: number): number | undefined {
    const index = this.#members.findIndex((member) => member.running && member.pid === pid);
    return index === -1 ? undefined : index + 1;
  }

  /** The pids of the running members. */
  pids(): number[] {
    return this.#members.filter((member) => member.running).map((member) => member.pid);
  }

  /**
   * Replaces the partition: members in different `groups` cannot talk; a member in no group
   * talks to everyone. Applies at once to every connection the gateways hold.
   */
  set(groups: readonly (readonly number[])[], mode: PartitionMode): void {
    const cut = new Set<string>();
    for (let g = 0; g < groups.length; g += 1) {
      for (let h = g + 1; h < groups.length; h += 1) {
        for (const a of groups[g] as readonly number[]) {
          for (const b of groups[h] as readonly number[]) cut.add(pairKey(a, b));
        }
      }
    }
    this.#cut = cut;
    this.#mode = mode;
    this.#apply();
  }

  /** Ends every partition: every held connection flows again. */
  heal(): void {
    this.#cut = new Set();
    this.#apply();
  }

  /** Closes every gateway and connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.all(this.#gateways.map((gateway) => gateway.close())).then(() => {
      releaseLoopbackPorts(this.#gateways.map((gateway) => gateway.port));
    });
    return this.#closing;
  }

  #apply(): void {
    for (const gateway of this.#gateways) gateway.apply();
  }
}

/**
 * The `partition()`, `isolate()` and `heal()` of a cluster over its members, which are named
 * by their node or their number (1 … size). Without gateways (a cluster started without
 * `partitionable`), every call fails with `ILLEGAL_STATE`.
 */
export class ClusterPartitions<Node extends ManagedServer> {
  readonly #members: readonly Node[];
  readonly #table: PeerPartitions | undefined;
  readonly #illegal: (message: string) => Error;
  readonly #whole: string;

  /**
   * @param whole - what the members form, for messages: `cluster`, `ensemble`.
   * @param illegal - makes the launcher's `ILLEGAL_STATE` error.
   */
  constructor(
    members: readonly Node[],
    table: PeerPartitions | undefined,
    whole: string,
    illegal: (message: string) => Error,
  ) {
    this.#members = members;
    this.#table = table;
    this.#whole = whole;
    this.#illegal = illegal;
  }

  /** The number (1 … size) of `member`. */
  number(member: number | Node): number {
    const index = typeof member === 'number' ? member - 1 : this.#members.indexOf(member);
    if (!Number.isInteger(index) || this.#members[index] === undefined) {
      throw this.#illegal(
        `${typeof member === 'number' ? `member ${member}` : member.name} is not a member of this ${this.#whole} (members 1 … ${this.#members.length})`,
      );
    }
    return index + 1;
  }

  /** Members in different groups cannot talk; members in no group talk to all. */
  partition(groups: readonly (readonly (number | Node)[])[], options: PartitionOptions): void {
    const table = this.#partitionable('partition');
    const numbers = groups.map((group) => group.map((member) => this.number(member)));
    table.set(numbers, options.mode ?? 'black-hole');
  }

  /** `member` cannot talk to any other member. */
  isolate(member: number | Node, options: PartitionOptions): void {
    const number = this.number(member);
    const others = this.#members.map((_, i) => i + 1).filter((other) => other !== number);
    this.partition([[number], others], options);
  }

  /** Every member talks to every member again. */
  heal(): void {
    this.#partitionable('heal').heal();
  }

  /** `true` unless a partition separates `a` and `b`. */
  reach(a: Node, b: Node): boolean {
    return !(this.#table?.isCut(this.number(a), this.number(b)) ?? false);
  }

  /** Closes the gateways. Idempotent. */
  async close(): Promise<void> {
    await this.#table?.close();
  }

  #partitionable(call: string): PeerPartitions {
    if (this.#table === undefined) {
      throw this.#illegal(
        `${call}: start the ${this.#whole} with { partitionable: true } to partition it`,
      );
    }
    return this.#table;
  }
}

/** One connection through a gateway. */
interface Link {
  readonly client: Socket;
  upstream: Socket | undefined;
  /** The member that dialed, once known; `0` for a dialer that is no member. */
  from: number | undefined;
  /** Whether the link is held (black-holed) now. */
  held: boolean;
  /** Closes that arrived while held, delivered when it flows again. */
  readonly pending: Array<() => void>;
  /**
   * What the dialer sent on a connection held before it ever reached the member: delivered
   * first when it flows. Such a connection is forgotten if its dialer gives up on it.
   */
  readonly early: Buffer[];
  /** Stops collecting {@link Link.early}. */
  stopEarly: (() => void) | undefined;
}

/** How much of a held, never-forwarded connection is read ahead before it is paused. */
const EARLY_LIMIT = 1 << 20;

/** A TCP proxy in front of one peer port of one member. */
class PeerGateway {
  readonly #server: Server;
  readonly #spec: PeerGatewaySpec;
  readonly #table: PeerPartitions;
  readonly port: number;
  readonly #links = new Set<Link>();
  #closed = false;
  /** Identifications of dialers in flight (reads of /proc), awaited by close(). */
  readonly #identifying = new Set<Promise<void>>();

  private constructor(server: Server, port: number, spec: PeerGatewaySpec, table: PeerPartitions) {
    this.#server = server;
    this.port = port;
    this.#spec = spec;
    this.#table = table;
    server.on('connection', (client) => this.#accept(client));
  }

  static start(port: number, spec: PeerGatewaySpec, table: PeerPartitions): Promise<PeerGateway> {
    return new Promise((resolve, reject) => {
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
      server.once('error', reject);
      server.listen({ host: LOOPBACK, port, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', () => {});
        resolve(new PeerGateway(server, port, spec, table));
      });
    });
  }

  /** Re-decides every identified link after the partition changed. */
  apply(): void {
    // A heal while closing must not dial upstream for a link close() has already counted.
    if (this.#closed) return;
    for (const link of this.#links) if (link.from !== undefined) this.#decide(link);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const sockets: Socket[] = [];
    for (const link of this.#links) {
      link.pending.length = 0;
      for (const socket of [link.client, link.upstream]) {
        if (socket === undefined) continue;
        sockets.push(socket);
        socket.destroy();
      }
    }
    // Reads of /proc still in flight would outlive the gateway (a test's leak check sees them).
    await Promise.all([closed, ...sockets.map(socketClosed), ...this.#identifying]);
    this.#links.clear();
  }

  #accept(client: Socket): void {
    if (this.#closed) {
      client.destroy();
      return;
    }
    // Paused from the start (pauseOnConnect): nothing passes before the dialer is known.
    const link: Link = {
      client,
      upstream: undefined,
      from: undefined,
      held: true,
      pending: [],
      early: [],
      stopEarly: undefined,
    };
    this.#links.add(link);
    client.on('error', () => {});
    client.once('close', () => {
      if (link.upstream === undefined) this.#links.delete(link);
    });
    const identifying = this.#identify(client).then((from) => {
      if (this.#closed || client.destroyed) return;
      link.from = from;
      this.#decide(link);
    });
    this.#identifying.add(identifying);
    void identifying.finally(() => this.#identifying.delete(identifying));
  }

  /** The member whose process owns the other end of `client`, or 0 when it is none. */
  async #identify(client: Socket): Promise<number> {
    const remotePort = client.remotePort;
    if (remotePort === undefined) return 0;
    // The dialer may still be between connect() and its first write: look twice at most.
    for (let attempt = 0; attempt < 3 && !this.#closed; attempt += 1) {
      const inode = await socketInode(remotePort, this.port);
      if (inode !== undefined) {
        for (const pid of this.#table.pids()) {
          if (await ownsSocket(pid, inode)) return this.#table.memberOfPid(pid) ?? 0;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return 0;
  }

  #decide(link: Link): void {
    const from = link.from ?? 0;
    const to = this.#spec.member;
    // A dialer that is no member (a probe, a closed socket) passes only when nothing is cut.
    const cut =
      from === 0 ? this.#table.cutPairs.length > 0 : from !== to && this.#table.isCut(from, to);
    if (!cut) {
      this.#flow(link);
    } else if (this.#table.mode === 'reset') {
      link.pending.length = 0;
      hardClose(link.client);
      if (link.upstream !== undefined) hardClose(link.upstream);
    } else {
      this.#hold(link);
    }
  }

  #hold(link: Link): void {
    link.held = true;
    if (link.upstream === undefined) {
      this.#collectEarly(link);
      return;
    }
    link.client.pause();
    link.upstream.pause();
  }

  /**
   * Reads what the dialer of a held connection sends, as a SYN and first segment would wait in
   * a black hole, and forgets the connection if the dialer closes it meanwhile: an attempt
   * given up during a partition never reaches the member after it heals.
   */
  #collectEarly(link: Link): void {
    if (link.stopEarly !== undefined) return;
    const client = link.client;
    let size = 0;
    const onData = (chunk: Buffer) => {
      link.early.push(chunk);
      size += chunk.length;
      if (size > EARLY_LIMIT) client.pause();
    };
    const onGone = () => {
      if (link.upstream !== undefined) return;
      client.destroy();
      this.#links.delete(link);
    };
    client.on('data', onData);
    client.once('end', onGone);
    client.once('close', onGone);
    link.stopEarly = () => {
      client.off('data', onData);
      client.off('end', onGone);
      client.off('close', onGone);
      link.stopEarly = undefined;
    };
    client.resume();
  }

  #flow(link: Link): void {
    link.held = false;
    if (link.upstream === undefined) {
      const upstream = connect({
        host: LOOPBACK,
        port: this.#spec.targetPort,
        allowHalfOpen: true,
      });
      link.upstream = upstream;
      link.client.pause();
      link.stopEarly?.();
      for (const chunk of link.early.splice(0)) upstream.write(chunk);
      let closed = 0;
      const onClose = () => {
        closed += 1;
        if (closed === 2) this.#links.delete(link);
      };
      link.client.once('close', onClose);
      upstream.once('close', onClose);
      this.#pump(link, link.client, upstream);
      this.#pump(link, upstream, link.client);
    }
    for (const action of link.pending.splice(0)) action();
    link.client.resume();
    link.upstream.resume();
  }

  /** Forwards `from` → `to`: data, half-close (FIN) and abortive close (RST). */
  #pump(link: Link, from: Socket, to: Socket): void {
    from.on('error', () => {});
    from.on('data', (chunk: Buffer) => {
      if (to.destroyed || !to.writable) return;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => {
          if (!link.held) from.resume();
        });
      }
    });
    const deliver = (action: () => void) => {
      if (link.held) link.pending.push(action);
      else action();
    };
    from.on('end', () =>
      deliver(() => {
        if (!to.destroyed) to.end();
      }),
    );
    from.on('close', (hadError) =>
      deliver(() => {
        if (hadError) hardClose(to);
        else if (!to.destroyed) to.end();
      }),
    );
  }
}

function pairKey(a: number, b: number): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`;
}

/**
 * The inode of the socket bound to 127.0.0.1:`localPort` and connected to 127.0.0.1:
 * `remotePort`, from `/proc/net/tcp` (and `tcp6`, for a v4-mapped socket).
 */
async function socketInode(localPort: number, remotePort: number): Promise<string | undefined> {
  const v4 = `0100007F:${hex4(localPort)}`;
  const v4Remote = `0100007F:${hex4(remotePort)}`;
  const v6 = `0000000000000000FFFF00000100007F:${hex4(localPort)}`;
  const v6Remote = `0000000000000000FFFF00000100007F:${hex4(remotePort)}`;
  for (const [file, local, remote] of [
    ['/proc/net/tcp', v4, v4Remote],
    ['/proc/net/tcp6', v6, v6Remote],
  ] as const) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const fields = line.trim().split(/\s+/);
      if (fields[1] === local && fields[2] === remote) return fields[9];
    }
  }
  return undefined;
}

/** `true` when process `pid` holds the socket with this inode. */
async function ownsSocket(pid: number, inode: string): Promise<boolean> {
  const target = `socket:[${inode}]`;
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  const links = await Promise.all(
    fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')),
  );
  return links.includes(target);
}

function hex4(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}
