import {
  DEFAULTS,
  InvalidArgumentError,
  type Logger,
  STATE_BACKEND,
  type StateBackend,
  type StateCapable,
  systemClock,
} from '@tenure/core';
import {
  type OptionNames,
  QueueArbitrator,
  type SessionKeeperOptions,
  type SessionTransport,
  validateElectionName,
  validateLogger,
  validateName,
  validateOptions,
} from '@tenure/core/internal';
import { Link } from './link.js';
import { MemoryQueue } from './memory-queue.js';
import type { MemoryArbitrator, MemoryArbitratorOptions, MemoryServer } from './options.js';
import { MemoryServerImpl, sharedServerImpl } from './server.js';
import { MemoryStateBackend, MemoryStateSubscriptions } from './state-backend.js';

/** The keys of {@link MemoryArbitratorOptions}. */
const MEMORY_OPTIONS = {
  ttlMs: true,
  maxDrift: true,
  marginMs: true,
  watchdogTickMs: true,
  server: true,
  clock: true,
  latencyMs: true,
  logger: true,
  lazySession: true,
} as const satisfies OptionNames<MemoryArbitratorOptions>;

class MemoryArbitratorImpl extends QueueArbitrator implements MemoryArbitrator, StateCapable {
  readonly #server: MemoryServerImpl;
  readonly #link: Link;
  readonly #state = new MemoryStateSubscriptions();

  constructor(
    server: MemoryServerImpl,
    link: Link,
    session: SessionKeeperOptions,
    logger: Logger | undefined,
    lazySession: boolean,
  ) {
    super({
      kind: 'memory',
      logger,
      lazySession,
      // The session, and the durations in events and logs, follow the server's clock (fake
      // timers included), with the client's timers frozen while it is paused.
      clock: link.clientClock,
      transport: transport(link, server),
      session,
      nameRules: { allowSlash: true },
      backend: (name) => new MemoryQueue(name, link, server),
      delay: (ms) => link.delay(ms),
      // A frozen process cannot close anything: closing ends the pause first.
      beforeClose: () => link.resume(),
      shutdown: async () => link.close(),
    });
    this.#server = server;
    this.#link = link;
    link.onResync = () => {
      this.resync();
      this.#state.resync();
    };
  }

  [STATE_BACKEND](election: string, map: string): StateBackend {
    validateElectionName('election', election, { allowSlash: true });
    validateName('map', map);
    return new MemoryStateBackend(election, map, this.#link, this.#server, this.#state);
  }

  get server(): MemoryServer {
    return this.#server;
  }

  pause(): void {
    this.#link.pause();
  }

  resume(): void {
    this.#link.resume();
  }

  expire(): void {
    const id = this.sessionId;
    if (!id) return;
    // A connected client hears of its session's end before any of its keys' deletions (as a
    // ZooKeeper client does): its terms end `session-lost`. A paused or cut-off one learns of it
    // later, from the deletions (`revoked`) or its next renewal.
    if (!this.#link.paused && !this.#link.partitioned) this.sessionLost(id);
    this.#server.revoke(id);
  }

  partition(): void {
    this.#link.partition();
  }

  heal(): void {
    this.#link.heal();
  }
}

function transport(link: Link, server: MemoryServerImpl): SessionTransport {
  return {
    grant: (ttlMs) => link.request('grant', () => server.grant(ttlMs)),
    // A gone session throws core's SessionGoneError, which the keeper reads as "not alive".
    keepAlive: (id) =>
      link.request('keep-alive', () => {
        server.keepAlive(id);
        return true;
      }),
    revoke: (id) => link.request('revoke', () => server.revoke(id)),
  };
}

/**
 * Creates an in-process arbitrator: one client with its own session on a {@link MemoryServer}
 * (by default the shared server of its clock, so arbitrators created alike see each other).
 * Same semantics as the etcd and ZooKeeper adapters; use it for demos and for unit tests of
 * code built on tenure, with `pause()`, `expire()`, `partition()` and `heal()` as faults.
 *
 * @throws {@link @tenure/core!InvalidArgumentError} for invalid options, at once.
 */
export function createMemoryArbitrator(options: MemoryArbitratorOptions = {}): MemoryArbitrator {
  validateOptions<MemoryArbitratorOptions>('options', options, MEMORY_OPTIONS);
  let server: MemoryServerImpl;
  if (options.server !== undefined) {
    if (!(options.server instanceof MemoryServerImpl)) {
      throw new InvalidArgumentError('server', 'must come from createMemoryServer()');
    }
    server = options.server;
  } else {
    server = sharedServerImpl('default', options.clock ?? systemClock);
  }
  const latencyMs = options.latencyMs ?? 0;
  if (typeof latencyMs !== 'number' || !Number.isFinite(latencyMs) || latencyMs < 0) {
    throw new InvalidArgumentError(
      'latencyMs',
      `must be a finite number ≥ 0 (got ${String(latencyMs)})`,
    );
  }
  if (options.lazySession !== undefined && typeof options.lazySession !== 'boolean') {
    throw new InvalidArgumentError('lazySession', 'must be true or false');
  }
  const logger = validateLogger('logger', options.logger);
  const link = new Link(server.clock, latencyMs);
  // The keeper validates ttlMs, maxDrift and marginMs before anything starts.
  return new MemoryArbitratorImpl(
    server,
    link,
    {
      ttlMs: options.ttlMs ?? DEFAULTS.ttlMs,
      maxDrift: options.maxDrift,
      marginMs: options.marginMs,
      watchdogTickMs: options.watchdogTickMs,
    },
    logger,
    options.lazySession ?? false,
  );
}
