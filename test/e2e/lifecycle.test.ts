// End-to-end: one node's life in a running lab of built-in guests. A guest killed is dead (the lab degraded), and
// commands that need it say how to start it; `up` of the unchanged file starts it again; `qnet stop` / `start` /
// `restart` power one node off and on, the rest of the lab untouched, its MAC, address and pulled cable kept; an
// `up` killed mid-boot shows as interrupted; `down` leaves nothing.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { nodeDir } from '../../src/dirs.js';
import { nodeFiles } from '../../src/render/qemu.js';
import { labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

interface Status {
  status: string;
  note?: string;
  nodes: Array<{ name: string; state: string; pid: number; nics: Array<{ mac: string; addresses: string[]; link: string }> }>;
}

async function status(lab: string): Promise<Status> {
  const r = await qnet(['status', lab, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Status;
}

const nodeOf = (s: Status, name: string) => s.nodes.find((n) => n.name === name)!;

/**
 * Kills a guest's QEMU with SIGKILL and resolves once it is gone: a connection to its monitor, opened before, closes
 * when the process exits (its descriptors go before it is a zombie), so no poll of /proc is needed.
 */
async function killGuest(lab: string, node: string, pid: number): Promise<void> {
  const sock = net.connect(nodeFiles(nodeDir(lab, node)).qmp);
  await new Promise<void>((resolve, reject) => {
    sock.once('data', () => resolve()); // QMP's greeting: connected to this QEMU
    sock.once('error', reject);
  });
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => {});
  process.kill(pid, 'SIGKILL');
  await closed;
}

describe('a node stops, starts, dies and comes back; the rest of the lab stays', () => {
  const lab = labName('life');
  let file: string;
  let before0: HostSnapshot;

  before(async () => {
    before0 = await snapshot();
    file = writeTopology({
      name: lab,
      networks: { lan: { subnet: '10.81.0.0/24', address: '10.81.0.1' } },
      nodes: { a: { nics: [{ network: 'lan', ip: '10.81.0.2' }] }, b: { nics: [{ network: 'lan', ip: '10.81.0.3' }] } },
    });
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await qnet(['down', lab]);
  });

  test('up of the unchanged file with every node running does nothing, and that is no failure', async () => {
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`lab ${lab} is already up and unchanged; nothing to do`));
  });

  test('a guest killed is dead and the lab degraded; exec and console to it say so, exit 1', async () => {
    const s = await status(lab);
    await killGuest(lab, 'b', nodeOf(s, 'b').pid);
    const after0 = await status(lab);
    assert.equal(nodeOf(after0, 'b').state, 'dead');
    assert.equal(nodeOf(after0, 'a').state, 'running');
    assert.equal(after0.status, 'degraded');
    assert.match(after0.note ?? '', /not running without being stopped: b/);
    const text = await qnet(['status', lab]);
    assert.match(text.stdout, /^b\s+dead\s+-\s/m);
    const e = await qnet(['exec', lab, 'b', '--', 'true']);
    assert.equal(e.code, 1, e.stderr);
    assert.match(e.stderr, new RegExp(`node b of lab ${lab} is not running \\(dead\\); \`qnet start ${lab} b\` starts it`));
    assert.doesNotMatch(e.stderr, /ECONNREFUSED/);
    const c = await qnet(['console', lab, 'b']);
    assert.equal(c.code, 1, c.stderr);
    assert.match(c.stderr, /node b of .* is not running \(dead\)/);
  });

  test('up of the same file starts the dead node again (exit 0) and exec reaches it', async () => {
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /✓ b was dead: started again/);
    assert.doesNotMatch(r.stderr, /\ba is up\b/, 'the running node is left alone');
    const s = await status(lab);
    assert.deepEqual([s.status, nodeOf(s, 'a').state, nodeOf(s, 'b').state], ['up', 'running', 'running']);
    const e = await qnet(['exec', lab, 'b', '--', 'hostname']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.stdout.trim(), 'b');
  });

  test('stop: b powers off, status says stopped (the lab is still up), its taps stay; a second stop says already', async () => {
    // b's cable pulled first: it must come back pulled.
    assert.equal((await qnet(['link', lab, 'b', 'down'])).code, 0);
    const r = await qnet(['stop', lab, 'b']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /✓ b is stopped \(quit\); its taps and the rest of lab/);
    const s = await status(lab);
    assert.deepEqual([s.status, nodeOf(s, 'a').state, nodeOf(s, 'b').state], ['up', 'running', 'stopped']);
    assert.match(s.note ?? '', /stopped with `qnet stop`: b/);
    const taps = (await qnet(['status', lab, '--json'])).stdout;
    assert.equal((JSON.parse(taps) as { networks: Array<{ taps: string[] }> }).networks[0]!.taps.length, 2, 'both taps are still on the bridge');
    const again = await qnet(['stop', lab, 'b']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /b is already stopped; nothing to do/);
    const e = await qnet(['exec', lab, 'b', '--', 'true']);
    assert.equal(e.code, 1);
    assert.match(e.stderr, new RegExp(`node b of lab ${lab} is not running \\(stopped\\); \`qnet start ${lab} b\` starts it`));
  });

  test('start: b runs again with its MAC, address and pulled cable; once plugged, a pings it; a second start says already', async () => {
    const before1 = nodeOf(await status(lab), 'b');
    const r = await qnet(['start', lab, 'b']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /✓ b was stopped: running again in /);
    const s = await status(lab);
    const b = nodeOf(s, 'b');
    assert.deepEqual([s.status, b.state, b.nics[0]!.link], ['up', 'running', 'down']);
    assert.deepEqual(b.nics.map((n) => [n.mac, n.addresses]), before1.nics.map((n) => [n.mac, n.addresses]));
    const carrier = await qnet(['exec', lab, 'b', '--', 'cat', '/sys/class/net/eth0/carrier', '/sys/class/net/eth0/address']);
    assert.equal(carrier.code, 0, carrier.stderr);
    assert.deepEqual(carrier.stdout.trim().split('\n'), ['0', before1.nics[0]!.mac], 'the cable is still pulled, the MAC the same');
    assert.equal((await qnet(['link', lab, 'b', 'up'])).code, 0);
    const ping = await qnet(['exec', lab, 'a', '--', 'ping', '-c', '3', '-w', '10', '10.81.0.3']);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    const again = await qnet(['start', lab, 'b']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`${lab}/b is already running; nothing to do`));
  });

  test('restart: a running node is stopped and started (a new QEMU); a stopped one is started', async () => {
    const pid0 = nodeOf(await status(lab), 'b').pid;
    const r = await qnet(['restart', lab, 'b']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /✓ b is stopped \(quit\)[\s\S]*✓ b was stopped: running again/);
    const b = nodeOf(await status(lab), 'b');
    assert.equal(b.state, 'running');
    assert.notEqual(b.pid, pid0);
    assert.equal((await qnet(['stop', lab, 'b'])).code, 0);
    const r2 = await qnet(['restart', lab, 'b']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /b is already stopped[\s\S]*✓ b was stopped: running again/);
    const e = await qnet(['exec', lab, 'b', '--', 'hostname']);
    assert.equal(e.stdout.trim(), 'b', e.stderr);
  });

  test('an unknown node or lab: exit 2 naming it, nothing changed', async () => {
    for (const cmd of ['stop', 'start', 'restart']) {
      const r = await qnet([cmd, lab, 'zz']);
      assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`lab ${lab} has no node "zz" \\(nodes: a, b\\)`));
      const l = await qnet([cmd, 'no-such-lab', 'a']);
      assert.equal(l.code, 2, `${cmd}: ${l.stderr}`);
      assert.match(l.stderr, /no-such-lab/);
    }
    const s = await status(lab);
    assert.deepEqual([s.status, ...s.nodes.map((n) => n.state)], ['up', 'running', 'running']);
  });

  test('an up killed (SIGKILL) while its guest boots: status says the up is gone, and down removes what it made', async () => {
    const name = labName('upkill');
    const f = writeTopology({ name, networks: { lan: { subnet: '10.82.0.0/24' } }, nodes: { k: { nics: [{ network: 'lan', ip: '10.82.0.2' }] } } });
    const plan = await qnet(['up', f, '--dry-run']);
    const wait = /^\s*(\d+)\. wait until every guest is configured/m.exec(plan.stdout);
    assert.ok(wait, plan.stdout);
    const r = await qnet(['up', f], { QNET_TEST_KILL_BEFORE_STEP: wait[1]! });
    assert.notEqual(r.code, 0);
    const s = await status(name);
    assert.equal(s.status, 'interrupted');
    assert.match(s.note ?? '', new RegExp(`\`qnet up\` \\(pid \\d+\\) that was making this lab is gone .*\`qnet down ${name}\` removes what it made`));
    const text = await qnet(['status', name]);
    assert.match(text.stdout, new RegExp(`lab ${name}\\s+interrupted`));
    assert.equal((await qnet(['down', name])).code, 0);
  });

  test('down leaves nothing', async () => {
    const r = await qnet(['down', lab]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await snapshot(), before0);
  });
});
