// The Curator LeaderLatch participant that the ZooKeeper interop tests drive, checked against a
// real ZooKeeper: the latch behaves as Curator documents, and the znodes it writes have the
// layout tenure must share (DESIGN.md, "Interoperability"): ephemeral sequential children
// `<root>/<election>/_c_<uuid>-latch-<10 digits>` whose data is the participant id. The znodes
// are read with node-zookeeper-client, so the check does not rely on Curator reading itself.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { monotonicNow, startZooKeeper, Timing, waitFor, type ZooKeeperNode } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CuratorParticipant,
  compileCuratorParticipant,
  isEvent,
  startCuratorParticipant,
} from './curator-participant.js';

const SESSION_TIMEOUT_MS = 4_000;
const timing = new Timing(SESSION_TIMEOUT_MS);
const CURATOR_NODE =
  /^_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-latch-\d{10}$/;

const isLeader = isEvent('isLeader');

describe('Curator LeaderLatch participant (Debian: Curator 5.4.0, ZooKeeper 3.8.0)', () => {
  let zk: ZooKeeperNode;

  beforeAll(async () => {
    // Both at once: javac and the server's JVM start in parallel. The server deletes empty
    // container znodes every 500 ms (its default is a minute), so the test sees Curator's go.
    [zk] = await Promise.all([
      startZooKeeper({ jvmArgs: ['-Dznode.container.checkIntervalMs=500'] }),
      compileCuratorParticipant(),
    ]);
  });

  afterAll(async () => {
    await zk?.stop();
  });

  it('leads, is seen as leader by a second participant, hands over on close, in Curator’s layout', async () => {
    const path = '/tenure/curator-two-participants';
    const options = { connectString: zk.connectString, path, sessionTimeoutMs: SESSION_TIMEOUT_MS };
    const first = await startCuratorParticipant({ ...options, id: 'curator-first' });
    let second: CuratorParticipant | undefined;
    const zookeeper = await connectReader(zk.connectString);
    try {
      const firstLeads = await first.next(isLeader, {
        timeoutMs: timing.handoverMs,
        what: 'isLeader',
      });
      expect(firstLeads.path.startsWith(`${path}/`)).toBe(true);
      expect(firstLeads.path.slice(path.length + 1)).toMatch(CURATOR_NODE);
      console.log(
        `[curator] JVM spawn → started: ${first.startupMs.toFixed(0)} ms; ` +
          `→ isLeader: ${(firstLeads.t - first.events[0]!.t + first.startupMs).toFixed(0)} ms`,
      );

      second = await startCuratorParticipant({ ...options, id: 'curator-second' });
      const s = second;
      // The second sees the first as leader once its own znode is in the queue.
      const seen = await waitFor(
        async () => {
          const status = await s.command('status');
          return status.participants.length === 2 ? status : undefined;
        },
        {
          timeoutMs: timing.handoverMs,
          intervalMs: 50,
          what: 'the second participant to join the queue',
        },
      );
      expect(seen).toMatchObject({
        hasLeadership: false,
        leaderId: 'curator-first',
        participants: ['curator-first', 'curator-second'],
      });
      expect(seen.ourPath?.slice(path.length + 1)).toMatch(CURATOR_NODE);
      expect(await first.command('status')).toMatchObject({
        hasLeadership: true,
        ourPath: firstLeads.path,
        leaderId: 'curator-first',
      });

      // The znodes, read without Curator: two ephemeral sequential children whose data is the
      // participant id, in sequence order, owned by two sessions.
      const children = await zookeeper.children(path);
      expect(children).toHaveLength(2);
      const bySequence = [...children].sort((a, b) => sequence(a) - sequence(b));
      expect(bySequence.map((name) => `${path}/${name}`)).toEqual([firstLeads.path, seen.ourPath]);
      const nodes = await Promise.all(bySequence.map((name) => zookeeper.data(`${path}/${name}`)));
      expect(nodes.map((n) => n.data)).toEqual(['curator-first', 'curator-second']);
      for (const name of bySequence) expect(name).toMatch(CURATOR_NODE);
      const owners = nodes.map((n) => n.ephemeralOwner);
      expect(owners.every((o) => o !== 0n)).toBe(true);
      expect(new Set(owners).size).toBe(2);
      // The parents look persistent to a client (a container's stat shows ephemeralOwner 0)…
      expect((await zookeeper.data(path)).ephemeralOwner).toBe(0n);

      // Closing the leader's latch (NOTIFY_LEADER) deletes its znode; the second leads.
      await first.close();
      expect(first.events.map((e) => e.type).slice(-2)).toEqual(['notLeader', 'closed']);
      const secondLeads = await second.next(isLeader, {
        timeoutMs: timing.handoverMs,
        what: 'isLeader after the first closed',
      });
      expect(secondLeads.path).toBe(seen.ourPath);
      expect(await zookeeper.children(path)).toEqual([secondLeads.path.slice(path.length + 1)]);
      expect(await second.command('status')).toMatchObject({
        hasLeadership: true,
        leaderId: 'curator-second',
        participants: ['curator-second'],
      });
      await Promise.all([first.exit(), second.exit()]);
      expect(first.exitStatus).toEqual({ code: 0, signal: null });
      expect(second.exitStatus).toEqual({ code: 0, signal: null });

      // …but they are containers (creatingParentContainersIfNeeded): once the last participant
      // has gone, ZooKeeper deletes the election znode, then its empty parent.
      await waitFor(
        async () => !(await zookeeper.exists(path)) && !(await zookeeper.exists('/tenure')),
        {
          timeoutMs: timing.handoverMs,
          intervalMs: 100,
          what: `ZooKeeper to delete the empty containers ${path} and /tenure`,
        },
      );
    } finally {
      zookeeper.close();
      await Promise.all([first.exit(), second?.exit()]);
    }
  });

  it('keeps a killed leader’s znode until its session expires, then hands over', async () => {
    const path = '/tenure/curator-crash';
    const sessionTimeoutMs = 2_000;
    const crash = new Timing(sessionTimeoutMs);
    const options = { connectString: zk.connectString, path, sessionTimeoutMs };
    const first = await startCuratorParticipant({ ...options, id: 'crash-first' });
    let second: CuratorParticipant | undefined;
    const zookeeper = await connectReader(zk.connectString);
    try {
      const firstLeads = await first.next(isLeader, {
        timeoutMs: crash.handoverMs,
        what: 'isLeader',
      });
      second = await startCuratorParticipant({ ...options, id: 'crash-second' });
      const s = second;
      await waitFor(async () => (await s.command('status')).participants.length === 2, {
        timeoutMs: crash.handoverMs,
        intervalMs: 50,
        what: 'the second participant to join the queue',
      });

      const killedAt = monotonicNow();
      await first.kill();
      expect(first.exitStatus).toEqual({ code: null, signal: 'SIGKILL' });
      // Nothing deleted the znode: it goes with the session, which the server expires later.
      expect(await zookeeper.exists(firstLeads.path)).toBe(true);
      expect(await second.command('status')).toMatchObject({
        hasLeadership: false,
        leaderId: 'crash-first',
      });

      const secondLeads = await second.next(isLeader, {
        timeoutMs: crash.expiryMs,
        what: 'isLeader once the killed leader’s session expired',
      });
      expect(await zookeeper.exists(firstLeads.path)).toBe(false);
      expect(await zookeeper.children(path)).toEqual([secondLeads.path.slice(path.length + 1)]);
      console.log(
        `[curator] SIGKILL of the leader → the next isLeader: ${(secondLeads.t - killedAt).toFixed(0)} ms ` +
          `(session timeout ${sessionTimeoutMs} ms, tickTime 200 ms)`,
      );
    } finally {
      zookeeper.close();
      await Promise.all([first.exit(), second?.exit()]);
    }
  });

  // CURATOR-724, fixed in 5.8.0: on RECONNECTED a latch only re-reads the children of its
  // election znode, and gives up when that znode is gone, so it never creates a new one. The
  // election znode is a container, which the server deletes once empty: a lone participant whose
  // session expired stays out of its election for good (until its process restarts).
  it('after a session expiry that emptied its election, rejoins only from Curator 5.8.0 on', async () => {
    const path = '/tenure/curator-expiry';
    const sessionTimeoutMs = 1_000;
    const expiry = new Timing(sessionTimeoutMs);
    const participant = await startCuratorParticipant({
      connectString: zk.connectString,
      path,
      id: 'lonely',
      sessionTimeoutMs,
    });
    const zookeeper = await connectReader(zk.connectString);
    try {
      const led = await participant.next(isLeader, {
        timeoutMs: expiry.handoverMs,
        what: 'isLeader',
      });
      await participant.pause();
      // The session expires, its znode goes, and then the empty container (500 ms checks).
      await waitFor(async () => !(await zookeeper.exists(path)), {
        timeoutMs: expiry.expiryMs,
        intervalMs: 100,
        what: `ZooKeeper to expire the paused participant and delete ${path}`,
      });
      participant.resume();
      await participant.next((e) => e.type === 'state' && e.state === 'LOST', {
        timeoutMs: expiry.expiryMs,
        what: 'LOST after the resume',
      });
      await participant.next((e) => e.type === 'state' && e.state === 'RECONNECTED', {
        timeoutMs: expiry.expiryMs,
        what: 'RECONNECTED with a new session',
      });
      expect(participant.events.filter(isEvent('notLeader'))).toHaveLength(1);

      const version = (participant.curatorVersion ?? '0').split('.').map(Number);
      const fixed = (version[0] ?? 0) > 5 || (version[0] === 5 && (version[1] ?? 0) >= 8);
      if (fixed) {
        const again = await participant.next(isLeader, {
          timeoutMs: expiry.handoverMs,
          what: 'isLeader with a new znode',
        });
        expect(again.path).not.toBe(led.path);
      } else {
        // Nothing to wait for: give the latch a handover bound to (not) act, then look.
        await new Promise((resolve) => setTimeout(resolve, expiry.handoverMs));
        expect(participant.events.filter(isLeader)).toHaveLength(1);
        expect(await zookeeper.exists(path)).toBe(false);
        expect(await participant.command('status')).toMatchObject({
          hasLeadership: false,
          ourPath: led.path, // stale: that znode went with the old session
          participants: [],
        });
      }
    } finally {
      zookeeper.close();
      await participant.exit();
    }
  });
});

function sequence(name: string): number {
  return Number(name.slice(-10));
}

/** The slice of node-zookeeper-client 1.1.3 these tests use (it ships no types). */
interface ZkStat {
  readonly ephemeralOwner: Buffer;
}
interface ZkClient {
  connect(): void;
  close(): void;
  once(event: 'connected', listener: () => void): void;
  exists(path: string, callback: (error: Error | null, stat: ZkStat | null) => void): void;
  getChildren(path: string, callback: (error: Error | null, children: string[]) => void): void;
  getData(
    path: string,
    callback: (error: Error | null, data: Buffer | undefined, stat: ZkStat) => void,
  ): void;
}
interface ZkModule {
  createClient(
    connectString: string,
    options: { sessionTimeout: number; retries: number },
  ): ZkClient;
}

interface ZnodeReader {
  exists(path: string): Promise<boolean>;
  children(path: string): Promise<string[]>;
  data(path: string): Promise<{ data: string; ephemeralOwner: bigint }>;
  close(): void;
}

/**
 * A plain ZooKeeper client (node-zookeeper-client, a dev dependency of the testkit, resolved from
 * there) that only reads.
 */
async function connectReader(connectString: string): Promise<ZnodeReader> {
  const require = createRequire(
    join(import.meta.dirname, '..', '..', 'packages', 'testkit', 'package.json'),
  );
  const zookeeper = require('node-zookeeper-client') as ZkModule;
  const client = zookeeper.createClient(connectString, {
    sessionTimeout: SESSION_TIMEOUT_MS,
    retries: 2,
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`node-zookeeper-client did not connect to ${connectString}`));
    }, timing.handoverMs);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect();
  });
  return {
    exists: (path) =>
      new Promise((resolve, reject) =>
        client.exists(path, (error, stat) => (error ? reject(error) : resolve(stat !== null))),
      ),
    children: (path) =>
      new Promise((resolve, reject) =>
        client.getChildren(path, (error, children) => (error ? reject(error) : resolve(children))),
      ),
    data: (path) =>
      new Promise((resolve, reject) =>
        client.getData(path, (error, data, stat) =>
          error
            ? reject(error)
            : resolve({
                data: data?.toString('utf8') ?? '',
                ephemeralOwner: stat.ephemeralOwner.readBigUInt64BE(0),
              }),
        ),
      ),
    close: () => client.close(),
  };
}
