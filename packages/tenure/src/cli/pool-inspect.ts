/**
 * `tenure pool NAME`: a `@tenure/pool` seen from outside, without joining it: its leader, live
 * members with their weights and assigned items and, with `--holders`, who holds each item now.
 *
 * @packageDocumentation
 */

import { formatEpoch } from '@tenure/core';
import { membersElection, readPool } from '@tenure/pool';
import type { CliLog } from './cli-log.js';
import { type CommandResult, EXIT } from './exit-codes.js';
import type { ReadOptions } from './inspect.js';
import { asCliError, checkUrl, closeWithin, openArbitrator } from './open-arbitrator.js';
import { formatTable } from './text-table.js';

/** `tenure pool NAME [--holders]`; exit 1 when the pool has no member. */
export async function showPool(
  name: string,
  options: ReadOptions & { readonly holders: boolean },
  log: CliLog,
): Promise<CommandResult> {
  checkUrl(options.url);
  const arbitrator = await openArbitrator(
    options.url!,
    membersElection(name),
    options.timeoutMs,
    undefined,
    { lazySession: true },
  );
  let snapshot: Awaited<ReturnType<typeof readPool>>;
  try {
    snapshot = await readPool(arbitrator, name, { holders: options.holders });
  } catch (error) {
    throw asCliError(error);
  } finally {
    await closeWithin(arbitrator, 5_000);
  }
  const { leader, members, assignment, holders } = snapshot;
  const itemsOf = (id: string) => assignment?.members.find((m) => m.id === id)?.items ?? [];
  const heldBy = (id: string) => [...(holders ?? [])].filter(([, h]) => h === id).length;
  if (options.json) {
    const json = {
      leader: leader ?? null,
      members: members.map((m) => ({
        id: m.id,
        weight: m.weight,
        items: itemsOf(m.id),
        ...(holders === undefined ? {} : { held: heldBy(m.id) }),
      })),
      assignment:
        assignment === undefined
          ? null
          : { epoch: formatEpoch(assignment.epoch), generation: assignment.generation },
      ...(holders === undefined ? {} : { holders: Object.fromEntries(holders) }),
    };
    process.stdout.write(`${JSON.stringify(json)}\n`);
  } else if (members.length > 0) {
    const headers = ['MEMBER', 'WEIGHT', 'ITEMS', ...(holders ? ['HELD'] : []), 'ROLE'];
    const rows = members.map((m) => [
      m.id,
      String(m.weight),
      String(itemsOf(m.id).length),
      ...(holders ? [String(heldBy(m.id))] : []),
      m.id === leader ? 'leader' : 'member',
    ]);
    process.stdout.write(formatTable(headers, rows));
    if (holders && assignment) {
      const unheld = [...assignment.owners.keys()].filter((item) => !holders.has(item));
      if (unheld.length > 0) log.warn(`${unheld.length} assigned items held by no one now`);
    }
  }
  if (members.length === 0) {
    log.warn(`pool "${name}" has no member`);
    return EXIT.notFound;
  }
  return EXIT.ok;
}
