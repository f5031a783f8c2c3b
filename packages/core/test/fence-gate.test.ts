import {
  type Epoch,
  FenceGate,
  type FenceStore,
  InvalidArgumentError,
  StaleEpochError,
} from '@tenure/core';
import { describe, expect, it } from 'vitest';

describe('FenceGate', () => {
  it('admits equal or higher epochs and refuses lower ones', async () => {
    const gate = new FenceGate();
    await gate.admit(5n);
    await gate.admit(5n);
    await gate.admit(9n);
    await expect(gate.admit(5n)).rejects.toBeInstanceOf(StaleEpochError);
    await expect(gate.admit(8n)).rejects.toMatchObject({
      code: 'STALE_EPOCH',
      epoch: 8n,
      highest: 9n,
    });
    expect(await gate.highest()).toBe(9n);
  });

  it('keeps one high-water mark per scope', async () => {
    const gate = new FenceGate();
    await gate.admit(10n, 'orders');
    await gate.admit(2n, 'invoices');
    await expect(gate.admit(3n, 'orders')).rejects.toBeInstanceOf(StaleEpochError);
    expect(await gate.highest('invoices')).toBe(2n);
  });

  it('retries when another writer moves the mark between read and compare-and-set', async () => {
    const marks = new Map<string, Epoch>();
    let interfere = true;
    const store: FenceStore = {
      get: async (scope) => marks.get(scope),
      compareAndSet: async (scope, expected, next) => {
        if (interfere) {
          interfere = false;
          marks.set(scope, 20n); // a newer leader wrote meanwhile
        }
        if (marks.get(scope) !== expected) return false;
        marks.set(scope, next);
        return true;
      },
    };
    const gate = new FenceGate({ store });
    await expect(gate.admit(15n)).rejects.toMatchObject({ highest: 20n });
  });

  it('rejects what is not an epoch', async () => {
    const gate = new FenceGate();
    await expect(gate.admit(-1n)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(gate.admit(5 as unknown as bigint)).rejects.toMatchObject({ field: 'epoch' });
  });
});
