// End-to-end: host-provided networks (nat, routed, isolated) with dnsmasq DHCP/DNS and port forwards. "The
// internet" is a namespace this test makes, joined to the host by a veth, with an HTTP server that reports peers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labName, makeUpstream, qnet, sh, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

describe('nat, routed and isolated networks with DHCP, DNS and port forwards', () => {
  const lab = labName('nets');
  const tag = process.pid.toString(36).slice(-5);
  let upstream: Awaited<ReturnType<typeof makeUpstream>>;
  let before0: HostSnapshot;
  const exec = (node: string, ...argv: string[]) => qnet(['exec', lab, node, '--timeout', '30', '--', ...argv]);

  before(async () => {
    before0 = await snapshot();
    upstream = await makeUpstream(tag, 77);
    const file = writeTopology({
      name: lab,
      networks: {
        lan: { mode: 'nat', bridge: 'br0', subnet: '172.16.1.0/24', address: '172.16.1.1', dhcp: { range: '172.16.1.2-172.16.1.100', lease: '12h' } },
        rt: { mode: 'routed', subnet: '10.77.0.0/24', address: '10.77.0.1' },
        iso: { mode: 'isolated' },
      },
      forwards: [
        { proto: 'tcp', host: 18080, node: 'win', port: 80 },
        { proto: 'udp', host: 19999, node: 'win', port: 9999 },
      ],
      nodes: {
        win: { nics: [{ network: 'lan', mac: '00:26:c6:21:cf:02', model: 'e1000', dhcp: true, ip: '172.16.1.2' }] },
        deb: { nics: [{ network: 'lan', dhcp: true }] },
        r1: { nics: [{ network: 'rt', ip: '10.77.0.10' }] },
        i1: { nics: [{ network: 'iso', ip: '10.78.0.10/24' }] },
      },
    });
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    const d = await qnet(['down', lab]);
    upstream?.stop();
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await snapshot(), before0, 'after down: no dnsmasq, nft table, route, veth, namespace or file remains');
  });

  test('the static lease gives 00:26:c6:21:cf:02 172.16.1.2; the other guest gets a range address', async () => {
    const win = await exec('win', 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    assert.match(win.stdout, /inet 172\.16\.1\.2\/24/);
    const deb = await exec('deb', 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    const m = /inet 172\.16\.1\.(\d+)\/24/.exec(deb.stdout);
    assert.ok(m && Number(m[1]) >= 2 && Number(m[1]) <= 100 && m[1] !== '2', deb.stdout);
    const leases = JSON.parse((await qnet(['leases', lab, '--json'])).stdout) as Array<{ mac: string; ip: string; hostname: string }>;
    assert.ok(leases.some((l) => l.mac === '00:26:c6:21:cf:02' && l.ip === '172.16.1.2' && l.hostname === 'win'));
    assert.ok(leases.some((l) => l.hostname === 'deb' && l.ip === `172.16.1.${m![1]}`));
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout);
    const debNic = st.nodes.find((n: { name: string }) => n.name === 'deb').nics[0];
    assert.deepEqual([debNic.dhcp, debNic.addresses], [true, [`172.16.1.${m![1]}/24`]], 'status shows the leased address');
  });

  test('each guest resolves the other by name (deb, deb.<lab>) through dnsmasq', async () => {
    const a = await exec('win', 'nslookup', 'deb');
    assert.match(a.stdout, /Address:?\s+172\.16\.1\.\d+/);
    const b = await exec('deb', 'nslookup', `win.${lab}`);
    assert.match(b.stdout, /172\.16\.1\.2/);
    const c = await exec('deb', 'ping', '-c', '1', '-W', '3', 'r1');
    assert.equal(c.code, 0, c.stdout + c.stderr);
  });

  test('dnsmasq answers on its bridge only', async () => {
    const ss = sh(['ip', 'netns', 'exec', `qnet-${lab}`, 'ss', '-lnup']).stdout;
    const dns = ss.split('\n').filter((l) => /dnsmasq/.test(l) && /:53\s/.test(l));
    assert.ok(dns.length > 0, ss);
    for (const l of dns) assert.match(l, /172\.16\.1\.1(%br0)?:53/, `DNS bound beyond the bridge: ${l}`);
  });

  test('from the nat network the upstream sees the host uplink address; from the routed one the guest itself', async () => {
    const url = `http://${upstream.ip}:8000/`;
    const n = await exec('win', 'wget', '-q', '-O', '-', url);
    assert.equal(n.code, 0, n.stderr);
    assert.match(n.stdout, /upstream/);
    assert.ok(upstream.peers.includes(upstream.hostIp), `server saw ${upstream.peers.join(', ')}`);
    assert.ok(!upstream.peers.includes('172.16.1.2'));
    const r = await exec('r1', 'wget', '-q', '-O', '-', url);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(upstream.peers.includes('10.77.0.10'), `server saw ${upstream.peers.join(', ')}`);
  });

  test('from the isolated network the fetch fails and the host side is unreachable', async () => {
    const f = await exec('i1', 'wget', '-q', '-O', '-', `http://${upstream.ip}:8000/`);
    assert.notEqual(f.code, 0);
    for (const addr of ['172.16.1.1', '10.77.0.1', upstream.hostIp]) {
      const p = await exec('i1', 'ping', '-c', '1', '-W', '1', addr);
      assert.notEqual(p.code, 0, `${addr} must be unreachable from the isolated network`);
    }
  });

  test('declared port forwards reach the guest (TCP and UDP); an undeclared port does not', async () => {
    const srv = await exec('win', 'httpd', '-p', '80', '-h', '/etc');
    assert.equal(srv.code, 0, srv.stderr);
    const get = sh(['ip', 'netns', 'exec', upstream.ns, 'busybox', 'wget', '-q', '-O', '-', `http://${upstream.hostIp}:18080/hostname`], false);
    assert.equal(get.stdout.trim(), 'win', get.stderr);
    const other = sh(['ip', 'netns', 'exec', upstream.ns, 'busybox', 'wget', '-q', '-O', '-', `http://${upstream.hostIp}:18081/hostname`], false);
    assert.notEqual(other.code, 0);
    // The guest has no UDP server (busybox's nc has no -u): its kernel's count of datagrams to closed ports
    // shows whether a datagram arrived. A declared forward raises it; an undeclared port does not.
    const noPorts = async () => {
      const snmp = (await exec('win', 'cat', '/proc/net/snmp')).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
      const head = snmp[0]!.trim().split(/\s+/);
      return Number(snmp[1]!.trim().split(/\s+/)[head.indexOf('NoPorts')]);
    };
    const send = (port: number) => sh(['ip', 'netns', 'exec', upstream.ns, 'bash', '-c', `echo via-udp > /dev/udp/${upstream.hostIp}/${port}`]);
    const n0 = await noPorts();
    send(19998);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await noPorts(), n0, 'an undeclared UDP port reached the guest');
    send(19999);
    let n1 = n0;
    for (let i = 0; i < 20 && n1 === n0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      n1 = await noPorts();
    }
    assert.equal(n1, n0 + 1, 'the declared UDP forward delivered one datagram to the guest');
  });

  // Captures frames matching `filter` on an interface of the lab namespace while `during` runs.
  async function capture(iface: string, filter: string, during: () => Promise<unknown>): Promise<string[]> {
    const { spawn } = await import('node:child_process');
    const child = spawn('ip', ['netns', 'exec', `qnet-${lab}`, 'tcpdump', '-l', '-n', '-e', '-i', iface, filter], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise<void>((resolve) => child.stderr.once('data', () => resolve())); // "listening on …"
    await during();
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
    return out.split('\n').filter(Boolean);
  }

  test('a spoofed source MAC or IPv4 leaves the guest but never enters the bridge (nat network default)', async () => {
    const filter = 'host 172.16.1.77 or ether src 02:00:00:00:00:99';
    const spoof = () =>
      exec('win', 'sh', '-c',
        'ip addr add 172.16.1.77/24 dev eth0; ping -c 2 -W 1 -I 172.16.1.77 172.16.1.1; ip addr del 172.16.1.77/24 dev eth0; ' +
        'ip link set eth0 address 02:00:00:00:00:99; ping -c 2 -W 1 172.16.1.1; ip link set eth0 address 00:26:c6:21:cf:02; true');
    let onTap: string[] = [];
    const onBridge = await capture('br0', filter, async () => {
      onTap = await capture('t-win-0', filter, spoof);
    });
    assert.ok(onTap.length >= 2, `the guest did send spoofed frames (tap capture: ${onTap.length})`);
    assert.deepEqual(onBridge, [], 'no spoofed frame reached the bridge');
    const ok = await exec('win', 'ping', '-c', '1', '-W', '3', '172.16.1.1');
    assert.equal(ok.code, 0, 'with its own MAC and address the guest still gets through');
  });

  test('a guest running its own DHCP server cannot answer its neighbours', async () => {
    const rogue = await exec('win', 'sh', '-c',
      'printf "start 172.16.1.200\nend 172.16.1.210\ninterface eth0\nlease_file /tmp/rogue.leases\n" > /tmp/rogue.conf; touch /tmp/rogue.leases; udhcpd /tmp/rogue.conf; echo started');
    assert.equal(rogue.code, 0, rogue.stderr);
    const filter = 'udp src port 67 and ether src 00:26:c6:21:cf:02';
    let onTap: string[] = [];
    const onBridge = await capture('br0', filter, async () => {
      // udhcpd probes the address it offers (about 2 s) before it answers: keep listening a little longer.
      onTap = await capture('t-win-0', filter, () => exec('deb', 'sh', '-c', 'udhcpc -i eth0 -n -q -t 3 -T 1 -s /bin/true; sleep 4'));
    });
    await exec('win', 'sh', '-c', 'killall udhcpd; true');
    assert.ok(onTap.length >= 1, 'the rogue server did answer (seen on its tap)');
    assert.deepEqual(onBridge, [], 'no rogue DHCP answer reached the bridge');
  });

  test('the death of dnsmasq is noticed and shown by status', async () => {
    const s = JSON.parse((await qnet(['status', lab, '--json'])).stdout);
    const svc = s.services.find((x: { name: string }) => x.name === 'dnsmasq:lan');
    assert.equal(svc.state, 'running');
    process.kill(svc.pid, 'SIGKILL');
    let after0 = s;
    for (let i = 0; i < 50 && after0.services[0].state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after0 = JSON.parse((await qnet(['status', lab, '--json'])).stdout);
    }
    assert.equal(after0.services[0].state, 'dead');
    assert.equal(after0.status, 'degraded');
  });
});

describe('labs side by side', () => {
  const a = labName('sida');
  const b = labName('sidb');
  let before0: HostSnapshot;
  const topo = (name: string, third: number) => ({
    name,
    networks: { lan: { mode: 'nat', bridge: 'kbr0', subnet: `10.6${third}.0.0/24`, address: `10.6${third}.0.1` } },
    nodes: { deb1: { nics: [{ network: 'lan', tap: 'ktap1', mac: 'de:ad:be:ef:00:01', ip: `10.6${third}.0.2` }] } },
  });
  before(async () => {
    before0 = await snapshot();
    const [ra, rb] = await Promise.all([qnet(['up', writeTopology(topo(a, 1))]), qnet(['up', writeTopology(topo(b, 2))])]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
  });
  after(async () => {
    await qnet(['down', a]);
    await qnet(['down', b]);
    assert.deepEqual(await snapshot(), before0);
  });

  test('identical node, bridge, tap and MAC names run at once; each lab works, neither reaches the other', async () => {
    for (const [lab, third] of [[a, 1], [b, 2]] as const) {
      const s = JSON.parse((await qnet(['status', lab, '--json'])).stdout);
      assert.equal(s.status, 'up');
      assert.equal(s.networks[0].bridge, 'kbr0');
      const own = await qnet(['exec', lab, 'deb1', '--', 'ping', '-c', '1', '-W', '2', `10.6${third}.0.1`]);
      assert.equal(own.code, 0, `${lab} reaches its own gateway`);
    }
    const cross = await qnet(['exec', a, 'deb1', '--', 'ping', '-c', '2', '-W', '2', '10.62.0.2']);
    assert.notEqual(cross.code, 0, 'a guest of one lab must not reach a guest of another');
    const back = await qnet(['exec', b, 'deb1', '--', 'ping', '-c', '2', '-W', '2', '10.61.0.2']);
    assert.notEqual(back.code, 0);
  });

  test("each lab's guests run as a uid of their own, which cannot open the other lab's sockets", async () => {
    const { readFileSync } = await import('node:fs');
    const uidOf = async (lab: string) => {
      const s = JSON.parse((await qnet(['status', lab, '--json'])).stdout);
      return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${s.nodes[0].pid}/status`, 'utf8'))![1]);
    };
    const ua = await uidOf(a);
    const ub = await uidOf(b);
    assert.notEqual(ua, ub);
    assert.ok(ua > 0 && ub > 0);
    const qmpB = `${process.env.QNET_RUN_DIR ?? '/run/qnet'}/${b}/deb1/qmp.sock`;
    const probe = `require('net').connect(${JSON.stringify(qmpB)}).on('connect',()=>{console.log('CONNECTED');process.exit(0)}).on('error',e=>{console.log(e.code);process.exit(0)})`;
    const asA = sh(['setpriv', `--reuid=${ua}`, `--regid=${ua}`, '--clear-groups', process.execPath, '-e', probe], false);
    assert.match(asA.stdout, /EACCES/, `lab ${a}'s uid must not reach lab ${b}'s QMP socket: ${asA.stdout}${asA.stderr}`);
    const asB = sh(['setpriv', `--reuid=${ub}`, `--regid=${ub}`, '--clear-groups', process.execPath, '-e', probe], false);
    assert.match(asB.stdout, /CONNECTED/, 'its own uid can (the check itself works)');
  });

  test('a third lab asking for a subnet the host already routes is refused before anything is made', async () => {
    const before1 = await snapshot();
    const r = await qnet(['up', writeTopology(topo(labName('sidc'), 1))]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /networks\.lan: the host already has a route to 10\.61\.0\.0\/24/);
    assert.deepEqual(await snapshot(), before1);
  });
});
