// Layer 2 on a VLAN-aware bridge (the kernel's bridge VLAN filtering and 802.1Q) with real guests: the lab of
// examples/vlans.yaml, run inside the User-Mode Linux test host by test/e2e/uml-kernel.test.ts when this machine's
// kernel lacks VLAN filtering, directly where it has it. Access ports keep VLANs apart even for hosts of one subnet,
// the router on a stick routes VLAN 10 to 20 (and only while it forwards), its trunk carries 802.1Q tags while an
// access port does not, `qnet check` agrees with the model for ping and TCP, and `export --format sh` run by hand
// makes the same VLAN table and the same reachability.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { consoleRun } from '../../src/qemu/serial.js';
import { QNET, ROOT, labName, qnet, snapshot, waitForText, writeTopology, type HostSnapshot } from '../e2e/helpers.js';

describe(`VLANs with real guests on kernel ${release()}`, () => {
  const lab = labName('vl');
  const ns = `qnet-${lab}`;
  const file = writeTopology({ ...(parse(readFileSync(path.join(ROOT, 'examples', 'vlans.yaml'), 'utf8')) as object), name: lab });
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-vl-'));
  let before0: HostSnapshot;
  let upS = 0;
  const exec = async (n: string, cmd: string) => qnet(['exec', lab, n, '--', 'sh', '-c', cmd]);
  const ok = async (n: string, cmd: string) => {
    const r = await exec(n, cmd);
    assert.equal(r.code, 0, `${n}: ${cmd}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  // The bridge's VLAN table as `bridge -j vlan show` gives it: port -> VLANs with their flags.
  const vlanTable = () => {
    const j = JSON.parse(spawnSync('ip', ['netns', 'exec', ns, 'bridge', '-j', 'vlan', 'show'], { encoding: 'utf8' }).stdout || '[]') as Array<{ ifname: string; vlans: Array<{ vlan: number; flags?: string[] }> }>;
    return Object.fromEntries(j.map((p) => [p.ifname, p.vlans.map((v) => `${v.vlan}${(v.flags ?? []).map((f) => ` ${f}`).join('')}`).sort()]));
  };
  // A capture of one target while `action` runs; tcpdump -e's reading of it (link-level headers, so the tags).
  const capture = async (target: string, filter: string, count: number, action: () => Promise<unknown>) => {
    const f = path.join(dir, `${target}-${Date.now()}.pcap`);
    const cap = spawn(process.execPath, [QNET, 'capture', lab, target, '-w', f, '--count', String(count), '--filter', filter], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    cap.stderr.on('data', (d) => (err += d));
    const done = new Promise<void>((r) => cap.once('close', () => r()));
    for (let i = 0; i < 300 && !/capturing/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    // Stopped by its count, or by Ctrl-C 2 s after the action (also when the action failed).
    let t: NodeJS.Timeout | undefined;
    try {
      await action();
    } finally {
      t = setTimeout(() => cap.kill('SIGINT'), 2000);
      await done;
      clearTimeout(t);
    }
    return spawnSync('tcpdump', ['-e', '-n', '-r', f], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
  };
  let table: Record<string, string[]> = {};

  before(async () => {
    before0 = await snapshot();
    const t0 = Date.now();
    const r = await qnet(['up', file]);
    upS = (Date.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    table = vlanTable();
  });
  after(async () => {
    await qnet(['down', lab]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('qnet check: the measured matrix agrees with the model everywhere, for ping and TCP', async (t) => {
    const r = await qnet(['check', lab, '--json']);
    const rep = JSON.parse(r.stdout) as { cells: Array<{ from: string; to: string; probe: string; measured?: { ok: boolean; skipped?: string } }>; disagreements: unknown[]; declared: Array<{ ok: boolean }> };
    const measured = rep.cells.filter((c) => c.measured && !c.measured.skipped);
    t.diagnostic(`lab up in ${upS.toFixed(1)} s; check: ${measured.length} cells measured (${measured.filter((c) => c.probe === 'tcp').length} TCP, ${measured.filter((c) => c.measured!.ok).length} reached), ${rep.disagreements.length} disagreements`);
    assert.deepEqual(rep.disagreements, [], r.stdout);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(measured.some((c) => c.from === 'a' && c.to === 'b' && c.probe === 'tcp' && c.measured!.ok), 'TCP from a reaches b');
    assert.ok(rep.declared.every((d) => d.ok));
  });

  test('access ports keep VLANs apart: c (VLAN 30) and b (VLAN 20), given an address in 10.0.10.0/24, reach no one of VLAN 10, and no frame of theirs reaches a', async () => {
    // Were the bridge not filtering, both would reach a and the host side (and c r1's eth0.10), all in that subnet.
    // b is not asked for r1: r1 is in VLAN 20 too, and answers ARP for any of its addresses there.
    for (const [n, targets] of [['c', ['10.0.10.2', '10.0.10.254', '10.0.10.1']], ['b', ['10.0.10.2', '10.0.10.254']]] as const) {
      const mac = (await ok(n, 'cat /sys/class/net/eth0/address')).trim();
      // One exec: the address on, a ping to each (one line each), the address off.
      const probe = `ip addr add 10.0.10.99/24 dev eth0; for ip in ${targets.join(' ')}; do ping -c 2 -W 2 $ip >/dev/null 2>&1 && echo "reached $ip" || echo "not $ip"; done; ip addr del 10.0.10.99/24 dev eth0`;
      let said = '';
      const seen = await capture('a', `ether src ${mac}`, 1, async () => (said = await ok(n, probe)));
      assert.deepEqual(said.trim().split('\n'), targets.map((ip) => `not ${ip}`), `${n}: ${said}`);
      assert.deepEqual(seen, [], `a frame of ${n} reached a`);
    }
    // Within VLAN 10 the same probes do reach (the method can see a reachable host).
    await ok('a', 'ping -c 1 -W 3 10.0.10.254 && ping -c 1 -W 3 10.0.10.1');
  });

  test('the router on a stick routes VLAN 10 to 20 (one hop: TTL 63), and nothing passes while its forwarding is off', async () => {
    assert.match(await ok('a', 'ping -c 2 -W 3 10.0.20.2'), /ttl=63/);
    assert.match(await ok('b', 'ping -c 2 -W 3 10.0.10.2'), /ttl=63/);
    await ok('r1', 'echo 0 > /proc/sys/net/ipv4/ip_forward');
    const off = await exec('a', 'ping -c 2 -W 2 10.0.20.2');
    await ok('r1', 'echo 1 > /proc/sys/net/ipv4/ip_forward');
    assert.notEqual(off.code, 0, off.stdout);
    await ok('a', 'ping -c 1 -W 3 10.0.20.2');
  });

  test("a capture of r1's trunk shows the 802.1Q tags of VLANs 10 and 20; one of a's access port shows none", async (t) => {
    const trunk = await capture('r1', 'vlan and icmp', 8, () => ok('a', 'ping -c 2 -i 0.5 -W 3 10.0.20.2'));
    const access = await capture('a', 'icmp', 4, () => ok('a', 'ping -c 2 -i 0.5 -W 3 10.0.20.2'));
    t.diagnostic(`trunk: ${trunk[0]}`);
    assert.equal(trunk.length, 8, trunk.join('\n'));
    for (const l of trunk) assert.match(l, /ethertype 802\.1Q \(0x8100\), length \d+: vlan (10|20), p 0, ethertype IPv4 \(0x0800\), 10\.0\.(10\.2 > 10\.0\.20\.2|20\.2 > 10\.0\.10\.2): ICMP echo/);
    assert.ok(trunk.some((l) => /vlan 10,/.test(l)) && trunk.some((l) => /vlan 20,/.test(l)), trunk.join('\n'));
    assert.equal(access.length, 4, access.join('\n'));
    for (const l of access) assert.match(l, /ethertype IPv4 \(0x0800\), length \d+: 10\.0\./, l);
  });

  test('export --format sh, run by hand after down, makes the same VLAN table, and a reaches b through r1 while c stays apart', async (t) => {
    chmodSync(dir, 0o755);
    const out = path.join(dir, 'sh');
    const e = await qnet(['export', lab, '--format', 'sh', '--out', out]);
    assert.equal(e.code, 0, e.stderr);
    assert.equal((await qnet(['down', lab])).code, 0);
    const run = (script: string) => spawnSync('sh', [path.join(out, script)], { encoding: 'utf8', cwd: ROOT });
    try {
      const up = run('ifup.sh');
      assert.equal(up.status, 0, up.stderr);
      assert.deepEqual(vlanTable(), table);
      const t0 = Date.now();
      const start = run('start.sh');
      assert.equal(start.status, 0, start.stderr);
      for (const n of ['r1', 'a', 'b', 'c']) await waitForText(path.join(out, n, 'console.log'), 'qnet: READY', 300_000);
      t.diagnostic(`the exported lab's 4 guests booted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const sh = (n: string, cmd: string) => consoleRun(path.join(out, n, 'console.sock'), cmd, 60_000);
      const ab = await sh('a', 'ping -c 2 -W 3 10.0.20.2');
      assert.equal(ab.code, 0, ab.output);
      assert.match(ab.output, /ttl=63/);
      const ac = await sh('a', 'ping -c 2 -W 2 10.0.30.2');
      assert.notEqual(ac.code, 0, ac.output);
      const c10 = await sh('c', 'ip addr add 10.0.10.99/24 dev eth0; ping -c 2 -W 2 10.0.10.2');
      assert.notEqual(c10.code, 0, c10.output);
    } finally {
      run('ifdown.sh');
    }
    // Its QEMUs are not qnet's children: wait for them to be gone before comparing.
    const deadline = Date.now() + 20_000;
    while ((await snapshot()).guests.length > before0.guests.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await snapshot(), before0);
  });
});
