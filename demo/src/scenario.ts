import {
  type Arbitrator,
  connect,
  createScheduler,
  DEFAULTS,
  type Election,
  type EndReason,
  formatDuration,
  InvalidArgumentError,
  type JobContext,
  type MemoryArbitrator,
  parseArbitratorUrl,
  type RunRecord,
  type Scheduler,
  type Term,
} from 'tenure';
import { DemoLog, formatAt, formatSlot, formatSpan, renderRuns, TermTimeline } from './demo-log.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** The arbitrator URL every candidate connects to. */
  url: string;
  /** The session TTL, ms; default: the URL's `ttl`, else 2 s. */
  ttlMs?: number;
  /** Ends the demo early (Ctrl-C); it still closes everything. */
  signal?: AbortSignal;
  /** Where the lines go; default `console.log`. */
  write?: (line: string) => void;
}

const ELECTION = 'demo';
const NAMES = ['node-a', 'node-b', 'node-c'] as const;
/** The default TTL of the demo: short, so that a crash fails over in about two seconds. */
const DEMO_TTL_MS = 2_000;
/** The pace of the story: the job's interval. */
const BEAT_MS = 1_000;
/** The leader's job, a `@tenure/cron` job every replica adds. */
const JOB = 'report';
/** Every second (croner's optional seconds field), so each act shows a few slots. */
const SCHEDULE = '*/1 * * * * *';

/** The faults of the memory arbitrator, when the demo's arbitrator has them. */
type Faults = Pick<MemoryArbitrator, 'pause' | 'resume'>;

function faultsOf(arbitrator: Arbitrator): Faults | undefined {
  const candidate = arbitrator as Partial<MemoryArbitrator>;
  return typeof candidate.pause === 'function' && typeof candidate.resume === 'function'
    ? (arbitrator as MemoryArbitrator)
    : undefined;
}

const REASONS: Record<EndReason, string> = {
  resigned: 'resign() ended it and deleted its key',
  closed: 'its arbitrator was closed',
  expired: 'its local deadline passed without a renewal',
  'session-lost': 'the arbitrator dropped its session',
  revoked: 'its key was deleted by someone else',
  preempted: 'a candidate of higher priority took over, once its work had settled',
};

/**
 * One participant: its own arbitrator (its own session), one candidacy, and a `@tenure/cron`
 * scheduler on it with the demo's job.
 */
class Candidate {
  /** Replaced when the demo restarts this participant's scheduler. */
  scheduler: Scheduler | undefined;
  /** Slots this participant has run. */
  runs = 0;
  /** Closed by the demo before the shutdown. */
  left = false;

  constructor(
    readonly name: string,
    readonly arbitrator: Arbitrator,
    readonly election: Election,
  ) {}
}

interface Elected {
  readonly candidate: Candidate;
  readonly term: Term;
  readonly atMs: number;
}

interface RunEnded {
  readonly candidate: Candidate;
  readonly run: RunRecord;
}

/** Values as they happen (elections, ends of runs), and a way to wait for the next match. */
class Happenings<T> {
  last: T | undefined;
  readonly #waiters = new Set<{ test: (e: T) => boolean; resolve: (e: T) => void }>();

  happened(event: T): void {
    this.last = event;
    for (const waiter of [...this.#waiters]) {
      if (waiter.test(event)) {
        this.#waiters.delete(waiter);
        waiter.resolve(event);
      }
    }
  }

  /** Resolves with the next event that passes `test`; rejects after `timeoutMs`. */
  next(test: (e: T) => boolean, timeoutMs: number, what: string, signal: AbortSignal): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
      };
      const waiter = {
        test,
        resolve: (e: T) => {
          finish();
          resolve(e);
        },
      };
      const onAbort = () => {
        finish();
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`No ${what} within ${formatSpan(timeoutMs)}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Waits `ms`, or less if `signal` aborts (then rejects with its reason). No timer is left behind. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The demo: three candidates on one arbitrator URL share one `@tenure/cron` job; the leader runs
 * it, claiming each slot with a fenced write first. The leader crashes (or, on an arbitrator
 * without fault injection, exits), the next one takes over and catches up, then stops its
 * scheduler and hands over at once; tables of terms and runs close. Closes everything before it
 * resolves or rejects, so the process can exit by itself.
 */
export async function runDemo(options: DemoOptions): Promise<void> {
  const log = new DemoLog(options.write ?? ((line) => console.log(line)));
  const timeline = new TermTimeline();
  const leadership = new Happenings<Elected>();
  const runEnds = new Happenings<RunEnded>();
  const candidates: Candidate[] = [];
  /** Slots dropped by the catch-up policy, for the closing table. */
  const missedSlots: Date[] = [];
  // The demo's own stop: Ctrl-C, or a failure of one of its steps.
  const demo = new AbortController();
  const onOuterAbort = () => demo.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const timers = new Set<ReturnType<typeof setTimeout>>();
  /** Runs before each `elected` line (see watchDeadline). */
  let beforeElected: () => void = () => {};

  const target = parseArbitratorUrl(options.url);
  const shownUrl = redactUrl(options.url);
  if (options.ttlMs !== undefined && target.ttlMs !== undefined) {
    throw new InvalidArgumentError(
      'ttl',
      'is given both as --ttl and in the URL (?ttl=); give it once',
    );
  }
  // The demo's short default applies when neither the URL nor --ttl sets one.
  const ttlOption = target.ttlMs === undefined ? { ttlMs: options.ttlMs ?? DEMO_TTL_MS } : {};

  try {
    // ── Setup ────────────────────────────────────────────────────────────────────────────
    for (const name of NAMES) {
      const arbitrator = await connect(options.url, ttlOption);
      let election: Election;
      try {
        election = arbitrator.election(ELECTION, { value: name });
      } catch (error) {
        await arbitrator.close();
        throw error;
      }
      const candidate = new Candidate(name, arbitrator, election);
      candidates.push(candidate);
      watch(candidate);
      candidate.scheduler = schedulerFor(candidate);
    }
    const first = candidates[0]!;
    const ttlMs = first.arbitrator.ttlMs;
    const maxDrift = target.maxDrift ?? DEFAULTS.maxDrift;
    const marginMs = target.marginMs ?? DEFAULTS.marginMs;
    const validityMs = ttlMs * (1 - maxDrift) - marginMs;
    log.line(`tenure demo: 3 candidates elect a leader through ${shownUrl}`);
    log.line(
      `Each of ${NAMES.join(', ')} has its own arbitrator (its own session), like three replicas.`,
    );
    log.line(
      `Session ttl ${formatDuration(ttlMs)}, renewed every ${formatDuration(Math.round(ttlMs / 3))}. A term stays valid until ${formatDuration(Math.round(validityMs))} after its last`,
    );
    log.line(
      `acknowledged renewal was sent: ttl × (1 − ${maxDrift}) − ${marginMs} ms. Times are seconds since the start.`,
    );
    log.line(
      `Each one adds the same @tenure/cron job "${JOB}" (${SCHEDULE}: every second); only the leader`,
    );
    log.line(
      'runs it, and it first claims each slot with a fenced write beside the election, so no slot runs twice.',
    );

    // ── Act 1: election ──────────────────────────────────────────────────────────────────
    log.section('1. Election: the first candidate in the queue leads and runs the job');
    start(first);
    const firstTerm = await leadership.next(
      (e) => e.candidate === first,
      10_000,
      'first leader',
      demo.signal,
    );
    for (const candidate of candidates.slice(1)) {
      start(candidate);
      await queued(candidate);
    }
    await showQueue(first.election);
    await delay(2 * BEAT_MS, demo.signal);
    // Crash between two runs, not in the middle of one (act 3 shows a hand-over of a run).
    await runEnds.next(
      (e) => e.candidate === (leadership.last ?? firstTerm).candidate,
      5 * BEAT_MS,
      "leader's run",
      demo.signal,
    );
    await delay(0.3 * BEAT_MS, demo.signal);

    // ── Act 2: the leader crashes ────────────────────────────────────────────────────────
    const crashed = leadership.last ?? firstTerm;
    const faults = faultsOf(crashed.candidate.arbitrator);
    log.section(`2. Crash: ${crashed.candidate.name} stops renewing, the arbitrator expires it`);
    const crashAt = log.now();
    // Wait from before the crash: a graceful close hands over before close() returns.
    const nextLeader = leadership.next(
      (e) => e.candidate !== crashed.candidate,
      3 * ttlMs + 5_000,
      'failover',
      demo.signal,
    );
    nextLeader.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
    const runsBeforeCrash = crashed.candidate.runs;
    if (faults) {
      faults.pause();
      const deadlineAt = crashAt + crashed.term.remainingMs();
      log.event(
        crashed.candidate.name,
        'frozen',
        "simulated crash: pause() freezes this node's tenure client",
      );
      log.note('like a long GC pause or SIGSTOP: no renewals, no requests get through.');
      log.note(
        `its scheduler claims a slot (a fenced write) before it runs it: the claim waits in the frozen client.`,
      );
      log.note(
        `term.isValid() still answers from the clock: true until the deadline at ${formatAt(deadlineAt).trim()}.`,
      );
      watchDeadline(crashed, deadlineAt);
    } else {
      log.event(
        crashed.candidate.name,
        'exits',
        `${target.scheme}:// offers no fault injection, so it stops its scheduler and closes its arbitrator`,
      );
      log.note('a graceful exit: its key is deleted at once, so failover is immediate.');
      timeline.explain(crashed.term.epoch, 'the demo stopped its scheduler, closed its arbitrator');
      crashed.candidate.left = true;
      await crashed.candidate.scheduler?.stop();
      await crashed.candidate.arbitrator.close();
    }
    const successor = await nextLeader;
    log.note(`failover ${formatSpan(successor.atMs - crashAt)} after the crash.`);
    if (faults) {
      log.note(
        `the arbitrator expired ${crashed.candidate.name}'s session ${formatDuration(ttlMs)} after its last renewal arrived.`,
      );
    }
    if (faults) {
      timeline.explain(crashed.term.epoch, 'the frozen leader stopped renewing');
      await delay(1.5 * BEAT_MS, demo.signal);
      log.event(crashed.candidate.name, 'resumes', 'its client wakes up after the freeze');
      log.note('it finds its term over and its session gone; it rejoins with a new session.');
      faults.resume();
      await queued(crashed.candidate);
      const late = crashed.candidate.runs - runsBeforeCrash;
      log.event(
        crashed.candidate.name,
        'follows',
        `epoch ${crashed.term.epoch} is over: its scheduler ran ${late === 0 ? 'no slot' : `${late} slot(s)`} after the freeze`,
      );
      log.note(
        'its claims are writes fenced on its key, which the arbitrator deleted: none can succeed.',
      );
      await showQueue(successor.candidate.election);
    }
    await delay(2 * BEAT_MS, demo.signal);

    // ── Act 3: graceful stop, hand-over ──────────────────────────────────────────────────
    const leaving = leadership.last ?? successor;
    log.section(
      `3. Restart: ${leaving.candidate.name} stops its scheduler, the next candidate takes over at once`,
    );
    log.event(
      leaving.candidate.name,
      'resigns',
      `epoch ${leaving.term.epoch}: scheduler.stop() takes no more slots, lets a running run end, resigns`,
    );
    timeline.explain(leaving.term.epoch, 'scheduler.stop(), which resigns');
    const resignAt = log.now();
    const handedTo = leadership.next(
      (e) => e.candidate !== leaving.candidate,
      5_000 + ttlMs,
      'handover after scheduler.stop()',
      demo.signal,
    );
    await leaving.candidate.scheduler?.stop();
    const heir = await handedTo;
    log.note(
      `handover ${formatSpan(heir.atMs - resignAt)} after stop() began: no TTL to wait for.`,
    );
    log.note(
      `like a rolling restart, ${leaving.candidate.name} starts a new scheduler on its election: it rejoins at the back.`,
    );
    leaving.candidate.scheduler = schedulerFor(leaving.candidate);
    start(leaving.candidate);
    await queued(leaving.candidate);
    await showQueue(heir.candidate.election);
    await delay(2.5 * BEAT_MS, demo.signal);

    // ── Shutdown ─────────────────────────────────────────────────────────────────────────
    log.section('4. Shutdown: followers leave first, then the leader stops and resigns');
    const last = leadership.last ?? heir;
    timeline.explain(last.term.epoch, 'shutdown (scheduler.stop(), which resigns)');
    for (const candidate of candidates.filter((c) => c !== last.candidate && !c.left)) {
      await candidate.scheduler?.stop();
      await candidate.arbitrator.close();
      log.event(
        candidate.name,
        'closed',
        'stopped its scheduler, left the queue, closed its arbitrator',
      );
    }
    await last.candidate.scheduler?.stop();
    // The history lives in the arbitrator: any participant can read it.
    const history = (await last.candidate.scheduler?.history(JOB)) ?? [];
    await last.candidate.arbitrator.close();
    log.event(
      last.candidate.name,
      'closed',
      'stopped its scheduler (it resigned), closed its arbitrator',
    );

    log.section(`Terms of election "${ELECTION}" (seconds since the start)`);
    for (const line of timeline.render()) log.line(line);
    log.line('');
    log.line(
      'Epochs only grow: pass term.epoch to every resource you write to, and let the resource',
    );
    log.line(
      'refuse a smaller epoch than it has seen (FenceGate), so a deposed leader cannot overwrite.',
    );

    log.section(`Runs of job "${JOB}", from its history in the arbitrator`);
    for (const line of renderRuns(history, missedSlots)) log.line(line);
    log.line('');
    log.line(
      'Each slot ran at most once, each run with the epoch of the term that claimed it: pass',
    );
    log.line(
      'ctx.epoch downstream the same way (docs/cron.md says what else stays the job’s work).',
    );
  } finally {
    demo.abort();
    options.signal?.removeEventListener('abort', onOuterAbort);
    for (const timer of timers) clearTimeout(timer);
    for (const candidate of candidates) {
      // A frozen client must be able to close.
      faultsOf(candidate.arbitrator)?.resume();
    }
    await Promise.allSettled(candidates.map((c) => c.scheduler?.stop()));
    await Promise.allSettled(candidates.map((c) => c.arbitrator.close()));
  }

  function watch(candidate: Candidate): void {
    const { name, election, arbitrator } = candidate;
    election.on('elected', (term) => {
      beforeElected();
      const atMs = log.now();
      timeline.begin(name, term.epoch, atMs);
      log.event(name, 'elected', `epoch ${term.epoch}`);
      leadership.happened({ candidate, term, atMs });
    });
    election.on('ended', (term, reason) => {
      timeline.end(term.epoch, reason, log.now());
      log.event(name, 'ended', `epoch ${term.epoch}: ${reason} (${REASONS[reason]})`);
    });
    election.on('error', (error) => log.event(name, 'error', error.message));
    arbitrator.on('connection', (state) => {
      if (state !== 'connected') log.event(name, 'session', state);
    });
    arbitrator.on('error', (error) => log.event(name, 'error', error.message));
  }

  /** A scheduler on the candidate's election with the demo's job, its events logged. */
  function schedulerFor(candidate: Candidate): Scheduler {
    const { name, election } = candidate;
    const scheduler = createScheduler(election);
    scheduler.add(JOB, SCHEDULE, (ctx) => work(candidate, ctx));
    scheduler.on('missed', (_job, slots) => {
      missedSlots.push(...slots);
      log.event(
        name,
        'missed',
        `${slots.map(formatSlot).join(', ')}: fell due while no one could lead`,
      );
      log.note("catchUp 'latest' (the default) runs only the newest missed slot, once.");
    });
    scheduler.on('skipped', (_job, slot, reason) =>
      log.event(name, 'skipped', `slot ${formatSlot(slot)}: ${reason}`),
    );
    scheduler.on('run-end', (run) => {
      if (run.outcome === 'interrupted') {
        log.event(
          name,
          'finds',
          `slot ${formatSlot(new Date(run.slot))} interrupted: epoch ${run.epoch}'s run never recorded its end`,
        );
      } else if (run.outcome !== 'success') {
        log.event(
          name,
          'run ended',
          `slot ${formatSlot(new Date(run.slot))}: ${run.outcome}${run.error ? ` (${run.error})` : ''}`,
        );
      }
      runEnds.happened({ candidate, run });
    });
    scheduler.on('zombie', (run) =>
      log.event(name, 'zombie', `slot ${formatSlot(new Date(run.slot))} ignores its signal`),
    );
    scheduler.on('error', (error) => log.event(name, 'error', error.message));
    return scheduler;
  }

  /** Starts the candidate's scheduler: it campaigns, and runs the job while leading. */
  function start(candidate: Candidate): void {
    candidate.scheduler?.start();
  }

  /** The job: one line per run, with the slot, the epoch and what is left of the term. */
  function work(candidate: Candidate, ctx: JobContext): void {
    candidate.runs += 1;
    const term = candidate.election.term;
    const how =
      ctx.trigger === 'catch-up'
        ? 'a missed slot, run late'
        : term === undefined
          ? ctx.trigger
          : `term valid for ${formatSpan(term.remainingMs())} more`;
    log.event(candidate.name, 'runs', `slot ${formatSlot(ctx.slot)}, epoch ${ctx.epoch}, ${how}`);
  }

  /**
   * Prints the moment the frozen leader's `term.isValid()` turns false. Should the event loop
   * stall past both the deadline and the arbitrator's expiry, the next `elected` flushes the
   * line first, so the output keeps the order in which the two happened.
   */
  function watchDeadline(elected: Elected, deadlineAt: number): void {
    let reported = false;
    const report = (): boolean => {
      if (reported || elected.term.isValid()) return reported;
      reported = true;
      clearTimeout(timer);
      timers.delete(timer);
      timeline.invalid(elected.term.epoch, deadlineAt);
      log.event(
        elected.candidate.name,
        'deadline',
        `epoch ${elected.term.epoch}: local deadline passed, term.isValid() is false from now on`,
      );
      log.note("no renewal acknowledged in time: this comes before the arbitrator's expiry.");
      return true;
    };
    const check = () => {
      timers.delete(timer);
      if (report()) return;
      // Timers may fire a little early: look again just after.
      timer = setTimeout(check, 5);
      timers.add(timer);
    };
    let timer = setTimeout(check, Math.max(0, deadlineAt - log.now()) + 1);
    timers.add(timer);
    beforeElected = () => {
      report();
    };
  }

  /** Waits until `candidate`'s key is in the queue, and says so. */
  async function queued(candidate: Candidate): Promise<void> {
    const until = log.now() + 5_000 + 3 * candidate.arbitrator.ttlMs;
    for (;;) {
      const queue = await candidate.election.candidates();
      const position = queue.findIndex((c) => c.value === candidate.name);
      if (position > 0) {
        log.event(
          candidate.name,
          'queued',
          `position ${position + 1}, watching ${queue[position - 1]?.value ?? '?'} (its predecessor)`,
        );
        return;
      }
      if (position === 0) return;
      if (log.now() > until) throw new Error(`${candidate.name} did not join the queue in time`);
      await delay(20, demo.signal);
    }
  }

  async function showQueue(election: Election): Promise<void> {
    const queue = await election.candidates();
    log.event(
      'queue',
      '',
      queue
        .map((c, i) => `${c.value}${i === 0 ? ' (leader)' : ''} [epoch ${c.epoch}]`)
        .join('  ←  '),
    );
  }
}

/** The URL as the demo prints it: any `user:password@` replaced. */
function redactUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1…@');
}
