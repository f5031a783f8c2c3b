import type { Backoff } from './backoff.js';
import { ClosedError, isTenureError } from './errors.js';
import {
  type QueueBackend,
  type QueueKey,
  SessionGoneError,
  type SessionRef,
} from './queue-backend.js';

/**
 * How a candidate leaves its election's queue: deletes its key, and when the arbitrator is
 * unreachable keeps trying in the background until the key is gone, the session with it, or
 * the arbitrator closes. A key left behind would block the queue for as long as the session
 * is renewed.
 */
export class QueueExit {
  readonly #backend: QueueBackend;
  readonly #options: QueueExitOptions;
  #pending: Promise<void> | undefined;

  constructor(backend: QueueBackend, options: QueueExitOptions) {
    this.#backend = backend;
    this.#options = options;
  }

  /** A delete still retrying in the background, if any. */
  get pending(): Promise<void> | undefined {
    return this.#pending;
  }

  /** Deletes `own` if it still exists; on failure, retries in the background. */
  async leave(own: QueueKey): Promise<void> {
    try {
      await this.#backend.leave(own);
      return;
    } catch (error) {
      if (isMoot(error)) return;
      this.#options.report(error);
    }
    const backoff = this.#options.backoff();
    const retry = async () => {
      for (;;) {
        await this.#options.delay(backoff.next());
        try {
          await this.#backend.leave(own);
          return;
        } catch (error) {
          if (isMoot(error) || (isTenureError(error) && !error.retriable)) return;
        }
      }
    };
    const pending = retry()
      .catch(() => {})
      .finally(() => {
        if (this.#pending === pending) this.#pending = undefined;
      });
    this.#pending = pending;
  }

  /**
   * Deletes `own` in the foreground, retrying until done, moot, or `stop` or the session's
   * loss aborts; `true` once the key is deleted.
   */
  async leaveNow(own: QueueKey, session: SessionRef, stop: AbortSignal): Promise<boolean> {
    const backoff = this.#options.backoff();
    while (!stop.aborted && !session.lost.aborted) {
      try {
        await this.#backend.leave(own);
        return true;
      } catch (error) {
        if (isMoot(error)) return false;
        this.#options.report(error);
        await this.#options.delay(backoff.next());
      }
    }
    return false;
  }
}

/** What a {@link QueueExit} needs from its election. */
export interface QueueExitOptions {
  /** A fresh backoff for one series of retries. */
  backoff(): Backoff;
  /** Waits before a retry. */
  delay(ms: number): Promise<void>;
  /** Reports a failed attempt. */
  report(error: unknown): void;
}

/** The arbitrator closed or the session went: the key is gone or will go by itself. */
function isMoot(error: unknown): boolean {
  return error instanceof ClosedError || error instanceof SessionGoneError;
}
