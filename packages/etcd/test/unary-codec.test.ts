// The queue's transactions written and read by hand (unary-codec.ts), against what etcd3's own
// codecs (protobuf.js) make of the same request and reply: the same bytes out for every field
// etcd3's ITxnRequest has, and the same fields read back from a real etcd's replies; and the
// queue on that path: etcd's refusals typed as through etcd3 (a lease etcd no longer knows is a
// lost session).
import { SessionGoneError } from '@tenure/core/internal';
import { type EtcdNode, startEtcd } from '@tenure/testkit';
import {
  CompareResult,
  CompareTarget,
  Etcd3,
  type ITxnRequest,
  type ITxnResponse,
  SortOrder,
  SortTarget,
} from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdQueue } from '../src/etcd-queue.js';
import { h2TxnSender, loadTxnCodecs } from '../src/etcd3-internals.js';
import { EtcdH2 } from '../src/h2-transport.js';
import { decodeTxn, encodeTxn, type TxnReply } from '../src/unary-codec.js';

const b = (s: string) => Buffer.from(s, 'utf8');

let node: EtcdNode;
let client: Etcd3;
let h2: EtcdH2;
let codec: NonNullable<Awaited<ReturnType<typeof loadTxnCodecs>>>;

beforeAll(async () => {
  node = await startEtcd();
  client = new Etcd3({ hosts: node.endpoint });
  h2 = new EtcdH2([node.endpoint]);
  const loaded = await loadTxnCodecs(client);
  if (loaded === undefined) throw new Error('etcd3 has no Txn codecs to compare with');
  codec = loaded;
});

afterAll(async () => {
  h2?.close();
  client?.close();
  await node?.stop();
});

/** Requests of every shape the queue sends, and every field etcd3's types allow. */
const requests: Array<[string, ITxnRequest]> = [
  [
    'a join',
    {
      compare: [
        {
          key: b('e/1'),
          target: CompareTarget.Create,
          result: CompareResult.Equal,
          create_revision: '0',
        },
      ],
      success: [
        { request_put: { key: b('e/1'), value: b('v'), lease: '7587888440366478405' } },
        {
          request_range: {
            key: b('e/'),
            range_end: b('e0'),
            sort_order: SortOrder.Descend,
            sort_target: SortTarget.Create,
            limit: 3,
            keys_only: true,
          },
        },
        {
          request_range: {
            key: b('e/'),
            range_end: b('e0'),
            sort_order: SortOrder.Ascend,
            sort_target: SortTarget.Create,
            limit: 1,
            keys_only: true,
          },
        },
      ],
      failure: [{ request_range: { key: b('e/1') } }],
    },
  ],
  [
    'a leave',
    {
      compare: [
        {
          key: b('e/1'),
          target: CompareTarget.Create,
          result: CompareResult.Equal,
          create_revision: 42,
        },
      ],
      success: [{ request_delete_range: { key: b('e/1') } }],
      failure: [],
    },
  ],
  ['nothing', {}],
  [
    'every field, enums by name, zero values, a large value and a nested transaction',
    {
      compare: [
        { key: b('k'), target: 'Version', result: 'NotEqual', version: 0, range_end: b('l') },
        { key: b('k'), target: 'Mod', result: 'Greater', mod_revision: '9007199254740993' },
        { key: b('k'), target: 'Value', result: 'Less', value: Buffer.alloc(0) },
        { key: b('k'), target: 'Lease', result: 'Equal', lease: '-1' },
      ],
      success: [
        {
          request_range: {
            key: b('a'),
            range_end: Buffer.from([0]),
            limit: '0',
            revision: 5,
            sort_order: 'None',
            sort_target: 'Value',
            serializable: false,
            keys_only: false,
            count_only: true,
            min_mod_revision: 1,
            max_mod_revision: 2,
            min_create_revision: 3,
            max_create_revision: 4,
          },
        },
        {
          request_put: {
            key: b('p'),
            value: Buffer.alloc(300_000, 7),
            lease: 0,
            prev_kv: true,
            ignore_value: false,
            ignore_lease: true,
          },
        },
        { request_delete_range: { key: b('d'), range_end: b('e'), prev_kv: false } },
        {
          request_txn: {
            compare: [{ key: b('x'), target: CompareTarget.Create, create_revision: 1 }],
            success: [{ request_range: { key: b('x') } }],
          },
        },
      ],
    },
  ],
];

describe('encodeTxn', () => {
  it.each(requests)('writes %s as protobuf.js does', (_what, request) => {
    expect(encodeTxn(request).equals(codec.requestSerialize(request))).toBe(true);
  });
});

/** What the queue reads, from etcd3's decoded reply. */
function readOf(reply: ITxnResponse | TxnReply) {
  return {
    revision: reply.header.revision,
    succeeded: reply.succeeded,
    kvs: reply.responses.map((op) =>
      (op.response_range?.kvs ?? []).map((kv) => ({
        key: kv.key.toString('hex'),
        value: kv.value.toString('hex'),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
      })),
    ),
  };
}

describe('decodeTxn, on a real etcd’s replies', () => {
  it('reads what etcd3 reads: ranges (keys only or whole, none found), puts, deletes, both branches', async () => {
    await client.delete().prefix('codec/').exec();
    const lease = client.lease(30, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    await client.put('codec/a').value('first').exec();
    await client.put('codec/b').value(Buffer.alloc(70_000, 1)).lease(leaseId).exec();
    await client.put('codec/b').value('again').ignoreLease().exec();
    const all = { key: b('codec/'), range_end: b('codec0') };
    const branches: ITxnRequest[] = [
      {
        compare: [
          {
            key: b('codec/a'),
            target: CompareTarget.Create,
            result: CompareResult.Greater,
            create_revision: 0,
          },
        ],
        success: [
          {
            request_range: {
              ...all,
              sort_order: SortOrder.Descend,
              sort_target: SortTarget.Create,
            },
          },
          { request_range: { ...all, keys_only: true, limit: 1 } },
          { request_range: { key: b('codec/none') } },
          { request_put: { key: b('codec/c'), value: b('new'), prev_kv: true } },
          { request_delete_range: { key: b('codec/gone') } },
          { request_range: { key: b('codec/b') } },
        ],
        failure: [],
      },
      {
        compare: [
          {
            key: b('codec/none'),
            target: CompareTarget.Create,
            result: CompareResult.Greater,
            create_revision: 0,
          },
        ],
        success: [],
        failure: [{ request_range: all }, { request_put: { key: b('codec/d'), value: b('') } }],
      },
    ];
    for (const request of branches) {
      const bytes = await h2.unary('/etcdserverpb.KV/Txn', encodeTxn(request), {
        deadline: new Date(Date.now() + 5_000),
      });
      const byHand = decodeTxn(bytes);
      const byEtcd3 = codec.responseDeserialize(bytes) as ITxnResponse;
      expect(readOf(byHand)).toEqual(readOf(byEtcd3));
      expect(byHand.responses.length).toBe(request.success?.length || request.failure?.length);
    }
    // Something was read, so the comparison above meant something.
    const [read] = branches;
    const bytes = await h2.unary('/etcdserverpb.KV/Txn', encodeTxn(read as ITxnRequest));
    const reply = decodeTxn(bytes);
    expect(reply.succeeded).toBe(true);
    expect(reply.responses[0]?.response_range.kvs.map((kv) => kv.key.toString())).toEqual([
      'codec/d',
      'codec/c',
      'codec/b',
      'codec/a',
    ]);
    expect(reply.responses[5]?.response_range.kvs[0]?.value.toString()).toBe('again');
    await lease.revoke();
  });

  it('throws on bytes that are not a TxnResponse', () => {
    expect(() => decodeTxn(Buffer.from([0x1a, 0x05, 0x0a]))).toThrow(RangeError);
  });
});

describe('the queue on tenure’s own connection', () => {
  const queueOn = () =>
    new EtcdQueue('codec-queue', {
      client,
      namespace: 'codec-ns/',
      deadline: () => ({ deadline: new Date(Date.now() + 5_000) }),
      sendTxn: h2TxnSender(client, h2, { when: () => false, attempts: 1 }),
    });

  it('joins, reads its place and leaves with transactions written by hand', async () => {
    const lease = client.lease(30, { autoKeepAlive: false });
    const id = await lease.grant();
    const queue = queueOn();
    const own = await queue.join({ id, lost: new AbortController().signal }, 'v');
    expect(own.epoch).toBeGreaterThan(0n);
    expect((await queue.position(own)).kind).toBe('head');
    await queue.leave(own);
    expect((await queue.position(own)).kind).toBe('gone');
    await lease.revoke();
  });

  it('reports a join on a lease etcd no longer knows as a lost session', async () => {
    const lease = client.lease(30, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.revoke();
    await expect(
      queueOn().join({ id, lost: new AbortController().signal }, 'v'),
    ).rejects.toBeInstanceOf(SessionGoneError);
  });
});
