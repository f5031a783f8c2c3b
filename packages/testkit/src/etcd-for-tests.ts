/**
 * The etcd a test talks to: an existing cluster named by `TENURE_ETCD_ENDPOINTS` (for example
 * the repository's docker compose file, or CI's service), else a fresh local node.
 *
 * @packageDocumentation
 */

import { ETCD_ENDPOINTS_ENV } from './etcd-binary.js';
import { EtcdLauncherError } from './etcd-launcher-error.js';
import { type EtcdNode, type StartEtcdOptions, startEtcd } from './etcd-node.js';
import { requestJson } from './http-json-request.js';
import { Timing } from './timing.js';

/**
 * The client URLs in `TENURE_ETCD_ENDPOINTS` (comma-separated, blanks ignored), or `undefined`
 * when it is unset or blank. Throws a `RangeError` for an entry that is not an http(s) URL, so a
 * typo never silently falls back to a local server.
 */
export function etcdEndpointsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const raw = env[ETCD_ENDPOINTS_ENV];
  if (raw === undefined) return undefined;
  const endpoints = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (endpoints.length === 0) return undefined;
  for (const endpoint of endpoints) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new RangeError(
        `${ETCD_ENDPOINTS_ENV}: "${endpoint}" is not an http(s) URL such as http://127.0.0.1:2379`,
      );
    }
  }
  return endpoints;
}

/**
 * An etcd for a test, from {@link etcdForTests}. Fault injection (`kill`, `pause`, `resume`,
 * `restart`) works only on a launched node; on an external cluster those reject with code
 * `EXTERNAL_CLUSTER`.
 */
export interface EtcdForTests extends AsyncDisposable {
  /** `'external'`: the cluster of `TENURE_ETCD_ENDPOINTS`; `'launched'`: a node started here. */
  readonly source: 'external' | 'launched';
  /** The client URLs to connect to. */
  readonly endpoints: readonly string[];
  /** The launched node, or `undefined` for an external cluster. */
  readonly node: EtcdNode | undefined;
  /** {@link EtcdNode.kill} of the launched node. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** {@link EtcdNode.pause} of the launched node. */
  pause(): Promise<void>;
  /** {@link EtcdNode.resume} of the launched node. */
  resume(): Promise<void>;
  /** {@link EtcdNode.restart} of the launched node. */
  restart(): Promise<void>;
  /**
   * Stops the launched node and removes its data; for an external cluster, does nothing (the
   * test must delete its own keys). Idempotent.
   */
  stop(): Promise<void>;
  /** The same as {@link EtcdForTests.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The etcd a test should use. When `TENURE_ETCD_ENDPOINTS` is set, that cluster (checked to
 * answer `/health` on at least one endpoint, else code `UNREACHABLE`): shared and left running,
 * so tests must use unique key prefixes. Otherwise a fresh single node from {@link startEtcd}
 * (with `options`), which fails with the install instructions when etcd is missing.
 *
 * Use it for tests that need only a working etcd, so they also run against a compose or CI
 * cluster; tests that inject faults call {@link startEtcd} / `startEtcdCluster` directly, since
 * only a launched server can be killed or paused.
 *
 * With `options.clientTls` it always launches a local node: an external cluster does not
 * serve the test's certificates, and quietly handing a TLS test a plain cluster would test
 * nothing.
 */
export async function etcdForTests(options: StartEtcdOptions = {}): Promise<EtcdForTests> {
  const endpoints = options.clientTls === undefined ? etcdEndpointsFromEnv() : undefined;
  if (endpoints === undefined) return new LaunchedEtcd(await startEtcd(options));
  await assertReachable(endpoints);
  return new ExternalEtcd(endpoints);
}

class LaunchedEtcd implements EtcdForTests {
  readonly source = 'launched';
  readonly endpoints: readonly string[];
  readonly node: EtcdNode;

  constructor(node: EtcdNode) {
    this.node = node;
    this.endpoints = [node.endpoint];
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

class ExternalEtcd implements EtcdForTests {
  readonly source = 'external';
  readonly endpoints: readonly string[];
  readonly node = undefined;

  constructor(endpoints: readonly string[]) {
    this.endpoints = endpoints;
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
    throw new EtcdLauncherError(
      'EXTERNAL_CLUSTER',
      `${call}() needs an etcd started by the testkit, but this test uses the external cluster ` +
        `${ETCD_ENDPOINTS_ENV}=${this.endpoints.join(',')}; a test that injects faults must ` +
        'use startEtcd() or startEtcdCluster(), which need the local etcd binary.',
    );
  }
}

async function assertReachable(endpoints: readonly string[]): Promise<void> {
  const timeoutMs = new Timing(1_000).scale(3_000);
  const errors: string[] = [];
  for (const endpoint of endpoints) {
    try {
      // Any HTTP answer proves reachability; health is the cluster owner's business.
      await requestJson(`${endpoint.replace(/\/+$/, '')}/health`, { timeoutMs });
      return;
    } catch (error) {
      errors.push(`${endpoint}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new EtcdLauncherError(
    'UNREACHABLE',
    `${ETCD_ENDPOINTS_ENV} is set, but no endpoint answered GET /health (${errors.join('; ')}). ` +
      `Start that cluster, or unset ${ETCD_ENDPOINTS_ENV} to have the tests launch etcd locally.`,
  );
}
