/**
 * `tenure resign ELECTION`: a forced step-down of the leader, from anywhere, on every backend
 * (core's `QueueArbitrator.depose`). It deletes the leader's key checked on the term's epoch
 * (etcd: the key's create revision; ZooKeeper: the node's czxid, its sequential path never
 * reused), as an operator's `etcdctl del` or zkCli `delete` would but never deleting a newer
 * candidacy. Core ends the deposed term `revoked` at first sight of the deletion (G9), and the
 * next candidate in the queue leads. Not graceful: see docs/cli.md ("Forcing a leader to step
 * down"). It asks for no session: the delete is its only write.
 *
 * @packageDocumentation
 */

import { type Arbitrator, formatEpoch, type LeaderInfo } from '@tenure/core';
import { QueueArbitrator } from '@tenure/core/internal';
import type { CliLog } from './cli-log.js';
import { CliError, type CommandResult, EXIT, usageError } from './exit-codes.js';
import { leaderJson, type ReadOptions, withElection, write } from './inspect.js';
import { checkUrl } from './open-arbitrator.js';

/** How the forced step-down went. */
type Outcome =
  | { readonly kind: 'no-leader' }
  | { readonly kind: 'other-epoch'; readonly leader: LeaderInfo }
  | { readonly kind: 'changed'; readonly leader: LeaderInfo }
  | { readonly kind: 'deposed'; readonly leader: LeaderInfo };

function deposerOf(arbitrator: Arbitrator): QueueArbitrator {
  if (!(arbitrator instanceof QueueArbitrator)) {
    throw new CliError(EXIT.software, 'this arbitrator cannot depose a leader');
  }
  return arbitrator;
}

/**
 * Deletes the key of `name`'s leader if it still has the epoch just read (and, with `epoch`,
 * only if that is the leader's epoch). Exit 0 once deleted; 1 when there was nothing to
 * depose (no leader, another epoch than `epoch`, or a leader that changed before the delete).
 */
export async function resignLeader(
  name: string,
  epoch: string | undefined,
  options: ReadOptions,
  log: CliLog,
): Promise<CommandResult> {
  checkUrl(options.url);
  if (epoch !== undefined && !/^\d{1,20}$/.test(epoch)) {
    throw usageError(`--epoch ${JSON.stringify(epoch)} is not an epoch (a decimal integer)`);
  }
  const outcome = await withElection(
    options,
    name,
    async (election, arbitrator): Promise<Outcome> => {
      const leader = await election.leader();
      if (leader === undefined) return { kind: 'no-leader' };
      if (epoch !== undefined && formatEpoch(leader.epoch) !== epoch) {
        return { kind: 'other-epoch', leader };
      }
      // Checked on the epoch: a key deleted since, or a new candidacy, is left alone.
      const succeeded = await deposerOf(arbitrator).depose(name, {
        key: leader.key,
        epoch: leader.epoch,
      });
      return { kind: succeeded ? 'deposed' : 'changed', leader };
    },
  );
  const shown = outcome.kind === 'no-leader' ? null : leaderJson(outcome.leader);
  if (options.json) {
    write(
      `${JSON.stringify({ election: name, deposed: outcome.kind === 'deposed', leader: shown })}\n`,
    );
  } else if (outcome.kind === 'deposed') {
    write(`${shown!.value}\t${shown!.epoch}\n`);
  }
  switch (outcome.kind) {
    case 'no-leader':
      log.warn(`"${name}" has no leader: nothing to do`);
      return EXIT.notFound;
    case 'other-epoch':
      log.warn(`the leader of "${name}" holds epoch ${shown!.epoch}, not ${epoch}: nothing done`, {
        election: name,
        epoch: shown!.epoch,
      });
      return EXIT.notFound;
    case 'changed':
      log.warn(`the leader of "${name}" changed before its key could be deleted: nothing done`, {
        election: name,
        epoch: shown!.epoch,
      });
      return EXIT.notFound;
    case 'deposed':
      log.info(
        `deleted the key of ${JSON.stringify(shown!.value)} (epoch ${shown!.epoch}): its term ends (revoked) as soon as it sees the deletion; the next candidate in the queue leads`,
        { election: name, epoch: shown!.epoch, key: shown!.key },
      );
      return EXIT.ok;
  }
}
