#!/usr/bin/env node
// The README's commands land here: `npm run demo`, `npm test`, `npm run bench` and `npm run nemesis`. On a machine with only
// Node ≥ 20 and npm, it fetches the pinned pnpm, installs the lockfile's packages and then
// runs the demo, every check, the benchmarks, or a long nemesis schedule.
// Usage: node scripts/bootstrap.mjs <demo|test|bench|nemesis> [args…]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [mode, ...args] = process.argv.slice(2);
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager; // pnpm@x.y.z

function run(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function must(command, commandArgs, options) {
  const status = run(command, commandArgs, options);
  if (status !== 0) {
    console.error(`\n✗ ${command} ${commandArgs.join(' ')} exited with ${status}`);
    process.exit(status);
  }
}

// Use the pinned pnpm: the one on PATH when it is that version, else through npx.
function pnpm() {
  const version = pinned.split('@')[1];
  const found = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (found.status === 0 && found.stdout.trim() === version) return ['pnpm', []];
  return ['npx', ['-y', pinned]];
}

function onPath(binary) {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

// A package counts as installed when its binary is on PATH and its file (for packages of jars,
// which put nothing on PATH) exists.
function installed(w) {
  return (
    (w.binary === undefined || onPath(w.binary)) && (w.file === undefined || existsSync(w.file))
  );
}

// Installs the wanted packages that are missing. `optional`: a failure (no apt-get, no root, a
// package not found) is reported and the run goes on without them.
function ensureDebianPackages(wanted, { optional = false } = {}) {
  const missing = wanted.filter((w) => !installed(w));
  if (missing.length === 0) return;
  const names = missing.map((w) => w.pkg);
  if (optional) {
    const status = optionalInstall(names);
    if (status !== 0) {
      console.warn(
        `! could not install ${names.join(' ')} (exit ${status}): the bench reports what they provide as not available`,
      );
    }
    return;
  }
  if (!onPath('apt-get')) {
    console.error(
      `✗ the integration tests need ${names.join(', ')} (missing: ${missing.map((w) => [w.binary, w.file].filter(Boolean).join(' + ')).join(', ')}).\n` +
        '  Install them with your package manager, or point TENURE_ETCD_ENDPOINTS / TENURE_ZK_CONNECT at running servers.',
    );
    process.exit(1);
  }
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  console.log(`› installing Debian packages: ${names.join(' ')}`);
  must(
    sudo[0] ?? 'apt-get',
    [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'update', '-qq'],
    { env },
  );
  must(
    sudo[0] ?? 'apt-get',
    [
      ...sudo.slice(1),
      ...(sudo.length ? ['apt-get'] : []),
      'install',
      '-y',
      '-qq',
      '--no-install-recommends',
      ...names,
    ],
    { env },
  );
  // The tests start their own servers on free ports; a packaged service is not wanted.
  for (const w of missing) {
    if (w.service && onPath('systemctl')) {
      spawnSync('systemctl', ['disable', '--now', w.service], { stdio: 'ignore' });
    }
  }
}

// apt-get update and install, as ensureDebianPackages does, returning the exit status instead
// of exiting.
function optionalInstall(names) {
  if (!onPath('apt-get')) return 127;
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const aptGet = (aptArgs) =>
    run(sudo[0] ?? 'apt-get', [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), ...aptArgs], {
      env,
    });
  console.log(`› installing Debian packages for the bench's peers: ${names.join(' ')}`);
  return (
    aptGet(['update', '-qq']) ||
    aptGet(['install', '-y', '-qq', '--no-install-recommends', ...names])
  );
}

if (!['demo', 'test', 'bench', 'nemesis'].includes(mode)) {
  console.error('usage: node scripts/bootstrap.mjs <demo|test|bench|nemesis> [args…]');
  process.exit(2);
}

const [pm, pmArgs] = pnpm();
const ci = process.env.CI === 'true' || process.env.CI === '1';
console.log(`› installing packages with ${pinned}${ci ? ' (frozen lockfile)' : ''}`);
must(pm, [
  ...pmArgs,
  'install',
  ...(ci ? ['--frozen-lockfile'] : ['--prefer-offline']),
  '--reporter=append-only',
]);

if (mode === 'demo') {
  must(pm, [...pmArgs, 'run', '--silent', 'build']);
  process.exit(run(process.execPath, [join(root, 'demo/dist/main.js'), ...args]));
}

if (mode === 'bench') {
  // The benchmarks run real etcd and ZooKeeper servers too.
  ensureDebianPackages([
    { binary: 'etcd', pkg: 'etcd-server', service: 'etcd' },
    { binary: 'java', file: '/usr/share/java/zookeeper.jar', pkg: 'zookeeper' },
  ]);
  // The peers tenure is measured against (bench/peers): etcd's Go Election, built from Debian's
  // Go and etcd sources; kazoo; Curator's LeaderLatch, compiled with a JDK. Optional: the bench
  // says which peer it could not run and goes on.
  ensureDebianPackages(
    [
      { binary: 'go', pkg: 'golang-go' },
      {
        file: '/usr/share/gocode/src/go.etcd.io/etcd/clientv3/concurrency/election.go',
        pkg: 'golang-etcd-server-dev',
      },
      { file: '/usr/lib/python3/dist-packages/kazoo/recipe/election.py', pkg: 'python3-kazoo' },
      { binary: 'javac', pkg: 'default-jdk-headless' },
      { file: '/usr/share/java/curator-recipes.jar', pkg: 'libcurator-recipes-java' },
      { file: '/usr/share/java/slf4j-simple.jar', pkg: 'libslf4j-java' },
    ],
    { optional: true },
  );
  must(pm, [...pmArgs, 'run', '--silent', 'build']);
  process.exit(run(process.execPath, [join(root, 'bench/dist/main.js'), ...args]));
}

if (mode === 'nemesis') {
  // The nemesis runs real etcd clusters and ZooKeeper ensembles, and candidates on the built
  // packages (packages/testkit/src/nemesis; docs/testing.md, "The nemesis").
  ensureDebianPackages([
    { binary: 'etcd', pkg: 'etcd-server', service: 'etcd' },
    { binary: 'java', file: '/usr/share/java/zookeeper.jar', pkg: 'zookeeper' },
  ]);
  must(pm, [...pmArgs, 'run', '--silent', 'build']);
  process.exit(
    run(process.execPath, [join(root, 'packages/testkit/dist/nemesis/main.js'), ...args]),
  );
}

// The integration tests run real servers from Debian's packages: install what is missing.
ensureDebianPackages([
  { binary: 'etcd', pkg: 'etcd-server', service: 'etcd' },
  { binary: 'etcdctl', pkg: 'etcd-client' },
  // The jars the testkit runs ZooKeeper from, and the Java the package depends on.
  { binary: 'java', file: '/usr/share/java/zookeeper.jar', pkg: 'zookeeper' },
  // The Curator interop tests compile a LeaderLatch participant: a JDK and Curator's jars.
  { binary: 'javac', pkg: 'default-jdk-headless' },
  { file: '/usr/share/java/curator-recipes.jar', pkg: 'libcurator-recipes-java' },
  { file: '/usr/share/java/slf4j-simple.jar', pkg: 'libslf4j-java' },
]);

// mode === 'test': every check, in order; the first failure stops the run.
must(pm, [...pmArgs, 'run', 'check', ...args]);
