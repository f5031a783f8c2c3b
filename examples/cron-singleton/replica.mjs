// One replica of a small service that has a cron job which must run on one replica only.
// Every replica adds the same job to a scheduler on the same election; the one that leads runs
// it, and claims each slot in the arbitrator first, so no slot runs twice across failovers.
//
//   node examples/cron-singleton/replica.mjs --url etcd://127.0.0.1:2379 --name replica-1
//
// run.mjs starts three of these against a server it launches (see README.md). SIGTERM or
// Ctrl-C stops the replica gracefully: its running job may finish, then it hands over at once.
import { parseArgs } from 'node:util';
import { connect, createScheduler } from 'tenure';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    name: { type: 'string', default: `replica-${process.pid}` },
    schedule: { type: 'string', default: '*/2 * * * * *' },
    'work-ms': { type: 'string', default: '800' },
    json: { type: 'boolean', default: false },
  },
});
if (values.url === undefined) {
  console.error('usage: node replica.mjs --url <etcd://… | zk://…> [--name replica-1] [--json]');
  process.exit(2);
}
const name = values.name;
const workMs = Number(values['work-ms']);

/** One line per event: JSON for run.mjs (--json), else words for a person. */
function report(type, fields = {}) {
  if (values.json) {
    console.log(JSON.stringify({ type, name, pid: process.pid, at: Date.now(), ...fields }));
  } else {
    const details = Object.entries(fields).map(([key, value]) => `${key}=${value}`);
    console.log(`${new Date().toISOString()} ${name} ${type} ${details.join(' ')}`.trimEnd());
  }
}

/** Waits `ms`, or less if `signal` aborts. */
function work(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

const arbitrator = await connect(values.url);
arbitrator.on('connection', (state) => report('connection', { state }));
const election = arbitrator.election('cron-singleton', { value: `${name} (pid ${process.pid})` });
const scheduler = createScheduler(election);

scheduler.add(
  'report',
  values.schedule,
  async (ctx) => {
    // The job's real work goes here. Pass ctx.epoch to whatever it writes to, so a resource
    // can refuse the writes of a deposed leader whose run is still going (docs/cron.md).
    await work(workMs, ctx.signal);
    if (ctx.signal.aborted) report('abandoned', { slot: ctx.slot.toISOString() });
  },
  { catchUp: 'latest', overlap: 'skip' },
);

scheduler.on('leading', (epoch) => report('leading', { epoch: String(epoch) }));
scheduler.on('following', () => report('following'));
scheduler.on('run-start', (run) => report('run-start', runFields(run)));
scheduler.on('run-end', (run) => report('run-end', runFields(run)));
scheduler.on('missed', (job, slots) =>
  report('missed', { job, slots: slots.map((slot) => slot.toISOString()).join(',') }),
);
scheduler.on('skipped', (job, slot, reason) =>
  report('skipped', { job, slot: slot.toISOString(), reason }),
);
scheduler.on('zombie', (run) => report('zombie', runFields(run)));
scheduler.on('error', (error) => report('error', { code: error.code, message: error.message }));

function runFields(run) {
  return {
    job: run.job,
    slot: run.slot,
    trigger: run.trigger,
    attempt: run.attempt,
    epoch: run.epoch,
    ...(run.outcome === undefined ? {} : { outcome: run.outcome }),
    ...(run.error === undefined ? {} : { error: run.error }),
  };
}

scheduler.start();
report('started', { url: values.url, schedule: values.schedule });

// Nothing else keeps the process alive: once both are closed, it exits by itself.
let stopping;
function stop(signal) {
  stopping ??= (async () => {
    report('stopping', { signal });
    await scheduler.stop();
    await arbitrator.close();
    report('stopped');
  })().catch((error) => {
    report('error', { message: `stop failed: ${error}` });
    process.exitCode = 1;
  });
  return stopping;
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
