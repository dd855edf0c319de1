// End-to-end: real QEMU guests (TCG) on a bridge in a lab namespace; up, checks from inside the guests, down.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { rmSync } from 'node:fs';
import { consoleRun } from '../../src/qemu/serial.js';
import { nodeDir } from '../../src/dirs.js';
import { nodeFiles } from '../../src/render/qemu.js';
import { spawn } from 'node:child_process';
import { labName, qnet, sh, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

// A tcpdump on `dev` in `ns`, listening when this resolves; stop() ends it and resolves with the packets it saw.
async function captureOn(ns: string, dev: string, filter: string): Promise<{ stop: () => Promise<number> }> {
  const p = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', dev, '-n', '-l', '-p', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => p.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/listening on/.test(err)) resolve();
    });
    p.once('close', () => reject(new Error(`tcpdump on ${dev} ended: ${err}`)));
  });
  return {
    stop: async () => {
      await new Promise((r) => setTimeout(r, 300)); // what is in flight arrives
      p.kill('SIGINT');
      await exited;
      return out.split('\n').filter((l) => l.trim()).length;
    },
  };
}

describe('a lab of two guests on one bridge', () => {
  const lab = labName('pair');
  let file: string;
  let before0: HostSnapshot;

  before(async () => {
    before0 = await snapshot();
    file = writeTopology({
      name: lab,
      networks: { lan: { bridge: 'kbr0', subnet: '192.168.7.0/24', address: '192.168.7.1' } },
      nodes: {
        deb2: { memory: 128, gateway: '192.168.7.1', nics: [{ network: 'lan', ip: '192.168.7.2', tap: 'ktap2', mac: 'de:ad:be:ef:00:02', model: 'e1000' }] },
        deb3: { nics: [{ network: 'lan', ip: '192.168.7.3/24', tap: 'ktap3', mac: 'de:ad:be:ef:00:03' }] },
      },
    });
  });
  after(async () => {
    await qnet(['down', lab]);
  });

  test('up returns when both guests are configured and shows progress', async () => {
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /create 1 bridge and 2 taps \(one ip -batch\)/);
    assert.match(r.stderr, /deb2 is up \((booted|restored from the saved state) and configured in [\d.]+ s\)/);
    assert.match(r.stderr, new RegExp(`lab ${lab} is up`));
  });

  test('status --json reports running guests, pids, addresses, bridge and taps', async () => {
    const r = await qnet(['status', lab, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.status, 'up');
    assert.equal(s.netns, `qnet-${lab}`);
    assert.deepEqual(s.nodes.map((n: { name: string; state: string }) => [n.name, n.state]), [['deb2', 'running'], ['deb3', 'running']]);
    for (const n of s.nodes) assert.ok(n.pid > 1);
    assert.deepEqual(s.nodes[0].nics[0].addresses, ['192.168.7.2/24']);
    assert.equal(s.networks[0].bridge, 'kbr0');
    assert.deepEqual([...s.networks[0].taps].sort(), ['ktap2', 'ktap3']);
  });

  test('graph of the running lab: each node with its state, drawn as SVG by Graphviz; of its file: no state', async () => {
    const j = await qnet(['graph', lab, '--format', 'json']);
    assert.equal(j.code, 0, j.stderr);
    const g = JSON.parse(j.stdout) as { nodes: Array<{ name: string; state?: string }>; links: Array<{ kind: string; nic: { ifname: string; tap: string; addresses: string[] } }> };
    assert.deepEqual(g.nodes.map((n) => [n.name, n.state]), [['deb2', 'running'], ['deb3', 'running']]);
    assert.deepEqual(g.links.map((l) => [l.nic.ifname, l.nic.tap, l.nic.addresses]), [['eth0', 'ktap2', ['192.168.7.2/24']], ['eth0', 'ktap3', ['192.168.7.3/24']]]);
    const svg = await qnet(['graph', lab, '--format', 'svg']);
    assert.equal(svg.code, 0, svg.stderr);
    assert.match(svg.stdout, /<title>node:deb2<\/title>[\s\S]*running/);
    const fromFile = JSON.parse((await qnet(['graph', file, '--format', 'json'])).stdout) as { nodes: Array<{ state?: string }> };
    assert.ok(fromFile.nodes.every((n) => n.state === undefined));
  });

  test('QEMU runs unprivileged with seccomp, sockets are private', async () => {
    const s = JSON.parse((await qnet(['status', lab, '--json'])).stdout);
    const { readFileSync, statSync } = await import('node:fs');
    for (const n of s.nodes) {
      const status = readFileSync(`/proc/${n.pid}/status`, 'utf8');
      assert.doesNotMatch(status, /^Uid:\s+0\b/m, 'QEMU must not run as root');
      assert.match(status, /^Seccomp:\s+2$/m, 'QEMU must run with its seccomp sandbox');
      const files = nodeFiles(nodeDir(lab, n.name));
      for (const sock of [files.qmp, files.console, files.control]) assert.equal(statSync(sock).mode & 0o077, 0, `${sock} is private`);
    }
  });

  test("each guest's MAC is tied to its bridge port: the host's first frames to a guest go out of its tap alone", async () => {
    const ns = `qnet-${lab}`;
    const fdb = sh(['bridge', '-n', ns, 'fdb', 'show', 'br', 'kbr0']).stdout;
    assert.match(fdb, /^de:ad:be:ef:00:02 dev ktap2 master kbr0 static$/m, fdb);
    assert.match(fdb, /^de:ad:be:ef:00:03 dev ktap3 master kbr0 static$/m, fdb);
    // Whatever the bridge has learned goes, as if both guests had been silent since their start: only the static
    // entries say where deb2 is. Then the host pings deb2 once; a capture on each tap counts what went out of it.
    sh(['bridge', '-n', ns, 'fdb', 'flush', 'dev', 'kbr0', 'dynamic']);
    const [on2, on3] = await Promise.all(['ktap2', 'ktap3'].map((tap) => captureOn(ns, tap, 'icmp and dst host 192.168.7.2')));
    const ping = sh(['ip', 'netns', 'exec', ns, 'busybox', 'ping', '-c', '1', '-W', '3', '192.168.7.2'], false);
    const [to2, to3] = await Promise.all([on2!.stop(), on3!.stop()]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.equal(to2, 1, "deb2's tap carried the echo request");
    assert.equal(to3, 0, "deb3's tap carried nothing of it (a bridge that has not learned deb2's MAC floods it there)");
  });

  test('the guests ping each other in both directions, checked from inside', async () => {
    const d2 = nodeFiles(nodeDir(lab, 'deb2')).console;
    const d3 = nodeFiles(nodeDir(lab, 'deb3')).console;
    const a = await consoleRun(d2, 'ping -c 1 -W 3 192.168.7.3'); // the very first packet after up must pass
    assert.equal(a.code, 0, a.output);
    assert.match(a.output, /1 packets received/);
    const b = await consoleRun(d3, 'ping -c 2 -W 3 192.168.7.2');
    assert.equal(b.code, 0, b.output);
    const byName = await consoleRun(d3, 'ping -c 1 -W 3 deb2');
    assert.equal(byName.code, 0, byName.output);
    const cfg = await consoleRun(d2, 'hostname; ip -4 addr show eth0; ip route; cat /sys/class/net/eth0/address');
    assert.match(cfg.output, /^deb2$/m);
    assert.match(cfg.output, /inet 192\.168\.7\.2\/24/);
    assert.match(cfg.output, /default via 192\.168\.7\.1/);
    assert.match(cfg.output, /de:ad:be:ef:00:02/);
    const miss = await consoleRun(d2, 'ping -c 1 -W 1 192.168.7.99');
    assert.notEqual(miss.code, 0, 'a ping to an absent address must fail');
  });

  test('a second up of the running, unchanged lab does nothing and says so', async () => {
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /already up and unchanged; nothing to do/);
  });

  test('down removes everything; a second down is a no-op with exit 0', async () => {
    const r = await qnet(['down', lab]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /removed .*guests? [^(]*\bdeb2\b[^(]* \(/);
    assert.deepEqual(await snapshot(), before0);
    const again = await qnet(['down', lab]);
    assert.equal(again.code, 0);
    assert.match(again.stderr, /nothing to remove/);
  });
});

describe('failures part-way and lost state leave nothing behind', () => {
  test('an injected failure after the guests started rolls everything back', async () => {
    const { up } = await import('../../src/lab/up.js');
    const { parseTopology } = await import('../../src/topology/load.js');
    const { RealRunner } = await import('../../src/host/run.js');
    const name = labName('fail');
    const lab = parseTopology(
      `name: ${name}\nnetworks: { lan: { subnet: 10.9.0.0/24 } }\nnodes:\n  a: { nics: [{ network: lan, ip: 10.9.0.2 }] }\n  b: { nics: [{ network: lan, ip: 10.9.0.3 }] }\n`,
    );
    const before0 = await snapshot();
    // Steps: run dir, netns, IPv6 off, links, MACs tied, then per node (prepare, config, start), then wait: fail
    // before the netns, the links, a's preparing, a's config and b's start (a is running then).
    for (const step of [2, 4, 6, 7, 11]) {
      await assert.rejects(up(lab, { runner: new RealRunner(), failBeforeStep: step }), (e: Error) => {
        assert.match(e.message, new RegExp(`injected failure before step ${step}`));
        assert.match(e.message, /rolled back \d+ steps?; nothing of the lab is left/);
        return true;
      });
      assert.deepEqual(await snapshot(), before0, `leftovers after a failure before step ${step}`);
    }
  });

  test('a guest that never becomes ready fails up with the cause and leaves nothing', async () => {
    const name = labName('slow');
    const file = writeTopology({ name, networks: { lan: {} }, nodes: { a: { nics: [{ network: 'lan' }] } } });
    const before0 = await snapshot();
    // --cold: a booting guest cannot be ready in 1 s (a restored one might be).
    const r = await qnet(['up', file, '--timeout', '1', '--cold']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /failed at "wait until every guest is configured": a: not ready after 1 s/);
    assert.deepEqual(await snapshot(), before0);
  });

  test('down works from ownership markers alone when the state file is gone', async () => {
    const name = labName('lost');
    const file = writeTopology({ name, networks: { lan: {} }, nodes: { a: { memory: 104, nics: [{ network: 'lan' }] } } });
    const before0 = await snapshot();
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    rmSync(`${process.env.QNET_RUN_DIR ?? '/run/qnet'}/${name}/state.json`);
    const d = await qnet(['down', file]);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stderr, /removed .*guests? [^(]*\ba\b[^(]* \(/);
    assert.deepEqual(await snapshot(), before0);
  });
});

describe('crash safety', () => {
  test('up killed (SIGKILL) before each step in turn: down afterwards leaves nothing', async () => {
    const name = labName('kill');
    const file = writeTopology({
      name,
      networks: { lan: { subnet: '10.8.0.0/24' } },
      nodes: { a: { nics: [{ network: 'lan', ip: '10.8.0.2' }] }, b: { nics: [{ network: 'lan', ip: '10.8.0.3' }] } },
    });
    const before0 = await snapshot();
    // Steps: run dir, netns, IPv6 off, links, MACs tied, (prepare, config, start) x 2, wait.
    for (let step = 1; step <= 11; step++) {
      const r = await qnet(['up', file], { QNET_TEST_KILL_BEFORE_STEP: String(step) });
      assert.notEqual(r.code, 0, `up must have died before step ${step}`);
      const d = await qnet(['down', name]);
      // Killed before its first step, up made nothing: no lab of that name was ever on the host (exit 2).
      assert.equal(d.code, step === 1 ? 2 : 0, d.stderr);
      assert.deepEqual(await snapshot(), before0, `leftovers after a kill before step ${step}`);
    }
  });
});

describe('one lab, one owner; failures say what and where', () => {
  test('two `up`s of one lab at the same instant: exactly one wins, the other changes nothing', async () => {
    const name = labName('race');
    const file = writeTopology({ name, networks: { lan: {} }, nodes: { a: { nics: [{ network: 'lan' }] } } });
    const before0 = await snapshot();
    const [r1, r2] = await Promise.all([qnet(['up', file]), qnet(['up', file])]);
    // The other is refused while the first runs; should it look only once the first is done, it finds nothing to do.
    const loser = r1.code === 0 && /\bis up in\b/.test(r1.stderr) ? r2 : r1;
    assert.ok((loser.code === 1 && /already up|being brought up by another qnet/.test(loser.stderr)) || (loser.code === 0 && /already up and unchanged/.test(loser.stderr)), r1.stderr + r2.stderr);
    assert.ok([r1, r2].some((r) => r.code === 0 && /\bis up in\b/.test(r.stderr)), r1.stderr + r2.stderr);
    const s = JSON.parse((await qnet(['status', name, '--json'])).stdout);
    assert.equal(s.status, 'up');
    assert.equal((await qnet(['down', name])).code, 0);
    assert.deepEqual(await snapshot(), before0);
  });

  test('a guest that dies is shown dead by status; up of its file starts it again', async () => {
    const name = labName('dies');
    const file = writeTopology({ name, networks: { lan: {} }, nodes: { a: { nics: [{ network: 'lan' }] }, b: { nics: [{ network: 'lan' }] } } });
    const before0 = await snapshot();
    assert.equal((await qnet(['up', file])).code, 0);
    const s = JSON.parse((await qnet(['status', name, '--json'])).stdout);
    process.kill(s.nodes[0].pid, 'SIGKILL');
    let after0 = s;
    for (let i = 0; i < 50 && after0.nodes[0].state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after0 = JSON.parse((await qnet(['status', name, '--json'])).stdout);
    }
    assert.equal(after0.nodes[0].state, 'dead');
    assert.equal(after0.nodes[1].state, 'running');
    assert.equal(after0.status, 'degraded');
    const again = await qnet(['up', file]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /a was dead: started again/);
    assert.equal((await qnet(['down', name])).code, 0);
    assert.deepEqual(await snapshot(), before0);
  });

  test('a name already taken on the host fails up at that step, with the cause, and rolls back', async () => {
    const { uplinkHostIf } = await import('../../src/render/uplink.js');
    const { spawnSync } = await import('node:child_process');
    const name = labName('taken');
    const file = writeTopology({
      name,
      networks: { lan: { mode: 'nat', subnet: '10.59.0.0/24', address: '10.59.0.1' } },
      nodes: { a: { nics: [{ network: 'lan', ip: '10.59.0.2' }] } },
    });
    const squatter = uplinkHostIf(name);
    const made = spawnSync('ip', ['link', 'add', squatter, 'type', 'veth', 'peer', 'name', `${squatter}p`]);
    assert.equal(made.status, 0, String(made.stderr));
    try {
      const before0 = await snapshot();
      const r = await qnet(['up', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`failed at "create the uplink: veth ${squatter}`));
      assert.match(r.stderr, /File exists/);
      assert.match(r.stderr, /rolled back \d+ steps; nothing of the lab is left/);
      assert.deepEqual(await snapshot(), before0);
    } finally {
      await qnet(['down', name]);
      spawnSync('ip', ['link', 'delete', squatter]);
    }
  });
});

describe('orphans', () => {
  test('down --all finds a lab by its markers alone when its whole run directory and topology file are gone', async () => {
    const name = labName('orph');
    const file = writeTopology({
      name,
      networks: { lan: { mode: 'nat', subnet: '10.57.0.0/24', address: '10.57.0.1', dhcp: { range: '10.57.0.10-10.57.0.20' } } },
      nodes: { a: { nics: [{ network: 'lan', dhcp: true }] } },
    });
    const before0 = await snapshot();
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    rmSync(file);
    rmSync(`${process.env.QNET_RUN_DIR ?? '/run/qnet'}/${name}`, { recursive: true, force: true });
    const d = await qnet(['down', '--all']);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stderr, new RegExp(`lab ${name} is down`));
    assert.match(d.stderr, /dnsmasq:lan/);
    assert.match(d.stderr, /nft table ip qnet-/);
    assert.deepEqual(await snapshot(), before0);
  });
});
