/**
 * Connecting for the CLI: the URL checked before any I/O, the arbitrator asked one read within
 * `--timeout` (so an unreachable arbitrator is an exit code, not a hang), and every failure
 * turned into a {@link CliError} with its exit code.
 *
 * @packageDocumentation
 */

import { AbortedError, type Arbitrator, isTenureError, type TenureError } from '@tenure/core';
import { sleep } from '@tenure/core/internal';
import {
  type ArbitratorTarget,
  checkSessionWindow,
  parseArbitratorUrl,
} from '../arbitrator-url.js';
import { formatDuration } from '../duration.js';
import { type ConnectSettings, connectWithCredentials } from './credentials.js';
import { CliError, EXIT, usageError } from './exit-codes.js';

/** The environment variable `--url` defaults to. */
export const URL_ENV = 'TENURE_URL';

/** Parses the URL (`--url` or `TENURE_URL`) before any I/O; a usage error when missing or bad. */
export function checkUrl(url: string | undefined): ArbitratorTarget {
  if (url === undefined || url === '') {
    throw usageError(
      `no arbitrator URL: pass --url or set ${URL_ENV} (e.g. etcd://127.0.0.1:2379)`,
    );
  }
  try {
    const target = parseArbitratorUrl(url);
    // The CLI passes no settings but the URL's: check them now, before `--grace` is checked
    // against them (which would blame the TTL) and before any I/O.
    checkSessionWindow(url, target);
    return target;
  } catch (error) {
    throw asCliError(error);
  }
}

/** The exit code and message for an error thrown by tenure's library. */
export function asCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (isTenureError(error)) {
    switch (error.code) {
      case 'INVALID_ARGUMENT':
        return new CliError(EXIT.usage, error.message, { cause: error });
      case 'PERMISSION_DENIED':
        return new CliError(EXIT.permission, `the arbitrator refused: ${error.message}`, {
          cause: error,
        });
      case 'UNAVAILABLE':
        return new CliError(EXIT.unavailable, `the arbitrator is unreachable: ${error.message}`, {
          cause: error,
        });
      default:
        return new CliError(EXIT.software, `${error.code}: ${error.message}`, { cause: error });
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return new CliError(EXIT.software, `unexpected error: ${message}`, { cause: error });
}

/**
 * Connects to `url` and reads the leader of `election` once, retrying for up to `timeoutMs`:
 * resolves with the arbitrator once it has answered. Rejects with a {@link CliError}: usage
 * (bad URL or name), permission (refused), unavailable (no answer within `timeoutMs`); with
 * an `AbortedError` once `signal` aborts (a stop signal while connecting). The arbitrator is
 * closed on failure. `settings.lazySession`: no session is asked for until a campaign.
 */
export async function openArbitrator(
  url: string,
  election: string,
  timeoutMs: number,
  signal?: AbortSignal,
  settings: ConnectSettings = {},
): Promise<Arbitrator> {
  let arbitrator: Arbitrator;
  try {
    arbitrator = await connectWithCredentials(url, process.env, settings);
  } catch (error) {
    throw asCliError(error);
  }
  let lastError: TenureError | undefined;
  const onError = (error: TenureError) => {
    lastError = error;
  };
  arbitrator.on('error', onError);
  try {
    await probe(arbitrator, election, timeoutMs, () => lastError, signal);
    return arbitrator;
  } catch (error) {
    await closeWithin(arbitrator, 2_000);
    throw error;
  } finally {
    arbitrator.off('error', onError);
  }
}

async function probe(
  arbitrator: Arbitrator,
  election: string,
  timeoutMs: number,
  lastError: () => TenureError | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const startedAt = performance.now();
  let delayMs = 50;
  for (;;) {
    if (signal?.aborted) throw new AbortedError('Interrupted while connecting');
    const left = timeoutMs - (performance.now() - startedAt);
    if (left <= 0) {
      const error = lastError();
      throw new CliError(
        EXIT.unavailable,
        `the arbitrator did not answer within ${formatDuration(timeoutMs)}${error ? ` (last error: ${error.message})` : ''}`,
      );
    }
    try {
      await withinMs(arbitrator.leader(election), left, signal);
      return;
    } catch (error) {
      if (error === TIMED_OUT || error === INTERRUPTED) continue;
      if (!isTenureError(error) || !error.retriable) throw asCliError(error);
    }
    // A refusal that retrying will not fix may also come as an event (a session grant).
    const error = lastError();
    if (error !== undefined && !error.retriable) throw asCliError(error);
    await sleep(Math.min(delayMs, Math.max(0, timeoutMs - (performance.now() - startedAt))), {
      signals: [signal],
    }).catch(() => {});
    delayMs = Math.min(1_000, delayMs * 2);
  }
}

const TIMED_OUT = Symbol('timed out');
const INTERRUPTED = Symbol('interrupted');

/** Settles like `promise`, or rejects with TIMED_OUT after `ms`, or INTERRUPTED once `signal` aborts. */
function withinMs<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(TIMED_OUT), ms);
      onAbort = () => reject(INTERRUPTED);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    }),
  ]).finally(() => {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  });
}

/** Closes `arbitrator`, giving up after `ms` (an unreachable one expires the session itself). */
export async function closeWithin(arbitrator: Arbitrator, ms: number): Promise<void> {
  await withinMs(arbitrator.close(), ms).catch(() => {});
}
