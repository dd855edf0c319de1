// What the CLI does to start: `qnet --help` and `qnet status` with no labs read only the modules they need, start no
// process, and define only the command they run (the start-up figures of BENCHMARKS.md depend on it). Each command
// runs as a real process, with a preload that records every ES module resolved, every CommonJS file required, every
// node built-in loaded and every process started.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from './golden.js';

const QNET = path.join(ROOT, 'bin', 'qnet.js');

// Resolve hook (runs on node's loader thread): appends each resolved URL to the file named by QNET_LOADED.
const HOOKS = `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  appendFileSync(process.env.QNET_LOADED, r.url + '\\n');
  return r;
}
`;
// Preload: installs the hook, records each process started (every asynchronous spawn, execFile and exec goes through
// ChildProcess.prototype.spawn; qnet's runner uses spawn), and at exit adds the CommonJS files required and node's
// built-ins loaded. It loads node:child_process itself, so that built-in is not asserted on.
const PRELOAD = `import { appendFileSync } from 'node:fs';
import { ChildProcess } from 'node:child_process';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';
register('./hooks.mjs', import.meta.url);
const spawn = ChildProcess.prototype.spawn;
ChildProcess.prototype.spawn = function (o) {
  appendFileSync(process.env.QNET_LOADED, 'spawn:' + o.file + '\\n');
  return spawn.call(this, o);
};
process.on('exit', () => {
  const cjs = Object.keys(createRequire(import.meta.url).cache).map((f) => pathToFileURL(f).href);
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => 'node:' + m.slice(13));
  appendFileSync(process.env.QNET_LOADED, [...cjs, ...builtins].join('\\n') + '\\n');
});
`;

let dir = '';
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'qnet-startup-'));
  writeFileSync(path.join(dir, 'hooks.mjs'), HOOKS);
  writeFileSync(path.join(dir, 'preload.mjs'), PRELOAD);
  mkdirSync(path.join(dir, 'state'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs argv with the recording preload; returns its output and what it loaded, as paths relative to the checkout. */
function loaded(argv: string[], name: string): { stdout: string; status: number | null; files: string[]; packages: string[]; builtins: Set<string>; spawned: string[] } {
  const out = path.join(dir, `${name}.loaded`);
  writeFileSync(out, '');
  // No NODE_EXTRA_CA_CERTS: a bundle it names could be under a /run the status test hides (node would warn).
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', QNET_LOADED: out, QNET_STATE_DIR: path.join(dir, 'state') };
  delete env.NODE_EXTRA_CA_CERTS;
  // The run root is the default one, under the /run the status test replaces.
  delete env.QNET_RUN_DIR;
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, env });
  assert.equal(r.error, undefined, `${argv.join(' ')}: ${r.error?.message}`);
  // node 20 calls module.register experimental, once: anything else on stderr is a failure.
  assert.equal(r.stderr.replace(/^\(node:\d+\) ExperimentalWarning.*\n(\(Use .*\n)?/gm, ''), '', `${argv.join(' ')} wrote to stderr`);
  const urls = readFileSync(out, 'utf8').split('\n').filter(Boolean);
  const rel = (u: string) => path.relative(ROOT, new URL(u).pathname);
  const files = [...new Set(urls.filter((u) => u.startsWith('file:') && !u.includes('/node_modules/') && !u.startsWith(`file://${dir}`)).map(rel))].sort();
  const packages = [...new Set(urls.filter((u) => u.includes('/node_modules/')).map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)![1]!))].sort();
  const spawned = urls.filter((u) => u.startsWith('spawn:')).map((u) => u.slice(6));
  return { stdout: r.stdout, status: r.status, files, packages, builtins: new Set(urls.filter((u) => u.startsWith('node:'))), spawned };
}

test('`qnet --help` loads the command line and commander, nothing of the library and not node:crypto', () => {
  const r = loaded([process.execPath, '--import', path.join(dir, 'preload.mjs'), QNET, '--help'], 'help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Usage: qnet /);
  assert.deepEqual(r.files, ['bin/qnet.js', 'dist/src/cli/main.js', 'dist/src/cli/term.js', 'dist/src/errors.js', 'dist/src/host/run.js', 'dist/src/topology/names.js']);
  assert.deepEqual(r.packages, ['commander']);
  assert.ok(!r.builtins.has('node:crypto'), '--help loads node:crypto');
  assert.deepEqual(r.spawned, []);
});

// unshare and mount need root (as qnet itself does).
const notRoot = process.getuid?.() !== 0 && 'needs root (unshare --net, mount)';

test('`qnet status` with no labs (new namespaces: nothing of the host\'s) loads discovery\'s few modules, not the renderers', { skip: notRoot }, () => {
  // A new network, mount and PID namespace with its own /run, /sys and /proc: no lab, link, table or process of the
  // host is seen, whatever runs beside the test. unshare's mounts are private to it and end with it; --kill-child:
  // if the run times out, node (PID 1 of the new namespace) goes with unshare.
  const inner = `mount -t tmpfs tmpfs /run && mount -t sysfs sysfs /sys && exec "$@"`;
  const r = loaded(['unshare', '--mount', '--net', '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', inner, 'sh', process.execPath, '--import', path.join(dir, 'preload.mjs'), QNET, 'status'], 'status');
  assert.equal(r.status, 0);
  assert.equal(r.stdout, 'no labs\n');
  assert.deepEqual(r.files, [
    'bin/qnet.js',
    'dist/src/cli/main.js',
    'dist/src/cli/term.js',
    'dist/src/dirs.js',
    'dist/src/errors.js',
    'dist/src/host/fs.js',
    'dist/src/host/ovn-paths.js',
    'dist/src/host/run.js',
    'dist/src/lab/discover.js',
    // the labs over several hosts this machine drives (their driver's state): a directory read
    'dist/src/lab/hosts-state.js',
    'dist/src/qemu/process.js',
    'dist/src/render/markers.js',
    'dist/src/topology/model.js',
    'dist/src/topology/names.js',
  ]);
  assert.deepEqual(r.packages, ['commander']);
  assert.ok(!r.builtins.has('node:crypto'), 'status with no labs loads node:crypto');
  // Not even nft: a lab's host table never outlives its namespace (listLabs says why); `down --all` asks nft.
  assert.deepEqual(r.spawned, []);
});

test('each command defines only itself; help, version and an unknown name define every command', async () => {
  const { buildProgram, COMMANDS } = await import('../../src/cli/main.js');
  const names = (argv: string[]) => buildProgram(argv).program.commands.map((c) => c.name());
  // COMMANDS is complete and in the help's order: with --help every command is defined, and they are what it lists.
  assert.deepEqual(names(['--help']), COMMANDS);
  for (const argv of [[], ['help', 'status'], ['--version'], ['statu'], ['--json']]) assert.deepEqual(names(argv), COMMANDS, argv.join(' '));
  for (const c of COMMANDS) assert.deepEqual(names([c, '--help']), [c]);
  assert.deepEqual(names(['status']), ['status']);
  assert.deepEqual(buildProgram(['image', 'create']).program.commands[0]!.commands.map((c) => c.name()), ['build', 'create']);
});

test('a host nft table left alone (its namespace and run directory removed by hand) is found and removed by `down --all`', { skip: notRoot }, () => {
  // In new namespaces, as above: the table is made in a network namespace of the test's own. The cache and state
  // directories are the test's too (down tidies the cache's partial snapshots, judging their writers by PID).
  const lab = 'qnet-orphan-t';
  // set -e: nothing of qnet runs unless the new /run and /sys are in place (the run root is the default, under /run).
  const inner = [
    'set -e',
    'mount -t tmpfs tmpfs /run',
    'mount -t sysfs sysfs /sys',
    `nft add table ip qnet-${lab} '{ comment "qnet:lab=${lab}"; }'`,
    '"$1" "$2" status',
    '"$1" "$2" down --all 2>&1',
    'nft list tables | grep -c qnet- || true',
  ].join('\n');
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', QNET_STATE_DIR: path.join(dir, 'state'), QNET_CACHE_DIR: path.join(dir, 'cache') };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.QNET_RUN_DIR;
  const r = spawnSync('unshare', ['--mount', '--net', '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', inner, 'sh', process.execPath, QNET], { encoding: 'utf8', timeout: 60_000, env });
  assert.equal(r.status, 0, r.stderr);
  const [status, ...rest] = r.stdout.trimEnd().split('\n');
  // status looks only where qnet itself leaves things (no process started for it); down --all asks nft as well.
  assert.equal(status, 'no labs');
  assert.match(rest.join('\n'), new RegExp(`lab ${lab} is down in .*: removed nft table ip qnet-${lab}`));
  assert.equal(rest.at(-1), '0', 'the table is gone');
});
