// Fails the run when a test that must exist is missing: every package has tests, and every
// arbitrator package runs the shared conformance suite.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const packages = readdirSync(join(root, 'packages'));
const ARBITRATORS = ['memory', 'etcd', 'zookeeper'];

describe('test inventory', () => {
  it.each(packages)('package %s has tests', (name) => {
    const dir = join(root, 'packages', name, 'test');
    expect(existsSync(dir), `packages/${name}/test is missing`).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith('.test.ts')).length).toBeGreaterThan(0);
  });

  it.each(ARBITRATORS)('arbitrator %s runs the conformance suite', (name) => {
    const file = join(root, 'packages', name, 'test', 'conformance.test.ts');
    expect(existsSync(file), `packages/${name}/test/conformance.test.ts is missing`).toBe(true);
    expect(readFileSync(file, 'utf8')).toMatch(/describeElectionConformance\(/);
  });
});
