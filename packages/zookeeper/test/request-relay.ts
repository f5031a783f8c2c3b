// A TCP relay between ZooKeeper clients and a server that decodes each request's header
// (length, xid, opcode) on its way to the server and records the opcodes in order: what a
// client sends, counted on the wire. The first frame of a connection (the ConnectRequest, which
// has no request header) is not a request; pings are (opcode 11), and callers skip them.
import { connect, createServer, type Server, type Socket } from 'node:net';

/** ZooKeeper's opcodes that the tests name. */
export const Op = {
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getChildren: 8,
  sync: 9,
  ping: 11,
  getChildren2: 12,
  multi: 14,
  multiRead: 22,
  setWatches: 101,
  getEphemerals: 103,
} as const;

/** A running relay. */
export interface RequestRelay {
  /** `host:port` to give clients instead of the server's. */
  readonly endpoint: string;
  /** The opcode of every request sent through the relay so far, in order. */
  readonly requests: readonly number[];
  close(): Promise<void>;
}

/** Starts a relay to the server at `host:port` on a free loopback port. */
export async function startRequestRelay(host: string, port: number): Promise<RequestRelay> {
  const requests: number[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  };
  const relayServer: Server = createServer((client) => {
    const upstream = connect({ host, port });
    track(client);
    track(upstream);
    let pending = Buffer.alloc(0);
    let connected = false; // the first frame is the ConnectRequest (no request header)
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readInt32BE(0);
        if (pending.length < 4 + length) break;
        if (connected && length >= 8) requests.push(pending.readInt32BE(8));
        connected = true;
        pending = pending.subarray(4 + length);
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relayServer.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const address = relayServer.address();
  if (address === null || typeof address === 'string') throw new Error('relay: no TCP address');
  return {
    endpoint: `127.0.0.1:${address.port}`,
    requests,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => relayServer.close(() => resolve()));
    },
  };
}
