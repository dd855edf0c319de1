// End-to-end: watching and breaking a running lab. `qnet capture` of a tap, a network's bridge and a user-mode NIC
// (QEMU's filter-dump), stopped by its count, by Ctrl-C and by the lab going down, leaving no process; `qnet link`
// pulls and plugs a NIC's cable (the guest sees its carrier go); impairments declared and changed live (tbf for a
// rate, netem where the kernel has it). Real guests under TCG, in the lab's namespace.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { QNET, labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';
import { nodeDir } from '../../src/dirs.js';
import { QmpClient } from '../../src/qemu/qmp.js';
import { nodeFiles } from '../../src/render/qemu.js';
import { ifbName } from '../../src/render/impair.js';

describe('capture and link state on a running lab', () => {
  const lab = labName('watch');
  let before0: HostSnapshot;
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-cap-'));
  const exec = async (n: string, cmd: string, ok = true) => {
    const r = await qnet(['exec', lab, n, '--', 'sh', '-c', cmd]);
    if (ok) assert.equal(r.code, 0, `${n}: ${cmd}: ${r.stdout}${r.stderr}`);
    return r;
  };
  // tcpdump's reading of a pcap file: one line per packet.
  const readPcap = (file: string) => spawnSync('tcpdump', ['-n', '-r', file], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
  const tcpdumps = () => spawnSync('pgrep', ['-f', `tcpdump .*-i (t-|br-)`], { encoding: 'utf8' }).stdout.trim();
  // A capture run as a user would, in the background: its stdout, stderr, and its end.
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [QNET, 'capture', lab, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const done = new Promise<number | null>((resolve) => child.once('close', resolve));
    const until = async (what: () => boolean, ms = 20_000) => {
      const deadline = Date.now() + ms;
      while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(what(), `capture ${args.join(' ')}: stdout ${out} stderr ${err}`);
    };
    return { child, done, until, out: () => out, err: () => err };
  };

  before(async () => {
    before0 = await snapshot();
    const file = writeTopology({
      name: lab,
      networks: { lan: { subnet: '10.93.0.0/24', address: '10.93.0.1' } },
      nodes: {
        p: { nics: [{ network: 'lan', ip: '10.93.0.2', impair: { rate: '200mbit', direction: 'both' } }, { user: {} }] },
        q: { nics: [{ network: 'lan', ip: '10.93.0.3' }] },
      },
    });
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await qnet(['down', lab]);
    rmSync(dir, { recursive: true, force: true });
  });

  // What tcpdump says of itself on stderr, which qnet leaves out (its errors pass).
  const TCPDUMP_CHATTER = /listening on|reading from|link-type|snapshot length|verbose output|packets? (captured|received|dropped)/;
  // Every tcpdump on the machine (a capture of a user-mode NIC runs `tcpdump -r -`, not on an interface).
  const anyTcpdump = () => spawnSync('pgrep', ['-a', '-x', 'tcpdump'], { encoding: 'utf8' }).stdout.trim();
  // The objects added to p's QEMU (a capture's filter-dump is one), asked through qnet's own QMP client.
  const qemuObjects = async (node: string) => {
    const qmp = await QmpClient.connect(nodeFiles(nodeDir(lab, node)).qmp);
    try {
      return ((await qmp.execute('qom-list', { path: '/objects' })) as Array<{ name: string; type: string }>).map((o) => `${o.name} ${o.type}`);
    } finally {
      qmp.close();
    }
  };

  // First, while the lab is new: its namespace's own links would solicit routers and report multicast groups then.
  test('the lab namespace sends no IPv6 of its own: no address on its links, no IPv6 frame in a capture of an idle NIC', async () => {
    assert.equal(spawnSync('ip', ['-n', `qnet-${lab}`, '-6', '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout.trim(), '', 'no IPv6 address in the lab namespace');
    const file = path.join(dir, 'idle.pcap');
    const c = start(['q:eth0', '-w', file]);
    await c.until(() => /capturing q eth0/.test(c.err()));
    // q does nothing meanwhile (its guest has no IPv6): whatever IPv6 passes is the namespace's own.
    await new Promise((r) => setTimeout(r, 6000));
    c.child.kill('SIGINT');
    assert.equal(await c.done, 0, c.err());
    const v6 = spawnSync('tcpdump', ['-n', '-r', file, 'ether proto 0x86dd'], { encoding: 'utf8' });
    assert.equal(v6.status, 0, v6.stderr);
    assert.equal(v6.stdout.trim(), '', 'IPv6 frames on an idle tap');
  });

  test('a capture piped into a reader that stops early (| head -c 24) ends quietly, exit 0, leaving no tcpdump and no QEMU filter', async () => {
    for (const [target, peer] of [
      ['p:eth0', '10.93.0.3'],
      ['p:eth1', '10.0.2.2'],
    ] as const) {
      const child = spawn('bash', ['-c', '"$0" "$1" capture "$2" "$3" -w - | head -c 24 > /dev/null; exit "${PIPESTATUS[0]}"', process.execPath, QNET, lab, target], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const done = new Promise<number | null>((resolve) => child.once('close', resolve));
      const deadline = Date.now() + 20_000;
      while (!/capturing p eth/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.match(err, /capturing p eth/);
      // Packets to write: the first fills what head reads, a later one finds it gone.
      const ping = exec('p', `ping -c 25 -i 0.2 ${peer}`, false);
      const code = await done;
      await ping;
      assert.equal(code, 0, `${target}: ${err}`);
      assert.doesNotMatch(err, /EPIPE|Error|\n\s+at /, target);
      assert.doesNotMatch(err, TCPDUMP_CHATTER, `${target}: tcpdump's chatter: ${err}`);
      assert.match(err, new RegExp(`packets? of ${target.replace(':', ' ')} .*stopped as its reader closed`), err);
      assert.equal(anyTcpdump(), '', `${target}: no tcpdump is left`);
      assert.deepEqual((await qemuObjects('p')).filter((o) => /filter|capture/.test(o)), [], `${target}: no filter is left in p's QEMU`);
    }
  });

  test("a capture of p's NIC while p pings q holds those ICMP packets; --count 5 stops after 5", async () => {
    const file = path.join(dir, 'p.pcap');
    const c = start(['p:eth0', '-w', file, '--count', '5', '--filter', 'icmp']);
    await c.until(() => /capturing p eth0/.test(c.err()));
    await exec('p', 'ping -c 8 -i 0.3 10.93.0.3');
    assert.equal(await c.done, 0, c.err());
    assert.match(c.err(), /5 packets of p eth0 \(tcpdump on t-p-0\), stopped after the count; written to /);
    const lines = readPcap(file);
    assert.equal(lines.length, 5, lines.join('\n'));
    for (const l of lines) assert.match(l, /IP 10\.93\.0\.[23] > 10\.93\.0\.[32]: ICMP echo (request|reply)/);
    assert.equal(tcpdumps(), '', 'no tcpdump is left');
  });

  test('a capture of the network records its bridge; --json gives the summary', async () => {
    const file = path.join(dir, 'lan.pcap');
    const c = start(['lan', '-w', file, '--count', '4', '--filter', 'icmp', '--json']);
    await c.until(() => /capturing network lan/.test(c.err()));
    await exec('q', 'ping -c 6 -i 0.3 10.93.0.2');
    assert.equal(await c.done, 0, c.err());
    const s = JSON.parse(c.out()) as { what: string; interface: string; packets: number; stopped: string; via: string };
    assert.deepEqual([s.what, s.interface, s.packets, s.stopped, s.via], ['network lan', 'br-lan', 4, 'count', 'tcpdump']);
    assert.equal(readPcap(file).length, 4);
  });

  test('Ctrl-C (SIGINT) stops a text capture cleanly and leaves no tcpdump', async () => {
    const c = start(['q']);
    await c.until(() => /capturing q eth0/.test(c.err()));
    await exec('p', 'ping -c 2 -i 0.3 10.93.0.3');
    await c.until(() => /ICMP echo request/.test(c.out()));
    c.child.kill('SIGINT');
    assert.equal(await c.done, 0, c.err());
    assert.match(c.err(), /packets? of q eth0 .*stopped on Ctrl-C/);
    assert.doesNotMatch(c.err(), TCPDUMP_CHATTER, "tcpdump's own lines are left out");
    assert.equal(tcpdumps(), '', 'no tcpdump is left');
  });

  test("a user-mode NIC is captured by QEMU's filter-dump, and its filter is gone after", async () => {
    const file = path.join(dir, 'user.pcap');
    const c = start(['p:1', '-w', file, '--count', '2']);
    await c.until(() => /capturing p eth1 \(QEMU filter-dump on net1\)/.test(c.err()));
    await exec('p', 'ping -c 4 -i 0.3 10.0.2.2', false);
    assert.equal(await c.done, 0, c.err());
    const lines = readPcap(file);
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.ok(lines.every((l) => /10\.0\.2\.|ARP/.test(l)), lines.join('\n'));
    const qom = spawnSync(process.execPath, [QNET, 'status', lab, '--monitor'], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(qom, /filter-dump|qnet-capture/);
    assert.deepEqual(readFileSync(file).subarray(0, 4), Buffer.from([0xd4, 0xc3, 0xb2, 0xa1]));
    // tcpdump -r - writes "reading from file -", ", link-type …" and ", snapshot length …" in three writes.
    assert.doesNotMatch(c.err(), TCPDUMP_CHATTER, "tcpdump's own lines are left out");
  });

  test('link down: the guest sees NO-CARRIER and ping fails; status shows it; link up brings it back', async () => {
    const down = await qnet(['link', lab, 'q:eth0', 'down']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, /q eth0: link down/);
    assert.equal((await exec('q', 'cat /sys/class/net/eth0/carrier')).stdout.trim(), '0');
    assert.match((await exec('q', 'ip link show eth0')).stdout, /NO-CARRIER/);
    assert.notEqual((await exec('p', 'ping -c 2 -W 1 10.93.0.3', false)).code, 0);
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as { nodes: Array<{ name: string; nics: Array<{ link: string }> }> };
    assert.deepEqual(st.nodes.map((n) => [n.name, n.nics.map((x) => x.link)]), [['p', ['up', 'up']], ['q', ['down']]]);
    assert.match((await qnet(['status', lab])).stdout, /eth0 \(link down\)/);
    const g = JSON.parse((await qnet(['graph', lab, '--format', 'json'])).stdout) as { links: Array<{ kind: string; nic: { node: string; link?: string } }> };
    assert.deepEqual(g.links.filter((l) => l.kind === 'network').map((l) => [l.nic.node, l.nic.link]), [['p', undefined], ['q', 'down']]);
    const up = await qnet(['link', lab, 'q', 'up']);
    assert.equal(up.code, 0, up.stderr);
    assert.equal((await exec('q', 'cat /sys/class/net/eth0/carrier')).stdout.trim(), '1');
    await exec('p', 'ping -c 1 -W 5 10.93.0.3');
    assert.doesNotMatch((await qnet(['status', lab])).stdout, /link down/);
  });

  // Traffic control on a tap, read back from the lab namespace.
  const qdiscs = (dev: string) => JSON.parse(spawnSync('ip', ['netns', 'exec', `qnet-${lab}`, 'tc', '-j', 'qdisc', 'show', 'dev', dev], { encoding: 'utf8' }).stdout || '[]') as Array<{ kind: string }>;
  const netemHere = () => {
    const ns = `qnet-e2e-netem-${process.pid}`;
    spawnSync('ip', ['netns', 'add', ns]);
    spawnSync('ip', ['-n', ns, 'link', 'add', 'a', 'type', 'veth', 'peer', 'name', 'b']);
    const ok = spawnSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'a', 'root', 'netem', 'delay', '1ms']).status === 0;
    spawnSync('ip', ['netns', 'delete', ns]);
    return ok;
  };
  // Mbit/s from q's iperf3 client to p's server (q sends) or the other way (-R: q receives), 2 s.
  const iperf = async (reverse: boolean) => {
    await exec('p', 'pgrep iperf3 >/dev/null || iperf3 -s -D');
    const r = await exec('q', `iperf3 -c 10.93.0.2 -t 2 -J ${reverse ? '-R' : ''}`);
    return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6;
  };

  test('an impairment declared in the topology is in force from up (tbf on the tap and on its ifb), and --clear takes it off', async () => {
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as { nodes: Array<{ name: string; nics: Array<{ impair?: string }> }> };
    assert.equal(st.nodes[0]!.nics[0]!.impair, 'rate 200mbit, both');
    assert.match((await qnet(['status', lab])).stdout, /impairments in force: p eth0: rate 200mbit, both/);
    assert.deepEqual(qdiscs('t-p-0').map((q) => q.kind).sort(), ['ingress', 'tbf']);
    const c = await qnet(['impair', lab, 'p:0', '--clear']);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /p eth0: no impairment/);
    assert.ok(!qdiscs('t-p-0').some((q) => q.kind === 'tbf' || q.kind === 'ingress'), JSON.stringify(qdiscs('t-p-0')));
    assert.doesNotMatch((await qnet(['status', lab])).stdout, /impairments in force/);
  });

  test('qnet impair --rate limits what the guest sends (egress, through its ifb) or receives (ingress), live', async () => {
    const free = await iperf(false);
    assert.equal((await qnet(['impair', lab, 'q', '--rate', '2mbit'])).code, 0);
    const sent = await iperf(false);
    const received = await iperf(true);
    assert.ok(sent < 3 && free > 4 * sent, `q sends at ${sent.toFixed(2)} Mbit/s limited to 2mbit (free: ${free.toFixed(1)})`);
    assert.ok(received > 4 * sent, `q still receives at ${received.toFixed(1)} Mbit/s (egress only)`);
    assert.equal((await qnet(['impair', lab, 'q', '--rate', '2mbit', '--direction', 'ingress'])).code, 0);
    assert.ok((await iperf(true)) < 3, 'now what q receives is limited');
    assert.ok((await iperf(false)) > 4 * sent, 'and what it sends is not');
    assert.equal((await qnet(['impair', lab, 'q', '--clear'])).code, 0);
  });

  test('delay and loss: netem where the kernel has it (RTT rises by the delay, 100% loss stops ping), else refused with what is missing', async () => {
    const rtt = async () => Number(/= [\d.]+\/([\d.]+)\//.exec((await exec('p', 'ping -c 5 -i 0.2 -q 10.93.0.3')).stdout)![1]);
    if (netemHere()) {
      const before = await rtt();
      assert.equal((await qnet(['impair', lab, 'q', '--delay', '100ms'])).code, 0);
      const after = await rtt();
      assert.ok(after - before > 80 && after - before < 180, `RTT ${before} -> ${after} ms with 100ms on what q sends`);
      assert.equal((await qnet(['impair', lab, 'q', '--loss', '100%'])).code, 0);
      assert.notEqual((await exec('p', 'ping -c 2 -W 1 10.93.0.3', false)).code, 0);
    } else {
      // A rate in force (in bytes per second, as tc reads "mbps"), then a delay this kernel cannot make: refused
      // before anything is touched, naming the module, and the rate stays.
      const rate = await qnet(['impair', lab, 'q', '--rate', '2mbps']);
      assert.equal(rate.code, 0, rate.stderr);
      assert.match(rate.stderr, /q eth0: rate 16mbit, egress/);
      const ifb = ifbName(lab, 'q', 0);
      const before = [qdiscs('t-q-0'), qdiscs(ifb)];
      assert.ok(before[0]!.some((q) => q.kind === 'ingress') && before[1]!.some((q) => q.kind === 'tbf'), JSON.stringify(before));
      const r = await qnet(['impair', lab, 'q', '--delay', '100ms']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /q eth0: delay 100ms, egress: delay, jitter, loss, duplicate and corrupt need netem, and this kernel has no sch_netem: load it \(`modprobe sch_netem`; kernel option CONFIG_NET_SCH_NETEM\) or use a distribution kernel/);
      assert.match(r.stderr, /Nothing was changed: rate 16mbit, egress is still in force/);
      assert.doesNotMatch(r.stderr, /ifb|mirred|u32|ingress/, 'names netem, not every part of tc');
      assert.deepEqual([qdiscs('t-q-0'), qdiscs(ifb)], before, 'the rate is still in force');
      assert.match((await qnet(['status', lab])).stdout, /q eth0: rate 16mbit, egress/);
      assert.match((await qnet(['doctor'])).stdout, /impairments \(tc\)\s+warn\s+this kernel lacks netem \(sch_netem\): delay, jitter, loss, duplicate and corrupt cannot be set/);
      // up of a topology declaring a delay: refused the same way, before anything is made.
      const other = labName('nonetem');
      const file = writeTopology({ name: other, networks: { lan: { subnet: '10.94.0.0/24' } }, nodes: { a: { nics: [{ network: 'lan', ip: '10.94.0.2', impair: { delay: '20ms', loss: '1%' } }] } } });
      const snap = await snapshot();
      const u = await qnet(['up', file]);
      assert.equal(u.code, 1, u.stderr);
      assert.match(u.stderr, /a eth0 \(delay 20ms, loss 1%, egress\): delay, jitter, loss, duplicate and corrupt need netem, and this kernel has no sch_netem: load it/);
      assert.match(u.stderr, /Nothing was made or changed/);
      assert.doesNotMatch(u.stderr, /roll|step|create/, 'no step was run');
      assert.deepEqual(await snapshot(), snap);
    }
    assert.equal((await qnet(['impair', lab, 'q', '--clear'])).code, 0);
    await exec('p', 'ping -c 1 -W 5 10.93.0.3');
  });

  test('bad references, states and filters are bad input (exit 2) and change nothing', async () => {
    for (const [args, re] of [
      [['link', lab, 'nosuch:0', 'down'], /no node "nosuch"/],
      [['link', lab, 'p', 'down'], /p has 2 NICs; say which: p:eth0, p:eth1/],
      [['link', lab, 'q', 'sideways'], /the state is "down" or "up"/],
      [['capture', lab, 'q:eth4'], /q has no NIC "eth4"/],
      [['capture', lab, 'q', '--filter', 'icmp and'], /--filter "icmp and": /],
      [['capture', lab, 'q', '--count', '0'], /--count: expected a whole number/],
      [['capture', 'no-such-lab', 'q'], /no lab named "no-such-lab" is up/],
      [['impair', lab, 'q', '--delay', 'fast'], /q eth0: --delay: delay is a time like 20ms/],
      [['impair', lab, 'q', '--loss', '150%'], /--loss: loss is at most 100%/],
      [['impair', lab, 'p:1', '--delay', '1ms'], /p eth1: impairments go on a tap, and a user-mode NIC has none/],
      [['impair', lab, 'q'], /say what to impair/],
      [['impair', lab, 'q', '--clear', '--delay', '1ms'], /--clear takes no other impairment/],
    ] as const) {
      const r = await qnet([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    assert.equal(tcpdumps(), '');
  });

  test('a capture stops by itself when the lab goes down, and down works with a link pulled', async () => {
    assert.equal((await qnet(['link', lab, 'p:0', 'down'])).code, 0);
    const tap = start(['q']);
    const user = start(['p:1', '-w', path.join(dir, 'end.pcap')]);
    await tap.until(() => /capturing q eth0/.test(tap.err()));
    await user.until(() => /capturing p eth1/.test(user.err()));
    const d = await qnet(['down', lab]);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(await tap.done, 0, tap.err());
    assert.equal(await user.done, 0, user.err());
    assert.match(tap.err(), /stopped as the lab went down/);
    assert.match(user.err(), /stopped (as the lab went down|at the end of the stream)/);
    assert.equal(tcpdumps(), '');
    assert.deepEqual(await snapshot(), before0);
  });
});
