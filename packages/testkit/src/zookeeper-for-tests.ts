/**
 * The ZooKeeper a test talks to: an existing ensemble named by `TENURE_ZK_CONNECT` (for example
 * the repository's docker compose file, or CI's service), else a fresh local server.
 *
 * @packageDocumentation
 */

import { Timing } from './timing.js';
import {
  type FourLetterWordOptions,
  fourLetterWord,
  type ZooKeeperServerAddress,
} from './zookeeper-four-letter-word.js';
import { ZK_CONNECT_ENV } from './zookeeper-install.js';
import { ZooKeeperLauncherError } from './zookeeper-launcher-error.js';
import {
  type StartZooKeeperOptions,
  startZooKeeper,
  type ZooKeeperNode,
} from './zookeeper-node.js';

/**
 * The connect string in `TENURE_ZK_CONNECT` (`host:port` entries, comma-separated, blanks
 * ignored, optionally followed by a chroot such as `/tenure`), normalised without blanks; or
 * `undefined` when it is unset or blank. Throws a `RangeError` for an entry that is not
 * `host:port`, so a typo never silently falls back to a local server.
 */
export function zookeeperConnectFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env[ZK_CONNECT_ENV]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const slash = raw.indexOf('/');
  const chroot = slash === -1 ? '' : raw.slice(slash);
  const entries = (slash === -1 ? raw : raw.slice(0, slash))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) {
    throw new RangeError(`${ZK_CONNECT_ENV}: "${raw}" names no server`);
  }
  for (const entry of entries) parseServer(entry);
  if (chroot !== '' && !/^(\/[^/\s]+)+$/.test(chroot)) {
    throw new RangeError(`${ZK_CONNECT_ENV}: "${chroot}" is not a chroot path such as /tenure`);
  }
  return `${entries.join(',')}${chroot}`;
}

/** `host:port` (IPv6 in brackets) as an address; throws a `RangeError` for anything else. */
function parseServer(entry: string): ZooKeeperServerAddress {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(entry);
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65_535) {
    throw new RangeError(`${ZK_CONNECT_ENV}: "${entry}" is not host:port such as 127.0.0.1:2181`);
  }
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * A ZooKeeper for a test, from {@link zookeeperForTests}. Fault injection (`kill`, `pause`,
 * `resume`, `restart`) works only on a launched server; on an external ensemble those reject
 * with code `EXTERNAL_ENSEMBLE`.
 */
export interface ZooKeeperForTests extends AsyncDisposable {
  /** `'external'`: the ensemble of `TENURE_ZK_CONNECT`; `'launched'`: a server started here. */
  readonly source: 'external' | 'launched';
  /** The connect string to give clients (with the chroot of `TENURE_ZK_CONNECT`, if any). */
  readonly connectString: string;
  /** The launched server, or `undefined` for an external ensemble. */
  readonly node: ZooKeeperNode | undefined;
  /**
   * Sends a four-letter word to the launched server, or to the first server of the external
   * ensemble that answers, and resolves with its answer (see {@link ZooKeeperNode.fourLetter}).
   * An external server answers only the words in its `4lw.commands.whitelist`; for the others
   * its answer says they are not executed.
   */
  fourLetter(word: string, options?: FourLetterWordOptions): Promise<string>;
  /** {@link ZooKeeperNode.kill} of the launched server. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** {@link ZooKeeperNode.pause} of the launched server. */
  pause(): Promise<void>;
  /** {@link ZooKeeperNode.resume} of the launched server. */
  resume(): Promise<void>;
  /** {@link ZooKeeperNode.restart} of the launched server. */
  restart(): Promise<void>;
  /**
   * Stops the launched server and removes its data; for an external ensemble, does nothing
   * (the test must delete its own znodes). Idempotent.
   */
  stop(): Promise<void>;
  /** The same as {@link ZooKeeperForTests.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The ZooKeeper a test should use. When `TENURE_ZK_CONNECT` is set, that ensemble (checked to
 * answer on at least one server, else code `UNREACHABLE`): shared and left running, so tests
 * must use unique paths. Otherwise a fresh standalone server from {@link startZooKeeper} (with
 * `options`), which fails with the install instructions when ZooKeeper is missing.
 *
 * Use it for tests that need only a working ZooKeeper, so they also run against a compose or CI
 * server; tests that inject faults call {@link startZooKeeper} / `startZooKeeperEnsemble`
 * directly, since only a launched server can be killed or paused. The launch options (session
 * timeout bounds among them) do not apply to an external ensemble: its own configuration does.
 */
export async function zookeeperForTests(
  options: StartZooKeeperOptions = {},
): Promise<ZooKeeperForTests> {
  const connectString = zookeeperConnectFromEnv();
  if (connectString === undefined) return new LaunchedZooKeeper(await startZooKeeper(options));
  const servers = connectString
    .replace(/\/.*$/, '')
    .split(',')
    .map((entry) => parseServer(entry));
  await assertReachable(servers);
  return new ExternalZooKeeper(connectString, servers);
}

class LaunchedZooKeeper implements ZooKeeperForTests {
  readonly source = 'launched';
  readonly connectString: string;
  readonly node: ZooKeeperNode;

  constructor(node: ZooKeeperNode) {
    this.node = node;
    this.connectString = node.connectString;
  }

  fourLetter(word: string, options?: FourLetterWordOptions): Promise<string> {
    return this.node.fourLetter(word, options);
  }

  kill(signal?: NodeJS.Signals): Promise<void> {
    return this.node.kill(signal);
  }

  pause(): Promise<void> {
    return this.node.pause();
  }

  resume(): Promise<void> {
    return this.node.resume();
  }

  restart(): Promise<void> {
    return this.node.restart();
  }

  stop(): Promise<void> {
    return this.node.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

class ExternalZooKeeper implements ZooKeeperForTests {
  readonly source = 'external';
  readonly connectString: string;
  readonly node = undefined;
  readonly #servers: readonly ZooKeeperServerAddress[];

  constructor(connectString: string, servers: readonly ZooKeeperServerAddress[]) {
    this.connectString = connectString;
    this.#servers = servers;
  }

  async fourLetter(word: string, options?: FourLetterWordOptions): Promise<string> {
    let last: unknown;
    for (const server of this.#servers) {
      try {
        return await fourLetterWord(server, word, options);
      } catch (error) {
        if (!(error instanceof ZooKeeperLauncherError)) throw error;
        last = error;
      }
    }
    throw last;
  }

  kill(): Promise<void> {
    return this.#refuse('kill');
  }

  pause(): Promise<void> {
    return this.#refuse('pause');
  }

  resume(): Promise<void> {
    return this.#refuse('resume');
  }

  restart(): Promise<void> {
    return this.#refuse('restart');
  }

  async stop(): Promise<void> {}

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #refuse(call: string): Promise<never> {
    throw new ZooKeeperLauncherError(
      'EXTERNAL_ENSEMBLE',
      `${call}() needs a ZooKeeper started by the testkit, but this test uses the external ` +
        `ensemble ${ZK_CONNECT_ENV}=${this.connectString}; a test that injects faults must use ` +
        'startZooKeeper() or startZooKeeperEnsemble(), which need the local install.',
    );
  }
}

async function assertReachable(servers: readonly ZooKeeperServerAddress[]): Promise<void> {
  const timeoutMs = new Timing(1_000).scale(3_000);
  const errors: string[] = [];
  for (const server of servers) {
    try {
      // Any answer proves reachability, even "srvr is not executed because it is not in the
      // whitelist"; whether the ensemble has a quorum is its owner's business.
      await fourLetterWord(server, 'srvr', { timeoutMs });
      return;
    } catch (error) {
      errors.push(error instanceof Error ? error.message : String(error));
    }
  }
  throw new ZooKeeperLauncherError(
    'UNREACHABLE',
    `${ZK_CONNECT_ENV} is set, but no server answered (${errors.join('; ')}). Start that ` +
      `ensemble, or unset ${ZK_CONNECT_ENV} to have the tests launch ZooKeeper locally.`,
  );
}
