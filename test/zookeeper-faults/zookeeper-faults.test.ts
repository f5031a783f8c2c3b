// Fault tests of the ZooKeeper adapter on a real three-server ensemble (tickTime 200 ms),
// candidates in separate processes (test/fixtures/zookeeper-candidate.mjs) with a 2 s session
// timeout: the shared fault scenarios (test/faults/fault-scenarios.ts), then (f) to (h), which
// only ZooKeeper has (forced session expiry, a create whose reply is lost, connection flaps).

import {
  monotonicNow,
  startZooKeeperEnsemble,
  type TcpProxy,
  waitFor,
  type ZooKeeperEnsemble,
} from '@tenure/testkit';
import { expect, it } from 'vitest';
import { electedAfter, epochOf, sleepUntil } from '../faults/candidate-queries.js';
import {
  describeFaultScenarios,
  type FaultBackend,
  type FaultScenario,
} from '../faults/fault-scenarios.js';
import { connectRaw, type RawZooKeeper } from './raw-zookeeper.js';
import { type RequestTap, startRequestTap } from './request-tap.js';

/** The session timeout every candidate asks for (the ensemble grants it: 2 s is 10 ticks). */
const SESSION_TIMEOUT_MS = 2_000;
const TICK_MS = 200;
/** The root under which the candidates' elections live (the adapter's default). */
const ROOT = '/tenure';

/**
 * A three-server ensemble and the ZooKeeper fixture; ZooKeeper fences a write by a multi that
 * checks the term's node, and its client library reports its own view of the connection.
 */
const zookeeper: FaultBackend<ZooKeeperEnsemble> = {
  name: 'zk',
  suite: 'ZooKeeper faults, candidates in separate processes, three-server ensemble',
  fixture: 'zookeeper-candidate.mjs',
  packages: ['core', 'zookeeper', 'testkit'],
  ttlMs: SESSION_TIMEOUT_MS,
  ttlName: 'the session timeout',
  // Guarantee G3 for a crash: the session timeout + the server's expiry granularity + 1.5 s.
  crashBound: {
    ms: SESSION_TIMEOUT_MS + TICK_MS + 1_500,
    text: 'timeout + tickTime + 1.5 s',
  },
  testTimeoutMs: { default: 90_000, outage: 120_000 },
  start: () => startZooKeeperEnsemble(3, { tickTimeMs: TICK_MS }),
  endpoints: (ensemble) => ensemble.members.map((m) => m.connectString),
  clientPort: (ensemble, member) => ensemble.members[member]!.clientPort,
  proxyEndpoint: (proxy) => proxy.endpoint,
  words: { serverLeader: 'ZooKeeper leader server', servers: 'ensemble', cut: 'black-holed' },
  serverLeaderKill: { election: 'zk-leader', rounds: 4 },
  leaderMayChangeAfterRestart: true,
  checks: {
    fencedPutRefused: (reply, oldEpoch) =>
      expect(
        reply,
        "ZooKeeper refuses a multi that checks the old term's node: the node is gone",
      ).toMatchObject({ ok: true, epoch: oldEpoch, succeeded: false, zkCode: -101 }),
    fencedPutNote: (reply) => `raw fenced multi refused: ${String(reply.zkError)}`,
    // a rejoins on a new session, and is back in the queue.
    rejoinAfterPause: async ({ timing, queueEntries }, s, a, b, since) => {
      const rejoined = await a.next(
        (e) =>
          e.type === 'connection' &&
          e.t > since.resumedAt &&
          e.state === 'reconnected' &&
          e.sessionId !== since.oldSession,
        { timeoutMs: timing.expiryMs, what: 'a to open a new session' },
      );
      s.note(`a on a new session ${(rejoined.t - since.resumedAt).toFixed(0)} ms after SIGCONT`);
      await waitFor(
        async () =>
          (await queueEntries(b)).some((e) => e.value === 'a' && e.epoch > BigInt(since.oldEpoch)),
        { timeoutMs: timing.expiryMs, intervalMs: 100, what: 'a back in the queue' },
      );
    },
    whileCut: (a, cutAt) => {
      const suspended = a.all('connection', cutAt).find((e) => e.state === 'suspended');
      // node-zookeeper-client has no read timeout: through the black hole it goes on saying
      // SYNC_CONNECTED until tenure's heartbeat, unanswered, drops its socket.
      const clientSaw = a.all('client', cutAt)[0];
      expect(suspended, "a's heartbeat to go unanswered").toBeDefined();
      expect(
        clientSaw === undefined || clientSaw.t >= suspended!.t,
        `the client library reported nothing before tenure's watchdog (it reported ${JSON.stringify(clientSaw)})`,
      ).toBe(true);
      return `a suspended (heartbeat unanswered, socket dropped): ${(suspended!.t - cutAt).toFixed(0)} ms, → the client library's first state change: ${clientSaw ? `${String(clientSaw.state)} at ${(clientSaw.t - cutAt).toFixed(0)} ms` : 'none'}`;
    },
    afterRestore: (a, cutAt, restoredAt) => {
      const lost = a.all('connection', cutAt).find((e) => e.state === 'lost');
      return `a told its session was lost ${lost ? `${(lost.t - restoredAt).toFixed(0)} ms after restore` : 'never'}`;
    },
    afterRestart: (all, startAt) => {
      const lost = all
        .flatMap((c) => c.all('connection', startAt))
        .filter((e) => e.state === 'lost');
      return `sessions lost after the restart: ${lost.map((e) => e.holder).join(', ') || 'none'}`;
    },
  },
};

/** A ZooKeeper scenario: the latch path, request taps and plain client sessions. */
interface ZooKeeperScenario extends FaultScenario<ZooKeeperEnsemble> {
  /** The latch path of the election: the parent of the candidates' znodes. */
  readonly latch: string;
  /** A request tap in front of one server, closed after the test. */
  tap(member: number, match: (path: string) => boolean, onCreate: () => void): Promise<RequestTap>;
  /** A plain client session on the ensemble, closed after the test. */
  raw(): Promise<RawZooKeeper>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `_c_<uuid>-latch-` of a candidate's node (a path or a name). */
function prefixOf(key: string): string {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const match = /^(_c_[0-9a-f-]{36}-latch-)-?\d+$/.exec(name);
  if (!match) throw new Error(`${key} is not a candidate node of tenure's layout`);
  return match[1]!;
}

describeFaultScenarios(
  zookeeper,
  ({ timing, scenario, queue, queueEntries, queueOrder, firstEvent, steadyLeader }) => {
    /** `s` with what only ZooKeeper scenarios use. */
    const zk = (s: FaultScenario<ZooKeeperEnsemble>): ZooKeeperScenario => ({
      ...s,
      latch: `${ROOT}/${s.election}`,
      tap: async (member, match, onCreate) => {
        const port = s.servers.members[member]!.clientPort;
        const tap = await startRequestTap({ host: '127.0.0.1', port }, match, onCreate);
        s.defer(() => tap.close(), true);
        return tap;
      },
      raw: async () => {
        const raw = await connectRaw(s.servers.connectString, timing.handoverMs);
        s.defer(() => raw.close());
        return raw;
      },
    });

    it(
      "(f) forced expiry of the leader's session: its term ends 'session-lost', the next leads, it rejoins with a larger epoch",
      () =>
        scenario('expiry', async (s) => {
          const [a, b, c] = await queue(s, ['a', 'b', 'c']);
          const status = await a.command('status');
          const oldEpoch = BigInt(String(status.epoch));
          const oldSession = String(status.sessionId);

          // a's term ends before the server ends its session: no overlap with b's (G1).
          const expireAt = monotonicNow();
          const expired = await a.command('expire', timing.expiryMs);
          expect(expired).toMatchObject({ ok: true, sessionId: oldSession });
          const ended = await a.next((e) => e.type === 'ended' && e.t > expireAt, {
            timeoutMs: timing.expiryMs,
            what: "a's term to end",
          });
          expect(ended).toMatchObject({ epoch: String(oldEpoch), reason: 'session-lost' });
          const bLeads = await b.next(electedAfter(expireAt), {
            timeoutMs: timing.expiryMs,
            what: 'b to lead after the expiry',
          });
          expect(c.all('elected'), 'c waits behind b (G5)').toEqual([]);
          const back = await waitFor(
            async () => (await queueEntries(b)).find((e) => e.value === 'a' && e.epoch > oldEpoch),
            { timeoutMs: timing.expiryMs, intervalMs: 100, what: 'a to rejoin the queue' },
          );
          const newSession = String((await a.command('status')).sessionId);
          expect(newSession).not.toBe(oldSession);
          s.note(
            `expireSession() → a ended "session-lost": ${(ended.t - expireAt).toFixed(0)} ms, → b elected: ${(bLeads.t - expireAt).toFixed(0)} ms (${(bLeads.t - ended.t).toFixed(0)} ms after a's end); a rejoined on session ${newSession}`,
          );
          expect(await queueOrder(b)).toEqual(['b', 'c', 'a']);

          let since = monotonicNow();
          await b.command('resign');
          await c.next(electedAfter(since), { timeoutMs: timing.handoverMs, what: 'c to lead' });
          since = monotonicNow();
          await c.command('resign');
          const aLeads = await a.next(electedAfter(since), {
            timeoutMs: timing.handoverMs,
            what: 'a to lead again',
          });
          expect(epochOf(aLeads)).toBe(back.epoch);
        }),
      90_000,
    );

    it(
      '(g) a create whose reply is lost: the candidate adopts the node it made; exactly one node of it, no orphan, no second candidacy',
      () =>
        scenario('lost-reply', async (scenarioOf) => {
          const s = zk(scenarioOf);
          const [a] = await queue(s, ['a']);
          const raw = await s.raw();
          // d → proxy → tap → server 0: the tap cuts the proxy the moment it has passed d's create
          // of its candidate node on to the server, so the server makes the node and its reply
          // is dropped.
          let cutAt: number | undefined;
          let proxy: TcpProxy | undefined;
          const tap = await s.tap(
            0,
            (path) => path.startsWith(`${s.latch}/_c_`),
            () => {
              proxy!.cut();
              cutAt = monotonicNow();
            },
          );
          proxy = await s.proxy({ port: tap.port });
          const d = await s.spawn('d', [s.endpointOf(proxy)]);
          await waitFor(() => cutAt, {
            timeoutMs: timing.expiryMs,
            what: "d's create of its candidate node",
          });
          const connected = await d.next((e) => e.type === 'connection', {
            timeoutMs: timing.handoverMs,
            what: 'd connected',
          });
          const sentPrefix = prefixOf(`${tap.matched!}0000000000`);
          // The node exists on the server, though d never heard of it.
          const made = await waitFor(
            async () => {
              const names = (await raw.children(s.latch)).filter((n) => n.startsWith(sentPrefix));
              return names.length > 0 ? names : undefined;
            },
            { timeoutMs: timing.handoverMs, intervalMs: 20, what: 'the node of the lost create' },
          );
          expect(made, 'nodes the lost create made').toHaveLength(1);
          // A short cut: d's session outlives it, so its retried join finds the node by its prefix.
          await sleepUntil(cutAt! + 300);
          const restoredAt = monotonicNow();
          proxy.restore();

          // a hands over at once: d leads as soon as its join has found its node.
          await a.command('resign');
          const dLeads = await d.next(electedAfter(restoredAt), {
            timeoutMs: timing.expiryMs,
            what: 'd to lead',
          });
          // Let d's retries settle (a late duplicate would show up within a few requests).
          await sleep(SESSION_TIMEOUT_MS);
          const names = await raw.children(s.latch);
          const entries = await queueEntries(a);
          const dStatus = await d.command('status');
          const sameSession = dStatus.sessionId === connected.sessionId;
          const ofPrefix = (prefix: string) => names.filter((n) => n.startsWith(prefix));
          const client = d
            .all('client', cutAt!)
            .filter((e) => e.t < dLeads.t)
            .map((e) => `${String(e.state)} +${(e.t - cutAt!).toFixed(0)}`);
          s.note(
            `create cut ${(cutAt! - connected.t).toFixed(0)} ms after d's session opened, restored 300 ms later; d led ${(dLeads.t - restoredAt).toFixed(0)} ms after restore (its client meanwhile, ms after the cut: ${client.join(', ') || 'no change'}); d ${sameSession ? 'kept its session' : `lost its session (${String(connected.sessionId)} → ${String(dStatus.sessionId)})`}; node of the lost create: ${made.join(', ')}; d leads with: ${String(dLeads.key).slice(s.latch.length + 1)}`,
          );
          expect(
            entries.filter((e) => e.value === 'd'),
            'd is a candidate once (no second candidacy)',
          ).toHaveLength(1);
          expect(ofPrefix(prefixOf(String(dLeads.key))), "nodes with d's current prefix").toEqual([
            String(dLeads.key).slice(s.latch.length + 1),
          ]);
          expect(names, 'children of the latch: d, and a behind it').toHaveLength(2);
          expect(entries.map((e) => e.value)).toEqual(['d', 'a']);
          if (sameSession) {
            // The lost create's node was adopted, not left as an orphan beside a second one.
            expect(dLeads.key, 'd leads with the node of the lost create').toBe(
              `${s.latch}/${made[0]}`,
            );
          } else {
            // The session ended: its node went with it.
            expect(ofPrefix(sentPrefix), 'nodes of the lost create').toEqual([]);
          }
          expect(epochOf(dLeads)).toBe(entries[0]!.epoch);
        }),
      90_000,
    );

    it(
      "(h) 200 flaps of a candidate's connection leave at most one node per candidate once things settle",
      () =>
        scenario('flaps', async (scenarioOf) => {
          const s = zk(scenarioOf);
          const proxy = await s.proxy(0);
          const all = await queue(s, ['e', 'a', 'b'], (h) =>
            h === 'e' ? [s.endpointOf(proxy)] : undefined,
          );
          const raw = await s.raw();
          const e = all[0];
          let most = 0;
          let mostOfE = 0;
          let resets = 0;
          let cuts = 0;
          // e also leaves and rejoins the queue all along (a resign puts it back at the end, on
          // the same session and node prefix): its deletes and creates go through the flapping
          // connection, and some of their replies are lost.
          let rejoining: Promise<void> | undefined;
          let rejoins = 0;
          const refused: string[] = [];
          const startedAt = monotonicNow();
          for (let flap = 0; flap < 200; flap += 1) {
            if (rejoining === undefined) {
              rejoins += 1;
              rejoining = e
                .send('resign')(timing.expiryMs)
                .then(
                  (reply) => {
                    if (!reply.ok) refused.push(`${String(reply.code)}: ${String(reply.message)}`);
                  },
                  (error: unknown) => {
                    refused.push(String(error));
                  },
                )
                .finally(() => {
                  rejoining = undefined;
                });
            }
            if (flap % 2 === 0) {
              proxy.reset();
              resets += 1;
            } else {
              proxy.cut();
              await sleep(20 + Math.floor(Math.random() * 130));
              proxy.restore();
              cuts += 1;
            }
            await sleep(20 + Math.floor(Math.random() * 80));
            const names = await raw.children(s.latch);
            const values = await Promise.all(names.map((n) => raw.data(`${s.latch}/${n}`)));
            most = Math.max(most, names.length);
            mostOfE = Math.max(mostOfE, values.filter((v) => v === 'e').length);
          }
          const flappedAt = monotonicNow();
          await rejoining;
          expect(refused, "e's resigns that failed").toEqual([]);
          // Settled: the sessions the flaps ended have expired (timeout + a tick) and every
          // candidate has rejoined: one node each, never more.
          await sleep(SESSION_TIMEOUT_MS + TICK_MS);
          const settled = await waitFor(
            async () => {
              const names = await raw.children(s.latch);
              const values = await Promise.all(names.map((n) => raw.data(`${s.latch}/${n}`)));
              const sorted = values.filter((v) => v !== undefined).sort();
              return sorted.join(',') === 'a,b,e' && names.length === 3 ? names : undefined;
            },
            { timeoutMs: timing.expiryMs, intervalMs: 100, what: 'one node per candidate' },
          );
          const settledAt = monotonicNow();
          let after = settled.length;
          for (let i = 0; i < 10; i += 1) {
            await sleep(SESSION_TIMEOUT_MS / 5);
            after = Math.max(after, (await raw.children(s.latch)).length);
          }
          const ends = all.flatMap((c) => c.all('ended', startedAt)).map((e) => String(e.reason));
          const count = (reason: string) => ends.filter((r) => r === reason).length;
          s.note(
            `${resets} resets + ${cuts} cuts in ${(flappedAt - startedAt).toFixed(0)} ms, ${rejoins} resign-and-rejoins of e; most children seen while flapping: ${most} (of e: ${mostOfE}); e's failed requests: ${e.all('error', startedAt).length} (creates ${e.all('error', startedAt).filter((x) => /create candidate/.test(String(x.message))).length}); one node per candidate ${(settledAt - flappedAt).toFixed(0)} ms after the last flap (polled after waiting timeout + tick); terms ended: ${ends.length} (expired ${count('expired')}, session-lost ${count('session-lost')}, other ${ends.length - count('expired') - count('session-lost')}); e's sessions: ${new Set(e.all('connection').map((c) => c.sessionId)).size}`,
          );
          expect(after, 'children of the latch path after settling').toBeLessThanOrEqual(3);

          // The election still works: a full round of handovers.
          for (let round = 1; round <= 3; round += 1) {
            const { leader, epoch, order } = await steadyLeader(all);
            const resignAt = monotonicNow();
            await leader.command('resign', timing.handoverMs);
            const next = await firstEvent(all, electedAfter(resignAt), {
              timeoutMs: timing.handoverMs,
              what: `the next leader after ${leader.holder} resigned (round ${round})`,
            });
            expect(next.holder).toBe(order[1]);
            expect(epochOf(next)).toBeGreaterThan(BigInt(epoch));
          }
        }),
      120_000,
    );
  },
);
