// One replica of a service that exposes tenure's Prometheus metrics and a readiness probe.
// It campaigns in one election and runs a cron job every second while it leads.
//
//   node examples/metrics-server.mjs --url etcd://127.0.0.1:2379 --name replica-1 --port 9464
//   node examples/metrics-server.mjs --url etcd://127.0.0.1:2379 --name replica-2 --port 9465
//
//   curl -s localhost:9464/metrics | grep tenure_election_leader   # 1 on the leader, 0 elsewhere
//   curl -s localhost:9464/healthz                                 # 200 when ready, else 503
//   curl -s -X POST localhost:9464/step-down                       # the leader hands over
//
// GET /metrics serves the registry of @tenure/prometheus (every series is described in
// docs/operations.md); GET /healthz serves arbitrator.health() as JSON, with 503 while the
// session is not live; POST /step-down makes the leader resign at once and queue again behind
// the others (a drill for rolling restarts; do not expose it unauthenticated in production).
// --port 0 picks a free port; the first line printed says which. SIGTERM or Ctrl-C stops the
// replica gracefully: it hands over at once.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createTenureMetrics } from '@tenure/prometheus';
import { connect, createScheduler } from 'tenure';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'memory://?ttl=2s' },
    name: { type: 'string', default: `replica-${process.pid}` },
    port: { type: 'string', default: '9464' },
    host: { type: 'string', default: '127.0.0.1' },
    election: { type: 'string', default: 'metrics-demo' },
    schedule: { type: 'string', default: '* * * * * *' },
    log: { type: 'boolean', default: false },
  },
});

// Any pino-compatible logger works (`logger: pino()`); this one writes JSON lines to stderr.
const logger = Object.fromEntries(
  ['debug', 'info', 'warn', 'error'].map((level) => [
    level,
    (fields, message) => {
      if (!values.log || level === 'debug') return;
      const { err, ...rest } = fields;
      const line = { level, time: new Date().toISOString(), replica: values.name, ...rest };
      if (err) line.err = err.message;
      console.error(JSON.stringify({ ...line, msg: message }));
    },
  ]),
);

const arbitrator = await connect(values.url, { logger });
const metrics = createTenureMetrics();
metrics.instrumentArbitrator(arbitrator);

const election = arbitrator.election(values.election, { value: values.name });
const scheduler = createScheduler(election);
scheduler.add('heartbeat', values.schedule, async (ctx) => {
  // The job's work goes here, with ctx.epoch sent to whatever it writes to.
  await new Promise((resolve) => setTimeout(resolve, 20));
  if (ctx.signal.aborted) return;
});
metrics.instrumentScheduler(scheduler);
scheduler.on('leading', (epoch) => console.log(`${values.name} leading epoch ${epoch}`));
scheduler.on('following', () => console.log(`${values.name} following`));
// Background failures are retried: log them (with --log).
scheduler.on('error', (error) => logger.warn({ code: error.code, err: error }, 'scheduler error'));
scheduler.start();

/** The leader resigns (the next replica leads at once) and queues again behind the others. */
async function stepDown() {
  const term = election.term;
  if (!term) return undefined;
  await election.resign();
  // Later terms reach the scheduler through the election's `elected` event.
  election.campaign().catch(() => {});
  return term.epoch;
}

const server = createServer((request, response) => {
  const send = (status, type, body) => {
    response.writeHead(status, { 'content-type': type });
    response.end(body);
  };
  const json = (status, body) => send(status, 'application/json', `${JSON.stringify(body)}\n`);
  const route = `${request.method} ${new URL(request.url ?? '/', 'http://x').pathname}`;
  switch (route) {
    case 'GET /metrics':
      metrics.registry.metrics().then(
        (text) => send(200, metrics.registry.contentType, text),
        (error) => send(500, 'text/plain', String(error)),
      );
      return;
    case 'GET /healthz': {
      const health = arbitrator.health();
      json(health.ready ? 200 : 503, health);
      return;
    }
    case 'POST /step-down':
      stepDown().then(
        (epoch) =>
          epoch === undefined
            ? json(409, { steppedDown: false, reason: 'not the leader' })
            : json(200, { steppedDown: true, epoch: String(epoch) }),
        (error) => json(500, { steppedDown: false, reason: String(error) }),
      );
      return;
    default:
      json(404, { error: `no route ${route}` });
  }
});
server.listen(Number(values.port), values.host, () => {
  const { port } = server.address();
  console.log(`${values.name} serving http://${values.host}:${port}/metrics`);
});

// Nothing else keeps the process alive: once all three are closed, it exits by itself.
let stopping;
function stop() {
  stopping ??= (async () => {
    server.close();
    server.closeAllConnections();
    await scheduler.stop();
    await arbitrator.close();
    console.log(`${values.name} stopped`);
  })().catch((error) => {
    console.error(`stop failed: ${error}`);
    process.exitCode = 1;
  });
  return stopping;
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
