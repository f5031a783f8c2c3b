import { InvalidArgumentError, LeadershipLostError } from './errors.js';
import { MAX_KEY_BYTES, MAX_STORED_VALUE_BYTES, validateName, validateValue } from './limits.js';
import type { EndReason, Epoch, PutOptions, Term } from './types.js';

/** What an adapter supplies to {@link ManagedTerm}: liveness and the fenced operations. */
export interface TermBackend {
  /** `true` while the session's local deadline has not passed (synchronous, monotonic). */
  isLive(): boolean;
  /** Milliseconds left before the session's local deadline. */
  remainingMs(): number;
  /** A write refused by the arbitrator once the term's key is gone (reject with LeadershipLostError then). */
  put(key: string, value: string, options: PutOptions): Promise<{ version: number }>;
  /** A delete fenced like `put`. */
  delete(key: string): Promise<void>;
}

/**
 * The reusable {@link Term} implementation: adapters create one per term and call
 * {@link ManagedTerm.end} exactly when it ends (later calls are ignored).
 */
export class ManagedTerm implements Term {
  readonly election: string;
  readonly epoch: Epoch;
  readonly key: string;
  readonly ended: Promise<EndReason>;
  /**
   * Made when {@link ManagedTerm.signal} is first read: a term whose signal nobody reads ends
   * without making an AbortSignal, its reason or its abort event. A resign ends the term before
   * its delete goes out, and these took about a third of the time in between (an AbortSignal
   * is an EventTarget; the reason captures a stack trace).
   */
  #controller: AbortController | undefined;
  readonly #backend: TermBackend;
  #resolveEnded!: (reason: EndReason) => void;
  #endReason: EndReason | undefined;

  constructor(details: { election: string; epoch: Epoch; key: string }, backend: TermBackend) {
    this.election = details.election;
    this.epoch = details.epoch;
    this.key = details.key;
    this.#backend = backend;
    this.ended = new Promise<EndReason>((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      // Read after the end: aborted already, with the same reason it would have had.
      if (this.#endReason !== undefined) {
        this.#controller.abort(this.#lostError(`ended (${this.#endReason})`));
      }
    }
    return this.#controller.signal;
  }

  get endReason(): EndReason | undefined {
    return this.#endReason;
  }

  isValid(): boolean {
    return this.#endReason === undefined && this.#backend.isLive();
  }

  remainingMs(): number {
    return this.#endReason === undefined ? this.#backend.remainingMs() : 0;
  }

  assertValid(): void {
    if (!this.isValid()) throw this.#lostError('is no longer valid');
  }

  async put(key: string, value: string, options: PutOptions = {}): Promise<{ version: number }> {
    validatePut(key, value, options);
    this.assertValid();
    return this.#backend.put(key, value, options);
  }

  async delete(key: string): Promise<void> {
    validateName('key', key, { allowSlash: true, maxBytes: MAX_KEY_BYTES });
    this.assertValid();
    return this.#backend.delete(key);
  }

  /**
   * Ends the term: aborts {@link Term.signal} with a {@link LeadershipLostError} and resolves
   * {@link Term.ended}. Returns `false` if it had already ended.
   */
  end(reason: EndReason): boolean {
    if (this.#endReason !== undefined) return false;
    this.#endReason = reason;
    this.#controller?.abort(this.#lostError(`ended (${reason})`));
    this.#resolveEnded(reason);
    return true;
  }

  #lostError(what: string): LeadershipLostError {
    const reason = this.#endReason ?? 'expired';
    return new LeadershipLostError(
      `The term of "${this.election}" with epoch ${this.epoch} ${what}`,
      {
        reason,
        epoch: this.epoch,
      },
    );
  }
}

/** Checks the arguments of a write beside an election ({@link Term.put}, `Election.post`). */
export function validatePut(key: string, value: string, options: PutOptions): void {
  validateName('key', key, { allowSlash: true, maxBytes: MAX_KEY_BYTES });
  validateValue('value', value, MAX_STORED_VALUE_BYTES);
  const ifVersion = options.ifVersion;
  if (
    ifVersion !== undefined &&
    ifVersion !== 'absent' &&
    !(Number.isSafeInteger(ifVersion) && ifVersion >= 1)
  ) {
    throw new InvalidArgumentError(
      'ifVersion',
      `must be 'absent' or an integer ≥ 1 (got ${String(ifVersion)})`,
    );
  }
}
