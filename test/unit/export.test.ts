// The shell export (`qnet export --format sh`) of the examples: golden scripts, and what they must hold: the
// bridge's MAC that the guests pin, dnsmasq with qnet's own configuration, the uplink, the host's nft table and
// forwarding (undone by ifdown.sh), the guest's kernel and initrd copied in. The forwarding ledger's sh is run
// here on temporary files against what qnet's own ledger code writes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BOOT_FILES, forwardingClaim, forwardingRelease, renderShellExport, type ShellExportOptions } from '../../src/render/export-sh.js';
import { dnsmasqFiles, renderDnsmasqConf } from '../../src/render/dnsmasq.js';
import { bridgeMac } from '../../src/render/ipbatch.js';
import { renderHostRuleset, uplinkHostIf } from '../../src/render/uplink.js';
import { renderGuestConfig } from '../../src/render/guest-config.js';
import { parseTopology } from '../../src/topology/load.js';
import { runtimeNotes } from '../../src/lab/export.js';
import type { LabState } from '../../src/lab/state.js';
import { golden, ROOT } from './golden.js';

const example = (name: string) => parseTopology(readFileSync(path.join(ROOT, 'examples', name), 'utf8'), name);
const OPTS: ShellExportOptions = {
  image: { kernel: '/var/cache/qnet/images/0123456789abcdef/vmlinux', initrd: '/var/cache/qnet/images/0123456789abcdef/initrd.img', cmdline: 'console=ttyS0' },
  accel: 'tcg',
  ids: { uid: 1900001000, gid: 1900001000 },
  dnsUser: 'qnet',
  dir: '/srv/lab',
  ledger: '/run/qnet/host-forwarding.json',
};
// 100.64.66.100/30
const UPLINK = { net: ((100 << 24) | (64 << 16) | (66 << 8) | 100) >>> 0 };

describe('the seed lab exported', () => {
  const lab = example('seed-lab.yaml');
  const out = renderShellExport(lab, OPTS);
  test('matches golden', () => {
    golden('export-seed-ifup.sh', out.files['ifup.sh']!);
    golden('export-seed-start.sh', out.files['start.sh']!);
    golden('export-seed-ifdown.sh', out.files['ifdown.sh']!);
  });
  test("kbr0 gets the MAC every guest's guest.conf pins for 192.168.1.100, and the host side knows the guests' MACs", () => {
    const mac = bridgeMac('seed', 'lan');
    for (const node of lab.nodes.filter((n) => n.name !== 'deb1')) assert.match(renderGuestConfig(lab, node), new RegExp(`^arp 192\\.168\\.1\\.100 ${mac}$`, 'm'));
    assert.ok(out.files['ifup.sh']!.includes(`\nip -n qnet-seed link set dev kbr0 alias qnet:lab=seed address ${mac}\n`), out.files['ifup.sh']);
    assert.ok(out.files['ifup.sh']!.includes('\nip -n qnet-seed neigh replace 192.168.1.2 lladdr de:ad:be:ef:00:02 dev kbr0 nud permanent\n'));
  });
  test("start.sh boots the export's own copy of the kernel and initrd, never qnet's cache", () => {
    const start = out.files['start.sh']!;
    assert.doesNotMatch(start, /\/var\/cache/);
    assert.match(start, /\n {2}-kernel \/srv\/lab\/boot\/vmlinux \\\n {2}-initrd \/srv\/lab\/boot\/initrd\.img \\\n/);
    assert.deepEqual(out.copies, { [BOOT_FILES.kernel]: OPTS.image.kernel, [BOOT_FILES.initrd]: OPTS.image.initrd });
  });
  test("guests run as the lab's own uid, marked as qnet marks them", () => {
    const start = out.files['start.sh']!;
    assert.match(start, /\nQNET_LAB=seed QNET_NODE=deb2 QNET_KIND=builtin nsenter --net=\/run\/netns\/qnet-seed -- .* setpriv --reuid=1900001000 --regid=1900001000 /);
    assert.match(out.files['ifup.sh']!, /\nip -n qnet-seed tuntap add dev ktap2 mode tap user 1900001000\n/);
  });
  test('no uplink, no dnsmasq, no host table: the host outside the namespace is left alone', () => {
    for (const s of [out.files['ifup.sh']!, out.files['ifdown.sh']!]) assert.doesNotMatch(s, /dnsmasq|nft |ip link add name qn|ip_forward|host-forwarding/);
  });
});

describe('the nat lab (dnsmasq, uplink, masquerade, a port forward) exported', () => {
  const lab = example('nat-dhcp.yaml');
  const out = renderShellExport(lab, { ...OPTS, uplink: UPLINK });
  const ifup = out.files['ifup.sh']!;
  const ifdown = out.files['ifdown.sh']!;
  const hostIf = uplinkHostIf('natlab');
  test('matches golden', () => {
    golden('export-natlab-ifup.sh', ifup);
    golden('export-natlab-start.sh', out.files['start.sh']!);
    golden('export-natlab-ifdown.sh', ifdown);
  });
  test("dnsmasq runs on br0 in the namespace, marked, with qnet's own configuration", () => {
    const f = { ...dnsmasqFiles('/srv/lab/dnsmasq', 'lan'), hosts: '/srv/lab/dnsmasq/hosts' };
    assert.equal(out.files['dnsmasq/lan.conf'], renderDnsmasqConf(lab, lab.networks[0]!, f, 'qnet'));
    assert.match(out.files['dnsmasq/lan.conf']!, /\ndhcp-host=00:26:c6:21:cf:02,172\.16\.1\.2,win\n/);
    assert.match(out.files['dnsmasq/hosts']!, /^172\.16\.1\.2 win win\.natlab$/m);
    assert.match(ifup, /\nQNET_LAB=natlab QNET_SERVICE=dnsmasq:lan nsenter --net=\/run\/netns\/qnet-natlab -- dnsmasq --conf-file=\/srv\/lab\/dnsmasq\/lan\.conf --pid-file=\S+\n/);
  });
  test("the uplink veth, the host's route, forwarding and qnet's nft table (masquerade, DNAT)", () => {
    assert.ok(ifup.includes(`\nip link add name ${hostIf} type veth peer name uplink netns qnet-natlab\nip link set dev ${hostIf} alias qnet:lab=natlab\nip addr add 100.64.66.101/30 dev ${hostIf}\n`), ifup);
    assert.ok(ifup.includes('\nip -n qnet-natlab route add default via 100.64.66.101 dev uplink\n'));
    assert.ok(ifup.includes(`\nip route add 172.16.1.0/24 via 100.64.66.102 dev ${hostIf}\n`));
    assert.ok(ifup.includes('\nip netns exec qnet-natlab sysctl -qw net.ipv4.ip_forward=1\n'));
    assert.ok(ifup.includes(`\nnft -f - <<'EOF'\n${renderHostRuleset(lab)}EOF\n`), ifup);
    assert.match(renderHostRuleset(lab), /masquerade[\s\S]*tcp dport 8080 dnat to 172\.16\.1\.2:80/);
    assert.ok(ifup.includes(forwardingClaim('natlab', OPTS.ledger)));
    // Checked before anything is made: the /30 and the nat subnet free on the host where it runs.
    assert.ok(ifup.indexOf('for net in 100.64.66.100/30 172.16.1.0/24; do') < ifup.indexOf('ip netns add'));
  });
  test('ifdown.sh undoes each of them, only what carries the lab marker', () => {
    assert.match(ifdown, /\nlab_pids\(\) \{ grep -lxz QNET_LAB=natlab /);
    assert.ok(ifdown.includes(`\nnft list table ip qnet-natlab 2>/dev/null | grep -q 'comment "qnet:lab=natlab"' && nft delete table ip qnet-natlab\n`));
    assert.ok(ifdown.includes(`\n[ "$(cat /sys/class/net/${hostIf}/ifalias 2>/dev/null)" = qnet:lab=natlab ] && ip link delete ${hostIf}\n`));
    assert.ok(ifdown.includes(forwardingRelease('natlab', OPTS.ledger)));
    assert.match(ifdown, /\n {4}ip netns delete qnet-natlab\n/);
  });
  test('a lab with nat or routed networks cannot be rendered without its uplink', () => {
    assert.throws(() => renderShellExport(lab, OPTS), /needs o\.uplink/);
  });
});

describe("the forwarding ledger's sh, on temporary files, with qnet's own format", () => {
  const run = (dir: string, script: string) => {
    const r = spawnSync('sh', ['-eu', '-c', script], { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, r.stderr);
  };
  const setup = (forwarding: string, ledger?: unknown) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-ledger-'));
    writeFileSync(path.join(dir, 'ip_forward'), `${forwarding}\n`);
    // The form host/forwarding.ts writes.
    if (ledger) writeFileSync(path.join(dir, 'l.json'), JSON.stringify(ledger) + '\n');
    const l = path.join(dir, 'l.json');
    const s = path.join(dir, 'ip_forward');
    return {
      claim: (lab: string) => run(dir, forwardingClaim(lab, l, s)),
      release: (lab: string) => run(dir, forwardingRelease(lab, l, s)),
      ledger: () => {
        try {
          return JSON.parse(readFileSync(l, 'utf8')) as unknown;
        } catch {
          return null;
        }
      },
      forwarding: () => readFileSync(s, 'utf8').trim(),
      done: () => rmSync(dir, { recursive: true, force: true }),
    };
  };
  test('off before: the export turns it on, joins, and the last one out turns it off', () => {
    const t = setup('0');
    try {
      t.claim('a');
      assert.deepEqual(t.ledger(), { was: '0', labs: ['a'] });
      assert.equal(t.forwarding(), '1');
      t.claim('a'); // twice: still one claim
      t.claim('b-2');
      assert.deepEqual(t.ledger(), { was: '0', labs: ['b-2', 'a'] });
      t.release('a');
      assert.deepEqual(t.ledger(), { was: '0', labs: ['b-2'] });
      assert.equal(t.forwarding(), '1');
      t.release('b-2');
      assert.equal(t.ledger(), null);
      assert.equal(t.forwarding(), '0');
    } finally {
      t.done();
    }
  });
  test("joins a ledger of qnet's labs, leaves it without turning forwarding off under them", () => {
    const t = setup('1', { was: '0', labs: ['q1', 'q2'] });
    try {
      t.claim('labs'); // a lab named like the key is still told apart from it
      assert.deepEqual(t.ledger(), { was: '0', labs: ['labs', 'q1', 'q2'] });
      t.release('q1');
      t.release('labs');
      assert.deepEqual(t.ledger(), { was: '0', labs: ['q2'] });
      assert.equal(t.forwarding(), '1');
      t.release('nobody');
      assert.deepEqual(t.ledger(), { was: '0', labs: ['q2'] });
    } finally {
      t.done();
    }
  });
  test("on for the host's own reasons (no ledger): left alone, nothing recorded, nothing turned off", () => {
    const t = setup('1');
    try {
      t.claim('a');
      assert.equal(t.ledger(), null);
      t.release('a');
      assert.equal(t.forwarding(), '1');
    } finally {
      t.done();
    }
  });
});

test("a running lab's pulled links and changed impairments are named as left out of its export", () => {
  const lab = example('seed-lab.yaml');
  const state = { version: 1, lab, status: 'up', createdAt: '', accel: 'tcg', image: 'x', guests: {}, links: { deb2: [0], deb3: [] }, impair: { deb3: { 0: null } } } as unknown as LabState;
  assert.deepEqual(runtimeNotes(state), [
    "the running lab's links pulled by `qnet link` (deb2) are not in the export: its guests start with every link up, as the topology says",
    'impairments changed by `qnet impair` on deb3 are not in the export: it has the topology\'s',
  ]);
  assert.deepEqual(runtimeNotes(undefined), []);
});
