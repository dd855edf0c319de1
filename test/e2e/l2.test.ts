// End-to-end: layer 2 beyond a plain bridge, with real guests under TCG in the lab's namespace. Transparent links
// (two taps joined by tc mirred) carry what a bridge swallows: two guests bond their NICs with LACP (802.3ad), and
// the guest across a link sees its partner while the one across a plain bridge sees none. VLAN sub-interfaces
// (eth0.100) talk across a link, a capture of the link shows their 802.1Q tags, `qnet check` measures what the
// model predicts over VLANs, an impairment on a link's end and a node restarted on a link work, and `down` leaves
// nothing. VLAN-aware networks (the bridge's VLAN filtering): on a kernel without it, `up` refuses the lab before
// anything is made; on one with it, the router on a stick of examples/vlans.yaml routes 10 to 20, keeps 30 apart.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { QNET, ROOT, labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

const TOPO = (lab: string, yMemory = 128) => ({
  name: lab,
  networks: {
    l1: { mode: 'link' },
    lacp: { mode: 'link' },
    plain: { subnet: '10.96.0.0/24' },
  },
  nodes: {
    x: {
      nics: [
        { network: 'l1', ip: '10.94.0.1/30', vlans: [{ id: 100, ip: '10.94.100.1/24' }, { id: 200, ip: '10.94.200.1/24' }] },
        // LACP runs on full-duplex ports only: e1000 says it is one (virtio-net reports no speed or duplex).
        { network: 'lacp', model: 'e1000' },
        { network: 'plain', ip: '10.96.0.1', model: 'e1000' },
      ],
    },
    y: {
      memory: yMemory,
      nics: [{ network: 'l1', ip: '10.94.0.2/30', vlans: [{ id: 100, ip: '10.94.100.2/24' }] }, { network: 'lacp', model: 'e1000' }, { network: 'plain', ip: '10.96.0.2', model: 'e1000' }],
    },
  },
});

describe('transparent links and VLAN sub-interfaces', () => {
  const lab = labName('l2');
  let before0: HostSnapshot;
  let file = '';
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-l2-'));
  const exec = async (n: string, cmd: string, ok = true) => {
    const r = await qnet(['exec', lab, n, '--', 'sh', '-c', cmd]);
    if (ok) assert.equal(r.code, 0, `${n}: ${cmd}: ${r.stdout}${r.stderr}`);
    return r;
  };

  before(async () => {
    before0 = await snapshot();
    file = writeTopology(TOPO(lab));
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /join the taps of 2 links end to end \(tc mirred, one tc -batch\)/);
  });
  after(async () => {
    await qnet(['down', lab]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('status shows each link as its two taps, and the sub-interfaces with their addresses', async () => {
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as {
      networks: Array<{ name: string; mode: string; present: boolean; taps: string[] }>;
      nodes: Array<{ name: string; nics: Array<{ vlans?: Array<{ name: string; addresses: string[] }> }> }>;
    };
    const l1 = st.networks.find((n) => n.name === 'l1')!;
    assert.deepEqual([l1.mode, l1.present, l1.taps.sort()], ['link', true, ['t-x-0', 't-y-0']]);
    assert.deepEqual(st.nodes.find((n) => n.name === 'x')!.nics[0]!.vlans, [
      { name: 'eth0.100', id: 100, addresses: ['10.94.100.1/24'] },
      { name: 'eth0.200', id: 200, addresses: ['10.94.200.1/24'] },
    ]);
    const text = (await qnet(['status', lab])).stdout;
    assert.match(text, /10\.94\.0\.1\/30 eth0\.100: 10\.94\.100\.1\/24 eth0\.200: 10\.94\.200\.1\/24/);
    assert.match(text, /l1\s+\(link: tc mirred\)/);
    // In the guest: the sub-interface exists, tagged 100, with its address.
    assert.match((await exec('x', 'cat /proc/net/vlan/config')).stdout, /eth0\.100\s+\| 100\s+\| eth0\neth0\.200\s+\| 200\s+\| eth0/);
  });

  test('guests ping across the link untagged and in VLAN 100; a capture of the link shows the 802.1Q tags', async () => {
    await exec('y', 'ping -c 2 -W 3 10.94.0.1');
    const pcap = path.join(dir, 'l1.pcap');
    const cap = spawn(process.execPath, [QNET, 'capture', lab, 'l1', '-w', pcap, '--count', '4', '--filter', 'vlan 100 and icmp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    cap.stderr.on('data', (d) => (err += d));
    const done = new Promise<number | null>((r) => cap.once('close', r));
    for (let i = 0; i < 100 && !/capturing network l1/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    await exec('y', 'ping -c 4 -i 0.3 -W 3 10.94.100.1');
    assert.equal(await done, 0, err);
    assert.match(err, /network l1 \(at x eth0\)/);
    const lines = spawnSync('tcpdump', ['-e', '-n', '-r', pcap], { encoding: 'utf8' }).stdout.trim().split('\n');
    assert.equal(lines.length, 4, lines.join('\n'));
    for (const l of lines) assert.match(l, /ethertype 802\.1Q \(0x8100\), length \d+: vlan 100, p 0, ethertype IPv4 \(0x0800\), 10\.94\.100\.[12] > 10\.94\.100\.[21]: ICMP echo/);
  });

  test('qnet check measures what the model predicts over the link and its VLANs (VLAN 200 has no one at the other end)', async () => {
    const r = await qnet(['check', lab, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const rep = JSON.parse(r.stdout) as { cells: Array<{ from: string; to: string; probe: string; predicted?: { ok: boolean; reason?: string }; measured?: { ok: boolean } }>; disagreements: unknown[] };
    assert.deepEqual(rep.disagreements, []);
    const cell = (from: string, to: string) => rep.cells.find((c) => c.from === from && c.to === to && c.probe === 'ping')!;
    assert.deepEqual([cell('y', 'x:eth0.100').predicted?.ok, cell('y', 'x:eth0.100').measured?.ok], [true, true]);
    assert.deepEqual([cell('y', 'x:eth0.200').predicted?.ok, cell('y', 'x:eth0.200').measured?.ok], [false, false]);
  });

  test('LACP (802.3ad bonding, fast rate) finds its partner across a link, and none across a plain bridge', async () => {
    const bond = (b: string, nic: string) =>
      `B=/sys/class/net/${b}/bonding; [ -d $B ] || echo +${b} > /sys/class/net/bonding_masters; echo 802.3ad > $B/mode && echo fast > $B/lacp_rate && ip link set ${nic} down && echo +${nic} > $B/slaves && ip link set ${b} up`;
    for (const n of ['x', 'y']) await exec(n, `modprobe bonding && ${bond('bond0', 'eth1')} && ${bond('bond1', 'eth2')}`);
    const yMac = (await exec('y', 'cat /sys/class/net/bond0/address')).stdout.trim();
    // LACPDUs every second (fast rate): the partner is known within a few.
    let partner = '';
    for (let i = 0; i < 30 && !partner.includes(yMac); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      partner = (await exec('x', 'cat /proc/net/bonding/bond0')).stdout;
    }
    assert.match(partner, new RegExp(`details partner lacp pdu:[\\s\\S]*system mac address: ${yMac}`), partner);
    const plain = (await exec('x', 'cat /proc/net/bonding/bond1')).stdout;
    assert.match(plain, /details partner lacp pdu:[\s\S]*system mac address: 00:00:00:00:00:00/, plain);
  });

  test("an impairment on a link's end (100% loss of what x sends) stops its traffic, a conflicting one is refused, --clear restores it", async () => {
    assert.equal((await qnet(['impair', lab, 'x:eth0', '--loss', '100%'])).code, 0);
    assert.notEqual((await exec('y', 'ping -c 2 -W 1 10.94.0.1', false)).code, 0);
    const clash = await qnet(['impair', lab, 'y:eth0', '--rate', '1mbit', '--direction', 'ingress']);
    assert.equal(clash.code, 2, clash.stderr);
    assert.match(clash.stderr, /on link network "l1" what one end sends is what the other receives, and x eth0 has loss 100%, egress: clear it first/);
    assert.equal((await qnet(['impair', lab, 'x:eth0', '--clear'])).code, 0);
    await exec('y', 'ping -c 2 -W 3 10.94.0.1');
  });

  test('a node on a link restarted by a changed topology is joined to its peer again', async () => {
    const r = await qnet(['up', writeTopology(TOPO(lab, 136)), '--replace']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /restart changed nodes: y/);
    assert.match(r.stderr, /take the old redirects off the links whose ends are made again/);
    await exec('x', 'ping -c 2 -W 3 10.94.100.2');
    await exec('y', 'ping -c 2 -W 3 10.94.0.1');
  });

  test('down leaves nothing behind', async () => {
    const d = await qnet(['down', lab]);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await snapshot(), before0);
  });
});

describe('VLAN-aware networks (the bridge\'s VLAN filtering)', () => {
  const example = readFileSync(path.join(ROOT, 'examples', 'vlans.yaml'), 'utf8');
  const lab = labName('vlans');
  const file = writeTopology({ ...(parse(example) as object), name: lab });
  // What this kernel can do, asked the way qnet asks it (a bridge with filtering on, in a throwaway namespace).
  const ns = `qnet-e2e-vl-${process.pid}`;
  spawnSync('ip', ['netns', 'add', ns]);
  const capable = spawnSync('ip', ['-n', ns, 'link', 'add', 'v', 'type', 'bridge', 'vlan_filtering', '1']).status === 0;
  spawnSync('ip', ['netns', 'delete', ns]);

  test(capable ? 'the router on a stick routes VLAN 10 to 20, VLAN 30 stays apart, the trunk carries tags' : 'this kernel has no bridge VLAN filtering: up refuses the lab, says why, and makes nothing', async () => {
    const before0 = await snapshot();
    const doctor = (await qnet(['doctor'])).stdout;
    if (!capable) {
      assert.match(doctor, /VLANs \(bridge VLAN filtering\)\s+ok\s+this kernel has no bridge VLAN filtering/);
      const r = await qnet(['up', file]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /network sw has "vlans", and this kernel cannot make a bridge VLAN-aware: nothing was made\.\nVLAN-aware networks need the kernel's bridge VLAN filtering \(CONFIG_BRIDGE_VLAN_FILTERING/);
      assert.deepEqual(await snapshot(), before0);
      // What would be made is still shown.
      const dry = await qnet(['up', file, '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout + dry.stderr, /vlan add dev br-sw vid 10 pvid untagged self/);
      return;
    }
    assert.match(doctor, /VLANs \(bridge VLAN filtering\)\s+ok\s+usable/);
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    try {
      const exec = async (n: string, cmd: string) => qnet(['exec', lab, n, '--', 'sh', '-c', cmd]);
      assert.equal((await exec('a', 'ping -c 2 -W 3 10.0.20.2')).code, 0, 'a reaches b through r1');
      assert.notEqual((await exec('a', 'ping -c 2 -W 2 10.0.30.2')).code, 0, 'a does not reach c (VLAN 30)');
      const check = await qnet(['check', lab]);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      const tags = spawnSync('ip', ['netns', 'exec', `qnet-${lab}`, 'bridge', '-j', 'vlan', 'show'], { encoding: 'utf8' }).stdout;
      assert.match(tags, /"vlan":20/);
    } finally {
      assert.equal((await qnet(['down', lab])).code, 0);
    }
    assert.deepEqual(await snapshot(), before0);
  });
});
