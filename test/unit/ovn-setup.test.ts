// Unit tests of `qnet host setup`'s pure part: the options checked, the steps planned from what was observed (a fresh
// host, a re-run with everything in place, the kernel datapath, refusals), the stop steps, the status problems.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { checkSetupRequest, parseOvsdbJson, planSetup, planStop, statusProblems, type Daemon, type HostObservation } from '../../src/host/ovn-setup.js';

const none: Record<Daemon, boolean> = { ovsdbServer: false, ovsVswitchd: false, ovnController: false, nb: false, sb: false, northd: false };
const all: Record<Daemon, boolean> = { ovsdbServer: true, ovsVswitchd: true, ovnController: true, nb: true, sb: true, northd: true };

const central = checkSetupRequest({ name: 'a', underlay: '192.0.2.11', underlayDev: 'ul0', central: true });
const fresh: HostObservation = { missing: ['openvswitch-switch', 'ovn-host', 'ovn-central'], running: none, externalIds: {}, underlayOn: { dev: 'ul0', prefix: 24 }, underlayDev: { mtu: 1600 }, kernelDatapath: false };
const whats = (steps: Array<{ what: string }>) => steps.map((s) => s.what);

describe('checkSetupRequest', () => {
  test('the central defaults its remote to its own southbound DB on the underlay; an IP means port 6642', () => {
    assert.equal(central.remote, 'tcp:192.0.2.11:6642');
    assert.equal(checkSetupRequest({ name: 'b', underlay: '192.0.2.12', remote: '192.0.2.11' }).remote, 'tcp:192.0.2.11:6642');
    assert.equal(checkSetupRequest({ name: 'b', underlay: '192.0.2.12', remote: 'tcp:10.0.0.1:6642,tcp:10.0.0.2:6642' }).remote, 'tcp:10.0.0.1:6642,tcp:10.0.0.2:6642');
    assert.equal(central.datapath, 'auto');
  });
  for (const [o, re] of [
    [{ underlay: '192.0.2.1', central: true }, /--name is required/],
    [{ name: 'A_b', underlay: '192.0.2.1', central: true }, /--name: expected lower-case/],
    [{ name: 'a', central: true }, /--underlay is required/],
    [{ name: 'a', underlay: '192.0.2.1/24', central: true }, /--underlay: expected an IPv4 address/],
    [{ name: 'a', underlay: '192.0.2.1' }, /--remote is required on a host that is not the central/],
    [{ name: 'a', underlay: '192.0.2.1', remote: 'http://x' }, /--remote: expected the southbound DB/],
    [{ name: 'a', underlay: '192.0.2.1', central: true, datapath: 'dpdk' }, /--datapath: expected auto, system or netdev/],
    [{ name: 'a', underlay: '192.0.2.1', central: true, underlayDev: 'a b' }, /--underlay-dev: "a b" is not an interface name/],
  ] as const)
    test(`refuses ${JSON.stringify(o)}`, () => assert.throws(() => checkSetupRequest(o), (e: Error) => e instanceof UserError && re.test(e.message)));
});

describe('planSetup', () => {
  test('a fresh host without the kernel datapath: install, OVS, br-phy holding the underlay, chassis, central, controller', () => {
    const p = planSetup(central, fresh);
    assert.equal(p.datapath, 'netdev');
    assert.deepEqual(p.moved, { dev: 'ul0', prefix: 24, arpIgnore: '0', disableIpv6: '0' });
    assert.deepEqual(
      p.steps.map((s) => s.argv.join(' ')),
      [
        'apt-get install -y -q --no-install-recommends openvswitch-switch ovn-host ovn-central',
        '/usr/share/openvswitch/scripts/ovs-ctl --no-ovs-vswitchd --no-monitor --no-record-hostname --system-id=a start',
        'ovs-vswitchd unix:/var/run/openvswitch/db.sock -vconsole:emer -vsyslog:err -vfile:info --no-chdir --log-file=/var/log/openvswitch/ovs-vswitchd.log --pidfile=/var/run/openvswitch/ovs-vswitchd.pid --detach',
        'ovs-vsctl --timeout=10 --may-exist add-br br-phy -- set bridge br-phy datapath_type=netdev other-config:disable-in-band=true -- --may-exist add-port br-phy ul0 -- set interface br-phy mtu_request=1600',
        'ip addr add 192.0.2.11/24 dev br-phy',
        'ip addr del 192.0.2.11/24 dev ul0',
        'sysctl -q -w net.ipv4.conf.ul0.arp_ignore=1 net.ipv6.conf.ul0.disable_ipv6=1',
        'ip link set br-phy up',
        'ovs-vsctl --timeout=10 set open_vswitch . external_ids:system-id=a external_ids:ovn-remote=tcp:192.0.2.11:6642 external_ids:ovn-encap-type=geneve external_ids:ovn-encap-ip=192.0.2.11 external_ids:ovn-bridge-datapath-type=netdev',
        '/usr/share/ovn/scripts/ovn-ctl start_ovsdb',
        'ovn-nbctl --timeout=10 set-connection ptcp:6641:192.0.2.11',
        'ovn-sbctl --timeout=10 set-connection ptcp:6642:192.0.2.11',
        '/usr/share/ovn/scripts/ovn-ctl --no-monitor --ovn-manage-ovsdb=no start_northd',
        '/usr/share/ovn/scripts/ovn-ctl --no-monitor start_controller',
      ],
    );
    assert.deepEqual(p.steps[0]!.env, { DEBIAN_FRONTEND: 'noninteractive' });
  });

  test('run again with everything in place: nothing to do', () => {
    const done: HostObservation = {
      missing: [],
      running: all,
      externalIds: { 'system-id': 'a', 'ovn-remote': 'tcp:192.0.2.11:6642', 'ovn-encap-type': 'geneve', 'ovn-encap-ip': '192.0.2.11', 'ovn-bridge-datapath-type': 'netdev', hostname: 'x' },
      underlayOn: { dev: 'br-phy', prefix: 24 },
      underlayDev: { mtu: 1600 },
      brPhy: { holdsDev: true, mtu: 1600, up: true },
      kernelDatapath: false,
      nbConnection: 'ptcp:6641:192.0.2.11',
      sbConnection: 'ptcp:6642:192.0.2.11',
    };
    assert.deepEqual(planSetup(central, done), { datapath: 'netdev', steps: [] });
    // Only what differs is set: a new remote is one external_id.
    const moved = planSetup({ ...central, remote: 'tcp:192.0.2.99:6642' }, done);
    assert.deepEqual(moved.steps.map((s) => s.argv.slice(-1)[0]), ['external_ids:ovn-remote=tcp:192.0.2.99:6642']);
  });

  test('the kernel datapath: no br-phy, the underlay stays where it is', () => {
    const req = checkSetupRequest({ name: 'b', underlay: '192.0.2.12', remote: '192.0.2.11' });
    const p = planSetup(req, { ...fresh, missing: [], kernelDatapath: true, underlayOn: { dev: 'eth1', prefix: 24 } });
    assert.equal(p.datapath, 'system');
    assert.equal(p.moved, undefined);
    assert.deepEqual(whats(p.steps), ['start ovsdb-server (Open vSwitch database)', 'start ovs-vswitchd', 'register chassis b (encap geneve 192.0.2.12, SB tcp:192.0.2.11:6642, datapath system)', 'start ovn-controller']);
  });

  for (const [why, req, obs, re] of [
    ['another chassis name already registered', central, { ...fresh, externalIds: { 'system-id': 'old', 'ovn-remote': 'tcp:10.0.0.1:6642' } }, /this host is OVN chassis "old" already/],
    ['no interface has the underlay address', central, { ...fresh, underlayOn: undefined }, /no interface of this host has 192\.0\.2\.11/],
    ['userspace datapath without --underlay-dev', { ...central, underlayDev: undefined }, fresh, /--underlay-dev: the userspace datapath .* give --underlay-dev ul0/],
    ['the address is on another interface', central, { ...fresh, underlayOn: { dev: 'eth0', prefix: 24 } }, /192\.0\.2\.11 is on eth0, not on ul0/],
    ['--underlay-dev with the kernel datapath', central, { ...fresh, kernelDatapath: true }, /--underlay-dev: only for the userspace datapath/],
    ['no such --underlay-dev', central, { ...fresh, underlayDev: undefined }, /no interface "ul0"/],
    // A kernel datapath without conntrack zones (Debian's user-mode-linux): OVN's flows would be refused, no port bound.
    [
      '--datapath system on a kernel without conntrack zones',
      checkSetupRequest({ name: 'b', underlay: '192.0.2.12', remote: '192.0.2.11', datapath: 'system' }),
      { ...fresh, kernelDatapath: false, kernelDatapathWhy: "the kernel's openvswitch datapath has no conntrack zones (CONFIG_NF_CONNTRACK_ZONES), which OVN's ACLs and NAT need" },
      /--datapath system: the kernel's openvswitch datapath has no conntrack zones .*--datapath netdev, or auto\) with --underlay-dev/,
    ],
    [
      'auto on a kernel without conntrack zones, and no --underlay-dev: says why the userspace datapath',
      { ...central, underlayDev: undefined },
      { ...fresh, kernelDatapath: false, kernelDatapathWhy: "the kernel's openvswitch datapath has no conntrack zones (CONFIG_NF_CONNTRACK_ZONES), which OVN's ACLs and NAT need" },
      /--underlay-dev: the userspace datapath \(the kernel's openvswitch datapath has no conntrack zones .*\) sends Geneve out of an OVS bridge: give --underlay-dev ul0/,
    ],
  ] as const)
    test(`refuses: ${why}`, () => assert.throws(() => planSetup(req, obs as HostObservation), (e: Error) => e instanceof UserError && re.test(e.message)));
});

test('planStop: each daemon asked to exit and waited for, the controller first, then the underlay address back', () => {
  assert.deepEqual(planStop({}, null), []);
  const pids = { ovsdbServer: 11, ovsVswitchd: 12, ovnController: 13, nb: 14, sb: 15, northd: 16 };
  const steps = planStop(pids, { name: 'a', underlay: '192.0.2.11', datapath: 'netdev', central: true, remote: 'tcp:192.0.2.11:6642', moved: { dev: 'ul0', prefix: 24, arpIgnore: '0', disableIpv6: '0' } });
  assert.deepEqual(
    steps.map((s) => `${s.argv.join(' ')}${s.pid ? ` (${s.pid})` : ''}`),
    [
      'ovs-appctl -T 5 -t /var/run/ovn/ovn-controller.13.ctl exit (13)',
      'ovs-appctl -T 5 -t /var/run/ovn/ovn-northd.16.ctl exit (16)',
      'ovs-appctl -T 5 -t /var/run/ovn/ovnnb_db.ctl exit (14)',
      'ovs-appctl -T 5 -t /var/run/ovn/ovnsb_db.ctl exit (15)',
      'ovs-appctl -T 5 -t /var/run/openvswitch/ovs-vswitchd.12.ctl exit --cleanup (12)',
      'ovs-appctl -T 5 -t /var/run/openvswitch/ovsdb-server.11.ctl exit (11)',
      'ip addr replace 192.0.2.11/24 dev ul0',
      'sysctl -q -w net.ipv4.conf.ul0.arp_ignore=0 net.ipv6.conf.ul0.disable_ipv6=0',
    ],
  );
});

test('statusProblems: each missing piece named with what to run; none when registered with its encap IP', () => {
  const base = { running: all, chassis: 'a', remote: 'tcp:192.0.2.11:6642', encapIp: '192.0.2.11', sbEncaps: [{ type: 'geneve', ip: '192.0.2.11' }] };
  assert.deepEqual(statusProblems(base), []);
  assert.match(statusProblems({ ...base, running: { ...all, ovsVswitchd: false } }).join(), /Open vSwitch is not running \(ovs-vswitchd\)/);
  assert.match(statusProblems({ ...base, running: { ...all, ovnController: false } }).join(), /ovn-controller is not running/);
  assert.match(statusProblems({ ...base, sbEncaps: [], sbError: 'connection refused' }).join(), /southbound DB at tcp:192\.0\.2\.11:6642 cannot be read \(connection refused\)/);
  assert.match(statusProblems({ ...base, sbEncaps: [{ type: 'geneve', ip: '10.0.0.9' }] }).join(), /not registered .* on 192\.0\.2\.11 \(it has geneve 10\.0\.0\.9\)/);
  assert.match(statusProblems({ running: none, sbEncaps: [] }).join('\n'), /not configured as an OVN chassis/);
});

test('parseOvsdbJson: maps, sets and uuids as plain values', () => {
  const text = JSON.stringify({ headings: ['external_ids', 'ip', 'ports'], data: [[['map', [['system-id', 'a']]], '192.0.2.11', ['set', [['uuid', 'u1'], ['uuid', 'u2']]]]] });
  assert.deepEqual(parseOvsdbJson(text), [{ external_ids: { 'system-id': 'a' }, ip: '192.0.2.11', ports: ['u1', 'u2'] }]);
});
