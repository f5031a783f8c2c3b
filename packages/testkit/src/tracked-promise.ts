/** The state of a {@link TrackedPromise}. */
export type TrackedState<T> =
  | { readonly status: 'pending' }
  | { readonly status: 'fulfilled'; readonly value: T }
  | { readonly status: 'rejected'; readonly reason: unknown };

/**
 * A promise a test starts now and looks at later (a `campaign()` that waits in the queue): its
 * outcome can be read synchronously through {@link TrackedPromise.state}, and its rejection is
 * always observed, so a call rejected by the test's cleanup (`ClosedError` when the arbitrator
 * closes) never becomes an unhandled rejection.
 */
export interface TrackedPromise<T> {
  /** The original promise; `await` it to get the value or the rejection. */
  readonly promise: Promise<T>;
  /** The outcome so far. */
  readonly state: TrackedState<T>;
  /** `true` once fulfilled or rejected. */
  readonly settled: boolean;
}

/** Starts tracking `promise` (see {@link TrackedPromise}). */
export function track<T>(promise: Promise<T>): TrackedPromise<T> {
  let state: TrackedState<T> = { status: 'pending' };
  promise.then(
    (value) => {
      state = { status: 'fulfilled', value };
    },
    (reason: unknown) => {
      state = { status: 'rejected', reason };
    },
  );
  return {
    promise,
    get state() {
      return state;
    },
    get settled() {
      return state.status !== 'pending';
    },
  };
}
