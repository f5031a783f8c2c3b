// Minimal reproduction of an etcd3 (npm, 1.1.2) watch bug: after a reconnect, etcd3 moves the
// watch's resume revision to the revision in etcd's "created" reply, before etcd has replayed
// the events the watch missed (etcd replays them on its next watch sync, ~100 ms later). A
// second connection reset inside that window loses those events for good.
//
// Only etcd3 and node:net: a TCP relay sits between the watching client and etcd so the
// script can reset the watch connection. Usage:
//   node packages/etcd/scripts/watch-resume-repro.mjs [etcd host:port] [trials] [delay ms]
// `delay` is how long after the re-created watch's "created" reply the second reset comes.
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';

const [host, port] = (process.argv[2] ?? '127.0.0.1:2379').split(':');
const trials = Number(process.argv[3] ?? 10);
const delayMs = Number(process.argv[4] ?? 0);

// The relay: reset() destroys every connection through it with a TCP RST.
const sockets = new Set();
const relay = createServer((client) => {
  const upstream = connect(Number(port), host);
  for (const [a, b] of [
    [client, upstream],
    [upstream, client],
  ]) {
    sockets.add(a);
    a.on('data', (d) => b.write(d));
    a.on('error', () => b.destroy());
    a.on('close', () => {
      sockets.delete(a);
      b.destroy();
    });
  }
});
await new Promise((resolve) => relay.listen(0, '127.0.0.1', resolve));
const reset = () => {
  for (const s of sockets) s.resetAndDestroy();
};

const direct = new Etcd3({ hosts: `http://${host}:${port}` });
let lost = 0;
for (let trial = 0; trial < trials; trial += 1) {
  const key = `repro/${process.pid}/${trial}`;
  await direct.put(key).value('v');
  const watching = new Etcd3({
    hosts: `http://127.0.0.1:${relay.address().port}`,
    // Reconnect the watch stream quickly (the bug does not depend on it).
    faultHandling: {
      watchBackoff: {
        duration: 50,
        next: () => ({
          duration: 50,
          next() {
            return this;
          },
        }),
      },
    },
  });
  const watcher = await watching.watch().key(key).create();
  let deleted = false;
  let created = 0;
  watcher.on('delete', () => {
    deleted = true;
  });
  watcher.on('connected', () => {
    created += 1;
    // The first re-creation after the delete: reset again before etcd replays the delete.
    if (created === 1) setTimeout(reset, delayMs);
  });
  let once = false;
  watcher.on('disconnected', () => {
    if (once) return;
    once = true;
    // Delete while the watch is down: etcd must replay it to the re-created watch.
    void direct.delete().key(key).exec();
  });
  reset(); // first reset
  await sleep(1500);
  console.log(
    `trial ${trial}: delete ${deleted ? 'delivered' : 'LOST'}; etcd3 now resumes from ${watcher.lastRevision()}`,
  );
  if (!deleted) lost += 1;
  await watcher.cancel().catch(() => {});
  watching.close();
}
console.log(`${lost}/${trials} deletes lost (second reset ${delayMs} ms after "created")`);
direct.close();
relay.close();
