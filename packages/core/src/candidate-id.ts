import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** A default candidate value, `hostname:pid:random`, unique per call. */
export function defaultCandidateValue(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}
