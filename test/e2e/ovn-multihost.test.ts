// A lab over two hosts on OVN (issue 33, stages 2 and 3): two simulated hosts (each its own network and mount
// namespace, OVS on the userspace datapath, its own sshd; a is the central), driven from the underlay namespace over
// SSH, each host's part made by `qnet agent` there. The seed lab with deb1 and deb2 on a, deb3 on b: it comes up,
// each guest has its static address from OVN's DHCP, the guests ping across the Geneve tunnel, deb3 fetches a page
// through deb1's masquerade and user-mode uplink on the other host, status and exec reach each host; down leaves
// nothing on either host or in the NB. Then the failures: SIGKILL of `up` part-way then `down`; b's sshd stopped:
// `up` refuses before any change naming b, `down` removes a's part and names b. Prints the figures.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { labName, ROOT, snapshot, writeTopology, type HostSnapshot } from './helpers.js';
import { makeSimHosts, type SimHost, type SimHosts } from './ovn-hosts.js';
import { findMarkedProcesses } from '../../src/qemu/process.js';

let sim: SimHosts | undefined;
let before0: HostSnapshot;
const lab = labName('mh');
const runDir = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-driver-'));
/** The test's web server in a's lab namespace (a mount namespace of its own, out of the fixture's sweep). */
let httpdPid = 0;

before(async () => {
  before0 = await snapshot();
});

after(async () => {
  for (const p of await findMarkedProcesses()) if (p.lab === lab) process.kill(p.pid, 'SIGKILL');
  if (httpdPid) {
    try {
      process.kill(httpdPid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (sim) await sim.remove();
  rmSync(runDir, { recursive: true, force: true });
});

const NB_TABLES = ['Logical_Switch', 'Logical_Switch_Port', 'Logical_Router', 'DHCP_Options', 'DNS', 'ACL', 'Load_Balancer'];

/** What a lab could leave on a simulated host: namespaces, links, br-int ports, NB rows (on the central), run directories, QEMU. */
function inside(h: SimHost, central: boolean, nodes: string[] = h.name === 'a' ? ['deb1', 'deb2'] : ['deb3']): Record<string, string[]> {
  const lines = (argv: string[]) => h.exec(argv).stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
  return {
    netns: lines(['ip', 'netns', 'list']),
    links: lines(['ip', '-o', 'link', 'show']).map((l) => l.split(':')[1]!.trim().split('@')[0]!),
    brInt: lines(['ovs-vsctl', '--timeout=5', 'list-ports', 'br-int']).filter((p) => !p.startsWith('ovn-')),
    nb: central ? NB_TABLES.flatMap((t) => lines(['ovn-nbctl', '--timeout=5', '--bare', '--columns=_uuid', 'list', t]).map((u) => `${t} ${u}`)) : [],
    runDirs: lines(['ls', '-A', '/run/qnet']).filter((d) => d !== 'host.json'),
    // This host's guests (all simulated hosts share one PID namespace: ps shows every host's processes).
    qemu: lines(['ps', '-eo', 'stat=,args=']).filter((l) => !l.startsWith('Z') && nodes.some((n) => l.includes(`/run/qnet/${lab}/${n}/`))),
  };
}

test('the seed lab over two hosts: up, DHCP, ping and the masquerade across the tunnel, status, exec, down; SIGKILL; a host unreachable', { timeout: 900000 }, async () => {
  const tm = Date.now();
  sim = await makeSimHosts(`${process.pid.toString(36)}m`, ['a', 'b'], { sshd: true });
  const [a, b] = sim.hosts as [SimHost, SimHost];
  const sa = await a.qnet(['host', 'setup', '--name', 'a', '--underlay', a.ip, '--underlay-dev', 'ul0', '--central']);
  assert.equal(sa.code, 0, sa.stderr);
  const sb = await b.qnet(['host', 'setup', '--name', 'b', '--underlay', b.ip, '--underlay-dev', 'ul0', '--remote', a.ip]);
  assert.equal(sb.code, 0, sb.stderr);
  process.stderr.write(`# two hosts with sshd, OVN set up, in ${Date.now() - tm} ms\n`);
  const clean = { a: inside(a, true), b: inside(b, false) };
  const nothingLeft = (what: string) => assert.deepEqual({ a: inside(a, true), b: inside(b, false) }, clean, what);

  // The seed lab, deb1 and deb2 on a, deb3 on b (virtio-net: the checksum pitfall is qnet's to handle).
  const file = writeTopology({});
  const text = readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8')
    .replace(/^name: seed$/m, `name: ${lab}`)
    .replace(/^  deb1:$/m, '  deb1:\n    host: a')
    .replace(/^  deb2:$/m, '  deb2:\n    host: a')
    .replace(/^  deb3:$/m, '  deb3:\n    host: b')
    .replace('mac: "de:ad:be:ef:00:03", model: e1000', 'mac: "de:ad:be:ef:00:03", model: virtio');
  writeFileSync(file, `${text}hosts:\n  a: { ssh: root@${a.ip} }\n  b: { ssh: root@${b.ip} }\novn: { central: a }\n`);
  const drive = (args: string[], timeoutMs?: number, env?: Record<string, string>) => sim!.driveQnet(args, runDir, timeoutMs, env);

  // 1. Up over both hosts.
  const t0 = Date.now();
  const up = await drive(['up', file]);
  const upMs = Date.now() - t0;
  assert.equal(up.code, 0, up.stdout + up.stderr);
  process.stderr.write(`# up over two hosts in ${upMs} ms\n${up.stderr.split('\n').map((l) => `#   ${l}`).join('\n')}\n`);
  assert.match(up.stderr, /a: .*deb1/);
  assert.match(up.stderr, /b: .*deb3/);
  const ns = `qnet-${lab}`;
  assert.ok(inside(a, true).netns!.some((n) => n.startsWith(ns)) && inside(b, false).netns!.some((n) => n.startsWith(ns)), 'each host has the lab namespace');
  assert.equal(inside(a, true).brInt!.length, 3, `deb1, deb2 and the host side on a's br-int: ${inside(a, true).brInt!.join(', ')}`);
  assert.equal(inside(b, false).brInt!.length, 1, `deb3 on b's br-int: ${inside(b, false).brInt!.join(', ')}`);
  // Every logical port bound, each on its own chassis.
  const bound = a.exec(['ovn-sbctl', '--format=csv', '--data=bare', '--no-headings', '--columns=logical_port,chassis', 'find', 'Port_Binding', 'type=""']).stdout;
  const chassisOf = Object.fromEntries(a.exec(['ovn-sbctl', '--format=csv', '--data=bare', '--no-headings', '--columns=_uuid,name', 'list', 'Chassis']).stdout.trim().split('\n').map((l) => l.split(',') as [string, string]));
  const where = Object.fromEntries(bound.trim().split('\n').filter((l) => l.includes(lab)).map((l) => [l.split(',')[0]!.split('.').slice(-2).join('.'), chassisOf[l.split(',')[1]!]]));
  assert.deepEqual(where, { 'deb1.1': 'a', 'deb2.0': 'a', 'deb3.0': 'b', [`host.lan`]: 'a' }, bound);

  // 2. status and exec reach each host's part.
  const st = await drive(['status', lab]);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /host a:[\s\S]*deb1\b.*running[\s\S]*host b:[\s\S]*deb3\b.*running/, st.stdout);
  // graph draws each host as a cluster of the nodes placed there, each node's state as its host reports it.
  const g = await drive(['graph', lab, '--format', 'json']);
  assert.equal(g.code, 0, g.stderr);
  const graph = JSON.parse(g.stdout) as { machines: Array<{ name: string; nodes: string[] }>; nodes: Array<{ name: string; state: string }> };
  assert.deepEqual(graph.machines.map((m) => [m.name, m.nodes]), [['a', ['deb1', 'deb2']], ['b', ['deb3']]]);
  assert.deepEqual(graph.nodes.map((n) => `${n.name} ${n.state}`), ['deb1 running', 'deb2 running', 'deb3 running']);
  // OVN's DHCP gave each host's guest its static address (by its MAC).
  for (const [node, ip] of [['deb2', '192.168.1.2'], ['deb3', '192.168.1.3']] as const) {
    const r = await drive(['exec', lab, node, '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`));
  }
  // Across the tunnel both ways, and to the host side on the gateway host.
  for (const [from, to] of [['deb3', '192.168.1.2'], ['deb2', '192.168.1.3'], ['deb3', '192.168.1.254'], ['deb3', '192.168.1.100']] as const) {
    const r = await drive(['exec', lab, from, '--', 'ping', '-c', '2', '-W', '3', to]);
    assert.equal(r.code, 0, `${from} -> ${to}: ${r.stdout}${r.stderr}`);
  }
  // TCP at full MTU across the tunnel (1500-byte frames fit the 1600-byte underlay with Geneve's 58).
  const big = await drive(['exec', lab, 'deb3', '--', 'ping', '-c', '1', '-W', '3', '-s', '1472', '192.168.1.2']);
  assert.equal(big.code, 0, `a 1500-byte packet from b to a: ${big.stdout}${big.stderr}`);
  // The per-node commands run on the node's host (cli/hosts-front.ts): deb3's cable pulled and plugged on b, 100% loss
  // on what it receives and cleared, a capture of its NIC streamed back (to stdout and to a file written here), and a
  // capture of the whole network, which spans the hosts, refused.
  const reach = async (from: string, to: string) => (await drive(['exec', lab, from, '--', 'ping', '-c', '2', '-W', '2', to])).code === 0;
  assert.equal((await drive(['link', lab, 'deb3', 'down'])).code, 0);
  assert.equal(await reach('deb2', '192.168.1.3'), false, 'deb3 unplugged on b');
  assert.equal((await drive(['link', lab, 'deb3', 'up'])).code, 0);
  let plugged = false;
  for (let i = 0; i < 5 && !plugged; i++) plugged = await reach('deb2', '192.168.1.3');
  assert.ok(plugged, 'deb3 plugged in again');
  const lossOn = await drive(['impair', lab, 'deb3', '--loss', '100%', '--direction', 'ingress']);
  assert.equal(lossOn.code, 0, lossOn.stderr);
  assert.equal(await reach('deb2', '192.168.1.3'), false, "deb3 receives nothing");
  assert.equal((await drive(['impair', lab, 'deb3', '--clear'])).code, 0);
  assert.ok(await reach('deb2', '192.168.1.3'), 'after --clear');
  const capText = drive(['capture', lab, 'deb3', '--count', '4', '--filter', 'icmp'], 60000);
  const pcapFile = path.join(runDir, 'deb3.pcap');
  const capFile = drive(['capture', lab, 'deb3', '--count', '4', '--filter', 'icmp', '-w', pcapFile], 60000);
  await new Promise((r) => setTimeout(r, 2500));
  await drive(['exec', lab, 'deb2', '--', 'ping', '-c', '2', '-W', '2', '192.168.1.3']);
  const [ct, cf] = [await capText, await capFile];
  assert.equal(ct.code, 0, ct.stderr);
  assert.equal((ct.stdout.match(/ICMP echo (request|reply)/g) ?? []).length, 4, ct.stdout + ct.stderr);
  assert.equal(cf.code, 0, cf.stderr);
  const readBack = spawnSync('tcpdump', ['-n', '-r', pcapFile], { encoding: 'utf8' });
  assert.equal((readBack.stdout.match(/ICMP echo (request|reply)/g) ?? []).length, 4, `the pcap written on the driving side: ${readBack.stdout}${readBack.stderr}`);
  const whole = await drive(['capture', lab, 'lan', '--count', '1']);
  assert.equal(whole.code, 2, whole.stderr);
  assert.match(whole.stderr, /network lan of lab \S+ spans hosts a, b: .*its NICs: deb1:1, deb2:0, deb3:0/);

  // deb3 (on b) fetches a page from the upstream through deb1's masquerade and QEMU user-mode uplink (on a).
  const www = path.join(runDir, 'www');
  writeFileSync(path.join(runDir, 'index.html'), 'hello from upstream\n');
  const httpd = a.exec(['sh', '-c', `mkdir -p ${www} && cp ${path.join(runDir, 'index.html')} ${www}/ && { ip netns exec ${ns} busybox httpd -f -p 127.0.0.1:8080 -h ${www} >/dev/null 2>&1 & echo $!; }`]);
  assert.equal(httpd.code, 0, httpd.stderr);
  httpdPid = Number(httpd.stdout.trim());
  assert.ok(readFileSync(`/proc/${httpdPid}/cmdline`, 'utf8').includes(www), 'the pid is the web server\'s');
  const fetch = await drive(['exec', lab, 'deb3', '--', 'wget', '-q', '-O', '-', 'http://10.0.2.2:8080/index.html']);
  assert.equal(fetch.code, 0, fetch.stdout + fetch.stderr);
  assert.equal(fetch.stdout, 'hello from upstream\n');

  // `qnet check` across hosts: every cell of the matrix and the seed's declared checks as the model predicts (deb3's
  // TCP to the upstream through deb1's masquerade on the other host among them).
  const tc = Date.now();
  const check = await drive(['check', lab]);
  process.stderr.write(`# qnet check over two hosts in ${Date.now() - tc} ms:\n${check.stdout.split('\n').map((l) => `#   ${l}`).join('\n')}\n`);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /deb3 .*upstream.*tcp/i);

  // 3. Down: nothing of the lab on either host or in the NB.
  const t1 = Date.now();
  const down = await drive(['down', lab]);
  assert.equal(down.code, 0, down.stderr);
  process.stderr.write(`# down over two hosts in ${Date.now() - t1} ms\n${down.stderr.split('\n').map((l) => `#   ${l}`).join('\n')}\n`);
  process.kill(httpdPid, 'SIGKILL');
  httpdPid = 0;
  nothingLeft('down removed everything on both hosts and in the NB');

  // 4. A failure on b part-way (deb3's QEMU started, its tap moved to br-int's namespace): every host's part and every NB row are undone.
  const failed = await drive(['up', file], 300000, { QNET_TEST_FAIL_HOST_STEP: 'b:9' });
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /hosts\.b: .*injected failure before step 9/);
  assert.match(failed.stderr, /rolled back on 2 of 2 hosts; nothing of the lab is left on any host/);
  nothingLeft('the failure on b rolled back both hosts and the NB');

  // 5. SIGKILL of `up` part-way (once b has started its part), then `down` of the file without any state of the
  // driver's: nothing is left (each host's agent saw its driver go and undid its part; down removes the rest).
  const killedUp = drive(['up', file]);
  const child = killedUp.child!;
  let seen = '';
  child.stderr!.on('data', (d) => (seen += d));
  for (let t = 0; t < 600 && !/b: (restore|start) deb3/.test(seen); t++) await new Promise((r) => setTimeout(r, 50));
  assert.match(seen, /b: (restore|start) deb3/, 'up reached b\'s guest');
  child.kill('SIGKILL');
  await killedUp;
  // The hosts' agents undo their parts once their SSH session ends; wait for them to finish.
  const agents = () => sim!.drive(['ps', '-eo', 'args=']).stdout.split('\n').filter((l) => l.endsWith(' agent') && l.includes(ROOT));
  for (let t = 0; t < 200 && agents().length; t++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(agents(), [], 'no agent is left running');
  rmSync(path.join(runDir, '.hosts'), { recursive: true, force: true });
  const down2 = await drive(['down', file]);
  assert.equal(down2.code, 0, down2.stderr);
  nothingLeft(`SIGKILL of up, then down without the driver's state, left nothing: ${down2.stderr}`);

  // 6. b's sshd stopped: up refuses before any change, naming b; with the lab up, down removes a's part and names b.
  const sshdOff = () => assert.equal(b.exec(['sh', '-c', 'kill $(cat /run/qnet-sshd/sshd.pid)']).code, 0);
  const sshdOn = () => {
    for (let t = 0; t < 50 && b.exec(['test', '-e', '/run/qnet-sshd/sshd.pid']).code === 0; t++) spawnSleep(100);
    assert.equal(b.exec(['/usr/sbin/sshd', '-f', '/run/qnet-sshd/sshd_config']).code, 0);
  };
  sshdOff();
  const refused = await drive(['up', file]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, new RegExp(`hosts\\.b \\(root@${b.ip.replace(/\./g, '\\.')}\\) cannot be reached over SSH`));
  assert.match(refused.stderr, /nothing was made or changed on any host/);
  nothingLeft('up refused before any change');
  sshdOn();
  // (up --check: the declared checks run once it is up, across the hosts.)
  const again = await drive(['up', '--check', file]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /all 5 declared checks passed/);
  sshdOff();
  const partial = await drive(['down', lab]);
  assert.equal(partial.code, 1, partial.stderr);
  assert.match(partial.stderr, /hosts\.b \(root@[\d.]+\) cannot be reached over SSH/);
  assert.match(partial.stderr, /lab \S+ is down on 1 of 2 hosts/);
  assert.deepEqual(inside(a, true), clean.a, 'a\'s part and the NB rows are gone');
  assert.notDeepEqual(inside(b, false), clean.b, 'b\'s part is still there');
  sshdOn();
  const rest = await drive(['down', lab]);
  assert.equal(rest.code, 0, rest.stderr);
  nothingLeft('the second down removed b\'s part');

  const killed = await sim.remove();
  sim = undefined;
  assert.deepEqual(killed, [], '`qnet host stop` stopped every daemon');
  const now = await snapshot();
  assert.deepEqual(now, before0);
});

test('a nat network over two hosts with its gateway on b: OVN DHCP, a port forward on b to a guest on a, a spoofed source from b dropped, check agrees, down leaves nothing', { timeout: 600000 }, async () => {
  sim = await makeSimHosts(`${process.pid.toString(36)}g`, ['a', 'b'], { sshd: true });
  const [a, b] = sim.hosts as [SimHost, SimHost];
  assert.equal((await a.qnet(['host', 'setup', '--name', 'a', '--underlay', a.ip, '--underlay-dev', 'ul0', '--central'])).code, 0);
  assert.equal((await b.qnet(['host', 'setup', '--name', 'b', '--underlay', b.ip, '--underlay-dev', 'ul0', '--remote', a.ip])).code, 0);
  const more = (h: SimHost) => ({
    ...inside(h, h.name === 'a', ['win', 'deb']),
    nft: h.exec(['nft', 'list', 'tables']).stdout.trim().split('\n').sort(),
    routes: h.exec(['ip', 'route', 'show']).stdout.trim().split('\n').sort(),
    forwarding: [h.exec(['sysctl', '-n', 'net.ipv4.ip_forward']).stdout.trim()],
  });
  const clean = { a: more(a), b: more(b) };
  const file = writeTopology({
    name: lab,
    hosts: { a: { ssh: `root@${a.ip}` }, b: { ssh: `root@${b.ip}` } },
    ovn: { central: 'a', gateway: 'b' },
    networks: { lan: { mode: 'nat', subnet: '172.16.1.0/24', address: '172.16.1.1', dhcp: { range: '172.16.1.50-172.16.1.60' } } },
    forwards: [{ proto: 'tcp', host: 18080, node: 'win', port: 80 }],
    nodes: {
      win: { host: 'a', nics: [{ network: 'lan', mac: '00:26:c6:21:cf:02', dhcp: true, ip: '172.16.1.2', model: 'virtio' }] },
      deb: { host: 'b', nics: [{ network: 'lan', ip: '172.16.1.3', model: 'virtio' }] },
    },
  });
  const drive = (args: string[], timeoutMs?: number) => sim!.driveQnet(args, runDir, timeoutMs);
  const exec = (node: string, ...argv: string[]) => drive(['exec', lab, node, '--timeout', '30', '--', ...argv]);
  const t0 = Date.now();
  const up = await drive(['up', file]);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  process.stderr.write(`# nat lab over two hosts (gateway b) up in ${Date.now() - t0} ms\n`);
  try {
    // The host side, uplink and masquerade are on b (the gateway), nothing of them on a.
    assert.ok(more(b).nft.some((t) => t.includes(`qnet-${lab}`)), `b holds the lab's nft table: ${more(b).nft.join(', ')}`);
    assert.ok(!more(a).nft.some((t) => t.includes(`qnet-${lab}`)), 'a has none');
    // OVN's DHCP: win (on a) its static lease by MAC; deb (on b) its static address.
    const win = await exec('win', 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    assert.match(win.stdout, /inet 172\.16\.1\.2\/24/, win.stdout + win.stderr);
    const route = await exec('win', 'ip', 'route', 'show', 'default');
    assert.match(route.stdout, /default via 172\.16\.1\.1/);
    // The port forward on b reaches the web server of win on a, across the tunnel: from the underlay (the driving
    // side) and from b itself.
    const srv = await exec('win', 'httpd', '-p', '80', '-h', '/etc');
    assert.equal(srv.code, 0, srv.stderr);
    const fromHost = b.exec(['timeout', '10', 'busybox', 'wget', '-q', '-O', '-', `http://${b.ip}:18080/hostname`]);
    assert.equal(fromHost.code, 0, fromHost.stderr);
    assert.match(fromHost.stdout, /win/);
    const fromUnderlay = sim.drive(['timeout', '10', 'busybox', 'wget', '-q', '-O', '-', `http://${b.ip}:18080/hostname`]);
    assert.equal(fromUnderlay.code, 0, fromUnderlay.stderr);
    assert.match(fromUnderlay.stdout, /win/);
    // Anti-spoofing (OVN port security): deb (on b) reaches win (on a) from its own address, not from another.
    const own = await exec('deb', 'ping', '-c', '2', '-W', '3', '172.16.1.2');
    assert.equal(own.code, 0, own.stdout + own.stderr);
    assert.equal((await exec('deb', 'ip', 'addr', 'add', '172.16.1.222/24', 'dev', 'eth0')).code, 0);
    const spoofed = await exec('deb', 'ping', '-c', '2', '-W', '3', '-I', '172.16.1.222', '172.16.1.2');
    assert.notEqual(spoofed.code, 0, `a spoofed source was dropped: ${spoofed.stdout}`);
    assert.equal((await exec('deb', 'ip', 'addr', 'del', '172.16.1.222/24', 'dev', 'eth0')).code, 0);
    // qnet check: the lab namespace, the upstream beyond the uplink and the forward, all on b, as the model says.
    const tc = Date.now();
    const check = await drive(['check', lab]);
    process.stderr.write(`# qnet check (gateway b) in ${Date.now() - tc} ms:\n${check.stdout.split('\n').map((l) => `#   ${l}`).join('\n')}\n`);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  } finally {
    const down = await drive(['down', lab]);
    assert.equal(down.code, 0, down.stderr);
  }
  assert.deepEqual({ a: more(a), b: more(b) }, clean, 'down left nothing on either host');
  const killed = await sim.remove();
  sim = undefined;
  assert.deepEqual(killed, []);
});

function spawnSleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
