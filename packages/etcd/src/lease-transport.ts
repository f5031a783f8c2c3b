import { SessionGoneError, type SessionTransport } from '@tenure/core/internal';
import {
  castGrpcError,
  type Etcd3,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  isRecoverableError,
} from 'etcd3';
import { rethrow, toTenureError } from './etcd-errors.js';
import { connectionPool } from './etcd3-internals.js';
import type { EtcdH2 } from './h2-transport.js';
import {
  decodeKeepAliveTtl,
  decodeStatusVersion,
  encodeCountRange,
  encodeKeepAlive,
} from './unary-codec.js';

/** The part of a gRPC duplex stream a keep-alive uses. */
interface KeepAliveStream {
  on(event: 'data', listener: (response: { TTL: string }) => void): unknown;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  write(request: { ID: string }): unknown;
  readonly writable?: boolean;
  end(): void;
  cancel?(): void;
}

/** A unary gRPC call as grpc-js generates it. */
type UnaryCall = (
  request: object,
  metadata: unknown,
  options: { deadline: Date },
  callback: (error: Error | null, response: unknown) => void,
) => unknown;

/** One member's gRPC services, as etcd3's connection pool hands them out. */
interface MemberServices {
  /** `host:port` of the member. */
  readonly host: string;
  readonly metadata: unknown;
  keepAlive(options: { deadline: Date }): KeepAliveStream;
  /** A unary call on one of the member's services (`KV`, `Maintenance`). */
  call(
    service: 'KV' | 'Maintenance',
    method: string,
    request: object,
    deadline: Date,
  ): Promise<unknown>;
}

/**
 * The first etcd version whose leader confirms its leadership (a ReadIndex round) before it
 * renews a lease: "linearizable renew lease", etcd PR 13690, released in 3.5.3.
 */
const LINEARIZABLE_RENEW = [3, 5, 3] as const;

/** tenure's own connection to etcd, which renewals take when there is one. */
export interface OwnConnection {
  readonly h2: EtcdH2;
  /** Resets every connection to a member (`host:port`), after a call that failed there. */
  readonly resetMember: (host: string) => void;
}

const KEEP_ALIVE_PATH = '/etcdserverpb.Lease/LeaseKeepAlive';
const RANGE_PATH = '/etcdserverpb.KV/Range';
const STATUS_PATH = '/etcdserverpb.Maintenance/Status';

/**
 * Sessions as etcd leases. etcd grants whole seconds and may raise the TTL (its minimum is
 * 1.5 × election timeout, 2 s by default); the keeper uses the granted value. Each renewal is
 * one short keep-alive stream with a deadline, so a black-holed connection fails the renewal
 * in time instead of waiting on a stream that never answers.
 *
 * Renewals go on tenure's own connection when the arbitrator has one (not with auth): the
 * keep-alive stream as a bare HTTP/2 stream, one request then half-closed, which etcd answers
 * and ends; the confirming read below on the same member. With the periodic read of queue
 * keys there too, a candidate at rest uses about 40 % less CPU than through grpc-js and etcd3
 * (`bench/scripts/idle-cpu.mjs`), and a handover runs into less of it. Otherwise renewals go
 * through etcd3's connection pool, to a member of its choice.
 *
 * Before etcd 3.5.3 a leader that has lost its quorum (isolated, deposed, stuck) answers
 * keep-alives from its own lease table until it steps down, so an acknowledged keep-alive does
 * not prove that the raft leader saw it (guarantee G1). On such a member a renewal resolves
 * `true` only after a linearizable read, sent on the same member after the keep-alive's reply,
 * has passed etcd's ReadIndex round: the member's leader was confirmed by a quorum after the
 * renewal. Each member's version is read once (the maintenance Status call); members that
 * report 3.5.3 or later get the keep-alive alone.
 */
export class LeaseTransport implements SessionTransport {
  readonly #client: Etcd3;
  readonly #timeoutMs: () => number;
  /** The key the confirming read names (any key: a refused permission still proves the round). */
  readonly #probeKey: Buffer;
  /** Per member (`host:port`): whether its leader renews linearizably (3.5.3+). */
  readonly #linearizableRenew = new Map<string, Promise<boolean>>();

  /** The confirming read's request, encoded once for tenure's own connection. */
  readonly #probeRange: Buffer;
  readonly #own: OwnConnection | undefined;

  constructor(client: Etcd3, timeoutMs: () => number, namespace = '', own?: OwnConnection) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    this.#probeKey = Buffer.from(`${namespace}tenure-data/`, 'utf8');
    this.#probeRange = encodeCountRange(this.#probeKey);
    this.#own = own;
  }

  async grant(ttlMs: number): Promise<{ id: string; ttlMs: number }> {
    const ttl = Math.max(1, Math.ceil(ttlMs / 1000));
    const response = await this.#client.leaseClient
      .leaseGrant({ TTL: ttl, ID: 0 }, this.#deadline())
      .catch(rethrow('lease grant'));
    if (response.error) throw toTenureError(new Error(response.error), 'lease grant');
    return { id: response.ID, ttlMs: Number(response.TTL) * 1000 };
  }

  async keepAlive(id: string): Promise<boolean> {
    // One deadline for the whole renewal (keep-alive, version check, confirming read), so a
    // renewal takes no longer than one request may.
    const deadline = this.#deadline();
    try {
      const own = this.#own;
      if (own !== undefined && !own.h2.closed) return await this.#keepAliveOwn(own, id, deadline);
      const pinned = await withMember(this.#client, async (member) => {
        const ttl = await keepAliveOnce(id, () => member.keepAlive(deadline));
        const status = () => member.call('Maintenance', 'status', {}, deadline.deadline);
        if (ttl <= 0 || (await this.#renewsLinearizably(member.host, status))) return ttl;
        await this.#confirmRead((request) =>
          member.call('KV', 'range', request, deadline.deadline),
        );
        return ttl;
      });
      if (pinned !== undefined) return pinned > 0;
      // An etcd3 without the internals used above: the keep-alive and the read go to members
      // of etcd3's choice. The read still proves a quorum-confirmed leader after the renewal.
      const ttl = await keepAliveOnce(id, () => this.#client.leaseClient.leaseKeepAlive(deadline));
      if (ttl <= 0) return false;
      await this.#confirmRead((request) => this.#client.kv.range(request, deadline));
      return true;
    } catch (error) {
      throw toTenureError(error, 'lease keep-alive', id);
    }
  }

  async revoke(id: string): Promise<void> {
    await this.#client.leaseClient
      .leaseRevoke({ ID: id }, this.#deadline())
      .catch((error: unknown) => {
        const mapped = toTenureError(error, 'lease revoke', id);
        if (mapped instanceof SessionGoneError) return; // already gone
        throw mapped;
      });
  }

  /**
   * A linearizable (not serializable) read: etcd answers it only after its ReadIndex round has
   * confirmed the member's leader with a quorum. etcd checks key permissions after that round,
   * so a refusal (a user without rights on the probe key) proves it as well.
   */
  async #confirmRead(range: (request: object) => Promise<unknown>): Promise<void> {
    const request = { key: this.#probeKey, count_only: true, serializable: false };
    try {
      await range(request);
    } catch (error) {
      if (error instanceof EtcdPermissionDeniedError) return;
      throw error;
    }
  }

  /**
   * A renewal on tenure's own connection (see {@link LeaseTransport}). The read goes only to
   * the member that answered the keep-alive: if the connection has moved on since, the renewal
   * fails unsent and the next one starts again. A failure etcd3 counts as the member's fault (a
   * deadline exceeded, UNAVAILABLE) resets its connections, as on etcd3's own.
   */
  async #keepAliveOwn(
    { h2, resetMember }: OwnConnection,
    id: string,
    { deadline }: { deadline: Date },
  ): Promise<boolean> {
    let member = '';
    let failedOn: string | undefined;
    const onFailure = (host: string) => {
      failedOn = host;
    };
    try {
      const reply = await h2.unary(KEEP_ALIVE_PATH, encodeKeepAlive(id), {
        deadline,
        onFailure,
        onPlaced: (host) => {
          member = host;
        },
      });
      const pinned = { deadline, member, onFailure };
      const ttl = decodeKeepAliveTtl(reply);
      if (ttl <= 0) return false;
      const status = () => h2.unary(STATUS_PATH, Buffer.alloc(0), pinned);
      if (await this.#renewsLinearizably(member, status)) return true;
      await h2.unary(RANGE_PATH, this.#probeRange, pinned);
      return true;
    } catch (error) {
      if (failedOn !== undefined && error instanceof Error && isRecoverableError(error)) {
        resetMember(failedOn);
      }
      throw error;
    }
  }

  /**
   * Whether `member` (`host:port`) runs etcd 3.5.3 or later, asked once (`status`: its
   * StatusResponse, as etcd3 decodes it or undecoded); `false` when the answer fails.
   */
  #renewsLinearizably(member: string, status: () => Promise<unknown>): Promise<boolean> {
    let known = this.#linearizableRenew.get(member);
    if (known === undefined) {
      known = status().then((reply) => {
        const version = Buffer.isBuffer(reply)
          ? decodeStatusVersion(reply)
          : (reply as { version?: unknown }).version;
        return typeof version === 'string' && atLeast(version, LINEARIZABLE_RENEW);
      });
      this.#linearizableRenew.set(member, known);
      // Not known: do the read this time, ask again next time.
      known.catch(() => this.#linearizableRenew.delete(member));
    }
    return known.catch(() => false);
  }

  #deadline(): { deadline: Date } {
    return { deadline: new Date(Date.now() + this.#timeoutMs()) };
  }
}

/** One keep-alive on a fresh stream; resolves with the TTL etcd answered (0: no such lease). */
async function keepAliveOnce(
  id: string,
  open: () => KeepAliveStream | Promise<KeepAliveStream>,
): Promise<number> {
  const stream = await open();
  try {
    const ttl = await new Promise<string>((resolve, reject) => {
      stream.on('data', (response: { TTL: string }) => resolve(response.TTL));
      stream.on('error', (error: unknown) => reject(error));
      stream.on('end', () => reject(new Error('keep-alive stream ended without a reply')));
      stream.write({ ID: id });
    });
    return Number(ttl);
  } finally {
    stream.end();
    stream.cancel?.();
  }
}

/** `version` (e.g. `3.4.23`) is at least `minimum`. */
export function atLeast(version: string, minimum: readonly number[]): boolean {
  const parts = version.split(/[.-]/, minimum.length).map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < minimum.length; i += 1) {
    const have = parts[i];
    const want = minimum[i] as number;
    if (have === undefined || Number.isNaN(have)) return false;
    if (have !== want) return have > want;
  }
  return true;
}

/**
 * Runs `fn` with the services of one member picked by etcd3's connection pool (at random; a
 * member that fails is reset there, so the next renewal may pick another). Resolves
 * `undefined` when this etcd3 version does not expose the pool as 1.1.x does.
 */
async function withMember<T>(
  client: Etcd3,
  fn: (member: MemberServices) => Promise<T>,
): Promise<T | undefined> {
  const pool = connectionPool(client);
  if (pool === undefined) return undefined;
  let supported = true;
  const result = (await pool.withConnection(
    'Lease',
    async ({ resource, client: lease, metadata }) => {
      if (
        typeof resource?.getServiceClient !== 'function' ||
        typeof lease?.leaseKeepAlive !== 'function'
      ) {
        supported = false;
        return undefined;
      }
      return fn({
        host: String(resource.host),
        metadata,
        keepAlive: (options) => {
          const stream = lease.leaseKeepAlive(metadata, options) as KeepAliveStream;
          // As etcd3 does: a member whose stream fails gets fresh connections next time.
          // (Not for the cancellation that ends every renewal's stream: it is no longer writable.)
          stream.on('error', (error: unknown) => {
            if (stream.writable === true) pool.markFailed(resource, error);
          });
          return stream;
        },
        call: async (service, method, request, deadline) => {
          const unary = (meta: unknown) =>
            new Promise<unknown>((resolve, reject) => {
              const stub = resource.getServiceClient(service) as Record<string, unknown>;
              const call = stub[method];
              if (typeof call !== 'function') {
                reject(new Error(`etcd3 has no ${service}.${method}`));
                return;
              }
              (call as UnaryCall).call(stub, request, meta, { deadline }, (error, response) =>
                error ? reject(castGrpcError(error)) : resolve(response),
              );
            });
          try {
            return await unary(metadata);
          } catch (error) {
            // An auth token etcd no longer knows (it expired, the member restarted, the user's
            // password changed): log in again and retry once, as etcd3's own calls do. The
            // keep-alive itself needs no token, so nothing else would renew it here.
            const auth = pool.authenticator();
            if (!(error instanceof EtcdInvalidAuthTokenError) || auth === undefined) throw error;
            auth.invalidateMetadata();
            return unary(await auth.getMetadata());
          }
        },
      });
    },
  )) as T | undefined;
  return supported ? result : undefined;
}
