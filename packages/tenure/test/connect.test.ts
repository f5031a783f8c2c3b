import {
  type Arbitrator,
  connect,
  createMemoryArbitrator,
  InvalidArgumentError,
  parseArbitratorUrl,
  parseDuration,
  sharedMemoryServer,
} from 'tenure';
import { afterEach, describe, expect, it } from 'vitest';

const opened: Arbitrator[] = [];

async function open(url: string, options?: Parameters<typeof connect>[1]): Promise<Arbitrator> {
  const arbitrator = await connect(url, options);
  opened.push(arbitrator);
  return arbitrator;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});

/** The InvalidArgumentError that `run` throws, checked to name the `url` field. */
function urlErrorOf(run: () => unknown): InvalidArgumentError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe('url');
    expect((error as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
    return error as InvalidArgumentError;
  }
  throw new Error('expected an InvalidArgumentError');
}

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5_000],
    ['1.5s', 1_500],
    ['1m', 60_000],
    ['2h', 7_200_000],
    ['0ms', 0],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  // Stricter than ms, parse-duration and @lukeed/ms, which read "5" as 5 ms and accept "5 s",
  // "-5s", "5sec" and "5S" (parse-duration even "1.5.3s" and "5s junk").
  it.each([
    '5',
    's',
    '5 s',
    ' 5s',
    '5s ',
    '5s\n',
    '-5s',
    '+5s',
    '5sec',
    '5S',
    '1e3ms',
    '0x10ms',
    '',
    '.5s',
    '5.s',
    '1.5.3s',
    '1.5.3',
    '1h30m',
    '1d',
    'Infinity',
    '\u0665s',
    '1.0000001s',
  ])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('reads at most what a timer can wait (2^31 − 1 ms, about 596 h)', () => {
    expect(parseDuration('596h')).toBe(596 * 3_600_000);
    expect(parseDuration('2147483647ms')).toBe(2 ** 31 - 1);
    expect(parseDuration('2147483648ms')).toBeUndefined();
    expect(parseDuration('597h')).toBeUndefined();
    expect(parseDuration('999999999999999h')).toBeUndefined();
  });
});

describe('parseArbitratorUrl: good URLs', () => {
  it('reads memory:// as the default in-process server', () => {
    expect(parseArbitratorUrl('memory://')).toEqual({ scheme: 'memory', server: undefined });
    expect(parseArbitratorUrl('memory:///')).toEqual({ scheme: 'memory', server: undefined });
  });

  it('reads a named memory server and its query', () => {
    expect(
      parseArbitratorUrl('memory://tests-1?ttl=5s&margin=50ms&maxDrift=0.02&latency=3ms'),
    ).toEqual({
      scheme: 'memory',
      server: 'tests-1',
      ttlMs: 5_000,
      marginMs: 50,
      maxDrift: 0.02,
      latencyMs: 3,
    });
  });

  it('reads an etcd cluster with a prefix and a ttl', () => {
    expect(parseArbitratorUrl('etcd://h1:2379,h2:2379/prefix?ttl=5s')).toEqual({
      scheme: 'etcd',
      endpoints: [
        { host: 'h1', port: 2379 },
        { host: 'h2', port: 2379 },
      ],
      prefix: 'prefix',
      ttlMs: 5_000,
    });
  });

  it('gives etcd hosts port 2379 and no prefix by default, and reads IPv6 in brackets', () => {
    expect(parseArbitratorUrl('etcd://10.0.0.1,[::1],[fe80::1]:12379,etcd-0.etcd.svc')).toEqual({
      scheme: 'etcd',
      endpoints: [
        { host: '10.0.0.1', port: 2379 },
        { host: '::1', port: 2379 },
        { host: 'fe80::1', port: 12379 },
        { host: 'etcd-0.etcd.svc', port: 2379 },
      ],
      prefix: '',
    });
    expect(parseArbitratorUrl('ETCD://h/a/b/').scheme).toBe('etcd');
    expect(parseArbitratorUrl('etcd://h/a/b/')).toMatchObject({ prefix: 'a/b' });
    expect(parseArbitratorUrl('etcd://h/team%20a')).toMatchObject({ prefix: 'team a' });
  });

  it('reads a ZooKeeper ensemble with a root and a ttl', () => {
    expect(parseArbitratorUrl('zk://h1:2181,h2:2181/root?ttl=6s')).toEqual({
      scheme: 'zk',
      endpoints: [
        { host: 'h1', port: 2181 },
        { host: 'h2', port: 2181 },
      ],
      root: '/root',
      ttlMs: 6_000,
    });
    expect(parseArbitratorUrl('zk://zk1')).toEqual({
      scheme: 'zk',
      endpoints: [{ host: 'zk1', port: 2181 }],
      root: '/',
    });
    expect(parseArbitratorUrl('zk://zk1:65535/a/b')).toMatchObject({
      endpoints: [{ host: 'zk1', port: 65535 }],
      root: '/a/b',
    });
  });

  it('reads one slash, or one closing a path, as no more than that', () => {
    expect(parseArbitratorUrl('zk://h/')).toMatchObject({ root: '/' });
    expect(parseArbitratorUrl('zk://h/a/')).toMatchObject({ root: '/a' });
    expect(parseArbitratorUrl('etcd://h/')).toMatchObject({ prefix: '' });
    expect(parseArbitratorUrl('etcd://h/a/b/?ttl=5s')).toMatchObject({ prefix: 'a/b' });
  });

  it('ignores whitespace around the URL', () => {
    expect(parseArbitratorUrl('  memory://  ')).toEqual({ scheme: 'memory', server: undefined });
  });
});

describe('parseArbitratorUrl: bad URLs', () => {
  it.each([
    ['', /not an arbitrator URL/],
    ['garbage', /not an arbitrator URL/],
    ['localhost:2379', /unknown scheme "localhost:"/],
    ['http://h:2379', /unknown scheme "http:"; expected one of memory:, etcd:, zk:/],
    ['consul://h', /unknown scheme "consul:"/],
    ['memory:', /must start with memory:\/\//],
    ['memory://a b', /not a valid URL/],
    ['memory://x:1', /must not have a port/],
    ['memory://x/path', /must not have a path/],
    ['memory://x#frag', /fragment/],
    ['memory://-x', /server name/],
    ['memory://?ttl=5', /ttl=5; expected a duration with a unit such as 500ms, 5s or 1m/],
    ['memory://?ttl=', /ttl=; expected a duration/],
    ['memory://?ttl=0ms', /ttl=0ms; it must be at least 1 ms/],
    ['memory://?ttl=25h', /ttl=25h; it must be at most 24h/],
    ['memory://?ttl=-1s', /ttl=-1s; expected a duration/],
    ['memory://?ttl=5s&ttl=6s', /"ttl" twice/],
    [
      'memory://?timeout=5s',
      /unknown query parameter "timeout"; this scheme accepts ttl, maxDrift, margin, connectTimeout, latency/,
    ],
    ['memory://?maxDrift=0.5', /maxDrift=0.5; expected a fraction in \[0, 0.5\)/],
    ['memory://?maxDrift=abc', /maxDrift=abc/],
    ['etcd:h1:2379', /must start with etcd:\/\//],
    ['etcd://', /has no host/],
    ['etcd:///prefix', /has no host/],
    ['etcd://h1:0', /invalid port "0" for host h1; a port is a number from 1 to 65535/],
    ['etcd://h1:65536', /invalid port "65536"/],
    ['etcd://h1:99999', /invalid port "99999"/],
    ['etcd://h1:-1', /invalid port "-1"/],
    ['etcd://h1:', /invalid port ""/],
    ['etcd://h1:23x9', /invalid port "23x9"/],
    ['etcd://h1:2379,', /empty host between commas/],
    ['etcd://h1,,h2', /empty host between commas/],
    ['etcd://h1,h1:2379', /lists h1:2379 twice/],
    ['etcd://bad host', /invalid host "bad host"/],
    ['etcd://-h', /invalid host "-h"/],
    ['etcd://[::1', /unclosed "\["/],
    ['etcd://[nonsense]:1', /not an IPv6 address/],
    ['etcd://[::1]x', /unexpected text after "\]"/],
    ['zk://[fe80::1%25eth0]:2181', /IPv6 address "fe80::1%25eth0" with a zone index/],
    ['etcd://[fe80::1%eth0]', /with a zone index/],
    ['etcd://h/a//b', /invalid path segment ""/],
    ['etcd://h//', /invalid path segment ""/],
    ['etcd://h///a', /invalid path segment ""/],
    ['zk://h//', /invalid path segment ""/],
    ['zk://h//?ttl=5s', /invalid path segment ""/],
    ['zk://h/a//', /invalid path segment ""/],
    ['etcd://h/a/../b', /invalid path segment "\.\."/],
    ['etcd://h/a%2Fb', /invalid path segment "a%2Fb"/],
    ['etcd://h/%zz', /malformed %-escape/],
    [
      'etcd://h?latency=1ms',
      /unknown query parameter "latency"; this scheme accepts ttl, maxDrift, margin/,
    ],
    ['etcd://h#x', /fragment/],
    ['zk://h1:2181,h2:70000/root', /invalid port "70000" for host h2/],
    ['zk://h?ttl=six', /ttl=six; expected a duration/],
  ])('refuses %j', (url, message) => {
    expect(urlErrorOf(() => parseArbitratorUrl(url)).message).toMatch(message);
  });

  it('refuses credentials without repeating them', () => {
    for (const url of ['etcd://root:s3cret@h1:2379', 'memory://root:s3cret@x']) {
      const error = urlErrorOf(() => parseArbitratorUrl(url));
      expect(error.message).toMatch(/credentials/);
      expect(error.message).not.toContain('s3cret');
      expect(String(error.cause ?? '')).not.toContain('s3cret');
    }
  });

  it('refuses a value that is not a string', () => {
    expect(urlErrorOf(() => parseArbitratorUrl(undefined as unknown as string)).message).toMatch(
      /must be a string/,
    );
  });
});

describe('connect', () => {
  it('opens a memory arbitrator that elects a leader, with the URL ttl in force', async () => {
    const arbitrator = await open('memory://?ttl=3s');
    expect(arbitrator.ttlMs).toBe(3_000);
    const election = arbitrator.election('connect-basic', { value: 'me' });
    const term = await election.campaign();
    expect(term.isValid()).toBe(true);
    expect(typeof term.epoch).toBe('bigint');
    expect((await arbitrator.leader('connect-basic'))?.value).toBe('me');
    await arbitrator.close();
    expect(await term.ended).toBe('closed');
  });

  it('puts memory:// arbitrators on the server createMemoryArbitrator() joins', async () => {
    const viaUrl = await open('memory://');
    const direct = createMemoryArbitrator();
    opened.push(direct);
    const term = await viaUrl.election('connect-default', { value: 'url' }).campaign();
    expect((await direct.leader('connect-default'))?.epoch).toBe(term.epoch);
  });

  it('puts memory://name arbitrators on the named shared server, apart from the default one', async () => {
    const a = await open('memory://connect-named');
    const b = await open('memory://connect-named');
    const other = await open('memory://');
    const termA = await a.election('jobs', { value: 'a' }).campaign();
    expect((await b.leader('jobs'))?.value).toBe('a');
    expect(await other.leader('jobs')).toBeUndefined();
    expect(sharedMemoryServer('connect-named').queue('jobs')).toEqual([termA.key]);
    // The two sessions of the named server elect together: b takes over when a leaves.
    const electionB = b.election('jobs', { value: 'b' });
    const campaignB = electionB.campaign();
    await a.close();
    expect((await campaignB).epoch).toBeGreaterThan(termA.epoch);
  });

  it('takes session settings from options when the URL has none', async () => {
    const arbitrator = await open('memory://', { ttlMs: 4_000 });
    expect(arbitrator.ttlMs).toBe(4_000);
  });

  it('accepts the same setting in both places when they agree, and refuses a conflict', async () => {
    expect((await open('memory://?ttl=4s', { ttlMs: 4_000 })).ttlMs).toBe(4_000);
    const error = await connect('memory://?ttl=4s', { ttlMs: 5_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe('url');
    expect((error as Error).message).toMatch(
      /sets ttl while options.ttlMs is 5000; set it in one place/,
    );
  });

  it('names the URL parameters that leave no validity window, not the field the adapter checks', async () => {
    for (const [url, written, hint] of [
      [
        'memory://?ttl=100ms',
        /sets ttl=100ms, which \(with the default maxDrift 0.01 and margin 100ms\) leaves/,
        /the ttl must be above 153ms/,
      ],
      [
        'memory://?margin=10s',
        /sets margin=10s, which \(with the default ttl 10s and maxDrift 0.01\) leaves/,
        /the margin must be below 6.566s/,
      ],
      ['etcd://127.0.0.1:9?margin=10s', /sets margin=10s, which/, /margin must be below/],
      ['zk://127.0.0.1:9/a?margin=10s', /sets margin=10s, which/, /margin must be below/],
      [
        'memory://?ttl=1s&margin=700ms',
        /sets ttl=1s and margin=700ms, which \(with the default maxDrift 0.01\) leave a term valid for 290ms/,
        /margin must be below 656ms/,
      ],
    ] as const) {
      const error = await connect(url).catch((e: unknown) => e);
      expect(error, url).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field, url).toBe('url');
      expect((error as Error).message, url).toMatch(written);
      expect((error as Error).message, url).toMatch(hint);
      expect((error as Error).message, url).not.toMatch(/ttlMs|marginMs/);
    }
  });

  it('checks the window with the settings of both places: the URL blamed if it set any', async () => {
    // A margin too long for the default TTL is fine with the TTL the options give.
    expect((await open('memory://?margin=7s', { ttlMs: 60_000 })).ttlMs).toBe(60_000);
    const error = await connect('memory://?margin=7s', { ttlMs: 10_000 }).catch((e: unknown) => e);
    expect((error as InvalidArgumentError).field).toBe('url');
    expect((error as Error).message).toMatch(/sets margin=7s and options.ttlMs = 10000, which/);
  });

  it('names the one option that leaves no validity window (ttlMs when several do)', async () => {
    for (const [options, field] of [
      [{ ttlMs: 100 }, 'ttlMs'],
      [{ marginMs: 10_000 }, 'marginMs'],
      [{ ttlMs: 1_000, marginMs: 700 }, 'ttlMs'],
    ] as const) {
      const error = await connect('memory://', options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field).toBe(field);
      expect((error as Error).message).toMatch(/after each renewal/);
    }
  });

  it('leaves an option of the wrong type to the arbitrator, which names it', async () => {
    const error = await connect('memory://', { ttlMs: Number.NaN }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe('ttlMs');
  });

  it('blames the URL path when the arbitrator refuses the root or namespace it sets', async () => {
    for (const [url, cause] of [
      ['zk://127.0.0.1:9/zookeeper/x', 'root'],
      [`etcd://127.0.0.1:9/${'a'.repeat(300)}`, 'namespace'],
    ] as const) {
      const error = await connect(url).catch((e: unknown) => e);
      expect(error, url).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field, url).toBe('url');
      expect((error as Error).message, url).toMatch(/has the path "\/[az]/);
      expect((error as Error).cause, url).toMatchObject({ field: cause });
    }
  });

  it('opens a lazy ZooKeeper arbitrator from a zk:// URL at once (the session comes later), with the URL root', async () => {
    // Port 9 on loopback refuses: a lazy connect() resolves without a session.
    const arbitrator = await connect('zk://127.0.0.1:9/services/billing?ttl=6s', {
      lazySession: true,
    });
    try {
      expect(arbitrator.ttlMs).toBe(6_000);
      expect((arbitrator as unknown as { root: string }).root).toBe('/services/billing');
    } finally {
      await arbitrator.close();
    }
  });

  it('rejects (never throws synchronously) for a bad URL, naming the problem', async () => {
    let promise: Promise<Arbitrator> | undefined;
    expect(() => {
      promise = connect('etcd://h1:99999');
    }).not.toThrow();
    const error = await promise?.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(/invalid port "99999"/);
  });

  it('checks a bad etcd URL before saying the adapter is missing', async () => {
    const error = await connect('etcd://h1:0/prefix').catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/invalid port "0"/);
  });
});
