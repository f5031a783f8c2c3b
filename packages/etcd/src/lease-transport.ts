import type { SessionTransport } from '@tenure/core/internal';
import type { Etcd3 } from 'etcd3';
import { rethrow, toTenureError } from './etcd-errors.js';

/**
 * Sessions as etcd leases. etcd grants whole seconds and may raise the TTL (its minimum is
 * 1.5 × election timeout, 2 s by default); the keeper uses the granted value. Each renewal is
 * one short keep-alive stream with a deadline, so a black-holed connection fails the renewal
 * in time instead of waiting on a stream that never answers.
 */
export class LeaseTransport implements SessionTransport {
  readonly #client: Etcd3;
  readonly #timeoutMs: () => number;

  constructor(client: Etcd3, timeoutMs: () => number) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
  }

  async grant(ttlMs: number): Promise<{ id: string; ttlMs: number }> {
    const ttl = Math.max(1, Math.ceil(ttlMs / 1000));
    const response = await this.#client.leaseClient
      .leaseGrant({ TTL: ttl, ID: 0 }, this.#deadline())
      .catch(rethrow('lease grant'));
    if (response.error) throw toTenureError(new Error(response.error), 'lease grant');
    return { id: response.ID, ttlMs: Number(response.TTL) * 1000 };
  }

  async keepAlive(id: string): Promise<boolean> {
    const stream = await this.#client.leaseClient
      .leaseKeepAlive(this.#deadline())
      .catch(rethrow('lease keep-alive', id));
    try {
      const ttl = await new Promise<string>((resolve, reject) => {
        stream.on('data', (response: { TTL: string }) => resolve(response.TTL));
        stream.on('error', (error: unknown) => reject(error));
        stream.on('end', () => reject(new Error('keep-alive stream ended without a reply')));
        stream.write({ ID: id });
      });
      // etcd answers TTL 0 for a lease it no longer has.
      return Number(ttl) > 0;
    } catch (error) {
      throw toTenureError(error, 'lease keep-alive', id);
    } finally {
      stream.end();
      stream.cancel?.();
    }
  }

  async revoke(id: string): Promise<void> {
    await this.#client.leaseClient
      .leaseRevoke({ ID: id }, this.#deadline())
      .catch((error: unknown) => {
        const mapped = toTenureError(error, 'lease revoke', id);
        if (mapped.name === 'SessionGoneError') return; // already gone
        throw mapped;
      });
  }

  #deadline(): { deadline: Date } {
    return { deadline: new Date(Date.now() + this.#timeoutMs()) };
  }
}
