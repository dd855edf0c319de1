// End-to-end: image nodes with a real Debian 12 image made by `qnet image create debian` (GRUB, systemd,
// cloud-init, netplan + networkd, qemu-guest-agent, sshd). One lab of three Debian guests serves most assertions
// (each boot costs a minute under TCG): overlays of one base, cloud-init's configuration read back, every kind of
// readiness, a VNC screen's login prompt, ssh, ACPI power-off, a kept disk across down/up and --purge, qnet's VLAN switch tried on Debian's kernel;
// then the virtual hardware options, a port
// in use, and a SIGKILLed up. Every test leaves the host as it found it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { debianImage, labName, qnet, QNET, readScreen, ROOT, sha256, sh, snapshot, writeTopology, type HostSnapshot } from './helpers.js';
import { parseTopology } from '../../src/topology/load.js';
import { renderLinkBatch } from '../../src/render/ipbatch.js';
import { vlanLines } from '../../src/render/l2.js';
import { formatCidr, formatIPv4 } from '../../src/topology/ipv4.js';

let image: Awaited<ReturnType<typeof debianImage>>;
let baseSum: string;
before(async () => {
  image = await debianImage();
  baseSum = sha256(image.file);
});
after(() => {
  // The base was read by every guest and never written.
  assert.equal(sha256(image.file), baseSum, 'the base image is unchanged');
  image.remove();
});

describe('three Debian guests on overlays of one base', () => {
  const lab = labName('img');
  let before0: HostSnapshot;
  let file: string;
  let up: { code: number; stdout: string; stderr: string };
  const topo = (nodes: Record<string, unknown>) => ({
    name: lab,
    networks: {
      lan: { subnet: '10.61.0.0/24', address: '10.61.0.1' },
      wan: { mode: 'nat', subnet: '10.62.0.0/24', address: '10.62.0.1', dhcp: { range: '10.62.0.50-10.62.0.99' } },
    },
    nodes,
  });
  const a = {
    image: 'debian-12.qcow2', // relative to the topology file
    persist: true,
    memory: 384,
    ready: { console: '\\ba login:' },
    display: 'vnc', // its screen shows the login prompt (read back below)
    routes: [{ to: '10.99.0.0/16', via: '10.61.0.12' }],
    cloudInit: { userData: { write_files: [{ path: '/etc/qnet-test', content: 'from the user\'s user-data\n' }] } },
    nics: [{ network: 'lan', ip: '10.61.0.11' }],
  };
  before(async () => {
    before0 = await snapshot();
    file = writeTopology(
      topo({
        a,
        b: { image: image.file, ready: { tcp: 22 }, nics: [{ network: 'lan', ip: '10.61.0.12', model: 'e1000' }, { network: 'wan', ip: '10.62.0.12' }] },
        // Stands in for seed 004's Windows guest: nothing sent to it; it asks DHCP by itself and gets its static lease.
        w: { image: image.file, config: 'none', ready: 'lease', nics: [{ network: 'wan', mac: '00:26:c6:21:cf:02', model: 'e1000', ip: '10.62.0.2' }] },
      }),
    );
    sh(['cp', image.file, path.join(path.dirname(file), 'debian-12.qcow2')]);
    up = await qnet(['up', file]);
  });
  after(async () => {
    await qnet(['down', lab, '--purge', '--grace', '5']);
    assert.deepEqual(await snapshot(), before0);
  });

  test('up reports each node ready by its own signal', () => {
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /✓ a is up \(booted its image, ready \(console\) in [\d.]+ s; console showed "a login:"\)/);
    assert.match(up.stderr, /✓ b is up \(booted its image, ready \(tcp\) in [\d.]+ s; TCP 10\.61\.0\.12:22 answers\)/);
    assert.match(up.stderr, /✓ w is up \(booted its image, ready \(lease\) in [\d.]+ s; leased 10\.62\.0\.2\)/);
    assert.match(up.stderr, /create a's overlay on .*debian-12\.qcow2 \(qcow2, 2 GiB; the base is never written\)/);
  });

  test("a's screen (display: vnc) shows its login prompt once it is configured: the guest's text and the pixels agree", async () => {
    // tty1's getty starts after cloud-init's network stage (a was ready by its serial console, which may come
    // earlier): wait for it in the guest, then for its prompt on the screen.
    const wait = await qnet(['exec', lab, 'a', '--timeout', '300', '--', 'sh', '-c', 'until systemctl -q is-active getty@tty1; do sleep 1; done; systemctl show -p After --value getty@tty1']);
    assert.equal(wait.code, 0, wait.stderr);
    assert.match(wait.stdout, /cloud-init\.service/);
    assert.doesNotMatch(wait.stdout, /cloud-final\.service/, 'no ordering cycle through multi-user.target');
    let screen = await readScreen(lab, 'a');
    for (let i = 0; i < 30 && !screen.rows.some((r) => /^a login:/.test(r)); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      screen = await readScreen(lab, 'a');
    }
    assert.equal(screen.active, 'tty1');
    assert.ok(screen.rows.some((r) => /^a login: ?$/.test(r)), `a login prompt on the screen:\n${screen.rows.join('\n')}`);
    assert.deepEqual(screen.mismatches, [], `the pixels (${screen.size.join('×')}) show the text the guest holds`);
  });

  test('the overlays ping each other by name', async () => {
    const r = await qnet(['exec', lab, 'a', '--', 'ping', '-c', '2', '-W', '5', 'b']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /from b \(10\.61\.0\.12\)/);
    const back = await qnet(['exec', lab, 'b', '--', 'ping', '-c', '2', '-W', '5', 'a']);
    assert.equal(back.code, 0, back.stdout + back.stderr);
  });

  // This host's kernel has no bridge VLAN filtering; Debian 12's has. So qnet's VLAN switch as it renders it for
  // examples/vlans.yaml (the link batch and the bridge -batch, unchanged but for veths standing in for the taps) is
  // built inside guest a, in namespaces of its own, with a namespace per node holding the other end of its veth
  // (with the node's MAC, which the host side knows), its addresses, its VLAN sub-interfaces and routes: the
  // kernel's semantics of the lines qnet writes, tried.
  test("qnet's VLAN switch (examples/vlans.yaml as rendered) works on Debian's kernel: r1 routes VLAN 10 to 20, 30 stays apart", async () => {
    const vl = parseTopology(readFileSync(path.join(ROOT, 'examples', 'vlans.yaml'), 'utf8'), 'vlans.yaml');
    const batch = renderLinkBatch(vl, '0')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.replace(/^tuntap add dev (\S+) mode tap user \S+$/, 'link add $1 type veth peer name $1p'));
    const lines = ['set -e', 'ip netns add qv', `ip -n qv -batch - <<'EOF'`, ...batch, 'EOF', `ip netns exec qv bridge -batch - <<'EOF'`, ...vlanLines(vl, vl.networks, vl.nodes), 'EOF'];
    for (const node of vl.nodes) {
      const nic = node.nics[0]!;
      const ns = `n${node.name}`;
      lines.push(`ip netns add ${ns}`, `ip -n qv link set ${nic.tap}p netns ${ns}`, `ip -n ${ns} link set ${nic.tap}p name eth0 address ${nic.mac} up`);
      for (const a of nic.addresses) lines.push(`ip -n ${ns} addr add ${formatCidr(a)} dev eth0`);
      for (const v of nic.vlans ?? []) {
        lines.push(`ip -n ${ns} link add link eth0 name eth0.${v.id} type vlan id ${v.id}`, `ip -n ${ns} link set eth0.${v.id} up`);
        for (const a of v.addresses) lines.push(`ip -n ${ns} addr add ${formatCidr(a)} dev eth0.${v.id}`);
      }
      if (node.gateway !== undefined) lines.push(`ip -n ${ns} route add default via ${formatIPv4(node.gateway)}`);
      if (node.router) lines.push(`ip netns exec ${ns} sysctl -qw net.ipv4.ip_forward=1`);
    }
    const ping = (ns: string, ip: string, want: boolean) => `if ip netns exec n${ns} ping -c 1 -W 2 ${ip} >/dev/null; then echo "${ns} ${ip} ${want ? 'ok' : 'UNEXPECTED'}"; else echo "${ns} ${ip} ${want ? 'MISSED' : 'ok'}"; fi`;
    lines.push(
      'set +e',
      ping('a', '10.0.10.254', true), // the host side, in VLAN 10
      ping('a', '10.0.20.2', true), // b, through r1's sub-interfaces
      ping('b', '10.0.10.2', true),
      ping('a', '10.0.30.2', false), // c: VLAN 30, nobody routes it
      ping('b', '10.0.10.254', false), // the host side is in VLAN 10 and routes nothing
      'ip netns exec qv bridge -j vlan show > /tmp/qv.json',
      'for n in qv na nb nc nr1; do ip netns delete $n; done',
      'cat /tmp/qv.json; rm -f /tmp/qv.json',
    );
    const r = await qnet(['exec', lab, 'a', '--', 'sh', '-c', lines.join('\n')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const results = r.stdout.split('\n').filter((l) => /^\w+ [\d.]+ /.test(l));
    assert.deepEqual(results, ['a 10.0.10.254 ok', 'a 10.0.20.2 ok', 'b 10.0.10.2 ok', 'a 10.0.30.2 ok', 'b 10.0.10.254 ok'], r.stdout + r.stderr);
    // The kernel holds the ports as qnet wrote them: r1's trunk tagged 10 and 20, a untagged in 10 (its pvid).
    const ports = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Array<{ ifname: string; vlans: Array<{ vlan: number; flags?: string[] }> }>;
    const of = (n: string) => ports.find((p) => p.ifname === vl.nodes.find((x) => x.name === n)!.nics[0]!.tap)!.vlans;
    assert.deepEqual(of('r1').map((v) => [v.vlan, v.flags ?? []]), [[10, []], [20, []]]);
    assert.deepEqual(of('a').map((v) => [v.vlan, v.flags ?? []]), [[10, ['PVID', 'Egress Untagged']]]);
  });

  test('cloud-init applied hostname, addresses, gateway, routes, DNS, /etc/hosts and the user-data', async () => {
    const run = async (node: string, script: string) => {
      const r = await qnet(['exec', lab, node, '--', 'sh', '-c', script]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    assert.equal((await run('a', 'hostname')).trim(), 'a');
    assert.match(await run('a', 'ip -4 -o addr'), /inet 10\.61\.0\.11\/24/);
    assert.match(await run('a', 'ip route'), /10\.99\.0\.0\/16 via 10\.61\.0\.12/);
    assert.equal(await run('a', 'cat /etc/qnet-test'), "from the user's user-data\n");
    assert.match(await run('a', 'getent hosts b'), /^10\.61\.0\.12\s+b/);
    // b: a static NIC on a nat network routes through its host side, and uses its dnsmasq for names.
    assert.match(await run('b', 'ip route show default'), /default via 10\.62\.0\.1/);
    assert.match(await run('b', 'resolvectl dns'), /10\.62\.0\.1/);
    assert.match(await run('b', 'ip -4 -o addr'), /inet 10\.62\.0\.12\/24/);
    // No interface was renamed: the guest keeps its own names (matched by MAC).
    assert.doesNotMatch(await run('b', 'ls /sys/class/net'), /\beth[0-9]\b/);
  });

  test('config: none gets its static lease by MAC and nothing else', async () => {
    const leases = JSON.parse((await qnet(['leases', lab, '--json'])).stdout) as Array<{ mac: string; ip: string }>;
    assert.ok(leases.some((l) => l.mac === '00:26:c6:21:cf:02' && l.ip === '10.62.0.2'), JSON.stringify(leases));
    // It had no seed: cloud-init found no NoCloud datasource (hostname is the image's own).
    const r = await qnet(['exec', lab, 'w', '--', 'hostname']);
    assert.equal(r.stdout.trim(), 'debian', r.stderr);
    const ssh = await qnet(['ssh', lab, 'w', '--', 'true']);
    assert.equal(ssh.code, 2);
    assert.match(ssh.stderr, /config: none, so qnet gave it no SSH key/);
  });

  test('qnet ssh runs a command as root with the lab key, checking the host key qnet made', async () => {
    const r = await qnet(['ssh', lab, 'b', '--', 'echo', '$(hostname)-$(id -u)']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'b-0');
    const code = await qnet(['ssh', lab, 'a', '--', 'exit', '3']);
    assert.equal(code.code, 3);
    // The guest's host key is the one qnet gave it.
    const known = readFileSync(`/run/qnet/${lab}/ssh/known_hosts`, 'utf8');
    const hostKey = (await qnet(['exec', lab, 'b', '--', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub'])).stdout.split(' ')[1]!;
    assert.ok(known.includes(`b ssh-ed25519 ${hostKey}`), known);
  });

  test('status shows the image, its overlay and the guest\'s own NIC names', async () => {
    const s = JSON.parse((await qnet(['status', lab, '--json'])).stdout);
    const na = s.nodes.find((n: { name: string }) => n.name === 'a');
    assert.equal(na.kind, 'image');
    assert.equal(na.image.persist, true);
    assert.equal(na.image.format, 'qcow2');
    assert.match(na.image.overlay, /\/var\/lib\/qnet\/.*\/a\/disk\.qcow2$/);
    assert.match(na.nics[0].guestIf, /^en/);
    const text = (await qnet(['status', lab])).stdout;
    assert.match(text, /a: image .*debian-12\.qcow2 \(qcow2\), kept overlay/);
  });

  test('down powers the guests off by ACPI; the kept disk stays and comes back with what was written', async () => {
    const w = await qnet(['exec', lab, 'a', '--', 'sh', '-c', 'echo written-before-down > /root/kept.txt && cloud-init query instance-id']);
    assert.equal(w.code, 0, w.stderr);
    const instance = w.stdout.trim();
    const down = await qnet(['down', lab]);
    assert.equal(down.code, 0, down.stderr);
    for (const n of ['a', 'b', 'w']) assert.match(down.stderr, new RegExp(`guests? [^(]*\\b${n}\\b[^(]* \\(powered off\\)`));
    assert.match(down.stderr, /kept disks of .* stay in \/var\/lib\/qnet\//);
    const mid = await snapshot();
    assert.deepEqual({ ...mid, stateDirs: [] }, { ...before0, stateDirs: [] }, 'nothing of the lab is left but its kept disk');
    assert.deepEqual(mid.stateDirs, [...before0.stateDirs, lab].sort());
    // A kept disk made on another base is refused with the reason, before anything is made.
    const other = writeTopology(topo({ a: { ...a, image: image.file } }));
    const refused = await qnet(['up', other]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /nodes\.a\.image: the kept disk of a .*cannot be used: it was made on .*debian-12\.qcow2, and the node's image is now .*--purge/);
    assert.deepEqual(await snapshot(), mid);
    // Only a comes back (the same file, beside the first topology), on its kept overlay. Its configuration changed
    // (b and w are gone from its /etc/hosts): a new instance-id, so cloud-init applies the edit at this boot.
    const again = path.join(path.dirname(file), 'again.yaml');
    writeFileSync(again, stringify(topo({ a })));
    const r = await qnet(['up', again]);
    assert.equal(r.code, 0, r.stderr);
    const check = await qnet(['exec', lab, 'a', '--', 'sh', '-c', 'cat /root/kept.txt; cloud-init query instance-id; grep -c " b " /etc/hosts; journalctl -q -b -1 --no-pager | tail -n 40']);
    assert.equal(check.code, 0, check.stderr);
    const [kept, inst, hostsB] = check.stdout.split('\n');
    assert.equal(kept, 'written-before-down');
    assert.notEqual(inst, instance, 'the edited configuration is a new instance');
    assert.equal(hostsB, '0', 'the edit was applied: b is no longer in /etc/hosts');
    // The previous boot ended in a clean power-off (systemd's own record of it, kept on the disk).
    assert.match(check.stdout, /System Power Off|Power-Off|reboot: Power down|systemd-poweroff/);
    const purge = await qnet(['down', lab, '--purge']);
    assert.equal(purge.code, 0, purge.stderr);
    assert.match(purge.stderr, /kept disks \/var\/lib\/qnet\//);
    assert.deepEqual((await snapshot()).stateDirs, before0.stateDirs);
  });
});

describe('virtual hardware: UEFI, SCSI, SATA on pc, a CD-ROM, VNC screens; a port in use is rolled back', () => {
  const lab = labName('hw');
  let before0: HostSnapshot;
  let port: number;
  const topo = () =>
    writeTopology({
      name: lab,
      nodes: {
        u: { image: image.file, config: 'none', ready: 'none', firmware: 'uefi', disk: { bus: 'scsi' }, cdrom: path.join(image.dir, 'seedless.iso'), display: 'vnc' },
        p: { image: image.file, config: 'none', ready: 'none', machine: 'pc', disk: { bus: 'sata' }, display: { vnc: port } },
      },
    });
  before(async () => {
    before0 = await snapshot();
    sh(['mkdir', '-p', path.join(image.dir, 'iso')]);
    sh(['xorriso', '-as', 'mkisofs', '-quiet', '-V', 'TEST', '-o', path.join(image.dir, 'seedless.iso'), path.join(image.dir, 'iso')]);
    port = 5900 + 40 + (process.pid % 50);
  });
  after(async () => {
    await qnet(['down', lab, '--grace', '1']);
    assert.deepEqual(await snapshot(), before0);
  });

  const banner = (connect: net.NetConnectOpts) =>
    new Promise<string>((resolve, reject) => {
      const s = net.connect(connect);
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString());
      });
      s.once('error', reject);
      setTimeout(() => reject(new Error('no VNC banner')), 10000);
    });

  test('QEMU starts with every option, and each screen answers as a VNC server', async () => {
    const r = await qnet(['up', topo()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /u's screen: VNC on the Unix socket .*\/u\/vnc\.sock/);
    assert.match(r.stderr, new RegExp(`p's screen: VNC on 127\\.0\\.0\\.1:${port}`));
    assert.match(await banner({ path: `/run/qnet/${lab}/u/vnc.sock` }), /^RFB 003\.008/);
    assert.match(await banner({ host: '127.0.0.1', port }), /^RFB 003\.008/);
    const s = (await qnet(['status', lab])).stdout;
    assert.match(s, /screen: VNC on unix socket/);
    assert.match(s, new RegExp(`screen: VNC on 127\\.0\\.0\\.1:${port}`));
    const down = await qnet(['down', lab, '--grace', '1']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, /vnc:p/);
  });

  test('a VNC port in use fails the up at that step, and everything is rolled back', async () => {
    const blocker = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    try {
      const r = await qnet(['up', topo()]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`failed at "forward 127\\.0\\.0\\.1:${port}`));
      assert.match(r.stderr, new RegExp(`is port ${port} in use`));
      assert.match(r.stderr, /nothing of the lab is left/);
    } finally {
      blocker.close();
    }
    assert.deepEqual(await snapshot(), before0);
  });
});

test('bad images are refused before anything is made (exit 2, the path named)', async () => {
  const before0 = await snapshot();
  const lab = labName('badimg');
  const dir = path.dirname(writeTopology({}));
  sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/hostname', path.join(dir, 'evil.qcow2'), '1M']);
  const file = writeTopology({ name: lab, nodes: { a: { image: path.join(dir, 'evil.qcow2') }, b: { image: path.join(dir, 'missing.qcow2') } } });
  for (const cmd of [['up', file], ['validate', file]]) {
    const r = await qnet(cmd);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /nodes\.a\.image: .*evil\.qcow2: it names a backing file \(\/etc\/hostname\)/);
    assert.match(r.stderr, /nodes\.b\.image: .*missing\.qcow2: no such file/);
  }
  assert.deepEqual(await snapshot(), before0);
});

test('SIGKILL of up while an image node boots, then down: nothing is left', async () => {
  const before0 = await snapshot();
  const lab = labName('kill');
  const file = writeTopology({ name: lab, networks: { lan: {} }, nodes: { k: { image: image.file, persist: true, nics: [{ network: 'lan' }] } } });
  const child = spawn(process.execPath, [QNET, 'up', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const deadline = Date.now() + 60000;
  while (!/✓ start k/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.match(err, /✓ start k/);
  await new Promise((r) => setTimeout(r, 2000)); // booting: GRUB or the kernel
  child.kill('SIGKILL');
  await new Promise((r) => child.once('close', r));
  const down = await qnet(['down', lab, '--purge', '--grace', '2']);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, /guest k/);
  assert.deepEqual(await snapshot(), before0);
});

test('Ctrl-C (SIGINT) of up while an image node boots rolls everything back at once', async () => {
  const before0 = await snapshot();
  const lab = labName('intr');
  const file = writeTopology({ name: lab, networks: { lan: {} }, nodes: { k: { image: image.file, persist: true, nics: [{ network: 'lan' }] } } });
  const child = spawn(process.execPath, [QNET, 'up', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const deadline = Date.now() + 60000;
  while (!/✓ start k/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 2000));
  const t = Date.now();
  child.kill('SIGINT');
  const code = await new Promise((r) => child.once('close', r));
  assert.ok(Date.now() - t < 20000, `the rollback did not wait for the guest to boot (${Date.now() - t} ms)`);
  assert.equal(code, 1, err);
  assert.match(err, /interrupted/);
  assert.match(err, /nothing of the lab is left/);
  // The kept directory made by this up went with the rollback.
  assert.deepEqual(await snapshot(), before0);
});
