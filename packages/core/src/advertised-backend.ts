import { type CandidateMetadata, encodeCandidateValue, withAdvertised } from './advertised.js';
import type { LeaderWatchHandle, QueueBackend, QueueKey, SessionRef } from './queue-backend.js';
import type { LeaderInfo } from './types.js';

/**
 * An adapter's {@link QueueBackend} seen through the advertised-value codec: the values it
 * stores are composed with {@link encodeCandidateValue} (the candidate's `metadata` beside its
 * value, raw when there is none), and the leaders and candidates it reads are parsed with
 * {@link withAdvertised}. The codec is the only thing added: every other call goes through
 * unchanged, and no request is added.
 */
export function advertisingBackend(
  backend: QueueBackend,
  metadata: CandidateMetadata = {},
): QueueBackend {
  const compose = (value: string) => encodeCandidateValue(value, metadata);
  const wrapped: QueueBackend = {
    join: (session: SessionRef, value: string) => backend.join(session, compose(value)),
    position: (own) => backend.position(own),
    waitDeleted: (predecessor, from, signals) => backend.waitDeleted(predecessor, from, signals),
    watchDeleted: (own, onDeleted, onRewritten) =>
      backend.watchDeleted(own, onDeleted, onRewritten),
    leave: (own) => backend.leave(own),
    proclaim: (own: QueueKey, value: string) => backend.proclaim(own, compose(value)),
    put: (own, key, value, options) => backend.put(own, key, value, options),
    delete: (own, key) => backend.delete(own, key),
    get: (key) => backend.get(key),
    successor: async (own) => {
      const next = await backend.successor(own);
      return next === undefined ? undefined : withAdvertised(next);
    },
    inspect: (queued) => backend.inspect(queued),
    nudge: (reading) => backend.nudge(reading),
    candidates: async () => (await backend.candidates()).map(withAdvertised),
    watchLeader: (
      onLeader: (leader: LeaderInfo | undefined) => void,
      onError: (error: unknown) => void,
    ): LeaderWatchHandle =>
      backend.watchLeader(
        (leader) => onLeader(leader === undefined ? undefined : withAdvertised(leader)),
        onError,
      ),
  };
  // Optional in the port: present only where the adapter has it.
  const present = backend.present;
  if (present !== undefined) wrapped.present = (keys) => present.call(backend, keys);
  return wrapped;
}
