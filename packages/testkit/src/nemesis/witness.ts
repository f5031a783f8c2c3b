/**
 * The nemesis's independent witness: a fenced register outside the arbitrator, an HTTP server
 * on loopback in the runner's process. Leaders write to it with their term's epoch as the
 * fencing token; it refuses any epoch lower than the highest it has accepted and logs every
 * write it received with its receive time, for the checker.
 *
 * @packageDocumentation
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { monotonicNow } from '../term-history.js';
import type { WitnessEntry } from './history.js';

/** A running witness (see {@link startWitness}). */
export interface Witness extends AsyncDisposable {
  /** `http://127.0.0.1:<port>/write`: POST `{"process","epoch","seq"}` as JSON. */
  readonly url: string;
  /** Every write received so far, in receive order. */
  readonly log: readonly WitnessEntry[];
  /** Stops listening and destroys every connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a witness on a free loopback port. A write is accepted (200 `{"accepted":true}`)
 * when its epoch is at least the highest accepted so far, else refused (409
 * `{"accepted":false,"highest":"…"}`); a malformed write gets 400 and is not logged.
 */
export async function startWitness(): Promise<Witness> {
  const log: WitnessEntry[] = [];
  let highest: bigint | undefined;
  const sockets = new Set<Socket>();
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      // The receive time is taken when the whole request has arrived, before anything else.
      const t = monotonicNow();
      let parsed: { process?: unknown; epoch?: unknown; seq?: unknown };
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof parsed;
      } catch {
        parsed = {};
      }
      const { process, epoch, seq } = parsed;
      if (
        typeof process !== 'string' ||
        typeof epoch !== 'string' ||
        !/^\d+$/.test(epoch) ||
        typeof seq !== 'number'
      ) {
        response.writeHead(400, { 'content-type': 'application/json' });
        response.end('{"error":"expected {process, epoch (decimal string), seq}"}');
        return;
      }
      const value = BigInt(epoch);
      const accepted = highest === undefined || value >= highest;
      if (accepted) highest = value;
      log.push({ t, process, epoch, seq, accepted });
      response.writeHead(accepted ? 200 : 409, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify(accepted ? { accepted } : { accepted, highest: String(highest) }),
      );
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('witness: no port');
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return closing;
  };
  return {
    url: `http://127.0.0.1:${address.port}/write`,
    log,
    close,
    [Symbol.asyncDispose]: close,
  };
}
