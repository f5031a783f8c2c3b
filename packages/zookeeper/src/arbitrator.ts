import {
  DEFAULTS,
  InvalidArgumentError,
  STATE_BACKEND,
  type StateBackend,
  type StateCapable,
} from '@tenure/core';
import {
  describe,
  type OptionNames,
  QueueArbitrator,
  type QueueArbitratorParts,
  validateDuration,
  validateElectionName,
  validateLogger,
  validateName,
  validateOptions,
} from '@tenure/core/internal';
import type {
  ZooKeeperAclEntry,
  ZooKeeperArbitrator,
  ZooKeeperArbitratorOptions,
} from './options.js';

/** The keys of {@link ZooKeeperArbitratorOptions}. */
const ZOOKEEPER_OPTIONS = {
  connect: true,
  sessionTimeoutMs: true,
  ttlMs: true,
  maxDrift: true,
  marginMs: true,
  root: true,
  auth: true,
  acl: true,
  requestTimeoutMs: true,
  logger: true,
  lazySession: true,
} as const satisfies OptionNames<ZooKeeperArbitratorOptions>;

import { ZkSessionTransport } from './session-transport.js';
import { ZkStateBackend, type ZkStateContext } from './state-backend.js';
import { type ZkAcl, zk } from './zk-client.js';
import { ZkPresence } from './zk-presence.js';
import { ZkQueue } from './zk-queue.js';

class ZooKeeperArbitratorImpl extends QueueArbitrator implements ZooKeeperArbitrator, StateCapable {
  readonly root: string;
  readonly #transport: ZkSessionTransport;
  readonly #state: ZkStateContext;

  constructor(
    root: string,
    acl: ZkAcl[],
    transport: ZkSessionTransport,
    timeoutMs: () => number,
    parts: Pick<QueueArbitratorParts, 'session' | 'onGranted' | 'logger' | 'lazySession'>,
  ) {
    // One batch of the consistency checks for all the elections (they fall due together).
    const presence = new ZkPresence({ connection: (ms) => transport.connection(ms), timeoutMs });
    super({
      ...parts,
      kind: 'ZooKeeper',
      transport,
      // ZooKeeper paths: "/" separates nodes, so an election is one node name.
      nameRules: { allowSlash: false },
      backend: (name) => {
        validateNodeName('name', name);
        return new ZkQueue(name, {
          connectionOf: (sessionId) => transport.connectionOf(sessionId),
          connection: (ms) => transport.connection(ms),
          root: root === '/' ? '' : root,
          acl,
          timeoutMs,
          present: (keys) => presence.present(keys),
        });
      },
      shutdown: () => transport.shutdown(),
    });
    this.root = root;
    this.#transport = transport;
    this.#state = {
      connection: (ms) => transport.connection(ms),
      onConnection: (listener) => transport.onConnection(listener),
      root: root === '/' ? '' : root,
      acl,
      timeoutMs,
    };
    // The client saw the session expire: its terms end `session-lost` at once.
    transport.onExpired = (id) => this.sessionLost(id);
    // A lazy arbitrator's connection for reads is gone: set its watches again.
    transport.onReadsReset = () => this.resync();
  }

  expireSession(): Promise<void> {
    return this.#transport.expire();
  }

  [STATE_BACKEND](election: string, map: string): StateBackend {
    validateElectionName('election', election, { allowSlash: false });
    validateNodeName('election', election);
    validateName('map', map);
    return new ZkStateBackend(this.#state, election, map);
  }
}

/**
 * Connects to a ZooKeeper ensemble: one client and session shared by every election of the
 * arbitrator. Elections use the layout of Curator's `LeaderLatch` (`<root>/<election>/
 * _c_<uuid>-latch-<seq>`, data = the candidate value), so Curator participants can share them;
 * the epoch is the leader node's czxid.
 *
 * tenure's own heartbeat sets the local deadline: `send time of the last answered heartbeat +
 * negotiated timeout × (1 − maxDrift) − margin`. A heartbeat (`sync`, a pause of a quarter of
 * the ensemble's minSessionTimeout, `sync`, a write that changes nothing; the next one a quarter
 * of the timeout after it) is answered only once the quorum leader, which alone expires sessions, has counted the
 * session alive after the heartbeat began (docs/zookeeper.md), so neither a follower cut off
 * from the leader nor a leader cut off from its followers can renew.
 * When it passes, terms end `expired`, before the server can expire
 * the session; an unanswered heartbeat also drops the connection so the client reconnects
 * (node-zookeeper-client has no read timeout). When the session expires, terms end
 * `session-lost`, a new client is opened and every campaigning election rejoins.
 *
 * Returns at once; connection problems surface as `error` and `connection` events.
 *
 * @throws {@link @tenure/core!InvalidArgumentError} for invalid options, naming the field.
 */
export function createZooKeeperArbitrator(
  options: ZooKeeperArbitratorOptions,
): ZooKeeperArbitrator {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object with at least `connect`');
  }
  validateOptions<ZooKeeperArbitratorOptions>('options', options, ZOOKEEPER_OPTIONS);
  if (options.auth !== undefined && options.auth !== null && typeof options.auth === 'object') {
    validateOptions<{ username: string; password: string }>('auth', options.auth, {
      username: true,
      password: true,
    });
  }
  const connectString = parseConnect(options.connect);
  if (
    options.ttlMs !== undefined &&
    options.sessionTimeoutMs !== undefined &&
    options.ttlMs !== options.sessionTimeoutMs
  ) {
    throw new InvalidArgumentError('sessionTimeoutMs', 'give sessionTimeoutMs or ttlMs, not both');
  }
  const sessionTimeoutMs = validateDuration(
    options.sessionTimeoutMs === undefined ? 'ttlMs' : 'sessionTimeoutMs',
    options.sessionTimeoutMs ?? options.ttlMs ?? DEFAULTS.ttlMs,
  );
  const root = parseRoot(options.root ?? '/tenure');
  const requestTimeoutMs =
    options.requestTimeoutMs === undefined
      ? undefined
      : validateDuration('requestTimeoutMs', options.requestTimeoutMs, { max: 60_000 });
  const auth = options.auth;
  if (
    auth !== undefined &&
    (typeof auth !== 'object' ||
      auth === null ||
      typeof auth.username !== 'string' ||
      auth.username === '' ||
      auth.username.includes(':') ||
      typeof auth.password !== 'string')
  ) {
    throw new InvalidArgumentError(
      'auth',
      'must be { username: non-empty string without ":", password: string }',
    );
  }
  const acl = parseAcl(
    options.acl ?? (auth ? 'creator-all-world-read' : 'open'),
    auth !== undefined,
  );
  if (options.lazySession !== undefined && typeof options.lazySession !== 'boolean') {
    throw new InvalidArgumentError('lazySession', 'must be true or false');
  }
  const logger = validateLogger('logger', options.logger);

  let timeoutMs = requestTimeoutMs ?? Math.min(5_000, sessionTimeoutMs / 3);
  const transport = new ZkSessionTransport(
    { connectString, ...(auth ? { digest: `${auth.username}:${auth.password}` } : {}) },
    () => timeoutMs,
    options.lazySession ? sessionTimeoutMs : undefined,
  );
  return new ZooKeeperArbitratorImpl(root, acl, transport, () => timeoutMs, {
    logger,
    lazySession: options.lazySession ?? false,
    session: {
      ttlMs: sessionTimeoutMs,
      maxDrift: options.maxDrift,
      marginMs: options.marginMs,
      // A heartbeat takes a pause (a quarter of the ensemble's minSessionTimeout, at most of
      // the session timeout) plus three requests: starting the next a quarter of the timeout
      // after it ends leaves, even when the pause is a quarter of the timeout, a quarter of it
      // minus the margin for six requests before the deadline of the one before.
      renewFraction: 1 / 4,
    },
    onGranted: (granted) => {
      // The server clamped the timeout: scale the request deadline with it.
      if (requestTimeoutMs === undefined) timeoutMs = Math.min(5_000, granted / 3);
    },
  });
}

function parseConnect(input: unknown): string {
  const list =
    typeof input === 'string'
      ? input.split(',')
      : Array.isArray(input) && input.every((e) => typeof e === 'string')
        ? (input as string[])
        : undefined;
  if (!list) {
    throw new InvalidArgumentError(
      'connect',
      `must be "host:port,host:port" or an array of "host:port" (got ${describe(input)})`,
    );
  }
  const hosts = list.map((e) => e.trim()).filter((e) => e !== '');
  if (hosts.length === 0) throw new InvalidArgumentError('connect', 'names no server');
  for (const host of hosts) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d+))?$/.exec(host);
    const port = match?.[2] === undefined ? 2181 : Number(match[2]);
    if (!match || !Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new InvalidArgumentError(
        'connect',
        `"${host}" is not host:port (a chroot is not supported: use \`root\`)`,
      );
    }
  }
  return hosts.map((h) => (/:\d+$/.test(h) && !h.endsWith(']') ? h : `${h}:2181`)).join(',');
}

function parseRoot(root: unknown): string {
  if (typeof root !== 'string' || !root.startsWith('/')) {
    throw new InvalidArgumentError(
      'root',
      `must be an absolute path like "/tenure" (got ${describe(root)})`,
    );
  }
  if (root === '/') return root;
  if (root.endsWith('/')) {
    throw new InvalidArgumentError('root', `must not end with "/" (got "${root}")`);
  }
  const segments = root.slice(1).split('/');
  for (const segment of segments) validateNodeName('root', segment);
  if (segments[0] === 'zookeeper') {
    throw new InvalidArgumentError('root', '/zookeeper is reserved by ZooKeeper');
  }
  return root;
}

/** A node name ZooKeeper accepts: not empty, `.` or `..`, no `/`, none of its banned characters. */
function validateNodeName(field: string, name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new InvalidArgumentError(field, `"${name}" is not a valid ZooKeeper node name`);
  }
  // ZooKeeper's PathUtils rejects these code points.
  if (Array.from(name).some(bannedInPaths)) {
    throw new InvalidArgumentError(
      field,
      `"${name}" holds a character ZooKeeper does not allow in paths`,
    );
  }
  if (field === 'name' && name === 'tenure-data') {
    throw new InvalidArgumentError(
      field,
      '"tenure-data" is reserved: tenure stores term data there',
    );
  }
}

/** ZooKeeper's PathUtils rejects these UTF-16 code units. */
function bannedInPaths(char: string): boolean {
  const unit = char.charCodeAt(0);
  return (
    unit <= 0x1f ||
    (unit >= 0x7f && unit <= 0x9f) ||
    (unit >= 0xd800 && unit <= 0xf8ff) ||
    unit >= 0xfff0
  );
}

const PERMISSIONS: Record<string, keyof typeof zk.Permission> = {
  c: 'CREATE',
  r: 'READ',
  w: 'WRITE',
  d: 'DELETE',
  a: 'ADMIN',
};

function parseAcl(
  acl: 'creator-all-world-read' | 'open' | readonly ZooKeeperAclEntry[],
  authenticated: boolean,
): ZkAcl[] {
  if (acl === 'open') return [new zk.ACL(zk.Permission.ALL, new zk.Id('world', 'anyone'))];
  if (acl === 'creator-all-world-read') {
    if (!authenticated) {
      throw new InvalidArgumentError(
        'acl',
        '"creator-all-world-read" needs `auth` (a creator to name)',
      );
    }
    return [
      new zk.ACL(zk.Permission.ALL, new zk.Id('auth', '')),
      new zk.ACL(zk.Permission.READ, new zk.Id('world', 'anyone')),
    ];
  }
  if (!Array.isArray(acl) || acl.length === 0) {
    throw new InvalidArgumentError(
      'acl',
      'must be "creator-all-world-read", "open" or a non-empty array of { scheme, id, permissions }',
    );
  }
  return acl.map((entry: ZooKeeperAclEntry, index: number) => {
    if (
      typeof entry !== 'object' ||
      entry === null ||
      typeof entry.scheme !== 'string' ||
      typeof entry.id !== 'string' ||
      typeof entry.permissions !== 'string' ||
      !/^[crwda]+$/.test(entry.permissions)
    ) {
      throw new InvalidArgumentError(
        'acl',
        `entry ${index} must be { scheme: string, id: string, permissions: letters of "crwda" }`,
      );
    }
    let permission = 0;
    for (const letter of entry.permissions) {
      permission |= zk.Permission[PERMISSIONS[letter] as keyof typeof zk.Permission];
    }
    return new zk.ACL(permission, new zk.Id(entry.scheme, entry.id));
  });
}
