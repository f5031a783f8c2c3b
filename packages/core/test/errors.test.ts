import {
  AbortedError,
  ClosedError,
  ConflictError,
  InvalidArgumentError,
  isTenureError,
  LeadershipLostError,
  StaleEpochError,
  TenureError,
  UnavailableError,
} from '@tenure/core';
import { describe, expect, it } from 'vitest';

describe('errors', () => {
  it('carry a literal code, retriable and cause', () => {
    const cause = new Error('socket closed');
    const error = new UnavailableError('etcd unreachable', { cause });
    expect(error).toBeInstanceOf(TenureError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retriable).toBe(true);
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('UnavailableError');
  });

  it('name the offending field of an invalid argument', () => {
    const error = new InvalidArgumentError('ttlMs', 'must be > 0');
    expect(error.field).toBe('ttlMs');
    expect(error.message).toBe('Invalid ttlMs: must be > 0');
    expect(error.retriable).toBe(false);
  });

  it('are recognised by isTenureError, others are not', () => {
    for (const e of [
      new ClosedError('x'),
      new ConflictError('x'),
      new AbortedError(),
      new LeadershipLostError('x', { reason: 'expired', epoch: 3n }),
      new StaleEpochError(1n, 2n, 'db'),
    ]) {
      expect(isTenureError(e)).toBe(true);
    }
    expect(isTenureError(new Error('x'))).toBe(false);
    expect(isTenureError({ code: 'CLOSED', retriable: false })).toBe(false);
    expect(isTenureError(undefined)).toBe(false);
  });

  it('keep the reason and epoch of a lost term', () => {
    const error = new LeadershipLostError('gone', { reason: 'session-lost', epoch: 42n });
    expect(error.reason).toBe('session-lost');
    expect(error.epoch).toBe(42n);
    expect(error.code).toBe('LEADERSHIP_LOST');
  });
});
