/**
 * `tenure run`: a command as a cluster-wide singleton. The supervisor campaigns; while it
 * leads, its child runs with the term's epoch in its environment; when the term ends (or its
 * deadline comes within the grace) the child is stopped — SIGTERM, the grace, SIGKILL at the
 * term's deadline at the latest — before another candidate can lead; then the supervisor
 * rejoins the queue, or exits with `--once`. The deadline is enforced by the child's runner, a
 * process of its own that the supervisor tells of every renewal, so a stopped supervisor
 * (SIGSTOP) cannot keep its child running past it. A child that exits by itself ends the run:
 * the supervisor resigns at once (the next candidate leads within a round trip) and exits with
 * the child's code. SIGINT and SIGTERM are forwarded to the child; a second one SIGKILLs it.
 * SIGTSTP (Ctrl-Z) stops the child's group and then tenure; SIGCONT continues both.
 *
 * @packageDocumentation
 */

import {
  type Arbitrator,
  deferHandover,
  type Election,
  type EndReason,
  formatEpoch,
  type SessionEvent,
  type Term,
} from '@tenure/core';
import { redactUrl } from '../arbitrator-url.js';
import { formatDuration } from '../duration.js';
import {
  type ChildExit,
  ChildGroup,
  DeadlinePassedError,
  describeExit,
  exitCodeOf,
} from './child-group.js';
import { type CliLog, errorLogger, type LogFields } from './cli-log.js';
import { assertRunnable } from './command-path.js';
import { CliError, type CommandResult, EXIT } from './exit-codes.js';
import { graceSettings, maxGraceMs, resolveGrace } from './grace.js';
import { asCliError, checkUrl, closeWithin, openArbitrator } from './open-arbitrator.js';
import { findParentDeathGuard } from './parent-death.js';

/** The options of `tenure run`, parsed. */
export interface RunOptions {
  readonly url: string | undefined;
  readonly election: string;
  readonly value: string | undefined;
  /** `--endpoint`: the URL this candidate advertises (checked by the parser), if any. */
  readonly endpoint?: string | undefined;
  /** `--priority` (checked by the parser), if given. */
  readonly priority?: number | undefined;
  /** `--preempt-after`, ms, if given. */
  readonly preemptAfterMs?: number | undefined;
  /** `--grace`, ms; `undefined` for the default. */
  readonly graceMs: number | undefined;
  readonly once: boolean;
  /**
   * `--wait-timeout`, ms: how long to wait for the first term (connecting included) before
   * leaving the queue with exit 124; `undefined` to wait as long as it takes.
   */
  readonly waitTimeoutMs: number | undefined;
  /** How long to wait for the arbitrator's first answer, ms. */
  readonly timeoutMs: number;
  /** The command and its arguments (after `--`). */
  readonly command: readonly string[];
}

/** A stop request: the signal tenure received, and how many times. */
interface StopRequests {
  readonly signal: AbortSignal;
  readonly received: () => NodeJS.Signals | undefined;
  /** Calls `listener` on every stop signal from now on; returns the function that stops that. */
  onSignal(listener: (signal: NodeJS.Signals, count: number) => void): () => void;
  /**
   * While set, SIGTSTP first stops the child's group (through `suspend`), and SIGCONT
   * continues it (through `resume`); unset, SIGTSTP just stops tenure.
   */
  setJobControl(handlers: JobControl | undefined): void;
  dispose(): void;
}

/** What SIGTSTP and SIGCONT do to a running child. */
interface JobControl {
  suspend(): void;
  resume(): void;
}

/**
 * Catches SIGINT and SIGTERM from now on (so a signal during set-up is not fatal), and SIGTSTP
 * and SIGCONT (job control: see {@link StopRequests.setJobControl}).
 */
function catchStopSignals(): StopRequests {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  let count = 0;
  const listeners = new Set<(signal: NodeJS.Signals, count: number) => void>();
  const handler = (signal: NodeJS.Signals) => {
    received ??= signal;
    count += 1;
    controller.abort(signal);
    for (const listener of listeners) listener(signal, count);
  };
  // Ctrl-Z: the child runs in a session of its own, out of the terminal's reach, so tenure
  // stops it (the group) before stopping itself, and continues it when continued. They stay
  // frozen together; the runner, which no stop of tenure's reaches, still ends the child at the
  // term's deadline if tenure is not continued in time.
  let jobControl: JobControl | undefined;
  const onStop = () => {
    jobControl?.suspend();
    process.kill(process.pid, 'SIGSTOP');
  };
  const onContinue = () => jobControl?.resume();
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGTSTP', onStop);
  process.on('SIGCONT', onContinue);
  return {
    signal: controller.signal,
    received: () => received,
    onSignal: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    setJobControl: (handlers) => {
      jobControl = handlers;
    },
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      process.off('SIGTSTP', onStop);
      process.off('SIGCONT', onContinue);
    },
  };
}

/** What ended a child's watch. */
type Outcome =
  | { readonly kind: 'child-exit'; readonly exit: ChildExit }
  | { readonly kind: 'term-ended'; readonly reason: EndReason }
  | { readonly kind: 'deadline-near' }
  | { readonly kind: 'stop-requested' };

/**
 * Runs `tenure run` to its end and resolves with the exit code, or, for a stop signal received
 * while no child ran, with that signal to re-raise once everything is closed (so tenure dies by
 * it, as shells and service managers expect of a program told to stop).
 */
export async function runSupervisor(options: RunOptions, log: CliLog): Promise<CommandResult> {
  const target = checkUrl(options.url);
  const requested = graceSettings(target);
  // Checked against the TTL the URL asks for now, and against the one granted once elected.
  resolveGrace(options.graceMs, requested);
  assertRunnable(options.command[0]!);
  const guard = findParentDeathGuard();
  if (guard.kind === 'none') {
    log.warn(
      `${guard.reason}: if tenure and the child's runner are killed together, the child is not stopped and may run on beside the next leader's`,
    );
  }
  const stop = catchStopSignals();
  const wait = boundWait(options.waitTimeoutMs, stop.signal);
  let arbitrator: Arbitrator | undefined;
  try {
    log.info(`connecting to ${redactUrl(options.url!)}`);
    try {
      arbitrator = await openArbitrator(
        options.url!,
        options.election,
        options.timeoutMs,
        wait.signal,
      );
    } catch (error) {
      if (stop.signal.aborted) return leaveBySignal(stop.received()!, log);
      if (wait.expired()) throw waitTimedOut(options, 'connecting');
      throw error;
    }
    const election = arbitrator.election(options.election, {
      ...(options.value === undefined ? {} : { value: options.value }),
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.preemptAfterMs === undefined ? {} : { preemptAfterMs: options.preemptAfterMs }),
    });
    const logError = errorLogger(log);
    arbitrator.on('error', logError);
    election.on('error', logError);
    arbitrator.on('connection', (state) => log.info(`connection ${state}`));
    return await lead(options, arbitrator, election, stop, wait, guard, log);
  } catch (error) {
    throw asCliError(error);
  } finally {
    wait.disarm();
    if (arbitrator) await closeWithin(arbitrator, 5_000);
    stop.dispose();
  }
}

/** The bound `--wait-timeout` puts on the wait for the first term. */
interface WaitBound {
  /** Aborted by a stop signal, or once the bound has passed while no term was won. */
  readonly signal: AbortSignal;
  /** `true` once the bound has passed (and was not disarmed first). */
  expired(): boolean;
  /** Leadership came: the bound no longer applies (stop signals still abort `signal`). */
  disarm(): void;
}

function boundWait(timeoutMs: number | undefined, stop: AbortSignal): WaitBound {
  if (timeoutMs === undefined) {
    return { signal: stop, expired: () => false, disarm: () => {} };
  }
  const bound = new AbortController();
  const timer = setTimeout(() => bound.abort(), timeoutMs);
  return {
    signal: AbortSignal.any([stop, bound.signal]),
    expired: () => bound.signal.aborted,
    disarm: () => clearTimeout(timer),
  };
}

/** The failure for no term within `--wait-timeout` (exit 124), once the queue is left. */
function waitTimedOut(options: RunOptions, stage: 'connecting' | 'queued'): CliError {
  const waited = formatDuration(options.waitTimeoutMs ?? 0);
  return new CliError(
    EXIT.waitTimeout,
    stage === 'connecting'
      ? `not leading "${options.election}" within --wait-timeout ${waited}: the arbitrator had not answered yet`
      : `not leading "${options.election}" within --wait-timeout ${waited}: left the queue without running the command`,
  );
}

async function lead(
  options: RunOptions,
  arbitrator: Arbitrator,
  election: Election,
  stop: StopRequests,
  wait: WaitBound,
  guard: ReturnType<typeof findParentDeathGuard>,
  log: CliLog,
): Promise<CommandResult> {
  const settings = graceSettings(checkUrl(options.url));
  for (;;) {
    const advertising = options.endpoint === undefined ? '' : `, advertising ${options.endpoint}`;
    const ranked = options.priority ? `, priority ${options.priority}` : '';
    log.info(
      `campaigning in "${options.election}" as ${JSON.stringify(election.value)}${advertising}${ranked}`,
      {
        election: options.election,
        value: election.value,
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        ...(options.priority ? { priority: options.priority } : {}),
      },
    );
    let term: Term;
    try {
      // Until the first term, --wait-timeout bounds the wait too (aborting withdraws the key).
      term = await election.campaign({ signal: wait.signal });
    } catch (error) {
      if (stop.signal.aborted) return leaveBySignal(stop.received()!, log);
      if (wait.expired()) throw waitTimedOut(options, 'queued');
      throw error;
    }
    // A preemption hands over only once the child is gone: held from the term's start.
    const releaseHandover = deferHandover(term);
    try {
      // The TTL the arbitrator granted may differ from the one asked for (etcd raises a TTL below
      // its minimum, ZooKeeper clamps session timeouts).
      const granted = { ...settings, ttlMs: arbitrator.ttlMs };
      let graceMs: number;
      try {
        graceMs = resolveGrace(options.graceMs, granted);
      } catch (error) {
        await resignWithin(election, granted.ttlMs, log);
        throw error instanceof CliError
          ? new CliError(
              error.exitCode,
              `the arbitrator granted a TTL of ${formatDuration(granted.ttlMs)}: ${error.message}`,
            )
          : error;
      }
      if (stop.signal.aborted) {
        await resignWithin(election, granted.ttlMs, log);
        return leaveBySignal(stop.received()!, log);
      }
      if (!term.isValid()) continue;
      wait.disarm();
      log.info(
        `elected: epoch ${formatEpoch(term.epoch)} in "${term.election}" (TTL ${formatDuration(granted.ttlMs)}, grace ${formatDuration(graceMs)} of at most ${formatDuration(maxGraceMs(granted))})`,
        {
          election: term.election,
          epoch: formatEpoch(term.epoch),
          key: term.key,
          ttlMs: granted.ttlMs,
          graceMs,
        },
      );
      let child: ChildGroup;
      try {
        child = await ChildGroup.start(options.command, {
          env: {
            ...process.env,
            TENURE_ELECTION: term.election,
            TENURE_EPOCH: formatEpoch(term.epoch),
            TENURE_KEY: term.key,
            ...(options.endpoint === undefined ? {} : { TENURE_ENDPOINT: options.endpoint }),
          },
          guard,
          deadlineNs: deadlineNs(term),
          graceMs,
          onSignalled: (event) =>
            log.info(
              event.reason === 'kill'
                ? `term ${formatEpoch(term.epoch)}: ${event.signal} to the child`
                : `term ${formatEpoch(term.epoch)}: no renewal acknowledged and ${formatDuration(Math.max(0, Math.round(event.leftMs)))} left; ${event.signal === 'SIGTERM' ? 'stopping the child (SIGTERM, then SIGKILL at the deadline)' : 'SIGKILL to the child'}`,
            ),
        });
      } catch (error) {
        await resignWithin(election, granted.ttlMs, log);
        if (error instanceof DeadlinePassedError) {
          log.info(`term ${formatEpoch(term.epoch)}: ${error.message}`);
          if (stop.signal.aborted) return leaveBySignal(stop.received()!, log);
          if (options.once) return EXIT.leadershipLost;
          continue;
        }
        throw error;
      }
      log.info(`started ${JSON.stringify(options.command.join(' '))} as pid ${child.pid}`, {
        epoch: formatEpoch(term.epoch),
        childPid: child.pid,
      });
      const result = await supervise(child, term, arbitrator, graceMs, stop, log);
      if (result.kind === 'exited') {
        log.info(`child ${describeExit(result.exit)}; resigning`, exitFields(term, result.exit));
        await resignWithin(election, granted.ttlMs, log);
        return exitCodeOf(result.exit);
      }
      // The term ended, or was about to: the child is gone. Give up a term whose renewals lag
      // (it cannot vouch for itself), then rejoin the queue or stop.
      await resignWithin(election, granted.ttlMs, log);
      if (stop.signal.aborted) return exitCodeOf(result.exit);
      if (options.once) {
        log.info('leadership lost; exiting (--once)');
        return EXIT.leadershipLost;
      }
    } finally {
      releaseHandover();
    }
  }
}

/** How a child's time ended: by itself (or a forwarded signal), or stopped on a term's end. */
type Supervised =
  | { readonly kind: 'exited'; readonly exit: ChildExit }
  | { readonly kind: 'stopped'; readonly exit: ChildExit };

/** Watches one child through one term. */
async function supervise(
  child: ChildGroup,
  term: Term,
  arbitrator: Arbitrator,
  graceMs: number,
  stop: StopRequests,
  log: CliLog,
): Promise<Supervised> {
  const watch = new AbortController();
  // The runner enforces the deadline it was last told: tell it of every renewal (the session
  // event), and look again every TTL/10 (renewals the event does not report).
  const extend = () => {
    if (term.isValid()) child.extend(deadlineNs(term));
  };
  const onSession = (event: SessionEvent) => {
    if (event.type === 'renewed') extend();
  };
  arbitrator.on('session', onSession);
  const poll = setInterval(extend, Math.max(10, arbitrator.ttlMs / 10));
  stop.setJobControl({
    suspend: () => {
      log.info('SIGTSTP: stopping the child, then tenure (SIGCONT continues both)');
      child.signal('SIGSTOP');
    },
    resume: () => child.signal('SIGCONT'),
  });
  // A second stop signal kills the group at once.
  const unsubscribe = stop.onSignal((signal, count) => {
    if (child.exit !== undefined) return;
    if (count === 1) {
      log.info(`${signal}: forwarding it to the child (again to kill it)`);
      child.signal(signal);
    } else {
      log.info(`${signal} again: killing the child`);
      child.signal('SIGKILL');
    }
  });
  // A stop signal that came while the child was being started: it was not running yet.
  const early = stop.received();
  if (early !== undefined) child.signal(early);
  try {
    const outcome = await Promise.race<Outcome>([
      child.exited.then((exit) => ({ kind: 'child-exit', exit })),
      term.ended.then((reason) => ({ kind: 'term-ended', reason })),
      deadlineNear(term, graceMs, watch.signal).then(() => ({ kind: 'deadline-near' })),
    ]);
    let exit: ChildExit;
    if (outcome.kind === 'child-exit') {
      exit = outcome.exit;
      // Exited by itself (or after a forwarded signal), unless the runner had stopped it for
      // the term first (its deadline passed, maybe while tenure was stopped).
      if (exit.stoppedBy === null) return { kind: 'exited', exit };
      if (exit.stoppedBy === 'runner-died') {
        log.warn("the child's runner died; the child's group was killed");
      }
    } else if (outcome.kind === 'term-ended' && outcome.reason === 'preempted') {
      // Preempted: the key stays in the queue until the child is gone (deferHandover), so no
      // successor runs yet and the child gets its grace (the runner still kills it at the
      // deadline it was last told).
      log.info(
        `term ${formatEpoch(term.epoch)} preempted by a candidate of higher priority; stopping the child (grace ${formatDuration(graceMs)})`,
        { epoch: formatEpoch(term.epoch), reason: outcome.reason },
      );
      exit = await child.stop(graceMs);
    } else if (outcome.kind === 'term-ended') {
      // A term that ended before its deadline (its key deleted, its session gone) may have a
      // successor now: no grace.
      log.info(`term ${formatEpoch(term.epoch)} ended (${outcome.reason}); killing the child`, {
        epoch: formatEpoch(term.epoch),
        reason: outcome.reason,
      });
      exit = await child.kill();
    } else {
      // SIGKILL at the term's deadline at the latest: after it, another candidate may lead. The
      // runner sends both (it has sent SIGTERM already if it saw the deadline near first).
      exit = await child.stop(Math.max(0, Math.min(graceMs, term.remainingMs())));
    }
    log.info(`child stopped: ${describeExit(exit)}`, exitFields(term, exit));
    return { kind: 'stopped', exit };
  } finally {
    watch.abort();
    unsubscribe();
    clearInterval(poll);
    arbitrator.off('session', onSession);
    stop.setJobControl(undefined);
  }
}

/**
 * Resolves once `term` is still running but has at most `graceMs` left before its deadline
 * (renewals stopped being acknowledged); never resolves once `signal` aborts or the term ends.
 */
function deadlineNear(term: Term, graceMs: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let immediate: NodeJS.Immediate | undefined;
    const check = (settled = false) => {
      timer = undefined;
      immediate = undefined;
      if (signal.aborted || term.endReason !== undefined) return;
      const left = term.remainingMs();
      if (left <= graceMs) {
        // A renewal's reply already received but not yet read moves the deadline: read it
        // (the event loop's next poll) before giving the term up.
        if (!settled) {
          immediate = setImmediate(() => check(true));
          return;
        }
        resolve();
        return;
      }
      // Renewals move the deadline on: look again when it would be near.
      timer = setTimeout(check, left - graceMs);
    };
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        if (immediate !== undefined) clearImmediate(immediate);
      },
      { once: true },
    );
    check();
  });
}

/**
 * `term`'s deadline as an absolute time on `process.hrtime.bigint()`, ns: the machine's
 * monotonic clock, which the runner (another process) reads too. Rounded down, and the clock
 * read before the term's remaining time, so it is never later than the term's own deadline.
 */
function deadlineNs(term: Term): bigint {
  const now = process.hrtime.bigint();
  return now + BigInt(Math.floor(term.remainingMs() * 1e6));
}

/**
 * Resigns, giving up after a TTL: an arbitrator that cannot be reached expires the session by
 * itself, and the term is over locally either way.
 */
async function resignWithin(election: Election, ms: number, log: CliLog): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    const outcome = await Promise.race([election.resign().then(() => 'done' as const), gaveUp]);
    if (outcome === 'timeout') log.info('resign unanswered: the arbitrator expires the session');
  } catch (error) {
    log.info(`resign failed (the arbitrator expires the session): ${String(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** A child's exit as log fields. */
function exitFields(term: Term, exit: ChildExit): LogFields {
  return {
    epoch: formatEpoch(term.epoch),
    exitCode: exit.code,
    signal: exit.signal,
    ...(exit.stoppedBy === null ? {} : { stoppedBy: exit.stoppedBy }),
  };
}

/** Leaves with the signal that asked us to stop. */
function leaveBySignal(signal: NodeJS.Signals, log: CliLog): CommandResult {
  log.info(`${signal}: left the queue`);
  return { reraise: signal };
}
