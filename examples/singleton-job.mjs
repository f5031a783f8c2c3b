// A job that must run on exactly one replica: start this file several times (or with
// --replicas 3) and only the leader works; kill the leader and another takes over.
//
//   node examples/singleton-job.mjs                      # three replicas in one process, memory://
//   node examples/singleton-job.mjs --url etcd://127.0.0.1:2379 --replicas 1   # in each of 3 terminals
//
// etcd:// needs the etcd adapter beside tenure (`npm i tenure @tenure/etcd`), zk:// the ZooKeeper
// one (`npm i tenure @tenure/zookeeper`); in this repository's workspace both are there.
import { parseArgs } from 'node:util';
import { connect, runAsLeader } from 'tenure';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'memory://?ttl=2s' },
    replicas: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
  },
});

const stop = new AbortController();
setTimeout(() => stop.abort(), Number(values.seconds) * 1000);

async function replica(name) {
  const arbitrator = await connect(values.url);
  // Session trouble (an unreachable server, a refused renewal) comes as `error` events while
  // tenure retries; without a listener they are dropped.
  arbitrator.on('error', (error) => console.warn(`${name}: ${error.message}`));
  const election = arbitrator.election('singleton-job', { value: name });
  try {
    await runAsLeader(
      election,
      async (term) => {
        console.log(`${name}: leading with epoch ${term.epoch}`);
        // Do a unit of work only while the term is valid; stop as soon as it ends.
        while (!term.signal.aborted) {
          if (term.isValid()) console.log(`${name}: tick (epoch ${term.epoch})`);
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        console.log(`${name}: term ${term.epoch} ended (${term.endReason})`);
      },
      { signal: stop.signal },
    );
  } finally {
    await arbitrator.close();
  }
}

const replicas = Array.from({ length: Number(values.replicas) }, (_, i) => `replica-${i + 1}`);
await Promise.all(replicas.map(replica));
console.log('all replicas stopped');
