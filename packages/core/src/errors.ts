/**
 * The error hierarchy of tenure. Every error thrown or emitted by a tenure package is a
 * {@link TenureError} with a stable literal {@link TenureError.code}, a {@link TenureError.retriable}
 * flag and, where there was one, the underlying `cause`.
 *
 * @packageDocumentation
 */

import type { EndReason, Epoch } from './types.js';

/** Every code a {@link TenureError} can carry. Stable across releases. */
export type TenureErrorCode =
  | 'INVALID_ARGUMENT'
  | 'LEADERSHIP_LOST'
  | 'CLOSED'
  | 'CONFLICT'
  | 'UNAVAILABLE'
  | 'ABORTED'
  | 'ILLEGAL_STATE'
  | 'STALE_EPOCH'
  | 'PERMISSION_DENIED'
  | 'TASK_FAILED';

/** Options accepted by every {@link TenureError} constructor. */
export interface TenureErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
}

/**
 * Base class of every tenure error. Check with {@link isTenureError} or `instanceof`, then switch
 * on `code`; `retriable` says whether the same call may succeed if tried again later.
 */
export class TenureError extends Error {
  /** A stable, machine-readable code. */
  readonly code: TenureErrorCode;
  /** `true` when retrying the same operation later may succeed (e.g. the arbitrator was unreachable). */
  readonly retriable: boolean;

  constructor(
    code: TenureErrorCode,
    message: string,
    options: TenureErrorOptions & { retriable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** `true` when `error` is a {@link TenureError} (across package copies, by shape). */
export function isTenureError(error: unknown): error is TenureError {
  if (error instanceof TenureError) return true;
  return (
    typeof error === 'object' &&
    error !== null &&
    error instanceof Error &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { retriable?: unknown }).retriable === 'boolean'
  );
}

/**
 * An option or argument is invalid. Thrown synchronously, before any I/O, naming the field.
 */
export class InvalidArgumentError extends TenureError {
  declare readonly code: 'INVALID_ARGUMENT';
  /** The name of the offending option or argument, e.g. `ttlMs` or `name`. */
  readonly field: string;

  constructor(field: string, problem: string, options: TenureErrorOptions = {}) {
    super('INVALID_ARGUMENT', `Invalid ${field}: ${problem}`, options);
    this.field = field;
  }
}

/**
 * The term is over, or was never valid when the operation ran: the caller is not (or no
 * longer) the leader. Also the `reason` of every {@link Term.signal} once the term has ended.
 */
export class LeadershipLostError extends TenureError {
  declare readonly code: 'LEADERSHIP_LOST';
  /** Why the term ended; `undefined` when the operation found no term at all. */
  readonly reason: EndReason | undefined;
  /** The epoch of the term that was lost, if there was one. */
  readonly epoch: Epoch | undefined;

  constructor(
    message: string,
    details: { reason?: EndReason; epoch?: Epoch } & TenureErrorOptions = {},
  ) {
    super('LEADERSHIP_LOST', message, details);
    this.reason = details.reason;
    this.epoch = details.epoch;
  }
}

/** The object (election, arbitrator, scheduler…) was closed before or during the call. */
export class ClosedError extends TenureError {
  declare readonly code: 'CLOSED';
  constructor(message: string, options: TenureErrorOptions = {}) {
    super('CLOSED', message, options);
  }
}

/**
 * The call conflicts with existing state: a second candidacy for the same election on one
 * arbitrator, or a conditional write whose `ifVersion` did not match.
 */
export class ConflictError extends TenureError {
  declare readonly code: 'CONFLICT';
  constructor(message: string, options: TenureErrorOptions = {}) {
    super('CONFLICT', message, options);
  }
}

/** The arbitrator could not be reached or did not answer in time. Retriable. */
export class UnavailableError extends TenureError {
  declare readonly code: 'UNAVAILABLE';
  constructor(message: string, options: TenureErrorOptions = {}) {
    super('UNAVAILABLE', message, { ...options, retriable: true });
  }
}

/** A waiting call was cancelled through its `AbortSignal`; `cause` is the signal's reason. */
export class AbortedError extends TenureError {
  declare readonly code: 'ABORTED';
  constructor(message = 'The operation was aborted', options: TenureErrorOptions = {}) {
    super('ABORTED', message, options);
  }
}

/** The call is not allowed in the object's current state (e.g. `proclaim()` with no term). */
export class IllegalStateError extends TenureError {
  declare readonly code: 'ILLEGAL_STATE';
  constructor(message: string, options: TenureErrorOptions = {}) {
    super('ILLEGAL_STATE', message, options);
  }
}

/**
 * A write carried an epoch lower than the highest one a {@link FenceGate} has admitted: it
 * comes from a deposed leader and must be refused.
 */
export class StaleEpochError extends TenureError {
  declare readonly code: 'STALE_EPOCH';
  /** The epoch that was refused. */
  readonly epoch: Epoch;
  /** The highest epoch admitted so far for the same scope. */
  readonly highest: Epoch;

  constructor(epoch: Epoch, highest: Epoch, scope: string) {
    super(
      'STALE_EPOCH',
      `Stale epoch ${epoch} for "${scope}": epoch ${highest} has already been admitted`,
    );
    this.epoch = epoch;
    this.highest = highest;
  }
}

/** A leader task (see {@link runAsLeader}) threw; `cause` is what it threw. */
export class TaskFailedError extends TenureError {
  declare readonly code: 'TASK_FAILED';
  constructor(message: string, options: TenureErrorOptions = {}) {
    super('TASK_FAILED', message, options);
  }
}

/**
 * The arbitrator refused the credentials or the permissions (wrong password, missing role, a
 * TLS client certificate it does not accept). Not retriable: fix the configuration.
 */
export class PermissionDeniedError extends TenureError {
  declare readonly code: 'PERMISSION_DENIED';
  constructor(message: string, options: TenureErrorOptions = {}) {
    super('PERMISSION_DENIED', message, options);
  }
}
