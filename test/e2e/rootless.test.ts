// End-to-end, rootless (issue 34): ordinary users that this test makes (useradd) and removes (userdel -r), each with
// a runtime directory made for it, run the real CLI. doctor says what this host lacks for rootless labs; what needs
// the host's own namespace is refused (exit 2); the seed lab's demo passes rootless; a nat lab comes up in a user
// namespace of the user's, its forward answers from the host, exec, capture and status work, down leaves nothing,
// also after a SIGKILL of up at any moment; a second user neither sees nor takes down the first one's lab.
//
// /dev/net/tun: stock distributions make it 0666 (systemd's udev rule); this machine has 0600, so the test makes it
// 0666 for its run, as a stock distribution has it, and puts the mode it found back in after() and, should the test
// process die first, in an exit handler (a SIGKILL of the test itself leaves it 0666: `chmod 0600 /dev/net/tun`).
// The first user's image cache is a copy of root's (the built-in guest's kernel and packages): nothing is downloaded.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { QNET, labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

const USER = `qnr${process.pid.toString(36)}`;
const USER2 = `qns${process.pid.toString(36)}`;
let uid2 = -1;
let runtime2 = '';
const TUN = '/dev/net/tun';
const tunMode0 = statSync(TUN).mode & 0o7777;
const restoreTun = () => {
  try {
    if ((statSync(TUN).mode & 0o7777) !== tunMode0) chmodSync(TUN, tunMode0);
  } catch {
    // nothing to restore
  }
};
process.on('exit', restoreTun);
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
function asUser(args: string[], env: Record<string, string | undefined> = {}, who: 1 | 2 = 1, started?: (pid: number) => void): Promise<{ code: number; stdout: string; stderr: string; signal?: string | null }> {
  const [name, u, h, rt] = who === 1 ? [USER, uid, home, runtime] : [USER2, uid2, `/home/${USER2}`, runtime2];
  const base: Record<string, string | undefined> = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: h, USER: name, LOGNAME: name, XDG_RUNTIME_DIR: rt, LANG: 'C.UTF-8', ...env };
  const clean = Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv;
  return new Promise((resolve) => {
    // setpriv execs node: the child's pid is qnet's own (a SIGKILL to it is a SIGKILL of qnet).
    const child = spawn('setpriv', ['--reuid', String(u), '--regid', String(u), '--init-groups', '--', process.execPath, QNET, ...args], { env: clean, cwd: h });
    if (started && child.pid) started(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code: code ?? -1, stdout, stderr, signal }));
  });
}

/** The processes of a user (zombies left to init are reaped within moments: waited for, up to 3 s). */
async function processesOf(u: number): Promise<string> {
  let out = '';
  for (let i = 0; i < 30; i++) {
    out = sh(['ps', '-u', String(u), '-o', 'pid=,stat=,args=']).stdout.trim();
    if (!out) return '';
    await new Promise((r) => setTimeout(r, 100));
  }
  return out;
}

/** A TCP port nobody listens on now (the test's forward), at or above 1024. */
function freePort(): number {
  const used = new Set(sh(['ss', '-Htln']).stdout.split('\n').map((l) => Number(l.trim().split(/\s+/)[3]?.split(':').pop())));
  for (let p = 20000 + (process.pid % 20000); ; p++) if (!used.has(p)) return p;
}

/** One HTTP GET from the host to 127.0.0.1:port; the body, or nothing. */
function get(port: number): string {
  return sh(['curl', '-s', '--max-time', '5', `http://127.0.0.1:${port}/`]).stdout;
}

/** A topology the user can read (written by root to a temp directory removed when the test process exits). */
function topology(topo: unknown): string {
  const file = writeTopology(topo);
  chmodSync(path.dirname(file), 0o755);
  chmodSync(file, 0o644);
  return file;
}

function removeUser(): void {
  for (const [name, u] of [[USER, uid], [USER2, uid2]] as const) {
    // Whatever a failed test left of the users' labs (holders, QEMU, pasta, dnsmasq): theirs alone, by uid.
    if (u > 0) sh(['pkill', '-KILL', '-u', String(u)]);
    if (sh(['id', '-u', name]).code === 0) sh(['userdel', '-r', name]);
  }
  for (const rt of [runtime, runtime2]) if (rt) rmSync(rt, { recursive: true, force: true });
  restoreTun();
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
    assert.equal(sh(['useradd', '--create-home', '--user-group', '--shell', '/bin/sh', USER2]).code, 0);
    uid2 = Number(sh(['id', '-u', USER2]).stdout.trim());
    runtime2 = `/run/user/${uid2}`;
    assert.equal(sh(['install', '-d', '-m', '0700', '-o', String(uid2), '-g', String(uid2), runtime2]).code, 0);
    // The built-in guest's kernel package and image, as root has them: the user's cache starts as a copy.
    const cache = path.join(home, '.cache', 'qnet');
    sh(['mkdir', '-p', cache]);
    for (const d of ['debs', 'images']) if (existsSync(`/var/cache/qnet/${d}`)) sh(['cp', '-a', `/var/cache/qnet/${d}`, cache]);
    sh(['chown', '-R', `${uid}:${gid}`, path.join(home, '.cache')]);
    chmodSync(TUN, 0o666);
  });
  after(() => removeUser());

  test('doctor lists what rootless labs need, each missing piece with the command that fixes it; nothing changes', async () => {
    // Asked with /dev/net/tun as this machine has it (0600 here: a failure with its fix), then 0666 again.
    chmodSync(TUN, tunMode0);
    const r = await asUser(['doctor']);
    const tunMode = tunMode0 & 0o777;
    const tunOpen = (tunMode & 0o006) === 0o006;
    // tun 0600 (this machine) is a failure: every lab with a bridge needs taps.
    assert.equal(r.code, tunOpen ? r.code : 1, r.stdout + r.stderr);
    const row = (check: string, result: string, detail: RegExp) => {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${check} `));
      assert.ok(line, `a row for ${check}:\n${r.stdout}`);
      assert.match(line.slice(check.length).trim(), new RegExp(`^${result}\\s+${detail.source}`), line);
    };
    row('rootless', 'ok', new RegExp(`running as ${USER} \\(uid ${uid}\\), not root: .*\`qnet up\` makes your labs there`));
    row('directories (XDG)', 'ok', new RegExp(`runtime ${runtime}/qnet, state ${home}/\\.local/state/qnet, cache ${home}/\\.cache/qnet`));
    row('user.max_user_namespaces', 'ok', /\d+: qnet needs one per lab/);
    row('user namespaces (unshare -Urn)', 'ok', /a user namespace with you as its root/);
    row('newuidmap, /etc/subuid, /etc/subgid', 'ok', /optional: your own uid .* is enough .*`qnet capture` needs/);
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
    const j = await asUser(['doctor', '--json']).finally(() => chmodSync(TUN, 0o666));
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
    assert.equal(existsSync(path.join(home, '.local', 'state', 'qnet')), false);
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
    // web and image create: refused to a user (exit 2), saying why and what to run instead; nothing is made.
    const web = await asUser(['web']);
    assert.equal(web.code, 2, web.stderr);
    assert.match(web.stderr, /qnet web is not offered to an ordinary user yet: .*`sudo qnet web`/);
    const img = await asUser(['image', 'create', 'debian', '--out', path.join(home, 'd.qcow2')]);
    assert.equal(img.code, 2, img.stderr);
    assert.match(img.stderr, /qnet image create needs root: .*\(losetup, mount\).*`sudo qnet image create debian --out/);
    assert.ok(!existsSync(path.join(home, 'd.qcow2')));
  });

  test('the seed lab\'s demo passes rootless, and leaves nothing', async () => {
    const t = Date.now();
    const d = await asUser(['demo']);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.match(d.stdout, /all 7 checks passed in .*; the lab is gone/);
    assert.match(d.stdout, /deb3 → upstream tcp 80, expect pass\s+pass/);
    assert.equal(await processesOf(uid), '', 'no process of the user is left');
    assert.deepEqual(readdirSync(path.join(runtime, 'qnet')), [], 'nothing is left in the runtime directory');
    process.stderr.write(`# rootless demo: ${Date.now() - t} ms\n`);
  });

  test('a nat lab: up in a user namespace, its forward answers from the host; status, exec, capture; a second user neither sees nor takes it down; down leaves nothing', async () => {
    const lab = labName('rlnat');
    const port = freePort();
    const topo = nat(lab, port);
    // A second node on an isolated bridge network, and a page on a's port 80 (busybox httpd, started by the guest
    // itself from exec, detached so that exec returns).
    (topo.networks as Record<string, unknown>).back = { subnet: '192.168.77.0/24', address: '192.168.77.1' };
    (topo.nodes as Record<string, unknown>).a = { nics: [{ network: 'lan', dhcp: true, ip: '172.16.9.60' }, { network: 'back', ip: '192.168.77.2' }] };
    (topo.nodes as Record<string, unknown>).b = { nics: [{ network: 'back', ip: '192.168.77.3' }] };
    (topo.forwards as Array<Record<string, unknown>>)[0]!.port = 80;
    const file = topology(topo);
    const before = await snapshot();
    const t = Date.now();
    try {
      const up = await asUser(['up', file]);
      assert.equal(up.code, 0, up.stderr);
      process.stderr.write(`# rootless up of the nat lab: ${Date.now() - t} ms\n`);
      assert.match(up.stderr, /start pasta: tap uplink in the lab .*forwards listening on the host \(tcp \d+\) \(rootless: no veth to the host; pasta before slirp4netns/);
      // The holder: its pid file, written whole, names a live process of the user by pid, start time and namespaces.
      const rec = JSON.parse(readFileSync(path.join(runtime, 'qnet', lab, 'holder.json'), 'utf8')) as { pid: number; start: string; userns: string; netns: string };
      assert.match(rec.userns, /^user:\[\d+\]$/);
      assert.equal(statSync(`/proc/${rec.pid}`).uid, uid);
      assert.notEqual(readFileSync(`/proc/${rec.pid}/stat`, 'utf8').length, 0);
      // QEMU runs as the user with no capability at all.
      const qemu = sh(['pgrep', '-u', String(uid), '-f', 'qemu-system']).stdout.trim().split('\n')[0]!;
      assert.match(readFileSync(`/proc/${qemu}/status`, 'utf8'), /CapEff:\s+0000000000000000/);
      // Nothing on the host's side: no namespace, link, nft table or route of root's changed.
      const host = await snapshot();
      for (const k of ['netns', 'links', 'nftTables', 'routes', 'runDirs', 'ipForward'] as const) assert.deepEqual(host[k], before[k], `${k} of the host unchanged`);
      const st = await asUser(['status', lab, '--json']);
      assert.equal(st.code, 0, st.stderr);
      const status = JSON.parse(st.stdout) as { status: string; nodes: Array<{ name: string; state: string }>; services: Array<{ name: string; state: string }> };
      assert.equal(status.status, 'up');
      assert.deepEqual(status.nodes.map((n) => `${n.name}:${n.state}`).sort(), ['a:running', 'b:running']);
      assert.ok(status.services.some((s) => s.name === 'pasta' && s.state === 'running'), st.stdout);
      const all = await asUser(['status']);
      assert.match(all.stdout, new RegExp(`lab ${lab}\\s+up`));
      const ping = await asUser(['exec', lab, 'b', '--', 'ping', '-c', '2', '-W', '2', '192.168.77.2']);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
      const httpd = await asUser(['exec', lab, 'a', '--', 'sh', '-c', `mkdir -p /tmp/w && echo rootless-${lab} > /tmp/w/index.html && busybox httpd -p 80 -h /tmp/w && echo started`]);
      assert.equal(httpd.code, 0, httpd.stderr);
      assert.equal(get(port).trim(), `rootless-${lab}`, 'the forward answers from the host');
      // check: the model and the measurement agree rootless. The upstream is the host itself beyond pasta (TCP from a
      // and from the lab namespace reach check's listener there; ICMP as ping_group_range allows), the forward is
      // reached from the host, and nothing else from the host is sent (it would leave by the default route).
      const tc = Date.now();
      const chk = await asUser(['check', lab, '--json']);
      process.stderr.write(`# rootless check of the nat lab: ${Date.now() - tc} ms\n`);
      assert.equal(chk.code, 0, chk.stdout + chk.stderr);
      const report = JSON.parse(chk.stdout) as { ok: boolean; disagreements: unknown[]; cells: Array<{ from: string; to: string; probe: string; predicted?: { ok: boolean }; measured?: { ok: boolean; skipped?: string } }> };
      assert.equal(report.ok, true);
      assert.deepEqual(report.disagreements, []);
      const cellOf = (from: string, to: string, probe: string) => report.cells.find((c) => c.from === from && c.to === to && c.probe === probe);
      for (const from of ['a', 'host']) {
        const c = cellOf(from, 'upstream', 'tcp');
        assert.equal(c?.measured?.ok, true, `${from} → upstream tcp measured: ${JSON.stringify(c)}`);
      }
      assert.equal(cellOf('upstream', `forward:${port}`, 'tcp')?.measured?.ok, true, 'the forward, measured from the host');
      // capture on the isolated network while b pings a.
      const cap = asUser(['capture', lab, 'back', '--count', '2', '--filter', 'icmp']);
      await new Promise((r) => setTimeout(r, 1500));
      await asUser(['exec', lab, 'b', '--', 'ping', '-c', '3', '192.168.77.2']);
      const c = await cap;
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /192\.168\.77\.3 > 192\.168\.77\.2: ICMP echo request/);
      // ssh reaches the lab too (a built-in guest has no sshd: the same answer as root's).
      const ssh = await asUser(['ssh', lab, 'a', '--', 'true']);
      const sshRoot = await qnet(['ssh', 'nosuchlab-rl', 'a', '--', 'true']);
      assert.notEqual(ssh.code, 0);
      assert.doesNotMatch(ssh.stderr, /no lab .* of yours/, 'ssh found the lab');
      assert.equal(sshRoot.code, 2);
      // A pid file that names another process (a reused pid: same pid, other start time) is not joined.
      const hf = path.join(runtime, 'qnet', lab, 'holder.json');
      const good = readFileSync(hf, 'utf8');
      writeFileSync(hf, JSON.stringify({ ...JSON.parse(good), start: '1' }));
      const stale = await asUser(['status', lab]);
      writeFileSync(hf, good);
      assert.equal(stale.code, 1, stale.stderr);
      assert.match(stale.stderr, new RegExp(`lab ${lab} is not running: its holder .* is gone`));
      // The second user: sees no lab, cannot reach it nor take it down; root does not list it among its labs.
      const s2 = await asUser(['status'], {}, 2);
      assert.equal(s2.code, 0, s2.stderr);
      assert.equal(s2.stdout.trim(), 'no labs');
      for (const args of [['status', lab], ['down', lab], ['exec', lab, 'a', '--', 'true'], ['capture', lab, 'back', '--count', '1']]) {
        const r = await asUser(args, {}, 2);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`no lab ${lab} of yours on this host`));
      }
      const d2 = await asUser(['down', '--all'], {}, 2);
      assert.equal(d2.code, 0, d2.stderr);
      const rs = await qnet(['status']);
      assert.doesNotMatch(rs.stdout, new RegExp(lab), 'root does not list a user\'s lab');
      assert.equal(get(port).trim(), `rootless-${lab}`, 'the lab still answers');
      const t2 = Date.now();
      const down = await asUser(['down', lab]);
      assert.equal(down.code, 0, down.stderr);
      process.stderr.write(`# rootless down of the nat lab: ${Date.now() - t2} ms\n`);
      assert.match(down.stderr, new RegExp(`lab ${lab} is down .*pasta, dnsmasq:lan`));
      assert.match(down.stderr, new RegExp(`lab ${lab}: removed holder \\(pid ${rec.pid}\\) and its namespaces, run directory`));
      assert.equal(await processesOf(uid), '', 'no process of the user is left');
      assert.deepEqual(readdirSync(path.join(runtime, 'qnet')), []);
      assert.equal(get(port), '', 'nothing listens on the forwarded port');
      const again = await asUser(['down', lab]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /already down/);
    } finally {
      await asUser(['down', lab]);
    }
  });

  test('where pasta is missing, slirp4netns carries the nat network and its forward; up says which and why; check agrees; down leaves nothing', async () => {
    const lab = labName('rlslirp');
    const port = freePort();
    // A PATH without pasta: links to everything of /usr/local/bin and /usr/bin but pasta (/usr/sbin and /sbin are
    // added inside the holder; pasta is in none of them here).
    const bin = path.join(home, 'nopasta');
    mkdirSync(bin, { recursive: true });
    for (const d of ['/usr/local/bin', '/usr/bin'])
      for (const f of readdirSync(d)) if (f !== 'pasta' && !existsSync(path.join(bin, f))) symlinkSync(path.join(d, f), path.join(bin, f));
    const file = topology(nat(lab, port));
    try {
      const up = await asUser(['up', file], { PATH: bin });
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stderr, /start slirp4netns: tap uplink in the lab .*slirp4netns because pasta is not installed/);
      assert.match(up.stderr, new RegExp(`add the forwards to slirp4netns, listening on the host \\(tcp ${port}\\)`));
      const httpd = await asUser(['exec', lab, 'a', '--', 'sh', '-c', `mkdir -p /tmp/w && echo slirp-${lab} > /tmp/w/index.html && busybox httpd -p 80 -h /tmp/w && echo started`], { PATH: bin });
      assert.equal(httpd.code, 0, httpd.stderr);
      assert.equal(get(port).trim(), `slirp-${lab}`, 'the forward answers from the host through slirp4netns');
      const chk = await asUser(['check', lab], { PATH: bin });
      assert.equal(chk.code, 0, chk.stdout + chk.stderr);
      const down = await asUser(['down', lab], { PATH: bin });
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stderr, /slirp4netns/);
      assert.equal(await processesOf(uid), '', 'no process of the user is left');
      assert.equal(get(port), '', 'nothing listens on the forwarded port');
    } finally {
      await asUser(['down', lab], { PATH: bin });
      rmSync(bin, { recursive: true, force: true });
    }
  });

  test('SIGKILL of up at any moment, then down (or down --all), leaves no holder, pasta, dnsmasq, QEMU, mount or file', async () => {
    const lab = labName('rlkill');
    const file = topology(nat(lab, freePort()));
    // --cold: every guest boots (4 s or so here), so the later kills land while QEMU runs and is not ready yet.
    const steps: string[] = [];
    for (const [ms, how] of [[100, 'down --all'], [350, 'down'], [700, 'down'], [1500, 'down'], [3000, 'down --all']] as const) {
      let pid = 0;
      const run = asUser(['up', '--cold', file], {}, 1, (p) => (pid = p));
      const early = await Promise.race([run, new Promise<null>((r) => setTimeout(r, ms, null))]);
      assert.equal(early, null, `up ended before its kill at ${ms} ms: ${early?.stderr}`);
      process.kill(pid, 'SIGKILL');
      const r = await run;
      assert.equal(r.signal, 'SIGKILL');
      steps.push(`${ms} ms: ${r.stderr.split('\n').filter((l) => l.startsWith('✓')).length} steps done`);
      const d = await asUser(how === 'down' ? ['down', lab] : ['down', '--all']);
      assert.ok(d.code === 0 || (d.code === 2 && /no lab/.test(d.stderr)), `${how} after a kill at ${ms} ms: ${d.stderr}`);
      assert.equal(await processesOf(uid), '', `no process of the user after a kill at ${ms} ms and ${how}`);
      assert.deepEqual(readdirSync(path.join(runtime, 'qnet')).filter((f) => f !== '.lock'), [], `nothing in the runtime directory after a kill at ${ms} ms`);
    }
    process.stderr.write(`# rootless up killed at ${steps.join('; ')}\n`);
  });

  test('nothing is left: the user, its home, its runtime directory, its subordinate ids', async () => {
    removeUser();
    assert.notEqual(sh(['id', '-u', USER]).code, 0, 'the user is gone');
    assert.equal(existsSync(home), false, `${home} is gone`);
    assert.equal(existsSync(runtime), false, `${runtime} is gone`);
    for (const f of ['/etc/subuid', '/etc/subgid'])
      if (existsSync(f)) assert.ok(!readFileSync(f, 'utf8').split('\n').some((l) => l.startsWith(`${USER}:`)), `${f} has no range of ${USER}`);
    assert.equal(sh(['pgrep', '-u', String(uid)]).code, 1, 'no process of the user');
    assert.equal(statSync(TUN).mode & 0o7777, tunMode0, `${TUN} has its mode back`);
    assert.deepEqual(await snapshot(), before0, 'nothing was made on the host');
  });
});
