// Bridged and macnat networks: parsing what `ip -j` says of an uplink, deciding whether a mode fits it, and the
// golden renderings (host bridge and veth, the address/route move, the MAC NAT tables, the plan).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAddrs, parseRoutes, type IfaceInfo } from '../../src/host/iface.js';
import { classifyUplink } from '../../src/lab/lan.js';
import { formatPlan, planUp } from '../../src/plan/plan.js';
import { renderLinkBatch } from '../../src/render/ipbatch.js';
import {
  lanHostBridge,
  renderLanHostBatch,
  renderLanHostUndo,
  renderLanLabBatch,
  renderMacnatHostRuleset,
  renderMacnatLabRuleset,
  renderMove,
  type LanUplink,
} from '../../src/render/lan.js';
import { renderGuardRuleset } from '../../src/render/guard.js';
import { golden } from './golden.js';
import { parseTopology } from '../../src/topology/load.js';
import { labWarnings } from '../../src/topology/warnings.js';
import { exportableBridged, renderIfupdown, renderNetworkd } from '../../src/render/export-host.js';

process.env.QNET_RUN_DIR = '/run/qnet';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const lab = parseTopology(readFileSync(path.join(ROOT, 'test', 'fixtures', 'lan.yaml'), 'utf8'), 'lan.yaml');


// What `ip -j` printed for a veth with two IPv4 addresses (one with a DHCP lifetime), an IPv6 one, a route with a
// metric, a default route in another table and an IPv6 route: the kernel's own entries must be left out.
const ADDR_JSON = JSON.stringify([
  {
    ifname: 'eth0',
    addr_info: [
      { family: 'inet', local: '192.168.1.105', prefixlen: 24, broadcast: '192.168.1.255', scope: 'global', dynamic: true, label: 'eth0', valid_life_time: 3600, preferred_life_time: 3000 },
      { family: 'inet', local: '198.18.98.5', prefixlen: 24, scope: 'global', label: 'eth0', valid_life_time: 4294967295, preferred_life_time: 4294967295 },
      { family: 'inet6', local: '2001:db8:97::2', prefixlen: 64, scope: 'global', nodad: true, valid_life_time: 4294967295, preferred_life_time: 4294967295 },
      { family: 'inet6', local: 'fe80::bced:78ff:fea2:2e19', prefixlen: 64, scope: 'link', valid_life_time: 4294967295, preferred_life_time: 4294967295 },
    ],
  },
]);
const ROUTE_JSON = JSON.stringify([
  { dst: 'default', gateway: '192.168.1.1', protocol: 'dhcp', prefsrc: '192.168.1.105', metric: 100, flags: [] },
  { dst: 'default', gateway: '198.18.97.1', table: '31097', flags: [] },
  { dst: '192.168.1.0/24', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.105', flags: [] },
  { dst: '198.19.97.0/24', gateway: '198.18.97.1', metric: 50, flags: [] },
  { type: 'local', dst: '192.168.1.105', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '192.168.1.105', flags: [] },
  { type: 'broadcast', dst: '192.168.1.255', table: 'local', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.105', flags: [] },
  { dst: '2001:db8:97::/64', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
  { dst: '2001:db8:99::/64', gateway: '2001:db8:97::1', metric: 1024, flags: [], pref: 'medium' },
  { dst: 'default', gateway: 'fe80::1', protocol: 'ra', metric: 1024, flags: [], pref: 'medium' },
  { type: 'multicast', dst: 'ff00::/8', table: 'local', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
]);

const ETH0: LanUplink = { name: 'eth0', mac: 'f4:ce:46:97:c4:b0', attach: false, addrs: parseAddrs(ADDR_JSON), routes: parseRoutes(ROUTE_JSON) };
const WLAN0: LanUplink = { name: 'wlan0', mac: '32:7f:aa:56:59:01', attach: false, addrs: [], routes: [] };
const LAN = { wired: ETH0, wifi: WLAN0 };

describe('reading an uplink', () => {
  test('addresses: global IPv4 and IPv6 with lifetimes and flags, not the link-local', () => {
    const a = parseAddrs(ADDR_JSON);
    assert.deepEqual(
      a.map((x) => `${x.local}/${x.prefixlen} ${x.validLft}/${x.preferredLft}${x.dynamic ? ' dynamic' : ''}`),
      ['192.168.1.105/24 3600/3000 dynamic', '198.18.98.5/24 forever/forever', '2001:db8:97::2/64 forever/forever'],
    );
    assert.equal(a[0]!.broadcast, '192.168.1.255');
  });
  test('routes: what an admin or a DHCP client made, in any table; not the kernel\'s own', () => {
    const r = parseRoutes(ROUTE_JSON);
    assert.deepEqual(
      r.map((x) => `${x.family} ${x.dst} ${x.gateway ?? '-'} ${x.table ?? 'main'} ${x.metric ?? '-'} ${x.protocol ?? '-'}`),
      [
        'inet default 192.168.1.1 main 100 dhcp',
        'inet default 198.18.97.1 31097 - -',
        'inet 198.19.97.0/24 198.18.97.1 main 50 -',
        'inet6 2001:db8:99::/64 2001:db8:97::1 main 1024 -',
        'inet6 default fe80::1 main 1024 ra',
      ],
    );
  });
});

const iface = (over: Partial<IfaceInfo>): IfaceInfo => ({ name: 'eth0', mac: '02:00:00:00:00:01', linkType: 'ether', kind: '', wireless: false, up: true, addrs: [], routes: [], ...over });
const bridged = { name: 'lan', mode: 'bridged' as const };
const macnat = { name: 'lan', mode: 'macnat' as const };

describe('does the mode fit the uplink', () => {
  test('a wired interface: bridged fits; macnat fits too, and says bridged would give guests their own MACs', () => {
    assert.equal(classifyUplink(bridged, iface({}), 'l').ok, true);
    const v = classifyUplink(macnat, iface({}), 'l');
    assert.equal(v.ok, true);
    assert.match(v.message, /wired: mode bridged/);
  });
  test('Wi-Fi cannot be bridged: the message names macnat', () => {
    const v = classifyUplink(bridged, iface({ name: 'wlan0', wireless: true }), 'l');
    assert.equal(v.ok, false);
    assert.match(v.message, /networks\.lan\.uplink: wlan0 is a Wi-Fi interface.*Operation not supported.*mode: macnat/);
    assert.equal(classifyUplink(macnat, iface({ name: 'wlan0', wireless: true }), 'l').ok, true);
  });
  test('an interface without Ethernet (tun, wireguard) fits neither: use nat or routed', () => {
    for (const mode of [bridged, macnat]) {
      const v = classifyUplink(mode, iface({ name: 'wg0', linkType: 'none', kind: 'wireguard' }), 'l');
      assert.equal(v.ok, false);
      assert.match(v.message, /wg0 is not an Ethernet interface \(link type none, wireguard\).*nat or routed/);
    }
  });
  test('a port of a bridge: name the bridge; an existing bridge is joined as it is', () => {
    const v = classifyUplink(bridged, iface({ master: 'br0' }), 'l');
    assert.equal(v.ok, false);
    assert.match(v.message, /already a port of br0.*uplink: br0/);
    assert.match(classifyUplink(macnat, iface({ master: 'br0' }), 'l').message, /name it as the uplink/);
    const j = classifyUplink(bridged, iface({ name: 'br0', kind: 'bridge' }), 'l');
    assert.deepEqual([j.ok, j.attach], [true, true]);
  });
  test('an uplink already in another lab\'s bridge: one lab at a time, or a permanent bridge for both', () => {
    const v = classifyUplink(bridged, iface({ master: 'qb12345678', masterAlias: 'qnet:lab=first' }), 'second');
    assert.equal(v.ok, false);
    assert.match(v.message, /eth0 is in first's bridge qb12345678/);
    assert.match(v.message, /qnet export first --format networkd/);
  });
  test('loopback and qnet\'s own links are refused', () => {
    assert.match(classifyUplink(bridged, iface({ name: 'lo', linkType: 'loopback' }), 'l').message, /loopback/);
    assert.match(classifyUplink(bridged, iface({ name: 'qn12345678', alias: 'qnet:lab=other' }), 'l').message, /made by qnet \(lab=other\)/);
  });
});

describe('bridged and macnat render as their golden files', () => {
  test('lab links: the bridged network\'s lab bridge has no STP (the host bridge has it)', () => {
    const b = renderLinkBatch(lab, 'qnet');
    golden('lan-links.batch', b);
    assert.match(b, /link add name br-wired type bridge stp_state 0 forward_delay 0\n/);
  });
  test('host side of the bridged network: bridge with the uplink\'s MAC and STP settings, veth', () => {
    const net = lab.networks.find((n) => n.name === 'wired')!;
    const out = renderLanHostBatch(lab, net, ETH0);
    golden('lan-bridged-host.batch', `${out}# undo\n${renderLanHostUndo(lab, net, ETH0)}# lab\n${renderLanLabBatch(lab, net)}`);
    assert.match(out, new RegExp(`link add name ${lanHostBridge('lanlab', 'wired')} type bridge stp_state 1 forward_delay 200 hello_time 100`));
    assert.match(out, /address f4:ce:46:97:c4:b0/);
  });
  test('joining an existing bridge makes only the veth', () => {
    const net = lab.networks.find((n) => n.name === 'wired')!;
    const out = renderLanHostBatch(lab, net, { ...ETH0, name: 'br0', attach: true });
    assert.doesNotMatch(out, /type bridge/);
    assert.match(out, /master br0/);
    assert.equal(renderLanHostUndo(lab, net, { ...ETH0, name: 'br0', attach: true }).trim().split('\n').length, 1);
  });
  test('the move of addresses and routes, both ways', () => {
    const there = renderMove('eth0', 'qbX', ETH0.addrs, ETH0.routes);
    golden('lan-move.batch', `${there.join('\n')}\n# back\n${renderMove('qbX', 'eth0', ETH0.addrs, ETH0.routes).join('\n')}\n`);
    // Addresses arrive before the routes that need them, and leave only after they exist on the other side.
    const firstDel = there.findIndex((l) => l.startsWith('addr del'));
    assert.ok(there.findIndex((l) => l.startsWith('addr add')) < firstDel);
    assert.ok(there.findIndex((l) => l.startsWith('route add')) > firstDel);
    assert.ok(there.includes('addr add 192.168.1.105/24 brd 192.168.1.255 dev qbX valid_lft 3600 preferred_lft 3000'));
    assert.ok(there.includes('route add 0.0.0.0/0 via 198.18.97.1 dev qbX table 31097'));
    assert.ok(there.includes('route add ::/0 via fe80::1 dev qbX metric 1024 proto ra'));
  });
  test('MAC NAT: the host steering table and the lab rewriting table', () => {
    const host = renderMacnatHostRuleset(lab, LAN);
    const labT = renderMacnatLabRuleset(lab, LAN);
    golden('lan-macnat-host.nft', host);
    golden('lan-macnat-lab.nft', labT);
    assert.match(host, /hook ingress device "wlan0"/);
    assert.match(labT, /arp saddr ether set 32:7f:aa:56:59:01/);
    assert.match(labT, /ether saddr set 32:7f:aa:56:59:01/);
    assert.match(labT, /ether daddr set ip daddr map @guests_wifi/);
  });
  test('guard: bridged and macnat guests are held to their MACs and cannot serve DHCP by default', () => {
    const g = renderGuardRuleset(lab);
    golden('lan-guard.nft', g);
    assert.match(g, /iifname "t-win-0" ether saddr != 00:26:c6:21:cf:02 drop/);
    assert.match(g, /iifname "t-win-0" ether type ip udp sport 67 drop/);
  });
  test('plan', () =>
    golden(
      'lan-plan.txt',
      formatPlan(planUp(lab, { image: { kernel: '/img/vmlinux', initrd: '/img/initrd.img', cmdline: 'console=ttyS0' }, accel: 'tcg', user: 'qnet', userIds: { uid: 995, gid: 995 }, guestIds: { uid: 1900001000, gid: 1900001000 }, lan: LAN })),
    ));
  test('warnings: exposure to the LAN, STP pauses, and settings the kernel raises', () => {
    const w = labWarnings(lab);
    assert.ok(w.some((x) => /networks\.wired: bridged guests are on eth0's LAN as themselves/.test(x)));
    assert.ok(w.some((x) => /networks\.wifi: macnat guests are on wlan0's LAN under its MAC/.test(x)));
    assert.ok(w.some((x) => /networks\.wired\.stp: with STP on/.test(x)));
    const fd0 = parseTopology('name: x\nnetworks:\n  a: {mode: bridged, uplink: eth0, stp: true}\nnodes:\n  n: {}\n');
    assert.ok(labWarnings(fd0).some((x) => /forwardDelay: with STP on, the kernel raises 0 s to 2 s/.test(x)));
  });
});

describe('the host side of bridged networks as persistent configuration', () => {
  const STATIC: LanUplink = {
    name: 'eth0',
    mac: 'f4:ce:46:97:c4:b0',
    attach: false,
    addrs: [{ family: 'inet', local: '192.168.1.105', prefixlen: 24, scope: 'global', validLft: 'forever', preferredLft: 'forever', noprefixroute: false, dynamic: false }],
    routes: [
      { family: 'inet', dst: 'default', gateway: '192.168.1.1' },
      { family: 'inet', dst: '10.8.0.0/16', gateway: '192.168.1.254', metric: 50 },
    ],
  };
  test('only bridged networks are exported; macnat and joined bridges are noted', () => {
    const { nets, notes } = exportableBridged(lab, LAN);
    assert.deepEqual(nets.map((n) => n.net.name), ['wired']);
    assert.ok(notes.some((n) => /networks\.wifi is macnat/.test(n)));
    assert.ok(exportableBridged(lab, { ...LAN, wired: { ...ETH0, attach: true, name: 'br0' } }).notes.some((n) => /joins the existing bridge br0/.test(n)));
  });
  test('ifupdown: a DHCP uplink makes a DHCP bridge; a static one keeps its address, gateway and routes', () => {
    const net = lab.networks.find((n) => n.name === 'wired')!;
    const dhcp = renderIfupdown(lab, [{ net, up: ETH0 }]);
    const stat = renderIfupdown(lab, [{ net, up: STATIC }]);
    golden('lan-export-dhcp.interfaces', dhcp);
    golden('lan-export-static.interfaces', stat);
    assert.match(dhcp, /iface br-wired inet dhcp\n    bridge_ports eth0\n    bridge_stp on\n    bridge_fd 2\n    bridge_hello 1\n    hwaddress ether f4:ce:46:97:c4:b0/);
    assert.match(dhcp, /iface eth0 inet manual/);
    assert.match(stat, /iface br-wired inet static\n    address 192\.168\.1\.105\/24\n    gateway 192\.168\.1\.1\n/);
    assert.match(stat, /up ip route add 10\.8\.0\.0\/16 via 192\.168\.1\.254 dev br-wired metric 50/);
  });
  test('networkd: a .netdev with the STP settings and the MAC, the uplink as a port, the bridge\'s addresses', () => {
    const net = lab.networks.find((n) => n.name === 'wired')!;
    const files = renderNetworkd(lab, [{ net, up: STATIC }]);
    assert.deepEqual(Object.keys(files).sort(), ['25-qnet-br-wired.netdev', '25-qnet-br-wired.network', '25-qnet-eth0.network']);
    golden('lan-export.networkd', Object.entries(files).map(([n, c]) => `### ${n}\n${c}`).join('\n'));
    assert.match(files['25-qnet-br-wired.netdev']!, /Kind=bridge\nMACAddress=f4:ce:46:97:c4:b0\n\n\[Bridge\]\nSTP=yes\nForwardDelaySec=2\nHelloTimeSec=1/);
    assert.match(files['25-qnet-eth0.network']!, /\[Match\]\nName=eth0\n\n\[Network\]\nBridge=br-wired/);
    assert.match(files['25-qnet-br-wired.network']!, /Address=192\.168\.1\.105\/24\nGateway=192\.168\.1\.1\n\n\[Route\]\nDestination=10\.8\.0\.0\/16\nGateway=192\.168\.1\.254\nMetric=50/);
    assert.match(renderNetworkd(lab, [{ net, up: ETH0 }])['25-qnet-br-wired.network']!, /DHCP=ipv4/);
  });
});
