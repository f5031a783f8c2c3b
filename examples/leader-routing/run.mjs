#!/usr/bin/env node
// Starts three replicas of examples/leader-routing/replica.mjs and sends them writes, each to a
// replica picked at random: followers forward them to the leader. Optionally kills the leader
// midway (kill -9 of its process; on memory://, its HTTP server stops and its session is left
// to expire, as a crash would), then reads every list back from the leader and checks that
// every acknowledged write is there exactly once.
//
//   node examples/leader-routing/run.mjs [--url memory://?ttl=2s | etcd://… | zk://…]
//                                        [--writes 200] [--kill-leader-after 60]
//
// On memory:// (the default) the replicas run in this process, each with its own arbitrator on
// the process's in-memory server; with an etcd:// or zk:// URL each is a Node process of its own.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const USAGE = `usage: node examples/leader-routing/run.mjs [options]

  --url <url>                 the arbitrator (default memory://?ttl=2s); etcd://… or zk://…
                              run each replica as a process of its own
  --replicas <n>              replicas (default 3)
  --writes <n>                writes to send (default 200)
  --lists <n>                 lists the writes are spread over (default 4)
  --concurrency <n>           writes in flight at once (default 4)
  --kill-leader-after <n>     kill the leader once, after n writes were acknowledged
  -h, --help                  this help`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      url: { type: 'string', default: 'memory://?ttl=2s' },
      replicas: { type: 'string', default: '3' },
      writes: { type: 'string', default: '200' },
      lists: { type: 'string', default: '4' },
      concurrency: { type: 'string', default: '4' },
      'kill-leader-after': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  console.error(`${error.message}\n\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const root = new URL('../../', import.meta.url);
if (!existsSync(new URL('packages/tenure/dist/index.js', root))) {
  console.error(
    'packages/tenure/dist is missing: build first (npx -y pnpm@9.15.9 install && npx tsc -b)',
  );
  process.exit(1);
}
const replicaFile = fileURLToPath(new URL('replica.mjs', import.meta.url));
const inProcess = values.url.startsWith('memory:');
const writes = Number(values.writes);
const lists = Number(values.lists);
const killAfter =
  values['kill-leader-after'] === undefined ? undefined : Number(values['kill-leader-after']);

const startedAt = performance.now();
const seconds = () => `${((performance.now() - startedAt) / 1000).toFixed(2)}s`.padStart(7);
function say(actor, what, detail = '') {
  console.log(`${seconds()}  ${actor.padEnd(9)}  ${what.padEnd(10)} ${detail}`.trimEnd());
}

// ── What the replicas report ────────────────────────────────────────────────────────────────
const counts = { forwarded: 0, misdirected: 0, retrying: 0, duplicate: 0, applied: 0 };
const leaders = [];
function handle(name, event) {
  switch (event.type) {
    case 'listening':
      say(name, 'listens', `${event.endpoint} (advertised as its endpoint)`);
      break;
    case 'leading':
      leaders.push({ name, epoch: event.epoch });
      say(name, 'leads', `epoch ${event.epoch}`);
      break;
    case 'following':
      say(name, 'follows', `its term of epoch ${event.epoch} ended: ${event.reason}`);
      break;
    case 'misdirected':
      counts.misdirected += 1;
      say(
        name,
        'refuses',
        `421: routed to epoch ${event.routedTo}, its own is ${event.epoch ?? 'none'}`,
      );
      break;
    case 'retrying':
      counts.retrying += 1;
      say(
        name,
        'retries',
        `the leader of epoch ${event.after} gave ${event.status}: on to a newer one`,
      );
      break;
    case 'forwarded':
    case 'duplicate':
    case 'applied':
      counts[event.type] += 1;
      break;
    case 'error':
      say(name, 'error', `${event.code ?? ''} ${event.message}`.trim());
      break;
    default:
      say(name, event.type);
  }
}

// ── The replicas ────────────────────────────────────────────────────────────────────────────
const replicas = [];
if (inProcess) {
  const { connect } = await import(new URL('packages/tenure/dist/index.js', root).href);
  const { startReplica } = await import(new URL('replica.mjs', import.meta.url).href);
  for (let i = 1; i <= Number(values.replicas); i += 1) {
    const name = `replica-${i}`;
    const arbitrator = await connect(values.url);
    const replica = await startReplica({
      arbitrator,
      name,
      report: (type, fields) => handle(name, { type, ...fields }),
    });
    replicas.push({
      name,
      endpoint: replica.endpoint,
      alive: true,
      kill() {
        this.alive = false;
        // A crash: no more answers, no resignation; the session expires after its TTL.
        replica.crash();
        arbitrator.pause();
      },
      async stop() {
        // A paused arbitrator answers nothing until close() resumes it: close it first.
        if (!this.alive) await arbitrator.close();
        await replica.close();
        await arbitrator.close();
      },
    });
  }
} else {
  await Promise.all(
    Array.from({ length: Number(values.replicas) }, (_, i) => startProcess(`replica-${i + 1}`)),
  );
}

function startProcess(name) {
  return new Promise((resolve, reject) => {
    // --tied: the replica exits when its stdin closes, so none outlives this runner.
    const child = spawn(
      process.execPath,
      [replicaFile, '--url', values.url, '--name', name, '--tied'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const entry = {
      name,
      endpoint: undefined,
      alive: true,
      kill() {
        this.alive = false;
        child.kill('SIGKILL');
      },
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        await new Promise((done) => child.once('close', done));
      },
    };
    replicas.push(entry);
    child.once('close', (code, signal) => {
      entry.alive = false;
      say(name, 'exited', signal ? `killed by ${signal}` : `code ${code}`);
      if (entry.endpoint === undefined) reject(new Error(`${name} exited before listening`));
    });
    createInterface({ input: child.stderr }).on('line', (line) => say(name, 'stderr', line));
    createInterface({ input: child.stdout }).on('line', (line) => {
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        say(name, 'says', line);
        return;
      }
      if (event.type === 'listening') {
        entry.endpoint = event.endpoint;
        resolve();
      }
      handle(name, event);
    });
  });
}

// ── The client ──────────────────────────────────────────────────────────────────────────────
const acknowledged = new Map();
const failed = [];
let clientRetries = 0;
let olderThanToken = 0;
let killed = false;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = () => {
  const alive = replicas.filter((r) => r.alive);
  return alive[Math.floor(Math.random() * alive.length)];
};

async function request(replica, path, init = {}) {
  const response = await fetch(`${replica.endpoint}${path}`, {
    ...init,
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, body: await response.json() };
}

/** Sends write `i` until a replica acknowledges it, to a replica picked at random each time. */
async function send(i) {
  const id = `write-${i}`;
  const list = `list-${i % lists}`;
  for (let attempt = 1; attempt <= 40; attempt += 1) {
    const replica = pick();
    if (replica === undefined) break;
    try {
      const answer = await request(replica, `/lists/${list}`, {
        method: 'POST',
        headers: { 'idempotency-key': id, 'content-type': 'application/json' },
        body: JSON.stringify({ item: i }),
      });
      if (answer.status === 200) {
        acknowledged.set(id, { ...answer.body, via: replica.name, attempts: attempt });
        // Read your write at once, with its token, from a replica picked at random: a
        // follower answers from its mirror once that has reached the token, never older.
        const read = await readList(
          list,
          `consistency=read-your-writes&token=${answer.body.token}`,
        ).catch(() => undefined);
        if (!read?.entries.some((entry) => entry.id === id)) olderThanToken += 1;
        if (killAfter !== undefined && !killed && acknowledged.size >= killAfter) killLeader();
        return;
      }
    } catch {
      // No answer (a killed replica): the write may or may not have been applied; the retry,
      // with the same key, finds out.
    }
    clientRetries += 1;
    await sleep(Math.min(1_000, 50 * attempt));
  }
  failed.push(id);
}

async function killLeader() {
  killed = true;
  for (const replica of replicas.filter((r) => r.alive)) {
    try {
      const { body } = await request(replica, '/health');
      const target = replicas.find((r) => r.name === body.leader?.value && r.alive);
      if (target === undefined) continue;
      say('runner', 'kill -9', `${target.name}, the leader of epoch ${body.leader.epoch}`);
      target.kill();
      return;
    } catch {}
  }
}

let next = 0;
const workers = Array.from({ length: Number(values.concurrency) }, async () => {
  while (next < writes) await send(next++);
});
await Promise.all(workers);
say('client', 'done', `${acknowledged.size} of ${writes} writes acknowledged`);

// ── Read everything back from the leader, and with a quorum read on every replica ──────────
async function readList(list, query, replica) {
  for (let attempt = 1; attempt <= 40; attempt += 1) {
    const via = replica ?? pick();
    try {
      const answer = await request(via, `/lists/${list}?${query}`);
      if (answer.status === 200) return answer.body;
    } catch {}
    await sleep(Math.min(1_000, 50 * attempt));
  }
  throw new Error(`could not read ${list} (${query})`);
}

const seen = new Map();
const twice = [];
const lost = [];
let quorumAgrees = true;
for (let l = 0; l < lists; l += 1) {
  const list = `list-${l}`;
  const { entries } = await readList(list, 'consistency=leader');
  for (const entry of entries) {
    if (seen.has(entry.id)) twice.push(entry.id);
    seen.set(entry.id, list);
  }
  for (const replica of replicas.filter((r) => r.alive)) {
    const quorum = await readList(list, 'consistency=quorum', replica);
    if (JSON.stringify(quorum.entries) !== JSON.stringify(entries)) quorumAgrees = false;
  }
  for (const [id, ack] of acknowledged) {
    if (ack.list !== list) continue;
    if (entries[ack.position]?.id !== id) lost.push(id);
  }
}

const follower = await readList('list-0', 'consistency=follower');
say(
  'client',
  'reads',
  `list-0 from ${follower.answeredBy}'s mirror: ${follower.entries.length} entries at token ${follower.token}, at most ${follower.stalenessMs} ms stale`,
);

await Promise.all(replicas.map((r) => r.stop()));

const duplicatesAnswered = [...acknowledged.values()].filter((a) => a.duplicate).length;
console.log('');
console.log(`── summary ${'─'.repeat(66)}`);
console.log(
  `  writes acknowledged: ${acknowledged.size} of ${writes} (client retries: ${clientRetries}; answered as already applied: ${duplicatesAnswered})`,
);
console.log(
  `  forwarded by followers: ${counts.forwarded}; refused with 421: ${counts.misdirected}; forwards retried on a newer leader: ${counts.retrying}`,
);
console.log(
  `  leaders: ${leaders.map((l) => `${l.name} (epoch ${l.epoch})`).join(' → ') || 'none'}`,
);
console.log(
  `  read back from the leader: ${seen.size} entries; lost: ${lost.length}, applied twice: ${twice.length}, never acknowledged: ${[...seen.keys()].filter((id) => !acknowledged.has(id)).length}`,
);
console.log(
  `  quorum reads on every live replica agree with the leader: ${quorumAgrees ? 'yes' : 'NO'}`,
);
console.log(
  `  read-your-writes reads (each write's, right after it, a replica at random): ${acknowledged.size}, older than their token: ${olderThanToken}`,
);
const ok =
  failed.length === 0 &&
  lost.length === 0 &&
  twice.length === 0 &&
  quorumAgrees &&
  olderThanToken === 0;
console.log(
  ok
    ? '  ok: no write lost, none applied twice'
    : `  FAILED: ${JSON.stringify({ failed, lost, twice })}`,
);
process.exitCode = ok ? 0 : 1;
