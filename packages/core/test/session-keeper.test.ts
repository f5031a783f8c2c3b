import {
  type Clock,
  ClosedError,
  type ConnectionState,
  PermissionDeniedError,
  type TenureError,
  UnavailableError,
} from '@tenure/core';
import {
  SessionGoneError,
  type SessionHooks,
  SessionKeeper,
  type SessionKeeperOptions,
  type SessionTransport,
} from '@tenure/core/internal';
import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock.js';

// A unit test of the keeper alone: a scripted transport and manual timers, no arbitrator.

/** Lets every pending promise callback run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Everything the keeper did, in order: transport calls and hooks. */
type Log = string[];

/** A transport whose answers the test sets; every call is logged with the clock's time. */
class ScriptedTransport implements SessionTransport {
  grants = 0;
  readonly revoked: string[] = [];
  /** What the next grants answer; default: a session `s<n>` with the TTL asked for. */
  onGrant: (ttlMs: number, n: number) => Promise<{ id: string; ttlMs: number }> = (ttlMs, n) =>
    Promise.resolve({ id: `s${n}`, ttlMs });
  /** What renewals answer; default: acknowledged at once. */
  onKeepAlive: (id: string) => Promise<boolean> = () => Promise.resolve(true);

  constructor(
    readonly clock: ManualClock,
    readonly log: Log,
  ) {}

  grant(ttlMs: number): Promise<{ id: string; ttlMs: number }> {
    this.grants += 1;
    this.log.push(`grant@${this.clock.now()}`);
    return this.onGrant(ttlMs, this.grants);
  }

  keepAlive(id: string): Promise<boolean> {
    this.log.push(`keepAlive ${id}@${this.clock.now()}`);
    return this.onKeepAlive(id);
  }

  revoke(id: string): Promise<void> {
    this.log.push(`revoke ${id}`);
    this.revoked.push(id);
    return Promise.resolve();
  }

  /** Answers after `ms` of the clock (the reply's latency). */
  later<T>(ms: number, value: T): Promise<T> {
    return new Promise((resolve) => this.clock.setTimeout(() => resolve(value), ms));
  }
}

interface Harness {
  clock: ManualClock;
  log: Log;
  transport: ScriptedTransport;
  keeper: SessionKeeper;
  /** The delay of every timer the keeper set, in order. */
  delays: number[];
  errors: TenureError[];
  /** Moves the clock by `ms` in steps, letting promises settle after each. */
  advance(ms: number, step?: number): Promise<void>;
}

function harness(
  options: Partial<SessionKeeperOptions> = {},
  script: (transport: ScriptedTransport) => void = () => {},
): Harness {
  const clock = new ManualClock();
  const log: Log = [];
  const delays: number[] = [];
  const errors: TenureError[] = [];
  const transport = new ScriptedTransport(clock, log);
  script(transport);
  const timers: Clock = {
    now: () => clock.now(),
    setTimeout: (fn, ms) => {
      delays.push(ms);
      return clock.setTimeout(fn, ms);
    },
    clearTimeout: (handle) => clock.clearTimeout(handle),
  };
  const hooks: SessionHooks = {
    onLapse: () => log.push(`lapse@${clock.now()}`),
    onLost: () => log.push('lost'),
    onGranted: (ttlMs) => log.push(`granted ttl ${ttlMs}`),
    onConnection: (state: ConnectionState) => log.push(`connection ${state}`),
    onError: (error) => errors.push(error),
    onSession: (event) => log.push(`session ${event.type}`),
  };
  const keeper = new SessionKeeper(
    timers,
    transport,
    { ttlMs: 3_000, maxDrift: 0, marginMs: 0, ...options },
    hooks,
  );
  return {
    clock,
    log,
    transport,
    keeper,
    delays,
    errors,
    async advance(ms, step = 10) {
      await flush();
      for (let left = ms; left > 0; left -= step) {
        clock.advance(Math.min(step, left));
        await flush();
      }
    },
  };
}

/** The log lines that start with `prefix`. */
const lines = (log: Log, prefix: string) => log.filter((line) => line.startsWith(prefix));

describe('SessionKeeper', () => {
  it('grants a session, renews it every ttl/3 and counts the deadline from each renewal’s send time', async () => {
    const h = harness({}, (t) => {
      t.onKeepAlive = () => t.later(200, true); // every reply takes 200 ms
    });
    h.keeper.start();
    const session = await h.keeper.ready([]);
    expect(session.id).toBe('s1');
    expect(h.keeper.id).toBe('s1');
    expect(h.keeper.state).toBe('live');
    expect(h.log).toEqual(['grant@0', 'session granted', 'connection connected']);
    expect(h.keeper.deadline.at).toBe(3_000); // granted at 0: 0 + ttl
    expect(h.keeper.isLive('s1')).toBe(true);
    expect(h.keeper.remainingMs('s1')).toBe(3_000);
    expect(h.keeper.isLive('other')).toBe(false);

    await h.advance(1_200);
    // Sent at 1 000, acknowledged at 1 200: the deadline counts from 1 000.
    expect(lines(h.log, 'keepAlive')).toEqual(['keepAlive s1@1000']);
    expect(h.keeper.deadline.at).toBe(4_000);
    await h.advance(2_400);
    // The next renewal is due ttl/3 after the previous acknowledgement.
    expect(lines(h.log, 'keepAlive')).toEqual([
      'keepAlive s1@1000',
      'keepAlive s1@2200',
      'keepAlive s1@3400',
    ]);
    expect(h.keeper.deadline.at).toBe(6_400);
    expect(lines(h.log, 'session renewed')).toHaveLength(3);
    expect(lines(h.log, 'lapse')).toEqual([]);
    await h.keeper.close();
  });

  it('the first deadline counts from the grant request’s send time', async () => {
    const h = harness({}, (t) => {
      t.onGrant = (ttlMs) => t.later(500, { id: 's1', ttlMs });
    });
    h.keeper.start();
    const ready = h.keeper.ready([]);
    await h.advance(500);
    expect((await ready).id).toBe('s1');
    expect(h.keeper.deadline.at).toBe(3_000);
    expect(h.keeper.remainingMs('s1')).toBe(2_500);
    await h.keeper.close();
  });

  it('renewIntervalMs is a share of the granted TTL (renewFraction, default 1/3)', async () => {
    const h = harness({ renewFraction: 0.25 }, (t) => {
      t.onGrant = (_ttl, n) => Promise.resolve({ id: `s${n}`, ttlMs: 8_000 }); // raised
    });
    expect(h.keeper.renewIntervalMs).toBe(750);
    h.keeper.start();
    await h.keeper.ready([]);
    expect(h.log).toContain('granted ttl 8000');
    expect(h.keeper.ttlMs).toBe(8_000);
    expect(h.keeper.renewIntervalMs).toBe(2_000);
    await h.advance(2_000);
    expect(lines(h.log, 'keepAlive')).toEqual(['keepAlive s1@2000']);
    await h.keeper.close();
    expect(harness().keeper.renewIntervalMs).toBe(1_000);
  });

  it('a renewal that fails keeps the deadline: the session lapses at it, then renews again', async () => {
    let reachable = false;
    const h = harness({}, (t) => {
      t.onKeepAlive = () =>
        reachable
          ? Promise.resolve(true)
          : Promise.reject(new UnavailableError('cut off (scripted)'));
    });
    h.keeper.start();
    await h.keeper.ready([]);
    await h.advance(1_000);
    expect(lines(h.log, 'keepAlive')).toHaveLength(1);
    expect(h.keeper.deadline.at).toBe(3_000);
    expect(h.log).toContain('session renewal-failed');
    expect(h.log).toContain('connection suspended');
    expect(h.keeper.state).toBe('suspended');
    expect(h.errors[0]).toBeInstanceOf(UnavailableError);
    await h.advance(1_990);
    expect(lines(h.log, 'keepAlive').length).toBeGreaterThan(2); // retried with backoff
    expect(h.keeper.deadline.at).toBe(3_000);
    expect(lines(h.log, 'lapse')).toEqual([]);
    await h.advance(10);
    expect(lines(h.log, 'lapse')).toEqual(['lapse@3000']);
    expect(h.keeper.isLive('s1')).toBe(false);
    expect(h.keeper.id).toBe('s1'); // lapsed locally, not lost: the arbitrator decides that
    reachable = true;
    await h.advance(1_000);
    expect(h.keeper.isLive('s1')).toBe(true);
    expect(h.log).toContain('connection reconnected');
    expect(h.keeper.state).toBe('live');
    expect(lines(h.log, 'lapse')).toHaveLength(1);
    await h.keeper.close();
  });

  it.each([
    ['false', () => Promise.resolve(false)],
    ['SessionGoneError', () => Promise.reject(new SessionGoneError('s1'))],
  ])('a renewal answered %s: the session is lost and a new one granted', async (_, answer) => {
    const h = harness({}, (t) => {
      t.onKeepAlive = (id) => (id === 's1' ? answer() : Promise.resolve(true));
    });
    h.keeper.start();
    const first = await h.keeper.ready([]);
    await h.advance(1_000);
    expect(first.lost.aborted).toBe(true);
    expect(h.log).toEqual([
      'grant@0',
      'session granted',
      'connection connected',
      'keepAlive s1@1000',
      'session lost',
      'lost',
      'connection lost',
      'grant@1000',
      'session granted',
      'connection reconnected',
    ]);
    const second = await h.keeper.ready([]);
    expect(second.id).toBe('s2');
    expect(h.keeper.deadline.at).toBe(4_000);
    expect(h.keeper.isLive('s1')).toBe(false);
    expect(h.keeper.isLive('s2')).toBe(true);
    await h.advance(1_000);
    expect(lines(h.log, 'keepAlive')).toEqual(['keepAlive s1@1000', 'keepAlive s2@2000']);
    await h.keeper.close();
  });

  it('after a pause, a lapse is reported before the renewal that fell due is sent', async () => {
    const h = harness();
    h.keeper.start();
    await h.keeper.ready([]);
    h.clock.jump(5_000); // frozen past the deadline (3 000): no timer ran
    h.clock.advance(0); // the renewal's timer (due at 1 000) runs before the deadline's (3 000)
    expect(h.log.slice(3)).toEqual(['lapse@5000', 'keepAlive s1@5000']);
    await flush();
    expect(h.keeper.isLive('s1')).toBe(true); // renewed: a new deadline from 5 000
    expect(lines(h.log, 'lapse')).toHaveLength(1);
    await h.keeper.close();
  });

  it('probe() renews from its send time, reports a lapse first, and reports a loss', async () => {
    let answer: () => Promise<boolean> = () => Promise.resolve(true);
    const h = harness({}, (t) => {
      t.onKeepAlive = () => answer();
    });
    h.keeper.start();
    await h.keeper.ready([]);
    answer = () => h.transport.later(200, true);
    await h.advance(500);
    const probed = h.keeper.probe('s1');
    await h.advance(200);
    expect(await probed).toBe(true);
    expect(h.keeper.deadline.at).toBe(3_500); // sent at 500

    h.clock.jump(4_000); // a pause past the deadline
    answer = () => Promise.resolve(true);
    const afterPause = h.keeper.probe('s1');
    expect(h.log.slice(-2)).toEqual(['lapse@4700', 'keepAlive s1@4700']);
    expect(await afterPause).toBe(true);

    answer = () => Promise.reject(new UnavailableError('cut off (scripted)'));
    await expect(h.keeper.probe('s1')).rejects.toBeInstanceOf(UnavailableError);
    expect(h.keeper.id).toBe('s1');

    answer = () => Promise.reject(new SessionGoneError('s1'));
    expect(await h.keeper.probe('s1')).toBe(false);
    expect(h.log).toContain('lost');
    await flush();
    expect(h.keeper.id).toBe('s2');

    answer = () => Promise.resolve(false);
    expect(await h.keeper.probe('s2')).toBe(false);
    await flush();
    expect(h.keeper.id).toBe('s3');
    expect(lines(h.log, 'lost')).toHaveLength(2);
    await h.keeper.close();
  });

  it('close() revokes the session, fails what waits and leaves no timer', async () => {
    const h = harness();
    h.keeper.start();
    const session = await h.keeper.ready([]);
    const release = h.keeper.holdWatchdog();
    h.keeper.timer(() => {}, 10); // the caller's own timers are the caller's to cancel
    h.clock.advance(10);
    expect(h.clock.pending).toBe(2); // the renewal and the watchdog
    await h.keeper.close();
    release();
    expect(h.transport.revoked).toEqual(['s1']);
    expect(session.lost.aborted).toBe(true);
    expect(session.lost.reason).toBeInstanceOf(ClosedError);
    expect(h.clock.pending).toBe(0);
    expect(h.keeper.state).toBe('closed');
    expect(h.keeper.isLive('s1')).toBe(false);
    await expect(h.keeper.ready([])).rejects.toBeInstanceOf(ClosedError);
    await h.keeper.close(); // twice is fine
    expect(h.transport.revoked).toEqual(['s1']);
  });

  it('close() while granting: waiters fail, a grant that arrives late is revoked, no timer is left', async () => {
    let arrive: (session: { id: string; ttlMs: number }) => void = () => {};
    const h = harness({}, (t) => {
      t.onGrant = () => new Promise((resolve) => (arrive = resolve));
    });
    h.keeper.start();
    const waiting = h.keeper.ready([]);
    await h.keeper.close();
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    arrive({ id: 'late', ttlMs: 3_000 });
    await flush();
    expect(h.transport.revoked).toEqual(['late']);
    expect(h.clock.pending).toBe(0);

    // Closed during the pause between two failed grants: the pause's timer goes too.
    const g = harness({}, (t) => {
      t.onGrant = () => Promise.reject(new UnavailableError('down (scripted)'));
    });
    g.keeper.start();
    await flush();
    expect(g.clock.pending).toBe(1);
    await g.keeper.close();
    expect(g.clock.pending).toBe(0);
  });

  it('a grant refused for good (not retriable) fails every waiting campaign, keeps trying slowly', async () => {
    let refuse = true;
    const h = harness({}, (t) => {
      t.onGrant = (ttlMs, n) =>
        refuse
          ? Promise.reject(new PermissionDeniedError('no such role (scripted)'))
          : Promise.resolve({ id: `s${n}`, ttlMs });
    });
    const waiting = h.keeper.ready([]);
    h.keeper.start();
    await expect(waiting).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(h.keeper.ready([])).rejects.toBeInstanceOf(PermissionDeniedError);
    expect(h.errors[0]).toBeInstanceOf(PermissionDeniedError);
    await h.advance(2_000);
    expect(h.transport.grants).toBeGreaterThan(1);
    refuse = false;
    await h.advance(1_000);
    const session = await h.keeper.ready([]);
    expect(session.id).toMatch(/^s\d+$/);
    expect(h.keeper.isLive(session.id)).toBe(true);
    await h.keeper.close();
  });

  it('a retriable grant failure lets campaigns wait for the next grant', async () => {
    let down = true;
    const h = harness({}, (t) => {
      t.onGrant = (ttlMs, n) =>
        down
          ? Promise.reject(new UnavailableError('down (scripted)'))
          : Promise.resolve({ id: `s${n}`, ttlMs });
    });
    let settled = false;
    const waiting = h.keeper.ready([]).finally(() => (settled = true));
    h.keeper.start();
    await h.advance(1_000);
    expect(settled).toBe(false);
    down = false;
    await h.advance(1_000);
    expect((await waiting).id).toMatch(/^s\d+$/);
    await h.keeper.close();
  });

  it('timer() runs on the keeper’s timers and can be cancelled', async () => {
    const h = harness();
    const ran: string[] = [];
    h.keeper.timer(() => ran.push('a'), 100);
    const cancel = h.keeper.timer(() => ran.push('b'), 100);
    cancel();
    h.clock.advance(99);
    expect(ran).toEqual([]);
    h.clock.advance(1);
    expect(ran).toEqual(['a']);
    expect(h.clock.pending).toBe(0);
  });

  it('holdWatchdog() checks the deadline every tick while held (watchdogTickMs), by one timer otherwise', async () => {
    const h = harness({ watchdogTickMs: 20 });
    h.keeper.start();
    await h.keeper.ready([]);
    expect(h.delays).toEqual([3_000, 1_000]); // the deadline and the renewal
    h.delays.length = 0;
    const release = h.keeper.holdWatchdog();
    h.clock.advance(200);
    expect(h.delays).toEqual(Array(11).fill(20));
    release();
    h.delays.length = 0;
    h.clock.advance(700);
    expect(h.delays).toEqual([]);
    expect(h.clock.pending).toBe(2);
    await h.keeper.close();
    expect(harness().keeper.deadline.tickMs).toBe(50); // min(50, ttl/40)
  });
});
