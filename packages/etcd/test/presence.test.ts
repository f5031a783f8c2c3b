// The batched presence read behind the periodic consistency check (a private module of this
// package): questions asked in one turn of the event loop go out as one transaction per 128
// keys, and each caller gets the answers for its own keys; through etcd3, and on tenure's own
// connection with the transaction written and read by hand.
import { type EtcdNode, startEtcd } from '@tenure/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { h2TxnSender, type TxnSender } from '../src/etcd3-internals.js';
import { EtcdH2 } from '../src/h2-transport.js';
import { PresenceBatcher } from '../src/presence.js';

let node: EtcdNode;
let client: Etcd3;
const h2s: EtcdH2[] = [];

beforeAll(async () => {
  node = await startEtcd();
});

beforeEach(() => {
  client = new Etcd3({ hosts: node.endpoint });
});

afterEach(() => {
  client.close();
  for (const h2 of h2s.splice(0)) h2.close();
});

afterAll(async () => {
  await node?.stop();
});

it.each(['through etcd3', 'on tenure’s own connection'])(
  'answers 300 callers with 3 transactions, each caller its own keys (%s)',
  async (how) => {
    // Fresh keys: their create revisions are the epochs.
    await client.delete().prefix('presence/').exec();
    const epochs: bigint[] = [];
    for (let i = 0; i < 300; i += 1) {
      const put = await client.put(`presence/${i}`).value('x').exec();
      epochs.push(BigInt(put.header.revision));
    }
    await client.delete().key('presence/7').exec();
    let txns = 0;
    const deadline = () => ({ deadline: new Date(Date.now() + 5_000) });
    let batcher: PresenceBatcher;
    if (how === 'through etcd3') {
      const kv = client.kv;
      const txn = kv.txn.bind(kv);
      kv.txn = (...args: Parameters<typeof kv.txn>) => {
        txns += 1;
        return txn(...args);
      };
      batcher = new PresenceBatcher(client, deadline);
    } else {
      const h2 = new EtcdH2([node.endpoint]);
      const sender = h2TxnSender(client, h2, { when: () => false, attempts: 1 });
      const send: TxnSender = (request, at) => {
        txns += 1;
        return sender(request, at);
      };
      // Nothing through etcd3.
      client.kv.txn = () => Promise.reject(new Error('not through etcd3'));
      batcher = new PresenceBatcher(client, deadline, send);
      h2s.push(h2);
    }
    const asked = epochs.map((epoch, i) =>
      batcher.present([
        // Its own key; key 7 was deleted, key 11 is asked with a wrong create revision.
        { key: `presence/${i}`, epoch: i === 11 ? epoch + 1n : epoch },
        // A key that never existed, and one known by name alone.
        { key: `presence/missing-${i}` },
        { key: `presence/${(i + 1) % 300}` },
      ]),
    );
    const answers = await Promise.all(asked);
    expect(txns).toBe(Math.ceil((300 * 3) / 128));
    answers.forEach((answer, i) => {
      expect(answer, `caller ${i}`).toEqual([i !== 7 && i !== 11, false, (i + 1) % 300 !== 7]);
    });
  },
);
