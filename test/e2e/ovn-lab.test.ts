// A lab on OVN on one host (issue 33, first stage): the seed lab with `fabric: ovn`, run by qnet inside one simulated
// host (its own network and mount namespaces, OVS on the userspace datapath, the OVN central): refused before any
// change while the host has no OVN; a failure part-way rolls back the northbound rows and the br-int ports too; it
// comes up, its guests reach each other (ping and TCP: `qnet check` agrees with the model), status shows it, and
// `down` leaves nothing in the host, in the NB or on br-int, also without the state file. Prints the figures.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { labName, ROOT, snapshot, writeTopology, type HostSnapshot } from './helpers.js';
import { makeSimHosts, type SimHost, type SimHosts } from './ovn-hosts.js';
import { findMarkedProcesses } from '../../src/qemu/process.js';

let sim: SimHosts | undefined;
let before0: HostSnapshot;
const lab = labName('ovnseed');
const lab2 = labName('ovndhcp');

before(async () => {
  before0 = await snapshot();
});

after(async () => {
  // After a failure: the lab's guests run in mount namespaces of their own (QEMU's private /dev), which the
  // fixture's sweep of the host's mount namespace does not reach; they are found by their marker instead.
  for (const p of await findMarkedProcesses()) if (p.lab === lab || p.lab === lab2) process.kill(p.pid, 'SIGKILL');
  if (sim) await sim.remove();
});

const NB_TABLES = ['Logical_Switch', 'Logical_Switch_Port', 'Logical_Router', 'DHCP_Options', 'DNS', 'ACL', 'Load_Balancer'];

/** What a lab could leave in the simulated host: namespaces, links, br-int ports, NB rows, run directories. */
function inside(h: SimHost, lab: string): Record<string, string[]> {
  const lines = (argv: string[]) => {
    const r = h.exec(argv);
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
  };
  return {
    netns: lines(['ip', 'netns', 'list']),
    links: lines(['ip', '-o', 'link', 'show']).map((l) => l.split(':')[1]!.trim().split('@')[0]!),
    brInt: lines(['ovs-vsctl', '--timeout=5', 'list-ports', 'br-int']),
    nb: NB_TABLES.flatMap((t) => lines(['ovn-nbctl', '--timeout=5', '--bare', '--columns=_uuid', 'list', t]).map((u) => `${t} ${u}`)),
    runDirs: lines(['ls', '-A', '/run/qnet']),
    // The lab's QEMU processes that still run (one that exited may wait a moment to be reaped by this machine's init).
    qemu: lines(['ps', '-eo', 'stat=,args=']).filter((l) => !l.startsWith('Z') && l.includes(`/run/qnet/${lab}/`)),
  };
}

test('one host on OVN: refused without OVN, rolled back part-way, up with ping and TCP, status, down leaves nothing', { timeout: 900000 }, async () => {
  // The seed lab as the example has it, on OVN (its taps get names of their own on the host), deb3 on virtio-net.
  const file = writeTopology({});
  // deb3 on virtio-net, whose tap carries the virtio-net header unless QEMU is told not to (the checksum pitfall).
  const text = readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8')
    .replace(/^name: seed$/m, `name: ${lab}`)
    .replace('mac: "de:ad:be:ef:00:03", model: e1000', 'mac: "de:ad:be:ef:00:03", model: virtio');
  assert.match(text, /model: virtio/);
  writeFileSync(file, `${text}fabric: ovn\n`);

  sim = await makeSimHosts(process.pid.toString(36), ['h1']);
  const h = sim.hosts[0]!;

  // 1. No OVN on the host yet: exit 1 before anything is made, naming what to run.
  const clean0 = inside(h, lab);
  const refused = await h.qnet(['up', file]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /qnet host setup --name NAME --underlay IP --central/);
  assert.deepEqual(inside(h, lab), clean0, 'nothing was made');

  const setup = await h.qnet(['host', 'setup', '--name', 'h1', '--underlay', h.ip, '--underlay-dev', 'ul0', '--central']);
  assert.equal(setup.code, 0, setup.stderr);
  const clean = inside(h, lab);

  // 2. A failure right before deb2's ports are waited for: the NB batch, the host side and deb1's tap on br-int
  // were made by then, and all of it is rolled back.
  const dry = await h.qnet(['up', '--dry-run', '--cold', file]);
  assert.equal(dry.code, 0, dry.stderr);
  const at = /^\s*(\d+)\. wait until OVN binds deb2's port$/m.exec(dry.stdout)?.[1];
  assert.ok(at, dry.stdout);
  const failed = await h.qnet(['up', '--cold', file], 300000, { QNET_TEST_FAIL_BEFORE_STEP: at });
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, new RegExp(`injected failure before step ${at}`));
  assert.match(failed.stderr, /rolled back \d+ steps; nothing of the lab is left/);
  assert.deepEqual(inside(h, lab), clean, 'the rollback removed the NB rows, the br-int ports, the links and the namespace');

  // 3. Up: every port bound, the guests reach each other and the host side as the model says.
  const t0 = Date.now();
  const up = await h.qnet(['up', file], 300000);
  assert.equal(up.code, 0, up.stderr);
  const upMs = Date.now() - t0;
  process.stderr.write(`# up of the seed lab on OVN in ${upMs} ms\n${up.stderr.split('\n').filter((l) => /OVN|br-int|northbound/.test(l)).map((l) => `#   ${l}`).join('\n')}\n`);
  const ports = inside(h, lab).brInt!;
  assert.equal(ports.length, 4, `three taps and the host side on br-int: ${ports.join(', ')}`);
  const up2 = h.exec(['ovn-nbctl', '--bare', '--columns=name,up', 'find', 'Logical_Switch_Port', `external_ids:qnet-lab="${lab}"`]);
  assert.equal((up2.stdout.match(/^true$/gm) ?? []).length, 4, up2.stdout);

  const status = await h.qnet(['status', lab]);
  assert.equal(status.code, 0, status.stderr);
  for (const n of ['deb1', 'deb2', 'deb3']) assert.match(status.stdout, new RegExp(`${n}\\b.*running`), status.stdout);

  const ping = await h.qnet(['exec', lab, 'deb2', '--', 'ping', '-c', '2', '-W', '3', '192.168.1.3']);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  const tc = Date.now();
  const check = await h.qnet(['check', lab], 300000);
  process.stderr.write(`# qnet check in ${Date.now() - tc} ms:\n${check.stdout.split('\n').map((l) => `#   ${l}`).join('\n')}\n`);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /tcp/i);

  // `up` of the running lab from its file: nothing differs (its taps as it runs them on OVN), nothing is done.
  const same = await h.qnet(['up', file]);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stderr, /already up and unchanged/);

  // 4. Down: nothing of the lab in the host, the NB or br-int.
  const down = await h.qnet(['down', lab]);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(inside(h, lab), clean, `down removed everything: ${down.stdout}${down.stderr}`);

  // 5. Up again (restored from the saved state of the shape), then down without the state file: the same.
  const again = await h.qnet(['up', file], 300000);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /restore deb3 /, 'deb3 starts from the saved state of its shape this time');
  // A restored virtio-net guest keeps its tap without the header too (its QEMU is started with the same NICs).
  const check2 = await h.qnet(['check', lab], 300000);
  assert.equal(check2.code, 0, check2.stdout + check2.stderr);
  assert.equal(h.exec(['rm', `/run/qnet/${lab}/state.json`]).code, 0);
  const down2 = await h.qnet(['down', lab]);
  assert.equal(down2.code, 0, down2.stderr);
  assert.deepEqual(inside(h, lab), clean, `down without the state file removed everything: ${down2.stdout}${down2.stderr}`);

  const killed = await sim.remove();
  sim = undefined;
  assert.deepEqual(killed, [], '`qnet host stop` stopped every daemon');
  const now = await snapshot();
  // The saved states of the OVN shape stay in the cache, as any other shape's.
  assert.deepEqual(now, before0);
});

test('one host on OVN: OVN\'s DHCP (a static lease by MAC, an address from the range) and an isolated network', { timeout: 600000 }, async () => {
  const file = writeTopology({
    name: lab2,
    fabric: 'ovn',
    networks: {
      lan: { mode: 'bridge', subnet: '10.20.0.0/24', address: '10.20.0.1', dhcp: { range: '10.20.0.50-10.20.0.60' } },
      back: { mode: 'isolated', subnet: '10.30.0.0/24' },
    },
    nodes: {
      a: { nics: [{ network: 'lan', dhcp: true, ip: '10.20.0.10', mac: '02:00:00:20:00:0a', model: 'virtio' }, { network: 'back', ip: '10.30.0.1' }] },
      b: { nics: [{ network: 'lan', dhcp: true, model: 'virtio' }, { network: 'back', ip: '10.30.0.2' }] },
    },
  });
  sim = await makeSimHosts(`${process.pid.toString(36)}d`, ['h2']);
  const h = sim.hosts[0]!;
  const setup = await h.qnet(['host', 'setup', '--name', 'h2', '--underlay', h.ip, '--underlay-dev', 'ul0', '--central']);
  assert.equal(setup.code, 0, setup.stderr);
  const clean = inside(h, lab2);
  try {
    const up = await h.qnet(['up', file], 300000);
    assert.equal(up.code, 0, up.stderr);
    const addr = async (node: string, dev: string) => {
      const r = await h.qnet(['exec', lab2, node, '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', dev]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    // a: its static lease, by MAC; b: the first address of the range OVN's IPAM gave its port.
    assert.match(await addr('a', 'eth0'), /inet 10\.20\.0\.10\/24/);
    const dyn = h.exec(['ovn-nbctl', '--bare', '--columns=dynamic_addresses', 'find', 'Logical_Switch_Port', `name="qnet.${lab2}.nic.b.0"`]).stdout.trim();
    const ip = /10\.20\.0\.(\d+)/.exec(dyn)?.[0];
    assert.ok(ip && Number(ip.split('.')[3]) >= 50 && Number(ip.split('.')[3]) <= 60, `b's dynamic address: ${dyn}`);
    assert.match(await addr('b', 'eth0'), new RegExp(`inet ${ip!.replace(/\./g, '\\.')}/24`));
    for (const [to, what] of [['10.20.0.10', 'a over lan'], ['10.20.0.1', 'the host side'], ['10.30.0.1', 'a over the isolated network']] as const) {
      const ping = await h.qnet(['exec', lab2, 'b', '--', 'ping', '-c', '2', '-W', '3', to]);
      assert.equal(ping.code, 0, `b -> ${what}: ${ping.stdout}${ping.stderr}`);
    }
    // status shows the lease (asked of the guest: OVN keeps no lease files) and the network's taps on br-int.
    const st = await h.qnet(['status', lab2]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`${ip!.replace(/\./g, '\\.')}/24`), st.stdout);
    assert.match(st.stdout, /^lan\s.*qo[0-9a-f]{10} qo[0-9a-f]{10}/m, st.stdout);
    // The lease's options: the MTU and the DNS server from OVN's DHCP.
    const resolv = await h.qnet(['exec', lab2, 'b', '--', 'cat', '/etc/resolv.conf']);
    assert.match(resolv.stdout, /nameserver 10\.20\.0\.1/);
  } finally {
    const down = await h.qnet(['down', lab2]);
    assert.equal(down.code, 0, down.stderr);
  }
  assert.deepEqual(inside(h, lab2), clean, 'down removed everything');
  const killed = await sim.remove();
  sim = undefined;
  assert.deepEqual(killed, []);
});
