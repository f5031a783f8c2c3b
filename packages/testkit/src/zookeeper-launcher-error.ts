/**
 * The error every ZooKeeper launcher function fails with.
 *
 * @packageDocumentation
 */

/**
 * Why a ZooKeeper launcher call failed. The codes are those of `EtcdLauncherErrorCode` where the
 * meaning is the same.
 */
export type ZooKeeperLauncherErrorCode =
  /** Java or a ZooKeeper jar is not installed (the message says how to get them). */
  | 'NOT_INSTALLED'
  /** The ZooKeeper process exited before it became ready. */
  | 'EXITED_EARLY'
  /** The ZooKeeper process did not start serving in time. */
  | 'NOT_READY'
  /** No ensemble member became leader in time. */
  | 'NO_LEADER'
  /** A process did not go away after the signal that should have ended it. */
  | 'NOT_GONE'
  /** The call is not possible in the node's or ensemble's current state (e.g. after `stop()`). */
  | 'ILLEGAL_STATE'
  /** Fault injection was asked of an external ensemble (`TENURE_ZK_CONNECT`). */
  | 'EXTERNAL_ENSEMBLE'
  /**
   * A server did not answer: a four-letter word got no reply in time, or no server of the
   * external ensemble (`TENURE_ZK_CONNECT`) could be reached.
   */
  | 'UNREACHABLE';

/** Options of the {@link ZooKeeperLauncherError} constructor. */
export interface ZooKeeperLauncherErrorOptions {
  /** The last lines of the ZooKeeper log, when a process was involved (also in the message). */
  logTail?: string;
  /** The error that caused this one. */
  cause?: unknown;
}

/**
 * A ZooKeeper launcher failure. Switch on {@link ZooKeeperLauncherError.code}; for a process
 * that failed to start, the message already holds the tail of its log and
 * {@link ZooKeeperLauncherError.logTail} holds it alone.
 */
export class ZooKeeperLauncherError extends Error {
  /** Why the call failed. */
  readonly code: ZooKeeperLauncherErrorCode;
  /** The last lines of the ZooKeeper log, when a process was involved. */
  readonly logTail: string | undefined;

  constructor(
    code: ZooKeeperLauncherErrorCode,
    message: string,
    options: ZooKeeperLauncherErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ZooKeeperLauncherError';
    this.code = code;
    this.logTail = options.logTail;
  }
}
