// Image nodes, pure parts: the seed's three files for the examples (golden), QEMU's arguments for every hardware
// option (golden), the plan of the Debian seed lab (golden), readiness, stop and exec by kind, how the lab
// namespace reaches a node, and the merge of the user's cloud-config.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { mergeCloudConfig, renderSeed, type SeedKeys } from '../../src/guest/cloud-init.js';
import { imageNodeFiles, renderImageQemuArgs } from '../../src/guest/image-node.js';
import { kindOf } from '../../src/guest/kinds.js';
import { formatPlan, planUp, type PlanContext } from '../../src/plan/plan.js';
import { renderDnsmasqConf } from '../../src/render/dnsmasq.js';
import { parseTopology } from '../../src/topology/load.js';
import type { ResolvedLab } from '../../src/topology/model.js';
import { labRoute } from '../../src/topology/reach.js';
import { golden, ROOT } from './golden.js';

process.env.QNET_RUN_DIR = '/run/qnet';
process.env.QNET_STATE_DIR = '/var/lib/qnet';

const KEYS: SeedKeys = {
  labPublic: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILABKEYLABKEYLABKEYLABKEYLABKEYLABKEYLABKEY qnet lab',
  hostPrivate: '-----BEGIN OPENSSH PRIVATE KEY-----\nHOSTKEY\n-----END OPENSSH PRIVATE KEY-----\n',
  hostPublic: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOSTKEYHOSTKEYHOSTKEYHOSTKEYHOSTKEYHOSTKEY node',
};

/** A lab from an example file, with its images as inspection would leave them (format and size known). */
function example(name: string): ResolvedLab {
  const file = path.join(ROOT, 'examples', name);
  // A fixed directory, so that golden files do not depend on where the repository is checked out.
  const lab = parseTopology(readFileSync(file, 'utf8'), name, { baseDir: '/labs/examples' });
  return { ...lab, nodes: lab.nodes.map((n) => (n.image ? { ...n, image: { ...n.image, format: 'qcow2' as const, virtualSize: 2 ** 31 } } : n)) };
}
function lab(yaml: string): ResolvedLab {
  const l = parseTopology(yaml, 'lab.yaml', { baseDir: '/labs' });
  return { ...l, nodes: l.nodes.map((n) => (n.image ? { ...n, image: { ...n.image, format: n.image.path.endsWith('.raw') ? ('raw' as const) : ('qcow2' as const), virtualSize: 2 ** 31 } } : n)) };
}
const CTX: PlanContext = {
  image: { kernel: '/img/vmlinux', initrd: '/img/initrd.img', cmdline: 'console=ttyS0' },
  accel: 'tcg',
  user: 'qnet',
  userIds: { uid: 995, gid: 995 },
  guestIds: { uid: 1900001000, gid: 1900001000 },
  ovmf: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
};
const argvOf = (l: ResolvedLab, node: string) => {
  const n = l.nodes.find((x) => x.name === node)!;
  return renderImageQemuArgs(l, n, imageNodeFiles(l.name, n), CTX);
};
const lines = (r: { args: string[]; fds: Array<{ path: string; write: boolean }> }) =>
  [...r.args.map((a) => (a.startsWith('-') ? `\n${a}` : ` ${a}`)).join('').trim().split('\n'), ...r.fds.map((f, i) => `fd ${4 + i}: ${f.path} (${f.write ? 'rw' : 'ro'})`)].join('\n') + '\n';

describe('the cloud-init seed of examples/seed-lab-debian.yaml', () => {
  const seed = example('seed-lab-debian.yaml');
  for (const node of ['deb1', 'deb2', 'deb3'])
    test(`${node}: meta-data, user-data and network-config`, () => {
      const s = renderSeed(seed, seed.nodes.find((n) => n.name === node)!, KEYS);
      golden(`debian-${node}.meta-data`, s['meta-data']);
      golden(`debian-${node}.user-data`, s['user-data']);
      golden(`debian-${node}.network-config`, s['network-config']);
    });

  test('NICs are matched by MAC and never renamed; deb2 routes through deb1; deb1 keeps user-mode for its uplink', () => {
    const net = (n: string) => parse(renderSeed(seed, seed.nodes.find((x) => x.name === n)!, KEYS)['network-config']) as { version: number; ethernets: Record<string, Record<string, unknown>> };
    const deb2 = net('deb2');
    assert.equal(deb2.version, 2);
    assert.deepEqual(deb2.ethernets.eth0!.match, { macaddress: 'de:ad:be:ef:00:02' });
    assert.equal(deb2.ethernets.eth0!['set-name'], undefined);
    assert.deepEqual(deb2.ethernets.eth0!.routes, [{ to: '0.0.0.0/0', via: '192.168.1.254' }]);
    const deb1 = net('deb1');
    assert.deepEqual(deb1.ethernets.eth0!.addresses, ['10.0.2.15/24']);
    assert.deepEqual(deb1.ethernets.eth0!.routes, [{ to: '0.0.0.0/0', via: '10.0.2.2' }]);
    assert.deepEqual(deb1.ethernets.eth0!.nameservers, { addresses: ['10.0.2.3'] });
  });

  test('the instance-id follows the configuration: an edit gives a new one, the same input the same one', () => {
    const deb2 = seed.nodes.find((n) => n.name === 'deb2')!;
    const id = renderSeed(seed, deb2, KEYS).instanceId;
    assert.equal(renderSeed(seed, deb2, KEYS).instanceId, id);
    const edited = { ...deb2, nics: [{ ...deb2.nics[0]!, addresses: [{ ip: deb2.nics[0]!.addresses[0]!.ip + 5, prefix: 24 }] }] };
    assert.notEqual(renderSeed(seed, edited, KEYS).instanceId, id);
    assert.match(id, /^qnet-seed-debian-deb2-[0-9a-f]{12}$/);
  });

  test('the router is declared with the seed\'s iptables lines, the NICs found by MAC', () => {
    const ud = renderSeed(seed, seed.nodes.find((n) => n.name === 'deb1')!, KEYS)['user-data'];
    assert.match(ud, /modprobe iptable_nat/);
    assert.match(ud, /sysctl -qw net\.ipv4\.ip_forward=1/);
    assert.match(ud, /iptables -t nat -A POSTROUTING -s 192\.168\.1\.0\/24 -o "\$out" -j MASQUERADE/);
    assert.match(ud, /lan=\$\(dev_of de:ad:be:ef:00:01\)/);
    assert.match(ud, /iptables -A FORWARD -i "\$lan" -j ACCEPT/);
  });
});

describe('the Windows example (config: none)', () => {
  const win = example('seed-win7.yaml');
  test('its NIC gets a static lease by MAC (seed 004\'s dhcp-host) and readiness waits for it', () => {
    const conf = renderDnsmasqConf(win, win.networks[0]!, { conf: '/c', hosts: '/h', leases: '/l', log: '/g' }, 'qnet');
    assert.match(conf, /^dhcp-host=00:26:c6:21:cf:02,172\.16\.1\.2,win$/m);
    assert.deepEqual(kindOf(win.nodes[0]!).ready(win, win.nodes[0]!), { kind: 'lease', leases: [{ network: 'lan', mac: '00:26:c6:21:cf:02' }] });
  });
  test('QEMU arguments: pc, SATA through AHCI, e1000, a VGA screen on VNC, no seed', () => golden('win7.argv', lines(argvOf(win, 'win'))));
});

describe('QEMU arguments of image nodes (every hardware option)', () => {
  const hw = lab(`name: hw
networks:
  lan: {subnet: 10.1.0.0/24, address: 10.1.0.1}
nodes:
  virtio: {image: base.qcow2, nics: [{network: lan, ip: 10.1.0.2}]}
  sata-q35: {image: base.qcow2, disk: {bus: sata}}
  ide-pc: {image: base.raw, machine: pc, disk: {bus: ide}, config: none}
  scsi-uefi: {image: /abs/base.qcow2, disk: {bus: scsi, size: 8G}, firmware: uefi, cdrom: install.iso, display: vnc}
  kept: {image: base.qcow2, persist: true, display: {vnc: 5901}, config: none, cpus: 2, memory: 1024}
`);
  for (const n of hw.nodes) test(n.name, () => golden(`image-${n.name}.argv`, lines(argvOf(hw, n.name))));

  test('the base is handed read-only with no backing of its own; the overlay is the only disk QEMU may write', () => {
    const { args, fds } = argvOf(hw, 'virtio');
    const base = JSON.parse(args[args.indexOf('-blockdev') + 1]!);
    assert.deepEqual([base.driver, base['read-only'], base.backing, base.file.filename], ['qcow2', true, null, '/dev/fdset/1']);
    assert.deepEqual(fds.map((f) => [path.basename(f.path), f.write]), [['base.qcow2', false], ['disk.qcow2', true], ['seed.iso', false]]);
    assert.ok(!args.some((a) => a.includes('/labs/base.qcow2')), 'the base path is never on the command line');
  });

  test('a kept disk lives in the state directory; UEFI variables are the node\'s own copy', () => {
    const kept = argvOf(hw, 'kept');
    assert.equal(kept.fds[1]!.path, '/var/lib/qnet/hw/kept/disk.qcow2');
    const uefi = argvOf(hw, 'scsi-uefi');
    assert.deepEqual(uefi.fds.filter((f) => /OVMF/.test(f.path)).map((f) => [f.path, f.write]), [['/usr/share/OVMF/OVMF_CODE_4M.fd', false], ['/run/qnet/hw/scsi-uefi/OVMF_VARS.fd', true]]);
  });
});

describe('the plan of the Debian seed lab', () => {
  test('golden: lab key, then per node its host key, overlay, seed and start', () => golden('debian-plan.txt', formatPlan(planUp(example('seed-lab-debian.yaml'), CTX)) + '\n'));

  test('a kept disk is neither made again nor removed by a rollback; a new one records its base', () => {
    const l = lab('name: p\nnodes:\n  a: {image: base.qcow2, persist: true, config: none}\n');
    const base = { path: '/labs/base.qcow2', format: 'qcow2', size: 1, mtimeMs: 2, ino: 3, dev: 4 };
    const fresh = planUp(l, { ...CTX, kept: { a: { disk: false, vars: false, hostKey: false, base } } });
    assert.ok(fresh.some((s) => s.do.kind === 'exec' && s.do.argv[0] === 'qemu-img' && s.do.argv.includes('/var/lib/qnet/p/a/disk.qcow2')));
    assert.ok(fresh.some((s) => s.do.kind === 'write' && s.do.path === '/var/lib/qnet/p/a/base.json' && JSON.parse(s.do.content).ino === 3));
    assert.ok(fresh.some((s) => s.undo?.kind === 'rmtree' && s.undo.path === '/var/lib/qnet/p/a'));
    const again = planUp(l, { ...CTX, kept: { a: { disk: true, vars: false, hostKey: false, size: 2 ** 31, base } } });
    assert.ok(!again.some((s) => s.do.kind === 'exec' && s.do.argv[0] === 'qemu-img'), 'no new overlay');
    assert.ok(!again.some((s) => s.undo?.kind === 'rmtree' && s.undo.path.startsWith('/var/lib/qnet')), 'a rollback never removes a kept disk');
    const grown = planUp({ ...l, nodes: [{ ...l.nodes[0]!, image: { ...l.nodes[0]!.image!, diskSize: 2 ** 33 } }] }, { ...CTX, kept: { a: { disk: true, vars: false, hostKey: false, size: 2 ** 31, base } } });
    assert.ok(grown.some((s) => s.do.kind === 'exec' && s.do.argv.join(' ') === `qemu-img resize -f qcow2 /var/lib/qnet/p/a/disk.qcow2 ${2 ** 33}`));
  });
});

describe('kinds: readiness, stopping, reaching', () => {
  const l = lab(`name: k
networks:
  lan: {subnet: 10.1.0.0/24, address: 10.1.0.1}
  iso: {mode: isolated, subnet: 10.2.0.0/24}
  dh: {mode: nat, subnet: 10.3.0.0/24, address: 10.3.0.1, dhcp: {range: 10.3.0.50-10.3.0.60}}
nodes:
  builtin: {nics: [{network: lan, ip: 10.1.0.9}]}
  ci: {image: b.qcow2, nics: [{network: iso, ip: 10.2.0.2}, {network: lan, ip: 10.1.0.2}]}
  ci-agent: {image: b.qcow2, ready: agent}
  none: {image: b.qcow2, config: none, nics: [{network: dh, dhcp: true}]}
  plain: {image: b.qcow2, config: none}
  con: {image: b.qcow2, ready: {console: 'login:'}}
  fwd: {image: b.qcow2, ready: {tcp: 22}, nics: [{user: {hostfwd: [{host: 2222, guest: 22}]}}]}
  leased: {image: b.qcow2, ready: {tcp: 80}, nics: [{network: dh, dhcp: true}]}
`);
  const node = (n: string) => l.nodes.find((x) => x.name === n)!;
  const ready = (n: string) => kindOf(node(n)).ready(l, node(n));
  test('each node is awaited as its kind and topology say', () => {
    assert.deepEqual(ready('builtin'), { kind: 'control' });
    assert.deepEqual(ready('ci'), { kind: 'cloud-init', agent: 'if-present' });
    assert.deepEqual(ready('ci-agent'), { kind: 'cloud-init', agent: 'require' });
    assert.deepEqual(ready('none'), { kind: 'lease', leases: [{ network: 'dh', mac: node('none').nics[0]!.mac }] });
    assert.deepEqual(ready('plain'), { kind: 'none' });
    assert.deepEqual(ready('con'), { kind: 'console', pattern: 'login:' });
    assert.deepEqual(ready('fwd'), { kind: 'tcp', route: { kind: 'hostfwd', ip: '127.0.0.1', port: 2222 } });
    assert.deepEqual(ready('leased'), { kind: 'tcp', route: { kind: 'lease', network: 'dh', mac: node('leased').nics[0]!.mac, port: 80 } });
  });
  test('the lab namespace reaches a node on a network with a host side, not on an isolated one', () => {
    assert.deepEqual(labRoute(l, node('ci'), 22), { kind: 'address', ip: '10.1.0.2', port: 22 });
    assert.equal(labRoute(l, node('plain'), 22), null);
  });
  test('built-in guests quit at once; image guests get the ACPI button; exec hints name qnet ssh and config', () => {
    assert.deepEqual(kindOf(node('builtin')).stop, { acpi: false });
    assert.deepEqual(kindOf(node('ci')).stop, { acpi: true });
    assert.match(kindOf(node('ci')).execHint('k', node('ci')), /qnet ssh k ci -- CMD/);
    assert.match(kindOf(node('plain')).execHint('k', node('plain')), /config: none .*qnet console k plain.*config: cloud-init/);
  });
  test('an image node defaults to 512 MiB, a built-in one to 128', () => {
    assert.equal(node('ci').memory, 512);
    assert.equal(node('builtin').memory, 128);
  });
});

describe('the user\'s cloud-config is merged into qnet\'s', () => {
  test('lists are joined, mappings merged, the user\'s scalars win', () => {
    const merged = mergeCloudConfig(
      { hostname: 'a', runcmd: [['qnet']], write_files: [{ path: '/q' }], ssh: { emit_keys_to_console: false } },
      { hostname: 'b', runcmd: [['mine']], packages: ['frr'], ssh: { other: 1 } },
    );
    assert.deepEqual(merged, { hostname: 'b', runcmd: [['qnet'], ['mine']], write_files: [{ path: '/q' }], packages: ['frr'], ssh: { emit_keys_to_console: false, other: 1 } });
  });
});
