import { InvalidArgumentError } from '@tenure/core';
import { SafeLog, validateLogger } from '@tenure/core/internal';
import { describe, expect, it } from 'vitest';

describe('validateLogger', () => {
  it('accepts undefined (silent), pino-shaped objects and methods inherited from a prototype', () => {
    expect(validateLogger('logger', undefined)).toBeUndefined();
    const plain = { debug() {}, info() {}, warn() {}, error() {} };
    expect(validateLogger('logger', plain)).toBe(plain);
    // pino's methods live on the prototype chain of a child logger.
    const child = Object.create(plain) as object;
    expect(validateLogger('logger', child)).toBe(child);
  });

  it.each([
    ['null', null],
    ['a string', 'info'],
    [
      'console-like without debug/info as functions',
      { debug: 1, info: 'x', warn() {}, error() {} },
    ],
    ['an empty object', {}],
  ])('refuses %s, naming the field and what is missing', (_what, logger) => {
    let thrown: unknown;
    try {
      validateLogger('logger', logger);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect((thrown as InvalidArgumentError).field).toBe('logger');
    expect((thrown as Error).message).toMatch(/pino-compatible/);
  });
});

describe('SafeLog', () => {
  it('merges the base fields, calls (fields, message), and swallows a throwing logger', () => {
    const calls: unknown[][] = [];
    const log = new SafeLog(
      {
        debug: (...args: unknown[]) => calls.push(['debug', ...args]),
        info: (...args: unknown[]) => calls.push(['info', ...args]),
        warn: () => {
          throw new Error('broken logger');
        },
        error: (...args: unknown[]) => calls.push(['error', ...args]),
      },
      { arbitrator: 'etcd' },
    );
    expect(log.enabled).toBe(true);
    log.log('info', { election: 'jobs', epoch: '7' }, 'elected');
    expect(() => log.log('warn', {}, 'ignored')).not.toThrow();
    expect(calls).toEqual([
      ['info', { arbitrator: 'etcd', election: 'jobs', epoch: '7' }, 'elected'],
    ]);
    expect(new SafeLog(undefined).enabled).toBe(false);
  });
});
