// `tenure run` on a real etcd (one launched node): see run-scenarios.ts.
import { describeRunScenarios, etcdBackend } from './run-scenarios.js';

describeRunScenarios(etcdBackend);
