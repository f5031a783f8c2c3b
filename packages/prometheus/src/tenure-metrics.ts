import {
  type Arbitrator,
  ConflictError,
  type ConnectionState,
  type ElectionState,
  type EndReason,
  InvalidArgumentError,
  isEndReason,
  parseEpoch,
  type SessionEvent,
  type SessionState,
  type TenureError,
  type TenureErrorCode,
  type Term,
} from '@tenure/core';
import type { RunOutcome, RunRecord, RunTrigger, Scheduler, SkipReason } from '@tenure/cron';
import type { Pool } from '@tenure/pool';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { PoolMetrics } from './pool-metrics.js';

/** Options of {@link createTenureMetrics}. */
export interface TenureMetricsOptions {
  /**
   * The registry the metrics are registered in. Default: a new `Registry` of its own (serve it,
   * or merge it with `Registry.merge`). Pass prom-client's global `register` to expose tenure's
   * metrics beside the application's.
   */
  registry?: Registry;
  /** The prefix of every metric name. Default `tenure_`. */
  prefix?: string;
}

/** Options of {@link TenureMetrics.instrumentArbitrator}. */
export interface InstrumentArbitratorOptions {
  /**
   * The value of the `arbitrator` label of this arbitrator's series. Default `default`. Give
   * each arbitrator instrumented on the same metrics its own name.
   */
  name?: string;
}

/**
 * tenure's Prometheus metrics in one registry: instrument arbitrators (their session and every
 * election on them) and cron schedulers. Labels are bounded: arbitrator, election and job
 * names, and values from fixed sets (end reasons, outcomes, states, error codes); never a
 * candidate value, key or session id.
 */
export interface TenureMetrics {
  /** The registry holding the metrics: `await registry.metrics()` is the scrape body. */
  readonly registry: Registry;
  /**
   * Instruments `arbitrator`: its session, connection and errors, and every election opened
   * on it (now or later). Returns a function that stops it (its series disappear from the
   * gauges; counters keep their totals).
   *
   * @throws {@link @tenure/core!InvalidArgumentError} for an object that is not an arbitrator or a bad name;
   *   {@link ConflictError} when this arbitrator is instrumented already, or an open one is
   *   instrumented under that name.
   */
  instrumentArbitrator(arbitrator: Arbitrator, options?: InstrumentArbitratorOptions): () => void;
  /**
   * Instruments a `@tenure/cron` scheduler through its public events: runs by outcome, run
   * durations, lateness (run start − slot), missed and skipped slots, zombies, running jobs.
   * Returns a function that stops it.
   *
   * @throws {@link @tenure/core!InvalidArgumentError} for an object that is not a scheduler;
   *   {@link ConflictError} when it is instrumented already.
   */
  instrumentScheduler(scheduler: Scheduler): () => void;
  /**
   * Instruments a `@tenure/pool` member through its public events and stats: items held and
   * assigned, leadership, claims and releases by reason, the items moved and placed by the
   * assignments it published as leader, and how long its claims waited. Returns a function
   * that stops it. (Instrumenting the member's arbitrator too adds a series per item election.)
   *
   * @throws {@link @tenure/core!InvalidArgumentError} for an object that is not a pool member;
   *   {@link ConflictError} when it is instrumented already.
   */
  instrumentPool(pool: Pool): () => void;
}

const SESSION_STATES: readonly SessionState[] = ['granting', 'live', 'suspended', 'closed'];
const ELECTION_STATES: readonly ElectionState[] = ['idle', 'campaigning', 'leading'];
const MAX_LABEL_CHARS = 200;

/**
 * Creates tenure's metrics in a registry (a new one unless `registry` is given). Every metric
 * is described in docs/operations.md.
 *
 * @throws {@link @tenure/core!InvalidArgumentError} for a bad option; {@link ConflictError} when the registry
 *   holds tenure's metrics already (create one `TenureMetrics` per registry and share it).
 */
export function createTenureMetrics(options: TenureMetricsOptions = {}): TenureMetrics {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object');
  }
  const prefix = options.prefix ?? 'tenure_';
  if (typeof prefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    throw new InvalidArgumentError(
      'prefix',
      `must be a Prometheus name prefix like "tenure_" (got ${JSON.stringify(prefix)})`,
    );
  }
  const registry = options.registry ?? new Registry();
  if (
    typeof registry !== 'object' ||
    registry === null ||
    typeof registry.registerMetric !== 'function' ||
    typeof registry.getSingleMetric !== 'function'
  ) {
    throw new InvalidArgumentError('registry', 'must be a prom-client Registry');
  }
  if (registry.getSingleMetric(`${prefix}session_up`) !== undefined) {
    throw new ConflictError(
      `The registry holds tenure's metrics (prefix "${prefix}") already: share one TenureMetrics per registry`,
    );
  }
  return new Metrics(registry, prefix);
}

interface InstrumentedArbitrator {
  readonly name: string;
  readonly arbitrator: Arbitrator;
  /** The epoch of each election's latest term on this arbitrator. */
  readonly epochs: Map<string, bigint>;
}

class Metrics implements TenureMetrics {
  readonly registry: Registry;
  readonly #arbitrators = new Map<string, InstrumentedArbitrator>();
  readonly #schedulers = new Set<Scheduler>();
  readonly #pools: PoolMetrics;

  readonly #sessionsGranted: Counter<'arbitrator'>;
  readonly #sessionsLost: Counter<'arbitrator'>;
  readonly #renewalSeconds: Histogram<'arbitrator'>;
  readonly #renewalFailures: Counter<'arbitrator'>;
  readonly #connectionChanges: Counter<'arbitrator' | 'state'>;
  readonly #errors: Counter<'arbitrator' | 'code'>;
  readonly #termsStarted: Counter<'arbitrator' | 'election'>;
  readonly #termsEnded: Counter<'arbitrator' | 'election' | 'reason'>;
  readonly #timeToElect: Histogram<'arbitrator' | 'election'>;
  readonly #termSeconds: Histogram<'arbitrator' | 'election'>;
  readonly #cronRuns: Counter<'election' | 'job' | 'outcome'>;
  readonly #cronRunSeconds: Histogram<'election' | 'job'>;
  readonly #cronLateness: Histogram<'election' | 'job' | 'trigger'>;
  readonly #cronMissed: Counter<'election' | 'job'>;
  readonly #cronSkipped: Counter<'election' | 'job' | 'reason'>;
  readonly #cronZombies: Counter<'election' | 'job'>;

  constructor(registry: Registry, prefix: string) {
    this.registry = registry;
    this.#pools = new PoolMetrics(registry, prefix);
    const registers = [registry];
    const arbitrators = () => [...this.#arbitrators.values()];
    const schedulers = () => [...this.#schedulers];

    // Gauges are read at each scrape (collect): from health(), or the schedulers' jobs().
    new Gauge({
      name: `${prefix}session_up`,
      help: "1 while the arbitrator's session is live (or suspended) and inside its local deadline: this replica can lead. 0 otherwise.",
      labelNames: ['arbitrator'],
      registers,
      collect() {
        this.reset();
        for (const { name, arbitrator } of arbitrators()) {
          this.set({ arbitrator: name }, arbitrator.health().ready ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: `${prefix}session_state`,
      help: "1 for the state the arbitrator's session is in (granting, live, suspended, closed), 0 for the others.",
      labelNames: ['arbitrator', 'state'],
      registers,
      collect() {
        this.reset();
        for (const { name, arbitrator } of arbitrators()) {
          const state = arbitrator.health().session.state;
          for (const s of SESSION_STATES)
            this.set({ arbitrator: name, state: s }, s === state ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: `${prefix}session_deadline_remaining_seconds`,
      help: 'Seconds left before the local deadline of the session: how long terms stay valid without another acknowledged renewal. Normally between 2/3 of the TTL and the TTL.',
      labelNames: ['arbitrator'],
      registers,
      collect() {
        this.reset();
        for (const { name, arbitrator } of arbitrators()) {
          this.set({ arbitrator: name }, arbitrator.health().session.remainingMs / 1000);
        }
      },
    });
    new Gauge({
      name: `${prefix}session_ttl_seconds`,
      help: 'The session TTL in force, as granted by the arbitrator (etcd raises a TTL below its minimum; ZooKeeper clamps it to its tick bounds).',
      labelNames: ['arbitrator'],
      registers,
      collect() {
        this.reset();
        for (const { name, arbitrator } of arbitrators()) {
          this.set({ arbitrator: name }, arbitrator.health().session.ttlMs / 1000);
        }
      },
    });
    this.#sessionsGranted = new Counter({
      name: `${prefix}sessions_granted_total`,
      help: 'Sessions granted: 1 at start, then 1 more after each session loss.',
      labelNames: ['arbitrator'],
      registers,
    });
    this.#sessionsLost = new Counter({
      name: `${prefix}sessions_lost_total`,
      help: 'Sessions lost (expired or revoked on the arbitrator): each one ends every term on the arbitrator.',
      labelNames: ['arbitrator'],
      registers,
    });
    this.#renewalSeconds = new Histogram({
      name: `${prefix}session_renewal_duration_seconds`,
      help: 'Round trip of each acknowledged session renewal (etcd lease keep-alive, ZooKeeper heartbeat), from send to acknowledgement.',
      labelNames: ['arbitrator'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#renewalFailures = new Counter({
      name: `${prefix}session_renewal_failures_total`,
      help: 'Session renewals that failed (unreachable, timed out) and were retried.',
      labelNames: ['arbitrator'],
      registers,
    });
    this.#connectionChanges = new Counter({
      name: `${prefix}connection_changes_total`,
      help: 'Connection state changes of the arbitrator, by new state (connected, suspended, reconnected, lost).',
      labelNames: ['arbitrator', 'state'],
      registers,
    });
    this.#errors = new Counter({
      name: `${prefix}errors_total`,
      help: 'Background errors of the arbitrator (its `error` events), by tenure error code. They are retried; a steady rate means the arbitrator is unreachable or refuses the credentials.',
      labelNames: ['arbitrator', 'code'],
      registers,
    });
    new Gauge({
      name: `${prefix}election_leader`,
      help: 'Per election: 1 while this replica leads with a valid term, 0 otherwise. Summed over replicas: never more than 1.',
      labelNames: ['arbitrator', 'election'],
      registers,
      collect() {
        this.reset();
        for (const { name, arbitrator } of arbitrators()) {
          for (const e of arbitrator.health().elections) {
            // A term whose local deadline has passed is no longer valid, even before it ends.
            const valid = e.state === 'leading' && (e.remainingMs ?? 0) > 0;
            this.set({ arbitrator: name, election: e.name }, valid ? 1 : 0);
          }
        }
      },
    });
    new Gauge({
      name: `${prefix}election_state`,
      help: "Per election: 1 for this replica's candidacy state (idle, campaigning, leading), 0 for the others.",
      labelNames: ['arbitrator', 'election', 'state'],
      registers,
      collect() {
        this.reset();
        for (const { name, arbitrator } of arbitrators()) {
          for (const e of arbitrator.health().elections) {
            for (const s of ELECTION_STATES) {
              this.set({ arbitrator: name, election: e.name, state: s }, s === e.state ? 1 : 0);
            }
          }
        }
      },
    });
    new Gauge({
      name: `${prefix}election_epoch`,
      help: "Per election: the epoch (fencing token) of this replica's current term, or of its latest one once it ended; absent before its first term. The max over replicas is the election's latest epoch.",
      labelNames: ['arbitrator', 'election'],
      registers,
      collect() {
        this.reset();
        for (const { name, arbitrator, epochs } of arbitrators()) {
          for (const e of arbitrator.health().elections) {
            const epoch = e.epoch !== undefined ? parseEpoch(e.epoch) : epochs.get(e.name);
            if (epoch !== undefined) {
              this.set({ arbitrator: name, election: e.name }, Number(epoch));
            }
          }
        }
      },
    });
    this.#termsStarted = new Counter({
      name: `${prefix}election_terms_started_total`,
      help: 'Per election: terms this replica started (times it was elected).',
      labelNames: ['arbitrator', 'election'],
      registers,
    });
    this.#termsEnded = new Counter({
      name: `${prefix}election_terms_ended_total`,
      help: 'Per election: terms of this replica that ended, by reason: resigned, closed (chosen), expired (no renewal acknowledged before the local deadline), session-lost, revoked (the key deleted by someone else), preempted (a candidate of higher priority took over).',
      labelNames: ['arbitrator', 'election', 'reason'],
      registers,
    });
    this.#timeToElect = new Histogram({
      name: `${prefix}election_time_to_elect_seconds`,
      help: 'Per election: from joining the queue (a campaign, or the rejoin after a term lost involuntarily) to being elected. Includes the time other candidates led.',
      labelNames: ['arbitrator', 'election'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    });
    this.#termSeconds = new Histogram({
      name: `${prefix}election_term_duration_seconds`,
      help: "Per election: how long this replica's terms lasted, observed when each ends.",
      labelNames: ['arbitrator', 'election'],
      buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
      registers,
    });
    this.#cronRuns = new Counter({
      name: `${prefix}cron_runs_total`,
      help: 'Cron runs that ended, by outcome: success, error, timeout, aborted, interrupted (found unfinished by a later leader). Counted by the replica that reports the end.',
      labelNames: ['election', 'job', 'outcome'],
      registers,
    });
    this.#cronRunSeconds = new Histogram({
      name: `${prefix}cron_run_duration_seconds`,
      help: 'Duration of cron runs that ended on this replica (interrupted runs are not observed).',
      labelNames: ['election', 'job'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    this.#cronLateness = new Histogram({
      name: `${prefix}cron_lateness_seconds`,
      help: 'Run start − slot, by trigger (schedule, catch-up, retry, manual: since the request). Includes the job jitter.',
      labelNames: ['election', 'job', 'trigger'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    });
    this.#cronMissed = new Counter({
      name: `${prefix}cron_missed_slots_total`,
      help: 'Slots that did not run at their time and were dropped by the catch-up policy (no leader, or a leader that fell behind). A lower bound after a very long outage (only the newest slots are listed).',
      labelNames: ['election', 'job'],
      registers,
    });
    this.#cronSkipped = new Counter({
      name: `${prefix}cron_skipped_slots_total`,
      help: 'Slots or triggers claimed but not run, by reason: overlap (the previous run was still going), max-attempts.',
      labelNames: ['election', 'job', 'reason'],
      registers,
    });
    this.#cronZombies = new Counter({
      name: `${prefix}cron_zombies_total`,
      help: 'Runs still going zombieAfterMs after their signal was aborted: a job that ignores its AbortSignal.',
      labelNames: ['election', 'job'],
      registers,
    });
    new Gauge({
      name: `${prefix}cron_running`,
      help: 'Per job: 1 while a run of it is going on this replica.',
      labelNames: ['election', 'job'],
      registers,
      collect() {
        this.reset();
        for (const scheduler of schedulers()) {
          const election = scheduler.election.name;
          for (const job of scheduler.jobs()) {
            this.set({ election, job: job.name }, job.running ? 1 : 0);
          }
        }
      },
    });
  }

  instrumentArbitrator(
    arbitrator: Arbitrator,
    options: InstrumentArbitratorOptions = {},
  ): () => void {
    if (
      typeof arbitrator !== 'object' ||
      arbitrator === null ||
      typeof arbitrator.health !== 'function' ||
      typeof arbitrator.on !== 'function'
    ) {
      throw new InvalidArgumentError('arbitrator', 'must be a tenure Arbitrator');
    }
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'must be an object');
    }
    const name = options.name ?? 'default';
    if (typeof name !== 'string' || name === '' || name.length > MAX_LABEL_CHARS) {
      throw new InvalidArgumentError(
        'name',
        `must be a non-empty string of at most ${MAX_LABEL_CHARS} characters`,
      );
    }
    for (const other of this.#arbitrators.values()) {
      if (other.arbitrator === arbitrator) {
        throw new ConflictError(
          `This arbitrator is instrumented already (as "${other.name}"): its events would count twice`,
        );
      }
    }
    const existing = this.#arbitrators.get(name);
    // A closed arbitrator's name may be taken over by its replacement.
    if (existing && existing.arbitrator.health().session.state !== 'closed') {
      throw new ConflictError(
        `An open arbitrator is instrumented as "${name}" already: give each its own name`,
      );
    }
    const entry: InstrumentedArbitrator = { name, arbitrator, epochs: new Map() };
    this.#arbitrators.set(name, entry);
    const labels = { arbitrator: name };

    const onSession = (event: SessionEvent) => {
      switch (event.type) {
        case 'granted':
          this.#sessionsGranted.inc(labels);
          break;
        case 'renewed':
          this.#renewalSeconds.observe(labels, event.latencyMs / 1000);
          break;
        case 'renewal-failed':
          this.#renewalFailures.inc(labels);
          break;
        case 'lost':
          this.#sessionsLost.inc(labels);
          break;
      }
    };
    const onConnection = (state: ConnectionState) => {
      this.#connectionChanges.inc({ ...labels, state });
    };
    const onError = (error: TenureError) => {
      this.#errors.inc({ ...labels, code: errorCode(error.code) });
    };
    const onElected = (term: Term, { waitedMs }: { readonly waitedMs: number }) => {
      const election = { ...labels, election: term.election };
      entry.epochs.set(term.election, term.epoch);
      this.#termsStarted.inc(election);
      this.#timeToElect.observe(election, waitedMs / 1000);
    };
    const onEnded = (term: Term, reason: EndReason, { heldMs }: { readonly heldMs: number }) => {
      const election = { ...labels, election: term.election };
      this.#termsEnded.inc({ ...election, reason: endReason(reason) });
      this.#termSeconds.observe(election, heldMs / 1000);
    };
    arbitrator.on('session', onSession);
    arbitrator.on('connection', onConnection);
    arbitrator.on('error', onError);
    arbitrator.on('elected', onElected);
    arbitrator.on('ended', onEnded);
    // Known before instrumenting: the terms running now.
    for (const e of arbitrator.health().elections) {
      if (e.epoch !== undefined) entry.epochs.set(e.name, parseEpoch(e.epoch));
    }
    return () => {
      arbitrator.off('session', onSession);
      arbitrator.off('connection', onConnection);
      arbitrator.off('error', onError);
      arbitrator.off('elected', onElected);
      arbitrator.off('ended', onEnded);
      if (this.#arbitrators.get(name) === entry) this.#arbitrators.delete(name);
    };
  }

  instrumentPool(pool: Pool): () => void {
    return this.#pools.instrument(pool);
  }

  instrumentScheduler(scheduler: Scheduler): () => void {
    if (
      typeof scheduler !== 'object' ||
      scheduler === null ||
      typeof scheduler.jobs !== 'function' ||
      typeof scheduler.on !== 'function' ||
      typeof scheduler.election?.name !== 'string'
    ) {
      throw new InvalidArgumentError('scheduler', 'must be a @tenure/cron Scheduler');
    }
    if (this.#schedulers.has(scheduler)) {
      throw new ConflictError(
        'This scheduler is instrumented already: its events would count twice',
      );
    }
    const election = scheduler.election.name;
    const onRunStart = (run: RunRecord) => {
      const lateness = (Date.parse(run.startedAt) - Date.parse(run.slot)) / 1000;
      if (Number.isFinite(lateness)) {
        this.#cronLateness.observe(
          { election, job: run.job, trigger: runTrigger(run.trigger) },
          Math.max(0, lateness),
        );
      }
    };
    const onRunEnd = (run: RunRecord) => {
      this.#cronRuns.inc({ election, job: run.job, outcome: runOutcome(run) });
      const seconds = runSeconds(run);
      if (seconds !== undefined) this.#cronRunSeconds.observe({ election, job: run.job }, seconds);
    };
    const onMissed = (job: string, slots: readonly Date[]) => {
      if (slots.length > 0) this.#cronMissed.inc({ election, job }, slots.length);
    };
    const onSkipped = (job: string, _slot: Date, reason: SkipReason) => {
      this.#cronSkipped.inc({ election, job, reason: skipReason(reason) });
    };
    const onZombie = (run: RunRecord) => {
      this.#cronZombies.inc({ election, job: run.job });
    };
    scheduler.on('run-start', onRunStart);
    scheduler.on('run-end', onRunEnd);
    scheduler.on('missed', onMissed);
    scheduler.on('skipped', onSkipped);
    scheduler.on('zombie', onZombie);
    this.#schedulers.add(scheduler);
    return () => {
      scheduler.off('run-start', onRunStart);
      scheduler.off('run-end', onRunEnd);
      scheduler.off('missed', onMissed);
      scheduler.off('skipped', onSkipped);
      scheduler.off('zombie', onZombie);
      this.#schedulers.delete(scheduler);
    };
  }
}

// Label values from fixed sets: anything unexpected (a newer tenure) becomes `other`, so a
// label never takes an unbounded value. End reasons come from core's one list.
const ERROR_CODES: ReadonlySet<string> = new Set<TenureErrorCode>([
  'INVALID_ARGUMENT',
  'LEADERSHIP_LOST',
  'CLOSED',
  'CONFLICT',
  'UNAVAILABLE',
  'ABORTED',
  'ILLEGAL_STATE',
  'STALE_EPOCH',
  'PERMISSION_DENIED',
  'TASK_FAILED',
]);
const OUTCOMES: ReadonlySet<string> = new Set<RunOutcome>([
  'success',
  'error',
  'timeout',
  'aborted',
  'interrupted',
]);
const TRIGGERS: ReadonlySet<string> = new Set<RunTrigger>([
  'schedule',
  'catch-up',
  'manual',
  'retry',
]);
const SKIP_REASONS: ReadonlySet<string> = new Set<SkipReason>(['overlap', 'max-attempts']);

function oneOf(set: ReadonlySet<string>, value: unknown): string {
  return typeof value === 'string' && set.has(value) ? value : 'other';
}

const endReason = (reason: EndReason): string => (isEndReason(reason) ? reason : 'other');
const errorCode = (code: TenureErrorCode) => oneOf(ERROR_CODES, code);
const runTrigger = (trigger: RunTrigger) => oneOf(TRIGGERS, trigger);
const skipReason = (reason: SkipReason) => oneOf(SKIP_REASONS, reason);
const runOutcome = (run: RunRecord) => oneOf(OUTCOMES, run.outcome);

/** A run's duration in seconds, when this replica saw it start and end. */
function runSeconds(run: RunRecord): number | undefined {
  if (run.outcome === 'interrupted' || run.endedAt === undefined) return undefined;
  const seconds = (Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
