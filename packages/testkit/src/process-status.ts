/**
 * Whether a process is really gone, read from `/proc` (Linux). `kill -0` is not enough: it
 * succeeds on a zombie, and an orphan that died lingers as one until init reaps it.
 *
 * @packageDocumentation
 */

import { existsSync, readFileSync } from 'node:fs';

const HAS_PROC = existsSync('/proc/self/stat');

/**
 * The one-letter scheduler state of process `pid` from `/proc/<pid>/stat` (`R` running, `S`
 * sleeping, `D` in uninterruptible I/O, `T` stopped by a signal, `Z` zombie, …), or `undefined`
 * when there is no such process. Where `/proc` is missing (not Linux) it answers `'R'` for any
 * process `kill -0` can reach, which cannot tell a zombie from a live process.
 */
export function processState(pid: number): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new RangeError(`processState: pid must be a positive integer (got ${String(pid)})`);
  }
  if (!HAS_PROC) return signalReaches(pid) ? 'R' : undefined;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain ") ", so the state is
  // the first field after the *last* closing parenthesis.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === '' ? undefined : state;
}

/**
 * `true` once process `pid` can no longer run: it has no `/proc` entry, or it is a zombie (`Z`)
 * or dead (`X`) and only waits to be reaped. A stopped (`T`, paused) process is not gone.
 */
export function isProcessGone(pid: number): boolean {
  const state = processState(pid);
  return state === undefined || state === 'Z' || state === 'X';
}

function signalReaches(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
