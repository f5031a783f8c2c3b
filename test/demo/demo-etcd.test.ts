// The demo's --url etcd://…, against a real etcd (a node started for this file, or
// TENURE_ETCD_ENDPOINTS): the same story, epochs in order, exit 0.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type EtcdForTests, etcdForTests } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const demo = join(root, 'demo', 'dist', 'main.js');
let etcd: EtcdForTests;

beforeAll(async () => {
  etcd = await etcdForTests();
});
afterAll(() => etcd?.stop());

function etcdUrl(path: string): string {
  const hosts = etcd.endpoints.map((e) => new URL(e).host).join(',');
  return `etcd://${hosts}${path}`;
}

describe('the demo against etcd', () => {
  it('runs the same story with --url etcd://… and exits 0', async () => {
    if (!existsSync(demo)) throw new Error(`${demo} is missing: run the build first`);
    const child = spawn(process.execPath, [demo, '--url', etcdUrl('/tenure-demo-test')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, `stderr: ${stderr}\nstdout: ${stdout}`).toBe(0);
    const epochs = [...stdout.matchAll(/elected\s+epoch (\d+)/g)].map((m) => BigInt(m[1] ?? '0'));
    expect(epochs.length).toBeGreaterThanOrEqual(3);
    expect([...epochs].sort((a, b) => (a < b ? -1 : 1))).toEqual(epochs);
  }, 120_000);
});
