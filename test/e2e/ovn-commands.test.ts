// The per-NIC commands on a lab on OVN (issue 33), inside one simulated host (OVS on the userspace datapath, the OVN
// central): `capture` of a NIC (its tap in the host namespace) holds a ping's ICMP, so does a capture of the whole
// network (an OVS mirror of its ports, removed when the capture ends, and by `down` when the capture was killed); an impairment declared in the topology is on the tap from `up`; `impair` (rate, 100% loss) and
// `--clear` are measured before and after; `link down` stops a ping and `link up` restores it; and a lab whose state
// file, namespace, guests and links were removed by hand, leaving its br-int ports and northbound rows, is found and
// removed by `qnet down`. Prints the figures.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { labName, QNET, writeTopology } from './helpers.js';
import { makeSimHosts, type SimHost, type SimHosts } from './ovn-hosts.js';
import { findMarkedProcesses } from '../../src/qemu/process.js';
import { ovnTap } from '../../src/fabric/ovn/names.js';
import { clearImpairment, ifbName, nicImpairment } from '../../src/render/impair.js';

let sim: SimHosts | undefined;
const lab = labName('ovncmd');

after(async () => {
  for (const p of await findMarkedProcesses()) if (p.lab === lab) process.kill(p.pid, 'SIGKILL');
  if (sim) await sim.remove();
});

const NB_TABLES = ['Logical_Switch', 'Logical_Switch_Port', 'DHCP_Options', 'DNS', 'ACL'];

/** What the lab could leave in the host: namespaces, links, br-int ports, NB rows, run directories. */
function inside(h: SimHost) {
  const lines = (argv: string[]) => h.exec(argv).stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
  return {
    netns: lines(['ip', 'netns', 'list']),
    links: lines(['ip', '-o', 'link', 'show']).map((l) => l.split(':')[1]!.trim().split('@')[0]!),
    brInt: lines(['ovs-vsctl', '--timeout=5', 'list-ports', 'br-int']),
    mirrors: lines(['ovs-vsctl', '--timeout=5', '--bare', '--columns=name', 'list', 'Mirror']),
    nb: NB_TABLES.flatMap((t) => lines(['ovn-nbctl', '--timeout=5', '--bare', '--columns=_uuid', 'list', t]).map((u) => `${t} ${u}`)),
    runDirs: lines(['ls', '-A', '/run/qnet']),
  };
}

test('on OVN: capture of a NIC, impairments declared and live, link down and up, down of a lab left as NB rows and br-int ports', { timeout: 900000 }, async () => {
  const file = writeTopology({
    name: lab,
    fabric: 'ovn',
    networks: { lan: { mode: 'bridge', subnet: '10.95.0.0/24', address: '10.95.0.1' } },
    nodes: {
      p: { nics: [{ network: 'lan', ip: '10.95.0.2', impair: { rate: '20mbit', direction: 'ingress' } }] },
      q: { nics: [{ network: 'lan', ip: '10.95.0.3', model: 'virtio' }] },
    },
  });
  sim = await makeSimHosts(`${process.pid.toString(36)}c`, ['h3']);
  const h = sim.hosts[0]!;
  const setup = await h.qnet(['host', 'setup', '--name', 'h3', '--underlay', h.ip, '--underlay-dev', 'ul0', '--central']);
  assert.equal(setup.code, 0, setup.stderr);
  const clean = inside(h);
  const qdiscs = (dev: string) => (JSON.parse(h.exec(['tc', '-j', 'qdisc', 'show', 'dev', dev]).stdout || '[]') as Array<{ kind: string }>).map((x) => x.kind).sort();
  const exec = (n: string, cmd: string) => h.qnet(['exec', lab, n, '--', 'sh', '-c', cmd]);
  const ping = async (from: string, to: string) => (await exec(from, `ping -c 3 -i 0.3 -W 2 ${to}`)).code === 0;
  const iperf = async (reverse: boolean) => {
    await exec('p', 'pgrep iperf3 >/dev/null || iperf3 -s -D');
    const r = await exec('q', `iperf3 -c 10.95.0.2 -t 2 -J ${reverse ? '-R' : ''}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6;
  };
  const tapP = ovnTap(lab, 'p', 0);
  const tapQ = ovnTap(lab, 'q', 0);

  const up = await h.qnet(['up', file], 300000);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr, /impair p's tap in the host namespace: NIC 0 \(rate 20mbit, ingress\)/);
  // 1. The declared impairment is on p's tap in the host namespace, and in force: q sends to p at about 20 Mbit/s.
  assert.deepEqual(qdiscs(tapP), ['tbf'], `${up.stderr}\n${h.exec(['tc', 'qdisc', 'show']).stdout}\n${h.exec(['ip', 'link', 'show']).stdout}`);
  const toP = await iperf(false);
  process.stderr.write(`# q -> p with p's declared ingress rate 20mbit: ${toP.toFixed(1)} Mbit/s\n`);
  assert.ok(toP < 25, `q -> p at ${toP.toFixed(1)} Mbit/s under 20mbit`);
  const st = (await h.qnet(['status', lab])).stdout;
  assert.match(st, /impairments in force: p eth0: rate 20mbit, ingress/);
  // Each NIC's tap in the host namespace, its port bound by OVN.
  for (const t of [tapP, tapQ]) assert.match(st, new RegExp(`${t} \\(bound\\)`), st);

  // 2. Capture of q's NIC (its tap on br-int, in the host namespace) while p pings q: the ICMP is there.
  const beforeCap = inside(h);
  const cap = h.qnet(['capture', lab, 'q', '--count', '4', '--filter', 'icmp'], 60000);
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(await ping('p', '10.95.0.3'));
  const c = await cap;
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, new RegExp(`capturing q eth0 \\(${tapQ} in the host namespace\\)`));
  assert.equal((c.stdout.match(/ICMP echo (request|reply)/g) ?? []).length, 4, c.stdout);
  // A whole network: an OVS mirror of its ports onto a port made for the capture; each frame once (2 pings: 4 frames).
  const netCap = h.qnet(['capture', lab, 'lan', '--count', '4', '--filter', 'icmp'], 60000);
  for (let i = 0; i < 50 && !inside(h).mirrors.length; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(inside(h).mirrors.length, 1, 'the mirror is there while the capture runs');
  await exec('p', 'ping -c 2 -i 0.3 -W 2 10.95.0.3');
  const nc = await netCap;
  assert.equal(nc.code, 0, nc.stderr);
  assert.match(nc.stderr, /capturing network lan \(a mirror of its 3 ports on br-int\) \(qc[0-9a-f]{10} in the host namespace\)/);
  const frames = nc.stdout.match(/10\.95\.0\.\d > 10\.95\.0\.\d: ICMP echo (request|reply)/g) ?? [];
  assert.deepEqual(frames, ['10.95.0.2 > 10.95.0.3: ICMP echo request', '10.95.0.3 > 10.95.0.2: ICMP echo reply', '10.95.0.2 > 10.95.0.3: ICMP echo request', '10.95.0.3 > 10.95.0.2: ICMP echo reply'], nc.stdout);
  assert.deepEqual({ mirrors: inside(h).mirrors, brInt: inside(h).brInt }, { mirrors: [], brInt: beforeCap.brInt }, 'the capture took its mirror and port away');

  // 3. Impairments live on q's tap: 100% loss of what it receives stops a ping, --clear restores it.
  assert.equal((await h.qnet(['impair', lab, 'q', '--loss', '100%', '--direction', 'ingress'])).code, 0);
  assert.deepEqual(qdiscs(tapQ), ['pfifo']);
  assert.equal(await ping('p', '10.95.0.3'), false, 'q receives nothing');
  assert.equal((await h.qnet(['impair', lab, 'q', '--clear'])).code, 0);
  assert.ok(await ping('p', '10.95.0.3'), 'after --clear');
  // What q sends (the default direction): refused on the userspace datapath, nothing changed.
  const egress = await h.qnet(['impair', lab, 'q', '--loss', '100%']);
  assert.equal(egress.code, 2, egress.stderr);
  assert.match(egress.stderr, /q eth0: direction egress: on OVN's userspace datapath .*--direction ingress.*nothing was changed/);
  assert.ok(await ping('q', '10.95.0.2'));
  // Why: the same ifb redirect and 100% loss that bridges use, put on q's tap by hand, stops nothing here
  // (ovs-vswitchd's AF_PACKET socket has each frame before the ingress qdisc).
  const byHandImpair = nicImpairment(lab, 'q', { index: 0, tap: tapQ }, { direction: 'egress', lossPct: 100 });
  const batch = (argv: string[], lines: string[]) => h.exec(['sh', '-c', `printf '%s\\n' "$@" | ${argv.join(' ')}`, 'x', ...lines]);
  assert.equal(batch(['ip', '-batch', '-'], byHandImpair.ip).code, 0);
  assert.equal(batch(['tc', '-batch', '-'], byHandImpair.tc).code, 0);
  assert.deepEqual(qdiscs(ifbName(lab, 'q', 0)), ['pfifo']);
  assert.ok(qdiscs(tapQ).includes('ingress'), 'the redirect is on q\'s tap');
  const stillThrough = await ping('q', '10.95.0.2');
  process.stderr.write(`# 100% loss on q's ifb (by hand, as on bridges): q's ping of p ${stillThrough ? 'still passes' : 'fails'}\n`);
  assert.ok(stillThrough, 'OVS reads the tap before tc');
  const off = clearImpairment(lab, 'q', { index: 0, tap: tapQ });
  batch(['tc', '-force', '-batch', '-'], off.tc);
  batch(['ip', '-force', '-batch', '-'], off.ip);
  // A rate on what q receives, measured before and after.
  const free = await iperf(true);
  assert.equal((await h.qnet(['impair', lab, 'q', '--rate', '2mbit', '--direction', 'ingress'])).code, 0);
  const limited = await iperf(true);
  process.stderr.write(`# p -> q free ${free.toFixed(1)} Mbit/s, with q's ingress rate 2mbit ${limited.toFixed(2)} Mbit/s\n`);
  assert.ok(limited < 3 && free > 4 * limited, `p -> q at ${limited.toFixed(2)} Mbit/s limited to 2mbit (free ${free.toFixed(1)})`);
  assert.equal((await h.qnet(['impair', lab, 'q', '--clear'])).code, 0);
  assert.deepEqual(qdiscs(tapQ).filter((k) => k === 'tbf' || k === 'pfifo' || k === 'ingress'), []);

  // 4. Link down: q's cable pulled (QEMU's set_link), the ping fails; up, it passes again.
  assert.equal((await h.qnet(['link', lab, 'q', 'down'])).code, 0);
  assert.equal(await ping('p', '10.95.0.3'), false, 'q is unplugged');
  assert.equal((await h.qnet(['link', lab, 'q', 'up'])).code, 0);
  let back = false;
  for (let i = 0; i < 5 && !back; i++) back = await ping('p', '10.95.0.3');
  assert.ok(back, 'q is plugged in again');

  // 5. A capture of the network killed (SIGKILL: no cleanup) leaves its mirror and port; then the lab removed by hand
  // but for its OVN remains (guests killed, links, namespace and run directory gone): `down` finds its br-int ports,
  // the mirror and the NB rows by their markers and removes them, saying so.
  const killedCap = h.exec(
    [
      'sh',
      '-c',
      `"$0" "$1" capture ${lab} lan >/dev/null 2>&1 & p=$!; i=0; while [ $i -lt 100 ] && [ -z "$(ovs-vsctl --timeout=5 --bare --columns=name list Mirror)" ]; do sleep 0.1; i=$((i+1)); done; kill -KILL $p; wait $p; echo "exit $?"`,
      process.execPath,
      QNET,
    ],
    30000,
  );
  assert.match(killedCap.stdout, /exit 137/, killedCap.stderr);
  assert.equal(inside(h).mirrors.length, 1, 'a killed capture leaves its mirror');
  for (const p of await findMarkedProcesses()) if (p.lab === lab) process.kill(p.pid, 'SIGKILL');
  for (let i = 0; i < 50 && (await findMarkedProcesses()).some((p) => p.lab === lab); i++) await new Promise((r) => setTimeout(r, 100));
  const byHand = h.exec([
    'sh',
    '-c',
    `for f in /sys/class/net/*/ifalias; do [ "$(cat $f)" = "qnet:lab=${lab}" ] && ip link delete "$(basename $(dirname $f))"; done; ip netns delete qnet-${lab}; rm -rf /run/qnet/${lab}; true`,
  ]);
  assert.equal(byHand.code, 0, byHand.stderr);
  const left = inside(h);
  assert.equal(left.brInt.length, 4, `two taps, the host side and the killed capture's port still on br-int: ${left.brInt.join(', ')}`);
  assert.ok(left.nb.length > clean.nb.length, 'the NB rows are left');
  // Found by `status`'s discovery too (`down --all` asks the same markers).
  assert.match((await h.qnet(['status', lab])).stdout, /left over: .*4 ports on br-int.*3 OVN northbound rows/s);
  const down = await h.qnet(['down', lab]);
  assert.equal(down.code, 0, down.stderr);
  process.stderr.write(`# down of the remains: ${down.stdout}${down.stderr}\n`);
  assert.match(down.stdout + down.stderr, /4 ports on br-int/);
  assert.match(down.stdout + down.stderr, /1 capture mirror on br-int/);
  assert.match(down.stdout + down.stderr, /northbound row/);
  assert.deepEqual(inside(h), clean, 'nothing of the lab is left');

  const killed = await sim.remove();
  sim = undefined;
  assert.deepEqual(killed, []);
});
