/**
 * Free TCP ports on 127.0.0.1 for the servers the launchers start.
 *
 * @packageDocumentation
 */

import { createServer, type Server } from 'node:net';

/** Ports handed out and not yet released, so two launches in one process never share one. */
const claimed = new Set<number>();

/**
 * `count` distinct ports that were free on 127.0.0.1 a moment ago (found by binding port 0 and
 * closing). Another process may still take one before the caller binds it, so callers retry on
 * "address already in use". The ports stay claimed in this process until
 * {@link releaseLoopbackPorts}.
 */
export async function allocateLoopbackPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  const servers: Server[] = [];
  try {
    // Keep every probe server open until all ports are found, so the OS cannot hand out the
    // same port twice in one call.
    while (ports.length < count) {
      const server = await listenOnFreePort();
      servers.push(server);
      const address = server.address();
      if (address === null || typeof address === 'string') {
        throw new Error('allocateLoopbackPorts: the probe server has no TCP address');
      }
      if (!claimed.has(address.port)) ports.push(address.port);
    }
  } finally {
    await Promise.all(servers.map(closeServer));
  }
  for (const port of ports) claimed.add(port);
  return ports;
}

/** Returns ports from {@link allocateLoopbackPorts} to the pool once their server has stopped. */
export function releaseLoopbackPorts(ports: Iterable<number>): void {
  for (const port of ports) claimed.delete(port);
}

function listenOnFreePort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
  });
}
