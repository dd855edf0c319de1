// End-to-end: `qnet export --format sh` of every example. Each one it accepts is exported, run by hand (ifup.sh,
// start.sh), measured with the example's declared checks the way `qnet check` measures them (probes and listeners
// in the guests through their exported agent sockets, listeners in the namespace or on the host), and removed by
// ifdown.sh, after which the host is exactly as before; the lab namespace (the host side of its networks) must
// reach every guest address the model says it reaches. The nat lab has no declared checks: its DHCP leases, DNS,
// uplink, port forward and masquerade (to a simulated upstream) are measured instead. Examples with image nodes or
// with networks on a real LAN (bridged, macnat) are refused with exit 2 and the reason.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { resolveChecks, type ResolvedCheck } from '../../src/check/declared.js';
import { endpoints, predictOne, PROBE_UPSTREAM, type Destination, type LiveFacts } from '../../src/check/model.js';
import { LISTEN_ARG, listenScript, parseProbeOutput, probeKey, probeScript, stopScript, type ProbeSpec } from '../../src/check/scripts.js';
import { RealRunner } from '../../src/host/run.js';
import { bridgeVlanFiltering } from '../../src/host/kernel.js';
import { parseLeases } from '../../src/lab/leases.js';
import { AgentClient } from '../../src/qemu/agent.js';
import { uplinkHostIf } from '../../src/render/uplink.js';
import { usesVlans } from '../../src/render/l2.js';
import { formatIPv4, parseIPv4 } from '../../src/topology/ipv4.js';
import { loadTopology } from '../../src/topology/load.js';
import { onLan, usesUplink, type ResolvedLab } from '../../src/topology/model.js';
import { ROOT, labName, makeUpstream, qnet, snapshot } from './helpers.js';

const EXAMPLES = path.join(ROOT, 'examples');
const LISTENER = path.join(ROOT, 'dist', 'src', 'lab', 'check-listener.js');

/** Runs one of the exported scripts as root would by hand. */
function script(dir: string, name: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('sh', [path.join(dir, name)], { encoding: 'utf8', cwd: ROOT, timeout: 300_000 });
}

/** Runs a shell script in a guest through its exported agent socket; its stdout. */
async function guestSh(dir: string, node: string, text: string, args: string[] = []): Promise<string> {
  const agent = await AgentClient.connect(path.join(dir, node, 'agent.sock'), 10_000);
  try {
    const r = await agent.exec(['sh', '-c', text, 'sh', ...args], { timeoutMs: 60_000 });
    return r.stdout.toString();
  } finally {
    agent.close();
  }
}

/** Starts check-listener.js on ADDR:PORTs (in the namespace `ns`, or on the host) and waits until it listens. */
function listen(ns: string | undefined, addrs: string[], children: ChildProcess[]): Promise<void> {
  const argv = [...(ns ? ['ip', 'netns', 'exec', ns] : []), process.execPath, LISTENER, ...addrs];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`check listener exited (${code})`)));
  });
}

/** The host's address on the exported lab's uplink (the "upstream" of its checks), if it has one. */
function upstreamOf(lab: ResolvedLab): number | undefined {
  if (!lab.networks.some(usesUplink)) return undefined;
  const j = JSON.parse(spawnSync('ip', ['-j', '-4', 'addr', 'show', 'dev', uplinkHostIf(lab.name)], { encoding: 'utf8' }).stdout) as Array<{ addr_info: Array<{ local: string }> }>;
  return parseIPv4(j[0]!.addr_info[0]!.local)!;
}

/**
 * Measures one declared check on the exported lab as `qnet check` does: a TCP listener where the probe goes (in
 * the destination guest, in the lab namespace, or on the host's end of the uplink), the probe script run at the
 * source; true when the probe got through.
 */
async function measure(dir: string, lab: ResolvedLab, c: ResolvedCheck, live: LiveFacts): Promise<boolean> {
  const d: Destination = c.destination;
  const spec: ProbeSpec = c.check.probe === 'ping' ? { probe: 'ping', ip: formatIPv4(d.ip) } : { probe: 'tcp', ip: formatIPv4(d.ip), port: d.port ?? c.check.port! };
  const children: ChildProcess[] = [];
  let listening: string | undefined;
  let probeAddr = false;
  try {
    if (d.kind === 'upstream' && live.upstream === undefined) {
      // No uplink: "beyond the lab" is an address on the namespace's loopback, as `qnet check` puts it there.
      spawnSync('ip', ['-n', lab.netns, 'addr', 'add', `${PROBE_UPSTREAM}/32`, 'dev', 'lo']);
      probeAddr = true;
    }
    if (spec.probe === 'tcp') {
      if (d.kind === 'node') {
        await guestSh(dir, d.node!, listenScript([spec.port!]), [LISTEN_ARG]);
        listening = d.node;
      } else if (d.kind === 'host' || (d.kind === 'upstream' && live.upstream === undefined)) await listen(lab.netns, [`${spec.ip}:${spec.port}`], children);
      else if (d.kind === 'upstream') await listen(undefined, [`${spec.ip}:${spec.port}`], children);
      else throw new Error(`${c.label}: this test does not measure a ${d.kind} destination yet`);
    }
    if (c.source.kind !== 'node') throw new Error(`${c.label}: this test measures from guests only`);
    const out = await guestSh(dir, c.source.node!, probeScript([spec]));
    const r = parseProbeOutput(out).get(probeKey(spec));
    assert.ok(r, `${c.label}: no result in ${JSON.stringify(out)}`);
    return r.ok;
  } finally {
    for (const ch of children) ch.kill('SIGTERM');
    if (listening) await guestSh(dir, listening, stopScript()).catch(() => '');
    if (probeAddr) spawnSync('ip', ['-n', lab.netns, 'addr', 'del', `${PROBE_UPSTREAM}/32`, 'dev', 'lo']);
  }
}

/**
 * The host side's row of `qnet check`'s matrix: from the lab namespace, a ping to every guest address the model
 * says it reaches (static ones: a lease is not known beforehand), as `qnet check` probes from there.
 */
async function hostSideReachesGuests(lab: ResolvedLab, live: LiveFacts): Promise<void> {
  const { sources, destinations } = endpoints(lab, live);
  const host = sources.find((s) => s.kind === 'host');
  if (!host) return;
  const specs: ProbeSpec[] = destinations
    .filter((d) => d.kind === 'node' && !d.dhcp && predictOne(lab, host, d, 'ping', live)?.ok)
    .map((d) => ({ probe: 'ping', ip: formatIPv4(d.ip) }));
  const r = spawnSync('ip', ['netns', 'exec', lab.netns, 'busybox', 'sh', '-c', probeScript(specs, { busybox: true })], { encoding: 'utf8', timeout: 60_000 });
  const got = parseProbeOutput(r.stdout);
  for (const p of specs) assert.equal(got.get(probeKey(p))?.ok, true, `from the lab namespace: ${probeKey(p)} (${r.stdout.trim()})`);
}

/** What the nat lab (no declared checks) must do: leases, DNS, the uplink, the port forward, the host's masquerade. */
async function natLabWorks(dir: string, lab: ResolvedLab): Promise<void> {
  const leases = parseLeases(readFileSync(path.join(dir, 'dnsmasq', 'lan.leases'), 'utf8'), 'lan');
  const deb = lab.nodes.find((n) => n.name === 'deb')!.nics[0]!;
  assert.deepEqual(leases.map((l) => [l.mac, l.ip.startsWith('172.16.1.')]).sort(), [['00:26:c6:21:cf:02', true], [deb.mac, true]].sort());
  assert.equal(leases.find((l) => l.mac === '00:26:c6:21:cf:02')!.ip, '172.16.1.2', "win's static lease");
  const up = formatIPv4(upstreamOf(lab)!);
  // DNS from dnsmasq: deb resolves win by name and reaches it; both reach the host beyond the uplink.
  const probes: ProbeSpec[] = [{ probe: 'ping', ip: '172.16.1.2' }, { probe: 'ping', ip: up }];
  const got = parseProbeOutput(await guestSh(dir, 'deb', probeScript(probes)));
  for (const p of probes) assert.equal(got.get(probeKey(p))?.ok, true, `deb: ${probeKey(p)}`);
  assert.match(await guestSh(dir, 'deb', `ping -c 1 -W 3 win.${lab.name}`), new RegExp(`PING win\\.${lab.name} \\(172\\.16\\.1\\.2\\)`));
  // The port forward: the host's 8080 is win's 80 (DNAT in the host's table).
  await guestSh(dir, 'win', listenScript([80]), [LISTEN_ARG]);
  try {
    const r = spawnSync('busybox', ['sh', '-c', probeScript([{ probe: 'tcp', ip: up, port: 8080 }], { busybox: true })], { encoding: 'utf8' });
    assert.equal(parseProbeOutput(r.stdout).get(`tcp ${up} 8080`)?.ok, true, r.stdout + r.stderr);
  } finally {
    await guestSh(dir, 'win', stopScript());
  }
  // Masquerade and the host's forwarding: deb fetches from a simulated upstream, which sees the host's address.
  const upstream = await makeUpstream('exp', 78);
  try {
    const page = await guestSh(dir, 'deb', `wget -q -O - http://${upstream.ip}:8000/ 2>&1`);
    assert.match(page, /upstream/);
    assert.ok(upstream.peers.includes(upstream.hostIp), `the upstream saw ${upstream.peers.join(', ')}, not the host's ${upstream.hostIp}`);
    assert.ok(!upstream.peers.some((p) => p.startsWith('172.16.1.')), 'a guest address left the host unmasqueraded');
  } finally {
    upstream.stop();
  }
}

/** The host once the exported lab's processes (not children of this test) are gone, as they were `before`. */
async function settled(before: string[]): Promise<Awaited<ReturnType<typeof snapshot>>> {
  for (let i = 0; i < 50; i++) {
    const s = await snapshot();
    if (s.guests.length <= before.length) return s;
    await new Promise((r) => setTimeout(r, 200));
  }
  return snapshot();
}

const vlanFiltering = await bridgeVlanFiltering(new RealRunner());

for (const file of readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort()) {
  test(`examples/${file}: exported, run by hand, checked, removed by ifdown.sh (or refused)`, async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-export-'));
    chmodSync(tmp, 0o755); // the guests run as the lab's unprivileged uid and must reach their files
    // The example as it is, under a name of this test run's (no other lab of that name can be about).
    const topo = path.join(tmp, file);
    writeFileSync(topo, readFileSync(path.join(EXAMPLES, file), 'utf8').replace(/^name: .*$/m, `name: ${labName(file.split(/[-.]/)[0]!)}`));
    const lab = await loadTopology(topo);
    const dir = path.join(tmp, 'out');
    const before0 = await snapshot();
    try {
      const r = await qnet(['export', topo, '--format', 'sh', '--out', dir]);
      const image = lab.nodes.find((n) => n.image);
      const lan = lab.networks.find(onLan);
      if (image || lan) {
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.match(r.stderr, image ? new RegExp(`nodes\\.${image.name}: --format sh writes labs of built-in guests; image nodes`) : new RegExp(`networks\\.${lan!.name}: --format sh covers labs on the host's own bridges`));
        return;
      }
      assert.equal(r.code, 0, r.stderr);
      if (usesVlans(lab) && !vlanFiltering) {
        // This kernel cannot make a VLAN-aware bridge: ifup.sh says so before it makes anything.
        const up = script(dir, 'ifup.sh');
        assert.notEqual(up.status, 0);
        assert.match(up.stderr, /this kernel cannot make a bridge VLAN-aware: nothing was made\. VLAN-aware networks need the kernel's bridge VLAN filtering/);
        return;
      }
      const up = script(dir, 'ifup.sh');
      assert.equal(up.status, 0, up.stderr);
      const start = script(dir, 'start.sh');
      assert.equal(start.status, 0, start.stderr);
      const upstream = upstreamOf(lab);
      const live: LiveFacts = upstream !== undefined ? { upstream } : {};
      const { checks, issues } = resolveChecks(lab, live);
      assert.deepEqual(issues, []);
      for (const c of checks) assert.equal(await measure(dir, lab, c, live), c.check.expect === 'pass', c.label);
      await hostSideReachesGuests(lab, live);
      if (file === 'nat-dhcp.yaml') await natLabWorks(dir, lab);
      else assert.ok(checks.length > 0, `${file} declares no checks: this test measures nothing in it`);
      // start.sh said each guest was configured, and booted the export's own copy of the guest.
      assert.match(start.stdout, new RegExp(`started ${lab.nodes.length} guest\\(s\\), each configured`));
      assert.doesNotMatch(readFileSync(path.join(dir, 'start.sh'), 'utf8'), /\/var\/cache/);
    } finally {
      if (existsSync(path.join(dir, 'ifdown.sh'))) {
        const down = script(dir, 'ifdown.sh');
        assert.equal(down.status, 0, down.stderr);
      }
      const after0 = await settled(before0.guests);
      rmSync(tmp, { recursive: true, force: true });
      assert.deepEqual(after0, before0);
    }
  });
}
