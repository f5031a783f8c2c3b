/**
 * `tenure leader`, `tenure candidates`, `tenure observe`: an election seen from outside, without
 * campaigning. Tables on stdout, or JSON with `--json` (JSON lines for `observe`).
 *
 * @packageDocumentation
 */

import { type Arbitrator, type Election, formatEpoch, type LeaderInfo } from '@tenure/core';
import { type CliLog, errorLogger } from './cli-log.js';
import { type CommandResult, EXIT } from './exit-codes.js';
import { asCliError, checkUrl, closeWithin, openArbitrator } from './open-arbitrator.js';
import { formatTable } from './text-table.js';

/** Options every reading command takes. */
export interface ReadOptions {
  readonly url: string | undefined;
  /** How long to wait for the arbitrator's first answer, ms. */
  readonly timeoutMs: number;
  readonly json: boolean;
}

/**
 * A leader or candidate as `--json` prints it (the epoch as a decimal string: it is a bigint).
 * `endpoint` is there only when the candidate advertises one (`tenure run --endpoint`), and
 * `priority` only when it has one above 0 (`tenure run --priority`).
 */
export interface LeaderJson {
  readonly value: string;
  readonly epoch: string;
  readonly key: string;
  readonly endpoint?: string;
  readonly priority?: number;
}

/** `info` for JSON output. */
export function leaderJson(info: LeaderInfo): LeaderJson {
  return {
    value: info.value,
    epoch: formatEpoch(info.epoch),
    key: info.key,
    ...(info.endpoint === undefined ? {} : { endpoint: info.endpoint }),
    ...(info.priority === undefined ? {} : { priority: info.priority }),
  };
}

/**
 * A table's columns with one more column, `header`, before the last one (the key) when any row
 * has a cell for it (`missing` where a row has none): an election where no candidate
 * advertises an endpoint or a priority prints as it always did.
 */
function withColumn(
  header: string,
  missing: string,
  [headers, rows]: [readonly string[], ReadonlyArray<readonly string[]>],
  cells: ReadonlyArray<string | undefined>,
): [string[], string[][]] {
  if (cells.every((c) => c === undefined)) return [[...headers], rows.map((r) => [...r])];
  const at = headers.length - 1;
  const insert = (list: readonly string[], item: string) => [
    ...list.slice(0, at),
    item,
    ...list.slice(at),
  ];
  return [insert(headers, header), rows.map((r, i) => insert(r, cells[i] ?? missing))];
}

/**
 * Opens the arbitrator and election `name` (as an observer: nothing is written to the queue),
 * runs `body`, and closes both whatever happens. The arbitrator asks for no session (no lease,
 * no heartbeat): the inspection commands write nothing, so a read-only role is enough.
 */
export async function withElection<T>(
  options: ReadOptions,
  name: string,
  body: (election: Election, arbitrator: Arbitrator) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  checkUrl(options.url);
  const arbitrator = await openArbitrator(options.url!, name, options.timeoutMs, signal, {
    lazySession: true,
  });
  try {
    const election = arbitrator.election(name);
    try {
      return await body(election, arbitrator);
    } finally {
      await election.close().catch(() => {});
    }
  } catch (error) {
    throw asCliError(error);
  } finally {
    await closeWithin(arbitrator, 5_000);
  }
}

/** `tenure leader NAME`: the current leader; exit 1 when the election has none. */
export async function showLeader(
  name: string,
  options: ReadOptions,
  log: CliLog,
): Promise<CommandResult> {
  const leader = await withElection(options, name, (election) => election.leader());
  if (options.json) {
    write(`${JSON.stringify(leader === undefined ? null : leaderJson(leader))}\n`);
  } else if (leader !== undefined) {
    const [headers, rows] = withColumn(
      'ENDPOINT',
      '-',
      [['EPOCH', 'VALUE', 'KEY'], [[formatEpoch(leader.epoch), leader.value, leader.key]]],
      [leader.endpoint],
    );
    write(formatTable(headers, rows));
  }
  if (leader === undefined) {
    log.warn(`"${name}" has no leader`);
    return EXIT.notFound;
  }
  return EXIT.ok;
}

/**
 * A candidate as `tenure candidates --json` prints it. `revision` is the arbitrator's revision
 * that created its key (etcd's create revision, ZooKeeper's czxid), the queue's order; only the
 * leader holds a term, so only its `epoch` is set (equal to its revision), `null` for the others.
 */
export interface CandidateJson {
  /** 1 for the leader, then the queue's order. */
  readonly position: number;
  readonly role: 'leader' | 'waiting';
  readonly value: string;
  readonly key: string;
  readonly revision: string;
  readonly epoch: string | null;
  /** Only when the candidate advertises one. */
  readonly endpoint?: string;
  /** Only when the candidate has a priority above 0. */
  readonly priority?: number;
}

/** `tenure candidates NAME`: the queue in order, the leader first. */
export async function showCandidates(name: string, options: ReadOptions): Promise<CommandResult> {
  const candidates = await withElection(options, name, (election) => election.candidates());
  const rows: CandidateJson[] = candidates.map((c, index) => ({
    position: index + 1,
    role: index === 0 ? 'leader' : 'waiting',
    value: c.value,
    key: c.key,
    revision: formatEpoch(c.epoch),
    epoch: index === 0 ? formatEpoch(c.epoch) : null,
    ...(c.endpoint === undefined ? {} : { endpoint: c.endpoint }),
    ...(c.priority === undefined ? {} : { priority: c.priority }),
  }));
  if (options.json) {
    write(`${JSON.stringify(rows)}\n`);
  } else {
    // A waiting candidate holds no term: its number is its key's creation, not an epoch.
    const [headers, cells] = withColumn(
      'PRIORITY',
      '0',
      withColumn(
        'ENDPOINT',
        '-',
        [
          ['#', 'ROLE', 'REVISION', 'VALUE', 'KEY'],
          rows.map((c) => [String(c.position), c.role, c.revision, c.value, c.key]),
        ],
        rows.map((c) => c.endpoint),
      ),
      rows.map((c) => (c.priority === undefined ? undefined : String(c.priority))),
    );
    write(formatTable(headers, cells));
  }
  return EXIT.ok;
}

/**
 * `tenure observe NAME`: the current leader, then one line per change (a new leader, a
 * proclaimed value, an empty queue), in epoch order, until SIGINT or SIGTERM (exit 0).
 */
export async function observeElection(
  name: string,
  options: ReadOptions,
  log: CliLog,
): Promise<CommandResult> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await withElection(
      options,
      name,
      async (_election, arbitrator) => {
        arbitrator.on('error', errorLogger(log));
        arbitrator.on('connection', (state) => log.info(`connection ${state}`));
        const changes = arbitrator.observe(name, { signal: stop.signal });
        try {
          for await (const leader of changes) write(observeLine(leader, options.json));
        } catch (error) {
          if (!stop.signal.aborted) throw error;
        }
      },
      stop.signal,
    );
  } catch (error) {
    // Interrupted while connecting: observing was all it was asked to do.
    if (!stop.signal.aborted) throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return EXIT.ok;
}

function observeLine(leader: LeaderInfo | undefined, json: boolean): string {
  const at = new Date().toISOString();
  if (json) {
    return `${JSON.stringify({ at, leader: leader === undefined ? null : leaderJson(leader) })}\n`;
  }
  if (leader === undefined) return `${at}  (no leader)\n`;
  const endpoint = leader.endpoint === undefined ? '' : `  ${leader.endpoint}`;
  return `${at}  epoch ${formatEpoch(leader.epoch)}  ${leader.value}${endpoint}  ${leader.key}\n`;
}

/** Writes to stdout (synchronous for files and pipes on Linux, so nothing is lost at exit). */
export function write(text: string): void {
  process.stdout.write(text);
}
