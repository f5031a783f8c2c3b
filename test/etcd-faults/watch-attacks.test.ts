// Attacks on the etcd adapter's watch fixes (issue 18, point 4 of the etcd brief): each step
// assumes something, and each test breaks that assumption with a fault.
//
// - A resign whose reply is lost (the connection reset right after the delete was sent): the
//   leader must not stay in the queue with a live session while nobody leads.
// - A watch re-created on another member after a reset (every candidate reaches each member
//   of a three-member cluster through its own proxy), with compactions in between: churn
//   must keep one leader at a time and never wedge.
//
// The bounds are Timing bounds: each only turns a wedge into a failure.
import { randomBytes } from 'node:crypto';
import type { Election, Term } from '@tenure/core';
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import {
  checkHistory,
  type EtcdCluster,
  type EtcdNode,
  monotonicNow,
  startEtcd,
  startEtcdCluster,
  startTcpProxy,
  type TcpProxy,
  type TermRecord,
  Timing,
  trackTerms,
  waitFor,
} from '@tenure/testkit';
import { describe, expect, it } from 'vitest';

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
/** How long each churn runs (a run length, not a bound); `TENURE_CHURN_MS` for a long run. */
const CHURN_MS = Number(process.env.TENURE_CHURN_MS ?? 20_000);
const TEST_MS = Math.max(timing.scale(120_000), CHURN_MS + timing.scale(60_000));
const NO_LEADER_BOUND_MS = timing.handoverMs;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const unique = () => `attack-${randomBytes(4).toString('hex')}`;

/** One in-process candidate reaching etcd through its own proxies (one per member). */
class Candidate {
  readonly election: Election;
  #campaign: AbortController | undefined;
  readonly #stopTracking: () => void;

  constructor(
    readonly holder: string,
    readonly arbitrator: EtcdArbitrator,
    readonly proxies: readonly TcpProxy[],
    name: string,
    records: TermRecord[],
  ) {
    arbitrator.on('error', () => {});
    this.election = arbitrator.election(name, { value: holder });
    this.election.on('error', () => {});
    this.#stopTracking = trackTerms(this.election, holder, (r) => records.push(r), {
      sampleMs: 10,
    });
  }

  static async start(
    holder: string,
    members: readonly EtcdNode[],
    name: string,
    records: TermRecord[],
  ): Promise<Candidate> {
    const proxies: TcpProxy[] = [];
    for (const member of members) {
      const url = new URL(member.endpoint);
      proxies.push(await startTcpProxy({ host: url.hostname, port: Number(url.port) }));
    }
    const arbitrator = createEtcdArbitrator({
      endpoints: proxies.map((p) => p.url),
      ttlMs: TTL_MS,
    });
    return new Candidate(holder, arbitrator, proxies, name, records);
  }

  get live(): boolean {
    return this.#campaign !== undefined;
  }

  get valid(): boolean {
    return this.election.term?.isValid() === true;
  }

  campaign(): Promise<Term | undefined> {
    this.#campaign ??= new AbortController();
    return this.election.campaign({ signal: this.#campaign.signal }).catch(() => undefined);
  }

  async leave(): Promise<void> {
    this.#campaign?.abort();
    this.#campaign = undefined;
    await this.election.resign().catch(() => {});
  }

  resetAll(): void {
    for (const p of this.proxies) p.reset();
  }

  async close(): Promise<void> {
    this.#campaign?.abort();
    this.#campaign = undefined;
    this.#stopTracking();
    await this.election.close().catch(() => {});
    await this.arbitrator.close();
    for (const p of this.proxies) await p.close();
  }
}

describe('attacks on the watch fixes', () => {
  it(
    'a resign whose reply is lost (reset just after the delete is sent): the next candidate leads, the old one is out of the queue',
    async () => {
      const node = await startEtcd();
      try {
        const plans: Array<{ delayMs: number; fault: 'reset' | 'cut' }> = [
          { delayMs: 0, fault: 'reset' },
          { delayMs: 1, fault: 'reset' },
          { delayMs: 2, fault: 'reset' },
          { delayMs: 5, fault: 'reset' },
          // Black-holed both ways right after the send: the delete may arrive, its reply not.
          { delayMs: 1, fault: 'cut' },
          { delayMs: 3, fault: 'cut' },
        ];
        for (const { delayMs, fault } of plans) {
          const name = unique();
          const records: TermRecord[] = [];
          const a = await Candidate.start('a', [node], name, records);
          const b = await Candidate.start('b', [node], name, records);
          try {
            expect(await a.campaign()).toBeDefined();
            void b.campaign();
            await waitFor(
              async () => (await b.election.candidates().catch(() => [])).length === 2,
              { timeoutMs: timing.handoverMs, intervalMs: timing.pollMs, what: 'b to queue' },
            );
            const resigned = a.leave();
            const strike = () => {
              if (fault === 'reset') a.resetAll();
              else for (const p of a.proxies) p.cut();
            };
            if (delayMs === 0) strike();
            else setTimeout(strike, delayMs);
            await resigned;
            if (fault === 'cut') {
              await sleep(delayMs + 1_000);
              for (const p of a.proxies) p.restore();
            }
            await waitFor(() => b.valid, {
              timeoutMs: timing.handoverMs,
              intervalMs: timing.pollMs,
              what: `b to lead after a's resign (${fault} ${delayMs} ms after it)`,
            });
            const queue = await b.election.candidates();
            expect(queue.map((c) => c.value)).toEqual(['b']);
          } finally {
            await a.close();
            await b.close();
          }
          expect(checkHistory(records).map((v) => v.message)).toEqual([]);
        }
      } finally {
        await node.stop();
      }
    },
    TEST_MS,
  );

  it(
    'three-member cluster: churn while watches are reset onto other members and etcd compacts every 200 ms',
    async () => {
      const cluster: EtcdCluster = await startEtcdCluster(3);
      const seed = Number(process.env.TENURE_CHURN_SEED ?? Date.now() % 1_000_000);
      let state = seed >>> 0;
      const rand = () => {
        state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
        return state / 4_294_967_296;
      };
      const name = unique();
      const records: TermRecord[] = [];
      const candidates = [
        await Candidate.start('a', cluster.nodes, name, records),
        await Candidate.start('b', cluster.nodes, name, records),
        await Candidate.start('c', cluster.nodes, name, records),
      ];
      const admin = createEtcdArbitrator({ endpoints: [...cluster.endpoints], ttlMs: TTL_MS });
      let running = true;
      let longest = 0;
      let longestFrom = 0;
      let since: number | undefined;
      const counts = { resets: 0, compactions: 0, resignations: 0 };
      const tasks: Promise<void>[] = [];
      try {
        for (const c of candidates) void c.campaign();
        await waitFor(() => candidates.some((c) => c.valid), {
          timeoutMs: timing.handoverMs,
          intervalMs: timing.pollMs,
          what: 'a first leader',
        });
        const started = monotonicNow();
        tasks.push(
          (async () => {
            while (running) {
              const now = monotonicNow();
              if (candidates.some((c) => c.live) && !candidates.some((c) => c.valid)) {
                since ??= now;
              } else if (since !== undefined) {
                if (now - since > longest) {
                  longest = now - since;
                  longestFrom = since;
                }
                since = undefined;
              }
              await sleep(10);
            }
          })(),
          (async () => {
            while (running) {
              await sleep(100 + rand() * 300);
              const leader = candidates.find((c) => c.valid);
              const who =
                leader && rand() < 0.7
                  ? leader
                  : candidates[Math.floor(rand() * candidates.length)];
              if (!who?.live) continue;
              counts.resignations += 1;
              await who.leave();
              void sleep(50 + rand() * 400).then(() => {
                if (running) void who.campaign();
              });
            }
          })(),
          (async () => {
            while (running) {
              await sleep(150 + rand() * 400);
              const who = candidates[Math.floor(rand() * candidates.length)] as Candidate;
              // Two resets of every path of one candidate, 20–80 ms apart: its watch stream
              // comes back on a member etcd3 picks at random.
              who.resetAll();
              await sleep(20 + rand() * 60);
              who.resetAll();
              counts.resets += 2;
            }
          })(),
          (async () => {
            while (running) {
              await sleep(200);
              try {
                const { header } = await admin.client.kv.range({ key: Buffer.from('\0') });
                await admin.client.kv.compact({ revision: header.revision });
                counts.compactions += 1;
              } catch {
                // Compacted already at that revision, or a member busy: the next one.
              }
            }
          })(),
        );
        while (monotonicNow() - started < CHURN_MS) {
          await sleep(100);
          if (since !== undefined && monotonicNow() - since > NO_LEADER_BOUND_MS) break;
        }
      } finally {
        running = false;
        await Promise.all(tasks);
        if (since !== undefined) longest = Math.max(longest, monotonicNow() - since);
        for (const c of candidates) await c.close();
        await admin.close();
        await cluster.stop();
      }
      const violations = checkHistory(records);
      // What ended just before the longest time without a leader (why nobody led).
      const before = records
        .filter((r) => r.end <= longestFrom + 20)
        .sort((x, y) => y.end - x.end)[0];
      console.log(
        `cluster churn: the longest time without a leader began ${
          before
            ? `${(longestFrom - before.end).toFixed(0)} ms after ${before.holder}'s term (epoch ${before.epoch}) ended ${before.reason ?? '?'}`
            : 'before any term ended'
        }`,
      );
      console.log(
        `cluster churn seed ${seed}: ${records.length} terms, ${counts.resignations} resignations, ${counts.resets} resets, ${counts.compactions} compactions; longest without a leader while campaigning: ${longest.toFixed(0)} ms; G1/G2 violations: ${violations.length}`,
      );
      expect(violations.map((v) => v.message)).toEqual([]);
      expect(longest).toBeLessThan(NO_LEADER_BOUND_MS);
    },
    TEST_MS,
  );
});
