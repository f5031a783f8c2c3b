import { InvalidArgumentError, LeadershipLostError, MAX_STORED_VALUE_BYTES } from '@tenure/core';
import { LeaseDeadline, ManagedTerm } from '@tenure/core/internal';
import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock.js';

function makeTerm() {
  const clock = new ManualClock();
  const deadline = new LeaseDeadline({ ttlMs: 1_000, maxDrift: 0, marginMs: 0, clock });
  deadline.acknowledge(0);
  const writes: string[] = [];
  const term = new ManagedTerm(
    { election: 'jobs', epoch: 7n, key: 'jobs/abc' },
    {
      isLive: () => deadline.isLive(),
      remainingMs: () => deadline.remainingMs(),
      put: async (key, value) => {
        writes.push(`${key}=${value}`);
        return { version: 1 };
      },
      delete: async (key) => {
        writes.push(`-${key}`);
      },
    },
  );
  return { clock, term, writes };
}

describe('ManagedTerm', () => {
  it('is valid until its deadline, checked synchronously against the clock', () => {
    const { clock, term } = makeTerm();
    expect(term.isValid()).toBe(true);
    expect(term.remainingMs()).toBe(1_000);
    clock.jump(1_000);
    expect(term.isValid()).toBe(false);
    expect(() => term.assertValid()).toThrow(LeadershipLostError);
    expect(term.endReason).toBeUndefined();
  });

  it('ends once: aborts the signal with a LeadershipLostError and resolves ended', async () => {
    const { term } = makeTerm();
    expect(term.end('session-lost')).toBe(true);
    expect(term.end('resigned')).toBe(false);
    expect(await term.ended).toBe('session-lost');
    expect(term.signal.aborted).toBe(true);
    expect(term.signal.reason).toBeInstanceOf(LeadershipLostError);
    expect((term.signal.reason as LeadershipLostError).reason).toBe('session-lost');
    expect((term.signal.reason as LeadershipLostError).epoch).toBe(7n);
    expect(term.isValid()).toBe(false);
    expect(term.remainingMs()).toBe(0);
  });

  it('a signal read before the end aborts during end(), before end() returns; read after, it is aborted already', () => {
    const { term } = makeTerm();
    const signal = term.signal;
    expect(term.signal).toBe(signal);
    const heard: unknown[] = [];
    signal.addEventListener('abort', () => heard.push(signal.reason, term.isValid()));
    term.end('preempted');
    expect(heard).toHaveLength(2);
    expect(heard[0]).toBeInstanceOf(LeadershipLostError);
    expect((heard[0] as LeadershipLostError).reason).toBe('preempted');
    expect(heard[1]).toBe(false);
    expect(term.signal).toBe(signal);

    // Never read while the term ran: made at the first read, aborted, with the same reason.
    const late = makeTerm().term;
    late.end('resigned');
    expect(late.signal.aborted).toBe(true);
    expect((late.signal.reason as LeadershipLostError).reason).toBe('resigned');
    expect((late.signal.reason as LeadershipLostError).message).toMatch(/ended \(resigned\)/);
    expect(late.signal).toBe(late.signal);
  });

  it('refuses fenced writes locally once invalid, before any I/O', async () => {
    const { term, writes } = makeTerm();
    await term.put('cursor', '1');
    term.end('resigned');
    await expect(term.put('cursor', '2')).rejects.toBeInstanceOf(LeadershipLostError);
    await expect(term.delete('cursor')).rejects.toBeInstanceOf(LeadershipLostError);
    expect(writes).toEqual(['cursor=1']);
  });

  it('validates keys, values and ifVersion with the field named', async () => {
    const { term } = makeTerm();
    await expect(term.put('', 'v')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'key',
    });
    await expect(term.put('k', 'x'.repeat(MAX_STORED_VALUE_BYTES + 1))).rejects.toMatchObject({
      field: 'value',
    });
    await expect(term.put('k', 'v', { ifVersion: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(term.put('k', 'v', { ifVersion: 1.5 })).rejects.toMatchObject({
      field: 'ifVersion',
    });
  });
});
