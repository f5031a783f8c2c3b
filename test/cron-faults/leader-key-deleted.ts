// Issue 11.2 for @tenure/cron: the leader's own key deleted behind its back (an operator forcing
// a step-down, a cleanup script). The term ends at once (`revoked`), so the scheduler must leave
// its leading state (`following`, no more claims), abort its running handler's signal, and rejoin
// the queue with a fresh key, leading again later with a larger epoch. One scenario, run by the
// tests on the memory arbitrator and on a real server.

import type { Arbitrator, EndReason, Term } from '@tenure/core';
import { createScheduler, type JobContext, type Scheduler } from '@tenure/cron';
import { type Timing, waitFor } from '@tenure/testkit';
import { expect } from 'vitest';

/** What one replica saw, in order. */
interface Seen {
  readonly starts: { epoch: bigint; slot: number; at: number }[];
  readonly aborts: { epoch: bigint; code: string; at: number }[];
  readonly roles: { role: 'leading' | 'following'; epoch?: bigint; at: number }[];
}

interface Replica {
  readonly holder: string;
  readonly arbitrator: Arbitrator;
  readonly scheduler: Scheduler;
  readonly seen: Seen;
}

/** The backend under test: arbitrators on one server, and a way to delete a key behind them. */
export interface KeyDeletionBackend {
  readonly timing: Timing;
  /** A new arbitrator (its own session) on the server, for replica `holder`. */
  open(holder: string): Arbitrator;
  /** Deletes the candidate key `key` of election `election` as an operator would. */
  deleteKey(election: string, key: string): Promise<void>;
  /**
   * Optional fault right after the delete (for example: cut a's link once the deletion's
   * notification is on its way, so no confirming request can get through). Returns the heal,
   * called once b leads.
   */
  afterDelete?(arbitrator: Arbitrator): Promise<() => void>;
}

const ELECTION = 'cron-key-deleted';

/** A handler that works until its signal aborts, noting both. */
function replica(backend: KeyDeletionBackend, holder: string): Replica {
  const arbitrator = backend.open(holder);
  const scheduler = createScheduler(arbitrator.election(ELECTION, { value: holder }), {
    stopTimeoutMs: 100,
    triggerPollMs: 200,
  });
  const seen: Seen = { starts: [], aborts: [], roles: [] };
  scheduler.on('leading', (epoch) => seen.roles.push({ role: 'leading', epoch, at: Date.now() }));
  scheduler.on('following', () => seen.roles.push({ role: 'following', at: Date.now() }));
  scheduler.on('error', () => {});
  scheduler.add(
    'tick',
    '* * * * * *',
    (ctx: JobContext) => {
      seen.starts.push({ epoch: ctx.epoch, slot: ctx.slot.getTime(), at: Date.now() });
      return new Promise<void>((resolve) => {
        const onAbort = () => {
          const reason = ctx.signal.reason as { code?: string } | undefined;
          seen.aborts.push({ epoch: ctx.epoch, code: String(reason?.code), at: Date.now() });
          resolve();
        };
        if (ctx.signal.aborted) onAbort();
        else ctx.signal.addEventListener('abort', onAbort, { once: true });
      });
    },
    { zombieAfterMs: 200 },
  );
  return { holder, arbitrator, scheduler, seen };
}

/**
 * a leads with a run going; b waits. a's key is deleted: a's term ends `revoked` at once, its
 * run's signal aborts, a follows and claims nothing more with that epoch; b leads with a larger
 * epoch; a rejoins with a fresh key and, once b stops, leads again with a larger epoch still.
 */
export async function leaderKeyDeleted(backend: KeyDeletionBackend): Promise<void> {
  const { timing } = backend;
  const bound = (what: string) => ({ timeoutMs: timing.expiryMs, intervalMs: 10, what });
  const a = replica(backend, 'a');
  const b = replica(backend, 'b');
  try {
    a.scheduler.start();
    const termA: Term = await waitFor(() => a.scheduler.election.term, bound('a to lead'));
    await waitFor(() => a.seen.starts.find((s) => s.epoch === termA.epoch), bound('a run of a'));
    b.scheduler.start();
    await waitFor(
      async () => ((await a.scheduler.election.candidates()).length === 2 ? true : undefined),
      bound('b in the queue'),
    );

    const endReason: Promise<EndReason> = termA.ended;
    const deletedAt = Date.now();
    await backend.deleteKey(ELECTION, termA.key);
    const heal = await backend.afterDelete?.(a.arbitrator);
    expect(await endReason, "a's term ends as revoked, not by expiry").toBe('revoked');
    const abort = await waitFor(
      () => a.seen.aborts.find((x) => x.epoch === termA.epoch),
      bound("a's running handler to see its signal abort"),
    );
    expect(abort.code, "the abort's reason").toBe('LEADERSHIP_LOST');
    await waitFor(
      () => a.seen.roles.find((r) => r.role === 'following' && r.at >= deletedAt),
      bound('a to follow'),
    );
    const termB: Term = await waitFor(() => b.scheduler.election.term, bound('b to lead'));
    expect(termB.epoch, "b's epoch").toBeGreaterThan(termA.epoch);
    heal?.();
    await waitFor(
      () => b.seen.starts.find((s) => s.epoch === termB.epoch),
      bound('a run of b in its term'),
    );
    // a rejoined: a fresh key of its own behind b (on etcd the same name, a new revision).
    const queue = await waitFor(async () => {
      const list = await b.scheduler.election.candidates();
      return list.length === 2 ? list : undefined;
    }, bound('a back in the queue'));
    expect(queue.map((c) => c.value)).toEqual(['b', 'a']);
    expect(queue[1]!.epoch, "a's new key (a larger create revision)").toBeGreaterThan(termA.epoch);
    // Nothing more with the revoked term: no run started, no record claimed by it but the one
    // cut short (recorded interrupted or aborted).
    expect(a.seen.starts.filter((s) => s.epoch === termA.epoch && s.at > deletedAt)).toEqual([]);
    expect(a.scheduler.state).toBe('following');

    await b.scheduler.stop();
    const termA2: Term = await waitFor(() => a.scheduler.election.term, bound('a to lead again'));
    expect(termA2.epoch, "a's new epoch").toBeGreaterThan(termB.epoch);
    await waitFor(
      () => a.seen.starts.find((s) => s.epoch === termA2.epoch),
      bound('a run of a in its new term'),
    );
    const history = await a.scheduler.history('tick');
    const old = history.filter((r) => r.epoch === termA.epoch.toString());
    expect(
      old.filter((r) => r.outcome !== 'interrupted' && r.outcome !== 'aborted'),
      "records of a's revoked term",
    ).toEqual([]);
    expect(
      history.filter((r) => BigInt(r.epoch) === termA.epoch && Date.parse(r.slot) > deletedAt),
      "slots after the deletion claimed by a's revoked term",
    ).toEqual([]);
  } finally {
    await Promise.allSettled([a.scheduler.stop(), b.scheduler.stop()]);
    await Promise.allSettled([a.arbitrator.close(), b.arbitrator.close()]);
  }
}
