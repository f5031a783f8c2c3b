// `tenure run` on a real ZooKeeper (one launched server, tickTime 200 ms): see run-scenarios.ts.
import { zookeeperBackend } from './cli-backends.js';
import { describeRunScenarios } from './run-scenarios.js';

describeRunScenarios(zookeeperBackend);
