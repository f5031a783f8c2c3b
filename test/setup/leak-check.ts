/**
 * Fails a test file that leaves a timer, socket, server or child process behind (guarantee G7:
 * the process must be able to exit by itself). Each file runs in its own worker; the resources
 * active after the file's tests, minus those the worker had before, are leaks. A leaked socket
 * is named by its addresses, so the failure says which connection stayed open.
 */
import type { Server, Socket } from 'node:net';
import { afterAll } from 'vitest';

const IGNORED = new Set(['PipeWrap', 'TTYWrap', 'FSReqCallback', 'FSEventWrap', 'Immediate']);

function count(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    if (IGNORED.has(type)) continue;
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

/** Node's own list of handles: not typed, but the only way to see which socket is open. */
function handles(): unknown[] {
  const get = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles;
  return typeof get === 'function' ? get.call(process) : [];
}

/** `local → remote` for each TCP socket and server open now. */
function tcpEndpoints(): Set<string> {
  const out = new Set<string>();
  for (const handle of handles()) {
    const socket = handle as Partial<Socket> & Partial<Server>;
    if (typeof socket.remotePort === 'number' || 'connecting' in socket) {
      const s = socket as Socket;
      out.add(
        `socket ${s.localAddress}:${s.localPort} → ${s.remoteAddress}:${s.remotePort}` +
          `${s.connecting ? ' (connecting)' : ''}${s.destroyed ? ' (destroyed)' : ''}`,
      );
    } else if (typeof socket.listening === 'boolean' && typeof socket.address === 'function') {
      out.add(`server ${JSON.stringify(socket.address())}`);
    }
  }
  return out;
}

const baseline = count();
const baselineTcp = tcpEndpoints();

afterAll(async () => {
  // Let closes and clearTimeouts already in flight settle before judging (up to about 2 s: a
  // loaded machine runs another file's servers beside this one).
  let leaks: string[] = [];
  for (let attempt = 0; attempt < 80; attempt += 1) {
    await new Promise((resolve) => setImmediate(resolve));
    const now = count();
    leaks = [];
    for (const [type, n] of now) {
      const extra = n - (baseline.get(type) ?? 0);
      if (extra > 0) leaks.push(`${extra} × ${type}`);
    }
    if (leaks.length === 0) return;
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 25);
      t.unref();
    });
  }
  const tcp = [...tcpEndpoints()].filter((e) => !baselineTcp.has(e));
  throw new Error(
    `Leaked handles after this file's tests: ${leaks.join(', ')}` +
      (tcp.length > 0 ? `\n${tcp.join('\n')}` : ''),
  );
});
