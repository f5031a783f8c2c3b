#!/usr/bin/env node
// Starts a local etcd (or ZooKeeper) and three replicas of examples/cron-singleton/replica.mjs,
// each its own Node process, and prints which replica runs each slot of their shared cron job.
// Kill the leader (the command is printed) and watch another replica take over without running
// any slot twice. Ctrl-C stops the replicas, then the server, and prints a summary.
//
//   node examples/cron-singleton/run.mjs [--backend etcd|zookeeper] [--seconds 20]
//                                        [--kill-leader-after 6] [--ttl 2s]
//
// The server comes from @tenure/testkit's launcher (Debian's etcd-server or zookeeper
// packages); TENURE_ETCD_ENDPOINTS / TENURE_ZK_CONNECT point it at running servers instead.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const USAGE = `usage: node examples/cron-singleton/run.mjs [options]

  --backend etcd|zookeeper   the arbitrator to launch (default etcd)
  --replicas <n>             replica processes (default 3)
  --ttl <duration>           session TTL of each replica (default 2s)
  --schedule <cron>          the job's cron expression, with seconds (default */2 * * * * *)
  --work-ms <ms>             how long each run works (default 800)
  --seconds <s>              stop by itself after this long (default: run until Ctrl-C)
  --kill-leader-after <s>    kill -9 the leader once, in the first run it starts after this long
  --restart-after <s>        restart a killed replica after this long, 0 for never (default 3)
  -h, --help                 this help`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      backend: { type: 'string', default: 'etcd' },
      replicas: { type: 'string', default: '3' },
      ttl: { type: 'string', default: '2s' },
      schedule: { type: 'string', default: '*/2 * * * * *' },
      'work-ms': { type: 'string', default: '800' },
      seconds: { type: 'string' },
      'kill-leader-after': { type: 'string' },
      'restart-after': { type: 'string', default: '3' },
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
if (values.backend !== 'etcd' && values.backend !== 'zookeeper') {
  console.error(`--backend ${values.backend}: expected etcd or zookeeper\n\n${USAGE}`);
  process.exit(2);
}

const root = new URL('../../', import.meta.url);
const replicaFile = fileURLToPath(new URL('replica.mjs', import.meta.url));
for (const pkg of ['tenure', 'cron', 'testkit']) {
  const dist = new URL(`packages/${pkg}/dist/index.js`, root);
  if (!existsSync(dist)) {
    console.error(
      `${fileURLToPath(dist)} is missing: build first (npx -y pnpm@9.15.9 install && npx tsc -b)`,
    );
    process.exit(1);
  }
}
const { etcdForTests, zookeeperForTests } = await import(
  new URL('packages/testkit/dist/index.js', root).href
);

const startedAt = performance.now();
const seconds = () => `${((performance.now() - startedAt) / 1000).toFixed(2)}s`.padStart(7);
/** One line of the story: `  4.02s  replica-2  runs       slot …`. */
function say(actor, what, detail = '') {
  console.log(`${seconds()}  ${actor.padEnd(9)}  ${what.padEnd(10)} ${detail}`.trimEnd());
}
function note(text) {
  console.log(`${' '.repeat(31)}↳ ${text}`);
}

// ── The server ──────────────────────────────────────────────────────────────────────────────
// A fresh prefix per run, so a shared server (TENURE_*) never mixes two runs' records.
const prefix = `cron-singleton-${Date.now().toString(36)}`;
let server;
let url;
say('runner', 'starting', `a local ${values.backend} server with the testkit's launcher`);
try {
  if (values.backend === 'etcd') {
    server = await etcdForTests();
    const hosts = server.endpoints.map((endpoint) => new URL(endpoint).host).join(',');
    url = `etcd://${hosts}/${prefix}?ttl=${values.ttl}`;
    say('etcd', 'serving', `${server.endpoints.join(',')} (${describeServer(server)})`);
    note(
      `the job's records: etcdctl --endpoints=${server.endpoints[0]} get --prefix ${prefix}/tenure-data/`,
    );
  } else {
    server = await zookeeperForTests();
    const [hosts, chroot = ''] = server.connectString.split(/(?=\/)/);
    url = `zk://${hosts}${chroot}/${prefix}?ttl=${values.ttl}`;
    say('zookeeper', 'serving', `${server.connectString} (${describeServer(server)})`);
  }
} catch (error) {
  console.error(`\ncould not start ${values.backend}: ${error.message}`);
  process.exit(1);
}
say('runner', 'url', url);

function describeServer(started) {
  return started.node ? `launched, pid ${started.node.pid}` : 'already running';
}

// ── The replicas ────────────────────────────────────────────────────────────────────────────
/** Every run seen, by slot: who ran it, with which epoch, and how it ended. */
const runs = new Map();
/** Slots the catch-up policy dropped (reported by the leader that found them). */
const missed = new Set();
/** Slots whose run a new leader found cut short (outcome `interrupted`). */
const interrupted = new Set();
/** Slots claimed but not run, with the reason. */
const skipped = new Map();
/** Leaders in order: { name, pid, epoch }. */
const leaders = [];
let leader;
let shuttingDown = false;
const replicas = [];

class Replica {
  constructor(name) {
    this.name = name;
    this.child = undefined;
    this.exited = Promise.resolve();
  }

  get alive() {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  start() {
    const child = spawn(
      process.execPath,
      [
        replicaFile,
        ...['--url', url, '--name', this.name, '--json'],
        ...['--schedule', values.schedule, '--work-ms', values['work-ms']],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('close', resolve));
    say(this.name, 'spawned', `pid ${child.pid}`);
    createInterface({ input: child.stdout }).on('line', (line) => this.#line(line));
    createInterface({ input: child.stderr }).on('line', (line) => say(this.name, 'stderr', line));
    child.once('close', (code, signal) => this.#exited(child, code, signal));
  }

  #line(line) {
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      say(this.name, 'says', line);
      return;
    }
    handle(this, event);
  }

  #exited(child, code, signal) {
    say(
      this.name,
      'exited',
      signal ? `pid ${child.pid}, killed by ${signal}` : `pid ${child.pid}, code ${code}`,
    );
    for (const slotRuns of runs.values()) {
      for (const run of slotRuns) {
        if (run.pid === child.pid && run.outcome === undefined) {
          run.outcome = 'cut short';
          note(`its run of slot ${run.slot} never ended: the process died mid-run.`);
        }
      }
    }
    if (leader?.pid === child.pid) leader = undefined;
    const restartAfter = Number(values['restart-after']);
    if (!shuttingDown && signal !== null && restartAfter > 0) {
      note(`restarting it in ${restartAfter} s, as a supervisor would; it rejoins at the back.`);
      const timer = setTimeout(() => {
        if (!shuttingDown) this.start();
      }, restartAfter * 1000);
      timer.unref();
    }
  }
}

function handle(replica, event) {
  const who = replica.name;
  switch (event.type) {
    case 'started':
      break;
    case 'leading':
      leader = { name: who, pid: event.pid, epoch: event.epoch };
      leaders.push(leader);
      say(who, 'leads', `epoch ${event.epoch}`);
      note(`try: kill -9 ${event.pid}   (then watch another replica take over)`);
      break;
    case 'following':
      if (leader?.pid === event.pid) leader = undefined;
      say(who, 'follows', 'its term ended: it takes no more slots (and aborts a run still going)');
      break;
    case 'run-start': {
      const slotRuns = runs.get(event.slot) ?? [];
      slotRuns.push({
        name: who,
        pid: event.pid,
        epoch: event.epoch,
        slot: event.slot,
        attempt: event.attempt,
        trigger: event.trigger,
      });
      runs.set(event.slot, slotRuns);
      say(
        who,
        'runs',
        `slot ${event.slot}  epoch ${event.epoch}  ${event.trigger}  attempt ${event.attempt}`,
      );
      if (killMidRun && event.pid === leader?.pid) killLeaderMidRun(event.pid);
      if (event.trigger === 'catch-up') {
        note("this slot fell due while no replica led: catchUp 'latest' runs it late, once.");
      }
      if (slotRuns.length > 1) {
        const all = slotRuns.map((r) => `${r.name} epoch ${r.epoch} attempt ${r.attempt}`);
        say(who, 'TWICE', `slot ${event.slot} ran ${slotRuns.length} times: ${all.join(', ')}`);
      }
      break;
    }
    case 'run-end':
      if (event.outcome === 'interrupted') {
        // Reported by the new leader about a run of an earlier term that never recorded its end.
        interrupted.add(event.slot);
        say(who, 'finds', `slot ${event.slot} interrupted (claimed in epoch ${event.epoch})`);
        note("the earlier leader's run never recorded its end; interrupted: 'skip' leaves it.");
        break;
      }
      for (const run of runs.get(event.slot) ?? []) {
        if (run.pid === event.pid && run.attempt === event.attempt) run.outcome = event.outcome;
      }
      say(
        who,
        'ran',
        `slot ${event.slot}  ${event.outcome}${event.error ? `: ${event.error}` : ''}`,
      );
      break;
    case 'missed':
      for (const slot of event.slots.split(',').filter(Boolean)) missed.add(slot);
      say(
        who,
        'missed',
        `${event.slots.split(',').length} slot(s) while no replica led: ${event.slots}`,
      );
      note("catchUp: 'latest' runs only the most recent missed slot; these are dropped.");
      break;
    case 'skipped':
      skipped.set(event.slot, event.reason);
      say(who, 'skipped', `slot ${event.slot} (${event.reason})`);
      break;
    case 'zombie':
      say(who, 'zombie', `slot ${event.slot}: still running long after its signal aborted`);
      break;
    case 'error':
      say(who, 'error', `${event.code ?? ''} ${event.message}`.trim());
      break;
    case 'connection':
      if (event.state !== 'connected') say(who, 'session', event.state);
      break;
    default:
      say(who, event.type, '');
  }
}

const count = Number(values.replicas);
for (let i = 1; i <= count; i += 1) replicas.push(new Replica(`replica-${i}`));
for (const replica of replicas) replica.start();

// ── Optional: one kill -9 of the leader, and a bounded run ─────────────────────────────────
const timers = [];
/** Set once --kill-leader-after has passed: the leader's next run-start gets it killed. */
let killMidRun = false;
if (values['kill-leader-after'] !== undefined) {
  timers.push(
    setTimeout(() => {
      killMidRun = true;
    }, Number(values['kill-leader-after']) * 1000),
  );
}

/** kill -9 of the leader, in the middle of the run it just started. */
function killLeaderMidRun(pid) {
  killMidRun = false;
  const delayMs = Math.min(300, Number(values['work-ms']) / 2);
  const timer = setTimeout(() => {
    const target = replicas.find((r) => r.alive && r.child.pid === pid);
    if (target === undefined) return;
    say(
      'runner',
      'kill -9',
      `${target.name} (pid ${pid}), the leader with epoch ${leader?.epoch ?? '?'}, mid-run`,
    );
    target.child.kill('SIGKILL');
  }, delayMs);
  timers.push(timer);
}
if (values.seconds !== undefined) {
  timers.push(setTimeout(() => shutdown('time is up'), Number(values.seconds) * 1000));
}
process.on('SIGINT', () => {
  if (shuttingDown) {
    for (const replica of replicas) replica.child?.kill('SIGKILL');
    return;
  }
  console.log('');
  shutdown('Ctrl-C');
});
process.on('SIGTERM', () => shutdown('SIGTERM'));

// ── Shutdown and summary ────────────────────────────────────────────────────────────────────
let finished;
function shutdown(why) {
  finished ??= (async () => {
    shuttingDown = true;
    for (const timer of timers) clearTimeout(timer);
    say('runner', 'stopping', `${why}: followers first, then the leader (each with SIGTERM)`);
    const followers = replicas.filter((r) => r.alive && r.child.pid !== leader?.pid);
    const rest = replicas.filter((r) => !followers.includes(r));
    for (const group of [followers, rest]) {
      await Promise.all(group.map((replica) => stopReplica(replica)));
    }
    await server.stop();
    say(values.backend, 'stopped');
    const ok = summarize();
    process.exitCode = ok ? 0 : 1;
  })().catch((error) => {
    console.error(`shutdown failed: ${error.stack ?? error}`);
    process.exitCode = 1;
  });
  return finished;
}

async function stopReplica(replica) {
  if (!replica.alive) return;
  replica.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    say(replica.name, 'stuck', 'still running 15 s after SIGTERM: kill -9');
    replica.child.kill('SIGKILL');
  }, 15_000);
  await replica.exited;
  clearTimeout(timer);
}

function summarize() {
  const slots = [...runs.keys()].sort();
  const twice = slots.filter((slot) => runs.get(slot).length > 1);
  const byReplica = new Map();
  for (const slot of slots) {
    for (const run of runs.get(slot)) byReplica.set(run.name, (byReplica.get(run.name) ?? 0) + 1);
  }
  const cutShort = slots.flatMap((slot) => runs.get(slot).filter((r) => r.outcome === 'cut short'));
  console.log('');
  console.log(`── summary ${'─'.repeat(66)}`);
  console.log(
    `  slots run: ${slots.length}, ${twice.length === 0 ? 'each exactly once (no slot ran twice)' : `${twice.length} of them MORE THAN ONCE: ${twice.join(', ')}`}`,
  );
  console.log(
    `  by replica: ${[...byReplica].map(([name, n]) => `${name} ${n}`).join(', ') || 'none'}`,
  );
  console.log(
    `  leaders: ${leaders.map((l) => `${l.name} (epoch ${l.epoch})`).join(' → ') || 'none'}`,
  );
  console.log(`  missed while no replica led (dropped by catch-up): ${missed.size}`);
  console.log(`  found interrupted by a new leader: ${interrupted.size}`);
  console.log(`  claimed but not run (overlap, …): ${skipped.size}`);
  console.log(
    `  cut short by a kill, not run again: ${cutShort.length}${cutShort.length ? ` (${cutShort.map((r) => r.slot).join(', ')})` : ''}`,
  );
  return twice.length === 0;
}
