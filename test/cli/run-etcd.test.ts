// `tenure run` on a real etcd (one launched node): see run-scenarios.ts.
import { etcdBackend } from './cli-backends.js';
import { describeRunScenarios } from './run-scenarios.js';

describeRunScenarios(etcdBackend);
