import { InvalidArgumentError, MAX_NAME_BYTES, MAX_VALUE_BYTES } from '@tenure/core';
import { validateDuration, validateName, validateValue } from '@tenure/core/internal';
import { describe, expect, it } from 'vitest';

describe('validation', () => {
  it.each([
    ['', /must not be empty/],
    ['x'.repeat(MAX_NAME_BYTES + 1), /at most 200 UTF-8 bytes/],
    ['é'.repeat(MAX_NAME_BYTES / 2 + 1), /at most 200 UTF-8 bytes/],
    ['a\nb', /control characters/],
    [' jobs', /whitespace/],
    ['a/b', /must not contain "\/"/],
    [42, /must be a string/],
  ])('rejects the name %j', (name, message) => {
    expect(() => validateName('name', name)).toThrow(InvalidArgumentError);
    expect(() => validateName('name', name)).toThrow(message);
  });

  it('accepts "/" between segments where allowed, never empty or dot segments', () => {
    expect(validateName('name', 'team/jobs', { allowSlash: true })).toBe('team/jobs');
    for (const bad of ['a//b', '/a', 'a/', 'a/../b', './a']) {
      expect(() => validateName('name', bad, { allowSlash: true })).toThrow(/segments/);
    }
  });

  it('bounds values in UTF-8 bytes and rejects lone surrogates', () => {
    expect(validateValue('value', 'x'.repeat(MAX_VALUE_BYTES))).toHaveLength(MAX_VALUE_BYTES);
    expect(() => validateValue('value', 'x'.repeat(MAX_VALUE_BYTES + 1))).toThrow(/value/);
    expect(() => validateValue('value', '\ud800')).toThrow(/surrogate/);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5s', undefined])(
    'rejects the duration %j',
    (ms) => {
      try {
        validateDuration('ttlMs', ms);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect((error as InvalidArgumentError).field).toBe('ttlMs');
      }
    },
  );
});
