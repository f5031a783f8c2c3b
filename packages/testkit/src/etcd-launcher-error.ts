/**
 * The error every etcd launcher function fails with.
 *
 * @packageDocumentation
 */

/** Why an etcd launcher call failed. */
export type EtcdLauncherErrorCode =
  /** The `etcd` / `etcdctl` binary is not installed (the message says how to get it). */
  | 'BINARY_MISSING'
  /** The etcd process exited before it became ready. */
  | 'EXITED_EARLY'
  /** The etcd process did not become healthy in time. */
  | 'NOT_READY'
  /** No raft leader was found in time. */
  | 'NO_LEADER'
  /** A process did not go away after the signal that should have ended it. */
  | 'NOT_GONE'
  /** The call is not possible in the node's or cluster's current state (e.g. after `stop()`). */
  | 'ILLEGAL_STATE'
  /** Fault injection was asked of an external cluster (`TENURE_ETCD_ENDPOINTS`). */
  | 'EXTERNAL_CLUSTER'
  /** No endpoint of the external cluster (`TENURE_ETCD_ENDPOINTS`), or no member, answered. */
  | 'UNREACHABLE'
  /** etcd refused a request the launcher made for the test (e.g. a compaction). */
  | 'REQUEST_FAILED';

/** Options of the {@link EtcdLauncherError} constructor. */
export interface EtcdLauncherErrorOptions {
  /** The last lines of the etcd log, when a process was involved (also in the message). */
  logTail?: string;
  /** The error that caused this one. */
  cause?: unknown;
}

/**
 * An etcd launcher failure. Switch on {@link EtcdLauncherError.code}; for a process that failed
 * to start, the message already holds the tail of its log and {@link EtcdLauncherError.logTail}
 * holds it alone.
 */
export class EtcdLauncherError extends Error {
  /** Why the call failed. */
  readonly code: EtcdLauncherErrorCode;
  /** The last lines of the etcd log, when a process was involved. */
  readonly logTail: string | undefined;

  constructor(
    code: EtcdLauncherErrorCode,
    message: string,
    options: EtcdLauncherErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EtcdLauncherError';
    this.code = code;
    this.logTail = options.logTail;
  }
}
