/**
 * One process of the herd suite: several candidates of ONE election, each on an arbitrator of
 * its own (one arbitrator holds at most one candidacy per election). tenure on etcd or
 * ZooKeeper, or the npm `etcd3` package's `Election` (one client and lease per candidate).
 * Candidates do not listen to `leader-changed` until told to. Driven over IPC by `herd.ts`
 * (see `herd-protocol.ts`).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import type { Arbitrator, Election, LeaderInfo } from '@tenure/core';
import { type Campaign, type ElectionObserver, Etcd3 } from 'etcd3';
import { createBenchArbitrator } from './bench-arbitrator.js';
import type { HerdReport, HerdRequest } from './herd-protocol.js';

if (!process.send) {
  console.error('herd-child: run me through child_process.fork');
  process.exit(2);
}

/** What the suite drives, whatever the implementation behind it. */
interface Candidate {
  readonly slot: number;
  resign(): Promise<void>;
  /** Starts listening to leader changes; `onLeader` gets the leader's epoch (or key). */
  listen(onLeader: (id: string | undefined) => void): Promise<void>;
  close(): Promise<void>;
  /** The renewal interval of the candidate's session, ms. */
  intervalMs(): number;
}

const now = () => performance.timeOrigin + performance.now();
const send = (report: HerdReport) => {
  // A campaign can still be elected while the candidates close, after the channel is gone.
  if (process.connected) process.send?.(report);
};
const errors = { count: 0, first: [] as string[] };
const noteError = (error: unknown) => {
  errors.count += 1;
  if (errors.first.length < 3) {
    errors.first.push(error instanceof Error ? error.message : String(error));
  }
};

let candidates: Candidate[] = [];
let started: Extract<HerdRequest, { type: 'start' }> | undefined;
/** `listen-shared`: one more arbitrator in this process, whose election the listeners share. */
let shared: { arbitrator: Arbitrator; election: Election } | undefined;

function tenureCandidate(
  slot: number,
  arbitrator: Arbitrator,
  backend: 'etcd' | 'zookeeper',
  name: string,
): Candidate & { campaign(): void } {
  arbitrator.on('error', noteError);
  const election: Election = arbitrator.election(name, { value: `c${slot}` });
  election.on('error', noteError);
  election.on('elected', (term) => {
    send({ type: 'elected', slot, epoch: term.epoch.toString(), at: now() });
  });
  return {
    slot,
    campaign: () => {
      election.campaign().catch((error: unknown) => {
        // A resign rejects the pending campaign; anything else is worth counting.
        if (!(error instanceof Error && /withdrawn|closed/.test(error.message))) noteError(error);
      });
    },
    resign: () => election.resign(),
    listen: async (onLeader) => {
      election.on('leader-changed', (leader: LeaderInfo | undefined) =>
        onLeader(leader?.epoch.toString()),
      );
    },
    close: () => arbitrator.close(),
    // Core renews, and runs the elections' consistency checks, every `renewFraction` of the
    // granted TTL: a third on etcd (core's default), a quarter on ZooKeeper (its arbitrator.ts).
    intervalMs: () => arbitrator.health().session.ttlMs * (backend === 'zookeeper' ? 1 / 4 : 1 / 3),
  };
}

function etcd3Candidate(
  slot: number,
  connect: string,
  name: string,
  ttlMs: number,
): Candidate & { campaign(): void } {
  const client = new Etcd3({ hosts: connect });
  const election = client.election(name, Math.round(ttlMs / 1000));
  let campaign: Campaign | undefined;
  let observer: ElectionObserver | undefined;
  return {
    slot,
    campaign: () => {
      campaign = election.campaign(`c${slot}`);
      campaign.on('error', noteError);
      campaign.on('elected', () => {
        // The etcd3 Campaign does not expose its key's create revision: the slot stands in.
        send({ type: 'elected', slot, epoch: `slot-${slot}`, at: now() });
      });
    },
    resign: async () => {
      await campaign?.resign();
    },
    listen: async (onLeader) => {
      observer = await election.observe();
      observer.on('error', noteError);
      observer.on('change', (value: string | undefined) =>
        onLeader(value === undefined ? undefined : `slot-${value.slice(1)}`),
      );
      const current = observer.leader();
      onLeader(current === undefined ? undefined : `slot-${current.slice(1)}`);
    },
    close: async () => {
      await observer?.cancel().catch(noteError);
      await campaign?.resign().catch(noteError);
      client.close();
    },
    // etcd3 renews its lease every third of its TTL.
    intervalMs: () => ttlMs / 3,
  };
}

function start(request: Extract<HerdRequest, { type: 'start' }>): void {
  const made = request.slots.map((slot) => {
    if (request.backend === 'etcd3') {
      return etcd3Candidate(slot, request.connect, request.election, request.ttlMs);
    }
    const arbitrator = createBenchArbitrator({ ...request, backend: request.backend });
    return tenureCandidate(slot, arbitrator, request.backend, request.election);
  });
  candidates = made;
  started = request;
  for (const candidate of made) candidate.campaign();
  send({ type: 'started', slots: made.length });
}

async function resign(slot: number): Promise<void> {
  const candidate = candidates.find((c) => c.slot === slot);
  if (!candidate) throw new Error(`no candidate ${slot} in this process`);
  const at = now();
  await candidate.resign();
  send({ type: 'resigned', slot, at, doneAt: now() });
}

/**
 * `TENURE_HERD_PROFILE_DIR`: a CPU profile of this process from `listen` to `close`, written
 * there as `herd-<pid>.cpuprofile` (for finding where a change's CPU time goes).
 */
const PROFILE_DIR = process.env.TENURE_HERD_PROFILE_DIR;
let profiler: Session | undefined;
/** When the profile started, and each change's first and last event here (`performance.now()`). */
const profileMarks = {
  startedAt: 0,
  /** The monotonic clock (the profile's timestamps, µs / 1000) less `performance.now()`. */
  clockOffsetMs: 0,
  changes: [] as { first: number; last: number }[],
};

function post<T>(session: Session, method: string): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, (error, result) => (error ? reject(error) : resolve(result as T))),
  );
}

async function startProfile(): Promise<void> {
  if (PROFILE_DIR === undefined || profiler) return;
  profiler = new Session();
  profiler.connect();
  await post(profiler, 'Profiler.enable');
  await post(profiler, 'Profiler.start');
  profileMarks.startedAt = performance.now();
  profileMarks.clockOffsetMs = Number(process.hrtime.bigint()) / 1e6 - performance.now();
}

async function stopProfile(): Promise<void> {
  if (PROFILE_DIR === undefined || !profiler) return;
  const { profile } = await post<{ profile: unknown }>(profiler, 'Profiler.stop');
  writeFileSync(join(PROFILE_DIR, `herd-${process.pid}.cpuprofile`), JSON.stringify(profile));
  writeFileSync(join(PROFILE_DIR, `herd-${process.pid}.marks.json`), JSON.stringify(profileMarks));
  profiler.disconnect();
  profiler = undefined;
}

/** Reports once every candidate of this process has seen a leader id. */
/**
 * A listener factory whose listeners report (`all-seen`) once `total` of them have seen a
 * leader id.
 */
function tracker(total: number): () => (id: string | undefined) => void {
  const seen = new Map<string, number>();
  return () => {
    let last: string | undefined;
    return (id: string | undefined) => {
      if (id === undefined || id === last) return;
      last = id;
      const count = (seen.get(id) ?? 0) + 1;
      seen.set(id, count);
      if (count === 1 && profiler) {
        profileMarks.changes.push({ first: performance.now(), last: Number.NaN });
      }
      if (count === total) {
        const mark = profileMarks.changes[profileMarks.changes.length - 1];
        if (mark && profiler) mark.last = performance.now();
        send({ type: 'all-seen', epoch: id, at: now(), cpuMs: cpuMs() });
      }
    };
  };
}

/** Every candidate of this process listens, each on its own arbitrator. */
async function listen(): Promise<void> {
  // The shared listeners stop: from now on each candidate follows the leader itself.
  shared?.election.removeAllListeners('leader-changed');
  await startProfile();
  const onLeader = tracker(candidates.length);
  await Promise.all(candidates.map((c) => c.listen(onLeader())));
}

/**
 * As many listeners as this process has candidates, all on ONE more arbitrator (tenure only):
 * they share its one watch of the election.
 */
async function listenShared(): Promise<void> {
  if (!started || started.backend === 'etcd3') throw new Error('listen-shared: tenure only');
  const arbitrator = createBenchArbitrator({ ...started, backend: started.backend });
  arbitrator.on('error', noteError);
  const election = arbitrator.election(started.election, { value: 'observer' });
  election.on('error', noteError);
  shared = { arbitrator, election };
  const onLeader = tracker(candidates.length);
  for (let i = 0; i < candidates.length; i += 1) {
    const report = onLeader();
    election.on('leader-changed', (leader: LeaderInfo | undefined) =>
      report(leader?.epoch.toString()),
    );
  }
}

function cpuMs(): number {
  const cpu = process.cpuUsage();
  return (cpu.user + cpu.system) / 1_000;
}

function usage(): void {
  send({
    type: 'usage',
    cpuMs: cpuMs(),
    timeOrigin: performance.timeOrigin,
    intervalMs: candidates[0]?.intervalMs() ?? Number.NaN,
  });
}

async function close(): Promise<void> {
  await stopProfile().catch(noteError);
  await Promise.all([
    ...candidates.map((c) => c.close().catch(noteError)),
    shared?.arbitrator.close().catch(noteError),
  ]);
  send({ type: 'closed', errors: errors.count, firstErrors: errors.first });
  process.disconnect?.();
}

process.on('message', (request: HerdRequest) => {
  const task =
    request.type === 'start'
      ? Promise.resolve().then(() => start(request))
      : request.type === 'resign'
        ? resign(request.slot)
        : request.type === 'listen'
          ? listen()
          : request.type === 'listen-shared'
            ? listenShared()
            : request.type === 'usage'
              ? Promise.resolve().then(usage)
              : close();
  task.catch((error: unknown) => {
    send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  });
});
