/**
 * Fault application: what each kind of fault does to the candidates, their proxies and the
 * arbitrator's servers, drawn from the run's seeded random; every wait bounded.
 */

import { sleep } from '@tenure/core/internal';
import type { FixtureChild } from '../fixture-child.js';
import { requestJson } from '../http-json-request.js';
import { monotonicNow } from '../term-history.js';
import type { CandidatePool } from './candidate-pool.js';
import type { Cluster, Member } from './cluster.js';
import type { FaultKind, NemesisArbitrator } from './faults.js';
import type { FaultRecord } from './history.js';
import type { SeededRandom } from './random.js';

/** What a fault acts on, and the run's bounds. */
export interface FaultTargets {
  readonly arbitrator: NemesisArbitrator;
  readonly cluster: Cluster;
  readonly candidates: CandidatePool;
  /** The ZooKeeper admin fixture (deletes a key); `undefined` on etcd. */
  readonly admin: FixtureChild | undefined;
  /** The run's seeded random: every draw of a target, a phase or a duration. */
  readonly random: SeededRandom;
  readonly ttlMs: number;
  /** Bound of one step (a kill, a command, a request), ms. */
  readonly stepMs: number;
  /** A valid leader within this after every heal, ms. */
  readonly leaderBoundMs: number;
  /** The run's notes, appended to. */
  readonly notes: string[];
}

/** Injects one fault of `kind`; resolves with its record, or a note when it had no target. */
export async function injectFault(
  kind: FaultKind,
  run: FaultTargets,
): Promise<FaultRecord | string> {
  const { cluster, candidates, random, ttlMs, stepMs, notes } = run;
  const current = await candidates.waitLeader(run.leaderBoundMs);
  switch (kind) {
    case 'kill-leader': {
      if (!current) return 'no leader';
      const at = await candidates.kill(current);
      await candidates.revive(current);
      return { kind, at, healedAt: at, target: current.child!.name };
    }
    case 'kill-follower': {
      const target = random.pick(candidates.followers(current));
      const at = await candidates.kill(target);
      const name = target.child!.name;
      await sleep(random.int(0, ttlMs));
      await candidates.revive(target);
      return { kind, at, healedAt: monotonicNow(), target: name };
    }
    case 'kill-elected':
    case 'pause-elected': {
      if (!current) return 'no leader';
      void current.child!.command('resign', stepMs).catch(() => {});
      const next = await candidates.nextElected(current, stepMs);
      if (!next) return 'no successor after resign';
      if (kind === 'kill-elected') {
        const name = next.child!.name;
        const at = await candidates.kill(next);
        await candidates.revive(next);
        return { kind, at, healedAt: at, target: name };
      }
      const at = monotonicNow();
      await next.child!.pause(stepMs);
      await sleep(holdMs(run));
      await next.child!.resume(stepMs);
      return { kind, at, healedAt: monotonicNow(), target: next.child!.name };
    }
    case 'pause-leader':
    case 'pause-follower': {
      const target = kind === 'pause-leader' ? current : random.pick(candidates.followers(current));
      if (!target) return 'no leader';
      // A random phase of the renewal interval (ttl/3), so some stops hit a renewal in flight.
      await sleep(random.int(0, Math.round(ttlMs / 3)));
      const at = monotonicNow();
      await target.child!.pause(stepMs);
      await sleep(holdMs(run));
      await target.child!.resume(stepMs);
      return { kind, at, healedAt: monotonicNow(), target: target.child!.name };
    }
    case 'blackhole-leader':
    case 'blackhole-follower': {
      const target =
        kind === 'blackhole-leader' ? current : random.pick(candidates.followers(current));
      if (!target) return 'no leader';
      const at = monotonicNow();
      for (const p of target.proxies) p.cut();
      await sleep(holdMs(run));
      candidates.heal(target);
      return { kind, at, healedAt: monotonicNow(), target: target.child!.name };
    }
    case 'reset-leader': {
      if (!current) return 'no leader';
      const at = monotonicNow();
      for (const p of current.proxies) p.reset();
      return { kind, at, healedAt: at, target: current.child!.name };
    }
    case 'double-reset-watch': {
      if (!current) return 'no leader';
      const waiting = candidates.followers(current);
      const at = monotonicNow();
      void current.child!.command('resign', stepMs).catch(() => {});
      await sleep(random.int(0, 20));
      for (const s of waiting) for (const p of s.proxies) p.reset();
      await sleep(random.int(30, 150));
      for (const s of waiting) for (const p of s.proxies) p.reset();
      return { kind, at, healedAt: monotonicNow(), target: current.child!.name };
    }
    case 'lost-create-reply': {
      const target =
        random.next() < 0.5 && current ? current : random.pick(candidates.followers(current));
      const at = monotonicNow();
      // The fixture answers `resign` right after it has sent its rejoin (a fresh create).
      const reply = await target.child!.command('resign', stepMs).catch(() => undefined);
      for (const p of target.proxies) p.cut();
      if (reply === undefined) notes.push('lost-create-reply: no reply to resign');
      await sleep(holdMs(run));
      candidates.heal(target);
      return { kind, at, healedAt: monotonicNow(), target: target.child!.name };
    }
    case 'delete-leader-key': {
      const term = current?.leading;
      if (!current || !term) return 'no leader';
      const process = current.child!.name;
      const at = monotonicNow();
      await deleteKey(run, term.key);
      return {
        kind,
        at,
        healedAt: at,
        target: `${process} ${term.key}`,
        process,
        epoch: term.epoch,
      };
    }
    case 'expire-session': {
      const target =
        current && random.next() < 0.7 ? current : random.pick(candidates.followers(current));
      const at = monotonicNow();
      const reply = await target.child!.command('expire', stepMs).catch((e: unknown) => e);
      if (!(reply as { ok?: boolean }).ok) {
        notes.push(`expire-session on ${target.child!.name}: ${JSON.stringify(reply)}`);
      }
      return { kind, at, healedAt: monotonicNow(), target: target.child!.name };
    }
    case 'compaction': {
      const windowMs = random.int(1_000, 3_000);
      const at = monotonicNow();
      const resignAt = at + random.int(0, windowMs);
      let resigned = false;
      while (monotonicNow() - at < windowMs) {
        try {
          const range = (await etcdRequest(cluster, stepMs, '/v3/kv/range', {
            key: Buffer.from('nemesis').toString('base64'),
          })) as { header?: { revision?: string } };
          const revision = range.header?.revision;
          if (revision !== undefined) {
            await etcdRequest(cluster, stepMs, '/v3/kv/compaction', { revision }).catch(() => {});
          }
        } catch {
          // a member down or busy: the next round tries again
        }
        if (!resigned && monotonicNow() >= resignAt) {
          resigned = true;
          const l = candidates.leader();
          if (l) void l.child!.command('resign', stepMs).catch(() => {});
        }
        await sleep(100);
      }
      return { kind, at, healedAt: monotonicNow() };
    }
    case 'kill-member':
    case 'kill-arbitrator-leader': {
      const c = cluster;
      let member: Member;
      if (kind === 'kill-member') {
        member = random.pick(c.members);
      } else {
        const name = (await c.leader()).name;
        member = c.members.find((m) => m.name === name)!;
      }
      const at = monotonicNow();
      await member.kill();
      await sleep(Math.round(random.between(0.25, 1.5) * ttlMs));
      await member.restart();
      return { kind, at, healedAt: monotonicNow(), target: member.name };
    }
    case 'isolate-arbitrator-leader':
    case 'isolate-member':
    case 'isolate-leaders-member':
    case 'split-cluster': {
      const c = cluster;
      const all = c.members.map((_, i) => i);
      let apart: number[];
      if (kind === 'isolate-leaders-member') {
        // The member the leading candidate's session lives on: the one its proxies hold
        // a connection to (etcd may hold several; then the first).
        if (!current) return 'no leader';
        const on = all.filter((i) => current.proxies[i]!.connections > 0);
        if (on.length === 0) return 'the leader has no connection';
        apart = [on[0]!];
      } else if (kind === 'isolate-arbitrator-leader') {
        const name = (await c.leader()).name;
        apart = [c.members.findIndex((m) => m.name === name)];
      } else if (kind === 'isolate-member') {
        const name = (await c.leader()).name;
        apart = [random.pick(all.filter((i) => c.members[i]!.name !== name))];
      } else {
        const minority = Math.floor((all.length - 1) / 2);
        const pool = [...all];
        apart = [];
        while (apart.length < Math.max(1, minority)) {
          apart.push(pool.splice(random.int(0, pool.length - 1), 1)[0]!);
        }
      }
      const rest = all.filter((i) => !apart.includes(i));
      const arbitratorLeader = await c
        .leader()
        .then((m) => m.name)
        .catch(() => undefined);
      const at = monotonicNow();
      await c.partition([apart, rest]);
      await sleep(Math.round(random.between(1, 3) * ttlMs));
      await c.heal();
      return {
        kind,
        at,
        healedAt: monotonicNow(),
        target: apart
          .map((i) => c.members[i]!.name)
          .map((name) => (name === arbitratorLeader ? `${name} (its leader)` : name))
          .join('+'),
      };
    }
    case 'restart-cluster': {
      const at = monotonicNow();
      await cluster.stopAll();
      await sleep(Math.round(random.between(0.25, 1) * ttlMs));
      await cluster.startAll();
      return { kind, at, healedAt: monotonicNow() };
    }
  }
}

/** How long a cut or a pause lasts: 0.3 to 2.5 TTLs, drawn. */
function holdMs(run: FaultTargets): number {
  return Math.round(run.random.between(0.3, 2.5) * run.ttlMs);
}

/** A request to etcd's JSON gateway, tried on each member until one answers 200. */
async function etcdRequest(
  cluster: Cluster,
  stepMs: number,
  path: string,
  body: unknown,
): Promise<unknown> {
  let last: unknown;
  for (const m of cluster.members) {
    try {
      const response = await requestJson(`http://127.0.0.1:${m.clientPort}${path}`, {
        body,
        timeoutMs: stepMs,
      });
      if (response.status === 200) return response.body;
      last = new Error(`${path}: ${response.status} ${JSON.stringify(response.body)}`);
    } catch (error) {
      last = error;
    }
  }
  throw last;
}

/** Deletes `key` from outside the election: etcd's gateway, or ZooKeeper's admin fixture. */
async function deleteKey(run: FaultTargets, key: string): Promise<void> {
  if (run.arbitrator === 'etcd') {
    await etcdRequest(run.cluster, run.stepMs, '/v3/kv/deleterange', {
      key: Buffer.from(key).toString('base64'),
    });
  } else {
    const reply = await run.admin!.command(`delete ${key}`, run.stepMs);
    if (!reply.ok) throw new Error(`delete ${key}: ${String(reply.message)}`);
  }
}
