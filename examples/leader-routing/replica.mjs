// One replica of a small service whose writes are applied by the leader only. Any replica
// accepts a write: the leader applies it, a follower forwards it to the leader it knows from its
// leader watch (the endpoint the leader advertises), with the epoch it routed to in a header.
// The leader refuses a request whose epoch is not its own term's (HTTP 421 Misdirected
// Request), and the forwarder retries on the newer leader, a bounded number of times. Every
// write carries an Idempotency-Key, so a retried write is never applied twice.
//
//   node examples/leader-routing/replica.mjs --url etcd://127.0.0.1:2379 --name replica-1
//
// run.mjs starts three of these (in this process on memory://, as processes otherwise) and
// sends them writes. The HTTP API:
//
//   POST /lists/<list>   body {"item": …}, header Idempotency-Key: <id>
//        appends the item to the list once per key → 200 {list, id, position, token, epoch,
//        appliedBy, duplicate}; 421 when a forwarded request's epoch is not the leader's;
//        503 when no leader answered in time (retry: the key makes it safe)
//   GET  /lists/<list>?consistency=follower|read-your-writes|quorum|leader[&token=T]
//        [&maxStalenessMs=ms]   the list's entries, read with that strategy (see README.md)
//   GET  /health                 this replica's view: role, epoch, leader
//
// The lists live in a @tenure/state replicated map of the election: the leader writes it
// (fenced by its term), every replica keeps a mirror of it.
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { NotLeaderError, openReplicatedMap, StaleReadError } from '@tenure/state';
import { connect, LeadershipLostError, LeaderTracker } from 'tenure';

/** The header carrying the epoch a forwarded request was routed to. */
export const EPOCH_HEADER = 'tenure-epoch';
/** The header carrying the write's idempotency key. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
const ELECTION = 'leader-routing';

/**
 * Starts one replica on `arbitrator`: an HTTP server on `host:port` (0: any free port) whose
 * URL it advertises as its election endpoint, and a candidacy in the election.
 * `report(type, fields)` hears what it does. Resolves once it listens and campaigns.
 */
export async function startReplica({
  arbitrator,
  name,
  host = '127.0.0.1',
  port = 0,
  forwardTimeoutMs = 10_000,
  maxForwards = 5,
  report = () => {},
}) {
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      report('error', { message: String(error?.message ?? error) });
      if (!res.headersSent) reply(res, 500, { error: 'internal', message: String(error) });
    });
  });
  server.keepAliveTimeout = 1_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const endpoint = `http://${host}:${server.address().port}`;
  const election = arbitrator.election(ELECTION, { value: name, endpoint });
  // The leader as this replica's leader watch last saw it: no request per lookup.
  const leader = new LeaderTracker(election);
  // The lists: written by the leader, fenced by its term; mirrored on every replica.
  const map = openReplicatedMap({ arbitrator, election, name: 'lists' });
  /** One read-modify-write at a time per list (the leader is the lists' only writer). */
  const locks = new Map();

  election.on('elected', (term) => report('leading', { epoch: String(term.epoch) }));
  election.on('ended', (term, reason) =>
    report('following', { epoch: String(term.epoch), reason }),
  );
  election.on('error', (error) => report('error', { code: error.code, message: error.message }));
  // campaign() stays in the queue across lost terms; it rejects only once the election closes.
  election.campaign().catch(() => {});
  report('listening', { endpoint });

  /** The current term while it is valid: this replica may act as leader. */
  function validTerm() {
    const term = election.term;
    return term?.isValid() ? term : undefined;
  }

  async function handle(req, res) {
    const url = new URL(req.url, endpoint);
    const list = /^\/lists\/([\w.-]{1,64})$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && url.pathname === '/health') {
      const term = validTerm();
      return reply(res, 200, {
        name,
        endpoint,
        role: term ? 'leader' : 'follower',
        epoch: term ? String(term.epoch) : null,
        leader: leader.leader ? describeLeader(leader.leader) : null,
      });
    }
    if (list === undefined) return reply(res, 404, { error: 'not found' });
    if (req.method === 'POST') return write(req, res, list, await body(req));
    if (req.method === 'GET') return read(req, res, list, url.searchParams);
    return reply(res, 405, { error: 'method not allowed' });
  }

  // ── Writes ──────────────────────────────────────────────────────────────────────────────
  async function write(req, res, list, text) {
    const id = req.headers[IDEMPOTENCY_HEADER];
    if (typeof id !== 'string' || !/^[\w.:-]{1,128}$/.test(id)) {
      return reply(res, 400, { error: `the ${IDEMPOTENCY_HEADER} header is required` });
    }
    let item;
    try {
      ({ item } = JSON.parse(text));
    } catch {
      return reply(res, 400, { error: 'the body must be JSON {"item": …}' });
    }
    const routedTo = req.headers[EPOCH_HEADER];
    if (routedTo !== undefined) {
      // Forwarded by a follower to the leader of epoch `routedTo`: only that term applies it.
      const term = validTerm();
      if (term === undefined || String(term.epoch) !== routedTo) {
        report('misdirected', { routedTo, epoch: term ? String(term.epoch) : null });
        return reply(res, 421, { error: 'misdirected', epoch: term ? String(term.epoch) : null });
      }
      const outcome = await applyOrExplain(term, list, id, item);
      return reply(res, outcome.status, outcome.body);
    }
    // From a client: apply it while leading, else forward it to the leader.
    let after;
    for (let attempt = 1; attempt <= maxForwards; attempt += 1) {
      const term = validTerm();
      if (term !== undefined) {
        const outcome = await applyOrExplain(term, list, id, item);
        // Our term ended under the write, which was then not applied: route it to the next.
        if (outcome.status !== 421) return reply(res, outcome.status, outcome.body);
        after = term.epoch;
        continue;
      }
      const target = await nextLeader(after);
      if (target === undefined) break;
      if (target.value === name) {
        // The watch says we lead, but our term has not begun (or has just ended): wait a little.
        await electedWithin(1_000);
        continue;
      }
      const answer = await forward(target, `/lists/${list}`, 'POST', text, {
        [IDEMPOTENCY_HEADER]: id,
      });
      if (answer !== undefined && answer.status !== 421) {
        report('forwarded', {
          to: target.value,
          epoch: String(target.epoch),
          status: answer.status,
        });
        return reply(res, answer.status, answer.body);
      }
      // 421 or no answer: that leader is gone or deposed; wait for a newer one.
      report('retrying', { after: String(target.epoch), status: answer?.status ?? 'no answer' });
      after = target.epoch;
    }
    return reply(res, 503, { error: 'no leader took the write in time: retry with the same key' });
  }

  /** Applies the write as leader; a 421 when the term ended first (the write was not applied). */
  async function applyOrExplain(term, list, id, item) {
    try {
      return { status: 200, body: await apply(term, list, id, item) };
    } catch (error) {
      if (error instanceof LeadershipLostError) {
        return { status: 421, body: { error: 'misdirected', epoch: null } };
      }
      // E.g. the arbitrator is unreachable: the write may or may not have been applied, and the
      // client's retry with the same key finds out which.
      return { status: 503, body: { error: 'unavailable', message: error.message } };
    }
  }

  /**
   * Appends `{id, item}` to `list` unless an entry with `id` is there already. The list is one
   * value of the replicated map, so the entry and its idempotency key are one write, fenced by
   * the term. The check reads with `leader` consistency: it reflects every write acknowledged
   * before it, by this leader or an earlier one (a deposed leader's late write is refused by the
   * fence, never applied). One read-modify-write at a time per list: the leader is its only writer.
   */
  function apply(term, list, id, item) {
    const previous = locks.get(list) ?? Promise.resolve();
    const run = previous.then(async () => {
      term.assertValid();
      const stored = await map.get(list, { consistency: 'leader' });
      const entries = stored.value === undefined ? [] : JSON.parse(stored.value);
      const result = (position, token, duplicate) => ({
        list,
        id,
        position,
        token: String(token),
        epoch: String(term.epoch),
        appliedBy: name,
        duplicate,
      });
      const found = entries.findIndex((entry) => entry.id === id);
      if (found >= 0) {
        report('duplicate', { list, id });
        return result(found, stored.token, true);
      }
      entries.push({ id, item, epoch: String(term.epoch) });
      const token = await map.set(list, JSON.stringify(entries));
      report('applied', { list, id, epoch: String(term.epoch) });
      return result(entries.length - 1, token, false);
    });
    locks.set(
      list,
      run.catch(() => {}),
    );
    return run;
  }

  // ── Reads ───────────────────────────────────────────────────────────────────────────────
  async function read(req, res, list, params) {
    const consistency = params.get('consistency') ?? 'leader';
    const token = params.get('token');
    const maxStalenessMs = params.get('maxStalenessMs');
    if (!['follower', 'read-your-writes', 'quorum', 'leader'].includes(consistency)) {
      return reply(res, 400, { error: `consistency=${consistency}: unknown` });
    }
    if (consistency === 'read-your-writes' && !/^\d+$/.test(token ?? '')) {
      return reply(res, 400, { error: "read-your-writes needs token=<the write's token>" });
    }
    const routedTo = req.headers[EPOCH_HEADER];
    if (consistency === 'leader' && routedTo !== undefined) {
      const term = validTerm();
      if (term === undefined || String(term.epoch) !== routedTo) {
        return reply(res, 421, { error: 'misdirected' });
      }
    }
    try {
      const answer = await map.get(list, {
        consistency,
        ...(consistency === 'read-your-writes' ? { token: BigInt(token) } : {}),
        ...(maxStalenessMs === null ? {} : { maxStalenessMs: Number(maxStalenessMs) }),
      });
      return reply(res, 200, {
        list,
        entries: answer.value === undefined ? [] : JSON.parse(answer.value),
        token: String(answer.token),
        consistency: answer.consistency,
        stalenessMs: Number.isFinite(answer.stalenessMs) ? Math.round(answer.stalenessMs) : null,
        answeredBy: name,
      });
    } catch (error) {
      if (error instanceof StaleReadError) {
        return reply(res, 503, { error: 'stale', stalenessMs: Math.round(error.stalenessMs) });
      }
      if (!(error instanceof NotLeaderError) || routedTo !== undefined) {
        if (error instanceof NotLeaderError) return reply(res, 421, { error: 'misdirected' });
        return reply(res, 503, { error: 'unavailable', message: error.message });
      }
    }
    // A leader read on a follower: forward it to the leader, like a write.
    let after;
    for (let attempt = 1; attempt <= maxForwards; attempt += 1) {
      const target = await nextLeader(after);
      if (target === undefined) break;
      if (target.value === name) {
        await electedWithin(1_000);
        continue;
      }
      const answer = await forward(target, `/lists/${list}?consistency=leader`, 'GET');
      if (answer !== undefined && answer.status !== 421) {
        return reply(res, answer.status, answer.body);
      }
      after = target.epoch;
    }
    return reply(res, 503, { error: 'no leader answered in time' });
  }

  /** Resolves at the next `elected` of this replica, or after `ms`. */
  function electedWithin(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        election.off('elected', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      election.once('elected', done);
    });
  }

  // ── Routing ─────────────────────────────────────────────────────────────────────────────
  /** The leader to route to: the one known now, or the next newer than `after` (bounded). */
  async function nextLeader(after) {
    const known = leader.leader;
    if (known !== undefined && (after === undefined || known.epoch > after)) return known;
    try {
      return await leader.next({ after, signal: AbortSignal.timeout(forwardTimeoutMs) });
    } catch {
      return undefined;
    }
  }

  /** Sends the request to `target`'s endpoint with the epoch it was routed to; no answer → undefined. */
  async function forward(target, path, method, text, headers = {}) {
    if (target.endpoint === undefined) return undefined;
    try {
      const response = await fetch(new URL(path, target.endpoint), {
        method,
        headers: {
          ...headers,
          [EPOCH_HEADER]: String(target.epoch),
          ...(text === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: text,
        signal: AbortSignal.timeout(forwardTimeoutMs),
      });
      return { status: response.status, body: await response.json() };
    } catch {
      return undefined;
    }
  }

  let closing;
  return {
    name,
    endpoint,
    election,
    arbitrator,
    map,
    /** Stops serving and leaves the election (hands over at once). Idempotent. */
    close() {
      closing ??= (async () => {
        leader.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await map.close();
        await election.close();
      })();
      return closing;
    },
    /** Stops answering at once, as a crashed process would, without leaving the election. */
    crash() {
      server.closeAllConnections();
      server.close();
    },
  };
}

function describeLeader(info) {
  return { value: info.value, epoch: String(info.epoch), endpoint: info.endpoint ?? null };
}

function body(req) {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

function reply(res, status, payload) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(payload));
}

// ── As a process of its own ─────────────────────────────────────────────────────────────────
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      name: { type: 'string', default: `replica-${process.pid}` },
      port: { type: 'string', default: '0' },
      tied: { type: 'boolean', default: false },
    },
  });
  // Started by run.mjs: exit with it (its end closes our stdin), whichever way it ends.
  if (values.tied) process.stdin.on('close', () => process.exit(1)).resume();
  if (values.url === undefined) {
    console.error(
      'usage: node replica.mjs --url <etcd://… | zk://…> [--name replica-1] [--port 0]',
    );
    process.exit(2);
  }
  const report = (type, fields = {}) =>
    console.log(JSON.stringify({ type, name: values.name, pid: process.pid, ...fields }));
  const arbitrator = await connect(values.url);
  arbitrator.on('error', (error) => report('error', { code: error.code, message: error.message }));
  const replica = await startReplica({
    arbitrator,
    name: values.name,
    port: Number(values.port),
    report,
  });
  const stop = async () => {
    await replica.close();
    await arbitrator.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
