import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { startTcpProxy, Timing, waitFor } from '@tenure/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hardClose } from '../src/tcp-proxy.js';

const timing = new Timing(1_000);
const WAIT_MS = timing.scale(5_000);
/** How long "nothing arrives" is watched for. Long against loopback latency, short for a test. */
const QUIET_MS = 300;

/** An echo server that also lets the test write to, and read what arrived at, its sockets. */
class EchoServer {
  readonly server: Server;
  readonly sockets: Socket[] = [];
  received = '';

  constructor() {
    this.server = createServer((socket) => {
      this.sockets.push(socket);
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        this.received += chunk.toString('utf8');
        socket.write(chunk);
      });
      socket.on('end', () => socket.end());
    });
  }

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    return address.port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A client socket that records what it receives and how it ended. */
class Client {
  readonly socket: Socket;
  received = '';
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | undefined;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('data', (chunk: Buffer) => {
      this.received += chunk.toString('utf8');
    });
    this.socket.on('end', () => {
      this.ended = true;
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
    this.socket.on('error', (error: NodeJS.ErrnoException) => {
      this.error = error;
    });
  }

  async connected(): Promise<void> {
    if (!this.socket.connecting) return;
    await once(this.socket, 'connect');
  }

  async expectReceived(text: string): Promise<void> {
    await waitFor(() => this.received.endsWith(text), { timeoutMs: WAIT_MS, what: `"${text}"` });
  }

  destroy(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.socket.destroy();
    return once(this.socket, 'close').then(() => {});
  }
}

const quiet = () => new Promise((resolve) => setTimeout(resolve, QUIET_MS));

describe('startTcpProxy', () => {
  let echo: EchoServer;
  let echoPort: number;
  const clients: Client[] = [];
  const client = (port: number) => {
    const c = new Client(port);
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    echo = new EchoServer();
    echoPort = await echo.listen();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.destroy()));
    await echo.close();
  });

  it('forwards both ways to the target', async () => {
    await using proxy = await startTcpProxy({ host: '127.0.0.1', port: echoPort });
    expect(proxy.endpoint).toBe(`127.0.0.1:${proxy.port}`);
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    expect(proxy.state).toBe('forwarding');

    const c = client(proxy.port);
    await c.connected();
    c.socket.write('hello');
    await c.expectReceived('hello');
    expect(echo.received).toBe('hello');
    expect(proxy.connections).toBe(1);

    const d = client(proxy.port);
    d.socket.write('second');
    await d.expectReceived('second');
    expect(proxy.connections).toBe(2);
  });

  it('cut() stops data both ways without closing the sockets; restore() resumes', async () => {
    await using proxy = await startTcpProxy({ host: '127.0.0.1', port: echoPort });
    const c = client(proxy.port);
    c.socket.write('before');
    await c.expectReceived('before');
    const serverSide = echo.sockets[0]!;

    proxy.cut();
    expect(proxy.state).toBe('cut');
    c.socket.write('lost-up');
    serverSide.write('lost-down');
    await quiet();
    expect(echo.received).toBe('before');
    expect(c.received).toBe('before');
    // Neither side learns anything: no FIN, no RST.
    expect(c.ended || c.closed || c.error !== undefined).toBe(false);
    expect(serverSide.readyState).toBe('open');
    expect(proxy.connections).toBe(1);

    // A connection opened during the cut is accepted, then gets nothing.
    const late = client(proxy.port);
    await late.connected();
    late.socket.write('into the void');
    await quiet();
    expect(late.received).toBe('');
    expect(proxy.connections).toBe(2);

    proxy.restore();
    proxy.restore(); // idempotent
    expect(proxy.state).toBe('forwarding');
    c.socket.write('after');
    await c.expectReceived('after');
    expect(echo.received).toBe('beforeafter');
    expect(c.received).toBe('beforeafter');
  });

  it('holds back a FIN during a cut and delivers it on restore', async () => {
    await using proxy = await startTcpProxy({ host: '127.0.0.1', port: echoPort });
    const c = client(proxy.port);
    c.socket.write('x');
    await c.expectReceived('x');
    const serverSide = echo.sockets[0]!;
    let serverSawEnd = false;
    serverSide.on('end', () => {
      serverSawEnd = true;
    });

    proxy.cut();
    c.socket.end();
    await quiet();
    expect(serverSawEnd).toBe(false);

    proxy.restore();
    await waitFor(() => serverSawEnd, { timeoutMs: WAIT_MS, what: 'the server to see the FIN' });
    // The echo server ends its side in turn, which reaches the client.
    await waitFor(() => c.ended, { timeoutMs: WAIT_MS, what: 'the client to see the FIN' });
  });

  it('reset() destroys every connection with an RST and keeps listening', async () => {
    await using proxy = await startTcpProxy({ host: '127.0.0.1', port: echoPort });
    const c = client(proxy.port);
    c.socket.write('one');
    await c.expectReceived('one');
    const serverSide = echo.sockets[0]!;
    let serverError: NodeJS.ErrnoException | undefined;
    serverSide.on('error', (error: NodeJS.ErrnoException) => {
      serverError = error;
    });

    proxy.reset();
    expect(proxy.connections).toBe(0);
    await waitFor(() => c.closed, { timeoutMs: WAIT_MS, what: 'the client socket to close' });
    expect(c.error?.code).toBe('ECONNRESET');
    await waitFor(() => serverSide.destroyed, { timeoutMs: WAIT_MS, what: 'the server side' });
    expect(serverError?.code).toBe('ECONNRESET');

    const d = client(proxy.port);
    d.socket.write('two');
    await d.expectReceived('two');
  });

  it('hardClose() of a socket whose end is still in flight closes it (a reset there would leak its handle)', async () => {
    const c = client(echoPort);
    c.socket.write('fin');
    await c.expectReceived('fin');
    // end() starts a shutdown; a reset before it completes fails with EINVAL, after which Node
    // never closes the handle: no 'close', and the process cannot exit.
    c.socket.end();
    hardClose(c.socket);
    await waitFor(() => c.closed, { timeoutMs: WAIT_MS, what: 'the socket to close' });
  });

  it('resets a client whose target refuses the connection', async () => {
    const closedPort = echoPort;
    await echo.close();
    await using proxy = await startTcpProxy({ host: '127.0.0.1', port: closedPort });
    const c = client(proxy.port);
    await waitFor(() => c.closed, { timeoutMs: WAIT_MS, what: 'the client socket to close' });
    expect(c.error?.code).toBe('ECONNRESET');
    echo = new EchoServer();
    await echo.listen();
  });

  it('close() ends every connection, is idempotent, and refuses later use', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: echoPort });
    const c = client(proxy.port);
    c.socket.write('bye');
    await c.expectReceived('bye');
    proxy.cut();

    await Promise.all([proxy.close(), proxy.close(), proxy[Symbol.asyncDispose]()]);
    expect(proxy.state).toBe('closed');
    expect(proxy.connections).toBe(0);
    await waitFor(() => c.closed, { timeoutMs: WAIT_MS, what: 'the client socket to close' });
    expect(() => proxy.cut()).toThrow(/closed/);
    expect(() => proxy.restore()).toThrow(/closed/);
    expect(() => proxy.reset()).toThrow(/closed/);

    const refused = client(proxy.port);
    await waitFor(() => refused.closed, { timeoutMs: WAIT_MS, what: 'a refused connection' });
    expect(refused.error?.code).toBe('ECONNREFUSED');
  });

  it('listens on a chosen port, and refuses a bad target', async () => {
    const first = await startTcpProxy({ host: '127.0.0.1', port: echoPort });
    const port = first.port;
    await first.close();
    await using second = await startTcpProxy({ host: '127.0.0.1', port: echoPort }, { port });
    expect(second.port).toBe(port);
    await expect(startTcpProxy({ host: '127.0.0.1', port: 0 })).rejects.toThrow(RangeError);
  });
});
