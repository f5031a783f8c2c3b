import type { Arbitrator, Clock, LoggingOptions } from '@tenure/core';

/** Options of {@link createMemoryServer}. */
export interface MemoryServerOptions {
  /** The server's clock, shared by every arbitrator on it. Default: the system's monotonic clock. */
  clock?: Clock;
  /**
   * How often the server checks sessions for expiry, ms. Default 100 (etcd checks every 500).
   * A crashed session is dropped between its TTL and TTL + this.
   */
  expiryCheckMs?: number;
}

/**
 * The in-process "server": the shared state several {@link MemoryArbitrator}s (each a client
 * with its own session) elect through. Think of it as one etcd cluster in memory.
 */
export interface MemoryServer {
  /** The server's clock. */
  readonly clock: Clock;
  /** Ids of the sessions currently alive on the server. */
  sessionIds(): string[];
  /** Keys currently held in the queue of `election`, in queue order. */
  queue(election: string): string[];
  /** Drops every session and stops the server's timers. Arbitrators on it see their sessions lost. */
  close(): Promise<void>;
  /** Same as {@link MemoryServer.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link createMemoryArbitrator}; `logger` is described in {@link LoggingOptions}. */
export interface MemoryArbitratorOptions extends LoggingOptions {
  /** Session TTL, ms. Default 10 000. */
  ttlMs?: number;
  /** See `DEFAULTS.maxDrift` in `@tenure/core`. Default 0.01. */
  maxDrift?: number;
  /** See `DEFAULTS.marginMs` in `@tenure/core`. Default 100. */
  marginMs?: number;
  /**
   * How often a held term's deadline is checked, ms (the watchdog that ends a term before the
   * callbacks that fell due during a pause; see docs/concepts.md). Default min(50, ttl/40).
   * Raise it only in unit tests that advance fake timers by hours: each check is a timer.
   */
  watchdogTickMs?: number;
  /**
   * The server to join. Default: one shared server per clock (so arbitrators created with the
   * same clock, or with none, see each other), like one `memory://` URL.
   */
  server?: MemoryServer;
  /** The clock, when no `server` is given (selects or creates that clock's shared server). */
  clock?: Clock;
  /** Simulated one-way latency of every request and notification, ms. Default 0. */
  latencyMs?: number;
  /**
   * Ask for the session only when it is first needed: at the first `campaign()` (or
   * `whenSessionReady()` where the arbitrator has it), not at creation. An arbitrator that
   * only reads (`leader()`, `candidates()`, `observe()`, `get()`) then never asks for one.
   * Until then `health()` reports `ready: false`, session state `granting` and no session id
   * (`''`), and `ttlMs` is the TTL asked for. Default `false`: the session is asked for at
   * once, so a first campaign does not wait for it.
   */
  lazySession?: boolean;
}

/**
 * An in-process arbitrator with the semantics of the real ones, plus the faults a test needs
 * to act on its session as the world would.
 */
export interface MemoryArbitrator extends Arbitrator {
  /** The server this arbitrator talks to. */
  readonly server: MemoryServer;
  /** The id of the current session (changes after a session loss). */
  readonly sessionId: string;
  /**
   * Freezes this client as a long GC pause would: no renewal is sent and none of its timers
   * runs (deadlines, retries, deliveries) until {@link MemoryArbitrator.resume}. The server
   * keeps counting, so the session expires after its TTL. `term.isValid()` still answers from
   * the clock, so a paused leader sees `false` once its deadline has passed.
   */
  pause(): void;
  /** Ends a {@link MemoryArbitrator.pause}: held timers and deliveries run now. `close()` resumes first. */
  resume(): void;
  /** The server drops this session now, as a lease expiry or revocation would. */
  expire(): void;
  /** Cuts the link to the server: every request fails with `UnavailableError`, no renewal arrives. */
  partition(): void;
  /** Restores the link cut by {@link MemoryArbitrator.partition}. */
  heal(): void;
}
