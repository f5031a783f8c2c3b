// Which etcd versions renew leases linearizably ("linearizable renew lease", etcd PR 13690,
// 3.5.3): on those, a keep-alive alone counts; on the others, a confirming read follows.
import { describe, expect, it } from 'vitest';
import { atLeast } from '../src/lease-transport.js';

describe('atLeast (server version check)', () => {
  it.each([
    ['3.4.23', false],
    ['3.4.38', false],
    ['3.5.2', false],
    ['3.5.3', true],
    ['3.5.21', true],
    ['3.6.0', true],
    ['3.6.0-rc.1', true],
    ['4.0.0', true],
    ['3', false],
    ['', false],
    ['not-a-version', false],
  ])('%s → %s', (version, expected) => {
    expect(atLeast(version, [3, 5, 3])).toBe(expected);
  });
});
