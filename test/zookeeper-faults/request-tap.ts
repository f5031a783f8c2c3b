/**
 * A TCP forwarder that reads the ZooKeeper requests passing through it and calls back, once,
 * the moment it has forwarded a create of a matching path: put behind a `TcpProxy` (client →
 * proxy → tap → server), its callback can cut the proxy after the create has left for the
 * server but before the server's reply can come back, which is a create whose reply is lost.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/** ZooKeeper op codes of the requests that create a node. */
const CREATE_OPS = new Set([
  1, // create
  15, // create2
  19, // createContainer
  21, // createTTL
]);

/** A running {@link startRequestTap}. */
export interface RequestTap {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** The path of the create that fired the callback, once one has. */
  readonly matched: string | undefined;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/**
 * Forwards each connection to `target`. For the client → server bytes of every connection it
 * parses the frames (length-prefixed; the first one is the connect request) and, after writing
 * the chunk holding the first create whose path passes `match`, calls `onCreate(path)`.
 */
export async function startRequestTap(
  target: { host: string; port: number },
  match: (path: string) => boolean,
  onCreate: (path: string) => void,
): Promise<RequestTap> {
  const sockets = new Set<Socket>();
  let matched: string | undefined;
  const server: Server = createServer((client) => {
    const upstream = connect({ host: target.host, port: target.port });
    sockets.add(client);
    sockets.add(upstream);
    let pending = Buffer.alloc(0);
    let first = true;
    const creates = (chunk: Buffer): string | undefined => {
      pending = Buffer.concat([pending, chunk]);
      let found: string | undefined;
      while (pending.length >= 4) {
        const length = pending.readInt32BE(0);
        if (pending.length < 4 + length) break;
        const frame = pending.subarray(4, 4 + length);
        pending = pending.subarray(4 + length);
        if (first) {
          first = false; // the connect request has no request header
          continue;
        }
        if (frame.length < 12 || !CREATE_OPS.has(frame.readInt32BE(4))) continue;
        const pathLength = frame.readInt32BE(8);
        const path = frame.toString('utf8', 12, 12 + pathLength);
        if (found === undefined && match(path)) found = path;
      }
      return found;
    };
    client.on('data', (chunk: Buffer) => {
      const path = creates(chunk);
      upstream.write(chunk);
      if (path !== undefined && matched === undefined) {
        matched = path;
        onCreate(path);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.destroyed) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        end();
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('request tap: no port');
  return {
    port: address.port,
    get matched() {
      return matched;
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const all = [...sockets].map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.closed) resolve();
            else socket.once('close', () => resolve());
            socket.destroy();
          }),
      );
      await Promise.all([closed, ...all]);
    },
  };
}
