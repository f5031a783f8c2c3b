// examples/metrics-server.mjs as an operator runs it: two replicas in their own processes on a
// real etcd, each serving /metrics and /healthz over HTTP. Scraping both shows leadership flip
// between them at each step-down, with larger epochs and the terms counted by end reason.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Arbitrator, Election } from '@tenure/core';
import { createEtcdArbitrator } from '@tenure/etcd';
import { type EtcdForTests, etcdForTests, Timing, waitFor } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseSamples,
  type Sample,
  sampleValue,
} from '../packages/prometheus/test/prometheus-text.js';

const root = join(import.meta.dirname, '..');
const TTL = 2_000;
const timing = new Timing(TTL);
const ELECTION = 'metrics-demo';

interface Replica {
  readonly name: string;
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: string[];
}

async function startReplica(arbitratorUrl: string, name: string): Promise<Replica> {
  const child = spawn(
    process.execPath,
    [
      join(root, 'examples', 'metrics-server.mjs'),
      '--url',
      arbitratorUrl,
      '--name',
      name,
      '--port',
      '0',
      '--log',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start:\n${output.join('')}`)),
      timing.handoverMs,
    );
    lines.on('line', (line) => {
      output.push(`${line}\n`);
      const match = / serving (http:\/\/\S+)\/metrics$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${output.join('')}`));
    });
  });
  return { name, child, url, output };
}

async function scrape(replica: Replica): Promise<Sample[]> {
  const response = await fetch(`${replica.url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return parseSamples(await response.text());
}

/** The replica's state in the election, from its `tenure_election_state` series. */
async function electionState(replica: Replica): Promise<string | undefined> {
  const samples = await scrape(replica);
  return samples.find(
    (s) => s.name === 'tenure_election_state' && s.labels.election === ELECTION && s.value === 1,
  )?.labels.state;
}

/**
 * Scrapes both replicas until one reports leading and the other waiting in the queue (a
 * replica still connecting reports `idle`); returns the leader and the follower.
 */
async function leaderAndFollower(replicas: Replica[]): Promise<[Replica, Replica]> {
  return waitFor(
    async () => {
      const states = await Promise.all(replicas.map(electionState));
      const leader = replicas[states.indexOf('leading')];
      const follower = replicas[states.indexOf('campaigning')];
      return leader && follower ? ([leader, follower] as [Replica, Replica]) : undefined;
    },
    { timeoutMs: timing.handoverMs, intervalMs: 50, what: 'a leader and a follower' },
  );
}

function stopReplica(replica: Replica): Promise<void> {
  if (replica.child.exitCode !== null || replica.child.signalCode !== null)
    return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => replica.child.kill('SIGKILL'), timing.handoverMs);
    replica.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    replica.child.kill('SIGTERM');
  });
}

describe('examples/metrics-server.mjs: /metrics over HTTP on two replicas', () => {
  let etcd: EtcdForTests;
  /** Reads the queue from the test process, to know both replicas are in it. */
  let observer: Arbitrator;
  let queue: Election;
  const replicas: Replica[] = [];
  const bothQueued = () =>
    waitFor(async () => (await queue.candidates()).length === 2, {
      timeoutMs: timing.handoverMs,
      intervalMs: 50,
      what: 'both replicas in the queue',
    });

  beforeAll(async () => {
    for (const dist of ['packages/tenure/dist/index.js', 'packages/prometheus/dist/index.js']) {
      if (!existsSync(join(root, dist))) {
        throw new Error(`${dist} is missing: build first with "npx tsc -b" (npm test builds)`);
      }
    }
    etcd = await etcdForTests();
    const endpoint = new URL(etcd.endpoints[0]!);
    const prefix = `tenure-metrics-${randomBytes(4).toString('hex')}`;
    const arbitratorUrl = `etcd://${endpoint.host}/${prefix}?ttl=2s`;
    observer = createEtcdArbitrator({
      endpoints: etcd.endpoints,
      namespace: `${prefix}/`,
      ttlMs: TTL,
    });
    queue = observer.election(ELECTION); // never campaigns: it only reads the candidates
    replicas.push(await startReplica(arbitratorUrl, 'replica-1'));
    replicas.push(await startReplica(arbitratorUrl, 'replica-2'));
  });

  afterAll(async () => {
    await Promise.all(replicas.map(stopReplica));
    await observer?.close();
    await etcd?.stop();
  });

  it('leadership flips at each step-down, with a larger epoch each time', async () => {
    let [leader, follower] = await leaderAndFollower(replicas);
    const epochs: number[] = [];
    const epochOf = async (replica: Replica) =>
      sampleValue(await scrape(replica), 'tenure_election_epoch', { election: ELECTION });
    epochs.push((await epochOf(leader))!);

    for (let flip = 1; flip <= 2; flip += 1) {
      // A replica still joining is not in the queue yet: the leader would lead again.
      await bothQueued();
      const response = await fetch(`${leader.url}/step-down`, { method: 'POST' });
      expect(response.status, leader.output.join('')).toBe(200);
      const [next, previous] = await leaderAndFollower(replicas);
      expect(next.name, `flip ${flip}`).toBe(follower.name);
      expect(previous.name).toBe(leader.name);
      const leaderFlag = async (replica: Replica) =>
        sampleValue(await scrape(replica), 'tenure_election_leader', { election: ELECTION });
      expect(await leaderFlag(next)).toBe(1);
      expect(await leaderFlag(previous)).toBe(0);
      epochs.push((await epochOf(next))!);
      const samples = await scrape(previous);
      expect(
        sampleValue(samples, 'tenure_election_terms_ended_total', {
          election: ELECTION,
          reason: 'resigned',
        }),
      ).toBeGreaterThanOrEqual(1);
      expect(
        sampleValue(samples, 'tenure_election_state', { election: ELECTION, state: 'campaigning' }),
      ).toBe(1);
      [leader, follower] = [next, previous];
    }
    expect(epochs[1]).toBeGreaterThan(epochs[0]!);
    expect(epochs[2]).toBeGreaterThan(epochs[1]!);
    // A follower's step-down is refused.
    expect((await fetch(`${follower.url}/step-down`, { method: 'POST' })).status).toBe(409);

    // --log passes a logger to connect(): JSON lines with the election, epoch and key.
    const logged = (replica: Replica) =>
      replica.output
        .join('')
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    const started = await waitFor(
      () => {
        const found = replicas.flatMap(logged).filter((l) => l.msg === 'elected: term started');
        return found.length >= 3 ? found : undefined;
      },
      { timeoutMs: timing.handoverMs, what: 'three "elected" log lines' },
    );
    for (const line of started) {
      expect(line).toMatchObject({ level: 'info', arbitrator: 'etcd', election: ELECTION });
      expect(String(line.key)).toContain(`${ELECTION}/`);
    }
    const loggedEpochs = started.map((l) => Number(l.epoch));
    for (const epoch of epochs) expect(loggedEpochs).toContain(epoch);
    // Both resigns, once the children's stderr has reached us.
    await waitFor(
      () => replicas.flatMap(logged).filter((l) => l.msg === 'term ended: resigned').length === 2,
      { timeoutMs: timing.handoverMs, what: 'two "term ended: resigned" log lines' },
    );
  });

  it('both replicas are ready on /healthz, with the session and the election state', async () => {
    for (const replica of replicas) {
      const response = await fetch(`${replica.url}/healthz`);
      expect(response.status).toBe(200);
      const health = (await response.json()) as {
        ready: boolean;
        arbitrator: string;
        session: { state: string; ttlMs: number };
        elections: { name: string; state: string }[];
      };
      expect(health).toMatchObject({
        ready: true,
        arbitrator: 'etcd',
        session: { state: 'live', ttlMs: TTL },
      });
      expect(health.elections.map((e) => e.name)).toEqual([ELECTION]);
    }
  });

  it('the leader runs the cron job; its runs and lateness are scraped', async () => {
    const [leader] = await leaderAndFollower(replicas);
    const samples = await waitFor(
      async () => {
        const found = await scrape(leader);
        const runs = sampleValue(found, 'tenure_cron_runs_total', {
          job: 'heartbeat',
          outcome: 'success',
        });
        const renewals = sampleValue(found, 'tenure_session_renewal_duration_seconds_count');
        return (runs ?? 0) >= 1 && (renewals ?? 0) >= 1 ? found : undefined;
      },
      {
        timeoutMs: timing.scale(10_000),
        intervalMs: 100,
        what: 'a heartbeat run and a renewal counted',
      },
    );
    const lateness = samples.filter(
      (s) => s.name === 'tenure_cron_lateness_seconds_count' && s.labels.job === 'heartbeat',
    );
    expect(lateness.length).toBeGreaterThan(0);
    expect(sampleValue(samples, 'tenure_session_renewal_duration_seconds_count')).toBeGreaterThan(
      0,
    );
  });
});
