// End-to-end, rootless (first stage of issue 34): an ordinary user that this test makes (useradd) and removes
// (userdel -r), with a runtime directory made for it, runs the real CLI. doctor says what this host lacks for
// rootless labs and the command that fixes each; what needs the host's own namespace is refused (exit 2); up of an
// acceptable lab says rootless labs are not yet supported (exit 1); nothing is made on the host; and the user, its
// home and its runtime directory are gone at the end. /dev/net/tun is left as it is (0600 here).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { QNET, labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

const USER = `qnr${process.pid.toString(36)}`;
let uid = -1;
let gid = -1;
let home = '';
let runtime = '';
let madeRunUser = false;

function sh(argv: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** The real CLI run as the test's user (setpriv: its uid, gid and groups), with a user's environment only. */
function asUser(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const base: Record<string, string | undefined> = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, USER, LOGNAME: USER, XDG_RUNTIME_DIR: runtime, LANG: 'C.UTF-8', ...env };
  const clean = Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv;
  return new Promise((resolve) => {
    const child = spawn('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', process.execPath, QNET, ...args], { env: clean, cwd: home });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** A topology the user can read (written by root to a temp directory removed when the test process exits). */
function topology(topo: unknown): string {
  const file = writeTopology(topo);
  chmodSync(path.dirname(file), 0o755);
  chmodSync(file, 0o644);
  return file;
}

function removeUser(): void {
  if (sh(['id', '-u', USER]).code === 0) sh(['userdel', '-r', USER]);
  if (runtime) rmSync(runtime, { recursive: true, force: true });
  if (madeRunUser && existsSync('/run/user') && !readdirSync('/run/user').length) rmdirSync('/run/user');
}

const nat = (name: string, forwardPort = 8080) => ({
  name,
  networks: { lan: { mode: 'nat', subnet: '172.16.9.0/24', address: '172.16.9.1', dhcp: { range: '172.16.9.2-172.16.9.50' } } },
  forwards: [{ proto: 'tcp', host: forwardPort, node: 'a', port: 80 }],
  nodes: { a: { nics: [{ network: 'lan', dhcp: true, ip: '172.16.9.2' }] } },
});
const bridged = (name: string) => ({
  name,
  // Never made: refused before anything happens (the uplink named is not touched, nor looked at).
  networks: { office: { mode: 'bridged', uplink: 'eth0' } },
  nodes: { a: { nics: [{ network: 'office', dhcp: true }] } },
});

describe('rootless, as an ordinary user made for the test', () => {
  let before0: HostSnapshot;
  before(async () => {
    before0 = await snapshot();
    const made = sh(['useradd', '--create-home', '--user-group', '--shell', '/bin/sh', USER]);
    assert.equal(made.code, 0, made.stderr);
    uid = Number(sh(['id', '-u', USER]).stdout.trim());
    gid = Number(sh(['id', '-g', USER]).stdout.trim());
    home = sh(['getent', 'passwd', USER]).stdout.split(':')[5]!;
    if (!existsSync('/run/user')) {
      sh(['install', '-d', '-m', '0755', '/run/user']);
      madeRunUser = true;
    }
    runtime = `/run/user/${uid}`;
    assert.equal(existsSync(runtime), false, `${runtime} is not someone else's already`);
    const rt = sh(['install', '-d', '-m', '0700', '-o', String(uid), '-g', String(gid), runtime]);
    assert.equal(rt.code, 0, rt.stderr);
  });
  after(() => removeUser());

  test('doctor lists what rootless labs need, each missing piece with the command that fixes it; nothing changes', async () => {
    const r = await asUser(['doctor']);
    const tunMode = statSync('/dev/net/tun').mode & 0o777;
    const tunOpen = (tunMode & 0o006) === 0o006;
    // tun 0600 (this machine) is a failure: every lab with a bridge needs taps.
    assert.equal(r.code, tunOpen ? r.code : 1, r.stdout + r.stderr);
    const row = (check: string, result: string, detail: RegExp) => {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${check} `));
      assert.ok(line, `a row for ${check}:\n${r.stdout}`);
      assert.match(line.slice(check.length).trim(), new RegExp(`^${result}\\s+${detail.source}`), line);
    };
    row('rootless', 'ok', new RegExp(`running as ${USER} \\(uid ${uid}\\), not root: .*not make rootless labs yet.*sudo`));
    row('directories (XDG)', 'ok', new RegExp(`runtime ${runtime}/qnet, state ${home}/\\.local/state/qnet, cache ${home}/\\.cache/qnet`));
    row('user.max_user_namespaces', 'ok', /\d+: qnet needs one per lab/);
    row('user namespaces (unshare -Urn)', 'ok', /a user namespace with you as its root/);
    row('newuidmap, /etc/subuid, /etc/subgid', 'ok', /not needed: qnet maps only your own uid/);
    row('/dev/net/tun', tunOpen ? 'ok' : 'FIX', new RegExp(`mode 0${tunMode.toString(8)} root:root: you ${tunOpen ? 'may' : 'cannot'} open it`));
    row('/dev/kvm', '(ok|warn)', /(absent|mode \d{4} )/);
    row('user-mode uplink (pasta, slirp4netns)', '(ok|warn)', /(pasta|slirp4netns|neither pasta nor slirp4netns)/);
    row('host ports for forwards', 'ok', /an ordinary user listens on ports \d+ and up/);
    row('kernel modules', 'ok', /tun, bridge, veth, nf_tables .*usable in a user namespace/);
    row('impairments (tc)', '(ok|warn)', /./);
    if (!tunOpen) assert.ok(r.stdout.includes(`→ /dev/net/tun: chmod 0666 /dev/net/tun && echo 'KERNEL=="tun", MODE="0666", OPTIONS+="static_node=net/tun"' > /etc/udev/rules.d/60-qnet-tun.rules`), r.stdout);
    // The tools are found in /usr/sbin although a user's PATH lacks it.
    row('nftables', 'ok', /v[\d.]+/);
    row('dnsmasq', 'ok', /version [\d.]+/);
    const j = await asUser(['doctor', '--json']);
    assert.equal(j.code, r.code);
    const findings = JSON.parse(j.stdout) as Array<{ check: string; ok: boolean; warn?: boolean; detail: string; fix?: string }>;
    for (const f of findings.filter((x) => !x.ok)) assert.ok(f.fix, `${f.check} says how to fix it`);
    assert.ok(!findings.some((f) => f.check === 'root'), 'no "run as root" failure for a user');
    // Without a runtime directory: said, with what root runs.
    const n = await asUser(['doctor'], { XDG_RUNTIME_DIR: undefined });
    assert.equal(n.code, 1);
    assert.match(n.stdout, /^directories \(XDG\)\s+FIX\s+XDG_RUNTIME_DIR is not set/m);
    assert.ok(n.stdout.includes(`install -d -m 0700 -o ${uid} /run/user/${uid}`), n.stdout);
    assert.deepEqual(readdirSync(runtime), [], 'doctor made nothing in the runtime directory');
    assert.equal(existsSync(path.join(home, '.cache', 'qnet')), false);
  });

  test('a runtime directory that is missing or not the user\'s: exit 1 saying what to do', async () => {
    const unset = await asUser(['status'], { XDG_RUNTIME_DIR: undefined });
    assert.equal(unset.code, 1, unset.stderr);
    assert.match(unset.stderr, new RegExp(`XDG_RUNTIME_DIR is not set: .*install -d -m 0700 -o ${uid} /run/user/${uid}.*sudo`));
    const roots = await asUser(['status'], { XDG_RUNTIME_DIR: '/run' });
    assert.equal(roots.code, 1, roots.stderr);
    assert.match(roots.stderr, new RegExp(`XDG_RUNTIME_DIR /run is owned by uid 0, not by you \\(uid ${uid}\\)`));
    const ok = await asUser(['status']);
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('validate and up refuse what needs the host\'s own namespace (exit 2, the reason, nat plus forwards instead)', async () => {
    const b = topology(bridged(labName('rlbr')));
    for (const cmd of ['validate', 'up']) {
      const r = await asUser([cmd, b]);
      assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`cannot be rootless \\(qnet runs as uid ${uid}, not root\\)`));
      assert.match(r.stderr, /networks\.office\.mode: bridged puts the host interface eth0 in a bridge of the host's .*an ordinary user cannot change the host's own network namespace; rootless, use a nat network and forwards/);
    }
    const routed = nat(labName('rlrt'));
    routed.networks.lan.mode = 'routed';
    const rr = await asUser(['validate', topology(routed)]);
    assert.equal(rr.code, 2, rr.stderr);
    assert.match(rr.stderr, /networks\.lan\.mode: routed needs a route on the host toward 172\.16\.9\.0\/24/);
    const low = await asUser(['up', topology(nat(labName('rllow'), 80))]);
    assert.equal(low.code, 2, low.stderr);
    assert.match(low.stderr, /forwards\[0\]\.host: port 80 is below 1024/);
    // As root nothing is refused.
    const asRoot = await qnet(['validate', b]);
    assert.equal(asRoot.code, 0, asRoot.stderr);
  });

  test('up (and demo) of an acceptable lab: rootless labs are not yet supported (exit 1), nothing is made', async () => {
    const file = topology(nat(labName('rlnat')));
    const v = await asUser(['validate', file]);
    assert.equal(v.code, 0, v.stderr);
    const r = await asUser(['up', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`rootless labs are not yet supported: qnet up run by an ordinary user \\(uid ${uid}\\) cannot make lab .* yet, and nothing was changed\\. Today run it as root: \`sudo qnet up ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\``));
    // demo brings a lab up too.
    const d = await asUser(['demo']);
    assert.equal(d.code, 1, d.stderr);
    assert.match(d.stderr, /rootless labs are not yet supported: qnet demo run by an ordinary user .*`sudo qnet demo`/);
    assert.deepEqual(readdirSync(runtime), []);
    assert.equal(existsSync(path.join(home, '.local', 'state', 'qnet')), false);
    assert.deepEqual(await snapshot(), before0, 'nothing was made on the host');
  });

  test('nothing is left: the user, its home, its runtime directory, its subordinate ids', async () => {
    removeUser();
    assert.notEqual(sh(['id', '-u', USER]).code, 0, 'the user is gone');
    assert.equal(existsSync(home), false, `${home} is gone`);
    assert.equal(existsSync(runtime), false, `${runtime} is gone`);
    for (const f of ['/etc/subuid', '/etc/subgid'])
      if (existsSync(f)) assert.ok(!readFileSync(f, 'utf8').split('\n').some((l) => l.startsWith(`${USER}:`)), `${f} has no range of ${USER}`);
    assert.equal(sh(['pgrep', '-u', String(uid)]).code, 1, 'no process of the user');
    assert.deepEqual(await snapshot(), before0, 'nothing was made on the host');
  });
});
