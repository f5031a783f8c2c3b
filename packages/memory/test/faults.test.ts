import { InvalidArgumentError, LeadershipLostError, type Term } from '@tenure/core';
import { createMemoryArbitrator, createMemoryServer, type MemoryArbitrator } from '@tenure/memory';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

const TTL = 600;
const opened: MemoryArbitrator[] = [];
const server = createMemoryServer({ expiryCheckMs: 20 });

function open(latencyMs = 0): MemoryArbitrator {
  const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL, latencyMs });
  opened.push(arbitrator);
  return arbitrator;
}

function until<T>(what: string, check: () => T | undefined, timeoutMs = TTL * 10): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const value = check();
      if (value !== undefined && value !== false) return resolve(value);
      if (Date.now() - started > timeoutMs)
        return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 5);
    };
    poll();
  });
}

let seq = 0;
const name = () => `faults-${++seq}`;

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});

// A session whose revoke was cut by a partition lives on the server until its TTL: stop it.
afterAll(() => server.close());

describe('memory arbitrator faults', () => {
  it('pause: the frozen leader sees isValid() false from the clock before any of its timers run', async () => {
    const a = open();
    const b = open();
    const n = name();
    const ta = await a.election(n, { value: 'a' }).campaign();
    const eb = b.election(n, { value: 'b' });
    const next = eb.campaign();
    a.pause();
    const tb = await next; // a's session expired on the server
    expect(ta.isValid()).toBe(false);
    expect(ta.endReason).toBeUndefined(); // no timer of the paused process has run
    expect(tb.epoch).toBeGreaterThan(ta.epoch);
    a.resume();
    expect(await ta.ended).toBe('expired');
    await expect(ta.put('k', 'v')).rejects.toBeInstanceOf(LeadershipLostError);
  });

  it('resign during a partition, then a campaign after heal: the new term never reuses the ended epoch (G2)', async () => {
    const a = open();
    const election = a.election(name(), { value: 'a' });
    const errors: unknown[] = [];
    election.on('error', (error) => errors.push(error));
    const first = await election.campaign();
    a.partition();
    await election.resign(); // its delete fails; it keeps trying in the background
    expect(await first.ended).toBe('resigned');
    expect(errors.length).toBeGreaterThan(0);
    a.heal();
    const second = await election.campaign();
    expect(second.epoch).toBeGreaterThan(first.epoch);
    expect((await election.candidates()).map((c) => c.epoch)).toEqual([second.epoch]);
  });

  it('partition: the leader ends its term (expired) before the server drops its session, then rejoins with a larger epoch', async () => {
    const a = open();
    const b = open();
    const n = name();
    const ea = a.election(n, { value: 'a' });
    const states: string[] = [];
    ea.on('connection', (s) => states.push(s));
    let errors = 0;
    ea.on('error', () => errors++);
    const ta = await ea.campaign();
    const eb = b.election(n, { value: 'b' });
    const tbPromise = eb.campaign();
    let endedAt = 0;
    ta.ended.then(() => {
      endedAt = performance.now();
    });
    a.partition();
    expect(await ta.ended).toBe('expired');
    const tb = await tbPromise;
    const electedAt = performance.now();
    expect(endedAt).toBeGreaterThan(0);
    expect(endedAt).toBeLessThanOrEqual(electedAt);
    expect(errors).toBeGreaterThan(0);
    a.heal();
    await eb.resign();
    const ta2 = await ea.campaign();
    expect(ta2.epoch).toBeGreaterThan(tb.epoch);
    expect(states).toEqual(['connected', 'suspended', 'lost', 'reconnected']);
  });

  it('a short partition suspends and reconnects without ending the term', async () => {
    const a = open();
    const e = a.election(name());
    const term = await e.campaign();
    const states: string[] = [];
    e.on('connection', (s) => states.push(s));
    a.partition();
    await until('suspended', () => states.includes('suspended') || undefined);
    a.heal();
    await until('reconnected', () => states.includes('reconnected') || undefined);
    expect(term.isValid()).toBe(true);
    expect(term.endReason).toBeUndefined();
  });

  it('a key deleted by someone else ends the term as revoked; the candidate rejoins', async () => {
    const a = open();
    const n = name();
    const e = a.election(n);
    const term = await e.campaign();
    server_deleteKey(n, term.key);
    expect(await term.ended).toBe('revoked');
    const again = await e.campaign();
    expect(again.epoch).toBeGreaterThan(term.epoch);
  });

  it('a deleted key ends the term at once, even when no confirming request gets through (G9)', async () => {
    // Requests and notifications take 50 ms: the deletion's notification arrives, then the
    // client is cut off, so any confirmation it sends fails. The term must not outlive the key.
    const a = open(50);
    const b = open();
    const n = name();
    const ea = a.election(n, { value: 'a' });
    const term = await ea.campaign();
    const pb = b.election(n, { value: 'b' }).campaign();
    await until('b queued', () => server.queue(n).length === 2 || undefined);
    server_deleteKey(n, term.key);
    await new Promise((resolve) => setTimeout(resolve, 60));
    a.partition();
    // b leads on the deletion; at that instant a's term must already be over.
    const tb = await pb;
    expect(tb.isValid()).toBe(true);
    expect(term.isValid()).toBe(false);
    expect(term.endReason).toBe('revoked');
    a.heal();
  });

  it('a fenced write refused because the key is gone ends the term at once (G9)', async () => {
    // The deletion's notification is lost (a partition drops it), yet the client can still
    // write: the arbitrator's refusal alone must end the term.
    const a = open();
    const n = name();
    const ea = a.election(n, { value: 'a' });
    const term = await ea.campaign();
    a.partition();
    server_deleteKey(n, term.key);
    a.heal();
    await expect(term.put('k', 'v')).rejects.toBeInstanceOf(LeadershipLostError);
    expect(term.isValid()).toBe(false);
    expect(term.endReason).toBe('revoked');
    const again = await ea.campaign();
    expect(again.epoch).toBeGreaterThan(term.epoch);
  });

  it('a lost deletion is noticed by the periodic read within one renewal interval', async () => {
    const a = open();
    const n = name();
    const ea = a.election(n, { value: 'a' });
    const term = await ea.campaign();
    a.partition();
    server_deleteKey(n, term.key);
    a.heal();
    // No notification will come: the read every ttl/3 finds the key gone.
    expect(await term.ended).toBe('revoked');
  });

  it('resign during a partition does not hang, and the key goes once healed', async () => {
    const a = open();
    const b = open();
    const n = name();
    const e = a.election(n);
    await e.campaign();
    a.partition();
    await e.resign();
    expect(e.term).toBeUndefined();
    a.heal();
    const t = await b.election(n).campaign();
    expect(t.isValid()).toBe(true);
  });

  it('close during a partition resolves and leaves nothing running', async () => {
    const a = createMemoryArbitrator({ server, ttlMs: TTL });
    const e = a.election(name());
    const term = await e.campaign();
    a.partition();
    await a.close();
    expect(term.endReason).toBe('closed');
    await expect(e.campaign()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('works with latency on every request and notification', async () => {
    const a = open(5);
    const b = open(5);
    const n = name();
    const ea = a.election(n, { value: 'a' });
    const eb = b.election(n, { value: 'b' });
    const ta = await ea.campaign();
    const pb = eb.campaign();
    await until('b queued', () => server.queue(n).length === 2 || undefined);
    await ea.resign();
    const tb = await pb;
    expect(tb.epoch).toBeGreaterThan(ta.epoch);
    expect((await eb.leader())?.value).toBe('b');
  });

  it('rejects invalid options at once, naming the field', () => {
    expect(() => createMemoryArbitrator({ ttlMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => createMemoryArbitrator({ ttlMs: Number.NaN })).toThrow(/ttlMs/);
    expect(() => createMemoryArbitrator({ ttlMs: 100 })).toThrow(/ttlMs/); // no room for the margin
    expect(() => createMemoryArbitrator({ latencyMs: -1 })).toThrow(/latencyMs/);
    expect(() => createMemoryArbitrator({ server: {} as never })).toThrow(/server/);
    expect(() => createMemoryServer({ expiryCheckMs: 0 })).toThrow(/expiryCheckMs/);
  });
});

function server_deleteKey(election: string, key: string): void {
  // An operator deleting the key by hand (etcdctl del): the memory server's admin surface.
  (server as unknown as { deleteKey(e: string, k: string): boolean }).deleteKey(election, key);
}

export type { Term };

describe('memory arbitrator: a term ends once', () => {
  it('after a partition longer than the validity but shorter than the TTL, the next term has a new key and a larger epoch', async () => {
    const a = open();
    const e = a.election(name());
    const first = await e.campaign();
    a.partition();
    expect(await first.ended).toBe('expired');
    a.heal(); // the session is still alive on the server
    const second = await e.campaign();
    expect(second.epoch).toBeGreaterThan(first.epoch);
    expect((await e.candidates()).map((c) => c.epoch)).toEqual([second.epoch]);
  });
});

describe('memory arbitrator: closing', () => {
  it('close() of a paused arbitrator resumes it first and resolves', async () => {
    const a = createMemoryArbitrator({ server, ttlMs: TTL });
    const term = await a.election(name()).campaign();
    a.pause();
    await a.close();
    expect(term.endReason).toBe('closed');
  });
});
