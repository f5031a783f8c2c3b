// The batched presence read behind the periodic consistency check (a private module of this
// package): questions asked in one turn of the event loop go out as one transaction per 128
// keys, and each caller gets the answers for its own keys.
import { type EtcdNode, startEtcd } from '@tenure/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PresenceBatcher } from '../src/presence.js';

let node: EtcdNode;
let client: Etcd3;

beforeAll(async () => {
  node = await startEtcd();
  client = new Etcd3({ hosts: node.endpoint });
});

afterAll(async () => {
  client?.close();
  await node?.stop();
});

it('answers 300 callers with 3 transactions, each caller its own keys', async () => {
  const epochs: bigint[] = [];
  for (let i = 0; i < 300; i += 1) {
    const put = await client.put(`presence/${i}`).value('x').exec();
    epochs.push(BigInt(put.header.revision));
  }
  await client.delete().key('presence/7').exec();
  let txns = 0;
  const kv = client.kv;
  const txn = kv.txn.bind(kv);
  kv.txn = (...args: Parameters<typeof kv.txn>) => {
    txns += 1;
    return txn(...args);
  };
  const batcher = new PresenceBatcher(client, () => ({ deadline: new Date(Date.now() + 5_000) }));
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
});
