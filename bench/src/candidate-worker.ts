/**
 * One candidate process of the handover and failover benchmarks: one election participant,
 * driven over the IPC channel of `child_process.fork` (see `candidate-protocol.ts`).
 *
 * It uses each library as its users do: tenure with one arbitrator per process,
 * `arbitrator.election(name, { value })`, `campaign()` and the `elected` event, `resign()` then
 * `campaign()` to rejoin; the npm etcd3 package with one client, `election(name, ttl)`,
 * `campaign(value)` and its `elected` event, `campaign.resign()` then a new campaign.
 *
 * The etcd candidates also record their etcd requests and watch delete events
 * (`candidate-trace.ts`), so a handover can be split into its steps; the cost is a clock read
 * per request, and the record goes to the parent only after the `elected` timestamp.
 *
 * Started with its {@link CandidateConfig} as JSON in `argv[2]`. Exits when told to close or
 * when the parent goes (the IPC channel disconnects), after closing its client.
 */
import { createEtcdArbitrator } from '@tenure/etcd';
import { createZooKeeperArbitrator } from '@tenure/zookeeper';
import { type Campaign, Etcd3 } from 'etcd3';
import type {
  CandidateCommand,
  CandidateConfig,
  CandidateEvent,
  TracedRequest,
} from './candidate-protocol.js';
import { EtcdTrace } from './candidate-trace.js';

/** What the worker needs of one participant, whatever library backs it. */
interface Participant {
  /** Resolves once the client has answered one read (connected). */
  connect(): Promise<void>;
  /** Joins the queue; `elected` is sent when this candidate leads. */
  campaign(): void;
  /** Leaves the queue, handing over if leading. */
  resign(): Promise<void>;
  close(): Promise<void>;
}

const config = JSON.parse(process.argv[2] ?? '{}') as CandidateConfig;
const now = (): string => process.hrtime.bigint().toString();
const trace = config.kind === 'tenure-zookeeper' ? undefined : new EtcdTrace();
trace?.install();
let closing = false;

function send(event: CandidateEvent): void {
  if (process.connected) process.send?.(event);
}

function report(error: unknown): void {
  if (closing) return;
  send({ ev: 'error', message: error instanceof Error ? error.message : String(error) });
}

/** The trace part of an `elected` report (etcd kinds). */
function traced(): { trace?: { deleteEventAt: string; after: TracedRequest[] } } {
  const since = trace?.sinceLastDelete();
  return since
    ? { trace: { deleteEventAt: since.deleteEventAt.toString(), after: since.after } }
    : {};
}

function tenureParticipant(): Participant {
  const arbitrator =
    config.kind === 'tenure-etcd'
      ? createEtcdArbitrator({ endpoints: config.endpoint, ttlMs: config.ttlMs })
      : createZooKeeperArbitrator({ connect: config.endpoint, sessionTimeoutMs: config.ttlMs });
  arbitrator.on('error', report);
  const election = arbitrator.election(config.election, { value: config.value });
  // Every term, the first included (campaign() resolves with it just after this listener).
  election.on('elected', (term) => {
    const t = now();
    send({ ev: 'elected', t, ttlMs: arbitrator.ttlMs, epoch: term.epoch.toString(), ...traced() });
  });
  election.on('error', report);
  return {
    connect: async () => {
      await arbitrator.leader(config.election);
    },
    campaign: () => {
      election.campaign().catch(report);
    },
    resign: () => election.resign(),
    close: () => arbitrator.close(),
  };
}

function etcd3Participant(): Participant {
  const client = new Etcd3({ hosts: config.endpoint });
  const ttlSeconds = Math.max(1, Math.round(config.ttlMs / 1000));
  const election = client.election(config.election, ttlSeconds);
  let campaign: Campaign | undefined;
  return {
    connect: async () => {
      await client.get('bench/warm-up').string();
    },
    campaign: () => {
      const current = election.campaign(config.value);
      campaign = current;
      current.on('elected', () => {
        const t = now();
        send({ ev: 'elected', t, ttlMs: ttlSeconds * 1000, epoch: '', ...traced() });
      });
      current.on('error', report);
    },
    resign: async () => {
      const current = campaign;
      campaign = undefined;
      await current?.resign();
    },
    close: async () => {
      await campaign?.resign().catch(() => {});
      client.close();
    },
  };
}

const participant = config.kind === 'etcd3-election' ? etcd3Participant() : tenureParticipant();

let shutdown: Promise<void> | undefined;
function close(): Promise<void> {
  shutdown ??= (async () => {
    closing = true;
    // A close that hangs (servers already gone) must not keep the process.
    setTimeout(() => process.exit(0), 3000).unref();
    await participant.close().catch(() => {});
    if (process.connected) process.disconnect();
  })();
  return shutdown;
}

// Commands run one at a time, in order.
let chain: Promise<void> = Promise.resolve();
process.on('message', (command: CandidateCommand) => {
  chain = chain.then(async () => {
    if (closing) return;
    switch (command.op) {
      case 'campaign':
        participant.campaign();
        return;
      case 'resign': {
        const start = process.hrtime.bigint();
        await participant.resign();
        const t1 = now();
        const leaveRequest = trace?.leaveSince(start);
        send({
          ev: 'resigned',
          t0: start.toString(),
          t1,
          ...(leaveRequest ? { leaveRequest } : {}),
        });
        participant.campaign(); // rejoin at the back of the queue
        return;
      }
      case 'close':
        await close();
        return;
    }
  });
  chain = chain.catch(report);
});
process.on('disconnect', () => void close());

try {
  await participant.connect();
  send({ ev: 'ready', pid: process.pid });
} catch (error) {
  report(error);
  await close();
  process.exitCode = 1;
}
