/**
 * The pool's names and stored forms: the elections a pool uses, a member's candidate value,
 * and the assignment the leader publishes (inline in its value, or stored beside the members
 * election when too large for a value).
 *
 * @packageDocumentation
 */

import { type Epoch, formatEpoch, MAX_VALUE_BYTES, parseEpoch } from '@tenure/core';
import type { Assignment, AssignmentMember } from './types.js';

/** The membership election: every member is a candidate; its leader is the pool's leader. */
export function membersElection(pool: string): string {
  return `${pool}.members`;
}

/** The claim election of one item: its leader holds the item. */
export function itemElection(pool: string, item: string): string {
  return `${pool}.item.${item}`;
}

/** Where the leader stores an assignment too large for its candidate value. */
export const ASSIGNMENT_KEY = 'pool-assignment';
/** Where the run-time item list is kept (written with {@link setPoolItems}). */
export const ITEMS_KEY = 'pool-items';

/** A candidate value of the members election, as parsed. */
export interface MemberValue {
  readonly id: string;
  readonly weight: number;
  /** Present on the leader's value once it has published. */
  readonly published?: PublishedRef;
}

/** The assignment part of the leader's value: inline, or a pointer to the stored copy. */
export type PublishedRef =
  | { readonly generation: number; readonly lists: ItemLists }
  | { readonly generation: number; readonly stored: true };

/** Member id → its weight and items, as published. */
export type ItemLists = Record<string, { w: number; i: string[] }>;

function toLists(members: readonly AssignmentMember[]): ItemLists {
  const a: ItemLists = {};
  for (const m of members) a[m.id] = { w: m.weight, i: [...m.items] };
  return a;
}

/** A member's value before it leads (or after, without a publication). */
export function encodeMember(id: string, weight: number): string {
  return JSON.stringify({ pool: 1, m: id, w: weight });
}

/**
 * The leader's value carrying an assignment (item lists per member). Returns `undefined` when
 * it would not fit in a candidate value: then the leader stores the assignment beside the
 * election ({@link encodeStored}) and proclaims {@link encodeLeaderPointer}.
 */
export function encodeLeaderInline(
  id: string,
  weight: number,
  generation: number,
  members: readonly AssignmentMember[],
): string | undefined {
  const text = JSON.stringify({ pool: 1, m: id, w: weight, g: generation, a: toLists(members) });
  // Leave room for the adapters' own framing of the value.
  return Buffer.byteLength(text) <= MAX_VALUE_BYTES - 256 ? text : undefined;
}

/** The leader's value pointing at the stored assignment of this generation. */
export function encodeLeaderPointer(id: string, weight: number, generation: number): string {
  return JSON.stringify({ pool: 1, m: id, w: weight, g: generation, stored: true });
}

/** The stored copy of an assignment (written with the leader's fenced `term.put`). */
export function encodeStored(
  epoch: Epoch,
  generation: number,
  members: readonly AssignmentMember[],
): string {
  return JSON.stringify({ e: formatEpoch(epoch), g: generation, a: toLists(members) });
}

/** Parses a stored assignment; `undefined` for anything else. */
export function decodeStored(
  text: string,
): { epoch: Epoch; generation: number; lists: ItemLists } | undefined {
  try {
    const v = JSON.parse(text) as { e?: unknown; g?: unknown; a?: unknown };
    if (typeof v.e !== 'string' || typeof v.g !== 'number' || !isItemLists(v.a)) return undefined;
    return { epoch: parseEpoch(v.e), generation: v.g, lists: v.a };
  } catch {
    return undefined;
  }
}

/**
 * Parses a members-election value; `undefined` for a value that is not a pool member's (an
 * `etcdctl elect` in the same queue, say): such candidates are not members.
 */
export function decodeMember(text: string): MemberValue | undefined {
  let v: { pool?: unknown; m?: unknown; w?: unknown; g?: unknown; a?: unknown; stored?: unknown };
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || v.pool !== 1) return undefined;
  if (typeof v.m !== 'string' || !isWeight(v.w)) return undefined;
  if (typeof v.g !== 'number') return { id: v.m, weight: v.w };
  if (v.stored === true)
    return { id: v.m, weight: v.w, published: { generation: v.g, stored: true } };
  if (!isItemLists(v.a)) return { id: v.m, weight: v.w };
  return { id: v.m, weight: v.w, published: { generation: v.g, lists: v.a } };
}

/** Builds the public {@link Assignment} from item lists and the members' weights. */
export function toAssignment(epoch: Epoch, generation: number, lists: ItemLists): Assignment {
  const owners = new Map<string, string>();
  const members: AssignmentMember[] = Object.keys(lists)
    .sort()
    .map((id) => {
      const entry = lists[id]!;
      const items = [...entry.i].sort();
      for (const item of items) owners.set(item, id);
      return { id, weight: entry.w, items };
    });
  return { epoch, generation, members, owners };
}

/** Encodes the run-time item list. */
export function encodeItems(items: readonly string[]): string {
  return JSON.stringify({ pool: 1, items: [...new Set(items)].sort() });
}

/** Parses the run-time item list (`[]` for anything unreadable). */
export function decodeItems(text: string | undefined): string[] {
  if (text === undefined) return [];
  try {
    const v = JSON.parse(text) as { items?: unknown };
    return Array.isArray(v.items) && v.items.every((i) => typeof i === 'string') ? v.items : [];
  } catch {
    return [];
  }
}

/** A positive integer weight. */
export function isWeight(w: unknown): w is number {
  return typeof w === 'number' && Number.isSafeInteger(w) && w > 0;
}

function isItemLists(a: unknown): a is ItemLists {
  if (typeof a !== 'object' || a === null || Array.isArray(a)) return false;
  return Object.values(a).every((entry: unknown) => {
    if (typeof entry !== 'object' || entry === null) return false;
    const { w, i } = entry as { w?: unknown; i?: unknown };
    return isWeight(w) && Array.isArray(i) && i.every((x) => typeof x === 'string');
  });
}
