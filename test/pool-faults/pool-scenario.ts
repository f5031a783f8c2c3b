/**
 * A @tenure/pool under faults on a real arbitrator: members in separate processes
 * (test/fixtures/pool-member.mjs on the built packages), each connected through its own TCP
 * proxy, 64 items, and an independent witness per item that refuses a token lower than the
 * highest it has seen. The script: five members settle; one joins; one leaves gracefully; the
 * pool's leader is SIGKILLed; a member is SIGSTOPped for 2 × TTL; a member's connection is
 * black-holed for 2 × TTL; then random steps of those kinds on random members. After each
 * step the pool must settle (one assignment everywhere, each item held by its owner and no one
 * else), balanced within one item of each share, moving no more than the stated bound; after a crash, pause or cut every item of the victim is held
 * again within TTL + a bound. Throughout, no two members hold an item at the same instant (the
 * handlers' valid writes of two tokens never interleave in time) and the witness accepts no
 * stale token.
 */
import { join } from 'node:path';
import {
  FixtureChild,
  type FixtureEvent,
  monotonicNow,
  startTcpProxy,
  type TcpProxy,
  type TcpProxyTarget,
  Timing,
  TokenWitness,
  waitFor,
} from '@tenure/testkit';
import { expect } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const FIXTURE = join(root, 'test', 'fixtures', 'pool-member.mjs');

export const ITEM_COUNT = 64;
const ITEMS = Array.from({ length: ITEM_COUNT }, (_, i) => `i${String(i).padStart(3, '0')}`);
export const SYNC_MS = 200;

/** What a scenario needs from its backend. */
export interface PoolBackend {
  readonly name: 'etcd' | 'zookeeper';
  readonly ttlMs: number;
  /** Where the server listens (each member gets a proxy to it). */
  readonly target: TcpProxyTarget;
  /** The member's --endpoints through its proxy. */
  endpoint(proxy: TcpProxy): string;
}

/** One member process and what the parent knows of it. */
class Member {
  readonly held = new Set<string>();
  assignment: { epoch: bigint; generation: number; members: string[]; mine: string[] } | undefined;
  gone = false;
  leading = false;

  constructor(
    readonly id: string,
    readonly child: FixtureChild,
    readonly proxy: TcpProxy,
  ) {}
}

/** A scenario's state: members, witness, the log of measured figures. */
export class PoolScenario {
  readonly timing: Timing;
  readonly witness = new TokenWitness();
  readonly members: Member[] = [];
  readonly figures: string[] = [];
  readonly #backend: PoolBackend;
  #next = 0;

  constructor(backend: PoolBackend) {
    this.#backend = backend;
    this.timing = new Timing(backend.ttlMs);
  }

  get live(): Member[] {
    return this.members.filter((m) => !m.gone);
  }

  async join(): Promise<Member> {
    const id = String.fromCharCode(97 + this.#next++);
    const proxy = await startTcpProxy(this.#backend.target);
    let child: FixtureChild;
    try {
      child = await FixtureChild.start(
        id,
        FIXTURE,
        [
          '--backend',
          this.#backend.name,
          '--endpoints',
          this.#backend.endpoint(proxy),
          '--ttl',
          String(this.#backend.ttlMs),
          '--member',
          id,
          '--items',
          String(ITEM_COUNT),
          '--sync',
          String(SYNC_MS),
        ],
        { cwd: root, timeoutMs: this.timing.handoverMs },
      );
    } catch (error) {
      await proxy.close();
      throw error;
    }
    const member = new Member(id, child, proxy);
    child.onEvent = (event) => this.#onEvent(member, event);
    for (const event of child.events) this.#onEvent(member, event);
    this.members.push(member);
    return member;
  }

  #onEvent(m: Member, e: FixtureEvent): void {
    switch (e.type) {
      case 'write':
        this.witness.write(String(e.item), {
          holder: m.id,
          token: BigInt(String(e.token)),
          at: e.t,
        });
        break;
      case 'assigned':
        m.held.add(String(e.item));
        break;
      case 'released':
        m.held.delete(String(e.item));
        break;
      case 'leading':
        m.leading = e.leading === true;
        break;
      case 'assignment':
        m.assignment = {
          epoch: BigInt(String(e.epoch)),
          generation: Number(e.generation),
          members: e.members as string[],
          mine: e.mine as string[],
        };
        break;
      case 'fatal':
        throw new Error(`${m.id}: ${String(e.message)}`);
    }
  }

  /** The owners as the live members' latest assignments say, once they agree. */
  owners(): Map<string, string> | undefined {
    const live = this.live;
    const first = live[0]?.assignment;
    if (first === undefined) return undefined;
    const owners = new Map<string, string>();
    for (const m of live) {
      const a = m.assignment;
      if (a?.epoch !== first.epoch || a.generation !== first.generation) return undefined;
      for (const item of a.mine) owners.set(item, m.id);
    }
    const ids = live.map((m) => m.id).sort();
    if (JSON.stringify([...first.members].sort()) !== JSON.stringify(ids)) return undefined;
    return owners.size === ITEM_COUNT ? owners : undefined;
  }

  settled(): Map<string, string> | undefined {
    const owners = this.owners();
    if (owners === undefined) return undefined;
    const live = this.live;
    for (const item of ITEMS) {
      const holders = live.filter((m) => m.held.has(item));
      if (holders.length !== 1 || holders[0]!.id !== owners.get(item)) return undefined;
    }
    return owners;
  }

  /** Waits until settled; checks balance and returns the owners. */
  async settle(what: string): Promise<Map<string, string>> {
    const began = monotonicNow();
    const owners = await waitFor(() => this.settled(), {
      timeoutMs: this.timing.expiryMs + this.timing.scale(SYNC_MS * 4),
      what: `the pool to settle after ${what}`,
      intervalMs: 20,
    });
    this.figures.push(`${what}: settled in ${Math.round(monotonicNow() - began)} ms`);
    const n = this.live.length;
    for (const m of this.live) {
      const count = [...owners.values()].filter((o) => o === m.id).length;
      expect(
        Math.abs(count - ITEM_COUNT / n),
        `${m.id} holds ${count} of ${ITEM_COUNT} / ${n}`,
      ).toBeLessThan(1);
    }
    return owners;
  }

  /** Items whose previous owner is still live and lost them. */
  moved(before: Map<string, string>, after: Map<string, string>): number {
    const live = new Set(this.live.map((m) => m.id));
    let moved = 0;
    for (const [item, owner] of before)
      if (live.has(owner) && after.get(item) !== owner) moved += 1;
    return moved;
  }

  /** Waits until every item in `items` is held by a live member other than `victim`. */
  async covered(
    victim: Member,
    items: readonly string[],
    since: number,
    what: string,
  ): Promise<number> {
    await waitFor(
      () => items.every((item) => this.live.some((m) => m !== victim && m.held.has(item))),
      { timeoutMs: this.timing.expiryMs + this.timing.scale(SYNC_MS * 4), what, intervalMs: 10 },
    );
    const ms = monotonicNow() - since;
    this.figures.push(`${what}: ${items.length} items held again after ${Math.round(ms)} ms`);
    return ms;
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        if (!m.child.exited) {
          m.proxy.restore();
          await m.child.stop(this.timing.handoverMs);
        }
        await m.proxy.close();
      }),
    );
  }
}

/** mulberry32, so a failing run can be repeated with its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The whole script (see the file's comment). */
export async function poolUnderFaults(backend: PoolBackend, randomSteps = 3): Promise<void> {
  const s = new PoolScenario(backend);
  const seed = Number(process.env.TENURE_POOL_SEED ?? Date.now() % 1_000_000);
  const random = seeded(seed);
  const pick = <T>(from: readonly T[]) => from[Math.floor(random() * from.length)]!;
  const ttl = backend.ttlMs;
  let owners = new Map<string, string>();
  const sleepUntil = (at: number, ms: number) =>
    new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - (monotonicNow() - at))));

  /** A join moves at most ⌈64/(N+1)⌉ items, all to the newcomer. */
  const join = async () => {
    const bound = Math.ceil(ITEM_COUNT / (s.live.length + 1));
    const m = await s.join();
    const next = await s.settle(`${m.id} joins`);
    expect(s.moved(owners, next), `${m.id} joins`).toBeLessThanOrEqual(bound);
    owners = next;
  };
  /** A graceful leave moves nothing but the leaver's items. */
  const leave = async (m: Member) => {
    await m.child.stop(s.timing.handoverMs);
    m.gone = true;
    const next = await s.settle(`${m.id} leaves`);
    expect(s.moved(owners, next), `${m.id} leaves`).toBe(0);
    owners = next;
  };
  /** SIGKILL: its items are held again within the expiry bound, nothing else moves. */
  const kill = async (m: Member) => {
    const items = [...m.held];
    const at = monotonicNow();
    const role = m.leading ? ' (leader)' : '';
    m.child.kill();
    m.gone = true;
    await s.covered(m, items, at, `SIGKILL of ${m.id}${role}`);
    const next = await s.settle(`SIGKILL of ${m.id}`);
    expect(s.moved(owners, next), `SIGKILL of ${m.id}`).toBe(0);
    owners = next;
  };
  /**
   * SIGSTOP or a black-holed connection for 2 × TTL: the others take its items meanwhile (by
   * its claims' local deadlines and its session's expiry); back, it rejoins as a member: a join.
   */
  const away = async (m: Member, how: 'SIGSTOP' | 'black hole') => {
    const items = [...m.held];
    const at = monotonicNow();
    const role = m.leading ? ' (leader)' : '';
    if (how === 'SIGSTOP') await m.child.pause(s.timing.handoverMs);
    else m.proxy.cut();
    m.gone = true;
    await s.covered(m, items, at, `${how} of ${m.id}${role}`);
    owners = await s.settle(`${how} of ${m.id}, without it`);
    await sleepUntil(at, 2 * ttl);
    m.held.clear();
    const bound = Math.ceil(ITEM_COUNT / (s.live.length + 1));
    if (how === 'SIGSTOP') await m.child.resume(s.timing.handoverMs);
    else m.proxy.restore();
    m.gone = false;
    const next = await s.settle(`${m.id} back`);
    expect(s.moved(owners, next), `${m.id} back`).toBeLessThanOrEqual(bound);
    owners = next;
  };

  try {
    await Promise.all(Array.from({ length: 5 }, () => s.join()));
    owners = await s.settle('five members start');
    // Each fault once, the pool's leader the SIGKILL's victim...
    await join();
    await leave(pick(s.live));
    await kill(s.live.find((m) => m.leading) ?? pick(s.live));
    await away(pick(s.live), 'SIGSTOP');
    await away(pick(s.live), 'black hole');
    // ...then random ones, on random members (the leader included), 3 to 7 members live.
    for (let i = 0; i < randomSteps; i += 1) {
      const n = s.live.length;
      type Kind = 'join' | 'leave' | 'kill' | 'SIGSTOP' | 'black hole';
      const kinds: Kind[] = [
        ...(n < 7 ? (['join'] as const) : []),
        ...(n > 3 ? (['leave', 'kill'] as const) : []),
        'SIGSTOP',
        'black hole',
      ];
      const kind = pick(kinds);
      if (kind === 'join') await join();
      else if (kind === 'leave') await leave(pick(s.live));
      else if (kind === 'kill') await kill(pick(s.live));
      else await away(pick(s.live), kind);
    }

    expect(s.witness.overlaps(), `seed ${seed}`).toEqual([]);
    const writes = [...s.witness.accepted.values()].reduce((n, l) => n + l.length, 0);
    s.figures.push(
      `witness: ${writes} writes accepted, ${s.witness.refused.length} refused (stale token)`,
    );
    console.log(
      `pool on ${backend.name} (seed ${seed}, TTL ${ttl} ms, sync ${SYNC_MS} ms):\n  ${s.figures.join('\n  ')}`,
    );
  } finally {
    await s.stopAll();
  }
}
