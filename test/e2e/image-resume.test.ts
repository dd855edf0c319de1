// End-to-end: Debian nodes of an image `qnet image create` made start from a saved state of their shape. The first
// node boots (no cloud-init: qnet's resume hook) and is saved at its snapshot point, with its disk; the others are
// restored and take their own MACs, hostnames, machine-ids, SSH host keys, addresses and randomness. They ping each
// other by name, each screen shows a login prompt with the node's own hostname, survive down/up (all restored then),
// and a changed image drops the state: the node boots again.
// An image without qnet's mark boots by cloud-init as before.
import assert from 'node:assert/strict';
import { statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gptPartitionNames, inspectImage } from '../../src/guest/image-check.js';
import { RESUME_MARK } from '../../src/guest/resume.js';
import { RealRunner } from '../../src/host/run.js';
import { defaultRestoreWindow } from '../../src/lab/slots.js';
import { readState } from '../../src/lab/state.js';
import { debianImage, labName, qnet, readScreen, sha256, sh, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

let image: Awaited<ReturnType<typeof debianImage>>;
let baseSum: string;
before(async () => {
  image = await debianImage();
  baseSum = sha256(image.file);
});
after(() => {
  assert.equal(sha256(image.file), baseSum, 'the base image is unchanged');
  image.remove();
});

describe('Debian nodes restored from the saved state of their shape', () => {
  const lab = labName('rsm');
  const nodes = ['r1', 'r2', 'r3'];
  let before0: HostSnapshot;
  let file: string;
  let first: { code: number; stdout: string; stderr: string };
  before(async () => {
    before0 = await snapshot();
    // With a screen each (one shape: the screen is part of it), to read the restored nodes' login prompts.
    const node = (i: number) => ({ image: image.file, memory: 256, display: 'vnc', nics: [{ network: 'lan', ip: `10.63.0.${11 + i}` }] });
    file = writeTopology({
      name: lab,
      networks: { lan: { subnet: '10.63.0.0/24', address: '10.63.0.1' } },
      nodes: Object.fromEntries(nodes.map((n, i) => [n, node(i)])),
    });
    first = await qnet(['up', file]);
  });
  after(async () => {
    await qnet(['down', lab, '--grace', '5']);
    assert.deepEqual(await snapshot(), before0);
  });
  const run = async (node: string, script: string) => {
    const r = await qnet(['exec', lab, node, '--', 'sh', '-c', script]);
    assert.equal(r.code, 0, `${node}: ${script}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const distinct = async (script: string) => {
    const values = await Promise.all(nodes.map((n) => run(n, script)));
    assert.equal(new Set(values).size, nodes.length, `${script}: ${values.join(' | ')}`);
    return values;
  };

  test('the image carries the mark; the first node boots and is saved, the others are restored', async () => {
    assert.equal(first.code, 0, first.stderr);
    const facts = await inspectImage(new RealRunner(), image.file, 'image');
    assert.equal(facts.resume, 1);
    assert.match(first.stderr, /write r1's configuration for qnet's resume hook/);
    assert.match(first.stderr, /save r1 at its snapshot point \(\d+ MiB/);
    const state = await readState(lab);
    const how = nodes.map((n) => state!.guests[n]!.start);
    assert.deepEqual(how, ['booted', 'restored', 'restored']);
    assert.match(first.stderr, /✓ r2 is up \(restored from the saved state and configured in [\d.]+ s/);
  });

  test('each restored node has its own MAC, hostname, machine-id, SSH host key and randomness', async () => {
    const macs = await distinct("cat /sys/class/net/e*/address");
    assert.deepEqual(macs, await Promise.all(nodes.map(async (n) => (await readState(lab))!.lab.nodes.find((x) => x.name === n)!.nics[0]!.mac)));
    assert.deepEqual(await distinct('hostname'), nodes);
    await distinct('cat /etc/machine-id');
    await distinct('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
    await distinct('head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n"');
    for (const [i, n] of nodes.entries()) assert.match(await run(n, 'ip -4 -o addr'), new RegExp(`inet 10\\.63\\.0\\.${11 + i}/24`));
  });

  test("each node's screen shows a login prompt with its own hostname (tty1's getty starts after the hook)", async () => {
    for (const n of nodes) {
      const wait = await qnet(['exec', lab, n, '--timeout', '120', '--', 'sh', '-c', 'until systemctl -q is-active getty@tty1; do sleep 1; done']);
      assert.equal(wait.code, 0, `${n}: ${wait.stderr}`);
      let screen = await readScreen(lab, n);
      for (let i = 0; i < 30 && !screen.rows.some((r) => r.startsWith(`${n} login:`)); i++) {
        await new Promise((r) => setTimeout(r, 1000));
        screen = await readScreen(lab, n);
      }
      assert.equal(screen.active, 'tty1', n);
      assert.ok(screen.rows.some((r) => r.startsWith(`${n} login:`)), `${n}'s login prompt on its screen:\n${screen.rows.join('\n')}`);
      assert.ok(!screen.rows.some((r) => /^debian login:/.test(r)), `no prompt of the saved guest on ${n}'s screen:\n${screen.rows.join('\n')}`);
      assert.deepEqual(screen.mismatches, [], `${n}: the pixels (${screen.size.join('×')}) show the text the guest holds`);
    }
  });

  test('they ping each other by name, and qnet ssh checks each host key', async () => {
    for (const [from, to] of [['r1', 'r3'], ['r3', 'r2'], ['r2', 'r1']] as const) assert.match(await run(from, `ping -c 1 -W 5 ${to}`), new RegExp(`from ${to} `));
    for (const n of nodes) {
      const r = await qnet(['ssh', lab, n, '--', 'hostname']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), n);
    }
  });

  test('down and up again: every node restored, each itself again', async () => {
    const down = await qnet(['down', lab, '--grace', '5']);
    assert.equal(down.code, 0, down.stderr);
    const again = await qnet(['up', file]);
    assert.equal(again.code, 0, again.stderr);
    const state = await readState(lab);
    assert.deepEqual(nodes.map((n) => state!.guests[n]!.start), ['restored', 'restored', 'restored']);
    // Image nodes are restored at most cores - 1 at once (at least 1): with one at a time, each starts once the
    // node before it is ready.
    const w = defaultRestoreWindow();
    if (w < nodes.length) assert.match(again.stderr, w === 1 ? /wait until every guest is configured \(image nodes restored one at a time\)/ : new RegExp(`at most ${w} image nodes restored at once`));
    if (w === 1)
      for (const [i, n] of nodes.entries())
        if (i > 0) assert.ok(Date.parse(state!.guests[n]!.startedAt) >= Date.parse(state!.guests[nodes[i - 1]!]!.readyAt!), `${n} started before ${nodes[i - 1]} was ready`);
    // status names the overlay each restored node runs on (on the saved disk), not its boot's unused one.
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as { nodes: Array<{ name: string; image: { overlay: string; overlayBytes: number } }> };
    for (const n of nodes) assert.match(st.nodes.find((x) => x.name === n)!.image.overlay, new RegExp(`/${n}/restored\\.qcow2$`));
    assert.deepEqual(await distinct('hostname'), nodes);
    assert.match(await run('r1', 'ping -c 1 -W 5 r2'), /from r2 /);
  });

  test('a changed image is not restored into: the state is dropped and the first node boots again', async () => {
    assert.equal((await qnet(['down', lab, '--grace', '5'])).code, 0);
    const old = (await readState(lab)) === null;
    assert.ok(old);
    const st = statSync(image.file);
    // The same bytes, a new modification time: qnet cannot tell what changed, so it does not trust the state.
    utimesSync(image.file, st.atime, new Date(st.mtimeMs + 60_000));
    const up = await qnet(['up', file]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /save r1 at its snapshot point/);
    assert.match(up.stderr, /dropped the saved state of .* made on an earlier version of/);
    const state = await readState(lab);
    assert.deepEqual(nodes.map((n) => state!.guests[n]!.start), ['booted', 'restored', 'restored']);
  });
});

test('an image without the mark is not taken for one qnet made (it boots by cloud-init)', async () => {
  const dir = path.dirname(image.file);
  const raw = path.join(dir, 'plain.raw');
  sh(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', image.file, raw]);
  try {
    const head = (f: string) => sh(['sh', '-c', 'head -c 17408 "$1" | od -An -v -tx1', 'x', f]).stdout;
    const names = gptPartitionNames(Buffer.from(head(raw).replace(/\s+/g, ''), 'hex'));
    assert.ok(names.includes(RESUME_MARK), names.join(','));
    sh(['sfdisk', '--quiet', '--part-label', raw, '1', 'bios']);
    assert.deepEqual(gptPartitionNames(Buffer.from(head(raw).replace(/\s+/g, ''), 'hex')), ['bios', 'root']);
    assert.equal((await inspectImage(new RealRunner(), raw, 'image')).resume, undefined);
  } finally {
    sh(['rm', '-f', raw]);
  }
});
