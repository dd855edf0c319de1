// Saved guest states: which nodes share a shape, which node is saved, and who starts from the saved state.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { planUp, type PlanContext } from '../../src/plan/plan.js';
import { renderGuestConfig } from '../../src/render/guest-config.js';
import { snapshotShape, withIncoming } from '../../src/render/qemu.js';
import { parseTopology } from '../../src/topology/load.js';
import { BOOT, renderResumeMessage } from '../../src/guest/init-script.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const seed = parseTopology(readFileSync(path.join(ROOT, 'test', 'fixtures', 'seed.yaml'), 'utf8'), 'seed.yaml');
const image = { kernel: '/k', initrd: '/i', cmdline: 'c' };
const ctx: PlanContext = { image, accel: 'tcg', user: 'qnet', userIds: { uid: 1, gid: 1 }, guestIds: { uid: 2, gid: 2 } };

const mixed = parseTopology(
  `name: mixed
networks: { lan: { subnet: 10.1.0.0/24 }, wan: { subnet: 10.2.0.0/24 } }
nodes:
  a: { nics: [ { network: lan } ] }
  b: { nics: [ { network: lan } ] }
  big: { memory: 256, nics: [ { network: lan } ] }
  two: { nics: [ { network: lan }, { network: wan } ] }
  e: { nics: [ { network: lan, model: e1000 } ] }
  r: { router: { masquerade: [ { from: lan, out: 1 } ] }, nics: [ { network: lan }, { network: wan } ] }
  u: { nics: [ { user: {} } ] }
`,
  'mixed.yaml',
);
const node = (name: string) => mixed.nodes.find((n) => n.name === name)!;

test('nodes that differ only in names, MACs, taps and addresses share a shape; devices, memory, routers do not', () => {
  const shape = (n: string) => snapshotShape(node(n), image, 'tcg');
  assert.equal(shape('a'), shape('b'));
  assert.notEqual(node('a').nics[0]!.mac, node('b').nics[0]!.mac);
  for (const other of ['big', 'two', 'e', 'r']) assert.notEqual(shape(other), shape('a'), other);
  assert.notEqual(shape('two'), shape('r'), 'a router carries its ruleset item');
  assert.equal(shape('u'), undefined, 'user-mode NICs keep state of their own in QEMU');
  assert.notEqual(snapshotShape(node('a'), { ...image, kernel: '/k2' }, 'tcg'), shape('a'));
  assert.notEqual(snapshotShape(node('a'), image, 'kvm'), shape('a'));
  assert.doesNotMatch(shape('a')!, /52:54:00:(?!00:00:00)|t-a-0|"a"/);
});

function order(lab: typeof mixed, snapshots: PlanContext['snapshots'], parallel = 0): string[] {
  return planUp(lab, { ...ctx, ...(snapshots ? { snapshots } : {}), parallel })
    .filter((s) => ['start-guest', 'wait-ready', 'wait-snapshot'].includes(s.do.kind))
    .map((s) => {
      const a = s.do;
      if (a.kind === 'start-guest') return `${a.snapshot ? a.snapshot.mode : 'boot'}(${a.node})`;
      return `${a.kind}(${(a as { nodes: string[] }).nodes.join(',')})`;
    });
}

test('without saved states: one node per shape is saved first, the others of its shape are restored after it', () => {
  const snaps = { deb1: { path: '/s/x', exists: false }, deb2: { path: '/s/x', exists: false }, deb3: { path: '/s/x', exists: false } };
  assert.deepEqual(order(seed, snaps), ['save(deb1)', 'wait-snapshot(deb1)', 'restore(deb2)', 'restore(deb3)', 'wait-ready(deb1,deb2,deb3)']);
});

test('with saved states every node is restored; nodes without a usable shape boot; --cold (no snapshots) boots all', () => {
  const snaps = { deb1: { path: '/s/x', exists: true }, deb2: { path: '/s/x', exists: true }, deb3: { path: '/s/x', exists: true } };
  assert.deepEqual(order(seed, snaps), ['restore(deb1)', 'restore(deb2)', 'restore(deb3)', 'wait-ready(deb1,deb2,deb3)']);
  assert.deepEqual(order(seed, undefined), ['boot(deb1)', 'boot(deb2)', 'boot(deb3)', 'wait-ready(deb1,deb2,deb3)']);
  // Two shapes, one saved already; a lone node of a new shape is saved without anyone waiting for it.
  const two = { deb1: { path: '/s/x', exists: true }, deb2: { path: '/s/y', exists: false } };
  assert.deepEqual(order(seed, two), ['save(deb2)', 'restore(deb1)', 'boot(deb3)', 'wait-ready(deb1,deb2,deb3)']);
});

test('only a saved node is told to stop at the snapshot point; a restored one starts with -incoming from fd 3', () => {
  const steps = planUp(seed, { ...ctx, snapshots: { deb1: { path: '/s/x', exists: false }, deb2: { path: '/s/x', exists: false } } });
  const conf = (n: string) => steps.find((s) => s.do.kind === 'write' && s.do.path.endsWith(`/${n}/guest.conf`))!.do as { content: string };
  assert.match(conf('deb1').content, /^snapshot$/m);
  assert.doesNotMatch(conf('deb2').content, /^snapshot$/m);
  assert.doesNotMatch(renderGuestConfig(seed, seed.nodes[0]!), /snapshot/);
  assert.deepEqual(withIncoming(['qemu']).slice(-2), ['-incoming', 'defer']);
});

test('the guest finds its NICs by position after the snapshot point and takes its own MACs, clock and configuration', () => {
  const def = BOOT.indexOf('configure() {');
  const at = BOOT.indexOf('if has snapshot; then');
  assert.ok(def > 0 && at > def);
  const before = BOOT.slice(0, def);
  const configure = BOOT.slice(def, BOOT.indexOf('\n}\n', def));
  const after = BOOT.slice(at);
  // Nothing of the node is applied before the snapshot point: no hostname, no addresses, no link up.
  assert.doesNotMatch(before, /kernel\/hostname|addr add|set "\$b" up|address "\$a"/);
  // NICs are named by position before it (eth<index>, the same for the whole shape)...
  assert.match(before, /ip link set "qn\$i" name "\$b"/);
  // ...and after it the guest takes this run's clock, its configuration from the control port (up to "end"; fw_cfg
  // is read again only for a router's ruleset), then applies it (its MACs among it).
  assert.match(after, /date -u -s "@\$2"/);
  assert.match(after, /case "\$line" in end\|"end "\*\) break ;; esac/);
  assert.match(after, /if has nft; then rmmod qemu_fw_cfg/);
  assert.match(after, /configure \) &/);
  assert.match(configure, /kernel\/hostname/);
  assert.match(configure, /ip link set "\$b" address "\$a"/);
});

test('a restored guest starts as few programs as it can: the control loop and the console shell exist at the snapshot point', () => {
  const at = BOOT.indexOf('if has snapshot; then');
  const before = BOOT.slice(0, at);
  const after = BOOT.slice(at);
  // The control loop is forked before the snapshot point and serves the port only once the node is configured.
  assert.match(before, /\( exec 4<>\/run\/qnet-idle\n {2}read -r go <&4/);
  assert.match(BOOT, /say "READY \$HOST \$up"[^\n]*\n[^\n]*\n {2}echo go > \/run\/qnet-idle/);
  // The snapshot point is reached in the background once init's console shell waits at its prompt.
  assert.match(after, /\[ "\$comm" = "\(sh\)" \] && \[ "\$state" = S \]/);
  assert.ok(after.indexOf('say "SNAPSHOT"') > after.indexOf('"(sh)"'));
  // After the restore: lines go to the port without a process between, and no grep (a program) is started.
  assert.ok(after.indexOf('SYNC=1') < after.indexOf('say "SNAPSHOT"'));
  assert.doesNotMatch(after, /grep/);
});

test('saved states are named after their image; those of another image and partial files of dead saves go', async () => {
  const { mkdtempSync, writeFileSync, readdirSync, rmSync, mkdirSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { labSnapshots, snapshotDir } = await import('../../src/lab/snapshot.js');
  const old = process.env.QNET_CACHE_DIR;
  const root = mkdtempSync(path.join(tmpdir(), 'qnet-snaps-'));
  process.env.QNET_CACHE_DIR = root;
  try {
    mkdirSync(snapshotDir(), { recursive: true });
    for (const f of ['img2-aaa.state', 'img1-bbb.state', 'img2-ccc.state.999999999.1.tmp', `img2-ddd.state.${process.pid}.1.tmp`]) writeFileSync(path.join(snapshotDir(), f), 'x');
    const runner = { run: async () => ({ stdout: 'QEMU emulator version 7.2\n', stderr: '', code: 0 }) };
    const snaps = await labSnapshots(mixed, { ...image, key: 'img2' }, 'tcg', runner as never);
    assert.ok(snaps.a!.path.startsWith(path.join(snapshotDir(), 'img2-')));
    assert.equal(snaps.a!.path, snaps.b!.path);
    assert.equal(snaps.u, undefined);
    // Another image's state and a dead qnet's partial file are gone; this process's own partial save stays.
    assert.deepEqual(readdirSync(snapshotDir()).sort(), ['img2-aaa.state', `img2-ddd.state.${process.pid}.1.tmp`]);
  } finally {
    if (old === undefined) delete process.env.QNET_CACHE_DIR;
    else process.env.QNET_CACHE_DIR = old;
    rmSync(root, { recursive: true, force: true });
  }
});

test('a RAM copy keeps every byte, leaves holes for zero blocks and counts only what it wrote, a short last block too', async () => {
  const { copySparse } = await import('../../src/lab/snapshot.js');
  const { mkdtempSync, rmSync, statSync, writeFileSync } = await import('node:fs');
  const os = await import('node:os');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qnet-copy-'));
  try {
    const MiB = 2 ** 20;
    // Blocks: data, zeros, zeros, one byte set at the end of a block, zeros, then a short block with data.
    const src = Buffer.alloc(5 * MiB + 4096);
    src.fill(7, 0, MiB);
    src[4 * MiB - 1] = 1;
    src[5 * MiB + 100] = 9;
    writeFileSync(path.join(dir, 'in'), src);
    const written = await copySparse(path.join(dir, 'in'), path.join(dir, 'out'));
    const out = readFileSync(path.join(dir, 'out'));
    assert.ok(out.equals(src), 'the copy differs from its source');
    assert.equal(written, 2 * MiB + 4096, 'bytes written: the data blocks and the short last one, no zero block');
    const st = statSync(path.join(dir, 'out'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.ok(st.blocks * 512 <= 2 * MiB + 4096 + 64 * 1024, `the zero blocks are holes (${st.blocks * 512} bytes allocated)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('after a restore the names come after the configuration as /etc/hosts lines, copied by one program (the guest\'s own code, run by busybox)', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { spawnSync } = await import('node:child_process');
  const config = renderGuestConfig(seed, seed.nodes[1]!);
  const names = config.split('\n').filter((l) => l.startsWith('host '));
  assert.ok(names.length >= 2, 'the seed names its other nodes');
  const msg = renderResumeMessage(config, 1700000000);
  const [first, ...rest] = msg.split('\n');
  assert.equal(first, 'resume 1700000000');
  assert.doesNotMatch(rest.slice(0, rest.findIndex((l) => l.startsWith('end'))).join('\n'), /^host /m);
  // No names: the message ends with "end" as before.
  assert.match(renderResumeMessage('hostname x\nnic 52:54:00:00:00:01 eth0\n', 1), /\nend$/);
  // The guest's lines between "resume" and its configure, run by busybox's sh with the port on fd 3 (the control
  // channel adds the last newline; a later line follows), and the guest's paths moved into a scratch directory.
  const start = BOOT.indexOf('    exec 5> /etc/qnet/config');
  const end = BOOT.indexOf('\n', BOOT.indexOf('head -c "$2"'));
  assert.ok(start > 0 && end > start);
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-resume-'));
  try {
    const script = BOOT.slice(start, end).replaceAll('/etc/qnet/config', `${dir}/config`).replaceAll('/etc/hosts', `${dir}/hosts`);
    writeFileSync(path.join(dir, 'port'), rest.join('\n') + '\nping\n');
    writeFileSync(path.join(dir, 'hosts'), '127.0.0.1 localhost\n');
    const ok = spawnSync('busybox', ['sh', '-c', `exec 3< "$0"\nsay() { echo "$*"; }\n${script}`, path.join(dir, 'port')], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    // The configuration without its names, and every name in /etc/hosts: BYTES of them, not what follows.
    assert.equal(readFileSync(path.join(dir, 'config'), 'utf8'), config.split('\n').filter((l) => l && !l.startsWith('host ')).join('\n') + '\n');
    assert.equal(readFileSync(path.join(dir, 'hosts'), 'utf8'), '127.0.0.1 localhost\n' + names.map((l) => `${l.split(' ')[2]} ${l.split(' ')[1]}\n`).join(''));
    assert.doesNotMatch(ok.stdout, /ERROR/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tidying drops the saved states of image nodes whose base image is gone, and keeps the others', async () => {
  const { mkdtempSync, writeFileSync, readdirSync, rmSync, mkdirSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { tidySnapshots } = await import('../../src/lab/snapshot.js');
  const root = mkdtempSync(path.join(tmpdir(), 'qnet-tidy-'));
  const saved = process.env.QNET_CACHE_DIR;
  process.env.QNET_CACHE_DIR = root;
  try {
    const dir = path.join(root, 'snapshots');
    mkdirSync(dir);
    const base = path.join(root, 'debian.qcow2');
    writeFileSync(base, 'x');
    const state = (key: string, b: string) => {
      for (const ext of ['state', 'ram', 'disk']) writeFileSync(path.join(dir, `img-${key}.${ext}`), 'x');
      writeFileSync(path.join(dir, `img-${key}.base.json`), JSON.stringify({ base: b, identity: {} }));
    };
    state('kept', base);
    state('gone', path.join(root, 'deleted.qcow2'));
    writeFileSync(path.join(dir, 'abc-123.state'), 'x');
    await tidySnapshots();
    assert.deepEqual(readdirSync(dir).sort(), ['abc-123.state', 'img-kept.base.json', 'img-kept.disk', 'img-kept.ram', 'img-kept.state']);
  } finally {
    if (saved === undefined) delete process.env.QNET_CACHE_DIR;
    else process.env.QNET_CACHE_DIR = saved;
    rmSync(root, { recursive: true, force: true });
  }
});

test("the guest waits for its control port and the agent's console, which the driver may add after its module has loaded (the guest's own lines, run by busybox)", async () => {
  const { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { spawn } = await import('node:child_process');
  const start = BOOT.indexOf('ports() {');
  const end = BOOT.indexOf('\n', BOOT.indexOf('ports /sys/class/virtio-ports'));
  assert.ok(start > 0 && end > start, 'the boot script has its port search');
  // Found before the agent starts and before the port is opened.
  assert.ok(end < BOOT.indexOf('qemu-ga -m isa-serial') && end < BOOT.indexOf('exec 3<>"$CTL"'));
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-ports-'));
  try {
    const script = BOOT.slice(start, end).replaceAll('/sys/class/virtio-ports', `${dir}/ports`).replaceAll('/dev/hvc0', `${dir}/hvc0`);
    // The console port is there, unnamed; the control port and the agent's device come later, one after the other.
    mkdirSync(path.join(dir, 'ports', 'vport0p0'), { recursive: true });
    writeFileSync(path.join(dir, 'ports', 'vport0p0', 'name'), '\n');
    const sh = spawn('busybox', ['sh', '-c', `${script}\necho "CTL=$CTL found=$?"`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    sh.stdout.on('data', (d) => (out += d));
    setTimeout(() => {
      mkdirSync(path.join(dir, 'ports', 'vport0p1'));
      writeFileSync(path.join(dir, 'ports', 'vport0p1', 'name'), 'org.qnet.ctl\n');
    }, 300);
    setTimeout(() => symlinkSync('/dev/null', path.join(dir, 'hvc0')), 600);
    const code = await new Promise((r) => sh.once('close', r));
    assert.equal(code, 0);
    assert.equal(out.trim(), 'CTL=/dev/vport0p1 found=0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
