import type { QueuedKey } from '@tenure/core/internal';
import type { Etcd3 } from 'etcd3';
import { rethrow } from './etcd-errors.js';
import type { TxnSender } from './etcd3-internals.js';
import { decodeFirstCreateRevisions, encodeKeysOnlyTxn } from './unary-codec.js';

/** etcd's default limit of operations in one transaction (`--max-txn-ops`). */
const MAX_TXN_OPS = 128;

interface Request {
  readonly keys: readonly QueuedKey[];
  resolve(found: boolean[]): void;
  reject(error: unknown): void;
}

/**
 * Answers "do these keys still exist, with their create revisions?" for every election of one
 * arbitrator, batching the questions asked in the same turn of the event loop into one
 * transaction of ranges (keys only) per 128 keys. The elections' periodic consistency reads
 * fall due together (core aligns them on the renewal interval), so an arbitrator leading 1,000
 * elections sends 8 requests per interval instead of 1,000. With `send` (tenure's own
 * connection), the transaction is written and its reply read by hand (see unary-codec.ts): the
 * read recurs every interval in every candidate, and etcd3 made an object of each reply's
 * every field.
 */
export class PresenceBatcher {
  readonly #client: Etcd3;
  readonly #deadline: () => { deadline: Date };
  readonly #send: TxnSender | undefined;
  #pending: Request[] = [];

  constructor(client: Etcd3, deadline: () => { deadline: Date }, send?: TxnSender) {
    this.#client = client;
    this.#deadline = deadline;
    this.#send = send;
  }

  /** Whether each of `keys` exists with its epoch (by name alone where it has none). */
  present(keys: readonly QueuedKey[]): Promise<boolean[]> {
    return new Promise<boolean[]>((resolve, reject) => {
      if (this.#pending.length === 0) setImmediate(() => this.#flush());
      this.#pending.push({ keys, resolve, reject });
    });
  }

  #flush(): void {
    const batch = this.#pending;
    this.#pending = [];
    const keys = batch.flatMap((request) => request.keys);
    const chunks: Promise<boolean[]>[] = [];
    for (let start = 0; start < keys.length; start += MAX_TXN_OPS) {
      chunks.push(this.#read(keys.slice(start, start + MAX_TXN_OPS)));
    }
    Promise.all(chunks).then(
      (answers) => {
        const found = answers.flat();
        let offset = 0;
        for (const request of batch) {
          const end = offset + request.keys.length;
          request.resolve(found.slice(offset, end));
          offset = end;
        }
      },
      // A failed read fails the whole batch: the callers ignore it and read again next interval.
      (error: unknown) => {
        for (const request of batch) request.reject(error);
      },
    );
  }

  async #read(keys: readonly QueuedKey[]): Promise<boolean[]> {
    const send = this.#send;
    if (send !== undefined) {
      const request = encodeKeysOnlyTxn(keys.map((k) => Buffer.from(k.key, 'utf8')));
      const found = decodeFirstCreateRevisions(
        await send(request, this.#deadline().deadline).catch(rethrow('read queue keys')),
      );
      return keys.map((k, i) => {
        const revision = found[i];
        return revision !== undefined && (k.epoch === undefined || BigInt(revision) === k.epoch);
      });
    }
    const response = await this.#client.kv
      .txn(
        {
          compare: [],
          success: keys.map((k) => ({
            request_range: { key: Buffer.from(k.key, 'utf8'), keys_only: true },
          })),
          failure: [],
        },
        this.#deadline(),
      )
      .catch(rethrow('read queue keys'));
    return keys.map((k, i) => {
      const kv = response.responses[i]?.response_range.kvs[0];
      return kv !== undefined && (k.epoch === undefined || BigInt(kv.create_revision) === k.epoch);
    });
  }
}
