/**
 * Parsing and validation of arbitrator URLs (`memory://`, `etcd://…`, `zk://…`) into plain
 * targets. No I/O: {@link connect} turns a target into an arbitrator.
 *
 * @packageDocumentation
 */

import { isIPv6 } from 'node:net';
import { DEFAULTS, InvalidArgumentError, MAX_TTL_MS } from '@tenure/core';
import { formatDuration, parseDuration } from './duration.js';

/** One server of an etcd cluster or ZooKeeper ensemble. */
export interface Endpoint {
  /** A host name, an IPv4 address, or an IPv6 address without brackets. */
  readonly host: string;
  /** 1..65535. */
  readonly port: number;
}

/** Session settings any arbitrator URL may carry in its query (`?ttl=5s&margin=200ms`). */
export interface SessionSettings {
  /** `ttl`: the session TTL to request, ms. */
  readonly ttlMs?: number;
  /** `maxDrift`: the assumed worst clock-rate difference, a fraction in [0, 0.5). */
  readonly maxDrift?: number;
  /** `margin`: the safety margin subtracted from every local deadline, ms. */
  readonly marginMs?: number;
  /**
   * `connectTimeout`: how long {@link connect} waits for the first session before it gives up,
   * ms; `0` waits for as long as it takes.
   */
  readonly connectTimeoutMs?: number;
}

/** `memory://` or `memory://name`: the in-process arbitrator. */
export interface MemoryTarget extends SessionSettings {
  readonly scheme: 'memory';
  /**
   * The named in-process server to join (`memory://name`); `undefined` for `memory://`, the
   * process-wide default server. Arbitrators that name the same server see each other.
   */
  readonly server: string | undefined;
  /** `latency`: simulated one-way latency of every request, ms. */
  readonly latencyMs?: number;
}

/** `etcd://h1:2379,h2:2379/prefix`: an etcd cluster. */
export interface EtcdTarget extends SessionSettings {
  readonly scheme: 'etcd';
  /** The cluster's client endpoints (default port 2379). */
  readonly endpoints: readonly Endpoint[];
  /** The key prefix under which elections live, without surrounding `/`; `''` for none. */
  readonly prefix: string;
}

/** `zk://h1:2181,h2:2181/root`: a ZooKeeper ensemble. */
export interface ZooKeeperTarget extends SessionSettings {
  readonly scheme: 'zk';
  /** The ensemble's servers (default port 2181). */
  readonly endpoints: readonly Endpoint[];
  /** The absolute znode path under which elections live (`/` when the URL has no path). */
  readonly root: string;
}

/** What an arbitrator URL designates, once parsed and validated. */
export type ArbitratorTarget = MemoryTarget | EtcdTarget | ZooKeeperTarget;

/** The URL schemes {@link parseArbitratorUrl} understands. */
export type ArbitratorScheme = ArbitratorTarget['scheme'];

/** Query parameters every scheme accepts, and the target field each one sets. */
const SESSION_PARAMS = ['ttl', 'maxDrift', 'margin', 'connectTimeout'] as const;

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$/;
const SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Parses and validates an arbitrator URL. Throws {@link InvalidArgumentError} with field
 * `url` and a message saying what is wrong, before any I/O.
 *
 * - `memory://` or `memory://name` (a named in-process server), query: `ttl`, `maxDrift`,
 *   `margin`, `connectTimeout`, `latency`.
 * - `etcd://host[:port][,host[:port]…][/prefix]` (port default 2379), query: `ttl`,
 *   `maxDrift`, `margin`, `connectTimeout`.
 * - `zk://host[:port][,host[:port]…][/root]` (port default 2181), query: same as etcd.
 *
 * Durations take a unit: `500ms`, `5s`, `1m`. Credentials in the URL are refused (pass them
 * to the adapter in code, where they do not end up in logs).
 */
export function parseArbitratorUrl(url: string): ArbitratorTarget {
  if (typeof url !== 'string') {
    throw new InvalidArgumentError(
      'url',
      `must be a string such as "memory://" (got ${url === null ? 'null' : typeof url})`,
    );
  }
  const text = url.trim();
  const scheme = SCHEME.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw urlError(
      url,
      'is not an arbitrator URL; expected memory://, etcd://host:2379 or zk://host:2181',
    );
  }
  switch (scheme) {
    case 'memory':
      return parseMemoryUrl(text);
    case 'etcd': {
      const { path, ...parts } = parseClusterUrl(text, 'etcd', 2379);
      return { scheme: 'etcd', ...parts, prefix: checkedSegments(text, path).join('/') };
    }
    case 'zk': {
      const { path, ...parts } = parseClusterUrl(text, 'zk', 2181);
      return { scheme: 'zk', ...parts, root: `/${checkedSegments(text, path).join('/')}` };
    }
    default:
      throw urlError(
        url,
        `has the unknown scheme "${scheme}:"; expected one of memory:, etcd:, zk:`,
      );
  }
}

function parseMemoryUrl(url: string): MemoryTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // No `cause`: Node's URL error repeats the input, which may hold a password.
    throw urlError(url, 'is not a valid URL; expected memory:// or memory://name');
  }
  if (!url.toLowerCase().startsWith('memory://')) {
    throw urlError(url, 'must start with memory:// (memory://name selects a named server)');
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw urlError(url, 'must not contain credentials');
  }
  if (parsed.port !== '') throw urlError(url, 'must not have a port: memory:// is in-process');
  if (parsed.pathname !== '' && parsed.pathname !== '/') {
    throw urlError(url, `must not have a path (got "${parsed.pathname}")`);
  }
  if (parsed.hash !== '') throw urlError(url, 'must not have a #fragment');
  let server: string | undefined;
  if (parsed.hostname !== '') {
    server = decode(url, parsed.hostname);
    if (!SERVER_NAME.test(server)) {
      throw urlError(
        url,
        `names the server "${server}"; a server name is 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      );
    }
  }
  const query = readQuery(url, parsed.searchParams, [...SESSION_PARAMS, 'latency']);
  const latency = query.get('latency');
  return {
    scheme: 'memory',
    server,
    ...sessionSettings(url, query),
    ...(latency === undefined ? {} : { latencyMs: durationParam(url, 'latency', latency, 0) }),
  };
}

interface ClusterParts extends SessionSettings {
  endpoints: Endpoint[];
  /** The raw path without its leading and trailing `/` (`''`: none). */
  path: string;
}

function parseClusterUrl(url: string, scheme: string, defaultPort: number): ClusterParts {
  const rest = url.slice(scheme.length + 1);
  if (!rest.startsWith('//')) {
    throw urlError(url, `must start with ${scheme}:// followed by host:port`);
  }
  const afterSlashes = rest.slice(2);
  const authorityEnd = afterSlashes.search(/[/?#]/);
  const authority = authorityEnd === -1 ? afterSlashes : afterSlashes.slice(0, authorityEnd);
  if (authority.includes('@')) {
    throw urlError(url, 'must not contain credentials; pass them to the adapter in code');
  }
  if (authority === '') {
    throw urlError(url, `has no host; expected ${scheme}://host:${defaultPort}[,host:port…]`);
  }
  const endpoints = authority.split(',').map((entry) => parseEndpoint(url, entry, defaultPort));
  const seen = new Set<string>();
  for (const { host, port } of endpoints) {
    const id = `${host.toLowerCase()}:${port}`;
    if (seen.has(id)) throw urlError(url, `lists ${formatEndpoint({ host, port })} twice`);
    seen.add(id);
  }
  // WHATWG URL cannot parse an authority with several hosts, but it parses the query: give
  // it the rest behind a stand-in host. The path is read raw, because URL would silently
  // resolve "." and ".." segments that we refuse instead.
  const tail = authorityEnd === -1 ? '' : afterSlashes.slice(authorityEnd);
  let parsed: URL;
  try {
    parsed = new URL(`${scheme}://stand-in${tail}`);
  } catch (error) {
    throw urlError(url, 'has an invalid path or query', error);
  }
  if (parsed.hash !== '') throw urlError(url, 'must not have a #fragment');
  const query = readQuery(url, parsed.searchParams, SESSION_PARAMS);
  const pathEnd = tail.search(/[?#]/);
  const rawPath = pathEnd === -1 ? tail : tail.slice(0, pathEnd);
  // One leading "/" opens the path and one trailing "/" may close it (`/a/` is `/a`), but "/"
  // alone is no path, and "//" is an empty segment, refused like any other.
  const path = rawPath === '/' ? '' : rawPath.slice(1).replace(/(.)\/$/, '$1');
  return { endpoints, path, ...sessionSettings(url, query) };
}

function parseEndpoint(url: string, entry: string, defaultPort: number): Endpoint {
  if (entry === '') throw urlError(url, 'has an empty host between commas');
  let host: string;
  let portText: string | undefined;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close === -1) throw urlError(url, `has an unclosed "[" in "${entry}"`);
    host = entry.slice(1, close);
    const after = entry.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) {
      throw urlError(url, `has unexpected text after "]" in "${entry}"`);
    }
    portText = after === '' ? undefined : after.slice(1);
    if (host.includes('%')) {
      throw urlError(
        url,
        `has the IPv6 address "${host}" with a zone index, which the clients do not support`,
      );
    }
    if (!isIPv6(host)) throw urlError(url, `has "${host}", which is not an IPv6 address`);
  } else {
    const colon = entry.indexOf(':');
    host = colon === -1 ? entry : entry.slice(0, colon);
    portText = colon === -1 ? undefined : entry.slice(colon + 1);
    if (!HOST_NAME.test(host)) {
      throw urlError(
        url,
        `has the invalid host "${host}"; expected a host name or IP address (IPv6 in [brackets])`,
      );
    }
  }
  if (portText === undefined) return { host, port: defaultPort };
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 1 && port <= 65_535)) {
    throw urlError(
      url,
      `has the invalid port "${portText}" for host ${host}; a port is a number from 1 to 65535`,
    );
  }
  return { host, port };
}

/** The decoded segments of a raw path (none for `''`), refusing empty, `.`, `..` and control characters. */
function checkedSegments(url: string, path: string): string[] {
  if (path === '') return [];
  return path.split('/').map((raw) => {
    const segment = decode(url, raw);
    if (segment === '' || segment === '.' || segment === '..' || segment.includes('/')) {
      throw urlError(
        url,
        `has an invalid path segment "${raw}" (empty, ".", ".." or an encoded "/")`,
      );
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
    if (/[\u0000-\u001f\u007f]/.test(segment)) {
      throw urlError(url, 'has a control character in its path');
    }
    return segment;
  });
}

/** The query as a map, refusing unknown and repeated parameters. */
function readQuery(
  url: string,
  params: URLSearchParams,
  known: readonly string[],
): Map<string, string> {
  const query = new Map<string, string>();
  for (const [name, value] of params) {
    if (!known.includes(name)) {
      throw urlError(
        url,
        `has the unknown query parameter "${name}"; this scheme accepts ${known.join(', ')}`,
      );
    }
    if (query.has(name)) throw urlError(url, `has the query parameter "${name}" twice`);
    query.set(name, value);
  }
  return query;
}

function sessionSettings(url: string, query: Map<string, string>): SessionSettings {
  const settings: {
    ttlMs?: number;
    maxDrift?: number;
    marginMs?: number;
    connectTimeoutMs?: number;
  } = {};
  const ttl = query.get('ttl');
  if (ttl !== undefined) settings.ttlMs = durationParam(url, 'ttl', ttl, 1);
  const connectTimeout = query.get('connectTimeout');
  if (connectTimeout !== undefined) {
    settings.connectTimeoutMs = durationParam(url, 'connectTimeout', connectTimeout, 0);
  }
  const margin = query.get('margin');
  if (margin !== undefined) settings.marginMs = durationParam(url, 'margin', margin, 0);
  const maxDrift = query.get('maxDrift');
  if (maxDrift !== undefined) {
    const value = /^\d*\.?\d+$/.test(maxDrift) ? Number(maxDrift) : Number.NaN;
    if (!(value >= 0 && value < 0.5)) {
      throw urlError(url, `has maxDrift=${maxDrift}; expected a fraction in [0, 0.5) such as 0.01`);
    }
    settings.maxDrift = value;
  }
  return settings;
}

/** The URL query parameter of each session setting. */
const PARAM_OF_SETTING = { ttlMs: 'ttl', maxDrift: 'maxDrift', marginMs: 'margin' } as const;

type SettingField = keyof typeof PARAM_OF_SETTING;

/**
 * Checks that session settings leave a term valid for longer than one renewal interval, the
 * rule every adapter enforces — `ttl × (1 − maxDrift) − margin > ttl / 3` — with tenure's
 * defaults for what neither `fromUrl` (the settings `url` carries) nor `fromOptions` sets.
 * Throws {@link InvalidArgumentError} naming what the caller wrote: field `url`, naming its
 * parameters (`margin=10s`), when the URL set any of the three; otherwise the option set
 * (`marginMs`, `maxDrift`, `ttlMs`; `ttlMs` when several were).
 */
export function checkSessionWindow(
  url: string,
  fromUrl: SessionSettings,
  fromOptions: SessionSettings = {},
): void {
  const fields = Object.keys(PARAM_OF_SETTING) as SettingField[];
  const value = (field: SettingField): number =>
    fromUrl[field] ?? fromOptions[field] ?? DEFAULTS[field];
  const ttlMs = value('ttlMs');
  const maxDrift = value('maxDrift');
  const marginMs = value('marginMs');
  // A value of the wrong type or range is the adapter's to refuse, naming it.
  const checkable =
    [ttlMs, maxDrift, marginMs].every((v) => typeof v === 'number' && Number.isFinite(v)) &&
    ttlMs > 0 &&
    maxDrift >= 0 &&
    maxDrift < 0.5 &&
    marginMs >= 0;
  const validityMs = ttlMs * (1 - maxDrift) - marginMs;
  if (!checkable || validityMs > ttlMs / 3) return;
  const shown = (field: SettingField, v: number) =>
    field === 'maxDrift' ? String(v) : formatDuration(v);
  const byUrl = fields.filter((f) => fromUrl[f] !== undefined);
  const byOptions = fields.filter((f) => fromUrl[f] === undefined && fromOptions[f] !== undefined);
  const byDefault = fields.filter((f) => fromUrl[f] === undefined && fromOptions[f] === undefined);
  const written = [
    ...byUrl.map((f) => `${PARAM_OF_SETTING[f]}=${shown(f, value(f))}`),
    ...byOptions.map((f) => `options.${f} = ${value(f)}`),
  ];
  const defaults = byDefault.map((f) => `${PARAM_OF_SETTING[f]} ${shown(f, value(f))}`);
  const hint =
    fromUrl.marginMs !== undefined || fromOptions.marginMs !== undefined
      ? `the margin must be below ${formatDuration(Math.floor(ttlMs * (2 / 3 - maxDrift)))} with this ttl and maxDrift`
      : `the ttl must be above ${formatDuration(Math.ceil(marginMs / (2 / 3 - maxDrift)))} with this margin and maxDrift`;
  const withDefaults = defaults.length === 0 ? '' : ` (with the default ${defaults.join(' and ')})`;
  const leave = written.length === 1 ? 'leaves' : 'leave';
  const problem = `${leave} a term valid for ${formatDuration(Math.round(validityMs))} after each renewal, not longer than the renewal interval (ttl/3 = ${formatDuration(ttlMs / 3)}): ttl × (1 − maxDrift) − margin must exceed ttl/3; ${hint}`;
  if (byUrl.length > 0) {
    throw urlError(url, `sets ${written.join(' and ')}, which${withDefaults} ${problem}`);
  }
  const field = byOptions.length === 1 ? byOptions[0]! : 'ttlMs';
  throw new InvalidArgumentError(field, `${written.join(' and ')}${withDefaults} ${problem}`);
}

function durationParam(url: string, name: string, text: string, minMs: number): number {
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw urlError(
      url,
      `has ${name}=${text}; expected a duration with a unit such as 500ms, 5s or 1m`,
    );
  }
  if (ms < minMs) throw urlError(url, `has ${name}=${text}; it must be at least ${minMs} ms`);
  if (ms > MAX_TTL_MS) throw urlError(url, `has ${name}=${text}; it must be at most 24h`);
  return ms;
}

function decode(url: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    throw urlError(url, `has a malformed %-escape in "${text}"`, error);
  }
}

/** An endpoint as `host:port`, with IPv6 addresses in brackets. */
export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.host.includes(':')
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`;
}

/** The URL as it may appear in a message: any `user:password@` replaced. */
export function redactUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1…@');
}

function urlError(url: string, problem: string, cause?: unknown): InvalidArgumentError {
  const shown = redactUrl(url);
  return new InvalidArgumentError(
    'url',
    `"${shown.length > 200 ? `${shown.slice(0, 200)}…` : shown}" ${problem}`,
    cause === undefined ? {} : { cause },
  );
}
