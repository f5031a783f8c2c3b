import { TaskFailedError, type TenureError } from '@tenure/core';
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

describe('SafeEmitter: eventemitter3 semantics kept', () => {
  it('passes a TenureError thrown by a listener on as it is', () => {
    const emitter = new SafeEmitter<Events>();
    const errors: TenureError[] = [];
    const thrown = new TaskFailedError('typed');
    emitter.on('tick', () => {
      throw thrown;
    });
    emitter.on('error', (e) => errors.push(e));
    emitter.emit('tick', 1);
    expect(errors).toEqual([thrown]);
  });

  it('turns a throwing error listener into a warning', () => {
    const emitter = new SafeEmitter<Events>();
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    emitter.on('error', () => {
      throw new Error('bad error listener');
    });
    emitter.on('tick', () => {
      throw new Error('x');
    });
    expect(() => emitter.emit('tick', 1)).not.toThrow();
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
  });

  it('returns whether the event had listeners', () => {
    const emitter = new SafeEmitter<Events>();
    expect(emitter.emit('tick', 1)).toBe(false);
    emitter.on('tick', () => {});
    expect(emitter.emit('tick', 1)).toBe(true);
  });

  it('removes a once-listener before it runs, even when it throws', () => {
    const emitter = new SafeEmitter<Events>();
    const counts: number[] = [];
    const nested: number[] = [];
    emitter.once('tick', (n) => {
      counts.push(emitter.listenerCount('tick'));
      if (n === 1) emitter.emit('tick', 2);
    });
    emitter.on('tick', (n) => nested.push(n));
    emitter.emit('tick', 1);
    expect(counts).toEqual([1]);
    expect(nested).toEqual([2, 1]);

    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    emitter.once('tick', () => {
      throw new Error('once and bad');
    });
    emitter.emit('tick', 3);
    emitter.emit('tick', 4);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(emitter.listenerCount('tick')).toBe(1);
    warn.mockRestore();
  });

  it('runs a once-listener once even when an earlier listener emits the event again', () => {
    const emitter = new SafeEmitter<Events>();
    const once = vi.fn();
    emitter.on('tick', (n) => {
      if (n === 1) emitter.emit('tick', 2);
    });
    emitter.once('tick', once);
    emitter.emit('tick', 1);
    expect(once.mock.calls).toEqual([[2]]);
  });

  it('removes a once-listener by its function, and once=true spares on-listeners', () => {
    const emitter = new SafeEmitter<Events>();
    const fn = vi.fn();
    emitter.once('tick', fn);
    expect(emitter.listenerCount('tick')).toBe(1);
    emitter.removeListener('tick', fn);
    expect(emitter.listenerCount('tick')).toBe(0);
    emitter.emit('tick', 1);
    expect(fn).not.toHaveBeenCalled();

    emitter.on('tick', fn);
    emitter.once('tick', fn);
    emitter.off('tick', fn, undefined, true);
    expect(emitter.listenerCount('tick')).toBe(1);
    emitter.emit('tick', 2);
    emitter.emit('tick', 3);
    expect(fn.mock.calls).toEqual([[2], [3]]);
  });

  it('calls listeners with their context (the emitter by default) and removes by context', () => {
    const emitter = new SafeEmitter<Events>();
    const a = { name: 'a' };
    const b = { name: 'b' };
    const seen: unknown[] = [];
    function record(this: unknown) {
      seen.push(this);
    }
    emitter.on('tick', record);
    emitter.on('tick', record, a);
    emitter.once('tick', record, b);
    emitter.emit('tick', 1);
    expect(seen).toEqual([emitter, a, b]);
    emitter.removeListener('tick', record, a);
    seen.length = 0;
    emitter.emit('tick', 2);
    expect(seen).toEqual([emitter]);
  });

  it('lists the registered functions, counts them, and removes all', () => {
    const emitter = new SafeEmitter<Events>();
    const f = () => {};
    const g = () => {};
    emitter.on('tick', f);
    emitter.once('tick', g);
    emitter.addListener('tick', f);
    expect(emitter.listeners('tick')).toEqual([f, g, f]);
    expect(emitter.listenerCount('tick')).toBe(3);
    expect(emitter.eventNames()).toEqual(['tick']);
    emitter.removeListener('tick', f);
    expect(emitter.listeners('tick')).toEqual([g]);
    emitter.removeAllListeners();
    expect(emitter.listenerCount('tick')).toBe(0);
    expect(emitter.eventNames()).toEqual([]);
  });

  it('runs the listeners registered when emit began', () => {
    const emitter = new SafeEmitter<Events>();
    const seen: string[] = [];
    const late = () => seen.push('late');
    const second = () => seen.push('second');
    emitter.on('tick', () => {
      seen.push('first');
      emitter.on('tick', late);
      emitter.off('tick', second);
    });
    emitter.on('tick', second);
    emitter.emit('tick', 1);
    expect(seen).toEqual(['first', 'second']);
  });

  it('refuses a listener that is not a function', () => {
    const emitter = new SafeEmitter<Events>();
    expect(() => emitter.on('tick', 'nope' as unknown as () => void)).toThrow(TypeError);
    expect(() => emitter.once('tick', 42 as unknown as () => void)).toThrow(TypeError);
  });
});
