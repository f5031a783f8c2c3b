/**
 * Advertised candidate values: metadata (an endpoint now, more fields later) carried in a
 * candidate's value beside the user's value, so that every participant learns it from the
 * leader watch it already has, with no read of its own.
 *
 * ## The encoding (version 1)
 *
 * A value without metadata is stored raw, exactly as given (the interop rule of etcd's
 * `concurrency.Election` / `etcdctl elect` and Curator's `LeaderLatch`: their values are raw
 * strings, and a tenure candidate that advertises nothing stays readable by them unchanged).
 * A value with metadata is stored as one JSON object whose first member is `"tenure"`:
 *
 * ```json
 * {"tenure":1,"value":"api-2","endpoint":"http://10.0.0.12:8080"}
 * ```
 *
 * - `tenure`: the format's version, an integer ≥ 1. A reader accepts every version and reads
 *   the members it knows: a later version only adds members, never changes what one means.
 * - `value`: the user's value (a string; required).
 * - `endpoint`: the advertised endpoint, an absolute URL with a host (optional).
 * - `priority`: the candidate's priority, an integer from 1 to `MAX_PRIORITY` (optional;
 *   absent means 0, and 0 is never written).
 *
 * Members a reader does not know are ignored. A stored
 * value is read as an envelope only when it starts with `{` and is a JSON object with an
 * integer `tenure` ≥ 1 and a string `value`; anything else (a Curator or `etcdctl elect` value, a value of an older
 * tenure, a malformed envelope) is read as raw: no metadata, value = the stored string.
 * A user value that would itself read as an envelope is wrapped even without metadata, so
 * that it reads back as given.
 *
 * @packageDocumentation
 */

import { InvalidArgumentError } from './errors.js';
import { describe, MAX_PRIORITY, MAX_VALUE_BYTES, validatePriority } from './limits.js';
import type { LeaderInfo } from './types.js';

/** The version of the envelope {@link encodeCandidateValue} writes. */
export const ADVERTISED_FORMAT_VERSION = 1;

/** The longest advertised endpoint, in UTF-8 bytes. */
export const MAX_ENDPOINT_BYTES = 2048;

/** What a candidate advertises beside its value. Every member is optional. */
export interface CandidateMetadata {
  /**
   * Where the candidate serves requests (for a follower to forward to the leader): an absolute
   * URL with a host, e.g. `http://10.0.0.12:8080`, without credentials (every participant and
   * observer reads it), at most {@link MAX_ENDPOINT_BYTES} UTF-8 bytes.
   */
  readonly endpoint?: string | undefined;
  /** The candidate's priority, an integer from 0 (the default, not stored) to `MAX_PRIORITY`. */
  readonly priority?: number | undefined;
}

/** A stored candidate value, parsed: the user's value and the metadata it carried. */
export interface ParsedCandidateValue {
  /** The user's value (the whole stored string when it carried no metadata). */
  readonly value: string;
  /** The advertised endpoint, `undefined` when none (or not a valid URL). */
  readonly endpoint: string | undefined;
  /** The advertised priority, `undefined` when none (read as 0) or not a valid priority. */
  readonly priority?: number | undefined;
}

const encoder = new TextEncoder();

/**
 * Checks an endpoint to advertise: an absolute URL with a host, no credentials, no whitespace
 * or control characters, at most {@link MAX_ENDPOINT_BYTES} UTF-8 bytes. Returns it unchanged.
 *
 * @throws {@link InvalidArgumentError} naming `field`.
 */
export function validateEndpoint(field: string, endpoint: unknown): string {
  if (typeof endpoint !== 'string') {
    throw new InvalidArgumentError(field, `must be a URL string (got ${describe(endpoint)})`);
  }
  const problem = endpointProblem(endpoint);
  if (problem !== undefined) throw new InvalidArgumentError(field, problem);
  return endpoint;
}

/** Why `endpoint` is not advertisable, or `undefined` when it is. */
function endpointProblem(endpoint: string): string | undefined {
  if (!endpoint.isWellFormed()) return 'must be well-formed Unicode (lone surrogate)';
  const bytes = encoder.encode(endpoint).length;
  if (bytes > MAX_ENDPOINT_BYTES) {
    return `must be at most ${MAX_ENDPOINT_BYTES} UTF-8 bytes (got ${bytes})`;
  }
  // WHATWG URL parsing strips surrounding whitespace and tabs/newlines inside: refuse them
  // rather than advertise a string that differs from what was parsed.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
  if (/[\s\u0000-\u001f\u007f]/.test(endpoint)) {
    return `must be a URL without whitespace or control characters (got ${describe(endpoint)})`;
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `must be an absolute URL such as http://10.0.0.12:8080 (got ${describe(endpoint)})`;
  }
  if (url.host === '') {
    return `must be a URL with a host, such as http://10.0.0.12:8080 (got ${describe(endpoint)})`;
  }
  if (url.username !== '' || url.password !== '') {
    return 'must not carry credentials: every participant and observer can read it';
  }
  return undefined;
}

/**
 * Checks the metadata of a candidate (the options it came from: `endpoint`, `priority`).
 * Returns the metadata to store, with only the members that are set (a priority of 0 is not).
 *
 * @throws {@link InvalidArgumentError} naming the member.
 */
export function validateCandidateMetadata(metadata: {
  readonly endpoint?: unknown;
  readonly priority?: unknown;
}): CandidateMetadata {
  const checked: { endpoint?: string; priority?: number } = {};
  if (metadata.endpoint !== undefined) {
    checked.endpoint = validateEndpoint('endpoint', metadata.endpoint);
  }
  if (metadata.priority !== undefined) {
    const priority = validatePriority('priority', metadata.priority);
    if (priority > 0) checked.priority = priority;
  }
  return checked;
}

/** `true` when `metadata` holds nothing to advertise. */
function isEmpty(metadata: CandidateMetadata): boolean {
  return metadata.endpoint === undefined && metadata.priority === undefined;
}

/**
 * The string to store for a candidate whose value is `value` and who advertises `metadata`:
 * `value` itself when there is nothing to advertise (and it would not read as an envelope),
 * else the version-1 envelope. The result is at most {@link MAX_VALUE_BYTES} UTF-8 bytes.
 *
 * @throws {@link InvalidArgumentError} naming `value` when the envelope is too long, or the
 *   member of `metadata` that is not valid.
 */
export function encodeCandidateValue(value: string, metadata: CandidateMetadata = {}): string {
  const checked = validateCandidateMetadata(metadata);
  if (isEmpty(checked) && readEnvelope(value) === undefined) return value;
  const envelope: Record<string, string | number> = { tenure: ADVERTISED_FORMAT_VERSION, value };
  if (checked.endpoint !== undefined) envelope.endpoint = checked.endpoint;
  if (checked.priority !== undefined) envelope.priority = checked.priority;
  const encoded = JSON.stringify(envelope);
  const bytes = encoder.encode(encoded).length;
  if (bytes > MAX_VALUE_BYTES) {
    throw new InvalidArgumentError(
      'value',
      `with the advertised metadata must be at most ${MAX_VALUE_BYTES} UTF-8 bytes stored (got ${bytes})`,
    );
  }
  return encoded;
}

/**
 * Parses a stored candidate value. Never throws: a value that is not an envelope (written by
 * Curator's `LeaderLatch`, `etcdctl elect`, an older tenure, or malformed) parses as
 * `{ value: stored, endpoint: undefined }`; an endpoint that is not a valid URL is ignored.
 */
export function parseCandidateValue(stored: string): ParsedCandidateValue {
  const envelope = readEnvelope(stored);
  if (envelope === undefined) return { value: stored, endpoint: undefined };
  const { endpoint, priority } = envelope;
  const parsed = {
    value: envelope.value,
    endpoint:
      typeof endpoint === 'string' && endpointProblem(endpoint) === undefined
        ? endpoint
        : undefined,
  };
  return isPriority(priority) ? { ...parsed, priority } : parsed;
}

/** The priority a stored candidate value carries: 0 unless it is an envelope with one. */
export function priorityOf(stored: string): number {
  return parseCandidateValue(stored).priority ?? 0;
}

/** Whether `x` is a priority worth reporting (an integer from 1 to MAX_PRIORITY). */
function isPriority(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= MAX_PRIORITY;
}

/**
 * The leader (or candidate) `info` as tenure reports it: its `value` parsed with
 * {@link parseCandidateValue} and its `endpoint` set when it advertised one. Returns `info`
 * itself when its value carries no metadata, so a raw value reads exactly as before.
 */
export function withAdvertised(info: LeaderInfo): LeaderInfo {
  if (readEnvelope(info.value) === undefined) return info;
  const parsed = parseCandidateValue(info.value);
  const read: { value: string; endpoint?: string; priority?: number } = { value: parsed.value };
  if (parsed.endpoint !== undefined) read.endpoint = parsed.endpoint;
  if (parsed.priority !== undefined) read.priority = parsed.priority;
  return { ...info, ...read };
}

/** The envelope's members when `stored` is one, else `undefined`. */
function readEnvelope(
  stored: string,
): { value: string; endpoint?: unknown; priority?: unknown } | undefined {
  // Cheap test first: the leader watch parses every value it sees.
  if (!stored.startsWith('{') || !stored.includes('"tenure"')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const members = parsed as {
    tenure?: unknown;
    value?: unknown;
    endpoint?: unknown;
    priority?: unknown;
  };
  const version = members.tenure;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) return undefined;
  if (typeof members.value !== 'string') return undefined;
  return { value: members.value, endpoint: members.endpoint, priority: members.priority };
}
