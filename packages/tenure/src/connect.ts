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
} from '@tenure/core';
import { type OptionNames, validateOptions } from '@tenure/core/internal';
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

/**
 * Options of {@link connect}: session settings the URL's query may also carry, and the
 * arbitrator's `logger` (see {@link LoggingOptions}).
 */
export interface ConnectOptions extends LoggingOptions {
  /** The session TTL to request, ms (URL: `ttl=10s`). Default 10 000. */
  ttlMs?: number;
  /** The assumed worst clock-rate difference (URL: `maxDrift=0.01`). Default 0.01. */
  maxDrift?: number;
  /** The safety margin subtracted from every local deadline, ms (URL: `margin=100ms`). Default 100. */
  marginMs?: number;
}

/** How one URL scheme becomes an arbitrator. */
interface SchemeAdapter<Target extends ArbitratorTarget> {
  /** Opens a session on the arbitrator the target designates (`url`: for messages, redacted). */
  open(
    target: Target,
    settings: SessionSettings & LoggingOptions,
    url: string,
  ): Promise<Arbitrator>;
}

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
 * Connects to the arbitrator a URL designates and opens its session:
 *
 * - `memory://` — the process-wide in-process server (the one `createMemoryArbitrator()`
 *   joins); `memory://name` — a named one, created on first use (`sharedMemoryServer(name)`):
 *   arbitrators naming the same server elect together.
 * - `etcd://h1:2379,h2:2379/prefix` — an etcd cluster; elections live under `prefix/`.
 * - `zk://h1:2181,h2:2181/root` — a ZooKeeper ensemble; elections live under `/root` (the
 *   latch path of election `jobs` is `/root/jobs`, as for Curator's `LeaderLatch`).
 *
 * Query parameters: `ttl` (a duration such as `500ms`, `5s`, `1m`), `maxDrift`, `margin`, and
 * for memory `latency`. A setting may come from the URL or from `options`; giving both with
 * different values is an error, so neither silently overrides the other.
 *
 * Rejects with {@link InvalidArgumentError} (field `url`) for a malformed URL, an unknown
 * scheme, a bad host, port, path or duration, a path the adapter refuses, and session settings
 * that leave a term valid for no longer than one renewal interval (`ttl × (1 − maxDrift) −
 * margin ≤ ttl/3`), naming the URL parameters that set them (field `ttlMs`, `maxDrift` or
 * `marginMs` when only `options` did); and with the adapter's errors when the arbitrator
 * refuses the session.
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Arbitrator> {
  const target = parseArbitratorUrl(url);
  const settings: SessionSettings & LoggingOptions = mergeSettings(url, target, options);
  // Before the adapter, which would name its own field (`ttlMs`) whatever the caller wrote.
  checkSessionWindow(url, target, options);
  if (options.logger !== undefined) settings.logger = options.logger;
  // The switch narrows the target to the scheme's own type for its adapter.
  switch (target.scheme) {
    case 'memory':
      return withUrlBlame(url, target, ADAPTERS.memory.open(target, settings, redactUrl(url)));
    case 'etcd':
      return withUrlBlame(url, target, ADAPTERS.etcd.open(target, settings, redactUrl(url)));
    case 'zk':
      return withUrlBlame(url, target, ADAPTERS.zk.open(target, settings, redactUrl(url)));
  }
}

/** The keys of {@link ConnectOptions}. */
const CONNECT_OPTIONS = {
  ttlMs: true,
  maxDrift: true,
  marginMs: true,
  logger: true,
} as const satisfies OptionNames<ConnectOptions>;

const SETTING_PARAMS = { ttlMs: 'ttl', maxDrift: 'maxDrift', marginMs: 'margin' } as const;

function mergeSettings(
  url: string,
  target: ArbitratorTarget,
  options: ConnectOptions,
): SessionSettings {
  validateOptions<ConnectOptions>('options', options, CONNECT_OPTIONS);
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

async function openMemory(
  target: MemoryTarget,
  settings: SessionSettings & LoggingOptions,
): Promise<Arbitrator> {
  return createMemoryArbitrator({
    ...settings,
    // `memory://` is the shared server "default", the one createMemoryArbitrator() joins.
    server: sharedMemoryServer(target.server ?? 'default'),
    ...(target.latencyMs === undefined ? {} : { latencyMs: target.latencyMs }),
  });
}

async function openEtcd(
  target: EtcdTarget,
  settings: SessionSettings & LoggingOptions,
): Promise<Arbitrator> {
  const { createEtcdArbitrator } = await import('@tenure/etcd');
  return createEtcdArbitrator({
    ...settings,
    endpoints: target.endpoints.map(formatEndpoint),
    ...(target.prefix === '' ? {} : { namespace: `${target.prefix}/` }),
  });
}

async function openZooKeeper(
  target: ZooKeeperTarget,
  settings: SessionSettings & LoggingOptions,
): Promise<Arbitrator> {
  const { createZooKeeperArbitrator } = await import('@tenure/zookeeper');
  return createZooKeeperArbitrator({
    ...settings,
    connect: target.endpoints.map(formatEndpoint),
    root: target.root,
  });
}
