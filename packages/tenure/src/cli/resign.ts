/**
 * `tenure resign ELECTION`: a forced step-down of the leader, from anywhere. It deletes the
 * leader's key in one etcd transaction compared on the key's create revision (the term's
 * epoch), as an operator's `etcdctl del` would but never deleting a newer candidacy under the
 * same key. Core ends the deposed term `revoked` at first sight of the deletion (G9), and the
 * next candidate in the queue leads. Not graceful: see docs/cli.md ("Forcing a leader to step down").
 *
 * ZooKeeper is not supported: the ZooKeeper adapter offers no delete of another session's
 * node (core's QueueBackend.leave does it for a candidate's own key on every adapter; exposing
 * it for a given leader is core's to do).
 *
 * @packageDocumentation
 */

import { type Arbitrator, formatEpoch, type LeaderInfo } from '@tenure/core';
import type { EtcdArbitrator } from '@tenure/etcd';
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

function etcdClientOf(arbitrator: Arbitrator): EtcdArbitrator['client'] {
  const client = (arbitrator as Partial<EtcdArbitrator>).client;
  if (client === undefined) throw new CliError(EXIT.software, 'the etcd adapter has no client');
  return client;
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
  const target = checkUrl(options.url);
  if (target.scheme !== 'etcd') {
    throw usageError(
      target.scheme === 'zk'
        ? 'tenure resign works on etcd only: the ZooKeeper adapter cannot delete another session’s node yet'
        : 'tenure resign works on etcd only (a memory:// arbitrator lives in one process)',
    );
  }
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
      const client = etcdClientOf(arbitrator);
      // Compared on the create revision: a key deleted since, or recreated by a new campaign
      // of the same lease (a new term, a larger epoch), is left alone.
      const { succeeded } = await client
        .if(leader.key, 'Create', '==', formatEpoch(leader.epoch))
        .then(client.delete().key(leader.key))
        .commit();
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
