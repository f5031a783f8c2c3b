import type { Arbitrator, LoggingOptions } from '@tenure/core';

/** One ACL entry: who (`scheme`, `id`) may do what (`permissions`, a subset of `crwda`). */
export interface ZooKeeperAclEntry {
  /** `world`, `auth`, `digest`, `ip`… */
  readonly scheme: string;
  /** `anyone` for `world`, `''` for `auth`, `user:base64(sha1(user:password))` for `digest`… */
  readonly id: string;
  /** Any of `c` (create), `r` (read), `w` (write), `d` (delete), `a` (admin), e.g. `'cdrwa'`. */
  readonly permissions: string;
}

/** Options of {@link createZooKeeperArbitrator}; `logger` is described in {@link LoggingOptions}. */
export interface ZooKeeperArbitratorOptions extends LoggingOptions {
  /** The ensemble: `host:port` entries, as an array or a comma-separated string. */
  connect: string | readonly string[];
  /**
   * The session timeout to request, ms. Default 10 000. The server clamps it to
   * [2, 20] × its tickTime; terms use the negotiated value ({@link Arbitrator.ttlMs}).
   */
  sessionTimeoutMs?: number;
  /** Same as `sessionTimeoutMs` (the name the other arbitrators use); give one of the two. */
  ttlMs?: number;
  /** See `DEFAULTS.maxDrift` in `@tenure/core`. Default 0.01. */
  maxDrift?: number;
  /** See `DEFAULTS.marginMs` in `@tenure/core`. Default 100. */
  marginMs?: number;
  /**
   * The path under which elections live: election `jobs` is the latch path `<root>/jobs`, as
   * Curator's `new LeaderLatch(client, "<root>/jobs")`. Default `/tenure`.
   */
  root?: string;
  /** Digest credentials, sent on every (re)connect (`addauth digest user:password`). */
  auth?: { username: string; password: string };
  /**
   * The ACL of the nodes tenure creates. Default: with `auth`, `'creator-all-world-read'`
   * (the credentials' owner may do anything, everyone else may only read, so observers work
   * and no one else can delete a candidate); without `auth`, `'open'` (anyone may do anything).
   */
  acl?: 'creator-all-world-read' | 'open' | readonly ZooKeeperAclEntry[];
  /**
   * The deadline of every request, ms. Default: a third of the session timeout, at most
   * 5 000. A request past it fails with `UnavailableError` and is retried with backoff.
   */
  requestTimeoutMs?: number;
  /**
   * Ask for the session only when it is first needed: at the first `campaign()` (or
   * `whenSessionReady()` where the arbitrator has it), not at creation. An arbitrator that
   * only reads (`leader()`, `candidates()`, `observe()`, `get()`) then never asks for one: reads
   * open a connection (ZooKeeper gives every connection a session, which writes nothing), but no
   * heartbeat runs and no node is created, so an ACL that allows only reads is enough.
   * Until then `health()` reports `ready: false`, session state `granting` and no session id
   * (`''`), and `ttlMs` is the TTL asked for. Default `false`: the session is asked for at
   * once, so a first campaign does not wait for it.
   */
  lazySession?: boolean;
}

/** An {@link Arbitrator} on ZooKeeper. */
export interface ZooKeeperArbitrator extends Arbitrator {
  /** The id of the current session, 16 hex digits (`''` while none). */
  readonly sessionId: string;
  /** The root path of the elections. */
  readonly root: string;
  /**
   * Makes the server expire this arbitrator's session now, as it would after a long
   * partition: for tests of your own failover handling. Terms end `session-lost` first, then a
   * second client joins the old session with its id and password and closes it (so no other
   * candidate can lead while a term of this session is still valid); a new session opens and
   * campaigning elections rejoin. Resolves once the server has ended the old session.
   */
  expireSession(): Promise<void>;
}
