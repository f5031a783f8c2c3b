// @tenure/state on a real arbitrator (TTL 2 s), replicas in separate processes
// (test/state-faults/state-replica.mjs on the built packages); etcd-state.test.ts and
// zookeeper-state.test.ts run it.
// While a replica leads, four writer lanes set fresh keys; every acknowledgement and refusal is
// recorded with its token.
//
// 1. The leader is SIGKILLed, the next one SIGSTOPped past its term and sent a write fenced by
//    that term (queued in its stdin, so it goes out the moment it wakes): every acknowledged
//    write is read back by a quorum read at the end; nothing refused with LEADERSHIP_LOST, and
//    not the paused leader's late write, is ever applied; a leader read queued at the paused
//    leader is refused when it wakes (its term is no longer valid); read-your-writes and quorum
//    reads on a follower, given an acknowledged token, never answer older.
// 2. A follower's connection is black-holed (testkit TcpProxy `cut()`) while the leader writes:
//    its reported staleness is never smaller than its true lag (the time since the
//    acknowledgement of the first write its mirror lacks), a bounded follower read is refused,
//    and after the cut it catches up and is current again.
import { join } from 'node:path';
import {
  FixtureChild,
  type FixtureEvent,
  monotonicNow,
  startTcpProxy,
  type TcpProxy,
  type TcpProxyTarget,
  Timing,
  waitFor,
} from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const FIXTURE = join(import.meta.dirname, 'state-replica.mjs');
const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
/** The vitest bound of each scenario. */
export const TEST_MS = timing.scale(60_000);
let run = 0;

/** Where the replicas connect. */
export interface StateBackendUnderTest {
  readonly name: 'etcd' | 'zookeeper';
  /** Every server, as the fixture's --endpoints takes them. */
  readonly endpoints: string;
  /** One server, for a follower's proxy. */
  readonly target: TcpProxyTarget;
  /** A proxy as the fixture's --endpoints takes it. */
  endpoint(proxy: TcpProxy): string;
}

interface Ack {
  readonly holder: string;
  readonly key: string;
  readonly value: string;
  readonly token: bigint;
  readonly at: number;
}

/** The replicas of one scenario and every write they reported. */
class Replicas {
  readonly backend: StateBackendUnderTest;
  readonly acks: Ack[] = [];
  readonly refusedNeverApplied = new Set<string>();
  readonly children = new Map<string, FixtureChild>();
  readonly proxies: TcpProxy[] = [];
  readonly election = `state-faults-${process.pid}-${++run}`;

  constructor(backend: StateBackendUnderTest) {
    this.backend = backend;
  }

  async start(holder: string, endpoints: string): Promise<FixtureChild> {
    const child = await FixtureChild.start(
      holder,
      FIXTURE,
      [
        '--backend',
        this.backend.name,
        '--endpoints',
        endpoints,
        '--ttl',
        String(TTL_MS),
        '--election',
        this.election,
        '--holder',
        holder,
      ],
      { cwd: root, timeoutMs: timing.handoverMs },
    );
    const onEvent = (e: FixtureEvent) => {
      if (e.type === 'ack') {
        this.acks.push({
          holder,
          key: String(e.key),
          value: String(e.value),
          token: BigInt(String(e.token)),
          at: e.t,
        });
      } else if (e.type === 'refused' && e.code === 'LEADERSHIP_LOST') {
        this.refusedNeverApplied.add(String(e.key));
      } else if (e.type === 'fatal') {
        throw new Error(`${holder}: ${String(e.message)}`);
      }
    };
    for (const e of child.events) onEvent(e);
    child.onEvent = onEvent;
    this.children.set(holder, child);
    return child;
  }

  child(holder: string): FixtureChild {
    const child = this.children.get(holder);
    if (!child) throw new Error(`no replica ${holder}`);
    return child;
  }

  /** Waits until `holder` has reported `n` more acknowledgements after `since` acks in all. */
  async acksOf(holder: string, n: number, what: string): Promise<void> {
    const before = this.acks.filter((a) => a.holder === holder).length;
    await waitFor(() => this.acks.filter((a) => a.holder === holder).length >= before + n, {
      timeoutMs: timing.expiryMs,
      what,
      intervalMs: 10,
    });
  }

  /** The holder whose acknowledgements come in now (the leader), waiting for `n` of them. */
  async leader(n: number, except: readonly string[], what: string): Promise<string> {
    const since = this.acks.length;
    const found = await waitFor(
      () => {
        const fresh = this.acks.slice(since).filter((a) => !except.includes(a.holder));
        const counts = new Map<string, number>();
        for (const a of fresh) counts.set(a.holder, (counts.get(a.holder) ?? 0) + 1);
        for (const [holder, count] of counts) if (count >= n) return holder;
        return undefined;
      },
      { timeoutMs: timing.expiryMs, what, intervalMs: 10 },
    );
    return found;
  }

  async command(holder: string, line: string): Promise<FixtureEvent & { ok: boolean }> {
    return this.child(holder).command(line, timing.handoverMs);
  }

  /** Reads the latest acknowledgements back on `reader` with read-your-writes and quorum. */
  async readBack(reader: string, count: number): Promise<void> {
    for (const ack of this.acks.slice(-count)) {
      for (const consistency of ['read-your-writes', 'quorum']) {
        const reply = await this.command(reader, `get ${ack.key} ${consistency} ${ack.token}`);
        expect(
          reply.ok,
          `${consistency} read of ${ack.key} on ${reader}: ${String(reply.message)}`,
        ).toBe(true);
        expect(
          reply.value,
          `${consistency} read of ${ack.key} (token ${ack.token}) on ${reader}`,
        ).toBe(ack.value);
        expect(BigInt(String(reply.token)) >= ack.token).toBe(true);
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      [...this.children.values()].map(async (child) => {
        if (!child.exited) await child.stop(timing.handoverMs);
      }),
    );
    for (const proxy of this.proxies) {
      proxy.restore();
      await proxy.close();
    }
  }
}

/** Scenario 1 (see the file's comment). */
export async function leaderFailures(backend: StateBackendUnderTest): Promise<void> {
  const endpoints = backend.endpoints;
  const r = new Replicas(backend);
  try {
    await r.start('a', endpoints);
    const first = await r.leader(20, [], 'a first leader to write');
    await r.start('b', endpoints);
    await r.start('c', endpoints);
    const followers = () => [...r.children.keys()].filter((h) => h !== first);
    await r.readBack(followers()[0]!, 10);

    // SIGKILL of the leader: writes go on at another replica.
    r.child(first).kill();
    const second = await r.leader(20, [first], 'a second leader to write after the SIGKILL');
    const reader = [...r.children.keys()].find((h) => h !== first && h !== second)!;
    await r.readBack(reader, 10);

    // SIGSTOP of the second leader past its term, with a write fenced by that term and a
    // leader read waiting in its stdin: they run the moment it wakes, after the next leader
    // took over.
    const pausedAt = monotonicNow();
    await r.child(second).pause(timing.handoverMs);
    const late = r.child(second).send('stale-write late-write from-a-deposed-leader');
    const leaderRead = r.child(second).send('get late-write leader');
    const third = await r.leader(20, [first, second], 'a third leader to write after the SIGSTOP');
    expect(third).toBe(reader);
    await waitFor(() => monotonicNow() - pausedAt > 2 * TTL_MS, {
      timeoutMs: timing.expiryMs,
      what: 'twice the TTL to pass',
    });
    await r.child(second).resume(timing.handoverMs);
    const refused = await late(timing.handoverMs);
    expect(refused.ok, "the deposed leader's write was refused").toBe(false);
    // Refused by the fence (LEADERSHIP_LOST); or, in two clean-clone runs of eight, with no
    // definite answer: another request of that process failed on waking and its connection to
    // the member was reset, taking this write with it (UNAVAILABLE, "Connection dropped"). Which
    // request was never pinned; one that could, a request still queued in Node when the process
    // stopped, whose deadline fired on waking, now gets its time again (h2-transport.ts,
    // answerTimeout). Either way it must never be applied (refusedNeverApplied, G2).
    const dropped =
      refused.code === 'UNAVAILABLE' && /Connection dropped/.test(String(refused.message));
    if (dropped) console.log(`[state] the deposed leader's write: ${JSON.stringify(refused)}`);
    expect(refused.code === 'LEADERSHIP_LOST' || dropped, JSON.stringify(refused)).toBe(true);
    r.refusedNeverApplied.add('late-write');
    const read = await leaderRead(timing.handoverMs);
    expect(read.ok, 'a leader read at a replica whose term is no longer valid').toBe(false);
    expect(read.code).toBe('LEADERSHIP_LOST');
    await r.readBack(second, 10);

    for (const holder of r.children.keys()) {
      if (!r.child(holder).exited) await r.command(holder, 'stop-writing');
    }
    // Every replica's writes have settled: the acknowledgements are all in before the read.
    const acknowledged = [...r.acks];
    const final = await r.command(third, 'entries');
    const entries = final.entries as Record<string, string>;
    const lost = acknowledged.filter((a) => entries[a.key] !== a.value);
    expect(
      lost.map((a) => `${a.key}@${a.token}`),
      'acknowledged writes missing',
    ).toEqual([]);
    const applied = [...r.refusedNeverApplied].filter((key) => key in entries);
    expect(applied, 'refused writes that were applied').toEqual([]);
    console.log(
      `state on ${backend.name}: ${r.acks.length} writes acknowledged across three terms, ${r.refusedNeverApplied.size} refused by the fence (none applied), ${Object.keys(entries).length} entries`,
    );
  } finally {
    await r.stop();
  }
}

/** Scenario 2 (see the file's comment). */
export async function blackHoledFollower(backend: StateBackendUnderTest): Promise<void> {
  const r = new Replicas(backend);
  try {
    await r.start('a', backend.endpoints);
    await r.leader(5, [], 'the leader to write');
    const proxy = await startTcpProxy(backend.target);
    r.proxies.push(proxy);
    await r.start('f', backend.endpoint(proxy));
    await waitFor(
      async () => {
        const status = await r.command('f', 'status');
        return status.stalenessMs !== null && status.token !== null;
      },
      {
        timeoutMs: timing.handoverMs,
        what: 'the follower to be known current',
        intervalMs: 20,
      },
    );

    proxy.cut();
    const cutAt = monotonicNow();
    let checked = 0;
    let maxLag = 0;
    while (monotonicNow() - cutAt < 3 * TTL_MS) {
      const status = await r.command('f', 'status');
      const token = BigInt(String(status.token));
      // The first write the mirror lacks: its acknowledgement is a lower bound of the lag.
      const missing = r.acks.filter((a) => a.token > token).sort((x, y) => x.at - y.at)[0];
      if (missing !== undefined && missing.at < Number(status.at)) {
        const lag = Number(status.at) - missing.at;
        const staleness =
          status.stalenessMs === null ? Number.POSITIVE_INFINITY : Number(status.stalenessMs);
        expect(
          staleness,
          `staleness at token ${token}, ${missing.key} acknowledged ${lag} ms before`,
        ).toBeGreaterThanOrEqual(lag);
        checked += 1;
        maxLag = Math.max(maxLag, lag);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(checked, 'status checks while the mirror lagged').toBeGreaterThan(5);
    const bounded = await r.command('f', `get any follower`);
    expect(bounded.ok).toBe(true);
    const refused = await r.command('f', 'get-bounded any 500');
    expect(refused.ok).toBe(false);
    expect(refused.code).toBe('UNAVAILABLE');

    proxy.restore();
    const lastToken = r.acks.at(-1)!.token;
    let last: unknown;
    await waitFor(
      async () => {
        const status = await r.command('f', 'status');
        last = status;
        return (
          BigInt(String(status.token)) >= lastToken &&
          status.stalenessMs !== null &&
          Number(status.stalenessMs) < maxLag
        );
      },
      {
        timeoutMs: timing.expiryMs,
        what: 'the follower to catch up and be current',
        intervalMs: 50,
      },
    ).catch(async (error: unknown) => {
      const quorum = await r.command('f', 'get any quorum').catch((e: unknown) => String(e));
      const head = await r.command('f', 'head').catch((e: unknown) => String(e));
      throw new Error(
        `quorum read: ${JSON.stringify(quorum)}; head: ${JSON.stringify(head)}; ${String(error)}; last status ${JSON.stringify(last)}; last token ${lastToken}; stderr ${r.child('f').stderr.slice(-2000)}`,
      );
    });
    console.log(
      `state on ${backend.name}, black-holed follower: ${checked} checks, lag up to ${Math.round(maxLag)} ms, staleness never below it`,
    );
  } finally {
    await r.stop();
  }
}

/**
 * The state fault tests on the servers `start` brings up (and whose `stop` ends them): each
 * backend's file calls it once, so the scenarios run in parallel across backends.
 */
export function describeStateFaults(
  suite: string,
  start: () => Promise<{ backend: StateBackendUnderTest; stop(): Promise<void> }>,
): void {
  describe(suite, () => {
    let servers: { backend: StateBackendUnderTest; stop(): Promise<void> } | undefined;
    beforeAll(async () => {
      servers = await start();
    }, timing.scale(60_000));
    afterAll(async () => {
      await servers?.stop();
    });

    it(
      "leader SIGKILL, leader SIGSTOP past its term: no acknowledged write lost, a deposed leader's write and leader read refused, reads never older than their token",
      async () => {
        await leaderFailures(servers!.backend);
      },
      TEST_MS,
    );

    it(
      "a black-holed follower's staleness is never smaller than its true lag",
      async () => {
        await blackHoledFollower(servers!.backend);
      },
      TEST_MS,
    );
  });
}
