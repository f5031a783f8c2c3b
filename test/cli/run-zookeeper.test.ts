// `tenure run` on a real ZooKeeper (one launched server, tickTime 200 ms): see run-scenarios.ts.
import { describeRunScenarios, zookeeperBackend } from './run-scenarios.js';

describeRunScenarios(zookeeperBackend);
