/**
 * ZooKeeper's four-letter words (`srvr`, `mntr`, `stat`, `cons`, `ruok`, …): a command sent as
 * four bytes on the client port, answered in plain text before the server closes the connection.
 *
 * @packageDocumentation
 */

import { connect } from 'node:net';
import { ZooKeeperLauncherError } from './zookeeper-launcher-error.js';

/** A ZooKeeper server's client address. */
export interface ZooKeeperServerAddress {
  /** Host name or address. */
  readonly host: string;
  /** The client port. */
  readonly port: number;
}

/** Options of {@link fourLetterWord}. */
export interface FourLetterWordOptions {
  /** Give up when the whole answer has not arrived within this many ms. Default 2 000. */
  timeoutMs?: number;
  /** Cancels the request (it rejects with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * What a server in one of the launchers' `Mode:` lines says it is: the only server
 * (`standalone`), or the `leader` or a `follower` of an ensemble.
 */
export type ZooKeeperMode = 'leader' | 'follower' | 'standalone';

const DEFAULT_TIMEOUT_MS = 2_000;

/**
 * Sends the four-letter word `word` to `server` and resolves with the server's whole answer.
 * A server answers a word outside its `4lw.commands.whitelist` with a sentence saying so, and
 * one that is not yet serving answers `srvr`/`mntr` with "This ZooKeeper instance is not
 * currently serving requests"; both are resolved as they are. Rejects with a
 * {@link ZooKeeperLauncherError} of code `UNREACHABLE` when the connection fails or the answer
 * is not complete within `timeoutMs` (a paused server accepts the connection, then says
 * nothing). Leaves no socket or timer behind.
 */
export function fourLetterWord(
  server: ZooKeeperServerAddress,
  word: string,
  options: FourLetterWordOptions = {},
): Promise<string> {
  if (!/^[a-z]{4}$/.test(word)) {
    return Promise.reject(
      new RangeError(`fourLetterWord: "${word}" is not four lowercase letters`),
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signal = options.signal;
  const where = `${server.host}:${server.port}`;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const chunks: Buffer[] = [];
    const socket = connect({ host: server.host, port: server.port });
    let settled = false;
    const finish = (error: unknown, answer?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error === undefined) resolve(answer ?? '');
      else reject(error);
    };
    const fail = (why: string, cause?: unknown) =>
      finish(
        new ZooKeeperLauncherError(
          'UNREACHABLE',
          `ZooKeeper at ${where} did not answer "${word}": ${why}`,
          cause === undefined ? {} : { cause },
        ),
      );
    const onAbort = () => finish(signal?.reason);
    const timer = setTimeout(() => fail(`no complete answer within ${timeoutMs} ms`), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    // No half-close: some servers drop a connection whose end they read with the command.
    socket.on('connect', () => socket.write(word));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => finish(undefined, Buffer.concat(chunks).toString('utf8')));
    socket.on('close', () => fail('the connection closed without an answer'));
    socket.on('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message, error));
  });
}

/**
 * The `Mode:` line of a `srvr` (or `stat`) answer, or `undefined` when there is none (a server
 * that is not serving) or it names a mode the launchers never start (`observer`, `read-only`).
 */
export function parseZooKeeperMode(srvr: string): ZooKeeperMode | undefined {
  const mode = /^Mode: (\S+)\s*$/m.exec(srvr)?.[1];
  return mode === 'leader' || mode === 'follower' || mode === 'standalone' ? mode : undefined;
}
