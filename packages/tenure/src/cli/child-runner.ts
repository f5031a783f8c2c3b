/**
 * The runner of `tenure run`'s child: a small process of its own, between the supervisor and the
 * child, that enforces the term's deadline on the child's process group even while the
 * supervisor cannot (stopped by SIGSTOP or Ctrl-Z, starved, or dead).
 *
 * The supervisor starts it (in a new session, so no signal to the supervisor or its process
 * group reaches it) with a control pipe on its stdin and stdout, and tenure's own stdin and
 * stdout as descriptors 3 and 4 for the child. On `start` it spawns the child in a new session
 * (the child's pid is its process group's id) and from then on:
 *
 * - SIGTERMs the group once the deadline is the grace away (and SIGCONTs it if the supervisor
 *   had stopped it, so that it can shut down), and SIGKILLs it at the deadline. The deadline is
 *   an absolute time on `process.hrtime` — the machine's monotonic clock, which every process
 *   shares — and moves only when the supervisor sends a later one after an acknowledged renewal:
 *   a stopped supervisor sends none, so its child is gone by the deadline it had;
 * - SIGKILLs the group when the control pipe closes (the supervisor died);
 * - reports the child's exit, and whether it had signalled the child for the term first, after
 *   SIGKILLing whatever is left of the group, and exits.
 *
 * It ignores SIGINT, SIGTERM and SIGHUP: a service manager that signals every process of the
 * service must not kill it before the child, which would cut the child's grace short.
 *
 * Protocol (one JSON object per line). In: `start {file, args, env, deadlineNs, graceMs}`,
 * `deadline {deadlineNs}`, `stop` (SIGTERM now, SIGKILL at the deadline), `kill`,
 * `signal {signal}`. Out: `spawned {pid}`, `spawn-error {code, message}`, `expired` (the
 * deadline passed before the child could start), `signalled {signal, reason, leftMs}`,
 * `exit {code, signal, stoppedBy}`.
 *
 * @packageDocumentation
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { writeSync } from 'node:fs';

/** Why the runner signalled the child's group for the term: its deadline, or a kill request. */
export type StopCause = 'deadline' | 'kill';

/** A message from the supervisor to the runner. */
export type RunnerRequest =
  | {
      readonly op: 'start';
      readonly file: string;
      readonly args: readonly string[];
      readonly env: Readonly<Record<string, string>>;
      /** The term's deadline, `process.hrtime.bigint()` ns as a decimal string. */
      readonly deadlineNs: string;
      readonly graceMs: number;
    }
  | { readonly op: 'deadline'; readonly deadlineNs: string }
  | { readonly op: 'stop' }
  | { readonly op: 'kill' }
  | { readonly op: 'signal'; readonly signal: NodeJS.Signals };

/** A message from the runner to the supervisor. */
export type RunnerEvent =
  | { readonly event: 'spawned'; readonly pid: number }
  | { readonly event: 'spawn-error'; readonly code: string | undefined; readonly message: string }
  | { readonly event: 'expired' }
  | {
      readonly event: 'signalled';
      readonly signal: 'SIGTERM' | 'SIGKILL';
      readonly reason: StopCause | 'stop';
      readonly leftMs: number;
    }
  | {
      readonly event: 'exit';
      readonly code: number | null;
      readonly signal: NodeJS.Signals | null;
      /** Set when the runner had SIGTERMed or SIGKILLed the group for the term before the exit. */
      readonly stoppedBy: StopCause | null;
    };

const NS_PER_MS = 1_000_000n;

/** The runner's state once the child runs. */
interface Running {
  readonly child: ChildProcess;
  readonly pgid: number;
  deadlineNs: bigint;
  readonly graceNs: bigint;
  /** Set once SIGTERM went for the term: the group is SIGKILLed at this time, whatever follows. */
  killAtNs: bigint | undefined;
  stoppedBy: StopCause | null;
  /** The supervisor stopped the group (Ctrl-Z): continue it along with SIGTERM. */
  frozen: boolean;
  timer: NodeJS.Timeout | undefined;
  exited: boolean;
}

let running: Running | undefined;

function send(event: RunnerEvent): void {
  try {
    writeSync(1, `${JSON.stringify(event)}\n`);
  } catch {
    // The supervisor is gone: the closed control pipe kills the group.
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is gone already.
  }
}

function leftMs(state: Running, now: bigint): number {
  return Number((state.killAtNs ?? state.deadlineNs) - now) / 1e6;
}

function terminate(state: Running, reason: StopCause | 'stop', now: bigint): void {
  state.killAtNs = state.deadlineNs;
  state.stoppedBy ??= reason === 'kill' ? 'kill' : 'deadline';
  send({ event: 'signalled', signal: 'SIGTERM', reason, leftMs: leftMs(state, now) });
  signalGroup(state.pgid, 'SIGTERM');
  if (state.frozen) {
    state.frozen = false;
    signalGroup(state.pgid, 'SIGCONT');
  }
}

function kill(state: Running, reason: StopCause, now: bigint): void {
  state.stoppedBy ??= reason;
  send({ event: 'signalled', signal: 'SIGKILL', reason, leftMs: leftMs(state, now) });
  signalGroup(state.pgid, 'SIGKILL');
}

/**
 * Acts on the deadline as of now, and sets the timer for the next step. A step that falls due
 * waits for the event loop's next poll first (`settled`): a later deadline the supervisor sent
 * before the step fell due, still unread on a loaded machine, is read before acting on the old.
 */
function check(state: Running, settled = false): void {
  clearTimeout(state.timer);
  state.timer = undefined;
  if (state.exited) return;
  const now = process.hrtime.bigint();
  const killAt = state.killAtNs ?? state.deadlineNs;
  const due =
    now >= killAt || (state.killAtNs === undefined && now >= state.deadlineNs - state.graceNs);
  if (due && !settled) {
    setImmediate(() => check(state, true));
    return;
  }
  if (now >= killAt) {
    kill(state, 'deadline', now);
    return;
  }
  if (state.killAtNs === undefined && now >= state.deadlineNs - state.graceNs) {
    terminate(state, 'deadline', now);
  }
  const next = state.killAtNs ?? state.deadlineNs - state.graceNs;
  // Timers may fire up to a millisecond early: round up, and check again when they fire.
  state.timer = setTimeout(() => check(state), Number((next - now + NS_PER_MS - 1n) / NS_PER_MS));
}

function start(request: Extract<RunnerRequest, { op: 'start' }>): void {
  const deadlineNs = BigInt(request.deadlineNs);
  if (process.hrtime.bigint() >= deadlineNs) {
    send({ event: 'expired' });
    process.exit(0);
  }
  // fds 3 and 4 are tenure's stdin and stdout; they become the child's 0 and 1, and are closed
  // in it (so is this control pipe, replaced by them).
  const child = spawn(request.file, [...request.args], {
    env: request.env,
    stdio: [3, 4, 2],
    detached: true,
  });
  if (child.pid === undefined) {
    child.once('error', (error: NodeJS.ErrnoException) => {
      send({ event: 'spawn-error', code: error.code, message: error.message });
      process.exit(0);
    });
    return;
  }
  const state: Running = {
    child,
    pgid: child.pid,
    deadlineNs,
    graceNs: BigInt(Math.max(0, Math.floor(request.graceMs))) * NS_PER_MS,
    killAtNs: undefined,
    stoppedBy: null,
    frozen: false,
    timer: undefined,
    exited: false,
  };
  running = state;
  send({ event: 'spawned', pid: state.pgid });
  child.on('error', () => {});
  child.once('exit', (code, signal) => {
    state.exited = true;
    clearTimeout(state.timer);
    // Nothing of the group outlives the child.
    signalGroup(state.pgid, 'SIGKILL');
    send({ event: 'exit', code, signal, stoppedBy: state.stoppedBy });
    process.exit(0);
  });
  check(state);
}

function handle(request: RunnerRequest): void {
  if (request.op === 'start') {
    if (running === undefined) start(request);
    return;
  }
  const state = running;
  if (state === undefined || state.exited) return;
  const now = process.hrtime.bigint();
  switch (request.op) {
    case 'deadline': {
      // After SIGTERM the kill time is fixed: the supervisor has given the term up.
      const at = BigInt(request.deadlineNs);
      if (state.killAtNs === undefined && at > state.deadlineNs) {
        state.deadlineNs = at;
        check(state);
      }
      return;
    }
    case 'stop':
      if (state.killAtNs === undefined) {
        if (now >= state.deadlineNs) kill(state, 'deadline', now);
        else terminate(state, 'stop', now);
      }
      check(state);
      return;
    case 'kill':
      kill(state, 'kill', now);
      return;
    case 'signal':
      if (request.signal === 'SIGSTOP') state.frozen = true;
      if (request.signal === 'SIGCONT') state.frozen = false;
      signalGroup(state.pgid, request.signal);
      return;
  }
}

function supervisorGone(): void {
  if (running !== undefined && !running.exited) signalGroup(running.pgid, 'SIGKILL');
  process.exit(0);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});

let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  buffered += chunk;
  for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
    const line = buffered.slice(0, end);
    buffered = buffered.slice(end + 1);
    if (line !== '') handle(JSON.parse(line) as RunnerRequest);
  }
});
process.stdin.on('end', supervisorGone);
process.stdin.on('error', supervisorGone);
