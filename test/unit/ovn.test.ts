// Labs on OVN (issue 33), the pure part: hosts resolved from the topology, placement of nodes on hosts, the guests'
// MTU, and the northbound batches of every example put on OVN (goldens: the batch where OVN carries the example, the
// refusal where it does not). Regenerate with UPDATE_GOLDEN=1 and review.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { UserError } from '../../src/errors.js';
import { formatNbBatch, leaseSeconds, nbArgv, nbFindArgv, NB_LAB_TABLES, renderNbDown, renderNbUp, type NbCommand } from '../../src/fabric/ovn/nb.js';
import { guestMtu, labGuestMtu } from '../../src/fabric/ovn/mtu.js';
import { capacityOf, CPU_OVERCOMMIT, formatPlacement, HOST_RESERVE_MIB, placeNodes, QEMU_OVERHEAD_MIB, type HostCapacity } from '../../src/plan/placement.js';
import { parseTopology } from '../../src/topology/load.js';
import type { ResolvedLab, ResolvedNode } from '../../src/topology/model.js';
import { parseSshTarget } from '../../src/topology/ssh-target.js';
import { golden, ROOT } from './golden.js';
import { formatPlan, planUp, type PlanContext } from '../../src/plan/plan.js';
import { notYetOnOvn, onOvn } from '../../src/fabric/ovn/plan.js';
import { ifbName } from '../../src/render/impair.js';
import { captureSource } from '../../src/lab/capture.js';
import { findMirrorsArgv, mirrorAddArgv, mirrorCapture, mirrorDelArgv } from '../../src/fabric/ovn/mirror.js';
import { labsInExternalIds, parseBound } from '../../src/lab/ovn.js';
import { fabricOf } from '../../src/fabric/fabric.js';
import { hostSideVeth, ovnTap } from '../../src/fabric/ovn/names.js';
import { bridgeMac } from '../../src/render/ipbatch.js';
import { snapshotShape } from '../../src/render/qemu.js';

const EXAMPLES = path.join(ROOT, 'examples');
const read = (name: string) => readFileSync(path.join(EXAMPLES, name), 'utf8');

/** The seed lab over two hosts, as the issue has it: deb1 and deb2 on a (deb2 placed there by qnet), deb3 on b. */
const SEED_TWO_HOSTS = read('seed-lab.yaml')
  .replace('nodes:\n  deb1:\n', 'hosts:\n  a: { ssh: root@192.0.2.10 }\n  b: { ssh: root@192.0.2.11, underlay: 10.1.0.2 }\novn: { central: a }\nnodes:\n  deb1:\n    host: a\n')
  .replace('  deb3:\n', '  deb3:\n    host: b\n');

/** The nat lab with its gateway on b and the forwarded guest on a. */
const NAT_GATEWAY_B = read('nat-dhcp.yaml')
  .replace('nodes:\n  win:\n', 'hosts:\n  a: { ssh: local, underlay: 10.1.0.1 }\n  b: { ssh: root@10.1.0.2 }\novn: { central: a, gateway: b }\nnodes:\n  win:\n    host: a\n');

/** The text of a lab's placement and NB batch as the goldens hold it. */
function rendered(lab: ResolvedLab, capacity: Record<string, HostCapacity | undefined>, mtu: number): string {
  const placement = placeNodes(lab, capacity);
  return `# placement\n${formatPlacement(lab, placement, capacity)}\n# ovn-nbctl batch (up)\n${formatNbBatch(renderNbUp(lab, { placement: placement.hosts, mtu }))}`;
}

describe('every example on OVN: its northbound batch, or why OVN refuses it', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();
  test('there are examples', () => assert.ok(files.length >= 8));
  for (const file of files) {
    const name = file.replace(/\.yaml$/, '');
    test(name, () => {
      let lab: ResolvedLab;
      try {
        lab = parseTopology(`${read(file)}fabric: ovn\n`, file);
      } catch (e) {
        assert.ok(e instanceof UserError, String(e));
        assert.match(e.message, /not on OVN/);
        return golden(`ovn-${name}.refused`, `${e.message}\n`);
      }
      golden(`ovn-${name}.nb`, rendered(lab, {}, labGuestMtu([])));
    });
  }
  test('the seed lab over two hosts (deb1, deb2 on a; deb3 on b), underlay MTU 1500', () => {
    const lab = parseTopology(SEED_TWO_HOSTS, 'seed-two-hosts.yaml');
    const cap = { a: { memory: 4096, cpus: 8 }, b: { memory: 4096, cpus: 8 } };
    const text = rendered(lab, cap, labGuestMtu([1500, 1500]));
    golden('ovn-seed-two-hosts.nb', text);
    assert.match(text, /host a: deb1 \(pinned\), deb2;/);
    assert.match(text, /host b: deb3 \(pinned\);/);
    assert.match(text, /qnet\.seed\.nic\.deb3\.0 requested-chassis=b/);
    assert.match(text, /'options:mtu="1442"'/);
  });
  test('a nat network with its gateway on b and a port forward to a guest on a', () => {
    const lab = parseTopology(NAT_GATEWAY_B, 'natlab-two-hosts.yaml');
    const text = rendered(lab, { a: { memory: 8192, cpus: 8 }, b: { memory: 8192, cpus: 8 } }, labGuestMtu([1600, 1600]));
    golden('ovn-natlab-two-hosts.nb', text);
    assert.match(text, /qnet\.natlab\.nic\.win\.0 requested-chassis=a/);
    // The lab namespace (on the gateway host) is the router; the port forward is the host's DNAT, no NB row.
    assert.match(text, /lsp-set-options qnet\.natlab\.host\.lan requested-chassis=b/);
    assert.doesNotMatch(text, /lb-add|lr-add|NAT/);
  });
  test('down: the rows found by the lab\'s marker, destroyed in one batch', () => {
    const finds = NB_LAB_TABLES.map((t) => nbFindArgv('seed', t, ['--db=tcp:192.0.2.10:6641']).join(' '));
    const down = renderNbDown({
      Logical_Switch: ['22222222-0000-4000-8000-000000000002', '11111111-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000001'],
      DNS: ['33333333-0000-4000-8000-000000000003'],
      DHCP_Options: ['not-a-uuid; ls-del x'],
    });
    golden('ovn-down.nb', `# find\n${finds.join('\n')}\n# ovn-nbctl batch (down)\n${formatNbBatch(down)}`);
    assert.equal(down.length, 3, 'duplicates once, and what is no UUID never reaches the batch');
    assert.deepEqual(renderNbDown({}), []);
  });
});

describe('the plan of a lab on OVN on one host', () => {
  const IMAGE = { kernel: '/img/vmlinuz', initrd: '/img/initrd.img', cmdline: 'console=ttyS0' };
  const base: PlanContext = { image: IMAGE, accel: 'tcg', user: 'qnet', userIds: { uid: 995, gid: 995 }, guestIds: { uid: 1900001000, gid: 1900001000 } };
  const written = parseTopology(`${read('seed-lab.yaml')}fabric: ovn\n`, 'seed-lab.yaml');
  const lab = onOvn(written, 'netdev');
  const ovn = { chassis: { local: 'h1' }, placement: { deb1: 'local', deb2: 'local', deb3: 'local' }, datapath: 'netdev' as const, nb: [] };
  // deb2 saves the shape's state, deb3 is restored from it: each is plugged right after its QEMU starts.
  const snapshots = { deb2: { path: '/cache/s.state', exists: false }, deb3: { path: '/cache/s.state', exists: false } };
  const steps = planUp(lab, { ...base, ovn, snapshots });
  const text = formatPlan(steps);
  test('golden: namespace, taps in it, the NB batch, the host side on br-int; each node started, then its taps moved to br-int and bound', () => {
    golden('ovn-seed-plan.txt', text + '\n');
  });
  test('no bridge, no dnsmasq; the NB batch names this host\'s chassis; its undo clears the lab\'s rows by marker', () => {
    assert.doesNotMatch(text, /type bridge|dnsmasq|master /);
    assert.match(text, /lsp-set-options qnet\.seed\.nic\.deb3\.0 requested-chassis=h1/);
    const nb = steps.find((s) => s.do.kind === 'exec' && s.do.argv[0] === 'ovn-nbctl' && s.do.argv.includes('ls-add'))!;
    assert.deepEqual(nb.undo, { kind: 'ovn-clear', lab: 'seed', nb: [] });
  });
  test('each node: start, move its taps, plug, wait bound, before the wait for every guest; every change has its undo', () => {
    const titles = steps.map((s) => s.title);
    for (const node of ['deb1', 'deb2', 'deb3']) {
      const start = titles.findIndex((t) => new RegExp(`^(start|restore) ${node} `).test(t));
      const move = titles.findIndex((t) => t.startsWith(`move ${node}'s tap`));
      const plug = titles.findIndex((t) => t.startsWith(`plug ${node}'s tap`));
      const bound = titles.findIndex((t) => t === `wait until OVN binds ${node}'s port`);
      assert.ok(start >= 0 && start < move && move < plug && plug < bound && bound < titles.findIndex((t) => t.startsWith('wait until every guest')), `${node}: ${[start, move, plug, bound]}`);
      assert.ok(steps[move]!.undo && steps[plug]!.undo);
    }
  });
  test('taps: unique on the host per lab and NIC, QEMU opens them without the virtio-net header on netdev', () => {
    const deb2 = lab.nodes.find((n) => n.name === 'deb2')!;
    assert.equal(deb2.nics[0]!.tap, ovnTap('seed', 'deb2', 0));
    assert.notEqual(ovnTap('seed', 'deb2', 0), ovnTap('seed2', 'deb2', 0));
    assert.match(text, new RegExp(`tap,id=net0,ifname=${ovnTap('seed', 'deb2', 0)},script=no,downscript=no,vnet_hdr=off`));
    // The user-mode NIC stays as it is; on the kernel datapath the header stays on.
    assert.equal(lab.nodes[0]!.nics[0]!.kind, 'user');
    assert.ok(onOvn(written, 'system').nodes.every((n) => n.nics.every((c) => c.vnetHdr === undefined)));
  });
  test('saved states: an OVN guest on netdev has a shape of its own; the bridge lab\'s shape is as before', () => {
    const bridgeLab = parseTopology(read('seed-lab.yaml'), 'seed-lab.yaml');
    const b = bridgeLab.nodes.find((n) => n.name === 'deb2')!;
    const o = lab.nodes.find((n) => n.name === 'deb2')!;
    assert.notEqual(snapshotShape(o, IMAGE, 'tcg'), snapshotShape(b, IMAGE, 'tcg'));
    assert.doesNotMatch(snapshotShape(b, IMAGE, 'tcg')!, /vnet_hdr/);
    assert.equal(snapshotShape(onOvn(written, 'system').nodes[1]!, IMAGE, 'tcg'), snapshotShape(b, IMAGE, 'tcg'));
  });
  test('the host side: a veth whose lab end is named as the bridge was and has its MAC and address', () => {
    assert.match(text, /link add name qh[0-9a-f]{10} type veth peer name kbr0 netns qnet-seed/);
    assert.match(text, new RegExp(`link set dev kbr0 address ${bridgeMac('seed', 'lan')} alias qnet:lab=seed`));
    assert.match(text, /lsp-set-addresses qnet\.seed\.host\.lan '02:15:2b:fa:60:44 192\.168\.1\.100'/);
    assert.equal(bridgeMac('seed', 'lan'), '02:15:2b:fa:60:44');
  });
  test('the fabric of a lab: bridges without "fabric", OVN with it; a bridge lab\'s nodes have nothing to plug', () => {
    const bridgeLab = parseTopology(read('seed-lab.yaml'), 'seed-lab.yaml');
    assert.equal(fabricOf(bridgeLab).name, 'bridge');
    assert.equal(fabricOf(lab).name, 'ovn');
    assert.deepEqual(fabricOf(bridgeLab).plugSteps(bridgeLab, bridgeLab.nodes[1]!, base), []);
  });
  test('an impaired NIC on OVN: its ifb and qdiscs made in the host namespace once its tap is plugged (OVS keeps off its qdiscs), before it is bound', () => {
    const imp = onOvn(parseTopology(`${read('seed-lab.yaml')}fabric: ovn\n`.replace('ip: 192.168.1.3', 'ip: 192.168.1.3, impair: { rate: 10mbit, direction: both }'), 'seed-lab.yaml'), 'netdev');
    assert.equal(notYetOnOvn(imp), undefined, 'impairments are made on OVN now');
    const st = planUp(imp, { ...base, ovn });
    const titles = st.map((s) => s.title);
    const move = titles.findIndex((t) => t.startsWith("move deb3's tap"));
    const ifb = titles.findIndex((t) => t.startsWith("create deb3's ifb device"));
    const tc = titles.findIndex((t) => t.startsWith("impair deb3's tap in the host namespace: NIC 0 (rate 10mbit, both)"));
    const plug = titles.findIndex((t) => t.startsWith("plug deb3's tap"));
    const bound = titles.findIndex((t) => t === "wait until OVN binds deb3's port");
    assert.ok(move >= 0 && move < plug && plug < ifb && ifb < tc && tc < bound, `${[move, plug, ifb, tc, bound]}`);
    const plugArgv = (st[plug]!.do as { argv: string[] }).argv;
    assert.deepEqual(plugArgv.slice(-5), ['--', '--id=@noop', 'create', 'QoS', 'type=linux-noop']);
    assert.ok(plugArgv.join(' ').includes(`-- set Port ${ovnTap('seed', 'deb3', 0)} qos=@noop`));
    const tap = ovnTap('seed', 'deb3', 0);
    const i = ifbName('seed', 'deb3', 0);
    assert.deepEqual(st[ifb]!.do, { kind: 'exec', argv: ['ip', '-batch', '-'], input: `link add name ${i} type ifb\nlink set dev ${i} alias qnet:lab=seed up\n` });
    assert.deepEqual(st[ifb]!.undo, { kind: 'exec', argv: ['ip', '-force', '-batch', '-'], input: `link delete dev ${i}\n` });
    const run = st[tc]!.do as { argv: string[]; input: string };
    assert.deepEqual(run.argv, ['tc', '-batch', '-'], 'in the host namespace');
    assert.match(run.input, new RegExp(`qdisc replace dev ${tap} root handle 1: tbf rate 10000000bit`));
    assert.match(run.input, new RegExp(`filter add dev ${tap} parent ffff: .* mirred egress redirect dev ${i}`));
    // No other node gets impairment steps; the bridge lab's impairments stay in its namespace.
    assert.equal(titles.filter((t) => /^impair /.test(t)).length, 1);
    // What the guest sends cannot be impaired on the userspace datapath (OVS reads the tap before tc); on the kernel's it can.
    const nic = imp.nodes[2]!.nics[0]!;
    assert.match(fabricOf(imp).impairmentRefusal(imp, nic, nic.impair!)!, /^both: on OVN's userspace datapath .* use direction ingress/);
    assert.equal(fabricOf(imp).impairmentRefusal(imp, nic, { ...nic.impair!, direction: 'ingress' }), undefined);
    const sys = onOvn(parseTopology(`${read('seed-lab.yaml')}fabric: ovn\n`, 'seed-lab.yaml'), 'system');
    assert.equal(fabricOf(sys).impairmentRefusal(sys, sys.nodes[2]!.nics[0]!, nic.impair!), undefined);
  });
  test('per-NIC commands on OVN: taps in the host namespace; a network is captured from a mirror of its ports (across hosts: refused, naming its NICs)', () => {
    assert.equal(fabricOf(lab).tapNamespace(lab), undefined);
    const bridgeLab = parseTopology(read('seed-lab.yaml'), 'seed-lab.yaml');
    assert.equal(fabricOf(bridgeLab).tapNamespace(bridgeLab), 'qnet-seed');
    assert.deepEqual(captureSource(lab, 'deb2'), { kind: 'iface', iface: ovnTap('seed', 'deb2', 0), what: 'deb2 eth0' });
    const src = captureSource(lab, 'lan');
    assert.equal(src.kind, 'mirror');
    assert.ok(src.kind === 'mirror' && src.hostSide, 'lan has an address: its host side is mirrored too');
    const m = mirrorCapture(lab, lab.networks[0]!, true, '4242');
    assert.deepEqual(m.ports, [ovnTap('seed', 'deb1', 1), ovnTap('seed', 'deb2', 0), ovnTap('seed', 'deb3', 0), hostSideVeth('seed', 'lan')]);
    assert.match(m.port, /^qc[0-9a-f]{10}$/);
    assert.notEqual(mirrorCapture(lab, lab.networks[0]!, true, '4243').port, m.port, 'two captures of one network: two ports');
    // One transaction: the port (marked with the lab), the ports present on br-int selected both ways, the mirror marked.
    const add = mirrorAddArgv(m, 'seed', [ovnTap('seed', 'deb2', 0), ovnTap('seed', 'deb3', 0), 'other']).join(' ');
    assert.match(add, new RegExp(`add-port br-int ${m.port} -- set Interface ${m.port} type=internal external_ids:qnet-lab="seed"`));
    assert.match(add, /--id=@p0 get Port qo\S+ -- --id=@p1 get Port qo\S+ -- --id=@out get Port qc\S+ -- --id=@m create Mirror name="qnet\.seed\.capture\.lan\.[0-9a-f]{10}" select_src_port=@p0,@p1 select_dst_port=@p0,@p1 output_port=@out external_ids:qnet-lab="seed" -- add Bridge br-int mirrors @m$/);
    assert.doesNotMatch(add, new RegExp(ovnTap('seed', 'deb1', 1)), 'a port not on br-int is not asked for');
    assert.deepEqual(mirrorDelArgv(['u1'], m.port).slice(2), ['--', '--if-exists', 'del-port', 'br-int', m.port, '--', 'remove', 'Bridge', 'br-int', 'mirrors', 'u1']);
    assert.deepEqual(findMirrorsArgv({ lab: 'seed' }).slice(-2), ['Mirror', 'external_ids:qnet-lab="seed"']);
    const two = parseTopology(SEED_TWO_HOSTS, 'seed-two-hosts.yaml');
    assert.throws(
      () => captureSource(two, 'lan'),
      (e: Error & { exitCode?: number }) => e.exitCode === 2 && /network lan of lab seed spans hosts a, b: .*`qnet capture seed NODE:NIC`; its NICs: deb1:1, deb2:0, deb3:0/.test(e.message),
    );
  });
  test('discovery: the labs named by qnet-lab markers in external_ids, quoted or not', () => {
    assert.deepEqual(labsInExternalIds('iface-id="qnet.a.nic.x.0" qnet-lab=a\n\nqnet-lab="b-2" qnet-row="network lan"\nother=1 qnet-labx=c\nqnet-lab=a\n'), ['a', 'b-2']);
    assert.deepEqual(labsInExternalIds(''), []);
  });
  test('status: which of the lab\'s logical ports OVN has bound, from ovn-nbctl\'s CSV (up empty until OVN sets it)', () => {
    assert.deepEqual([...parseBound('qnet.a.nic.p.0,true\n"qnet.a.nic.q.0",false\nqnet.a.host.lan,\n\n')], [['qnet.a.nic.p.0', true], ['qnet.a.nic.q.0', false], ['qnet.a.host.lan', false]]);
  });
  test('not yet on OVN (exit 2, with its path): several hosts; nat, routed, forwards and impairments are made', () => {
    const nat = parseTopology(`${read('nat-dhcp.yaml')}fabric: ovn\n`, 'nat-dhcp.yaml');
    assert.equal(notYetOnOvn(nat), undefined);
    assert.equal(notYetOnOvn(parseTopology(`${read('nat-dhcp.yaml').replace('mode: nat', 'mode: routed')}fabric: ovn\n`, 'r.yaml')), undefined);
    const e = notYetOnOvn(parseTopology(SEED_TWO_HOSTS, 's.yaml'));
    assert.ok(e instanceof UserError);
    assert.match(e.message, /hosts: labs over several hosts/);
    assert.equal(notYetOnOvn(written), undefined);
  });
  describe('a nat lab with DHCP and a port forward on OVN', () => {
    const natWritten = parseTopology(`${read('nat-dhcp.yaml')}fabric: ovn\n`, 'nat-dhcp.yaml');
    const nat = onOvn(natWritten, 'netdev');
    const natOvn = { chassis: { local: 'h1' }, placement: { win: 'local', deb: 'local' }, datapath: 'netdev' as const, nb: [] };
    const natSteps = planUp(nat, { ...base, ovn: natOvn, uplink: { net: 0x64400008 }, hostForwarding: true });
    const natText = formatPlan(natSteps);
    test('golden: the host side on br-int holds the gateway; the uplink, routes, forwarding and the host table as on bridges', () => {
      golden('ovn-nat-plan.txt', natText + '\n');
    });
    test('the uplink steps are the bridge fabric\'s own, after the host side is bound; no dnsmasq, no router in OVN', () => {
      const bridgeLab = parseTopology(read('nat-dhcp.yaml'), 'nat-dhcp.yaml');
      const bridgeText = formatPlan(planUp(bridgeLab, { ...base, uplink: { net: 0x64400008 }, hostForwarding: true }));
      const uplink = (t: string) => t.slice(t.indexOf('create the uplink'), t.indexOf('table ip qnet-')).replace(/^ *\d+\. /gm, '');
      assert.ok(uplink(natText).length > 100);
      assert.equal(uplink(natText), uplink(bridgeText));
      assert.ok(natText.indexOf('wait until OVN binds the host side') < natText.indexOf('create the uplink'));
      assert.doesNotMatch(natText, /dnsmasq|lr-add|lb-add/);
      assert.match(natText, /masquerade/);
      assert.match(natText, /tcp dport 8080 dnat to 172\.16\.1\.2:80/);
      assert.match(natText, /link add name qh[0-9a-f]{10} type veth peer name br0 netns qnet-natlab/);
    });
    test('the host table and the uplink veth are undone by a rollback', () => {
      const t = natSteps.find((x) => x.title.startsWith('load the host firewall table'))!;
      assert.ok(t.undo);
      assert.ok(natSteps.find((x) => x.title.startsWith('create the uplink'))!.undo);
    });
  });
});

describe('the northbound batch', () => {
  const lab = parseTopology(SEED_TWO_HOSTS, 'seed.yaml');
  const cmds = renderNbUp(lab, { placement: { deb1: 'a', deb2: 'a', deb3: 'b' }, mtu: 1442 });
  const natlab = parseTopology(NAT_GATEWAY_B, 'natlab.yaml');
  const natCmds = renderNbUp(natlab, { placement: { win: 'a', deb: 'a' }, mtu: 1500 });

  test('every row it makes carries the lab\'s marker and says what it is', () => {
    for (const batch of [cmds, natCmds]) {
      const L = batch === cmds ? 'seed' : 'natlab';
      const named = batch.filter((c) => ['ls-add', 'lr-add'].includes(c[0]!)).map((c) => c[1]!);
      named.push(...batch.filter((c) => ['lsp-add', 'lrp-add'].includes(c[0]!)).map((c) => c[2]!));
      named.push(...batch.filter((c) => c[0] === 'lb-add').map((c) => c[1]!));
      assert.ok(named.length > 3);
      for (const row of named) {
        const set = batch.find((c) => c[0] === 'set' && c[2] === row);
        assert.ok(set, `${row} is marked`);
        assert.ok(set.includes(`external_ids:qnet-lab="${L}"`), `${row}: ${set.join(' ')}`);
        assert.ok(set.some((a) => a.startsWith('external_ids:qnet-row=')), row);
      }
      for (const c of batch.filter((x) => x.includes('create'))) assert.ok(c.includes(`external_ids:qnet-lab="${L}"`), c.join(' '));
    }
  });
  test('static addresses are the ports\' addresses, with OVN\'s DHCP (the node\'s gateway as its router)', () => {
    assert.deepEqual(cmds.find((c) => c[0] === 'lsp-set-addresses' && c[1] === 'qnet.seed.nic.deb2.0'), ['lsp-set-addresses', 'qnet.seed.nic.deb2.0', 'de:ad:be:ef:00:02 192.168.1.2']);
    const dhcp = cmds.filter((c) => c.includes('DHCP_Options'));
    assert.equal(dhcp.length, 2, 'one row for deb2 and deb3 (via deb1), one for deb1 (no gateway)');
    assert.ok(dhcp[0]!.includes('options:router="192.168.1.254"') || dhcp[1]!.includes('options:router="192.168.1.254"'));
    for (const d of dhcp) for (const k of ['server_id', 'server_mac', 'lease_time', 'dns_server', 'mtu']) assert.ok(d.some((a) => a.startsWith(`options:${k}=`)), k);
  });
  test('a DHCP range is OVN\'s dynamic addresses, its subnet and what lies outside the range excluded', () => {
    const ls = natCmds.find((c) => c[0] === 'set' && c[2] === 'qnet.natlab.net.lan')!;
    assert.ok(ls.includes('other_config:subnet="172.16.1.0/24"'));
    assert.ok(ls.includes('other_config:exclude_ips="172.16.1.1 172.16.1.101..172.16.1.254"'));
    assert.deepEqual(natCmds.find((c) => c[0] === 'lsp-set-addresses' && c[1] === 'qnet.natlab.nic.deb.0')!.slice(2), [`${natlab.nodes[1]!.nics[0]!.mac} dynamic`]);
    assert.ok(natCmds.some((c) => c.includes('options:lease_time="43200"')), 'lease 12h');
  });
  test('antispoof: MAC and IP, the MAC alone for a router guest; none where antispoof is off', () => {
    assert.equal(cmds.filter((c) => c[0] === 'lsp-set-port-security').length, 0, 'a bridge network has antispoof off by default');
    const on = parseTopology(SEED_TWO_HOSTS.replace('address: 192.168.1.100', 'address: 192.168.1.100\n    antispoof: true'), 'x');
    const sec = renderNbUp(on, { placement: { deb1: 'a', deb2: 'a', deb3: 'b' }, mtu: 1442 }).filter((c) => c[0] === 'lsp-set-port-security');
    assert.deepEqual(sec.map((c) => c.slice(1)), [
      ['qnet.seed.nic.deb1.1', 'de:ad:be:ef:00:01'],
      ['qnet.seed.nic.deb2.0', 'de:ad:be:ef:00:02 192.168.1.2'],
      ['qnet.seed.nic.deb3.0', 'de:ad:be:ef:00:03 192.168.1.3'],
    ]);
  });
  test('dhcpGuard is a drop ACL on the switch', () => {
    const acl = natCmds.find((c) => c.includes('ACL'))!;
    assert.ok(acl.includes('action=drop') && acl.includes('direction=from-lport'));
    assert.ok(natCmds.some((c) => c[0] === 'add' && c[3] === 'acls'));
  });
  test('nat and routed: no logical router; the host side on the gateway host is the guests\' router, DHCP names it', () => {
    assert.deepEqual(natCmds.find((c) => c[0] === 'lsp-set-options' && c[1] === 'qnet.natlab.host.lan'), ['lsp-set-options', 'qnet.natlab.host.lan', 'requested-chassis=b']);
    assert.ok(natCmds.some((c) => c.includes('DHCP_Options') && c.includes('options:router="172.16.1.1"')));
    const routed = parseTopology(read('nat-dhcp.yaml').replace('mode: nat', 'mode: routed') + 'fabric: ovn\n', 'r');
    const r = renderNbUp(routed, { placement: { win: 'local', deb: 'local' }, mtu: 1500 });
    for (const batch of [natCmds, r]) assert.ok(!batch.some((c) => ['lr-add', 'lb-add'].includes(c[0]!) || c.includes('NAT')));
    assert.ok(r.some((c) => c[0] === 'lsp-add' && c[2] === 'qnet.natlab.host.lan'), 'routed: the same host side');
  });
  test('the host side of a bridge network is a port on the gateway host', () => {
    assert.deepEqual(cmds.find((c) => c[0] === 'lsp-set-options' && c[1] === 'qnet.seed.host.lan'), ['lsp-set-options', 'qnet.seed.host.lan', 'requested-chassis=a']);
  });
  test('one ovn-nbctl run: each command after a --', () => {
    const argv = nbArgv([['ls-add', 'x'], ['set', 'Logical_Switch', 'x', 'external_ids:qnet-lab="l"']], ['--db=unix:/x']);
    assert.deepEqual(argv, ['ovn-nbctl', '--db=unix:/x', '--', 'ls-add', 'x', '--', 'set', 'Logical_Switch', 'x', 'external_ids:qnet-lab="l"']);
  });
  test('a node that is not placed is a bug, said as such', () => {
    assert.throws(() => renderNbUp(lab, { placement: { deb1: 'a' }, mtu: 1500 }), /deb2 of lab seed is not placed/);
  });
  test('lease times', () => {
    assert.deepEqual(['12h', '30m', '3600', '2d', '45s', 'infinite', undefined].map(leaseSeconds), [43200, 1800, 3600, 172800, 45, 4294967295, 3600]);
  });
  test('the batch text quotes what a shell would split', () => {
    const t = formatNbBatch([['set', 'T', 'r', 'external_ids:qnet-row="nic deb2 0"']] as NbCommand[]);
    assert.equal(t, `set T r 'external_ids:qnet-row="nic deb2 0"'\n`);
  });
});

describe('MTU over Geneve', () => {
  test('1500 when the underlay has room for the 58 bytes, else what fits', () => {
    assert.deepEqual([9000, 1600, 1558, 1557, 1500].map(guestMtu), [1500, 1500, 1500, 1499, 1442]);
  });
  test('a lab takes its smallest underlay; one host crosses no tunnel', () => {
    assert.equal(labGuestMtu([1500]), 1500);
    assert.equal(labGuestMtu([]), 1500);
    assert.equal(labGuestMtu([1600, 1500]), 1442);
  });
});

describe('hosts in the resolved lab', () => {
  test('a lab with neither hosts nor fabric resolves exactly as before (no new keys)', () => {
    const lab = parseTopology(read('seed-lab.yaml'), 'seed.yaml');
    for (const k of ['fabric', 'hosts', 'ovn']) assert.ok(!(k in lab), k);
    for (const node of lab.nodes) assert.ok(!('host' in node));
  });
  test('fabric: ovn without hosts is this machine, its own central and gateway', () => {
    const lab = parseTopology(`${read('seed-lab.yaml')}fabric: ovn\n`, 'seed.yaml');
    assert.deepEqual(lab.hosts, [{ name: 'local', ssh: { kind: 'local' } }]);
    assert.deepEqual(lab.ovn, { central: 'local', gateway: 'local' });
  });
  test('hosts: underlay from the ssh address, or as given; central and gateway', () => {
    const lab = parseTopology(SEED_TWO_HOSTS, 'x');
    assert.equal(lab.fabric, 'ovn');
    assert.deepEqual(lab.hosts!.map((h) => [h.name, h.underlay]), [['a', (192 << 24 >>> 0) + (2 << 8) + 10], ['b', (10 << 24) + (1 << 16) + 2]]);
    assert.deepEqual(lab.ovn, { central: 'a', gateway: 'a' });
    const ext = parseTopology(SEED_TWO_HOSTS.replace('ovn: { central: a }', 'ovn: { nb: "tcp:192.0.2.5:6641,tcp:192.0.2.6:6641", sb: "tcp:192.0.2.5:6642" }'), 'x');
    assert.deepEqual(ext.ovn, { nb: 'tcp:192.0.2.5:6641,tcp:192.0.2.6:6641', sb: 'tcp:192.0.2.5:6642', gateway: 'a' });
  });
  test('ssh targets', () => {
    assert.deepEqual(parseSshTarget('root@192.0.2.10:2222'), { kind: 'ssh', user: 'root', host: '192.0.2.10', port: 2222 });
    assert.deepEqual(parseSshTarget('lab1.example'), { kind: 'ssh', host: 'lab1.example' });
    assert.deepEqual(parseSshTarget('local'), { kind: 'local' });
    for (const bad of ['-oProxyCommand=sh', 'a b', 'a;b', 'a|b', '$(x)', '`x`', 'a\nb', "a'b", 'a"b', 'h:', 'u@', '@h', 'root@[::1]', 'a&b', 'a>b', '*', 'h:-1', 'a\tb'])
      assert.equal(typeof parseSshTarget(bad), 'string', bad);
  });
  test('any string: a target made of safe characters only, or a reason', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        const t = parseSshTarget(s);
        if (typeof t === 'string') return true;
        if (t.kind === 'local') return s === 'local';
        return /^[A-Za-z0-9_.@:-]+$/.test(s) && !s.startsWith('-') && !t.host.startsWith('-');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('placement', () => {
  const lab = (nodes: string, hosts = '  a: { ssh: root@192.0.2.10 }\n  b: { ssh: root@192.0.2.11 }\n') =>
    parseTopology(`name: p\nhosts:\n${hosts}nodes:\n${nodes}`, 'p.yaml');
  const mem = (m: number) => m + QEMU_OVERHEAD_MIB;

  test('pinned nodes stay where the topology says; the rest are packed largest first on the first host that holds them', () => {
    const l = lab('  x: { memory: 512 }\n  y: { memory: 1024 }\n  z: { memory: 256, host: b }\n  w: { memory: 512 }\n');
    const p = placeNodes(l, { a: { memory: mem(1024) + mem(512), cpus: 8 }, b: { memory: 4096, cpus: 8 } });
    assert.deepEqual(p.hosts, { z: 'b', y: 'a', w: 'a', x: 'b' });
    assert.deepEqual(p.unbounded, []);
  });
  test('CPUs count as well as memory', () => {
    const l = lab('  x: { cpus: 4 }\n  y: { cpus: 4 }\n');
    assert.deepEqual(placeNodes(l, { a: { memory: 8192, cpus: 4 }, b: { memory: 8192, cpus: 4 } }).hosts, { x: 'a', y: 'b' });
  });
  test('nothing fits: a UserError naming the node, its needs and what each host has left', () => {
    const l = lab('  big: { memory: 4096 }\n  small: {}\n');
    assert.throws(
      () => placeNodes(l, { a: { memory: 1024, cpus: 8 }, b: { memory: 2048, cpus: 8 } }),
      (e: unknown) =>
        e instanceof UserError &&
        /node big needs 4160 MiB and 1 CPUs/.test(e.message) &&
        /a: 1024 MiB and 8 CPUs; b: 2048 MiB and 8 CPUs/.test(e.message) &&
        /add a host/.test(e.message),
    );
  });
  test('pinned nodes that overflow their host are named', () => {
    const l = lab('  x: { memory: 2048, host: a }\n  y: { memory: 2048, host: a }\n');
    assert.throws(() => placeNodes(l, { a: { memory: 3000, cpus: 8 } }), /the nodes pinned to host a \(x, y\) need 4224 MiB and 2 CPUs; it holds 3000 MiB and 8 CPUs/);
  });
  test('a host whose capacity is not known takes what comes, and is named', () => {
    const l = lab('  x: { memory: 4096 }\n');
    const p = placeNodes(l, { a: { memory: 100, cpus: 1 } });
    assert.deepEqual(p, { hosts: { x: 'b' }, unbounded: ['b'] });
    assert.match(formatPlacement(l, p, { a: { memory: 100, cpus: 1 } }), /host b: x; 4160 MiB and 1 CPUs \(capacity not observed\)/);
  });
  test('capacity: what the topology grants within what is observed; CPUs observed are a preference, declared a bound', () => {
    const l = lab('  x: {}\n', '  a: { ssh: local, memory: 2048 }\n  b: { ssh: root@192.0.2.11 }\n  c: { ssh: root@192.0.2.12, cpus: 3 }\n');
    const facts = { memoryMiB: 8192, cpus: 2 };
    assert.deepEqual(capacityOf(l.hosts![0]!, facts), { memory: 2048, cpus: 2 * CPU_OVERCOMMIT, cpusSoft: true });
    assert.deepEqual(capacityOf(l.hosts![1]!, facts), { memory: 8192 - HOST_RESERVE_MIB, cpus: 2 * CPU_OVERCOMMIT, cpusSoft: true });
    assert.deepEqual(capacityOf(l.hosts![2]!, facts), { memory: 8192 - HOST_RESERVE_MIB, cpus: 3 });
    assert.deepEqual(capacityOf(l.hosts![0]!), { memory: 2048, cpus: Infinity });
    assert.equal(capacityOf(l.hosts![1]!), undefined);
  });

  test("20 guests on two 2-core hosts (observed): placed by memory, the hosts' CPUs over-committed and said so; a declared cpus: stays a bound", () => {
    const l = lab(Array.from({ length: 20 }, (_, i) => `  g${i}: {}\n`).join(''));
    const facts = { memoryMiB: 8192, cpus: 2 };
    const cap = { a: capacityOf(l.hosts![0]!, facts), b: capacityOf(l.hosts![1]!, facts) };
    const p = placeNodes(l, cap);
    assert.equal(Object.keys(p.hosts).length, 20);
    const on = (h: string) => Object.values(p.hosts).filter((x) => x === h).length;
    assert.deepEqual([on('a'), on('b')], [10, 10], 'first the 8 vCPUs each host is guessed to hold, then the one with most CPUs left');
    assert.deepEqual(p.overcommitted, ['a', 'b']);
    assert.match(formatPlacement(l, p, cap), /host a: .*; 1920 MiB and 10 CPUs of 7680 MiB and 8 CPUs \(CPUs over-committed: its guests share its cores\)/);
    const bound = lab(Array.from({ length: 20 }, (_, i) => `  g${i}: {}\n`).join(''), '  a: { ssh: root@192.0.2.10, cpus: 8 }\n  b: { ssh: root@192.0.2.11, cpus: 8 }\n');
    assert.throws(() => placeNodes(bound, { a: capacityOf(bound.hosts![0]!, facts), b: capacityOf(bound.hosts![1]!, facts) }), /node g\d+ needs 192 MiB and 1 CPUs \(its memory and 64 MiB for QEMU\); no host has that left \(a: 6144 MiB and 0 CPUs; b: 6144 MiB and 0 CPUs\)/);
    // Memory stays a bound whatever the CPUs.
    const big = lab('  x: { memory: 9000 }\n');
    assert.throws(() => placeNodes(big, { a: capacityOf(big.hosts![0]!, facts), b: capacityOf(big.hosts![1]!, facts) }), /node x needs 9064 MiB/);
  });

  // Random labs and capacities: either every node is placed within every host's capacity (pinned ones where pinned),
  // the same whatever order the nodes are listed in, or a UserError says what does not fit.
  test('property: within capacity, pinned respected, independent of the order of the nodes', () => {
    const hostNames = ['a', 'b', 'c'];
    const nodeArb = fc.record({
      memory: fc.integer({ min: 104, max: 4096 }),
      cpus: fc.integer({ min: 1, max: 8 }),
      host: fc.option(fc.constantFrom(...hostNames), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.array(nodeArb, { minLength: 1, maxLength: 20 }),
        fc.array(fc.record({ memory: fc.integer({ min: 0, max: 16384 }), cpus: fc.integer({ min: 0, max: 32 }) }), { minLength: 3, maxLength: 3 }),
        fc.integer(),
        (specs, caps, seed) => {
          const nodes: ResolvedNode[] = specs.map((s, i) => ({ name: `n${i}`, memory: s.memory, cpus: s.cpus, nics: [], ...(s.host ? { host: s.host } : {}) }));
          const hosts = hostNames.map((name) => ({ name, ssh: { kind: 'local' as const } }));
          const capacity = Object.fromEntries(hostNames.map((h, i) => [h, caps[i]!]));
          const base: ResolvedLab = { name: 'p', netns: 'qnet-p', networks: [], nodes, forwards: [], fabric: 'ovn', hosts, ovn: { gateway: 'a' } };
          let placed: Record<string, string>;
          try {
            placed = placeNodes(base, capacity).hosts;
          } catch (e) {
            assert.ok(e instanceof UserError);
            return;
          }
          for (const h of hostNames) {
            const on = nodes.filter((n) => placed[n.name] === h);
            assert.ok(on.reduce((s, n) => s + n.memory + QEMU_OVERHEAD_MIB, 0) <= capacity[h]!.memory);
            assert.ok(on.reduce((s, n) => s + n.cpus, 0) <= capacity[h]!.cpus);
          }
          for (const n of nodes) if (n.host) assert.equal(placed[n.name], n.host);
          assert.equal(Object.keys(placed).length, nodes.length);
          const shuffled = [...nodes].sort((x, y) => ((x.name.charCodeAt(1) * 31 + seed) % 7) - ((y.name.charCodeAt(1) * 31 + seed) % 7));
          assert.deepEqual(placeNodes({ ...base, nodes: shuffled }, capacity).hosts, placed);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('the CLI on a lab on OVN (nothing on the host is touched: the refusal comes before anything is observed)', () => {
  const qnet = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin', 'qnet.js'), ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NO_COLOR: '1' } });
  const remote = SEED_TWO_HOSTS.replace('underlay: 10.1.0.2 }', 'underlay: 10.1.0.2, memory: 1024, cpus: 4 }').replace('ssh: root@192.0.2.10', 'ssh: root@192.0.2.10, memory: 2048, cpus: 4');
  let dir = '';
  const file = (name: string, text: string) => {
    dir ||= mkdtempSync(path.join(tmpdir(), 'qnet-ovn-cli-'));
    const f = path.join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  test('validate accepts hosts, ovn and host', () => {
    const r = qnet('validate', file('ok.yaml', remote));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /on OVN: hosts a \(root@192\.0\.2\.10\), b \(root@192\.0\.2\.11\); central a, gateway a/);
  });
  test('up --dry-run prints the placement and the northbound batch', () => {
    const r = qnet('up', '--dry-run', file('ok.yaml', remote));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^plan for lab seed on OVN \(2 hosts; central a; gateway a\); nothing was changed$/m);
    assert.match(r.stdout, /^host a: deb1 \(pinned\), deb2; 384 MiB and 2 CPUs of 2048 MiB and 4 CPUs$/m);
    assert.match(r.stdout, /^host b: deb3 \(pinned\); 192 MiB and 1 CPUs of 1024 MiB and 4 CPUs$/m);
    assert.match(r.stdout, /^lsp-set-options qnet\.seed\.nic\.deb3\.0 requested-chassis=b$/m);
  });
  test('up --dry-run of a lab that does not fit: exit 2, what does not fit', () => {
    const r = qnet('up', '--dry-run', file('big.yaml', remote.replace('  deb2:\n', '  deb2:\n    memory: 4096\n')));
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /node deb2 needs 4160 MiB and 1 CPUs/);
  });
  test('up over several hosts, none reachable: exit 1 naming each host and what to check, nothing made', () => {
    // A stand-in ssh (a tiny real program on PATH) that fails as OpenSSH does when nothing listens: no packet leaves.
    const bin = path.join(dir || (dir = mkdtempSync(path.join(tmpdir(), 'qnet-ovn-cli-'))), 'bin');
    spawnSync('mkdir', ['-p', bin]);
    writeFileSync(path.join(bin, 'ssh'), '#!/bin/sh\necho "ssh: connect to host 192.0.2.x port 22: Connection refused" >&2\nexit 255\n', { mode: 0o755 });
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'qnet.js'), 'up', file('ok.yaml', remote)], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NO_COLOR: '1', PATH: `${bin}:${process.env.PATH}`, QNET_RUN_DIR: path.join(dir, 'run') },
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /hosts\.a \(root@192\.0\.2\.10\) cannot be reached over SSH \(ssh: connect to host .* Connection refused\)/);
    assert.match(r.stderr, /hosts\.b \(root@192\.0\.2\.11\) cannot be reached over SSH/);
    assert.match(r.stderr, /nothing was made or changed on any host/);
    assert.equal(r.stdout, '');
  });
  test('up over several hosts on an OVN that runs already: exit 2 with the path and what to give, no host asked', () => {
    // The same stand-in ssh records every call: none may be made.
    const bin = path.join(dir || (dir = mkdtempSync(path.join(tmpdir(), 'qnet-ovn-cli-'))), 'bin2');
    spawnSync('mkdir', ['-p', bin]);
    const calls = path.join(dir, 'ssh-calls');
    writeFileSync(path.join(bin, 'ssh'), `#!/bin/sh\necho "$@" >> ${calls}\nexit 255\n`, { mode: 0o755 });
    const text = remote.replace('ovn: { central: a }', 'ovn: { nb: "tcp:192.0.2.10:6641", sb: "tcp:192.0.2.10:6642" }');
    assert.notEqual(text, remote);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'qnet.js'), 'up', file('external.yaml', text)], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NO_COLOR: '1', PATH: `${bin}:${process.env.PATH}`, QNET_RUN_DIR: path.join(dir, 'run2') },
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /ovn\.nb: a lab over several hosts on an OVN that runs already is not made yet; give "ovn: \{ central: HOST \}"/);
    assert.equal(existsSync(calls), false, 'no host was asked');
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
});
