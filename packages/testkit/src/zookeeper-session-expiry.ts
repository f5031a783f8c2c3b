/**
 * Expires a ZooKeeper session from outside the process that owns it, as the server does after
 * a partition: the way Apache Curator's tests kill a session (join it with its id and password
 * from a second connection, then close it), with the password derived from the id as the
 * server derives it, so a test needs only the session id (which `cons` and `dump` also list).
 *
 * @packageDocumentation
 */

import { connect, type Socket } from 'node:net';
import { Timing } from './timing.js';
import { ZooKeeperLauncherError } from './zookeeper-launcher-error.js';

/** Options of {@link expireZooKeeperSession}. */
export interface ExpireZooKeeperSessionOptions {
  /**
   * How long the whole call may take, ms. Default 10 000, scaled by `TENURE_TIMING_FACTOR`.
   */
  timeoutMs?: number;
}

/** The seed ZooKeeper 3.x mixes into a session's id to make its password (`superSecret`). */
const SUPER_SECRET = 0xb3415c00n;
const CLOSE_SESSION = -11;
const MASK_48 = (1n << 48n) - 1n;
const MULTIPLIER = 0x5deece66dn;

/**
 * The password ZooKeeper gives session `sessionId`: 16 bytes of `java.util.Random` seeded with
 * `sessionId ^ superSecret` (`ZooKeeperServer.generatePasswd`).
 */
export function zooKeeperSessionPassword(sessionId: bigint): Buffer {
  let seed = (BigInt.asIntN(64, sessionId) ^ SUPER_SECRET ^ MULTIPLIER) & MASK_48;
  const nextInt = (): number => {
    seed = (seed * MULTIPLIER + 0xbn) & MASK_48;
    return Number(BigInt.asIntN(32, seed >> 16n));
  };
  const password = Buffer.alloc(16);
  for (let i = 0; i < password.length; ) {
    let random = nextInt();
    for (let n = Math.min(password.length - i, 4); n > 0; n -= 1) {
      password[i] = random & 0xff;
      i += 1;
      random >>= 8;
    }
  }
  return password;
}

/**
 * Makes the ensemble at `connectString` end session `sessionId` (a bigint, or hex with or
 * without `0x`, as ZooKeeper and tenure print it): it joins the session from a new connection
 * with the session's password and closes it, so the server deletes the session's ephemeral
 * nodes, and its owner's connection is moved away and then refused with "session expired" on
 * its next reconnect. Resolves `true` once the server has closed the session, `false` when it
 * had already expired (the server refused to resume it). Tries each server of `connectString`
 * in turn. Rejects with code `UNREACHABLE` when none answered within `options.timeoutMs`.
 */
export async function expireZooKeeperSession(
  connectString: string,
  sessionId: bigint | string,
  options: ExpireZooKeeperSessionOptions = {},
): Promise<boolean> {
  const id = parseSessionId(sessionId);
  const timeoutMs = options.timeoutMs ?? new Timing(1_000).scale(10_000);
  const servers = connectString
    .replace(/\/.*$/, '')
    .split(',')
    .map((server) => {
      const at = server.lastIndexOf(':');
      return { host: server.slice(0, at), port: Number(server.slice(at + 1)) };
    });
  if (servers.some((server) => server.host === '' || !Number.isInteger(server.port))) {
    throw new RangeError(`expireZooKeeperSession: "${connectString}" is not host:port,…`);
  }
  const deadline = performance.now() + timeoutMs;
  const failures: string[] = [];
  const progress = { granted: false, unanswered: false };
  // The owner's client reconnects as soon as its connection is moved away, and takes the
  // session back, which closes this one's: try again (every server in turn) until the bound.
  for (let attempt = 0; performance.now() < deadline; attempt += 1) {
    const server = servers[attempt % servers.length] as { host: string; port: number };
    try {
      const closed = await closeSession(
        server.host,
        server.port,
        id,
        deadline - performance.now(),
        progress,
      );
      // Refused after an earlier attempt had the session and sent the close: that closed it.
      // So did one whose connection the server closed without a word after it had read our
      // connect and close (seen under load: the server closes the session's connections,
      // ours too, before our replies leave); a session that had expired before is refused
      // with a reply.
      return closed || progress.granted || progress.unanswered;
    } catch (error) {
      failures.push(`${server.host}:${server.port}: ${(error as Error).message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(50, 10 * attempt)));
  }
  throw new ZooKeeperLauncherError(
    'UNREACHABLE',
    `expireZooKeeperSession: no server of ${connectString} closed session 0x${id.toString(16)} within ${timeoutMs} ms (${failures.slice(-3).join('; ') || 'no time left'})`,
  );
}

function parseSessionId(sessionId: bigint | string): bigint {
  if (typeof sessionId === 'bigint') return BigInt.asIntN(64, sessionId);
  const hex = sessionId.replace(/^0x/i, '');
  if (!/^[0-9a-f]{1,16}$/i.test(hex)) {
    throw new RangeError(
      `expireZooKeeperSession: sessionId "${sessionId}" is not a hex session id`,
    );
  }
  return BigInt.asIntN(64, BigInt(`0x${hex}`));
}

/**
 * One attempt on one server: connect to the session, then close it. Sets `progress.granted`
 * once the server has handed it the session (the close is on its way then), and
 * `progress.unanswered` when the server closed the connection, after both requests had gone,
 * without answering either.
 */
function closeSession(
  host: string,
  port: number,
  id: bigint,
  timeoutMs: number,
  progress: { granted: boolean; unanswered: boolean },
): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const socket: Socket = connect({ host, port });
    let received = Buffer.alloc(0);
    let phase: 'connecting' | 'closing' = 'connecting';
    let done = false;
    const finish = (error: Error | undefined, result = false) => {
      done = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.destroy();
      if (error) reject(error);
      else resolve(result);
    };
    const timer = setTimeout(
      () => finish(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('error', (error) => finish(error));
    let sent = false;
    let answered = false;
    socket.on('close', () => {
      if (!done && sent && !answered) progress.unanswered = true;
      finish(new Error('the server closed the connection'));
    });
    socket.on('connect', () => {
      const password = zooKeeperSessionPassword(id);
      const body = Buffer.alloc(4 + 8 + 4 + 8 + 4 + password.length + 1);
      let at = body.writeInt32BE(0, 0); // protocolVersion
      at = body.writeBigInt64BE(0n, at); // lastZxidSeen
      at = body.writeInt32BE(30_000, at); // timeOut: any; the session keeps its own
      at = body.writeBigInt64BE(id, at);
      at = body.writeInt32BE(password.length, at);
      at += password.copy(body, at);
      body.writeUInt8(0, at); // readOnly: false
      const close = Buffer.alloc(8);
      close.writeInt32BE(1, 0); // xid
      close.writeInt32BE(CLOSE_SESSION, 4);
      // Both at once: the server reads the close as soon as the session is ours, leaving the
      // owner's client the least time to take it back in between.
      socket.write(Buffer.concat([frame(body), frame(close)]), () => {
        sent = true;
      });
    });
    socket.on('data', (chunk: Buffer) => {
      answered = true;
      received = Buffer.concat([received, chunk]);
      for (;;) {
        if (received.length < 4) return;
        const length = received.readInt32BE(0);
        if (received.length < 4 + length) return;
        const packet = received.subarray(4, 4 + length);
        received = received.subarray(4 + length);
        if (phase === 'connecting') {
          // ConnectResponse: protocolVersion, timeOut, sessionId, passwd. A refused session
          // (expired, or a wrong password) comes back with timeOut 0 and session id 0.
          const timeOut = packet.readInt32BE(4);
          const granted = packet.readBigInt64BE(8);
          if (timeOut <= 0 || granted !== id) {
            finish(undefined, false);
            return;
          }
          phase = 'closing';
          progress.granted = true;
        } else {
          // ReplyHeader: xid, zxid, err.
          const err = packet.readInt32BE(12);
          if (err !== 0) finish(new Error(`closeSession answered error ${err}`));
          else finish(undefined, true);
          return;
        }
      }
    });
  });
}

function frame(body: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length, 0);
  return Buffer.concat([length, body]);
}
