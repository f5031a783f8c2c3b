import {
  Backoff,
  type Clock,
  ClosedError,
  type ConnectionState,
  isTenureError,
  type TenureError,
  UnavailableError,
} from '@tenure/core';
import {
  LeaseDeadline,
  raceAbort,
  type SessionRef,
  type SessionSource,
} from '@tenure/core/internal';
import type { Link } from './link.js';
import { type MemoryServerImpl, SessionGoneError } from './server.js';

/** What the keeper tells its arbitrator. */
export interface SessionHooks {
  /** The local deadline passed without a renewal acknowledged in time. */
  onLapse(): void;
  /** The session is gone (expired or revoked on the server). */
  onLost(): void;
  onConnection(state: ConnectionState): void;
  onError(error: TenureError): void;
}

type KeeperState = 'granting' | 'live' | 'closed';

/**
 * Keeps one session alive: grants it, renews it every ttl/3, tracks the local deadline from the
 * send time of each acknowledged renewal, and grants a new session when the old one is lost.
 */
export class SessionKeeper implements SessionSource {
  readonly deadline: LeaseDeadline;
  readonly #link: Link;
  readonly #server: MemoryServerImpl;
  readonly #hooks: SessionHooks;
  readonly #ttlMs: number;
  readonly #backoff: Backoff;
  #state: KeeperState = 'granting';
  #current: { id: string; controller: AbortController } | undefined;
  #waiters = new Set<(session: SessionRef) => void>();
  #cancelTimer: (() => void) | undefined;
  #suspended = false;
  #everConnected = false;

  constructor(
    link: Link,
    server: MemoryServerImpl,
    options: { ttlMs: number; maxDrift: number; marginMs: number },
    hooks: SessionHooks,
  ) {
    this.#link = link;
    this.#server = server;
    this.#hooks = hooks;
    this.#ttlMs = options.ttlMs;
    const linkClock: Clock = {
      now: () => link.clock.now(),
      setTimeout: (fn, ms) => link.setTimeout(fn, ms),
      clearTimeout: (cancel) => (cancel as () => void)(),
    };
    this.deadline = new LeaseDeadline({
      ttlMs: options.ttlMs,
      maxDrift: options.maxDrift,
      marginMs: options.marginMs,
      clock: linkClock,
      onLapse: () => hooks.onLapse(),
    });
    this.#backoff = new Backoff({
      initialMs: Math.min(50, options.ttlMs / 10),
      maxMs: options.ttlMs / 3,
    });
  }

  /** The id of the current session, or `''` while none. */
  get id(): string {
    return this.#current?.id ?? '';
  }

  /** Starts granting the first session. */
  start(): void {
    void this.#grant();
  }

  /** `true` while `sessionId` is current and its local deadline has not passed. */
  isLive(sessionId: string): boolean {
    return this.#current?.id === sessionId && this.deadline.isLive();
  }

  /** Milliseconds before the local deadline of `sessionId` (0 unless it is current and live). */
  remainingMs(sessionId: string): number {
    return this.isLive(sessionId) ? this.deadline.remainingMs() : 0;
  }

  /** Waits for a live session. Rejects with AbortedError on abort, ClosedError once closed. */
  ready(signals: ReadonlyArray<AbortSignal | undefined>): Promise<SessionRef> {
    if (this.#state === 'closed')
      return Promise.reject(new ClosedError('The memory arbitrator is closed'));
    const current = this.#current;
    if (current) return Promise.resolve({ id: current.id, lost: current.controller.signal });
    let resolveWaiter!: (session: SessionRef) => void;
    const wait = new Promise<SessionRef>((resolve) => {
      resolveWaiter = resolve;
      this.#waiters.add(resolve);
    });
    return raceAbort(wait, signals, 'Waiting for a session').finally(() =>
      this.#waiters.delete(resolveWaiter),
    );
  }

  /**
   * Checks with the server whether `sessionId` is still alive (used when a key vanished).
   * Reports the loss if it is gone. Rejects with UnavailableError if unreachable.
   */
  async probe(sessionId: string): Promise<boolean> {
    const sentAt = this.#link.clock.now();
    try {
      await this.#link.request('keep-alive', () => this.#server.keepAlive(sessionId));
    } catch (error) {
      if (error instanceof SessionGoneError) {
        this.lost(sessionId);
        return false;
      }
      throw error;
    }
    if (this.#current?.id === sessionId) this.deadline.acknowledge(sentAt);
    return true;
  }

  /** Records that `sessionId` is gone; starts a new session. Ignored for a stale id. */
  lost(sessionId: string): void {
    const current = this.#current;
    if (!current || current.id !== sessionId || this.#state === 'closed') return;
    this.#current = undefined;
    this.#state = 'granting';
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.deadline.stop();
    current.controller.abort(new Error(`session ${sessionId} lost`));
    this.#hooks.onLost();
    this.#hooks.onConnection('lost');
    void this.#grant();
  }

  /** Stops renewing and revokes the session (best effort: unreachable means it expires by TTL). */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.deadline.stop();
    const current = this.#current;
    this.#current = undefined;
    current?.controller.abort(new ClosedError('The memory arbitrator is closed'));
    if (current) {
      try {
        await this.#link.request('revoke', () => this.#server.revoke(current.id));
      } catch {
        // Unreachable: the server expires the session after its TTL.
      }
    }
  }

  async #grant(): Promise<void> {
    while (this.#state === 'granting') {
      const sentAt = this.#link.clock.now();
      try {
        const granted = await this.#link.request('grant', () => this.#server.grant(this.#ttlMs));
        if (this.#state !== 'granting') {
          // Closed while the grant was in flight: give it back.
          this.#server.revoke(granted.id);
          return;
        }
        this.deadline.restart();
        this.deadline.acknowledge(sentAt);
        const controller = new AbortController();
        this.#current = { id: granted.id, controller };
        this.#state = 'live';
        this.#backoff.reset();
        this.#suspended = false;
        this.#hooks.onConnection(this.#everConnected ? 'reconnected' : 'connected');
        this.#everConnected = true;
        for (const waiter of [...this.#waiters])
          waiter({ id: granted.id, lost: controller.signal });
        this.#waiters.clear();
        this.#schedule(this.#ttlMs / 3);
        return;
      } catch (error) {
        if (!this.#failed(error)) return;
        await this.#link.delay(this.#backoff.next());
      }
    }
  }

  #schedule(ms: number): void {
    this.#cancelTimer?.();
    this.#cancelTimer = this.#link.setTimeout(() => {
      this.#cancelTimer = undefined;
      void this.#renew();
    }, ms);
  }

  async #renew(): Promise<void> {
    const current = this.#current;
    if (!current || this.#state !== 'live') return;
    const sentAt = this.#link.clock.now();
    try {
      await this.#link.request('keep-alive', () => this.#server.keepAlive(current.id));
      if (this.#current !== current) return;
      this.deadline.acknowledge(sentAt);
      this.#backoff.reset();
      if (this.#suspended) {
        this.#suspended = false;
        this.#hooks.onConnection('reconnected');
      }
      this.#schedule(this.#ttlMs / 3);
    } catch (error) {
      if (this.#current !== current) return;
      if (error instanceof SessionGoneError) {
        this.lost(current.id);
        return;
      }
      if (!this.#failed(error)) return;
      this.#schedule(Math.min(this.#ttlMs / 3, this.#backoff.next()));
    }
  }

  /** Reports a failed request; returns whether to retry. */
  #failed(error: unknown): boolean {
    if (this.#state === 'closed') return false;
    if (error instanceof ClosedError) return false;
    if (!this.#suspended && this.#current) {
      this.#suspended = true;
      this.#hooks.onConnection('suspended');
    }
    this.#hooks.onError(
      isTenureError(error)
        ? error
        : new UnavailableError('memory arbitrator request failed', { cause: error }),
    );
    return true;
  }
}
