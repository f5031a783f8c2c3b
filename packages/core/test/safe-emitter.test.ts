import type { TenureError } from '@tenure/core';
import { SafeEmitter } from '@tenure/core/internal';
import { describe, expect, it, vi } from 'vitest';

interface Events {
  tick: [n: number];
  error: [error: TenureError];
}

describe('SafeEmitter', () => {
  it('routes a throwing listener to error and still runs the others', () => {
    const emitter = new SafeEmitter<Events>();
    const seen: number[] = [];
    const errors: TenureError[] = [];
    emitter.on('tick', () => {
      throw new Error('listener bug');
    });
    emitter.on('tick', (n) => seen.push(n));
    emitter.on('error', (e) => errors.push(e));
    expect(() => emitter.emit('tick', 1)).not.toThrow();
    expect(seen).toEqual([1]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.code).toBe('TASK_FAILED');
    expect(errors[0]?.cause).toMatchObject({ message: 'listener bug' });
  });

  it('removes once-listeners and honours off()', () => {
    const emitter = new SafeEmitter<Events>();
    const once = vi.fn();
    const always = vi.fn();
    emitter.once('tick', once);
    emitter.on('tick', always);
    emitter.emit('tick', 1);
    emitter.emit('tick', 2);
    emitter.off('tick', always);
    emitter.emit('tick', 3);
    expect(once).toHaveBeenCalledTimes(1);
    expect(always).toHaveBeenCalledTimes(2);
  });

  it('turns a failure with no error listener into a warning, not a crash', () => {
    const emitter = new SafeEmitter<Events>();
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    emitter.on('tick', () => {
      throw new Error('x');
    });
    expect(() => emitter.emit('tick', 1)).not.toThrow();
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
  });
});
