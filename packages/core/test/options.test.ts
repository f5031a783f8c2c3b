import { InvalidArgumentError, runAsLeader } from '@tenure/core';
import { type OptionNames, validateOptions } from '@tenure/core/internal';
import { createMemoryArbitrator } from '@tenure/memory';
import { describe, expect, it } from 'vitest';

interface Sample {
  ttlMs?: number;
  requestTimeoutMs?: number;
  logger?: unknown;
}
const SAMPLE = {
  ttlMs: true,
  requestTimeoutMs: true,
  logger: true,
} as const satisfies OptionNames<Sample>;

describe('validateOptions', () => {
  it('accepts undefined and objects of known keys', () => {
    expect(validateOptions<Sample>('options', undefined, SAMPLE)).toBeUndefined();
    const options = { ttlMs: 5000, logger: undefined };
    expect(validateOptions<Sample>('options', options, SAMPLE)).toBe(options);
  });

  it.each([null, 42, 'ttl', [1]])('refuses %j as an options object', (bad) => {
    expect(() => validateOptions<Sample>('options', bad, SAMPLE)).toThrow(
      /options: must be an object/,
    );
  });

  it('names an unknown key and the option that was probably meant', () => {
    const attempt = (options: object) => () => validateOptions<Sample>('options', options, SAMPLE);
    expect(attempt({ ttl: 5000 })).toThrow(InvalidArgumentError);
    expect(attempt({ ttl: 5000 })).toThrow(
      /options\.ttl: is not an option \(did you mean `ttlMs`\?\)/,
    );
    expect(attempt({ requestTimeotMs: 1 })).toThrow(/did you mean `requestTimeoutMs`/);
    expect(attempt({ bogus: 1 })).toThrow(/options\.bogus: is not an option; known: ttlMs/);
  });
});

describe('strict options of core', () => {
  it('election() and runAsLeader() refuse unknown keys at once', async () => {
    const arbitrator = createMemoryArbitrator();
    try {
      expect(() => arbitrator.election('jobs', { valeu: 'x' } as never)).toThrow(
        /options\.valeu: is not an option \(did you mean `value`\?\)/,
      );
      const election = arbitrator.election('jobs');
      await expect(runAsLeader(election, () => {}, { signl: undefined } as never)).rejects.toThrow(
        /options\.signl: is not an option \(did you mean `signal`\?\)/,
      );
      await election.close();
    } finally {
      await arbitrator.close();
    }
  });
});
