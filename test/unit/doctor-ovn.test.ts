// doctor's Open vSwitch and OVN rows (pure): a machine without them, with them stopped, half a central, and a ready
// chassis on the userspace datapath. None of them fails doctor: only labs on OVN need these.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ovnFindings, type OvnFacts } from '../../src/lab/doctor-ovn.js';
import { doctorFails } from '../../src/lab/doctor.js';

const none = { ovsdbServer: false, ovsVswitchd: false, ovnController: false, nb: false, sb: false, northd: false };
const all = { ovsdbServer: true, ovsVswitchd: true, ovnController: true, nb: true, sb: true, northd: true };

test('not installed: one warning saying what cannot run and how to get it; doctor still passes', () => {
  const f = ovnFindings({ northd: false, running: none });
  assert.equal(f.length, 1);
  assert.deepEqual([f[0]!.check, f[0]!.ok, f[0]!.warn], ['Open vSwitch (labs on OVN)', false, true]);
  assert.match(f[0]!.detail, /not installed: labs on OVN/);
  assert.match(f[0]!.fix!, /qnet host setup/);
  assert.equal(doctorFails(f), false);
});

test('installed, stopped: warnings for OVS and OVN, the datapath as information', () => {
  const facts: OvnFacts = { ovs: 'Open vSwitch 3.1.0', ovn: 'OVN 23.03.1', northd: true, running: none, kernelDatapath: false, status: { running: none, sbEncaps: [], ready: false, problems: ['Open vSwitch is not running (ovsdb-server, ovs-vswitchd): run `qnet host setup --name NAME --underlay IP …`', 'ovn-controller is not running: run `qnet host setup --name NAME --underlay IP …`'] } };
  const f = ovnFindings(facts);
  assert.deepEqual(f.map((x) => [x.check, x.ok, x.warn ?? false]), [
    ['Open vSwitch (labs on OVN)', false, true],
    ['OVS datapath', true, false],
    ['OVN (labs on OVN)', false, true],
  ]);
  assert.match(f[0]!.detail, /ovsdb-server and ovs-vswitchd not running/);
  assert.match(f[1]!.detail, /none in use yet; no openvswitch or geneve kernel module: setup picks the userspace datapath/);
  const why = ovnFindings({ ...facts, kernelDatapathWhy: 'the kernel has no geneve module' });
  assert.match(why[1]!.detail, /none in use yet; the kernel has no geneve module: setup picks the userspace datapath/);
  assert.match(f[2]!.detail, /^OVN 23\.03\.1 installed, ovn-controller not running: labs on OVN .* cannot start$/);
  assert.equal(doctorFails(f), false);
});

test('a ready chassis and central on the userspace datapath: ok rows; half a central is a warning', () => {
  const status = { running: all, sbEncaps: [{ type: 'geneve', ip: '192.0.2.11' }], ready: true, problems: [], chassis: 'a', encapIp: '192.0.2.11', remote: 'unix:/var/run/ovn/ovnsb_db.sock', datapath: 'netdev' };
  const f = ovnFindings({ ovs: 'Open vSwitch 3.1.0', ovn: 'OVN 23.03.1', northd: true, running: all, kernelDatapath: false, status });
  assert.ok(f.every((x) => x.ok), JSON.stringify(f));
  assert.match(f[1]!.detail, /^in use: userspace \(netdev\)/);
  assert.match(f[2]!.detail, /chassis a registered with Geneve on 192\.0\.2\.11; the central runs here/);
  const half = ovnFindings({ ovs: 'Open vSwitch 3.1.0', ovn: 'OVN 23.03.1', northd: true, running: { ...all, northd: false }, kernelDatapath: true, status: { ...status, datapath: 'system' } });
  assert.match(half[1]!.detail, /^in use: kernel; the kernel datapath works/);
  assert.deepEqual([half[2]!.ok, half[2]!.warn], [false, true]);
  assert.match(half[2]!.detail, /only part of a central runs here \(northbound DB, southbound DB\): labs with their central here cannot start$/);
  assert.equal(doctorFails(half), false);
});
