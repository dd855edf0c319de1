// End-to-end: guests on a LAN through a host interface, bridged (wired) and MAC-NATed (an access point that knows
// one client MAC). The LAN is a namespace this test makes (DHCP server, router address, HTTP server); the uplink is
// a veth into it. The machine's real interfaces are never touched.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { ifaceState, labName, makeLan, qnet, sh, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

const tag = process.pid.toString(36).slice(-5);
const ping = (ns: string | null, ip: string) => sh([...(ns ? ['ip', 'netns', 'exec', ns] : []), 'busybox', 'ping', '-c', '2', '-W', '3', ip], false);

/** The guest's IPv4 address on eth0 (from `ip -o addr` in the guest). */
async function guestIp(lab: string, node: string): Promise<string> {
  const r = await qnet(['exec', lab, node, '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout);
  assert.ok(m, `${node} has no IPv4 address: ${r.stdout}${r.stderr}`);
  return m[1]!;
}

describe('bridged: a guest on the LAN of a wired uplink', () => {
  const lab = labName('brd');
  let lan: Awaited<ReturnType<typeof makeLan>>;
  let before0: HostSnapshot;
  let uplinkBefore: ReturnType<typeof ifaceState>;
  let upOut = '';

  before(async () => {
    lan = await makeLan(`b${tag}`, 81);
    before0 = await snapshot();
    uplinkBefore = ifaceState(lan.uplink);
    const file = writeTopology({
      name: lab,
      networks: { lan: { mode: 'bridged', uplink: lan.uplink } },
      nodes: { g: { nics: [{ network: 'lan', model: 'e1000', dhcp: true, mac: '00:26:c6:21:cf:02' }] } },
    });
    const r = await qnet(['up', file]);
    upOut = r.stderr;
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    try {
      const d = await qnet(['down', lab]);
      assert.equal(d.code, 0, d.stderr);
      assert.deepEqual(ifaceState(lan.uplink), uplinkBefore, 'the uplink is exactly as before: addresses, routes, master, MAC');
      assert.deepEqual(await snapshot(), before0, 'after down: no bridge, veth, namespace, process or file of the lab remains');
    } finally {
      lan?.stop();
    }
  });

  test('up warns that the guest is exposed to the whole LAN', () => {
    assert.match(upOut, /warning: networks\.lan: bridged guests are on .* LAN as themselves/);
  });

  test("the guest's address comes from the LAN's DHCP server; the LAN pings it; it fetches from the LAN server", async () => {
    const ip = await guestIp(lab, 'g');
    assert.match(ip, /^198\.18\.81\.(1[0-4]\d|150)$/);
    assert.match(sh(['cat', lan.leases]).stdout, new RegExp(`00:26:c6:21:cf:02 ${ip.replace(/\./g, '\\.')}`), "the LAN's own server leased it");
    assert.equal(ping(lan.ns, ip).code, 0, 'the LAN reaches the guest');
    const r = await qnet(['exec', lab, 'g', '--', 'wget', '-q', '-O', '-', `http://${lan.router}:8000/bridged`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lan-server/);
    assert.ok(lan.peers.includes(ip), `the LAN server saw the guest itself (${lan.peers})`);
  });

  test('the host keeps its LAN address and routes during the lab (moved to the bridge) and still reaches the LAN', () => {
    const found = JSON.parse(sh(['ip', '-j', 'addr', 'show', 'to', `${lan.hostIp}/32`]).stdout) as Array<{ ifname: string }>;
    assert.equal(found.length, 1);
    const bridge = found[0]!.ifname;
    assert.match(bridge, /^qb[0-9a-f]{8}$/);
    assert.equal(ifaceState(lan.uplink).master, bridge, 'the uplink is a port of the bridge');
    assert.equal(ifaceState(bridge).mac, lan.mac, "the bridge has the uplink's MAC");
    assert.match(sh(['ip', 'route', 'show', 'table', lan.table]).stdout, new RegExp(`default via ${lan.router} dev ${bridge}`));
    assert.match(sh(['ip', 'route', 'show', '198.19.81.0/24']).stdout, new RegExp(`via ${lan.router} dev ${bridge}`));
    assert.equal(ping(null, lan.router).code, 0, 'the host reaches the LAN router');
  });

  test('export --format ifupdown and networkd write the host side as it was before the lab', async () => {
    const dir = sh(['mktemp', '-d']).stdout.trim();
    try {
      const a = await qnet(['export', lab, '--format', 'ifupdown', '--out', `${dir}/i`]);
      assert.equal(a.code, 0, a.stderr);
      const text = sh(['cat', `${dir}/i/interfaces`]).stdout;
      assert.match(text, new RegExp(`iface ${lan.uplink} inet manual`));
      assert.match(text, new RegExp(`iface br-lan inet static\n    address ${lan.hostIp}/24\n    bridge_ports ${lan.uplink}\n`));
      assert.match(text, new RegExp(`hwaddress ether ${lan.mac}`));
      assert.match(text, new RegExp(`up ip route add 198\.19\.81\.0/24 via ${lan.router} dev br-lan`));
      assert.match(text, new RegExp(`up ip route add default via ${lan.router} dev br-lan table ${lan.table}`));
      const b = await qnet(['export', lab, '--format', 'networkd', '--out', `${dir}/n`]);
      assert.equal(b.code, 0, b.stderr);
      assert.match(sh(['cat', `${dir}/n/25-qnet-${lan.uplink}.network`]).stdout, /Bridge=br-lan/);
      assert.match(sh(['cat', `${dir}/n/25-qnet-br-lan.network`]).stdout, new RegExp(`Address=${lan.hostIp}/24`));
      const c = await qnet(['export', lab, '--format', 'sh', '--out', `${dir}/s`]);
      assert.equal(c.code, 2);
      assert.match(c.stderr, /networks\.lan: --format sh covers/);
    } finally {
      sh(['rm', '-rf', dir]);
    }
  });

  test("status names the uplink and shows the guest's address from the LAN's server", async () => {
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as {
      networks: Array<{ name: string; mode: string; uplink?: string }>;
      nodes: Array<{ nics: Array<{ addresses: string[] }> }>;
    };
    assert.deepEqual(st.networks.map((n) => [n.name, n.mode, n.uplink]), [['lan', 'bridged', lan.uplink]]);
    assert.deepEqual(st.nodes[0]!.nics[0]!.addresses, [`${await guestIp(lab, 'g')}/24`]);
  });
});

describe('macnat: two guests behind an uplink whose access point knows only its MAC', () => {
  const lab = labName('mnat');
  let lan: Awaited<ReturnType<typeof makeLan>>;
  let before0: HostSnapshot;
  let uplinkBefore: ReturnType<typeof ifaceState>;

  before(async () => {
    lan = await makeLan(`m${tag}`, 82, { accessPoint: true });
    before0 = await snapshot();
    uplinkBefore = ifaceState(lan.uplink);
    const file = writeTopology({
      name: lab,
      networks: { wifi: { mode: 'macnat', uplink: lan.uplink } },
      nodes: {
        g1: { nics: [{ network: 'wifi', dhcp: true }] },
        g2: { nics: [{ network: 'wifi', dhcp: true, model: 'e1000' }] },
      },
    });
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, `${r.stderr}\nLAN DHCP server:\n${lan.dhcpLog()}`);
  });

  after(async () => {
    try {
      const d = await qnet(['down', lab]);
      assert.equal(d.code, 0, d.stderr);
      assert.deepEqual(ifaceState(lan.uplink), uplinkBefore, 'the uplink is exactly as before');
      assert.deepEqual(await snapshot(), before0, 'after down: no netdev table, veth, namespace, process or file remains');
    } finally {
      lan?.stop();
    }
  });

  test('both guests get leases from the LAN; both reach the LAN server as themselves; the LAN pings both; only the uplink MAC is seen', async () => {
    // Everything that reaches the access point from the uplink side, captured for the whole test.
    const cap = spawn('ip', ['netns', 'exec', lan.ns, 'tcpdump', '-i', 'ap0', '-Q', 'in', '-nn', '-e', '-l'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let frames = '';
    cap.stdout.on('data', (d: Buffer) => (frames += d.toString()));
    await new Promise((r) => setTimeout(r, 1000));
    try {
      // Leases were taken at boot already: renew them now, while the capture runs.
      for (const g of ['g1', 'g2']) await qnet(['exec', lab, g, '--', 'sh', '-c', 'kill -USR1 $(pidof udhcpc) 2>/dev/null; sleep 2; true']);
      const ips = [await guestIp(lab, 'g1'), await guestIp(lab, 'g2')];
      assert.notEqual(ips[0], ips[1]);
      for (const ip of ips) assert.match(ip, /^198\.18\.82\.(1[0-4]\d|150)$/);
      const leases = sh(['cat', lan.leases]).stdout;
      for (const ip of ips) assert.match(leases, new RegExp(` ${ip.replace(/\./g, '\\.')} `), "the LAN's server leased it");
      for (const [i, g] of ['g1', 'g2'].entries()) {
        const r = await qnet(['exec', lab, g, '--', 'wget', '-q', '-O', '-', `http://${lan.router}:8000/${g}`]);
        assert.equal(r.code, 0, `${g}: ${r.stderr}`);
        assert.match(r.stdout, /lan-server/, `${g} got its own reply`);
        assert.ok(lan.peers.includes(ips[i]!), `the server saw ${g} as ${ips[i]} (${lan.peers})`);
      }
      for (const ip of ips) assert.equal(ping(lan.ns, ip).code, 0, `the LAN pings ${ip}`);
      // Replies reach the right guest: each guest's ARP view of the router and the router's of each guest.
      const neigh = sh(['ip', '-n', lan.ns, 'neigh', 'show', 'dev', 'ap0']).stdout;
      for (const ip of ips) assert.match(neigh, new RegExp(`${ip.replace(/\./g, '\\.')} lladdr ${lan.mac}`), 'the LAN knows each guest under the uplink MAC');
    } finally {
      cap.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 500));
    }
    const sources = new Set([...frames.matchAll(/^\S+ ([0-9a-f:]{17}) > /gm)].map((m) => m[1]));
    assert.ok(frames.split('\n').length > 20, `the capture saw the traffic (${frames.length} bytes)`);
    assert.deepEqual([...sources], [lan.mac], `only the uplink's MAC reaches the access point: ${[...sources]}`);
    const ap = sh(['ip', 'netns', 'exec', lan.ns, 'nft', 'list', 'table', 'netdev', 'ap']).stdout;
    assert.match(ap, /ether saddr != \S+ counter packets 0 /, 'the access point dropped nothing from a foreign MAC');
  });

  test('guests reach each other directly on the lab bridge', async () => {
    const ip2 = await guestIp(lab, 'g2');
    const r = await qnet(['exec', lab, 'g1', '--', 'ping', '-c', '1', '-W', '3', ip2]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});

describe('uplinks that do not fit are refused before anything is made', () => {
  test('an interface without Ethernet (a tun device), a port of a foreign bridge, a missing interface: exit 2 naming the fix', async () => {
    const tun = `qtt${tag}`;
    const br = `qtb${tag}`;
    const port = `qtp${tag}`;
    sh(['ip', 'tuntap', 'add', 'dev', tun, 'mode', 'tun']);
    sh(['ip', 'link', 'add', 'name', br, 'type', 'bridge']);
    sh(['ip', 'link', 'add', 'name', port, 'type', 'veth', 'peer', 'name', `${port}p`]);
    sh(['ip', 'link', 'set', 'dev', port, 'master', br]);
    try {
      const before0 = await snapshot();
      const cases: Array<[string, string, RegExp]> = [
        [tun, 'bridged', new RegExp(`${tun} is not an Ethernet interface \\(link type none, tun\\).*nat or routed`)],
        [tun, 'macnat', /not an Ethernet interface/],
        [port, 'bridged', new RegExp(`${port} is already a port of ${br}.*uplink: ${br}`)],
        ['nosuchif0', 'bridged', /this host has no interface "nosuchif0"/],
      ];
      for (const [uplink, mode, message] of cases) {
        const file = writeTopology({ name: labName('fit'), networks: { lan: { mode, uplink } }, nodes: { g: { nics: [{ network: 'lan', dhcp: true }] } } });
        const r = await qnet(['up', file]);
        assert.equal(r.code, 2, `${mode} on ${uplink}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`networks\\.lan\\.uplink: `));
        assert.match(r.stderr, message);
        assert.deepEqual(await snapshot(), before0, 'nothing was made');
      }
    } finally {
      sh(['ip', 'link', 'delete', tun], false);
      sh(['ip', 'link', 'delete', port], false);
      sh(['ip', 'link', 'delete', br], false);
    }
  });
});

describe('bridged: a failure part-way, a killed `up`, a lost state file: the uplink always comes back', () => {
  test('rollback after the move, and `down` after SIGKILL with the state file deleted, leave the uplink exactly as before', async () => {
    const lan = await makeLan(`f${tag}`, 83);
    try {
      const before0 = await snapshot();
      const uplinkBefore = ifaceState(lan.uplink);
      const lab = labName('brf');
      const file = writeTopology({ name: lab, networks: { lan: { mode: 'bridged', uplink: lan.uplink } }, nodes: { g: { nics: [{ network: 'lan', dhcp: true }] } } });
      const plan = await qnet(['up', '--dry-run', file]);
      assert.equal(plan.code, 0, plan.stderr);
      const move = /^\s*(\d+)\. move \S+ 1 address and 2 routes to qb[0-9a-f]{8}$/m.exec(plan.stdout);
      assert.ok(move, plan.stdout);
      const next = String(Number(move[1]) + 1);
      assert.deepEqual(ifaceState(lan.uplink), uplinkBefore, '--dry-run changed nothing');

      const failed = await qnet(['up', file], { QNET_TEST_FAIL_BEFORE_STEP: next });
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, new RegExp(`injected failure before step ${next}`));
      assert.match(failed.stderr, /rolled back \d+ steps; nothing of the lab is left/);
      assert.deepEqual(ifaceState(lan.uplink), uplinkBefore, 'rollback gave the uplink back');
      assert.deepEqual(await snapshot(), before0);

      const killed = await qnet(['up', file], { QNET_TEST_KILL_BEFORE_STEP: next });
      assert.notEqual(killed.code, 0);
      assert.notEqual(ifaceState(lan.uplink).master, '', 'the kill left the uplink in the bridge');
      sh(['rm', '-f', `${process.env.QNET_RUN_DIR ?? '/run/qnet'}/${lab}/state.json`]);
      const d = await qnet(['down', lab]);
      assert.equal(d.code, 0, d.stderr);
      assert.match(d.stderr, new RegExp(`host bridge qb[0-9a-f]{8} \\(${lan.uplink} given back with its addresses and routes\\)`));
      assert.deepEqual(ifaceState(lan.uplink), uplinkBefore, 'down gave the uplink back from the bridge alone');
      assert.deepEqual(await snapshot(), before0);
    } finally {
      lan.stop();
    }
  });
});
