/**
 * The arbitrator's servers as the nemesis drives them: a real etcd cluster or ZooKeeper
 * ensemble behind one shape (kill and restart a member, find the leader, partition, restart all).
 */

import { startEtcdCluster } from '../etcd-cluster.js';
import { startZooKeeperEnsemble } from '../zookeeper-ensemble.js';
import type { NemesisArbitrator } from './faults.js';

/** One arbitrator member, as the nemesis drives it. */
export interface Member {
  readonly name: string;
  readonly clientPort: number;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/** An etcd cluster or a ZooKeeper ensemble, as the nemesis drives it. */
export interface Cluster {
  readonly members: readonly Member[];
  leader(): Promise<{ readonly name: string }>;
  /** Cuts the members apart (by index into `members`); clients stay connected. */
  partition(groups: readonly (readonly number[])[]): Promise<void>;
  heal(): Promise<void>;
  stopAll(): Promise<void>;
  startAll(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `size` partitionable members of `arbitrator`'s servers; `syncLimit` is ZooKeeper's
 * (ignored on etcd).
 */
export function startCluster(
  arbitrator: NemesisArbitrator,
  size: number,
  syncLimit: number | undefined,
): Promise<Cluster> {
  return arbitrator === 'etcd' ? startEtcd(size) : startZooKeeper(size, syncLimit);
}

async function startEtcd(size: number): Promise<Cluster> {
  const cluster = await startEtcdCluster(size, { partitionable: true });
  return {
    members: cluster.nodes.map((node) => ({
      name: node.name,
      clientPort: node.clientPort,
      kill: () => node.kill(),
      restart: () => node.restart(),
    })),
    leader: () => cluster.leader(),
    partition: (groups) => cluster.partition(groups.map((g) => g.map((i) => i + 1))),
    heal: () => cluster.heal(),
    stopAll: () => cluster.stopAll(),
    startAll: () => cluster.startAll(),
    stop: () => cluster.stop(),
  };
}

async function startZooKeeper(size: number, syncLimit: number | undefined): Promise<Cluster> {
  const ensemble = await startZooKeeperEnsemble(size, {
    partitionable: true,
    ...(syncLimit === undefined ? {} : { syncLimit }),
  });
  return {
    members: ensemble.members.map((node) => ({
      name: node.name,
      clientPort: node.clientPort,
      kill: () => node.kill(),
      restart: () => node.restart(),
    })),
    leader: () => ensemble.leader(),
    partition: (groups) => ensemble.partition(groups.map((g) => g.map((i) => i + 1))),
    heal: () => ensemble.heal(),
    stopAll: () => ensemble.stopAll(),
    startAll: () => ensemble.startAll(),
    stop: () => ensemble.stop(),
  };
}
