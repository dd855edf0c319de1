// qnet's resume hook for the Debian images it makes, pure parts: which nodes use it, the shape their saved state
// is keyed by, the configuration each node gets (golden), systemd-networkd's files, the plan of a lab whose nodes
// save and restore (golden), QEMU's arguments of both forms, the GPT mark, and the guest scripts' syntax.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { SeedKeys } from '../../src/guest/cloud-init.js';
import { gptPartitionNames } from '../../src/guest/image-check.js';
import { imageNodeFiles, renderImageQemuArgs } from '../../src/guest/image-node.js';
import { kindOf } from '../../src/guest/kinds.js';
import { pendingLine } from '../../src/lab/ready.js';
import { hookFiles, layerOf, renderNetworkdFiles, renderResumeConfig, RESUME_MARK, resumeShape, usesResumeHook } from '../../src/guest/resume.js';
import { formatPlan, planUp, type PlanContext } from '../../src/plan/plan.js';
import { parseTopology } from '../../src/topology/load.js';
import type { ResolvedLab } from '../../src/topology/model.js';
import { golden, ROOT } from './golden.js';

process.env.QNET_RUN_DIR = '/run/qnet';
process.env.QNET_STATE_DIR = '/var/lib/qnet';

const KEYS: SeedKeys = {
  labPublic: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILABKEY qnet lab',
  hostPrivate: '-----BEGIN OPENSSH PRIVATE KEY-----\nHOSTKEY\n-----END OPENSSH PRIVATE KEY-----\n',
  hostPublic: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOSTKEY node',
};
const IDENTITY = { size: 300 * 2 ** 20, mtimeMs: 1_700_000_000_000, ino: 42, dev: 2049 };

/** A lab as inspection leaves it: its images qnet's own (resume hook 1) unless told otherwise. */
function lab(yaml: string, resume = 1): ResolvedLab {
  const l = parseTopology(yaml, 'lab.yaml', { baseDir: '/labs' });
  return { ...l, nodes: l.nodes.map((n) => (n.image ? { ...n, image: { ...n.image, format: 'qcow2' as const, virtualSize: 2 ** 31, identity: IDENTITY, ...(resume ? { resume } : {}) } } : n)) };
}
const THREE = `
name: rs
networks:
  lan: { subnet: 10.63.0.0/24, address: 10.63.0.1, dhcp: { range: 10.63.0.100-10.63.0.150 } }
nodes:
  r1: { image: debian.qcow2, memory: 256, nics: [ { network: lan, ip: 10.63.0.11 } ] }
  r2: { image: debian.qcow2, memory: 256, routes: [ { to: 10.99.0.0/16, via: 10.63.0.11 } ], nics: [ { network: lan, ip: 10.63.0.12 } ] }
  r3: { image: debian.qcow2, memory: 256, nics: [ { network: lan, dhcp: true } ] }
`;
const CTX: PlanContext = {
  image: { kernel: '/img/vmlinux', initrd: '/img/initrd.img', cmdline: 'console=ttyS0' },
  accel: 'tcg',
  user: 'qnet',
  userIds: { uid: 995, gid: 995 },
  guestIds: { uid: 1900001000, gid: 1900001000 },
};

describe('which nodes use the resume hook', () => {
  const base = (extra: string, resume = 1) => lab(`name: x\nnetworks: { lan: { subnet: 10.1.0.0/24, address: 10.1.0.1 } }\nnodes:\n  a: { image: d.qcow2, nics: [ { network: lan, ip: 10.1.0.2 } ]${extra} }\n`, resume).nodes[0]!;
  test('a node of an image qnet made, configured by qnet, on lab networks only', () => {
    assert.equal(usesResumeHook(base('')), true);
  });
  test('not: an image without the mark, or one with another version of the hook', () => {
    assert.equal(usesResumeHook(base('', 0)), false);
    assert.equal(usesResumeHook(base('', 2)), false);
  });
  test("not: the user's own cloud-config, a kept disk, a CD-ROM, UEFI, another readiness, config: none", () => {
    for (const extra of [", cloudInit: { userData: { packages: [frr] } }", ', persist: true', ', cdrom: x.iso', ', firmware: uefi', ', ready: { tcp: 22 }', ', config: none'])
      assert.equal(usesResumeHook(base(extra)), false, extra);
  });
  test('not: a user-mode NIC (its connection state lives in QEMU)', () => {
    const l = lab(`name: x\nnetworks: { lan: { subnet: 10.1.0.0/24 } }\nnodes:\n  a: { image: d.qcow2, nics: [ { user: {} }, { network: lan, ip: 10.1.0.2 } ] }\n`);
    assert.equal(usesResumeHook(l.nodes[0]!), false);
  });
});

describe('what up waits for, and says while it waits', () => {
  const l = lab(`name: x\nnetworks: { lan: { subnet: 10.1.0.0/24, address: 10.1.0.1 } }\nnodes:\n  h: { image: d.qcow2, nics: [ { network: lan, ip: 10.1.0.2 } ] }\n  c: { image: d.qcow2, persist: true, nics: [ { network: lan, ip: 10.1.0.3 } ] }\n`);
  const [h, c] = l.nodes as [ResolvedLab['nodes'][number], ResolvedLab['nodes'][number]];
  test("a hook node waits for the hook's READY (no cloud-init runs in its boot); others for cloud-init's", () => {
    assert.deepEqual(kindOf(h).ready(l, h), { kind: 'hook', agent: 'if-present' });
    assert.deepEqual(kindOf(c).ready(l, c), { kind: 'cloud-init', agent: 'if-present' });
  });
  test('the progress line names what is awaited, and a restored node as resuming', () => {
    assert.equal(
      pendingLine('h', 30, kindOf(h).ready(l, h), 'restored', 'qnet: SNAPSHOT'),
      "h: still resuming from the saved state after 30 s, waiting for qnet's resume hook to say READY (the node's identity and addresses applied; no cloud-init in this boot); console: qnet: SNAPSHOT",
    );
    assert.equal(
      pendingLine('h', 60, kindOf(h).ready(l, h), 'booted', ''),
      "h: still booting after 60 s, waiting for qnet's resume hook to say READY (the node's identity and addresses applied; no cloud-init in this boot)",
    );
    assert.equal(pendingLine('c', 90, kindOf(c).ready(l, c), 'booted', ''), "c: still booting after 90 s, waiting for cloud-init's final stage (qnet-ready.service saying READY)");
  });
});

describe('the shape of a saved state', () => {
  const l = lab(THREE);
  test('nodes that differ by name, MAC, address or routes share it', () => {
    assert.equal(resumeShape(l.nodes[0]!), resumeShape(l.nodes[1]!));
    assert.equal(resumeShape(l.nodes[0]!), resumeShape(l.nodes[2]!));
  });
  test('memory, CPUs, NIC models and the base as inspected are part of it', () => {
    const n = l.nodes[0]!;
    const img = n.image!;
    for (const other of [
      { ...n, memory: 512 },
      { ...n, cpus: 2 },
      { ...n, nics: n.nics.map((c) => ({ ...c, model: 'e1000' as const })) },
      { ...n, image: { ...img, identity: { ...IDENTITY, mtimeMs: IDENTITY.mtimeMs + 1 } } },
      { ...n, image: { ...img, diskSize: 2 ** 32 } },
    ])
      assert.notEqual(resumeShape(other), resumeShape(n));
  });
});

describe('what each node is told', () => {
  const l = lab(THREE);
  const secrets = { machineId: '0123456789abcdef0123456789abcdef', seed: 'ab'.repeat(32) };
  for (const node of l.nodes)
    test(`${node.name}: its configuration for the hook (golden)`, () => {
      golden(`resume-${node.name}.conf`, renderResumeConfig(l, node, KEYS, secrets, { snapshot: node.name === 'r1' }));
    });
  test('the saver alone stops at the snapshot point; every file is base64 and decodes to what qnet renders', () => {
    const conf = renderResumeConfig(l, l.nodes[1]!, KEYS, secrets, { snapshot: false });
    assert.doesNotMatch(conf, /^snapshot$/m);
    assert.match(renderResumeConfig(l, l.nodes[0]!, KEYS, secrets, { snapshot: true }), /^snapshot$/m);
    const files = new Map<string, string>();
    let at: string | undefined;
    for (const line of conf.split('\n')) {
      if (at !== undefined) {
        if (line === '.') at = undefined;
        else files.set(at, `${files.get(at) ?? ''}${line}\n`);
      } else if (line.startsWith('file ')) {
        at = line.split(' ')[2]!;
        files.set(at, '');
      }
    }
    assert.match(conf, /^file 177 \/etc\/ssh\/ssh_host_ed25519_key$/m);
    assert.match(conf, /^file 333 \/etc\/machine-id$/m);
    assert.equal(files.get('/etc/hostname'), 'r2\n');
    assert.equal(files.get('/etc/machine-id'), `${secrets.machineId}\n`);
    assert.match(files.get('/etc/hosts')!, /^10\.63\.0\.11 r1 r1\.rs$/m);
    assert.match(files.get('/root/.ssh/authorized_keys')!, /LABKEY qnet lab/);
    assert.match(files.get('/run/systemd/network/10-qnet-eth0.network')!, /\[Route\]\nDestination=10\.99\.0\.0\/16\nGateway=10\.63\.0\.11/);
    assert.match(conf, /^mac 0 [0-9a-f:]{17}$/m);
    assert.match(conf, /^wait 0 10\.63\.0\.12\/24$/m);
  });
  test('networkd files: static address, DNS of the network, DHCP', () => {
    const [s] = renderNetworkdFiles(l, l.nodes[0]!);
    assert.match(s!.content, /^MACAddress=/m);
    assert.match(s!.content, /^Address=10\.63\.0\.11\/24$/m);
    assert.match(s!.content, /^DNS=10\.63\.0\.1$/m);
    assert.match(s!.content, /^IPv6AcceptRA=no$/m);
    const [d] = renderNetworkdFiles(l, l.nodes[2]!);
    assert.match(d!.content, /^DHCP=ipv4$/m);
    assert.doesNotMatch(d!.content, /^Address=/m);
  });
});

describe('the plan and QEMU', () => {
  const l = lab(THREE);
  const snaps = Object.fromEntries(l.nodes.map((n) => [n.name, { path: '/var/cache/qnet/snapshots/img-k.state', exists: false }]));
  test('first up of the shape: r1 boots and is saved, r2 and r3 wait and are restored on its disk (golden)', () => {
    golden('plan-resume.txt', formatPlan(planUp(l, { ...CTX, snapshots: snaps, labKey: true })));
  });
  test('the wait says when image nodes are restored fewer at a time than there are', () => {
    const title = (c: Partial<PlanContext>) => planUp(l, { ...CTX, snapshots: snaps, labKey: true, ...c }).find((s) => s.do.kind === 'wait-ready')!.title;
    // r1 is saved, r2 and r3 are restored: 2 restored.
    assert.equal(title({ restoreParallel: 1 }), 'wait until every guest is configured (image nodes restored one at a time)');
    assert.equal(title({ restoreParallel: 2 }), 'wait until every guest is configured');
    assert.equal(title({ restoreParallel: 0 }), 'wait until every guest is configured');
    assert.equal(title({ restoreParallel: 1, parallel: 1 }), 'wait until every guest is configured (at most 1 booting at once; image nodes restored one at a time)');
    const all = Object.fromEntries(l.nodes.map((n) => [n.name, { path: '/s/img-k.state', exists: true }]));
    assert.equal(planUp(l, { ...CTX, snapshots: all, labKey: true, restoreParallel: 2 }).find((s) => s.do.kind === 'wait-ready')!.title, 'wait until every guest is configured (at most 2 image nodes restored at once)');
  });
  test('the saver: memfd RAM, SMBIOS serial, configuration on fw_cfg, no seed CD-ROM', () => {
    const n = l.nodes[0]!;
    const { args } = renderImageQemuArgs(l, n, imageNodeFiles(l.name, n), CTX, { memory: 'template-source' });
    const a = args.join(' ');
    assert.match(a, /-machine q35,memory-backend=ram/);
    assert.match(a, /memory-backend-memfd,id=ram,size=256M,share=on/);
    assert.match(a, /-smbios type=1,serial=qnet-resume/);
    assert.match(a, /-fw_cfg name=opt\/org\.qnet\/resume,file=\/run\/qnet\/rs\/r1\/guest\.conf/);
    assert.match(a, /free-page-reporting=off/);
    assert.doesNotMatch(a, /ide-cd/);
  });
  test('a restored node: the template on fd 4, then base, layer and its overlay on it', () => {
    const n = l.nodes[1]!;
    const { args, fds } = renderImageQemuArgs(l, n, imageNodeFiles(l.name, n), CTX, { memory: 'template', layer: layerOf('/c/img-k.state') });
    const a = args.join(' ');
    assert.match(a, /mem-path=\/proc\/self\/fd\/4,share=off/);
    assert.match(a, /-add-fd fd=5,set=1,opaque=base -blockdev .*-add-fd fd=6,set=2,opaque=layer -add-fd fd=7,set=3,opaque=disk/);
    assert.match(a, /"node-name":"layer","driver":"qcow2","read-only":true,"backing":"base"/);
    assert.match(a, /"node-name":"disk","driver":"qcow2","backing":"layer"/);
    assert.deepEqual(fds.map((f) => [path.basename(f.path), f.write]), [['debian.qcow2', false], ['img-k.disk', false], ['restored.qcow2', true]]);
  });
});

test('the GPT mark is read back from partition names', () => {
  const disk = Buffer.alloc(34 * 512);
  disk.write('EFI PART', 512, 'latin1');
  disk.writeBigUInt64LE(2n, 512 + 72);
  disk.writeUInt32LE(128, 512 + 80);
  disk.writeUInt32LE(128, 512 + 84);
  for (const [i, name] of [RESUME_MARK, 'root'].entries()) {
    disk.fill(1, 1024 + i * 128, 1024 + i * 128 + 16);
    disk.write(name, 1024 + i * 128 + 56, 'utf16le');
  }
  assert.deepEqual(gptPartitionNames(disk), [RESUME_MARK, 'root']);
  assert.deepEqual(gptPartitionNames(Buffer.alloc(34 * 512)), []);
});

test("the hook's scripts are valid POSIX shell (dash -n)", () => {
  for (const f of hookFiles().filter((x) => x.content.startsWith('#!/bin/sh'))) {
    const r = spawnSync('dash', ['-n'], { input: f.content, encoding: 'utf8' });
    assert.equal(r.status, 0, `${f.path}: ${r.stderr}`);
  }
  assert.ok(readFileSync(path.join(ROOT, 'src/guest/resume.ts'), 'utf8').includes('RESUME_VERSION'));
});
