/**
 * The nemesis runner: starts a real etcd cluster or ZooKeeper ensemble, a witness, and candidate
 * processes that reach the servers through TCP proxies; injects a fault schedule drawn from a
 * seed, one fault at a time; ends with a rotation through every candidate; then reads every
 * process's history and checks it ({@link checkNemesisHistory}).
 *
 * @packageDocumentation
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcdCluster } from '../etcd-cluster.js';
import { FixtureChild, type FixtureEvent } from '../fixture-child.js';
import { requestJson } from '../http-json-request.js';
import { startTcpProxy, type TcpProxy } from '../tcp-proxy.js';
import { monotonicNow } from '../term-history.js';
import { Timing, waitFor } from '../timing.js';
import { startZooKeeperEnsemble } from '../zookeeper-ensemble.js';
import { checkNemesisHistory, type NemesisCheck } from './checker.js';
import {
  assertFaultKinds,
  type FaultKind,
  faultKindsFor,
  type NemesisArbitrator,
} from './faults.js';
import type {
  FaultRecord,
  NemesisCandidateEvent,
  NemesisCandidateHistory,
  NemesisHistory,
} from './history.js';
import { SeededRandom } from './random.js';
import { startWitness, type Witness } from './witness.js';

/** Options of {@link runNemesis}. */
export interface NemesisOptions {
  readonly arbitrator: NemesisArbitrator;
  /** How many faults to inject. */
  readonly faults: number;
  /** The schedule's seed: the same seed draws the same kinds, targets, durations and phases. */
  readonly seed: number;
  /** The kinds to draw from. Default: every kind that applies to the arbitrator. */
  readonly kinds?: readonly FaultKind[];
  /** Candidate processes. Default 3. */
  readonly candidates?: number;
  /** Arbitrator members. Default 3. */
  readonly members?: number;
  /** The TTL (etcd lease TTL, ZooKeeper session timeout) the candidates ask for, ms. Default 2000. */
  readonly ttlMs?: number;
  /**
   * ZooKeeper's `syncLimit`, in ticks of 200 ms (default 10: 2 s). Above the TTL, a follower
   * cut off from its leader keeps answering its clients for longer than their sessions live
   * on the leader (issue 11 §1's setting).
   */
  readonly zookeeperSyncLimit?: number;
  /** test/fixtures/nemesis-candidate.mjs and nemesis-admin.mjs (they run the built packages). */
  readonly fixtures: { readonly candidate: string; readonly admin: string };
  /** The working directory of the fixtures (the repository's root). */
  readonly cwd: string;
  /** Bounds every wait. Default `new Timing(ttlMs)`. */
  readonly timing?: Timing;
  /** Progress lines (one per fault). */
  readonly log?: (line: string) => void;
}

/** What {@link runNemesis} returns. */
export interface NemesisRun {
  readonly arbitrator: NemesisArbitrator;
  readonly seed: number;
  readonly ttlMs: number;
  /** The schedule actually run: each fault's kind, target, times. */
  readonly history: NemesisHistory;
  readonly check: NemesisCheck;
  /** Notes of the run (a fault skipped for want of a target, a process that died by itself). */
  readonly notes: readonly string[];
  /** The wall time of the whole run, ms. */
  readonly durationMs: number;
}

/** One arbitrator member, as the nemesis drives it. */
interface Member {
  readonly name: string;
  readonly clientPort: number;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/** An etcd cluster or a ZooKeeper ensemble, as the nemesis drives it. */
interface Cluster {
  readonly members: readonly Member[];
  leader(): Promise<{ readonly name: string }>;
  /** Cuts the members apart (by index into `members`); clients stay connected. */
  partition(groups: readonly (readonly number[])[]): Promise<void>;
  heal(): Promise<void>;
  stopAll(): Promise<void>;
  startAll(): Promise<void>;
  stop(): Promise<void>;
}

/** One candidate label and its successive processes. */
interface Slot {
  readonly holder: string;
  readonly proxies: TcpProxy[];
  incarnation: number;
  child: FixtureChild | undefined;
  /** The live term of the current process, from its stdout. */
  leading: { epoch: string; key: string; t: number } | undefined;
  /** Set when the nemesis killed the current process on purpose. */
  killed: boolean;
}

/** One process incarnation, for collecting its history afterwards. */
interface Incarnation {
  readonly process: string;
  readonly holder: string;
  readonly file: string;
  readonly slot: Slot;
  readonly child: FixtureChild;
}

/**
 * Runs a nemesis schedule and checks it. Never throws for a violation (they are in
 * `check.violations`); throws when the servers or fixtures cannot start. Everything it started
 * is stopped before it returns or throws; every wait is bounded through `timing`.
 */
export async function runNemesis(options: NemesisOptions): Promise<NemesisRun> {
  const began = monotonicNow();
  const ttlMs = options.ttlMs ?? 2_000;
  const timing = options.timing ?? new Timing(ttlMs);
  const kinds = options.kinds ?? faultKindsFor(options.arbitrator);
  assertFaultKinds(options.arbitrator, kinds);
  if (!Number.isInteger(options.faults) || options.faults < 0) {
    throw new RangeError(`nemesis: faults must be a non-negative integer (got ${options.faults})`);
  }
  const candidateCount = options.candidates ?? 3;
  if (!Number.isInteger(candidateCount) || candidateCount < 2) {
    throw new RangeError(`nemesis: candidates must be an integer ≥ 2 (got ${candidateCount})`);
  }
  const log = options.log ?? (() => {});
  const random = new SeededRandom(options.seed);
  const notes: string[] = [];
  const faults: FaultRecord[] = [];
  const slots: Slot[] = [];
  const incarnations: Incarnation[] = [];
  const workDir = await mkdtemp(join(tmpdir(), 'tenure-nemesis-'));
  let cluster: Cluster | undefined;
  let witness: Witness | undefined;
  let admin: FixtureChild | undefined;
  let rotationFrom: number | undefined;
  let end = 0;
  // A valid leader within this after every heal (TTL + TTL + 4 s, scaled); the checker holds
  // the run to the same bound.
  const leaderBoundMs = timing.expiryMs;
  // The delivery of one watch event to the old leader after its key was deleted (the window
  // only fencing covers: docs/concepts.md), on a loaded machine.
  const deleteWindowMs = timing.scale(250);
  const stepMs = timing.handoverMs;
  const startMs = timing.scale(20_000);
  const etcd = options.arbitrator === 'etcd';
  try {
    cluster = etcd
      ? await startEtcd(options.members ?? 3)
      : await startZooKeeper(options.members ?? 3, options.zookeeperSyncLimit);
    witness = await startWitness();
    if (!etcd) {
      admin = await FixtureChild.start(
        'admin',
        options.fixtures.admin,
        ['--endpoints', cluster.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',')],
        { cwd: options.cwd, timeoutMs: startMs },
      );
    }
    for (let i = 0; i < candidateCount; i += 1) {
      const proxies = await Promise.all(
        cluster.members.map((m) => startTcpProxy({ host: '127.0.0.1', port: m.clientPort })),
      );
      slots.push({
        holder: `c${i + 1}`,
        proxies,
        incarnation: 0,
        child: undefined,
        leading: undefined,
        killed: false,
      });
    }
    const w = witness;
    const spawnCandidate = async (slot: Slot): Promise<void> => {
      slot.incarnation += 1;
      slot.killed = false;
      slot.leading = undefined;
      const name = `${slot.holder}#${slot.incarnation}`;
      const file = join(workDir, `${slot.holder}-${slot.incarnation}.jsonl`);
      const endpoints = slot.proxies.map((p) => (etcd ? p.url : p.endpoint)).join(',');
      const child = await FixtureChild.start(
        name,
        options.fixtures.candidate,
        [
          '--arbitrator',
          options.arbitrator,
          '--endpoints',
          endpoints,
          '--ttl',
          String(ttlMs),
          '--holder',
          slot.holder,
          '--process',
          name,
          '--history',
          file,
          '--witness',
          w.url,
        ],
        { cwd: options.cwd, timeoutMs: startMs },
      );
      child.onEvent = (event: FixtureEvent) => {
        if (slot.child !== child) return;
        if (event.type === 'elected') {
          slot.leading = { epoch: String(event.epoch), key: String(event.key), t: event.t };
        } else if (event.type === 'ended' && slot.leading?.epoch === String(event.epoch)) {
          slot.leading = undefined;
        } else if (event.type === 'fatal') {
          notes.push(`${name} fatal: ${String(event.message).slice(0, 300)}`);
        }
      };
      slot.child = child;
      incarnations.push({ process: name, holder: slot.holder, file, slot, child });
    };
    for (const slot of slots) await spawnCandidate(slot);

    /** The running, unpaused slot with the newest live term. */
    const leader = (): Slot | undefined =>
      slots
        .filter((s) => s.child !== undefined && !s.child.exited && !s.child.paused && s.leading)
        .sort((a, b) => b.leading!.t - a.leading!.t)[0];
    const waitLeader = async (timeoutMs: number): Promise<Slot | undefined> => {
      try {
        return await waitFor(leader, { timeoutMs, intervalMs: 5, what: 'a leader' });
      } catch {
        return undefined;
      }
    };
    const followers = (of: Slot | undefined): Slot[] =>
      slots.filter((s) => s !== of && s.child !== undefined && !s.child.exited);
    /** Replaces a slot's process that is gone (killed by the nemesis, or died by itself). */
    const revive = async (slot: Slot): Promise<void> => {
      const child = slot.child;
      if (child !== undefined && !child.exited) return;
      if (child !== undefined && !slot.killed) {
        notes.push(
          `${child.name} exited by itself (${JSON.stringify(child.exit)}): ${child.stderr.slice(-500)}`,
        );
      }
      await spawnCandidate(slot);
    };
    const killSlot = async (slot: Slot): Promise<number> => {
      const child = slot.child!;
      slot.killed = true;
      const at = monotonicNow();
      child.kill();
      await waitFor(() => child.exited, { timeoutMs: stepMs, what: `${child.name} to die` });
      return at;
    };
    const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
    /** Resolves when a slot other than `except` reports `elected` after `since`; bounded. */
    const nextElected = (except: Slot | undefined, timeoutMs: number) =>
      waitFor(
        () => {
          const found = slots.find(
            (s) =>
              s !== except && s.child !== undefined && !s.child.exited && s.leading !== undefined,
          );
          return found;
        },
        { timeoutMs, intervalMs: 1, what: 'a new leader' },
      ).catch(() => undefined);
    /**
     * Ends a cut: resets the connections that lived through it, then forwards again. (In this
     * order: restore() then reset() at once leaks a socket handle in the proxy when a close was
     * held back during the cut.)
     */
    const heal = (slot: Slot) => {
      for (const p of slot.proxies) {
        p.reset();
        p.restore();
      }
    };
    const holdMs = () => Math.round(random.between(0.3, 2.5) * ttlMs);
    const etcdRequest = async (path: string, body: unknown): Promise<unknown> => {
      let last: unknown;
      for (const m of cluster!.members) {
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
    };
    const deleteKey = async (key: string): Promise<void> => {
      if (etcd) {
        await etcdRequest('/v3/kv/deleterange', { key: Buffer.from(key).toString('base64') });
      } else {
        const reply = await admin!.command(`delete ${key}`, stepMs);
        if (!reply.ok) throw new Error(`delete ${key}: ${String(reply.message)}`);
      }
    };

    /** Injects one fault of `kind`; resolves with its record, or a note when it had no target. */
    const inject = async (kind: FaultKind): Promise<FaultRecord | string> => {
      const current = await waitLeader(leaderBoundMs);
      switch (kind) {
        case 'kill-leader': {
          if (!current) return 'no leader';
          const at = await killSlot(current);
          await revive(current);
          return { kind, at, healedAt: at, target: current.child!.name };
        }
        case 'kill-follower': {
          const target = random.pick(followers(current));
          const at = await killSlot(target);
          const name = target.child!.name;
          await sleep(random.int(0, ttlMs));
          await revive(target);
          return { kind, at, healedAt: monotonicNow(), target: name };
        }
        case 'kill-elected':
        case 'pause-elected': {
          if (!current) return 'no leader';
          void current.child!.command('resign', stepMs).catch(() => {});
          const next = await nextElected(current, stepMs);
          if (!next) return 'no successor after resign';
          if (kind === 'kill-elected') {
            const name = next.child!.name;
            const at = await killSlot(next);
            await revive(next);
            return { kind, at, healedAt: at, target: name };
          }
          const at = monotonicNow();
          await next.child!.pause(stepMs);
          await sleep(holdMs());
          await next.child!.resume(stepMs);
          return { kind, at, healedAt: monotonicNow(), target: next.child!.name };
        }
        case 'pause-leader':
        case 'pause-follower': {
          const target = kind === 'pause-leader' ? current : random.pick(followers(current));
          if (!target) return 'no leader';
          // A random phase of the renewal interval (ttl/3), so some stops hit a renewal in flight.
          await sleep(random.int(0, Math.round(ttlMs / 3)));
          const at = monotonicNow();
          await target.child!.pause(stepMs);
          await sleep(holdMs());
          await target.child!.resume(stepMs);
          return { kind, at, healedAt: monotonicNow(), target: target.child!.name };
        }
        case 'blackhole-leader':
        case 'blackhole-follower': {
          const target = kind === 'blackhole-leader' ? current : random.pick(followers(current));
          if (!target) return 'no leader';
          const at = monotonicNow();
          for (const p of target.proxies) p.cut();
          await sleep(holdMs());
          heal(target);
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
          const waiting = followers(current);
          const at = monotonicNow();
          void current.child!.command('resign', stepMs).catch(() => {});
          await sleep(random.int(0, 20));
          for (const s of waiting) for (const p of s.proxies) p.reset();
          await sleep(random.int(30, 150));
          for (const s of waiting) for (const p of s.proxies) p.reset();
          return { kind, at, healedAt: monotonicNow(), target: current.child!.name };
        }
        case 'lost-create-reply': {
          const target = random.next() < 0.5 && current ? current : random.pick(followers(current));
          const at = monotonicNow();
          // The fixture answers `resign` right after it has sent its rejoin (a fresh create).
          const reply = await target.child!.command('resign', stepMs).catch(() => undefined);
          for (const p of target.proxies) p.cut();
          if (reply === undefined) notes.push('lost-create-reply: no reply to resign');
          await sleep(holdMs());
          heal(target);
          return { kind, at, healedAt: monotonicNow(), target: target.child!.name };
        }
        case 'delete-leader-key': {
          const term = current?.leading;
          if (!current || !term) return 'no leader';
          const process = current.child!.name;
          const at = monotonicNow();
          await deleteKey(term.key);
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
          const target = current && random.next() < 0.7 ? current : random.pick(followers(current));
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
              const range = (await etcdRequest('/v3/kv/range', {
                key: Buffer.from('nemesis').toString('base64'),
              })) as { header?: { revision?: string } };
              const revision = range.header?.revision;
              if (revision !== undefined) {
                await etcdRequest('/v3/kv/compaction', { revision }).catch(() => {});
              }
            } catch {
              // a member down or busy: the next round tries again
            }
            if (!resigned && monotonicNow() >= resignAt) {
              resigned = true;
              const l = leader();
              if (l) void l.child!.command('resign', stepMs).catch(() => {});
            }
            await sleep(100);
          }
          return { kind, at, healedAt: monotonicNow() };
        }
        case 'kill-member':
        case 'kill-arbitrator-leader': {
          const c = cluster!;
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
          const c = cluster!;
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
          await cluster!.stopAll();
          await sleep(Math.round(random.between(0.25, 1) * ttlMs));
          await cluster!.startAll();
          return { kind, at, healedAt: monotonicNow() };
        }
      }
    };

    if (!(await waitLeader(leaderBoundMs))) notes.push('no leader before the first fault');
    for (let n = 1; n <= options.faults; n += 1) {
      const kind = random.pick(kinds);
      let outcome: FaultRecord | string;
      try {
        outcome = await inject(kind);
      } catch (error) {
        outcome = `failed: ${String((error as Error)?.message ?? error).slice(0, 300)}`;
      }
      if (typeof outcome === 'string') {
        notes.push(`fault ${n} (${kind}) skipped: ${outcome}`);
        log(`fault ${n}/${options.faults} ${kind}: skipped (${outcome})`);
      } else {
        faults.push(outcome);
        log(
          `fault ${n}/${options.faults} ${kind}${outcome.target ? ` ${outcome.target}` : ''} ` +
            `held ${(outcome.healedAt - outcome.at).toFixed(0)} ms`,
        );
      }
      for (const slot of slots) await revive(slot);
      await waitLeader(leaderBoundMs);
      await sleep(random.int(200, 800));
    }

    // The closing rotation: every live candidate must lead once more (none is stuck). The
    // leader resigns until each has led since the rotation began; one that has not rejoined
    // the queue within the leader bound is stuck (the checker says so).
    const from = monotonicNow();
    rotationFrom = from;
    const ledSince = new Set<Slot>();
    const mark = () => {
      for (const s of slots) if (s.leading && s.leading.t >= from) ledSince.add(s);
    };
    for (let i = 0; monotonicNow() - from <= leaderBoundMs; i += 1) {
      const current = await waitLeader(leaderBoundMs);
      mark();
      if (!current) break;
      if (slots.every((s) => ledSince.has(s) || !s.child || s.child.exited)) break;
      // One that has led already leads again: give the others a moment to rejoin.
      if (ledSince.has(current)) await sleep(100);
      const epoch = current.leading!.epoch;
      await current.child!.command('resign', stepMs).catch(() => {});
      await waitFor(() => leader() !== undefined && leader()!.leading!.epoch !== epoch, {
        timeoutMs: leaderBoundMs,
        intervalMs: 5,
        what: 'the next leader of the rotation',
      }).catch(() => notes.push(`rotation ${i + 1}: no next leader`));
      mark();
    }
    end = monotonicNow();
  } finally {
    end ||= monotonicNow();
    const stops = await Promise.allSettled([
      ...slots.map((s) => s.child?.stop(stepMs)),
      admin?.stop(stepMs),
    ]);
    await Promise.allSettled([
      ...slots.flatMap((s) => s.proxies.map((p) => p.close())),
      witness?.close(),
      cluster?.stop(),
    ]);
    for (const s of stops) {
      if (s.status === 'rejected') notes.push(`stop: ${String(s.reason)}`);
    }
  }

  const candidates: NemesisCandidateHistory[] = [];
  for (const inc of incarnations) {
    candidates.push({
      process: inc.process,
      holder: inc.holder,
      events: await readHistory(inc.file),
      alive: inc.slot.child === inc.child && !inc.slot.killed,
    });
  }
  const history: NemesisHistory = {
    candidates,
    witness: witness?.log ?? [],
    faults,
    leaderBoundMs,
    deleteWindowMs,
    ...(rotationFrom === undefined ? {} : { rotationFrom }),
    end,
  };
  const check = checkNemesisHistory(history);
  // The histories of a failing run stay, for a closer look.
  if (check.violations.length === 0) await rm(workDir, { recursive: true, force: true });
  else notes.push(`histories kept in ${workDir}`);
  return {
    arbitrator: options.arbitrator,
    seed: options.seed,
    ttlMs,
    history,
    check,
    notes,
    durationMs: monotonicNow() - began,
  };
}

/** A history file's events; a last line cut short by a SIGKILL is dropped. */
async function readHistory(file: string): Promise<NemesisCandidateEvent[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  const events: NemesisCandidateEvent[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      events.push(JSON.parse(line) as NemesisCandidateEvent);
    } catch {
      // the partial last line of a killed process
    }
  }
  return events;
}

async function startEtcd(size: number): Promise<Cluster> {
  const cluster = await startEtcdCluster(size, { partitionable: true });
  return {
    members: cluster.nodes.map((node) => ({
      name: node.name,
      clientPort: node.clientPort,
      kill: () => node.kill(),
      restart: () => node.restart(),
    })),
    leader: () => cluster.leader(),
    partition: (groups) => cluster.partition(groups.map((g) => g.map((i) => i + 1))),
    heal: () => cluster.heal(),
    stopAll: () => cluster.stopAll(),
    startAll: () => cluster.startAll(),
    stop: () => cluster.stop(),
  };
}

async function startZooKeeper(size: number, syncLimit: number | undefined): Promise<Cluster> {
  const ensemble = await startZooKeeperEnsemble(size, {
    partitionable: true,
    ...(syncLimit === undefined ? {} : { syncLimit }),
  });
  return {
    members: ensemble.members.map((node) => ({
      name: node.name,
      clientPort: node.clientPort,
      kill: () => node.kill(),
      restart: () => node.restart(),
    })),
    leader: () => ensemble.leader(),
    partition: (groups) => ensemble.partition(groups.map((g) => g.map((i) => i + 1))),
    heal: () => ensemble.heal(),
    stopAll: () => ensemble.stopAll(),
    startAll: () => ensemble.startAll(),
    stop: () => ensemble.stop(),
  };
}
