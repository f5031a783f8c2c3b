import type { EventEmitter } from 'eventemitter3';
import type { TenureError } from './errors.js';
import { QueueElection, type QueueElectionOptions } from './queue-election.js';
import type { ElectionEvents, EndReason, Term, WaitOptions } from './types.js';

/** What a {@link MonitoredElection} reports to its arbitrator (for logs, events, metrics). */
export interface ElectionMonitor {
  /** The candidate joined the queue: a campaign began. */
  joined(election: MonitoredElection): void;
  /** A term began, `waitedMs` after the candidate joined the queue. */
  elected(election: MonitoredElection, term: Term, waitedMs: number): void;
  /** A term ended after `heldMs`. */
  ended(election: MonitoredElection, term: Term, reason: EndReason, heldMs: number): void;
  /** The election reported a background failure. */
  failed(election: MonitoredElection, error: TenureError): void;
}

/** The reasons after which the election stays in the queue and rejoins with a fresh key. */
const REJOINS: ReadonlySet<EndReason> = new Set([
  'expired',
  'session-lost',
  'revoked',
  'preempted',
]);

/**
 * A {@link QueueElection} that tells its arbitrator about its terms and failures as it emits
 * them, before its own listeners run. It taps `emit` rather than listening, so an application
 * calling `removeAllListeners()` on the election cannot silence the arbitrator's logs and
 * metrics. It also times each wait from joining the queue to being elected.
 */
export class MonitoredElection extends QueueElection {
  readonly #monitor: ElectionMonitor;
  readonly #now: () => number;
  /** When the candidate (re)joined the queue, while it waits to lead. */
  #joinedAt: number | undefined;
  #electedAt = 0;

  constructor(options: QueueElectionOptions, monitor: ElectionMonitor, now: () => number) {
    super(options);
    this.#monitor = monitor;
    this.#now = now;
  }

  override campaign(options?: WaitOptions): Promise<Term> {
    const before = this.state;
    const waiting = super.campaign(options);
    // An idle election starts its candidacy within campaign(), synchronously.
    if (before === 'idle' && this.state !== before) {
      this.#joinedAt = this.#now();
      this.#monitor.joined(this);
    }
    return waiting;
  }

  override emit<K extends EventEmitter.EventNames<ElectionEvents>>(
    event: K,
    ...args: EventEmitter.EventArgs<ElectionEvents, K>
  ): boolean {
    if (event === 'elected') {
      const [term] = args as ElectionEvents['elected'];
      const now = this.#now();
      const waitedMs = this.#joinedAt === undefined ? 0 : Math.max(0, now - this.#joinedAt);
      this.#joinedAt = undefined;
      this.#electedAt = now;
      this.#monitor.elected(this, term, waitedMs);
    } else if (event === 'ended') {
      const [term, reason] = args as ElectionEvents['ended'];
      const now = this.#now();
      // An involuntary end keeps the candidacy: the wait for the next term starts now.
      if (REJOINS.has(reason)) this.#joinedAt = now;
      this.#monitor.ended(this, term, reason, Math.max(0, now - this.#electedAt));
    } else if (event === 'error') {
      const [error] = args as ElectionEvents['error'];
      this.#monitor.failed(this, error);
    }
    return super.emit(event, ...args);
  }
}
