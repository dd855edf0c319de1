// Layer 2 beyond plain bridges: VLAN-aware networks (access ports, trunks, the host side in a VLAN), VLAN
// sub-interfaces in the guests, and transparent links. Golden files for the examples that have them, the rules
// with their paths, and the reachability model over VLANs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { formatPlan, planChange, planUp } from '../../src/plan/plan.js';
import { diffLabs } from '../../src/plan/change.js';
import { renderGuestConfig } from '../../src/render/guest-config.js';
import { renderLinkBatch } from '../../src/render/ipbatch.js';
import { fdbLines, linkLines, vlanLines } from '../../src/render/l2.js';
import { clearImpairment, labImpairments, nicImpairment } from '../../src/render/impair.js';
import { renderShellExport } from '../../src/render/export-sh.js';
import { renderNetworkConfig } from '../../src/guest/cloud-init.js';
import { renderNetworkdFiles } from '../../src/guest/resume.js';
import { labGraph, renderDot } from '../../src/render/graph.js';
import { predict } from '../../src/check/model.js';
import { parseTopology } from '../../src/topology/load.js';
import { segmentOf } from '../../src/topology/vlan.js';
import { snapshotShape } from '../../src/render/qemu.js';
import { UserError } from '../../src/errors.js';
import { golden, ROOT } from './golden.js';

process.env.QNET_RUN_DIR = '/run/qnet';
const load = (name: string) => parseTopology(readFileSync(path.join(ROOT, 'examples', `${name}.yaml`), 'utf8'), `${name}.yaml`, { baseDir: path.join(ROOT, 'examples') });
const CTX = { image: { kernel: '/img/vmlinux', initrd: '/img/initrd.img', cmdline: 'console=ttyS0' }, accel: 'tcg' as const, user: 'qnet', userIds: { uid: 995, gid: 995 }, guestIds: { uid: 1900001000, gid: 1900001000 } };

/** The issues of an invalid topology, as "path: message" lines. */
function problems(yaml: string): string[] {
  try {
    parseTopology(yaml, 't.yaml');
  } catch (e) {
    if (e instanceof UserError) return (e.issues ?? []).map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

describe('VLAN-aware networks', () => {
  const lab = load('vlans');
  test('the link batch makes the bridge VLAN-aware (filtering on, no default VLAN on new ports)', () => {
    const batch = renderLinkBatch(lab, 'qnet');
    golden('vlans-links.batch', batch);
    assert.match(batch, /link add name br-sw type bridge stp_state 0 forward_delay 0 vlan_filtering 1 vlan_default_pvid 0\n/);
  });
  test('bridge -batch: access ports untagged in their VLAN, the trunk tagged, the host side "self" in its VLAN', () => {
    const lines = vlanLines(lab, lab.networks, lab.nodes);
    golden('vlans-bridge.batch', lines.join('\n') + '\n');
    const tap = (n: string) => lab.nodes.find((x) => x.name === n)!.nics[0]!.tap;
    assert.deepEqual(lines, [
      'vlan add dev br-sw vid 10 pvid untagged self',
      `vlan add dev ${tap('r1')} vid 10`,
      `vlan add dev ${tap('r1')} vid 20`,
      `vlan add dev ${tap('a')} vid 10 pvid untagged`,
      `vlan add dev ${tap('b')} vid 20 pvid untagged`,
      `vlan add dev ${tap('c')} vid 30 pvid untagged`,
    ]);
  });
  test('the plan sets the VLANs right after the links, in one bridge -batch', () => {
    const plan = formatPlan(planUp(lab, CTX));
    golden('vlans-plan.txt', plan);
    assert.match(plan, /\d+\. set the VLANs of 6 ports \(one bridge -batch\)\n\s+\$ ip netns exec qnet-vlans bridge -batch -/);
  });
  test('the router on a stick makes its sub-interfaces (8021q loaded) with their addresses', () => {
    const conf = renderGuestConfig(lab, lab.nodes.find((n) => n.name === 'r1')!);
    golden('vlans-r1.conf', conf);
    assert.match(conf, /^module 8021q$/m);
    assert.match(conf, /^vlan eth0 10\naddr eth0\.10 10\.0\.10\.1\/24\nvlan eth0 20\naddr eth0\.20 10\.0\.20\.1\/24$/m);
    // Access hosts know nothing of VLANs.
    assert.doesNotMatch(renderGuestConfig(lab, lab.nodes.find((n) => n.name === 'a')!), /vlan|8021q/);
  });
  test('a node with VLAN sub-interfaces is a shape of its own (its guest loaded 8021q before its snapshot point)', () => {
    const two = parseTopology(`name: s\nnetworks:\n  n: {}\nnodes:\n  p: {nics: [{network: n, ip: 10.0.0.1/24}]}\n  q: {nics: [{network: n, ip: 10.0.0.2/24, vlans: [{id: 5, ip: 10.5.0.2/24}]}]}\n`, 's');
    const img = { kernel: '/k', initrd: '/i', cmdline: 'c', key: 'x' };
    const [p, q] = two.nodes.map((n) => snapshotShape(n, img, 'tcg'));
    assert.notEqual(p, q);
    assert.match(q!, /"modules":\["virtio_net","8021q"\]/);
  });
  test('image nodes: netplan vlans (cloud-init) and networkd .netdev files (the resume hook)', () => {
    const img = { ...lab, nodes: lab.nodes.map((n) => (n.name === 'r1' ? { ...n, image: { path: '/x.qcow2', bus: 'virtio' as const, persist: false, config: 'cloud-init' as const, ready: { kind: 'agent' as const }, readyDefault: true, machine: 'q35' as const, firmware: 'bios' as const } } : n)) };
    const r1 = img.nodes.find((n) => n.name === 'r1')!;
    const nc = renderNetworkConfig(img, r1);
    golden('vlans-r1.network-config', nc);
    assert.match(nc, /vlans:\n  nic0\.10:\n    id: 10\n    link: eth0\n/);
    const files = renderNetworkdFiles(img, r1);
    assert.deepEqual(files.map((f) => f.name), ['10-qnet-eth0.network', '10-qnet-nic0.10.netdev', '11-qnet-nic0.10.network', '10-qnet-nic0.20.netdev', '11-qnet-nic0.20.network']);
    assert.match(files[0]!.content, /\[Network\]\nVLAN=nic0\.20\nVLAN=nic0\.10\n/);
    assert.equal(files[1]!.content, '[NetDev]\nName=nic0.10\nKind=vlan\n\n[VLAN]\nId=10\n');
    assert.match(files[2]!.content, /Name=nic0\.10\n[\s\S]*Address=10\.0\.10\.1\/24/);
  });
  test('status-like descriptions, export sh and graph carry the VLANs', () => {
    const sh = renderShellExport(lab, { image: CTX.image, accel: 'tcg', ids: { uid: 1900001000, gid: 1900001000 }, dnsUser: 'qnet', dir: '/x', ledger: '/run/qnet/host-forwarding.json' }).files['ifup.sh']!;
    assert.match(sh, /type bridge stp_state 0 forward_delay 0 vlan_filtering 1 vlan_default_pvid 0/);
    assert.match(sh, /ip netns exec qnet-vlans bridge vlan add dev br-sw vid 10 pvid untagged self/);
    const dot = renderDot(labGraph(lab));
    assert.match(dot, /eth0\.10 10\.0\.10\.1\/24\\neth0\.20 10\.0\.20\.1\/24\\n52:54:00:[0-9a-f:]+\\ntrunk 10,20/);
    assert.match(dot, /VLANs · host in VLAN 10\\nVLAN 10 10\.0\.10\.0\/24/);
  });
  test('the model: a VLAN is a segment of its own; the router on a stick joins 10 and 20; 30 stays apart', () => {
    const p = predict(lab);
    const cell = (from: string, to: string) => p.cells.find((c) => c.from === from && c.to === to && c.probe === 'ping')!.predicted!;
    assert.equal(cell('a', 'b').ok, true);
    assert.match(cell('a', 'b').hops.join(' '), /\[sw VLAN 10\].*r1 eth0.*\[sw VLAN 20\]/);
    assert.equal(cell('a', 'host:sw').ok, true);
    assert.equal(cell('b', 'host:sw').ok, false);
    assert.equal(cell('c', 'a').ok, false);
  });
  test('the model: two hosts of one subnet in different VLANs do not meet; a trunk drops a VLAN it does not carry', () => {
    const lab2 = parseTopology(
      `name: v2\nnetworks:\n  sw: {vlans: true, subnet: 10.1.0.0/24}\nnodes:\n  a: {nics: [{network: sw, vlan: 10, ip: 10.1.0.1}]}\n  b: {nics: [{network: sw, vlan: 20, ip: 10.1.0.2}]}\n  c: {nics: [{network: sw, ip: 10.1.0.3}]}\n  d: {nics: [{network: sw, vlan: 20, ip: 10.1.0.4}]}\n`,
      'v2',
    );
    const p = predict(lab2);
    const cell = (from: string, to: string) => p.cells.find((c) => c.from === from && c.to === to && c.probe === 'ping')!.predicted!;
    assert.equal(cell('a', 'b').ok, false);
    assert.match(cell('a', 'b').reason!, /nobody on sw \(VLAN 10\) has 10\.1\.0\.2/);
    assert.equal(cell('b', 'd').ok, true);
    // No vlan on a NIC of a VLAN-aware network: access port of VLAN 1, as on a switch.
    assert.equal(cell('c', 'a').ok, false);
    assert.deepEqual(lab2.nodes.find((n) => n.name === 'c')!.nics[0]!.port, { access: 1 });
  });
  test('segments: access, trunk with and without native, plain networks carrying tags as they are', () => {
    const vl = { vlans: { host: 1, subnets: {} } };
    assert.equal(segmentOf(vl, { port: { access: 10 } }), 10);
    assert.equal(segmentOf(vl, { port: { access: 10 } }, 10), 10);
    assert.equal(segmentOf(vl, { port: { access: 10 } }, 20), null);
    assert.equal(segmentOf(vl, { port: { trunk: [10, 20] } }), null);
    assert.equal(segmentOf(vl, { port: { trunk: [10, 20], native: 5 } }), 5);
    assert.equal(segmentOf(vl, { port: { trunk: [10, 20] } }, 20), 20);
    assert.equal(segmentOf(vl, { port: { trunk: [10, 20] } }, 30), null);
    assert.equal(segmentOf({}, {}), 0);
    assert.equal(segmentOf({}, {}, 30), 30);
  });
});

describe('transparent links', () => {
  const lab = load('links');
  const nic = (n: string, i: number) => lab.nodes.find((x) => x.name === n)!.nics[i]!;
  test('taps with no bridge, each the other\'s peer', () => {
    const batch = renderLinkBatch(lab, 'qnet');
    golden('links-links.batch', batch);
    assert.doesNotMatch(batch, /type bridge/);
    assert.match(batch, new RegExp(`link set dev ${nic('r1', 0).tap} alias qnet:lab=links up\\n`));
    assert.equal(nic('r1', 0).peerTap, nic('r2', 0).tap);
    assert.equal(nic('r2', 0).peerTap, nic('r1', 0).tap);
  });
  test('tc: an ingress redirect on each end to the other (mirred), and the plan runs it after the links', () => {
    const { tc, reset } = linkLines(lab, lab.nodes);
    assert.equal(tc.length, 8);
    assert.ok(tc.includes(`filter add dev ${nic('r1', 0).tap} parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ${nic('r2', 0).tap}`));
    assert.ok(tc.includes(`filter add dev ${nic('r2', 0).tap} parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ${nic('r1', 0).tap}`));
    assert.deepEqual(reset, []);
    // A restarted r3: only r2's end of their link (which stays) loses its old redirect.
    assert.deepEqual(linkLines(lab, [lab.nodes.find((n) => n.name === 'r3')!]).reset, [`qdisc del dev ${nic('r2', 1).tap} ingress`]);
    const plan = formatPlan(planUp(lab, CTX));
    golden('links-plan.txt', plan);
    assert.match(plan, /join the taps of 2 links end to end \(tc mirred, one tc -batch\)/);
    // Only the links a node is on, for a restarted node.
    assert.equal(linkLines(lab, [lab.nodes.find((n) => n.name === 'r3')!]).tc.length, 4);
  });
  test('an impaired link end: what its guest sends is queued on the other tap; no ifb, and its redirect is never cleared', () => {
    const r3 = nic('r3', 0);
    assert.deepEqual(labImpairments(lab).ip, []);
    assert.deepEqual(nicImpairment('links', 'r3', r3, r3.impair!).tc, [`qdisc replace dev ${nic('r2', 1).tap} root handle 1: tbf rate 10000000bit burst 12500b limit 62500b`]);
    const both = nicImpairment('links', 'r3', r3, { ...r3.impair!, direction: 'both' }).tc;
    assert.equal(both.length, 2);
    assert.deepEqual(clearImpairment('links', 'r3', r3, r3.impair).tc, [`qdisc del dev ${nic('r2', 1).tap} root`]);
    assert.ok(!clearImpairment('links', 'r3', r3, { ...r3.impair!, direction: 'both' }).tc.some((l) => l.includes('ingress')));
  });
  test("a restarted link end gets back the other end's impairment that queues on its new tap", () => {
    const text = readFileSync(path.join(ROOT, 'examples', 'links.yaml'), 'utf8');
    const next = parseTopology(text.replace('  r2:\n    router: {}', '  r2:\n    memory: 136\n    router: {}'), 'links.yaml');
    const c = diffLabs(lab, next);
    assert.deepEqual(c.restartNodes, ['r2']);
    const plan = formatPlan(planChange(lab, next, c, CTX));
    // r3's egress (rate 10mbit) queues on r2's tap t-r2-1, made again: it is put back; r2's own NICs have none.
    assert.match(plan, /impair 1 NIC: r3 NIC 0 \(rate 10mbit, egress\)[\s\S]*qdisc replace dev t-r2-1 root handle 1: tbf rate 10000000bit/);
    // And r1's end and r3's end, which stay, lose their redirect to the old taps before both links are joined again.
    assert.match(plan, /take the old redirects off[\s\S]*qdisc del dev t-r1-0 ingress\n[\s\S]*qdisc del dev t-r3-0 ingress/);
  });
  test('tags cross a link: sub-interfaces meet their VLAN at the other end', () => {
    const p = predict(lab);
    const cell = (from: string, to: string) => p.cells.find((c) => c.from === from && c.to === to && c.probe === 'ping')!.predicted!;
    assert.equal(cell('r2', 'r1:eth0.100').ok, true);
    assert.equal(cell('r2', 'r1:eth0.100').via, 'same segment r1-r2 VLAN 100');
    assert.equal(cell('r1', 'r3').ok, true);
    assert.match(renderDot(labGraph(lab)), /-- "node:r2" \[label="r1-r2 \(link\)"/);
  });
});

describe('VLAN and link rules: exit 2 with the path, before anything is made', () => {
  const net = (extra: string) => `name: t\nnetworks:\n  sw: {${extra}}\n`;
  const cases: Array<[string, string, RegExp]> = [
    ['a VLAN id out of range', `${net('vlans: true')}nodes:\n  a: {nics: [{network: sw, vlan: 4095}]}\n`, /^nodes\.a\.nics\[0\]\.vlan: vlan is a VLAN id from 1 to 4094$/],
    ['VLAN id 0 in a trunk', `${net('vlans: true')}nodes:\n  a: {nics: [{network: sw, trunk: [10, 0]}]}\n`, /^nodes\.a\.nics\[0\]\.trunk\[1\]: trunk is a VLAN id from 1 to 4094$/],
    ['a sub-interface id out of range', `${net('')}nodes:\n  a: {nics: [{network: sw, vlans: [{id: 5000, ip: 10.0.0.1/24}]}]}\n`, /^nodes\.a\.nics\[0\]\.vlans\[0\]\.id: id is a VLAN id from 1 to 4094$/],
    ['a VLAN key that is no id', `${net('vlans: {ten: {}}')}nodes:\n  a: {}\n`, /^networks\.sw\.vlans\.ten: "ten" is not a VLAN id from 1 to 4094$/],
    ['vlan and trunk on one NIC', `${net('vlans: true')}nodes:\n  a: {nics: [{network: sw, vlan: 10, trunk: [20]}]}\n`, /^nodes\.a\.nics\[0\]\.trunk: a NIC is an access port \("vlan"\) or a trunk \("trunk"\), not both$/],
    ['a VLAN on a network without vlans', `${net('')}nodes:\n  a: {nics: [{network: sw, vlan: 10}]}\n`, /^nodes\.a\.nics\[0\]\.vlan: network "sw" is not VLAN-aware: give it "vlans: true"/],
    ['a trunk on a network without vlans', `${net('')}nodes:\n  a: {nics: [{network: sw, trunk: [10]}]}\n`, /^nodes\.a\.nics\[0\]\.trunk: network "sw" is not VLAN-aware/],
    ['native without trunk', `${net('vlans: true')}nodes:\n  a: {nics: [{network: sw, native: 1}]}\n`, /^nodes\.a\.nics\[0\]\.native: "native" is the untagged VLAN of a trunk/],
    ['a VLAN twice in a trunk', `${net('vlans: true')}nodes:\n  a: {nics: [{network: sw, trunk: [10, 10]}]}\n`, /^nodes\.a\.nics\[0\]\.trunk\[1\]: VLAN 10 is listed twice$/],
    ['native also tagged', `${net('vlans: true')}nodes:\n  a: {nics: [{network: sw, trunk: [10], native: 10}]}\n`, /^nodes\.a\.nics\[0\]\.native: VLAN 10 is both tagged/],
    ['vlans on a nat network', `name: t\nnetworks:\n  n: {mode: nat, subnet: 10.0.0.0/24, address: 10.0.0.1, vlans: true}\nnodes:\n  a: {}\n`, /^networks\.n\.vlans: VLANs are switched on bridge and isolated networks \(this one is nat\)/],
    ['hostVlan without vlans', `${net('address: 10.0.0.1/24, hostVlan: 10')}nodes:\n  a: {}\n`, /^networks\.sw\.hostVlan: hostVlan is for a network with "vlans: true"$/],
    ['hostVlan without an address', `${net('vlans: true, hostVlan: 10')}nodes:\n  a: {}\n`, /^networks\.sw\.hostVlan: hostVlan places the host side in a VLAN: give the network an "address"/],
    ['a sub-interface address outside its VLAN\'s subnet', `${net('vlans: {10: {subnet: 10.0.10.0/24}}')}nodes:\n  a: {nics: [{network: sw, trunk: [10], vlans: [{id: 10, ip: 10.0.20.1/24}]}]}\n`, /^nodes\.a\.nics\[0\]\.vlans\[0\]\.ip: 10\.0\.20\.1\/24 is outside the network's subnet 10\.0\.10\.0\/24$/],
    ['an access port address outside its VLAN\'s subnet', `${net('vlans: {10: {subnet: 10.0.10.0/24}}')}nodes:\n  a: {nics: [{network: sw, vlan: 10, ip: 10.0.11.2/24}]}\n`, /^nodes\.a\.nics\[0\]\.ip: 10\.0\.11\.2\/24 is outside the network's subnet 10\.0\.10\.0\/24$/],
    ['a sub-interface the port drops', `${net('vlans: true')}nodes:\n  a: {nics: [{network: sw, trunk: [10], vlans: [{id: 20, ip: 10.0.20.1/24}]}]}\n`, /^nodes\.a\.nics\[0\]\.vlans\[0\]\.id: the switch drops frames tagged 20 on this port \(trunk 10\): add 20 to "trunk"$/],
    ['a sub-interface twice', `${net('')}nodes:\n  a: {nics: [{network: sw, vlans: [{id: 20, ip: 10.0.20.1/24}, {id: 20}]}]}\n`, /^nodes\.a\.nics\[0\]\.vlans\[1\]\.id: this NIC already has a sub-interface for VLAN 20$/],
    ['an address on a trunk without native', `${net('vlans: true, subnet: 10.0.0.0/24')}nodes:\n  a: {nics: [{network: sw, trunk: [10], ip: 10.0.0.2}]}\n`, /^nodes\.a\.nics\[0\]\.ip: a trunk without "native" drops untagged frames/],
    ['a VLAN subnet overlapping another network', `name: t\nnetworks:\n  sw: {vlans: {10: {subnet: 10.0.0.0/16}}}\n  lan: {subnet: 10.0.5.0/24}\nnodes:\n  a: {}\n`, /^networks\.lan\.subnet: 10\.0\.5\.0\/24 overlaps networks\.sw\.vlans\["10"\]\.subnet 10\.0\.0\.0\/16$/],
    ['DHCP in another VLAN than the host side\'s', `${net('vlans: true, subnet: 10.0.0.0/24, address: 10.0.0.1, hostVlan: 10, dhcp: {range: 10.0.0.100-10.0.0.200}')}nodes:\n  a: {nics: [{network: sw, vlan: 20, dhcp: true}]}\n`, /^nodes\.a\.nics\[0\]\.dhcp: networks\.sw serves DHCP in VLAN 10 \(its host side's\), and this NIC is in VLAN 20/],
    ['VLANs on a user-mode NIC', `name: t\nnodes:\n  a: {nics: [{user: {}, vlans: [{id: 10}]}]}\n`, /^nodes\.a\.nics\[0\]\.vlans: a user-mode NIC is no port of a switch/],
    ['a link with three NICs', `name: t\nnetworks:\n  l: {mode: link}\nnodes:\n  a: {nics: [{network: l}]}\n  b: {nics: [{network: l}]}\n  c: {nics: [{network: l}]}\n`, /^networks\.l: a link network joins exactly two NICs; 3 join it$/],
    ['a link with one NIC', `name: t\nnetworks:\n  l: {mode: link}\nnodes:\n  a: {nics: [{network: l}]}\n`, /^networks\.l: a link network joins exactly two NICs; 1 join it$/],
    ['a link with an address', `name: t\nnetworks:\n  l: {mode: link, address: 10.0.0.1/24}\nnodes:\n  a: {nics: [{network: l}]}\n  b: {nics: [{network: l}]}\n`, /^networks\.l\.address: a link network has no bridge, so no address$/],
    ['a link with VLANs', `name: t\nnetworks:\n  l: {mode: link, vlans: true}\nnodes:\n  a: {nics: [{network: l}]}\n  b: {nics: [{network: l}]}\n`, /^networks\.l\.vlans: VLANs are switched on bridge and isolated networks \(this one is link\)/],
    [
      'both ends of a link impaired in one direction',
      `name: t\nnetworks:\n  l: {mode: link}\nnodes:\n  a: {nics: [{network: l, impair: {rate: 1mbit}}]}\n  b: {nics: [{network: l, impair: {rate: 2mbit, direction: ingress}}]}\n`,
      /^nodes\.a\.nics\[0\]\.impair: on link network "l" what this NIC sends is what b's NIC 0 receives/,
    ],
  ];
  for (const [why, yaml, want] of cases)
    test(why, () => {
      const got = problems(yaml);
      assert.ok(got.some((g) => want.test(g)), `expected ${want} among:\n${got.join('\n') || '(valid)'}`);
    });
  test('what is valid: tags on a plain bridge and a link, an access port with a sub-interface of its own VLAN, both directions on two ends', () => {
    assert.deepEqual(problems(`name: t\nnetworks:\n  sw: {}\nnodes:\n  a: {nics: [{network: sw, vlans: [{id: 7, ip: 10.7.0.1/24}]}]}\n`), []);
    assert.deepEqual(problems(`${net('vlans: true')}nodes:\n  a: {nics: [{network: sw, vlan: 7, vlans: [{id: 7, ip: 10.7.0.1/24}]}]}\n`), []);
    assert.deepEqual(
      problems(`name: t\nnetworks:\n  l: {mode: link}\nnodes:\n  a: {nics: [{network: l, impair: {rate: 1mbit}}]}\n  b: {nics: [{network: l, impair: {rate: 2mbit}}]}\n`),
      [],
    );
  });
});

describe("guests' MACs tied to their bridge ports", () => {
  test('one static entry per NIC on a bridge; none for link ends, socket NICs or VLAN-aware networks', () => {
    const lab = parseTopology(
      [
        'name: pins',
        'networks:',
        '  lan: { subnet: 10.1.0.0/24, address: 10.1.0.1 }',
        '  wire: { mode: link }',
        '  sw: { vlans: { 10: { subnet: 10.0.10.0/24 } } }',
        'nodes:',
        '  a: { nics: [ { network: lan, ip: 10.1.0.2, mac: "02:00:00:00:00:0a" }, { network: wire }, { network: sw, vlan: 10, ip: 10.0.10.2 } ] }',
        '  b: { nics: [ { network: lan, ip: 10.1.0.3, mac: "02:00:00:00:00:0b" }, { network: wire } ] }',
      ].join('\n'),
      'pins.yaml',
    );
    const tap = (n: string) => lab.nodes.find((x) => x.name === n)!.nics[0]!.tap;
    assert.deepEqual(fdbLines(lab, lab.nodes), [`fdb replace 02:00:00:00:00:0a dev ${tap('a')} master static`, `fdb replace 02:00:00:00:00:0b dev ${tap('b')} master static`]);
    assert.deepEqual(fdbLines(lab, lab.nodes.filter((n) => n.name === 'b')), [`fdb replace 02:00:00:00:00:0b dev ${tap('b')} master static`]);
    // In the plan: after the links are made, with the VLANs in the same bridge -batch; a change ties only its new nodes.
    const plan = formatPlan(planUp(lab, CTX));
    assert.match(plan, /\d+\. set the VLANs of \d+ ports? and tie 2 guest MACs to their bridge ports \(one bridge -batch\)\n\s+\$ ip netns exec qnet-pins bridge -batch -/);
    // The shell export makes the same entries.
    const ifup = renderShellExport(lab, { image: CTX.image, accel: 'tcg', ids: { uid: 1900001000, gid: 1900001000 }, dnsUser: 'qnet', dir: '/x', ledger: '/run/qnet/host-forwarding.json' }).files['ifup.sh']!;
    assert.ok(ifup.includes(`ip netns exec qnet-pins bridge fdb replace 02:00:00:00:00:0a dev ${tap('a')} master static`), ifup);
  });
  test('a change ties the MACs of the nodes it starts, and only theirs', () => {
    const base = ['name: grow', 'networks:', '  lan: { subnet: 10.1.0.0/24, address: 10.1.0.1 }', 'nodes:', '  a: { nics: [ { network: lan, ip: 10.1.0.2 } ] }'];
    const before = parseTopology(base.join('\n'), 'grow.yaml');
    const after = parseTopology([...base, '  b: { nics: [ { network: lan, ip: 10.1.0.3 } ] }'].join('\n'), 'grow.yaml');
    const plan = formatPlan(planChange(before, after, diffLabs(before, after), CTX));
    const b = after.nodes.find((n) => n.name === 'b')!.nics[0]!;
    assert.match(plan, /tie 1 guest MAC to its bridge port \(one bridge -batch\)/);
    assert.ok(plan.includes(`fdb replace ${b.mac} dev ${b.tap} master static`), plan);
    assert.ok(!plan.includes(`fdb replace ${before.nodes[0]!.nics[0]!.mac}`), plan);
  });
});
