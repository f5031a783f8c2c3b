/**
 * `connect(url)`: one entry point from an arbitrator URL to a connected {@link Arbitrator}.
 * Each scheme maps to an adapter that is loaded only when a URL asks for it, so adding one
 * (etcd, ZooKeeper) is one entry in {@link ADAPTERS}.
 *
 * @packageDocumentation
 */

import {
  type Arbitrator,
  InvalidArgumentError,
  isTenureError,
  type LoggingOptions,
  MAX_TTL_MS,
  type TenureError,
  UnavailableError,
  type WaitOptions,
} from '@tenure/core';
import { type OptionNames, validateDuration, validateOptions } from '@tenure/core/internal';
import { createMemoryArbitrator, sharedMemoryServer } from '@tenure/memory';
import {
  type ArbitratorScheme,
  type ArbitratorTarget,
  checkSessionWindow,
  type EtcdTarget,
  formatEndpoint,
  type MemoryTarget,
  parseArbitratorUrl,
  redactUrl,
  type SessionSettings,
  type ZooKeeperTarget,
} from './arbitrator-url.js';
import { formatDuration } from './duration.js';

/**
 * How long {@link connect} waits for the first session by default, ms: 10 s, the default TTL.
 * A grant is one round trip, retried with a backoff of at most a third of the TTL, so 10 s
 * rides out an etcd or ZooKeeper leader election and a few lost requests, while a wrong URL,
 * a firewall or a stopped cluster fails a deployment in seconds instead of never.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** TLS to an etcd cluster (`etcd://` only: the ZooKeeper client has no TLS). */
export interface ConnectTlsOptions {
  /** The CA certificate(s) that signed the servers' certificates (PEM). */
  ca: string | Buffer;
  /** The client certificate (PEM), for servers that require client authentication. */
  cert?: string | Buffer;
  /** The client certificate's private key (PEM); goes with `cert`. */
  key?: string | Buffer;
}

/** Credentials: an etcd user, or ZooKeeper digest authentication (`addauth digest user:password`). */
export interface ConnectAuthOptions {
  /** The etcd user, or the ZooKeeper digest user. Non-empty. */
  username: string;
  /** Its password. */
  password: string;
}

/**
 * Options of {@link connect}: session settings the URL's query may also carry, how long to
 * wait for the first session, credentials, and the arbitrator's `logger` (see
 * {@link LoggingOptions}).
 */
export interface ConnectOptions extends LoggingOptions {
  /** The session TTL to request, ms (URL: `ttl=10s`). Default 10 000. */
  ttlMs?: number;
  /** The assumed worst clock-rate difference (URL: `maxDrift=0.01`). Default 0.01. */
  maxDrift?: number;
  /** The safety margin subtracted from every local deadline, ms (URL: `margin=100ms`). Default 100. */
  marginMs?: number;
  /**
   * How long `connect()` waits for the arbitrator to grant the first session, ms (URL:
   * `connectTimeout=5s`). Past it, `connect()` closes the arbitrator and rejects with
   * `UnavailableError`, naming the URL and the last connection error. `0` waits for as long
   * as it takes (a service started before its cluster). Default 10 000
   * ({@link DEFAULT_CONNECT_TIMEOUT_MS}).
   */
  connectTimeoutMs?: number;
  /**
   * Resolve at once, without waiting for a session: etcd and ZooKeeper grant it with the first
   * campaign (memory at once), and `ttlMs` is the requested TTL until then. For processes that
   * only read (leader, candidates, observe, get): they never ask for a lease or a session, so a
   * user whose role may only read can use them. Default `false`.
   */
  lazySession?: boolean;
  /** TLS to an etcd cluster (`etcd://` only). Without it, etcd is reached over plain HTTP/2. */
  tls?: ConnectTlsOptions;
  /** An etcd user, or ZooKeeper digest credentials (`etcd://` and `zk://`). */
  auth?: ConnectAuthOptions;
}

/** How one URL scheme becomes an arbitrator. */
interface SchemeAdapter<Target extends ArbitratorTarget> {
  /** Opens a session on the arbitrator the target designates (`url`: for messages). */
  open(target: Target, settings: AdapterSettings, url: string): Promise<Arbitrator>;
}

/** What every adapter is given besides its target. */
type AdapterSettings = Omit<SessionSettings, 'connectTimeoutMs'> &
  LoggingOptions &
  Pick<ConnectOptions, 'tls' | 'auth' | 'lazySession'>;

type AdapterTable = {
  readonly [S in ArbitratorScheme]: SchemeAdapter<Extract<ArbitratorTarget, { scheme: S }>>;
};

/**
 * Adapters by scheme. An adapter package that lands replaces its `notAvailableYet` entry with
 * a dynamic `import()` of the package, so a process only loads the clients it uses.
 */
const ADAPTERS: AdapterTable = {
  memory: { open: openMemory },
  etcd: { open: openEtcd },
  zk: { open: openZooKeeper },
};

/**
 * Connects to the arbitrator a URL designates and waits for its first session:
 *
 * - `memory://` — the process-wide in-process server (the one `createMemoryArbitrator()`
 *   joins); `memory://name` — a named one, created on first use (`sharedMemoryServer(name)`):
 *   arbitrators naming the same server elect together.
 * - `etcd://h1:2379,h2:2379/prefix` — an etcd cluster; elections live under `prefix/`.
 * - `zk://h1:2181,h2:2181/root` — a ZooKeeper ensemble; elections live under `/root` (the
 *   latch path of election `jobs` is `/root/jobs`, as for Curator's `LeaderLatch`).
 *
 * Query parameters: `ttl` (a duration such as `500ms`, `5s`, `1m`), `maxDrift`, `margin`,
 * `connectTimeout`, and for memory `latency`. A setting may come from the URL or from
 * `options`; giving both with different values is an error, so neither silently overrides the
 * other. Credentials (`options.tls`, `options.auth`) never come from the URL.
 *
 * Resolves once the arbitrator has granted the session, so `ttlMs` is the granted TTL (etcd
 * raises a TTL below its minimum, ZooKeeper clamps it to its tick bounds); with
 * `lazySession: true`, at once. Rejects with {@link UnavailableError} when no session is
 * granted within `connectTimeoutMs` (default 10 s; `0` waits for as long as it takes), having
 * closed the arbitrator; with the arbitrator's error when it refuses for good (e.g.
 * `PermissionDeniedError` for bad credentials), also closed.
 *
 * Rejects with {@link InvalidArgumentError} (field `url`) for a malformed URL, an unknown
 * scheme, a bad host, port, path or duration, a path the adapter refuses, a scheme whose
 * adapter package is not installed (the message names it: `npm i @tenure/etcd` or
 * `npm i @tenure/zookeeper`), and session settings that leave a term valid for no longer than
 * one renewal interval (`ttl × (1 − maxDrift) − margin ≤ ttl/3`), naming the URL parameters
 * that set them (field `ttlMs`, `maxDrift` or `marginMs` when only `options` did); field `tls`
 * or `auth` for credentials the scheme cannot use.
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Arbitrator> {
  const { arbitrator, connectTimeoutMs } = await openFromUrl(url, options);
  if (options.lazySession === true) return arbitrator;
  await awaitSession(arbitrator, url, connectTimeoutMs);
  return arbitrator;
}

/**
 * {@link connect} without waiting for the session: the arbitrator as its adapter returns it,
 * and the `connectTimeoutMs` in force (URL or options, else the default). For the CLI, which
 * bounds its first request itself.
 *
 * @internal
 */
export async function openFromUrl(
  url: string,
  options: ConnectOptions = {},
): Promise<{ arbitrator: Arbitrator; connectTimeoutMs: number }> {
  const target = parseArbitratorUrl(url);
  const merged = mergeSettings(url, target, options);
  const { connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS, ...settings } = merged;
  // Before the adapter, which would name its own field (`ttlMs`) whatever the caller wrote.
  checkSessionWindow(url, target, options);
  const adapterSettings: AdapterSettings = { ...settings, ...credentials(target, options) };
  if (options.logger !== undefined) adapterSettings.logger = options.logger;
  if (options.lazySession === true) adapterSettings.lazySession = true;
  const shown = redactUrl(url);
  // The switch narrows the target to the scheme's own type for its adapter.
  let opening: Promise<Arbitrator>;
  switch (target.scheme) {
    case 'memory':
      opening = ADAPTERS.memory.open(target, adapterSettings, shown);
      break;
    case 'etcd':
      opening = ADAPTERS.etcd.open(target, adapterSettings, shown);
      break;
    case 'zk':
      opening = ADAPTERS.zk.open(target, adapterSettings, shown);
      break;
  }
  return { arbitrator: await withUrlBlame(url, target, opening), connectTimeoutMs };
}

/** `options.tls` and `options.auth`, refused where the scheme cannot use them. */
function credentials(
  target: ArbitratorTarget,
  options: ConnectOptions,
): Pick<ConnectOptions, 'tls' | 'auth'> {
  const { tls, auth } = options;
  if (target.scheme === 'memory') {
    if (tls !== undefined) throw new InvalidArgumentError('tls', 'memory:// takes no TLS');
    if (auth !== undefined)
      throw new InvalidArgumentError('auth', 'memory:// takes no credentials');
  }
  if (target.scheme === 'zk' && tls !== undefined) {
    throw new InvalidArgumentError(
      'tls',
      'is for etcd:// only: the ZooKeeper client has no TLS (zk:// takes auth, digest credentials)',
    );
  }
  return { ...(tls === undefined ? {} : { tls }), ...(auth === undefined ? {} : { auth }) };
}

/** An arbitrator that can wait for its session: every adapter's (they are QueueArbitrators). */
interface SessionAwaitable {
  whenSessionReady(options?: WaitOptions): Promise<void>;
}

function canAwaitSession(arbitrator: Arbitrator): arbitrator is Arbitrator & SessionAwaitable {
  // By shape rather than instanceof QueueArbitrator: an adapter may have been installed with
  // its own copy of @tenure/core.
  return typeof (arbitrator as Partial<SessionAwaitable>).whenSessionReady === 'function';
}

/**
 * Waits for `arbitrator`'s first session, at most `timeoutMs` (`0`: no bound); on failure
 * closes it before rejecting.
 */
async function awaitSession(arbitrator: Arbitrator, url: string, timeoutMs: number): Promise<void> {
  if (!canAwaitSession(arbitrator)) return;
  let lastError: TenureError | undefined;
  const onError = (error: TenureError) => {
    lastError = error;
  };
  arbitrator.on('error', onError);
  const timeout = new AbortController();
  const timer = timeoutMs === 0 ? undefined : setTimeout(() => timeout.abort(), timeoutMs);
  try {
    await arbitrator.whenSessionReady({ signal: timeout.signal });
  } catch (error) {
    clearTimeout(timer);
    arbitrator.off('error', onError);
    await arbitrator.close().catch(() => {});
    if (!timeout.signal.aborted) throw error;
    const last =
      lastError === undefined
        ? 'no error reported (no server answered)'
        : `last error: ${lastError.message}`;
    throw new UnavailableError(
      `connect("${redactUrl(url)}"): no session within ${formatDuration(timeoutMs)} (connectTimeoutMs; 0 waits for as long as it takes); ${last}`,
      lastError === undefined ? {} : { cause: lastError },
    );
  } finally {
    clearTimeout(timer);
    arbitrator.off('error', onError);
  }
}

/** The keys of {@link ConnectOptions}. */
const CONNECT_OPTIONS = {
  ttlMs: true,
  maxDrift: true,
  marginMs: true,
  connectTimeoutMs: true,
  lazySession: true,
  tls: true,
  auth: true,
  logger: true,
} as const satisfies OptionNames<ConnectOptions>;

const SETTING_PARAMS = {
  ttlMs: 'ttl',
  maxDrift: 'maxDrift',
  marginMs: 'margin',
  connectTimeoutMs: 'connectTimeout',
} as const;

function mergeSettings(
  url: string,
  target: ArbitratorTarget,
  options: ConnectOptions,
): SessionSettings {
  validateOptions<ConnectOptions>('options', options, CONNECT_OPTIONS);
  if (options.connectTimeoutMs !== undefined && options.connectTimeoutMs !== 0) {
    validateDuration('connectTimeoutMs', options.connectTimeoutMs, { max: MAX_TTL_MS });
  }
  if (options.lazySession !== undefined && typeof options.lazySession !== 'boolean') {
    throw new InvalidArgumentError(
      'lazySession',
      `must be a boolean (got ${typeof options.lazySession})`,
    );
  }
  const merged: { -readonly [K in keyof SessionSettings]: SessionSettings[K] } = {};
  for (const field of Object.keys(SETTING_PARAMS) as Array<keyof typeof SETTING_PARAMS>) {
    const fromUrl = target[field];
    const fromOptions = options[field];
    if (fromUrl !== undefined && fromOptions !== undefined && fromUrl !== fromOptions) {
      throw new InvalidArgumentError(
        'url',
        `"${redactUrl(url)}" sets ${SETTING_PARAMS[field]} while options.${field} is ${String(fromOptions)}; set it in one place`,
      );
    }
    const value = fromUrl ?? fromOptions;
    if (value !== undefined) merged[field] = value;
  }
  return merged;
}

/** The URL query parameter behind each setting an adapter may refuse. */
const PARAM_OF_FIELD: Readonly<Record<string, string>> = {
  ...SETTING_PARAMS,
  latencyMs: 'latency',
};

/** The adapter option each scheme's URL path sets, and its value (`undefined`: no path). */
const PATH_FIELD: Readonly<
  Record<string, { field: string; of(target: ArbitratorTarget): string | undefined }>
> = {
  zk: {
    field: 'root',
    of: (target) => (target.scheme === 'zk' && target.root !== '/' ? target.root : undefined),
  },
  etcd: {
    field: 'namespace',
    of: (target) =>
      target.scheme === 'etcd' && target.prefix !== '' ? `/${target.prefix}` : undefined,
  },
};

/**
 * An adapter refuses a setting with an {@link InvalidArgumentError} naming its own field
 * (`ttlMs`); when the URL carried that setting, the URL is what the caller must fix.
 */
async function withUrlBlame(
  url: string,
  target: ArbitratorTarget,
  opening: Promise<Arbitrator>,
): Promise<Arbitrator> {
  try {
    return await opening;
  } catch (error) {
    // By shape rather than instanceof: the adapter may have been installed with its own copy
    // of @tenure/core.
    if (isTenureError(error) && error.code === 'INVALID_ARGUMENT' && 'field' in error) {
      const field = String(error.field);
      const param = PARAM_OF_FIELD[field];
      const setByUrl = Reflect.get(target, field) !== undefined;
      if (param !== undefined && setByUrl) {
        throw new InvalidArgumentError(
          'url',
          `"${redactUrl(url)}" sets ${param}, which the arbitrator refuses: ${error.message}`,
          { cause: error },
        );
      }
      // The servers come from the URL's hosts.
      if (field === 'connect' || field === 'endpoints') {
        throw new InvalidArgumentError(
          'url',
          `"${redactUrl(url)}" has hosts the arbitrator refuses: ${error.message}`,
          { cause: error },
        );
      }
      // The ZooKeeper root and the etcd namespace come from the URL's path.
      const path = PATH_FIELD[target.scheme];
      if (field === path?.field && path.of(target) !== undefined) {
        throw new InvalidArgumentError(
          'url',
          `"${redactUrl(url)}" has the path "${path.of(target)}", which the arbitrator refuses: ${error.message}`,
          { cause: error },
        );
      }
    }
    throw error;
  }
}

async function openMemory(target: MemoryTarget, settings: AdapterSettings): Promise<Arbitrator> {
  // The memory arbitrator grants at once, in process: nothing to defer.
  const { lazySession: _, ...rest } = settings;
  return createMemoryArbitrator({
    ...rest,
    // `memory://` is the shared server "default", the one createMemoryArbitrator() joins.
    server: sharedMemoryServer(target.server ?? 'default'),
    ...(target.latencyMs === undefined ? {} : { latencyMs: target.latencyMs }),
  });
}

async function openEtcd(
  target: EtcdTarget,
  settings: AdapterSettings,
  url: string,
): Promise<Arbitrator> {
  const { createEtcdArbitrator } = await loadAdapter(
    '@tenure/etcd',
    url,
    () => import('@tenure/etcd'),
  );
  return createEtcdArbitrator({
    ...settings,
    endpoints: target.endpoints.map(formatEndpoint),
    ...(target.prefix === '' ? {} : { namespace: `${target.prefix}/` }),
  });
}

async function openZooKeeper(
  target: ZooKeeperTarget,
  settings: AdapterSettings,
  url: string,
): Promise<Arbitrator> {
  const { createZooKeeperArbitrator } = await loadAdapter(
    '@tenure/zookeeper',
    url,
    () => import('@tenure/zookeeper'),
  );
  return createZooKeeperArbitrator({
    ...settings,
    connect: target.endpoints.map(formatEndpoint),
    root: target.root,
  });
}

/**
 * Loads an adapter package; when it is not installed (the adapters are optional peers of
 * `tenure`), an {@link InvalidArgumentError} on the URL naming the package to install. A
 * missing dependency of an installed adapter stays Node's own error.
 */
async function loadAdapter<Module>(
  name: '@tenure/etcd' | '@tenure/zookeeper',
  url: string,
  load: () => Promise<Module>,
): Promise<Module> {
  try {
    return await load();
  } catch (error) {
    if (!isMissingPackage(error, name)) throw error;
    throw new InvalidArgumentError(
      'url',
      `"${url}" needs the ${name} package, which is not installed: npm i ${name}`,
      { cause: error },
    );
  }
}

/** Whether `error` is Node's failure to resolve the package `name` itself. */
function isMissingPackage(error: unknown, name: string): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  // ESM: "Cannot find package '@tenure/etcd' imported from …"; CommonJS: "Cannot find module
  // '@tenure/etcd'".
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    (error.message.includes(`'${name}'`) || error.message.includes(`"${name}"`))
  );
}
