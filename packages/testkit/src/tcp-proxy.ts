/**
 * A TCP proxy on loopback that a test puts between a client and a server to break the network
 * path: black-hole it silently ({@link TcpProxy.cut}, a partition TCP does not notice) or reset
 * every connection ({@link TcpProxy.reset}, a crashed middlebox).
 *
 * @packageDocumentation
 */

import { connect, createServer, type Server, type Socket } from 'node:net';

/** Where a {@link TcpProxy} forwards to. */
export interface TcpProxyTarget {
  /** Host name or address of the server. */
  readonly host: string;
  /** Its TCP port. */
  readonly port: number;
}

/** Options of {@link startTcpProxy}. */
export interface TcpProxyOptions {
  /** The port to listen on, on 127.0.0.1. Default 0: a free port. */
  port?: number;
}

/**
 * Where a {@link TcpProxy} is in its life: `forwarding ⇄ cut`, then `closing → closed`.
 */
export type TcpProxyState = 'forwarding' | 'cut' | 'closing' | 'closed';

/** A TCP proxy started by {@link startTcpProxy}. */
export interface TcpProxy extends AsyncDisposable {
  /** The address it listens on, `127.0.0.1`. */
  readonly host: string;
  /** The port it listens on. */
  readonly port: number;
  /** `127.0.0.1:<port>`, for clients that take host:port (ZooKeeper connect strings). */
  readonly endpoint: string;
  /** `http://127.0.0.1:<port>`, for clients that take URLs (etcd endpoints). */
  readonly url: string;
  /** Where connections are forwarded to. */
  readonly target: TcpProxyTarget;
  /** Where the proxy is in its life. */
  readonly state: TcpProxyState;
  /** How many client connections are open through the proxy (including black-holed ones). */
  readonly connections: number;
  /**
   * Black-holes the path, like a network partition: every byte received from either side is
   * read and dropped, and closes (FIN, RST) are held back, so neither side sees its connection
   * end; its peer just goes silent. New connections are accepted and black-holed too. Bytes
   * already handed to a socket before the cut may still arrive. Idempotent.
   */
  cut(): void;
  /**
   * Ends a {@link TcpProxy.cut}: bytes flow again from now on (those dropped meanwhile are lost,
   * so a framed protocol usually fails on the connections that lived through the cut), and the
   * closes held back are delivered. Idempotent.
   */
  restore(): void;
  /**
   * Destroys every current connection on both sides with a TCP RST, as a crash of the network
   * path does. The proxy keeps listening, and stays cut if it was.
   */
  reset(): void;
  /**
   * Stops listening, destroys every connection, and resolves once every socket is closed; it
   * leaves no handle behind. Idempotent: every call shares one promise.
   */
  close(): Promise<void>;
  /** The same as {@link TcpProxy.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** One client connection and its upstream connection. */
interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Closes that arrived during a cut, delivered by `restore()`. */
  readonly held: Array<() => void>;
}

class LoopbackTcpProxy implements TcpProxy {
  readonly host = '127.0.0.1';
  readonly port: number;
  readonly endpoint: string;
  readonly url: string;
  readonly target: TcpProxyTarget;
  readonly #server: Server;
  readonly #links = new Set<Link>();
  #state: TcpProxyState = 'forwarding';
  #closing: Promise<void> | undefined;

  constructor(server: Server, port: number, target: TcpProxyTarget) {
    this.#server = server;
    this.port = port;
    this.endpoint = `${this.host}:${port}`;
    this.url = `http://${this.endpoint}`;
    this.target = { host: target.host, port: target.port };
    server.on('connection', (client) => this.#accept(client));
  }

  get state(): TcpProxyState {
    return this.#state;
  }

  get connections(): number {
    let open = 0;
    for (const link of this.#links) if (!link.client.destroyed) open += 1;
    return open;
  }

  cut(): void {
    this.#assertOpen('cut');
    this.#state = 'cut';
  }

  restore(): void {
    this.#assertOpen('restore');
    if (this.#state !== 'cut') return;
    this.#state = 'forwarding';
    for (const link of this.#links) {
      for (const action of link.held.splice(0)) action();
    }
  }

  reset(): void {
    this.#assertOpen('reset');
    for (const link of this.#links) {
      link.held.length = 0;
      hardClose(link.client);
      hardClose(link.upstream);
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#state = 'closing';
    const serverClosed = new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
    });
    const sockets: Socket[] = [];
    for (const link of this.#links) {
      link.held.length = 0;
      sockets.push(link.client, link.upstream);
      link.client.destroy();
      link.upstream.destroy();
    }
    await Promise.all([serverClosed, ...sockets.map(socketClosed)]);
    this.#links.clear();
    this.#state = 'closed';
  }

  #accept(client: Socket): void {
    if (this.#state === 'closing' || this.#state === 'closed') {
      client.destroy();
      return;
    }
    const upstream = connect({
      host: this.target.host,
      port: this.target.port,
      allowHalfOpen: true,
    });
    const link: Link = { client, upstream, held: [] };
    this.#links.add(link);
    this.#pump(link, client, upstream);
    this.#pump(link, upstream, client);
    let closed = 0;
    const onClose = () => {
      closed += 1;
      if (closed === 2) this.#links.delete(link);
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
  }

  /** Forwards `from` → `to`: data, half-close (FIN) and abortive close (RST). */
  #pump(link: Link, from: Socket, to: Socket): void {
    let waitingForDrain = false;
    // Errors are expected here (resets, refused upstream); each one ends in 'close' below.
    from.on('error', () => {});
    from.on('data', (chunk: Buffer) => {
      // Dropped, not buffered: the sender sees its bytes acknowledged, as in a partition that
      // eats packets after the last hop that acknowledges them.
      if (this.#state !== 'forwarding' || to.destroyed || !to.writable) return;
      if (!to.write(chunk) && !waitingForDrain) {
        waitingForDrain = true;
        from.pause();
        to.once('drain', () => {
          waitingForDrain = false;
          from.resume();
        });
      }
    });
    from.on('end', () =>
      this.#deliver(link, () => {
        if (!to.destroyed) to.end();
      }),
    );
    from.on('close', (hadError) => {
      this.#deliver(link, () => {
        if (hadError) hardClose(to);
        else if (!to.destroyed) to.end();
      });
    });
  }

  /** Runs `action` now, or holds it until `restore()` while the path is cut. */
  #deliver(link: Link, action: () => void): void {
    if (this.#state === 'cut') link.held.push(action);
    else if (this.#state === 'forwarding') action();
  }

  #assertOpen(call: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') {
      throw new Error(
        `TcpProxy.${call}: the proxy to ${this.target.host}:${this.target.port} is closed`,
      );
    }
  }
}

/**
 * Starts a TCP proxy on 127.0.0.1 (port `options.port`, default a free one) that forwards each
 * connection to `target`, opening one upstream connection per client connection. A client whose
 * upstream cannot be reached is reset. Use it with `await using proxy = await startTcpProxy(…)`.
 */
export async function startTcpProxy(
  target: TcpProxyTarget,
  options: TcpProxyOptions = {},
): Promise<TcpProxy> {
  if (typeof target.host !== 'string' || !Number.isInteger(target.port) || target.port <= 0) {
    throw new RangeError('startTcpProxy: target must be { host: string; port: positive integer }');
  }
  return await new Promise<TcpProxy>((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true });
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: options.port ?? 0 }, () => {
      server.off('error', reject);
      // Accept errors (e.g. EMFILE) must not crash the test process; the client sees a reset.
      server.on('error', () => {});
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('startTcpProxy: the server has no TCP address'));
        return;
      }
      resolve(new LoopbackTcpProxy(server, address.port, target));
    });
  });
}

/**
 * Closes `socket` with an RST when it is connected, else just destroys it. A socket whose end
 * (FIN) has been asked for is destroyed plainly: while that shutdown is in flight libuv refuses
 * the reset (EINVAL), and Node then never closes the socket's handle, which keeps the process
 * alive (Node 20/22: `end()` then `resetAndDestroy()` leaks a TCPSocketWrap).
 */
export function hardClose(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting || socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}

/** Resolves once `socket` has closed. */
export function socketClosed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.closed) resolve();
    else socket.once('close', () => resolve());
  });
}
