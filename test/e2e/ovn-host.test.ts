// `qnet host setup` on two simulated hosts (each its own network and mount namespace, joined by an underlay at MTU
// 1600): both chassis register in the southbound DB with their encap IPs, a logical switch made by hand carries a
// ping between a veth "guest" on each host across the Geneve tunnel, setup run again changes nothing, `qnet host
// stop` stops every daemon, and nothing is left on this machine. Prints the figures: setup time, port bind time,
// each daemon's memory.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { snapshot, type HostSnapshot } from './helpers.js';
import { makeSimHosts, type SimHost, type SimHosts } from './ovn-hosts.js';

let sim: SimHosts | undefined;
let before0: HostSnapshot;

before(async () => {
  before0 = await snapshot();
});

after(async () => {
  if (sim) await sim.remove();
});

const ok = (h: SimHost, argv: string[]) => {
  const r = h.exec(argv);
  assert.equal(r.code, 0, `in ${h.name}: ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

test('two simulated hosts: setup, chassis in the SB, a ping across Geneve, setup again, stop, nothing left', { timeout: 300000 }, async () => {
  const tm = Date.now();
  sim = await makeSimHosts(process.pid.toString(36), ['a', 'b'], { sshd: true });
  const [a, b] = sim.hosts as [SimHost, SimHost];
  process.stderr.write(`# two simulated hosts with their sshd made in ${Date.now() - tm} ms\n`);

  // The driving side reaches each host's sshd on its underlay address, as `up` will (before OVS moves the address).
  for (const h of [a, b]) {
    const r = sim.ssh(h, 'cat /proc/self/mountinfo | grep -c qnet-sim-');
    assert.equal(r.code, 0, `ssh to ${h.name}: ${r.stderr}`);
    assert.ok(Number(r.stdout) >= 8, `ssh reached host ${h.name}'s own mount namespace (${r.stdout.trim()} private mounts)`);
  }

  // Each host's links and addresses before setup: what stop must give back (OVS's bridges are taps of its own).
  const net = (h: SimHost) => ok(h, ['ip', '-o', 'addr', 'show']).split('\n').map((l) => l.replace(/\s+valid_lft.*$/, '').replace(/^\d+:\s+/, '')).filter(Boolean).sort();
  const links = (h: SimHost) => ok(h, ['ip', '-o', 'link', 'show']).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]).filter(Boolean).sort();
  const clean = new Map([a, b].map((h) => [h.name, { links: links(h), addrs: net(h) }]));
  const t0 = Date.now();
  const sa = await a.qnet(['host', 'setup', '--name', 'a', '--underlay', a.ip, '--underlay-dev', 'ul0', '--central']);
  assert.equal(sa.code, 0, sa.stderr);
  const ta = Date.now() - t0;
  const sb = await b.qnet(['host', 'setup', '--name', 'b', '--underlay', b.ip, '--underlay-dev', 'ul0', '--remote', a.ip]);
  assert.equal(sb.code, 0, sb.stderr);
  const setupMs = Date.now() - t0;
  process.stderr.write(`# setup: central a ${ta} ms, then b ${setupMs - ta} ms; two hosts in ${setupMs} ms\n${sa.stderr}${sb.stderr}`);

  // Both chassis, with their Geneve encaps on their underlay addresses, as the SB holds them.
  const chassis = ok(a, ['ovn-sbctl', '--format=csv', '--data=bare', '--no-headings', '--columns=chassis_name,type,ip', 'list', 'Encap']).trim().split('\n').sort();
  assert.deepEqual(chassis, [`a,geneve,${a.ip}`, `b,geneve,${b.ip}`]);
  // `qnet host status` (the observation `up` makes) agrees, on each host.
  for (const h of [a, b]) {
    const st = await h.qnet(['host', 'status', '--json']);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    const s = JSON.parse(st.stdout) as { ready: boolean; chassis: string; encapIp: string; datapath: string; sbEncaps: unknown[] };
    assert.deepEqual([s.ready, s.chassis, s.encapIp, s.datapath, s.sbEncaps], [true, h.name, h.ip, 'netdev', [{ type: 'geneve', ip: h.ip }]]);
  }
  // The underlay address moved onto br-phy, ul0 is its port with none.
  assert.match(ok(b, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'br-phy']), new RegExp(`inet ${b.ip}/24`));
  assert.equal(ok(b, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'ul0']).trim(), '');
  // ...and the driving side still reaches each host's sshd, now through OVS.
  for (const h of [a, b]) assert.equal(sim.ssh(h, 'true').code, 0, `ssh to ${h.name} after setup`);

  // Setup again: idempotent, nothing to do.
  const again = await b.qnet(['host', 'setup', '--name', 'b', '--underlay', b.ip, '--underlay-dev', 'ul0', '--remote', a.ip, '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual((JSON.parse(again.stdout) as { steps: unknown[] }).steps, []);

  // A logical switch with one port per host, and a veth "guest" bound to each.
  const nb = (...argv: string[]) => ok(a, ['ovn-nbctl', '--timeout=10', ...argv]);
  nb('ls-add', 'net0');
  const guests = [
    { h: a, port: 'p-a', mac: '02:00:00:00:00:0a', ip: '10.10.0.10' },
    { h: b, port: 'p-b', mac: '02:00:00:00:00:0b', ip: '10.10.0.11' },
  ];
  const bindMs: number[] = [];
  for (const g of guests) {
    nb('lsp-add', 'net0', g.port);
    nb('lsp-set-addresses', g.port, `${g.mac} ${g.ip}`);
    ok(g.h, ['ip', 'netns', 'add', 'g']);
    ok(g.h, ['ip', 'link', 'add', 'gh', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', 'g']);
    ok(g.h, ['ip', '-n', 'g', 'link', 'set', 'eth0', 'address', g.mac, 'up']);
    ok(g.h, ['ip', '-n', 'g', 'addr', 'add', `${g.ip}/24`, 'dev', 'eth0']);
    // The checksum pitfall: the userspace datapath reads the veth through AF_PACKET.
    ok(g.h, ['ip', 'netns', 'exec', 'g', 'ethtool', '-K', 'eth0', 'tx', 'off']);
    ok(g.h, ['ip', 'link', 'set', 'gh', 'up']);
    const t = Date.now();
    ok(g.h, ['ovs-vsctl', 'add-port', 'br-int', 'gh', '--', 'set', 'interface', 'gh', `external_ids:iface-id=${g.port}`]);
    nb('wait-until', 'Logical_Switch_Port', g.port, 'up=true');
    bindMs.push(Date.now() - t);
  }
  process.stderr.write(`# port bind (add-port to NB up=true): ${bindMs.join(', ')} ms\n`);

  // The first packet to a new chassis is lost while OVS resolves the tunnel's next hop: seed it on both sides.
  const brMac = (h: SimHost) => (JSON.parse(ok(h, ['ip', '-j', 'link', 'show', 'dev', 'br-phy'])) as Array<{ address: string }>)[0]!.address;
  ok(a, ['ovs-appctl', 'tnl/neigh/set', 'br-phy', b.ip, brMac(b)]);
  ok(b, ['ovs-appctl', 'tnl/neigh/set', 'br-phy', a.ip, brMac(a)]);
  const ping = a.exec(['ip', 'netns', 'exec', 'g', 'busybox', 'ping', '-c', '3', '-W', '2', '10.10.0.11']);
  process.stderr.write(`# ${ping.stdout.split('\n').filter((l) => /packets|round-trip/.test(l)).join('; ')}\n`);
  assert.match(ping.stdout, / 3 (packets )?received/, `ping across the tunnel: ${ping.stdout}${ping.stderr}`);
  // It went through the tunnel: b's br-int has a Geneve port to a.
  assert.match(ok(b, ['ovs-vsctl', '--columns=options', 'find', 'interface', 'type=geneve']), new RegExp(`remote_ip="?${a.ip.replace(/\./g, '\\.')}`));

  // Memory of each daemon, per host.
  for (const h of [a, b]) process.stderr.write(`# RSS on ${h.name}: ${h.daemons().map((d) => `${d.comm} ${(d.rssKiB / 1024).toFixed(1)} MiB`).join(', ')}\n`);

  // The test's stand-in guests go (their veth with their namespace), before what stop must give back is compared.
  for (const g of guests) ok(g.h, ['ip', 'netns', 'delete', 'g']);
  // Stop: every OVS and OVN daemon goes, b leaves the SB while a still runs, the address is back on ul0.
  let ts = Date.now();
  const stopB = await b.qnet(['host', 'stop']);
  process.stderr.write(`# host stop on b: ${Date.now() - ts} ms\n`);
  assert.equal(stopB.code, 0, stopB.stderr);
  assert.deepEqual(ok(a, ['ovn-sbctl', '--bare', '--columns=name', 'list', 'Chassis']).trim().split('\n').filter(Boolean), ['a']);
  assert.match(ok(b, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'ul0']), new RegExp(`inet ${b.ip}/24`));
  ts = Date.now();
  const stopA = await a.qnet(['host', 'stop']);
  process.stderr.write(`# host stop on a (central): ${Date.now() - ts} ms\n`);
  assert.equal(stopA.code, 0, stopA.stderr);
  for (const h of [a, b]) assert.deepEqual(h.daemons().map((d) => d.comm), ['sshd'], `only the fixture's sshd is left on ${h.name}`);
  // No br-int, br-phy or ovs-netdev left (ovs-vswitchd's persistent taps: it exits with --cleanup), addresses as before.
  for (const h of [a, b]) assert.deepEqual({ links: links(h), addrs: net(h) }, clean.get(h.name), `${h.name}'s links and addresses as before setup`);
  const stStopped = await b.qnet(['host', 'status', '--json']);
  assert.equal(stStopped.code, 1);
  assert.equal((JSON.parse(stStopped.stdout) as { ready: boolean }).ready, false);

  const killed = await sim.remove();
  sim = undefined;
  assert.deepEqual(killed, [], 'nothing was left for the fixture to kill');
  assert.deepEqual(await snapshot(), before0);
});
