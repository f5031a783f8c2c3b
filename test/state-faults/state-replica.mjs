// One replica of a @tenure/state map in its own process, for test/state-faults. It runs the
// *built* packages (packages/*/dist), as a user's service would.
//
//   node test/state-faults/state-replica.mjs --backend etcd|zookeeper \
//     --endpoints URL[,URL…]|host:port[,…] --ttl 2000 --election e --map m --holder a \
//     [--lanes 4] [--check 100]
//
// It campaigns at once and stays in the queue. While it leads, `lanes` writers each set a fresh
// key `w-<holder>-<lane>-<n>` to `<holder>-<lane>-<n>` in turn (one write in flight per lane, so
// concurrent lanes share batches) until the term ends.
//
// stdout: one JSON object per line, each with `type`, `t` (ms on the machine's monotonic clock,
// comparable across its processes) and `holder`:
//   started {pid} · elected {epoch, key} · ended {epoch, reason}
//   ack {key, value, token}: the write was acknowledged (`t` taken after the acknowledgement)
//   refused {key, code}: the write was refused (LEADERSHIP_LOST: never applied)
//   error {code, message} · reply {id, ok, …} · closed · fatal {message}
// stdin: `<id> get <key> <consistency> [token]` → {value, token, stalenessMs, consistency}
//        `<id> status` → {at, token, stalenessMs, leading}
//        `<id> get-bounded <key> <maxStalenessMs>`: a follower read with that bound
//        `<id> stale-write <key> <value>`: writes straight through the state SPI, fenced by
//          the term this replica held last (valid or not), as a leader paused past its term
//          would send it → {token} or the refusal
//        `<id> entries` → {entries, token} (a quorum read) · `<id> exit`

import { parseArgs } from 'node:util';
import {
  dist,
  errorFields,
  eventWriter,
  reportFatal,
  requireBuilt,
  serveCommands,
} from '../fixtures/fixture-process.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'etcd' },
    endpoints: { type: 'string' },
    ttl: { type: 'string', default: '2000' },
    election: { type: 'string', default: 'state' },
    map: { type: 'string', default: 'm' },
    holder: { type: 'string' },
    lanes: { type: 'string', default: '4' },
    check: { type: 'string', default: '100' },
  },
});
if (!args.endpoints || !args.holder || !['etcd', 'zookeeper'].includes(args.backend)) {
  process.stderr.write('state-replica: --backend etcd|zookeeper, --endpoints, --holder required\n');
  process.exit(2);
}
requireBuilt('state-replica', ['core', args.backend, 'state', 'testkit']);
const { monotonicNow } = await import(dist('testkit').href);
const { stateBackendOf } = await import(dist('core').href);
const { openReplicatedMap } = await import(dist('state').href);
const emit = eventWriter(args.holder, monotonicNow);
reportFatal(emit);

let arbitrator;
if (args.backend === 'etcd') {
  const { createEtcdArbitrator } = await import(dist('etcd').href);
  arbitrator = createEtcdArbitrator({
    endpoints: args.endpoints.split(','),
    ttlMs: Number(args.ttl),
  });
} else {
  const { createZooKeeperArbitrator } = await import(dist('zookeeper').href);
  arbitrator = createZooKeeperArbitrator({ connect: args.endpoints, ttlMs: Number(args.ttl) });
}
arbitrator.on('error', () => {}); // retried
const election = arbitrator.election(args.election, { value: args.holder });
election.on('error', () => {});
const map = openReplicatedMap({
  arbitrator,
  election,
  name: args.map,
  currencyCheckMs: Number(args.check),
});
map.on('error', () => {});
let lastTerm;
let stopping = false;
/** The writer lanes running: `stop-writing` replies once they have all finished. */
const lanes = new Set();

async function lane(term, laneId) {
  let n = 0;
  while (!stopping && term.isValid()) {
    const key = `w-${args.holder}-${String(term.epoch)}-${laneId}-${n}`;
    const value = `${args.holder}-${laneId}-${n}`;
    n += 1;
    try {
      const token = await map.set(key, value);
      emit('ack', { key, value, token: String(token) });
    } catch (error) {
      emit('refused', { key, ...errorFields(error) });
    }
  }
}

election.on('elected', (term) => {
  lastTerm = term;
  emit('elected', { epoch: String(term.epoch), key: term.key });
  for (let i = 0; i < Number(args.lanes); i += 1) {
    const running = lane(term, i).finally(() => lanes.delete(running));
    lanes.add(running);
  }
});
election.on('ended', (term, reason) => emit('ended', { epoch: String(term.epoch), reason }));
election.campaign().catch(() => {});

let exiting;
const exit = () => {
  exiting ??= (async () => {
    stopping = true;
    await map.close();
    await arbitrator.close();
    emit('closed');
    process.exit(0);
  })();
  return exiting;
};
serveCommands(
  emit,
  async (command, rest) => {
    switch (command) {
      case 'get': {
        const [key, consistency, token] = rest;
        const read = await map.get(key, {
          consistency,
          ...(token ? { token: BigInt(token) } : {}),
        });
        return {
          value: read.value ?? null,
          token: String(read.token),
          stalenessMs: Number.isFinite(read.stalenessMs) ? read.stalenessMs : null,
          consistency: read.consistency,
        };
      }
      case 'status': {
        // `at` before the staleness is taken: the staleness, taken later, is at least as large.
        const at = monotonicNow();
        const staleness = map.stalenessMs();
        return {
          at,
          token: map.token === undefined ? null : String(map.token),
          stalenessMs: Number.isFinite(staleness) ? staleness : null,
          leading: election.term?.isValid() ?? false,
        };
      }
      case 'get-bounded': {
        const [key, maxStalenessMs] = rest;
        const read = await map.get(key, { maxStalenessMs: Number(maxStalenessMs) });
        return { value: read.value ?? null, stalenessMs: read.stalenessMs };
      }
      case 'stale-write': {
        const [key, value] = rest;
        if (!lastTerm) throw Object.assign(new Error('never led'), { code: 'NEVER_LED' });
        const backend = stateBackendOf(arbitrator, args.election, args.map);
        const token = await backend.write({ key: lastTerm.key, epoch: lastTerm.epoch }, [
          { op: 'put', key, value },
        ]);
        return { token: String(token) };
      }
      case 'entries': {
        const read = await map.entries({ consistency: 'quorum' });
        return { entries: Object.fromEntries(read.entries), token: String(read.token) };
      }
      case 'head': {
        const backend = stateBackendOf(arbitrator, args.election, args.map);
        return { token: String(await backend.head()) };
      }
      case 'stop-writing':
        // Every write in flight settles (and is reported) before the reply.
        stopping = true;
        await Promise.all([...lanes]);
        return {};
      default:
        throw Object.assign(new Error(`unknown command ${command}`), { code: 'BAD_COMMAND' });
    }
  },
  exit,
);
emit('started', { pid: process.pid });
