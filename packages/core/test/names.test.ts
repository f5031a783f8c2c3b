import { InvalidArgumentError } from '@tenure/core';
import { validateElectionName, validateName } from '@tenure/core/internal';
import { describe, expect, it } from 'vitest';

// Issue 11.5: names and keys that got through untyped or aliased.
describe('names and keys', () => {
  it('refuses a lone UTF-16 surrogate in a name or key, naming the field', () => {
    for (const bad of ['a\uD800', '\uDC00b', 'x\uD83D']) {
      expect(() => validateName('key', bad, { allowSlash: true })).toThrow(InvalidArgumentError);
      expect(() => validateName('key', bad)).toThrow(/key.*lone UTF-16 surrogate/);
    }
    // A well-formed pair is fine.
    expect(validateName('name', 'job-\uD83D\uDE00')).toBe('job-\uD83D\uDE00');
  });

  it('refuses the reserved election names tenure-data, . and .. on every rule set', () => {
    for (const rules of [{ allowSlash: true }, {}]) {
      for (const bad of ['tenure-data', '.', '..']) {
        expect(() => validateElectionName('name', bad, rules)).toThrow(InvalidArgumentError);
      }
    }
    expect(() => validateElectionName('name', 'tenure-data/x', { allowSlash: true })).toThrow(
      /reserved/,
    );
    expect(validateElectionName('name', 'tenure-database')).toBe('tenure-database');
  });
});
