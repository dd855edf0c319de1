// `qnet doctor` (root) on Open vSwitch and OVN, in a simulated host (its own network and mount namespaces): before
// `qnet host setup` they are warnings and doctor exits 0; after it, ok rows naming the chassis, its Geneve address,
// the central and the userspace datapath (this kernel has no openvswitch module). Nothing is left.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { makeSimHosts, type SimHosts } from './ovn-hosts.js';

let sim: SimHosts | undefined;
after(async () => {
  if (sim) await sim.remove();
});

type Row = { check: string; ok: boolean; warn?: boolean; detail: string };
const rows = (out: string, re: RegExp) => (JSON.parse(out) as Row[]).filter((r) => re.test(r.check));

test('doctor: OVS and OVN rows warn before setup (exit 0), are ok after it', { timeout: 120000 }, async () => {
  sim = await makeSimHosts(`dr${process.pid.toString(36)}`, ['a']);
  const h = sim.hosts[0]!;
  const before = await h.qnet(['doctor', '--json']);
  const b = rows(before.stdout, /Open vSwitch|OVS|OVN/);
  assert.deepEqual(b.map((r) => [r.check, r.ok]), [['Open vSwitch (labs on OVN)', false], ['OVS datapath', true], ['OVN (labs on OVN)', false]], before.stdout);
  assert.ok(b.filter((r) => !r.ok).every((r) => r.warn), 'warnings only');
  assert.match(b[1]!.detail, /the kernel has no usable openvswitch module.*: setup picks the userspace datapath/);
  // Whatever else this host lacks is a warning too (doctor.test.ts): the exit code is doctor's as without OVN.
  assert.equal(before.code, 0, before.stdout);

  const setup = await h.qnet(['host', 'setup', '--name', 'a', '--underlay', h.ip, '--underlay-dev', 'ul0', '--central']);
  assert.equal(setup.code, 0, setup.stderr);
  const t = Date.now();
  const now = await h.qnet(['doctor', '--json']);
  process.stderr.write(`# doctor with OVN up in ${Date.now() - t} ms\n`);
  assert.equal(now.code, 0, now.stdout);
  const n = rows(now.stdout, /Open vSwitch|OVS|OVN/);
  assert.ok(n.every((r) => r.ok), JSON.stringify(n));
  assert.match(n[0]!.detail, /^Open vSwitch [\d.]+: ovsdb-server and ovs-vswitchd running$/);
  assert.match(n[1]!.detail, /^in use: userspace \(netdev\)/);
  assert.match(n[2]!.detail, new RegExp(`chassis a registered with Geneve on ${h.ip.replace(/\./g, '\\.')}; the central runs here`));

  const stop = await h.qnet(['host', 'stop']);
  assert.equal(stop.code, 0, stop.stderr);
  const killed = await sim.remove();
  sim = undefined;
  assert.deepEqual(killed, []);
});
