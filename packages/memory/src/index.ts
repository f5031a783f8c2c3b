/**
 * `@tenure/memory`: an in-process arbitrator with the same semantics as tenure's etcd and
 * ZooKeeper adapters (sessions with a TTL, ordered queues, epochs, fenced writes, observe), plus
 * the faults a test needs: pause, expire, partition and heal.
 *
 * @packageDocumentation
 */

export { createMemoryArbitrator } from './arbitrator.js';
export type {
  MemoryArbitrator,
  MemoryArbitratorOptions,
  MemoryServer,
  MemoryServerOptions,
} from './options.js';
export { createMemoryServer, sharedMemoryServer } from './server.js';
