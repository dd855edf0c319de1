// nat and routed networks and port forwards on a one-host lab on OVN (issue 33), in one simulated host (its own
// network and mount namespaces, OVS on the userspace datapath, the OVN central) with a simulated upstream inside it
// (a namespace beyond a veth, with an HTTP server that reports its peers): guests lease from OVN's DHCP, reach the
// upstream masqueraded (nat) or as themselves (routed), a port forward answers from the upstream and from the host
// itself, `qnet check` agrees with the model; a failure part-way and `down` (without the state file) leave nothing (NB rows, br-int ports,
// OVS bridges, links, routes, nft tables, forwarding).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { labName, ROOT, writeTopology } from './helpers.js';
import { makeSimHosts, type SimHost, type SimHosts } from './ovn-hosts.js';
import { findMarkedProcesses } from '../../src/qemu/process.js';

let sim: SimHosts | undefined;
let server: ChildProcess | undefined;
const lab = labName('ovnnat');
const UP_NS = 'upstream';
const HOST_IP = '198.18.77.1';
const UP_IP = '198.18.77.2';

after(async () => {
  server?.kill('SIGKILL');
  for (const p of await findMarkedProcesses()) if (p.lab === lab) process.kill(p.pid, 'SIGKILL');
  if (sim) await sim.remove();
});

const NB_TABLES = ['Logical_Switch', 'Logical_Switch_Port', 'Logical_Router', 'NAT', 'DHCP_Options', 'DNS', 'ACL', 'Load_Balancer'];

/** What a lab could leave in the simulated host: namespaces, links, routes, nft tables, OVS, NB rows, forwarding. */
function inside(h: SimHost): Record<string, string[]> {
  const lines = (argv: string[]) => {
    const r = h.exec(argv);
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
  };
  return {
    netns: lines(['ip', 'netns', 'list']),
    links: lines(['ip', '-o', 'link', 'show']).map((l) => l.split(':')[1]!.trim().split('@')[0]!),
    // IPv4 only: the link-local IPv6 routes of the host's own links come when their DAD ends, whenever that is.
    routes: lines(['ip', '-4', 'route', 'show', 'table', 'all']),
    nft: lines(['nft', 'list', 'tables']),
    forwarding: lines(['sysctl', '-n', 'net.ipv4.ip_forward']),
    ovsBridges: lines(['ovs-vsctl', '--timeout=5', 'list-br']),
    brInt: lines(['ovs-vsctl', '--timeout=5', 'list-ports', 'br-int']),
    mappings: lines(['ovs-vsctl', '--timeout=5', '--if-exists', 'get', 'Open_vSwitch', '.', 'external_ids:ovn-bridge-mappings']),
    nb: NB_TABLES.flatMap((t) => lines(['ovn-nbctl', '--timeout=5', '--bare', '--columns=_uuid', 'list', t]).map((u) => `${t} ${u}`)),
    runDirs: lines(['ls', '-A', '/run/qnet']),
    qemu: lines(['ps', '-eo', 'stat=,args=']).filter((l) => !l.startsWith('Z') && l.includes(`/run/qnet/${lab}/`)),
  };
}

/** The upstream inside the host: a namespace beyond a veth (host end HOST_IP), an HTTP server on UP_IP:8000. */
async function makeUpstream(h: SimHost): Promise<string[]> {
  for (const argv of [
    ['ip', 'netns', 'add', UP_NS],
    ['ip', 'link', 'add', 'vup', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', UP_NS],
    ['ip', 'addr', 'add', `${HOST_IP}/24`, 'dev', 'vup'],
    ['ip', 'link', 'set', 'vup', 'up'],
    ['ip', '-n', UP_NS, 'addr', 'add', `${UP_IP}/24`, 'dev', 'eth0'],
    ['ip', '-n', UP_NS, 'link', 'set', 'eth0', 'up'],
    ['ip', '-n', UP_NS, 'link', 'set', 'lo', 'up'],
    ['ip', '-n', UP_NS, 'route', 'add', 'default', 'via', HOST_IP],
  ]) {
    const r = h.exec(argv);
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  }
  const peers: string[] = [];
  const js = path.join(ROOT, 'dist', 'src', 'lab', 'demo-server.js');
  server = spawn('nsenter', ['-t', String(h.pid), '-m', '-n', '--', 'ip', 'netns', 'exec', UP_NS, process.execPath, js, '8000', 'upstream', UP_IP], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error('the upstream server did not start')), 20000);
    server!.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const m of buf.matchAll(/^peer (\S+)/gm)) if (!peers.includes(m[1]!.replace(/^::ffff:/, ''))) peers.push(m[1]!.replace(/^::ffff:/, ''));
      if (buf.includes('listening')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return peers;
}

test('one host on OVN: nat with DHCP, routed, a port forward; check agrees; rollback and down leave nothing', { timeout: 900000 }, async () => {
  const file = writeTopology({
    name: lab,
    fabric: 'ovn',
    networks: {
      lan: { mode: 'nat', bridge: 'br0', subnet: '172.16.1.0/24', address: '172.16.1.1', dhcp: { range: '172.16.1.2-172.16.1.100', lease: '12h' } },
      rt: { mode: 'routed', subnet: '10.77.0.0/24', address: '10.77.0.1' },
    },
    forwards: [{ proto: 'tcp', host: 18080, node: 'win', port: 80 }],
    nodes: {
      win: { nics: [{ network: 'lan', mac: '00:26:c6:21:cf:02', model: 'e1000', dhcp: true, ip: '172.16.1.2' }] },
      deb: { nics: [{ network: 'lan', dhcp: true, model: 'virtio' }] },
      r1: { nics: [{ network: 'rt', ip: '10.77.0.10' }] },
    },
  });
  sim = await makeSimHosts(`${process.pid.toString(36)}n`, ['h3']);
  const h = sim.hosts[0]!;
  const setup = await h.qnet(['host', 'setup', '--name', 'h3', '--underlay', h.ip, '--underlay-dev', 'ul0', '--central']);
  assert.equal(setup.code, 0, setup.stderr);
  const peers = await makeUpstream(h);
  const clean = inside(h);
  const exec = (node: string, ...argv: string[]) => h.qnet(['exec', lab, node, '--timeout', '30', '--', ...argv]);

  // 1. A failure right before the last guest's ports are waited for: the NB rows, the host sides, the uplink, the
  // host's routes and nft table, forwarding and the first taps were made by then; all of it is rolled back.
  const dry = await h.qnet(['up', '--dry-run', '--cold', file]);
  assert.equal(dry.code, 0, dry.stderr);
  const at = /^\s*(\d+)\. wait until OVN binds r1's port$/m.exec(dry.stdout)?.[1];
  assert.ok(at, dry.stdout);
  assert.match(dry.stdout, /load the host firewall table ip qnet-/);
  const failed = await h.qnet(['up', '--cold', file], 300000, { QNET_TEST_FAIL_BEFORE_STEP: at });
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /rolled back \d+ steps; nothing of the lab is left/);
  assert.deepEqual(inside(h), clean, 'the rollback removed everything');

  // 2. Up.
  const t0 = Date.now();
  const up = await h.qnet(['up', file], 300000);
  assert.equal(up.code, 0, up.stderr);
  process.stderr.write(`# up of the nat lab on OVN in ${Date.now() - t0} ms\n`);
  try {
    // Leases from OVN: win its static lease by MAC, deb an address from the range.
    const win = await exec('win', 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    assert.match(win.stdout, /inet 172\.16\.1\.2\/24/, win.stdout + win.stderr);
    const deb = await exec('deb', 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    const m = /inet 172\.16\.1\.(\d+)\/24/.exec(deb.stdout);
    assert.ok(m && Number(m[1]) >= 2 && Number(m[1]) <= 100 && m[1] !== '2', deb.stdout + deb.stderr);
    const route = await exec('deb', 'ip', 'route', 'show', 'default');
    assert.match(route.stdout, /default via 172\.16\.1\.1/);

    // nat: the upstream sees the host's address, never the guest's; routed: the guest itself.
    const url = `http://${UP_IP}:8000/`;
    for (const node of ['win', 'deb']) {
      const n = await exec(node, 'wget', '-q', '-O', '-', url);
      assert.equal(n.code, 0, `${node}: ${n.stdout}${n.stderr}`);
      assert.match(n.stdout, /upstream/);
    }
    assert.ok(peers.includes(HOST_IP), `server saw ${peers.join(', ')}`);
    assert.ok(!peers.some((p) => p.startsWith('172.16.1.')), `server saw ${peers.join(', ')}`);
    const r = await exec('r1', 'wget', '-q', '-O', '-', url);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(peers.includes('10.77.0.10'), `server saw ${peers.join(', ')}`);
    // routed: the upstream reaches the guest by its own address (the host routes the subnet to the lab).
    const back = h.exec(['ip', 'netns', 'exec', UP_NS, 'busybox', 'ping', '-c', '1', '-W', '3', '10.77.0.10']);
    assert.equal(back.code, 0, back.stdout + back.stderr);

    // The port forward: from the upstream (prerouting) and from the host itself (output), a real TCP connection.
    const srv = await exec('win', 'httpd', '-p', '80', '-h', '/etc');
    assert.equal(srv.code, 0, srv.stderr);
    const fromUp = h.exec(['ip', 'netns', 'exec', UP_NS, 'busybox', 'wget', '-q', '-O', '-', `http://${HOST_IP}:18080/hostname`]);
    assert.equal(fromUp.code, 0, fromUp.stderr);
    assert.match(fromUp.stdout, /win/);
    const fromHost = h.exec(['busybox', 'wget', '-q', '-O', '-', `http://${HOST_IP}:18080/hostname`]);
    assert.equal(fromHost.code, 0, fromHost.stderr);
    assert.match(fromHost.stdout, /win/);
    const other = h.exec(['ip', 'netns', 'exec', UP_NS, 'busybox', 'wget', '-q', '-T', '3', '-O', '-', `http://${HOST_IP}:18081/hostname`]);
    assert.notEqual(other.code, 0, 'an undeclared port is not forwarded');

    // qnet check: every probe (the lab namespace, the upstream beyond the uplink, the forward) as the model says.
    const tc = Date.now();
    const check = await h.qnet(['check', lab], 300000);
    process.stderr.write(`# qnet check in ${Date.now() - tc} ms:\n${check.stdout.split('\n').map((l) => `#   ${l}`).join('\n')}\n`);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /forward/);
    // `down` works from the markers alone: without the state file, too.
    assert.equal(h.exec(['rm', `/run/qnet/${lab}/state.json`]).code, 0);
  } finally {
    // 3. Down (without the state file): nothing of the lab anywhere, also the host's forwarding as it was.
    const down = await h.qnet(['down', lab]);
    assert.equal(down.code, 0, down.stderr);
  }
  assert.deepEqual(inside(h), clean, 'down removed everything');
  const gone = new Promise((r) => server!.once('exit', r));
  server?.kill('SIGKILL');
  await gone;
  server = undefined;
  const killed = await sim.remove();
  sim = undefined;
  assert.deepEqual(killed, []);
});
