import {
  AbortedError,
  type Clock,
  ClosedError,
  type Election,
  type EndReason,
  IllegalStateError,
  LeadershipLostError,
  type TenureError,
  type Term,
} from '@tenure/core';
import { QueueElection } from '@tenure/core/internal';
import {
  createMemoryArbitrator,
  createMemoryServer,
  type MemoryArbitrator,
  type MemoryServer,
} from '@tenure/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// Unit tests of core's QueueElection (the recipe every adapter shares) on the memory
// arbitrator under fake timers: each scenario is simulated time, so nothing depends on the
// machine's speed. Timings: TTL 3 s, so a renewal (and an election's consistency read) every
// second, and a local deadline of 3 000 × 0.99 − 100 = 2 870 ms after each renewal's send.
const TTL = 3_000;
const RENEW = TTL / 3;

let server: MemoryServer;
let opened: MemoryArbitrator[];
let errors: TenureError[];
/** The delay of every timer set on the server's clock (every client timer goes through it). */
let delays: number[];
let seq = 0;
const name = () => `election-${++seq}`;

/** The server's clock: the faked global timers, each delay recorded. */
const clock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    delays.push(ms);
    return setTimeout(fn, ms);
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

function open(options: { watchdogTickMs?: number } = {}): MemoryArbitrator {
  const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL, ...options });
  opened.push(arbitrator);
  return arbitrator;
}

/** core's election recipe behind `arbitrator.election()`, its errors collected (none goes unseen). */
function elect(arbitrator: MemoryArbitrator, election: string, value: string): QueueElection {
  const e = arbitrator.election(election, { value });
  if (!(e instanceof QueueElection)) throw new Error('not a QueueElection');
  e.on('error', (error) => errors.push(error));
  return e;
}

/** Deletes a key on the server whatever its owner, as an operator would. */
function deleteKey(election: string, key: string): void {
  (server as unknown as { deleteKey(e: string, k: string): boolean }).deleteKey(election, key);
}

/** Notifications lost with no reconnect to resync after (a watch that dropped an event). */
function noResync(arbitrator: MemoryArbitrator): void {
  (arbitrator as unknown as { resync(): void }).resync = () => {};
}

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

/** Resolves `promise` while advancing simulated time a millisecond at a time (at most `ms`). */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < ms && !settled; i += 1) await advance(1);
  if (!settled) throw new Error(`not settled within ${ms} ms of simulated time`);
  return promise;
}

/** The next term `election` is elected to. */
function nextTerm(election: Election): Promise<Term> {
  return new Promise((resolve) => election.once('elected', resolve));
}

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'],
  });
  delays = [];
  errors = [];
  opened = [];
  server = createMemoryServer({ clock });
});

afterEach(async () => {
  try {
    await Promise.all(opened.map((a) => a.close()));
    await server.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(errors.filter((e) => e instanceof IllegalStateError)).toEqual([]);
  } finally {
    vi.useRealTimers();
  }
});

describe('QueueElection on the memory arbitrator', () => {
  it('goes idle → campaigning → leading → idle → campaigning → leading → closed', async () => {
    const a = open();
    const n = name();
    const e = elect(a, n, 'a');
    expect(e.state).toBe('idle');
    const first = e.campaign();
    expect(e.state).toBe('campaigning');
    const t1 = await within(10, first);
    expect(e.state).toBe('leading');
    expect(e.term).toBe(t1);
    await e.resign();
    expect(e.state).toBe('idle');
    expect(t1.endReason).toBe('resigned');
    expect(e.term).toBeUndefined();
    await e.resign(); // idle: nothing to do
    const second = e.campaign();
    expect(e.state).toBe('campaigning');
    const t2 = await within(10, second);
    expect(e.state).toBe('leading');
    expect(t2.epoch).toBeGreaterThan(t1.epoch);
    await e.close();
    expect(e.state).toBe('closed');
    expect(t2.endReason).toBe('closed');
    await expect(e.campaign()).rejects.toBeInstanceOf(ClosedError);
    await expect(e.resign()).rejects.toBeInstanceOf(ClosedError);
    await expect(e.proclaim('x')).rejects.toBeInstanceOf(ClosedError);
    expect(server.queue(n)).toEqual([]);
    const idle = elect(a, name(), 'idle');
    await idle.close(); // idle → closed
    expect(idle.state).toBe('closed');
    await expect(idle.campaign()).rejects.toBeInstanceOf(ClosedError);
  });

  it('leading → campaigning on an involuntary loss, and back to leading with a larger epoch', async () => {
    const a = open();
    const e = elect(a, name(), 'a');
    const t1 = await within(10, e.campaign());
    const states: string[] = [];
    e.on('ended', () => states.push(e.state));
    const next = nextTerm(e);
    a.expire();
    expect(await within(10, t1.ended)).toBe('session-lost');
    const t2 = await within(10, next);
    expect(states).toEqual(['leading']); // `ended` is emitted before the driver moves on
    expect(e.state).toBe('leading');
    expect(t2.epoch).toBeGreaterThan(t1.epoch);
  });

  it('campaign() right after resign(), without waiting: resign() settles, the new candidacy leads with a larger epoch', async () => {
    const a = open();
    const n = name();
    const e = elect(a, n, 'a');
    const first = await within(10, e.campaign());
    const resigned = e.resign();
    const second = e.campaign();
    await within(50, resigned);
    const term = await within(50, second);
    expect(term.epoch).toBeGreaterThan(first.epoch);
    expect(term.isValid()).toBe(true);
    // The new candidacy's key is in the queue: the resign did not delete it.
    await advance(10);
    expect((await e.candidates()).map((c) => c.epoch)).toEqual([term.epoch]);
    expect(e.term).toBe(term);
  });

  it('a second campaign() while leading returns the same term', async () => {
    const a = open();
    const e = elect(a, name(), 'a');
    const term = await within(10, e.campaign());
    expect(await within(10, e.campaign())).toBe(term);
    expect(await within(10, Promise.all([e.campaign(), e.campaign()]))).toEqual([term, term]);
  });

  it('a term ends revoked at once when the watch reports its key deleted, then rejoins with a larger epoch', async () => {
    const a = open();
    const n = name();
    const e = elect(a, n, 'a');
    const t1 = await within(10, e.campaign());
    const next = nextTerm(e);
    deleteKey(n, t1.key);
    expect(t1.isValid()).toBe(true); // the client has not heard of it yet
    await advance(0);
    expect(t1.endReason).toBe('revoked');
    const t2 = await within(10, next);
    expect(t2.epoch).toBeGreaterThan(t1.epoch);
    expect(a.sessionId).not.toBe(''); // the session lives on: only the key went
  });

  it('a fenced write refused because the key is gone ends the term revoked, even with the deletion unheard', async () => {
    const a = open();
    const n = name();
    const e = elect(a, n, 'a');
    const t1 = await within(10, e.campaign());
    const next = nextTerm(e);
    a.partition(); // the deletion's notification is dropped
    deleteKey(n, t1.key);
    a.heal();
    await advance(0);
    expect(t1.endReason).toBeUndefined();
    const refused = await t1.put('k', 'v').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(LeadershipLostError);
    expect((refused as LeadershipLostError).reason).toBe('revoked');
    expect(t1.endReason).toBe('revoked');
    expect((await within(10, next)).epoch).toBeGreaterThan(t1.epoch);
  });

  it('a leader whose deletion notification was lost ends its term revoked at the next periodic read (once per renewal interval)', async () => {
    const a = open();
    const n = name();
    const e = elect(a, n, 'a');
    const t1 = await within(10, e.campaign());
    const ended: EndReason[] = [];
    e.on('ended', (_, reason) => ended.push(reason));
    const next = nextTerm(e);
    a.partition();
    deleteKey(n, t1.key);
    a.heal();
    await advance(RENEW - 20);
    expect(ended).toEqual([]);
    await advance(20);
    expect(ended).toEqual(['revoked']);
    expect((await within(10, next)).epoch).toBeGreaterThan(t1.epoch);
  });

  it('expired: after a pause past the deadline the old key is deleted before rejoining with a larger epoch', async () => {
    const a = open();
    const b = open();
    const n = name();
    const ea = elect(a, n, 'a');
    const t1 = await within(10, ea.campaign());
    await advance(RENEW); // a renewal: the deadline is 2 870 ms after it, the server's expiry 3 000
    const session = a.sessionId;
    const eb = elect(b, n, 'b');
    const bTerm = eb.campaign();
    await advance(1);
    expect(server.queue(n)).toEqual([t1.key, `${n}/${b.sessionId}`]);
    a.pause();
    await advance(2_900);
    expect(t1.isValid()).toBe(false); // from the clock, before any of a's timers ran
    expect(t1.endReason).toBeUndefined();
    expect(server.sessionIds()).toContain(session); // the server has not expired it yet
    const next = nextTerm(ea);
    a.resume();
    expect(await within(10, t1.ended)).toBe('expired');
    // Its key deleted, b leads; a's session survived and it queued again behind b.
    const tb = await within(10, bTerm);
    expect(tb.epoch).toBeGreaterThan(t1.epoch);
    expect(a.sessionId).toBe(session);
    expect(server.queue(n)).toEqual([`${n}/${b.sessionId}`, `${n}/${session}`]);
    await eb.resign();
    const t2 = await within(10, next);
    expect(t2.epoch).toBeGreaterThan(tb.epoch);
  });

  it('rejoins with a larger epoch after each involuntary loss', async () => {
    const a = open();
    const n = name();
    const e = elect(a, n, 'a');
    const epochs: bigint[] = [];
    const reasons: EndReason[] = [];
    e.on('elected', (term) => epochs.push(term.epoch));
    e.on('ended', (_, reason) => reasons.push(reason));
    const first = await within(10, e.campaign());
    a.expire();
    await advance(10);
    deleteKey(n, e.term?.key ?? '');
    await advance(10);
    a.partition();
    await advance(TTL);
    a.heal();
    await advance(RENEW);
    expect(reasons).toEqual(['session-lost', 'revoked', 'expired']);
    expect(epochs).toHaveLength(4);
    expect(epochs[0]).toBe(first.epoch);
    for (let i = 1; i < epochs.length; i += 1) {
      expect(epochs[i] as bigint).toBeGreaterThan(epochs[i - 1] as bigint);
    }
  });

  it('a waiting candidate whose predecessor left unnoticed leads within one renewal interval (the periodic read)', async () => {
    const a = open();
    const b = open();
    const n = name();
    const ea = elect(a, n, 'a');
    const ta = await within(10, ea.campaign());
    const eb = elect(b, n, 'b');
    let tb: Term | undefined;
    eb.campaign().then((t) => (tb = t));
    await advance(RENEW / 2);
    expect(tb).toBeUndefined();
    b.partition(); // b never hears of the deletion
    noResync(b); // and nothing re-reads the queue when the link heals
    deleteKey(n, ta.key);
    b.heal();
    await advance(0);
    expect(ta.endReason).toBe('revoked'); // a heard of it; it queues again behind b
    expect(tb).toBeUndefined();
    await advance(RENEW);
    expect(tb).toBeDefined();
    expect(tb?.epoch).toBeGreaterThan(ta.epoch);
    expect(ea.state).toBe('campaigning');
  });

  it('holds the watchdog exactly while a term is held: a tick timer only then', async () => {
    const a = open({ watchdogTickMs: 7 });
    const b = open({ watchdogTickMs: 11 });
    const n = name();
    const ticks = () => ({
      a: delays.filter((ms) => ms === 7).length,
      b: delays.filter((ms) => ms === 11).length,
    });
    await advance(RENEW);
    // Per arbitrator: its renewal and its deadline; plus the server's expiry check.
    expect(vi.getTimerCount()).toBe(5);
    const ea = elect(a, n, 'a');
    const eb = elect(b, n, 'b');
    await within(10, ea.campaign());
    let tb: Term | undefined;
    eb.campaign().then((t) => (tb = t));
    // Leading adds a's consistency read; waiting adds b's. The watchdog's tick replaces a's
    // deadline timer: no extra timer.
    await advance(10);
    expect(vi.getTimerCount()).toBe(7);
    delays.length = 0;
    await advance(700);
    expect(ticks().a).toBeGreaterThanOrEqual(100);
    expect(ticks().b).toBe(0);
    // Listen before resigning: b may be elected before resign() resolves.
    const next = nextTerm(eb);
    await ea.resign();
    await within(10, next);
    expect(tb).toBeDefined();
    delays.length = 0;
    await advance(770);
    expect(ticks().a).toBe(0);
    expect(ticks().b).toBeGreaterThanOrEqual(70);
    await eb.resign();
    delays.length = 0;
    await advance(770);
    expect(ticks()).toEqual({ a: 0, b: 0 });
    expect(vi.getTimerCount()).toBe(5);
  });

  it('resign() and close() leave no timer of the election behind', async () => {
    const a = open();
    const b = open();
    await advance(10);
    const baseline = vi.getTimerCount();
    const n = name();
    const ea = elect(a, n, 'a');
    const eb = elect(b, n, 'b');
    await within(10, ea.campaign());
    const waiting = eb.campaign();
    await advance(10);
    expect(vi.getTimerCount()).toBeGreaterThan(baseline);
    await eb.close(); // a waiting candidate: campaigning → closed
    expect(eb.state).toBe('closed');
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    await ea.resign(); // a leader
    await advance(10);
    expect(vi.getTimerCount()).toBe(baseline);
    await within(10, ea.campaign());
    await ea.close(); // a leader, closed
    await advance(10);
    expect(vi.getTimerCount()).toBe(baseline);
    expect(server.queue(n)).toEqual([]);
  });

  it('a resigning leader stops watching its key once its delete is answered, not while the arbitrator applies it', async () => {
    // A watch's cancel sent with the delete reaches etcd while it commits the delete and tells
    // the next leader, and slows that handover (docs/etcd.md, Measured).
    const a = createMemoryArbitrator({ server, ttlMs: TTL, latencyMs: 5 });
    const at: { leave?: number; unwatch: number[] } = { unwatch: [] };
    const impl = server as unknown as {
      watch(election: string, watcher: unknown): () => void;
      leave(election: string, key: string, createRevision: bigint): boolean;
    };
    const watch = impl.watch.bind(server);
    const leave = impl.leave.bind(server);
    vi.spyOn(impl, 'watch').mockImplementation((election, watcher) => {
      const unwatch = watch(election, watcher);
      return () => {
        at.unwatch.push(performance.now());
        unwatch();
      };
    });
    vi.spyOn(impl, 'leave').mockImplementation((election, key, createRevision) => {
      at.leave = performance.now();
      return leave(election, key, createRevision);
    });
    const e = elect(a, name(), 'a');
    await within(50, e.campaign());
    const resignedAt = performance.now();
    await within(50, e.resign());
    // Applied one latency after resign(), answered one latency later.
    expect(at.leave).toBe(resignedAt + 5);
    expect(at.unwatch.length).toBeGreaterThan(0);
    for (const unwatched of at.unwatch) expect(unwatched).toBeGreaterThanOrEqual(resignedAt + 10);
    await within(100, a.close());
  });

  it('abort of the last waiting campaign withdraws from the queue; an earlier abort does not', async () => {
    const a = open();
    const b = open();
    const n = name();
    const ea = elect(a, n, 'a');
    await within(10, ea.campaign());
    const eb = elect(b, n, 'b');
    const first = new AbortController();
    const second = new AbortController();
    const p1 = eb.campaign({ signal: first.signal });
    const p2 = eb.campaign({ signal: second.signal });
    await advance(10);
    const bKey = `${n}/${b.sessionId}`;
    expect(server.queue(n)).toContain(bKey);
    first.abort();
    await expect(p1).rejects.toBeInstanceOf(AbortedError);
    expect(eb.state).toBe('campaigning');
    expect(server.queue(n)).toContain(bKey);
    second.abort();
    await expect(p2).rejects.toBeInstanceOf(AbortedError);
    expect(eb.state).toBe('idle');
    expect(server.queue(n)).not.toContain(bKey);
    await ea.resign();
    await advance(RENEW * 2);
    expect(eb.term).toBeUndefined(); // withdrawn: it does not lead when a leaves
  });
});
