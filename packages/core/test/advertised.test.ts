import {
  ADVERTISED_FORMAT_VERSION,
  encodeCandidateValue,
  InvalidArgumentError,
  LeaderTracker,
  MAX_ENDPOINT_BYTES,
  MAX_VALUE_BYTES,
  parseCandidateValue,
  validateEndpoint,
  withAdvertised,
} from '@tenure/core';
import { createMemoryArbitrator, createMemoryServer } from '@tenure/memory';
import { describe, expect, it } from 'vitest';

describe('advertised candidate values', () => {
  it('stores a value without metadata raw, as Curator and etcdctl elect store theirs', () => {
    for (const value of ['api-1', '', 'host:123:abc', '{"not":"ours"}', '{', ' {"tenure":1}']) {
      expect(encodeCandidateValue(value)).toBe(value);
      expect(encodeCandidateValue(value, {})).toBe(value);
      expect(parseCandidateValue(value)).toEqual({ value, endpoint: undefined });
    }
  });

  it('stores a value with an endpoint as the version-1 envelope, and parses it back', () => {
    const stored = encodeCandidateValue('api-2', { endpoint: 'http://10.0.0.12:8080' });
    expect(stored).toBe('{"tenure":1,"value":"api-2","endpoint":"http://10.0.0.12:8080"}');
    expect(ADVERTISED_FORMAT_VERSION).toBe(1);
    expect(parseCandidateValue(stored)).toEqual({
      value: 'api-2',
      endpoint: 'http://10.0.0.12:8080',
    });
    // Any text survives the round trip: quotes, newlines, non-ASCII.
    const odd = 'a "quoted"\nvalue, é ✓';
    const back = parseCandidateValue(encodeCandidateValue(odd, { endpoint: 'https://h.example' }));
    expect(back.value).toBe(odd);
  });

  it('wraps a user value that would read as an envelope, so it reads back as given', () => {
    const lookalike = '{"tenure":1,"value":"other","endpoint":"http://x.example"}';
    const stored = encodeCandidateValue(lookalike);
    expect(stored).not.toBe(lookalike);
    expect(parseCandidateValue(stored)).toEqual({ value: lookalike, endpoint: undefined });
  });

  it('parses tolerantly: foreign, malformed and later values never throw', () => {
    const raw = (stored: string) =>
      expect(parseCandidateValue(stored)).toEqual({ value: stored, endpoint: undefined });
    raw('{"tenure":0,"value":"v"}'); // not a version
    raw('{"tenure":"1","value":"v"}');
    raw('{"tenure":1.5,"value":"v"}');
    raw('{"tenure":1}'); // no value
    raw('{"tenure":1,"value":42}');
    raw('[{"tenure":1,"value":"v"}]');
    raw('{"tenure":1,"value":"v"'); // truncated
    raw('null');
    // A later version that adds members: the known ones are read, the others ignored.
    expect(
      parseCandidateValue('{"tenure":2,"value":"v","priority":5,"endpoint":"http://h.example"}'),
    ).toEqual({ value: 'v', endpoint: 'http://h.example', priority: 5 });
    // An endpoint that is not an advertisable URL is dropped, the value kept.
    for (const endpoint of ['nope', 42, 'http://u:p@h.example', null]) {
      const stored = JSON.stringify({ tenure: 1, value: 'v', endpoint });
      expect(parseCandidateValue(stored)).toEqual({ value: 'v', endpoint: undefined });
    }
  });

  it('withAdvertised keeps a raw LeaderInfo as it is and parses an envelope', () => {
    const info = { key: 'k', value: 'plain', epoch: 7n };
    expect(withAdvertised(info)).toBe(info);
    const parsed = withAdvertised({
      key: 'k',
      epoch: 7n,
      value: encodeCandidateValue('v', { endpoint: 'http://h.example:1' }),
    });
    expect(parsed).toEqual({ key: 'k', epoch: 7n, value: 'v', endpoint: 'http://h.example:1' });
  });

  it.each([
    ['no scheme', 'not-a-url', /absolute URL/],
    ['a spaced word', 'not a url', /whitespace/],
    ['a relative path', '/relative/path', /absolute URL/],
    ['no host', 'mailto:ops@example.com', /with a host/],
    ['credentials', 'http://user:secret@a.example', /credentials/],
    ['a leading space', ' http://a.example', /whitespace/],
    ['a control character', 'http://a.example/\u0007', /whitespace or control/],
    ['too many bytes', `http://a.example/${'x'.repeat(MAX_ENDPOINT_BYTES)}`, /at most 2048/],
    ['a number', 42, /must be a URL string/],
  ])(
    'refuses an endpoint with %s, with an InvalidArgumentError naming it',
    (_, endpoint, message) => {
      let error: unknown;
      try {
        validateEndpoint('endpoint', endpoint);
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field).toBe('endpoint');
      expect((error as Error).message).toMatch(message);
    },
  );

  it('refuses a value too long to store with its envelope, naming value', () => {
    const value = 'x'.repeat(MAX_VALUE_BYTES - 10);
    expect(encodeCandidateValue(value)).toBe(value);
    expect(() => encodeCandidateValue(value, { endpoint: 'http://h.example' })).toThrow(
      /value: with the advertised metadata must be at most 16384 UTF-8 bytes stored/,
    );
  });
});

describe('the endpoint option of election()', () => {
  it('refuses a bad endpoint at once, naming it, and leaves no candidacy', async () => {
    const arbitrator = createMemoryArbitrator();
    try {
      for (const endpoint of ['not a url', 'http://u:p@h.example', 42]) {
        expect(() => arbitrator.election('jobs', { endpoint } as never)).toThrow(
          expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'endpoint' }),
        );
      }
      expect(() =>
        arbitrator.election('jobs', {
          value: 'x'.repeat(MAX_VALUE_BYTES - 10),
          endpoint: 'http://h.example',
        }),
      ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'value' }));
      // The name is still free.
      const election = arbitrator.election('jobs', { endpoint: 'http://h.example' });
      await election.close();
    } finally {
      await arbitrator.close();
    }
  });
});

describe('LeaderTracker', () => {
  it('knows "no leader" after the first read, waits for one, and rejects waiters once closed', async () => {
    const server = createMemoryServer();
    const a = createMemoryArbitrator({ server });
    const b = createMemoryArbitrator({ server });
    const tracker = new LeaderTracker({ observe: (o) => b.observe('jobs', o) });
    try {
      expect(tracker.known).toBe(false);
      const first = tracker.next();
      await expect.poll(() => tracker.known).toBe(true);
      expect(tracker.leader).toBeUndefined();
      expect(tracker.endpoint).toBeUndefined();
      const election = a.election('jobs', { value: 'a', endpoint: 'http://a.example:1' });
      const term = await election.campaign();
      expect(await first).toMatchObject({ value: 'a', endpoint: 'http://a.example:1' });
      expect(tracker.epoch).toBe(term.epoch);
      // A leader at least this new is there already: at once.
      expect((await tracker.next()).epoch).toBe(term.epoch);
      const later = tracker.next({ after: term.epoch });
      const aborted = new AbortController();
      const cancelled = tracker.next({ after: term.epoch, signal: aborted.signal });
      aborted.abort();
      await expect(cancelled).rejects.toMatchObject({ code: 'ABORTED' });
      tracker.close();
      await expect(later).rejects.toMatchObject({ code: 'CLOSED' });
      expect(tracker.known).toBe(false);
    } finally {
      tracker.close();
      await a.close();
      await b.close();
      await server.close();
    }
  });

  it('closes with its source', async () => {
    const arbitrator = createMemoryArbitrator();
    const election = arbitrator.election('jobs');
    const tracker = new LeaderTracker(election);
    const waiting = tracker.next();
    await arbitrator.close();
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    expect(() => new LeaderTracker(election)).toThrow(expect.objectContaining({ code: 'CLOSED' }));
  });
});
