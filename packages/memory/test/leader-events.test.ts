import type { LeaderInfo } from '@tenure/core';
import { createMemoryArbitrator, createMemoryServer, type MemoryServer } from '@tenure/memory';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// An election's leader-changed listeners on core's SafeEmitter: the leader watch runs while the
// event has listeners and only then (G4's cost), however listeners come and go: on/off, once
// (removed by the emitter as it fires), removeListener of a once-listener, removeAllListeners.

let server: MemoryServer;
let live: number;
let seq = 0;

beforeEach(() => {
  server = createMemoryServer();
  live = 0;
  // Counts the server's open watches: the test's window on whether the leader watch runs.
  const target = server as unknown as {
    watch(election: string, watcher: unknown): () => void;
  };
  const watch = target.watch.bind(target);
  target.watch = (election, watcher) => {
    const unwatch = watch(election, watcher);
    live += 1;
    let open = true;
    return () => {
      if (open) live -= 1;
      open = false;
      unwatch();
    };
  };
});

afterEach(async () => {
  await server.close();
});

describe('leader-changed listeners drive the leader watch', () => {
  it('starts it for a listener and stops it once none is left, whichever way it left', async () => {
    const name = `leader-events-${++seq}`;
    const a = createMemoryArbitrator({ server });
    const b = createMemoryArbitrator({ server });
    try {
      const leading = a.election(name, { value: 'a' });
      await leading.campaign();
      const baseline = live;
      const watcher = b.election(name);

      const seen = await new Promise<LeaderInfo | undefined>((resolve) => {
        watcher.once('leader-changed', resolve);
        expect(live).toBe(baseline + 1);
      });
      expect(seen?.value).toBe('a');
      expect(watcher.listenerCount('leader-changed')).toBe(0);
      expect(live).toBe(baseline);

      const on = () => {};
      watcher.on('leader-changed', on);
      expect(live).toBe(baseline + 1);
      watcher.off('leader-changed', on);
      expect(live).toBe(baseline);

      const once = () => {
        throw new Error('removed before it could run');
      };
      watcher.once('leader-changed', once);
      expect(live).toBe(baseline + 1);
      watcher.removeListener('leader-changed', once);
      expect(watcher.listenerCount('leader-changed')).toBe(0);
      expect(live).toBe(baseline);

      watcher.addListener('leader-changed', on);
      watcher.once('leader-changed', on);
      expect(live).toBe(baseline + 1);
      watcher.removeAllListeners('leader-changed');
      expect(live).toBe(baseline);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('one leader watch per election and arbitrator', () => {
  it("is shared by the election's leader-changed listeners and every observe() of the name", async () => {
    const name = `leader-events-${++seq}`;
    const a = createMemoryArbitrator({ server });
    const b = createMemoryArbitrator({ server });
    const stop = new AbortController();
    try {
      const leading = a.election(name, { value: 'a' });
      await leading.campaign();
      const baseline = live;
      const election = b.election(name);
      const fromEvents: (string | undefined)[] = [];
      election.on('leader-changed', (leader) => fromEvents.push(leader?.value));
      const observers = [0, 1, 2].map(() => b.observe(name, { signal: stop.signal }));
      const firsts = await Promise.all(observers.map((o) => o.next()));
      // A late observer gets the leader known so far, at once.
      expect(firsts.map((r) => (r.value as LeaderInfo | undefined)?.value)).toEqual([
        'a',
        'a',
        'a',
      ]);
      expect(live).toBe(baseline + 1);
      await leading.resign();
      const seconds = await Promise.all(observers.map((o) => o.next()));
      const afterResign = live; // a's own key is no longer watched
      expect(seconds.map((r) => r.value)).toEqual([undefined, undefined, undefined]);
      expect(fromEvents).toEqual(['a', undefined]);
      // The last subscriber gone, the watch stops.
      stop.abort();
      election.removeAllListeners('leader-changed');
      expect(live).toBe(afterResign - 1);
    } finally {
      stop.abort();
      await a.close();
      await b.close();
    }
  });
});
