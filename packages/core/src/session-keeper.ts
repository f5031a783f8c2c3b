import { setMaxListeners } from 'node:events';
import { raceAbort, sleep } from './abort.js';
import { Backoff } from './backoff.js';
import type { Clock } from './clock.js';
import { ClosedError, isTenureError, type TenureError, UnavailableError } from './errors.js';
import type { SessionEvent, SessionState } from './health.js';
import { LeaseDeadline } from './lease-deadline.js';
import { SessionGoneError, type SessionRef, type SessionSource } from './queue-backend.js';
import type { ConnectionState } from './types.js';

/** How a {@link SessionKeeper} talks to its arbitrator about sessions. */
export interface SessionTransport {
  /** Opens a session; resolves with its id and the TTL the arbitrator granted. */
  grant(ttlMs: number): Promise<{ id: string; ttlMs: number }>;
  /**
   * Renews `id`. Resolves `true` once acknowledged, `false` (or rejects with
   * {@link SessionGoneError}) if the arbitrator no longer has it; rejects with
   * `UnavailableError` when unreachable.
   */
  keepAlive(id: string): Promise<boolean>;
  /** Ends `id` on the arbitrator (best effort). */
  revoke(id: string): Promise<void>;
}

/** What the keeper tells its arbitrator. */
export interface SessionHooks {
  /** The local deadline passed without a renewal acknowledged in time. */
  onLapse(): void;
  /** The session is gone (expired or revoked). */
  onLost(): void;
  /** A new TTL was granted (the arbitrator may raise or clamp the one requested). */
  onGranted?(ttlMs: number): void;
  onConnection(state: ConnectionState): void;
  onError(error: TenureError): void;
  /** A session was granted, renewed, failed a renewal or was lost (for metrics and logs). */
  onSession?(event: SessionEvent): void;
}

/** Options of {@link SessionKeeper}. */
export interface SessionKeeperOptions {
  /** The TTL to request, ms (the arbitrator may grant another). */
  ttlMs: number;
  /** Default `DEFAULTS.maxDrift` (see `LeaseDeadline`). */
  maxDrift?: number | undefined;
  /** Default `DEFAULTS.marginMs` (see `LeaseDeadline`). */
  marginMs?: number | undefined;
  /** Renewal interval as a share of the TTL. Default 1/3. */
  renewFraction?: number;
  /** The deadline watchdog's period while a term is held, ms (see `LeaseDeadline.tickMs`). */
  watchdogTickMs?: number | undefined;
}

type KeeperState = 'granting' | 'live' | 'closed';

/**
 * Keeps one session alive for an arbitrator: grants it, renews it every `renewFraction` of the
 * TTL (ttl/3 unless the adapter sets it; ZooKeeper a quarter), tracks the local deadline from
 * the *send* time of each acknowledged renewal (G1), ends terms through `onLapse` when that
 * deadline passes, and grants a new session when the old one is lost.
 */
export class SessionKeeper implements SessionSource {
  readonly deadline: LeaseDeadline;
  readonly #clock: Clock;
  readonly #transport: SessionTransport;
  readonly #hooks: SessionHooks;
  readonly #requestedTtlMs: number;
  readonly #renewFraction: number;
  readonly #backoff: Backoff;
  #state: KeeperState = 'granting';
  #current: { id: string; controller: AbortController } | undefined;
  readonly #waiters = new Set<{ resolve(session: SessionRef): void; reject(error: Error): void }>();
  #cancelTimer: (() => void) | undefined;
  /** Aborted by close(): ends a pause between grant attempts. */
  readonly #closed = new AbortController();
  #suspended = false;
  #everConnected = false;
  /** Granting has begun (start(), or the first ready() of a lazy arbitrator). */
  #started = false;
  /** The last grant failed in a way retrying will not fix (e.g. permission denied). */
  #fatal: TenureError | undefined;

  /**
   * @param clock - The time of the session: its deadline, renewals and retries (the memory
   * arbitrator's clock freezes while the client is paused).
   */
  constructor(
    clock: Clock,
    transport: SessionTransport,
    options: SessionKeeperOptions,
    hooks: SessionHooks,
  ) {
    this.#clock = clock;
    this.#transport = transport;
    this.#hooks = hooks;
    this.#requestedTtlMs = options.ttlMs;
    this.#renewFraction = options.renewFraction ?? 1 / 3;
    this.deadline = new LeaseDeadline({
      ttlMs: options.ttlMs,
      maxDrift: options.maxDrift,
      marginMs: options.marginMs,
      clock,
      onLapse: () => hooks.onLapse(),
      ...(options.watchdogTickMs === undefined ? {} : { tickMs: options.watchdogTickMs }),
    });
    this.#backoff = new Backoff({
      initialMs: Math.min(50, options.ttlMs / 10),
      maxMs: Math.max(50, options.ttlMs / 3),
    });
  }

  /** The TTL in force (granted), ms. */
  get ttlMs(): number {
    return this.deadline.ttlMs;
  }

  /** The renewal interval in force, ms (a share of the granted TTL). */
  get renewIntervalMs(): number {
    return this.#renewMs();
  }

  holdWatchdog(): () => void {
    return this.deadline.hold();
  }

  timer(fn: () => void, ms: number): () => void {
    return this.#setTimeout(fn, ms);
  }

  alignedTimer(fn: () => void, ms: number): () => void {
    const now = this.#clock.now();
    return this.#setTimeout(fn, ms - (now % ms));
  }

  /** The id of the current session, or `''` while none. */
  get id(): string {
    return this.#current?.id ?? '';
  }

  /** The session's state, for health reports. */
  get state(): SessionState {
    if (this.#state === 'live' && this.#suspended) return 'suspended';
    return this.#state;
  }

  /** Starts granting the first session (once; later calls do nothing). */
  start(): void {
    if (this.#started || this.#state === 'closed') return;
    this.#started = true;
    void this.#grant();
  }

  /** Whether granting has begun: a lazy arbitrator's keeper starts with its first campaign. */
  get started(): boolean {
    return this.#started;
  }

  isLive(sessionId: string): boolean {
    return this.#current?.id === sessionId && this.deadline.isLive();
  }

  remainingMs(sessionId: string): number {
    return this.isLive(sessionId) ? this.deadline.remainingMs() : 0;
  }

  ready(signals: ReadonlyArray<AbortSignal | undefined>): Promise<SessionRef> {
    if (this.#state === 'closed')
      return Promise.reject(new ClosedError('The arbitrator is closed'));
    const current = this.#current;
    if (current) return Promise.resolve({ id: current.id, lost: current.controller.signal });
    if (this.#fatal) return Promise.reject(this.#fatal);
    this.start();
    let waiter!: { resolve(session: SessionRef): void; reject(error: Error): void };
    const wait = new Promise<SessionRef>((resolve, reject) => {
      waiter = { resolve, reject };
      this.#waiters.add(waiter);
    });
    return raceAbort(wait, signals, 'Waiting for a session').finally(() =>
      this.#waiters.delete(waiter),
    );
  }

  async probe(sessionId: string): Promise<boolean> {
    if (this.#current?.id === sessionId) this.deadline.checkLapse();
    const sentAt = this.#clock.now();
    let alive: boolean;
    try {
      alive = await this.#transport.keepAlive(sessionId);
    } catch (error) {
      if (!(error instanceof SessionGoneError)) throw error;
      alive = false;
    }
    if (!alive) {
      this.lost(sessionId);
      return false;
    }
    if (this.#current?.id === sessionId) this.deadline.acknowledge(sentAt);
    return true;
  }

  lost(sessionId: string): void {
    const current = this.#current;
    if (!current || current.id !== sessionId || this.#state === 'closed') return;
    this.#current = undefined;
    this.#state = 'granting';
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.deadline.stop();
    current.controller.abort(new Error(`session ${sessionId} lost`));
    this.#hooks.onSession?.({ type: 'lost', sessionId });
    this.#hooks.onLost();
    this.#hooks.onConnection('lost');
    void this.#grant();
  }

  /** Stops renewing and revokes the session (best effort: unreachable means it expires by TTL). */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#closed.abort();
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.deadline.stop();
    const current = this.#current;
    this.#current = undefined;
    const closed = new ClosedError('The arbitrator is closed');
    current?.controller.abort(closed);
    for (const waiter of [...this.#waiters]) waiter.reject(closed);
    this.#waiters.clear();
    if (current) {
      try {
        await this.#transport.revoke(current.id);
      } catch {
        // Unreachable: the arbitrator expires the session after its TTL.
      }
    }
  }

  async #grant(): Promise<void> {
    while (this.#state === 'granting') {
      const sentAt = this.#clock.now();
      try {
        const granted = await this.#transport.grant(this.#requestedTtlMs);
        if (this.#state !== 'granting') {
          // Closed while the grant was in flight: give it back.
          await this.#transport.revoke(granted.id).catch(() => {});
          return;
        }
        this.#fatal = undefined;
        this.deadline.restart();
        if (granted.ttlMs !== this.deadline.ttlMs) {
          this.deadline.setTtl(granted.ttlMs);
          this.#hooks.onGranted?.(granted.ttlMs);
        }
        this.deadline.acknowledge(sentAt);
        const controller = new AbortController();
        // Every waiting candidacy of every election listens for the session's loss: many
        // listeners here are the design, not a leak (Node warns past 10).
        setMaxListeners(0, controller.signal);
        this.#current = { id: granted.id, controller };
        this.#state = 'live';
        this.#backoff.reset();
        this.#suspended = false;
        this.#hooks.onSession?.({ type: 'granted', sessionId: granted.id, ttlMs: granted.ttlMs });
        this.#hooks.onConnection(this.#everConnected ? 'reconnected' : 'connected');
        this.#everConnected = true;
        for (const waiter of [...this.#waiters]) {
          waiter.resolve({ id: granted.id, lost: controller.signal });
        }
        this.#waiters.clear();
        this.#schedule(this.#renewMs());
        return;
      } catch (error) {
        if (!this.#failed(error)) return;
        // close() cuts the pause short, so no timer outlives the keeper.
        await sleep(this.#backoff.next(), {
          clock: this.#clock,
          signals: [this.#closed.signal],
        }).catch(() => {});
      }
    }
  }

  #renewMs(): number {
    return this.deadline.ttlMs * this.#renewFraction;
  }

  #schedule(ms: number): void {
    this.#cancelTimer?.();
    this.#cancelTimer = this.#setTimeout(() => {
      this.#cancelTimer = undefined;
      void this.#renew();
    }, ms);
  }

  async #renew(): Promise<void> {
    const current = this.#current;
    if (!current || this.#state !== 'live') return;
    // After a pause this timer may run before the deadline's: end the terms before renewing.
    this.deadline.checkLapse();
    const sentAt = this.#clock.now();
    try {
      const alive = await this.#transport.keepAlive(current.id);
      if (this.#current !== current) return;
      if (!alive) {
        this.lost(current.id);
        return;
      }
      this.deadline.acknowledge(sentAt);
      this.#backoff.reset();
      this.#hooks.onSession?.({
        type: 'renewed',
        sessionId: current.id,
        latencyMs: this.#clock.now() - sentAt,
      });
      if (this.#suspended) {
        this.#suspended = false;
        this.#hooks.onConnection('reconnected');
      }
      this.#schedule(this.#renewMs());
    } catch (error) {
      if (this.#current !== current) return;
      if (error instanceof SessionGoneError) {
        this.lost(current.id);
        return;
      }
      if (!(error instanceof ClosedError)) {
        this.#hooks.onSession?.({
          type: 'renewal-failed',
          sessionId: current.id,
          error: error instanceof Error ? error : new Error(String(error)),
        });
      }
      if (!this.#failed(error)) return;
      this.#schedule(Math.min(this.#renewMs(), this.#backoff.next()));
    }
  }

  /** Runs `fn` after `ms` on the keeper's clock; returns a function that cancels it. */
  #setTimeout(fn: () => void, ms: number): () => void {
    const handle = this.#clock.setTimeout(fn, ms);
    return () => this.#clock.clearTimeout(handle);
  }

  /** Reports a failed request; returns whether to retry. */
  #failed(error: unknown): boolean {
    if (this.#state === 'closed' || error instanceof ClosedError) return false;
    if (isTenureError(error) && !error.retriable && this.#state === 'granting') {
      // Retrying will not fix this by itself: fail every waiting campaign now, keep trying slowly.
      this.#fatal = error;
      for (const waiter of [...this.#waiters]) waiter.reject(error);
      this.#waiters.clear();
    }
    if (!this.#suspended && this.#current) {
      this.#suspended = true;
      this.#hooks.onConnection('suspended');
    }
    this.#hooks.onError(
      isTenureError(error)
        ? error
        : new UnavailableError('A session request failed', { cause: error }),
    );
    return true;
  }
}
