// The periodic consistency check on ZooKeeper (issue 12: 1,000 elections on one session at
// ≤ 2 % of a core): the elections' checks fall due together and are answered for all of them
// at once, with one request listing the session's own nodes, and `exists` only for the nodes
// that list does not hold. Requests are counted on the wire (./request-relay.ts) or where the
// client queues them.
import { randomBytes } from 'node:crypto';
import { startZooKeeper, Timing, waitFor, type ZooKeeperNode } from '@tenure/testkit';
import { createZooKeeperArbitrator, type ZooKeeperArbitrator } from '@tenure/zookeeper';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { longToBigInt, type ZkStat, zk } from '../src/zk-client.js';
import { ZkConnection } from '../src/zk-connection.js';
import { ZkPresence } from '../src/zk-presence.js';
import { Op, type RequestRelay, startRequestRelay } from './request-relay.js';

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
/** ZooKeeper's create mode of a plain ephemeral node. */
const EPHEMERAL = 1;
const ACL = [new zk.ACL(zk.Permission.ALL, new zk.Id('world', 'anyone'))];

let server: ZooKeeperNode;
let relay: RequestRelay;
const opened: Array<ZooKeeperArbitrator | ZkConnection> = [];

beforeAll(async () => {
  server = await startZooKeeper();
  const [host, port] = server.connectString.split(':');
  relay = await startRequestRelay(host ?? '127.0.0.1', Number(port));
}, 60_000);

afterEach(async () => {
  await Promise.all(
    opened.splice(0).map((o) => (o instanceof ZkConnection ? o.close(5_000) : o.close())),
  );
});

afterAll(async () => {
  await relay?.close();
  await server?.stop();
});

async function connection(): Promise<ZkConnection> {
  const conn = new ZkConnection({ connectString: server.connectString, sessionTimeoutMs: 10_000 });
  opened.push(conn);
  await conn.open(timing.handoverMs);
  return conn;
}

async function create(conn: ZkConnection, path: string, mode: number): Promise<bigint> {
  await conn.request<[string]>('create', 5_000, (cb) =>
    conn.client.create(path, Buffer.alloc(0), ACL, mode, cb),
  );
  const [stat] = await conn.request<[ZkStat | null]>('exists', 5_000, (cb) =>
    conn.client.exists(path, undefined, cb),
  );
  if (!stat) throw new Error(`${path} is gone`);
  return longToBigInt(stat.czxid);
}

/** Counts the requests `conn`'s client queues, by opcode (as serialized). */
function countRequests(conn: ZkConnection): Map<number, number> {
  const counts = new Map<number, number>();
  const manager = conn.client.connectionManager;
  if (!manager) throw new Error('no connection manager');
  const queue = manager.queue.bind(manager);
  manager.queue = (request, callback) => {
    const type = (request as { header?: { type?: number } }).header?.type ?? -1;
    counts.set(type, (counts.get(type) ?? 0) + 1);
    queue(request, callback);
  };
  return counts;
}

describe('ZooKeeper presence checks', () => {
  it('answer 100 callers asking in one turn with one listing of the own nodes and one read of the others', async () => {
    const ours = await connection();
    const theirs = await connection();
    const root = `/presence-${randomBytes(3).toString('hex')}`;
    await create(ours, root, zk.CreateMode.PERSISTENT);
    const own: bigint[] = [];
    for (let i = 0; i < 100; i += 1) own.push(await create(ours, `${root}/own-${i}`, EPHEMERAL));
    const other: bigint[] = [];
    for (let i = 0; i < 5; i += 1) {
      other.push(await create(theirs, `${root}/other-${i}`, EPHEMERAL));
    }
    // A node nobody may read (exists needs no permission; getData needs READ).
    const unreadable = `${root}/unreadable`;
    await theirs.request<[string]>('create', 5_000, (cb) =>
      theirs.client.create(
        unreadable,
        Buffer.alloc(0),
        [new zk.ACL(zk.Permission.DELETE, new zk.Id('world', 'anyone'))],
        EPHEMERAL,
        cb,
      ),
    );
    // Another session deletes one of our nodes (whose deletion event a watch could have lost).
    await theirs.request<[]>('delete', 5_000, (cb) =>
      theirs.client.remove(`${root}/own-7`, -1, cb),
    );
    const counts = countRequests(ours);
    const presence = new ZkPresence({ connection: async () => ours, timeoutMs: () => 5_000 });
    const answers = await Promise.all(
      own.map((epoch, i) =>
        presence.present([
          { key: `${root}/own-${i}`, epoch },
          // Another session's node: by name alone, and (for caller 3) with a wrong czxid.
          i === 3
            ? { key: `${root}/other-${i % 5}`, epoch: (other[i % 5] as bigint) + 1n }
            : { key: `${root}/other-${i % 5}` },
          { key: `${root}/missing-${i}` },
          ...(i === 0 ? [{ key: unreadable }] : []),
        ]),
      ),
    );
    answers.forEach((answer, i) => {
      expect(answer, `caller ${i}`).toEqual([i !== 7, i !== 3, false, ...(i === 0 ? [true] : [])]);
    });
    // One listing, one multiRead of the 5 other nodes, 100 missing ones, our deleted node and
    // the unreadable one, and exists for the one node the read was refused.
    expect(Object.fromEntries(counts)).toEqual({
      [Op.getEphemerals]: 1,
      [Op.multiRead]: 1,
      [Op.exists]: 1,
    });
  });

  it('reports a node of the session gone once it is deleted, and nothing of an earlier session', async () => {
    const first = await connection();
    const root = `/presence-${randomBytes(3).toString('hex')}`;
    await create(first, root, zk.CreateMode.PERSISTENT);
    const key = { key: `${root}/node`, epoch: await create(first, `${root}/node`, EPHEMERAL) };
    let current = first;
    const presence = new ZkPresence({ connection: async () => current, timeoutMs: () => 5_000 });
    expect(await presence.present([key])).toEqual([true]);
    // A new session: the node it did not make is not its own, and is gone with the first one.
    current = await connection();
    const counts = countRequests(current);
    expect(await presence.present([key])).toEqual([true]); // the first session still lives
    expect(await presence.present([{ key: key.key, epoch: key.epoch + 1n }])).toEqual([false]);
    await first.close(5_000);
    expect(await presence.present([key])).toEqual([false]);
    expect(Object.fromEntries(counts)).toEqual({ [Op.getEphemerals]: 3, [Op.multiRead]: 3 });
  });

  /** The requests of the relay's clients between the 1st and the 4th heartbeat from `settled`. */
  async function betweenHeartbeats(settled: number): Promise<Record<number, number>> {
    // A heartbeat ends with a multi, and starts a renewal interval (a quarter of the session
    // timeout) after the last ended; the elections' checks fall due once per renewal interval.
    // From the end of one heartbeat to the end of the third after it, at least two rounds of
    // checks were due (the tests ask for one, so a tick delayed on a loaded machine is no
    // failure).
    const multis = () =>
      relay.requests.flatMap((op, i) => (i >= settled && op === Op.multi ? [i] : []));
    await waitFor(() => multis().length >= 4, {
      timeoutMs: timing.expiryMs,
      what: 'four heartbeats',
    });
    const [from, , , to] = multis() as [number, number, number, number];
    const heartbeat = new Set<number>([Op.sync, Op.multi, Op.ping]);
    const tally: Record<number, number> = {};
    for (const op of relay.requests.slice(from + 1, to)) {
      if (!heartbeat.has(op)) tally[op] = (tally[op] ?? 0) + 1;
    }
    return tally;
  }

  const sum = (tally: Record<number, number>) => Object.values(tally).reduce((a, b) => a + b, 0);

  function arbitrator(connect: string, root: string): ZooKeeperArbitrator {
    const opened_ = createZooKeeperArbitrator({ connect, sessionTimeoutMs: TTL_MS, root });
    opened_.on('error', () => {});
    opened.push(opened_);
    return opened_;
  }

  it('cost an arbitrator leading 60 elections no request per election between heartbeats', async () => {
    const ELECTIONS = 60;
    const leader = arbitrator(relay.endpoint, `/presence-${randomBytes(3).toString('hex')}`);
    const start = relay.requests.length;
    await Promise.all(
      Array.from({ length: ELECTIONS }, (_, i) => leader.election(`e${i}`).campaign()),
    );
    // Once each leader watches its own node, the arbitrator is in its steady state.
    await waitFor(
      () => relay.requests.slice(start).filter((op) => op === Op.getData).length >= ELECTIONS,
      { timeoutMs: timing.handoverMs, what: 'the leaders to watch their nodes' },
    );
    const tally = await betweenHeartbeats(relay.requests.length);
    console.log(`[zk presence] ${ELECTIONS} leaders, 3 heartbeats: ${JSON.stringify(tally)}`);
    expect(sum(tally), JSON.stringify(tally)).toBeLessThan(ELECTIONS);
    expect(tally[Op.getEphemerals] ?? 0).toBeGreaterThanOrEqual(1);
  });

  it('cost an arbitrator waiting in 60 elections no request per election between heartbeats', async () => {
    const ELECTIONS = 60;
    const root = `/presence-${randomBytes(3).toString('hex')}`;
    const leader = arbitrator(server.connectString, root);
    await Promise.all(
      Array.from({ length: ELECTIONS }, (_, i) => leader.election(`e${i}`).campaign()),
    );
    const waiting = arbitrator(relay.endpoint, root);
    const start = relay.requests.length;
    const elections = Array.from({ length: ELECTIONS }, (_, i) => waiting.election(`e${i}`));
    for (const election of elections) election.campaign().catch(() => {});
    // Once each candidate watches its predecessor (and its own node), the steady state.
    await waitFor(
      () => relay.requests.slice(start).filter((op) => op === Op.getData).length >= 2 * ELECTIONS,
      { timeoutMs: timing.handoverMs, what: 'the candidates to watch their predecessors' },
    );
    const tally = await betweenHeartbeats(relay.requests.length);
    console.log(
      `[zk presence] ${ELECTIONS} waiting candidates, 3 heartbeats: ${JSON.stringify(tally)}`,
    );
    expect(sum(tally), JSON.stringify(tally)).toBeLessThan(ELECTIONS);
    expect(tally[Op.multiRead] ?? 0).toBeGreaterThanOrEqual(1);
  });
});
