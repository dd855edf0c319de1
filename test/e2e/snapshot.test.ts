// End-to-end: guests of one shape start from a saved state. The first boots and is saved at its snapshot point,
// the others are restored from it, each with its own name, MAC, address, clock and randomness; a state that
// cannot be loaded makes the guest boot instead; `--cold` boots every guest.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { labDir } from '../../src/dirs.js';
import { after, before, describe, test } from 'node:test';
import { labName, qnet, sh, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

describe('guests restored from the saved state of their shape', () => {
  const lab = labName('snap');
  let file: string;
  let before0: HostSnapshot;
  let state: string;
  // 208 MiB: a shape no other test uses, so this test decides whether its saved state exists; room for a guest to
  // write most of its RAM.
  const node = (ip: string, mac: string) => ({ memory: 208, nics: [{ network: 'lan', ip, mac }] });
  const startOf = (): Record<string, string | undefined> => {
    const s = JSON.parse(readFileSync(`${labDir(lab)}/state.json`, 'utf8')) as { guests: Record<string, { start?: string }> };
    return Object.fromEntries(Object.entries(s.guests).map(([n, g]) => [n, g.start]));
  };
  const exec = async (n: string, cmd: string) => {
    const r = await qnet(['exec', lab, n, '--', 'sh', '-c', cmd]);
    assert.equal(r.code, 0, `${n}: ${cmd}: ${r.stderr}`);
    return r.stdout.trim();
  };

  before(async () => {
    before0 = await snapshot();
    file = writeTopology({
      name: lab,
      networks: { lan: { subnet: '10.91.0.0/24' } },
      nodes: { a: node('10.91.0.11', '52:54:00:91:00:11'), b: node('10.91.0.12', '52:54:00:91:00:12'), c: node('10.91.0.13', '52:54:00:91:00:13') },
    });
    const plan = await qnet(['up', file, '--dry-run']);
    assert.equal(plan.code, 0, plan.stderr);
    state = /saved to (\S+\.state)/.exec(plan.stdout)?.[1] ?? /< (\S+\.state)/.exec(plan.stdout)![1]!;
    rmSync(state, { force: true });
  });
  after(async () => {
    await qnet(['down', lab]);
  });

  test('the first up boots one guest, saves it at its snapshot point and restores the others from it', async () => {
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /save a at its snapshot point \(\d+ MiB/);
    assert.match(r.stderr, /wait until a is saved for the other nodes of its shape/);
    assert.match(r.stderr, /b is up \(restored from the saved state and configured in/);
    assert.deepEqual(startOf(), { a: 'booted', b: 'restored', c: 'restored' });
    assert.ok(existsSync(state));
    assert.ok(existsSync(state.replace(/\.state$/, '.ram')), 'the RAM template is saved beside the device state');
  });

  test('each restored guest has its own name, MAC, address and clock, and they reach each other', async () => {
    for (const [n, octet] of [['a', '11'], ['b', '12'], ['c', '13']] as const) {
      assert.equal(await exec(n, 'hostname'), n);
      const link = await exec(n, 'ip addr show eth0');
      assert.match(link, new RegExp(`link/ether 52:54:00:91:00:${octet} `));
      assert.match(link, new RegExp(`inet 10\\.91\\.0\\.${octet}/24 `));
      const clock = Number(await exec(n, 'date +%s'));
      assert.ok(Math.abs(clock - Date.now() / 1000) < 10, `${n}'s clock is ${clock}`);
    }
    await exec('b', 'ping -c 1 -W 5 10.91.0.11 && ping -c 1 -W 5 10.91.0.13');
    await exec('c', 'ping -c 1 -W 5 10.91.0.12');
    // Every other node's name, in the block that follows the configuration on the control port (saved and restored
    // alike), and its own.
    for (const n of ['a', 'b', 'c']) {
      const hosts = (await exec(n, 'cat /etc/hosts')).split('\n');
      for (const [m, octet] of [['a', '11'], ['b', '12'], ['c', '13']]) if (m !== n) assert.ok(hosts.includes(`10.91.0.${octet} ${m}`), `${n}'s /etc/hosts names ${m}: ${hosts.join(' | ')}`);
      assert.ok(hosts.includes(`127.0.1.1 ${n}`), `${n}'s /etc/hosts has its own name`);
    }
    await exec('b', 'ping -c 1 -W 5 a && ping -c 1 -W 5 c');
  });

  test('copies of one state do not share their randomness: the kernel reseeds on the new VM generation ID', async () => {
    assert.match(await exec('b', 'dmesg'), /crng reseeded due to virtual machine fork/);
    const bytes = await Promise.all(['b', 'c'].map((n) => exec(n, 'head -c 16 /dev/urandom | od -An -tx1')));
    assert.notEqual(bytes[0], bytes[1]);
  });

  test('restored guests share the saved RAM copy-on-write: what one writes, the others never see', async () => {
    const pids = JSON.parse(readFileSync(`${labDir(lab)}/state.json`, 'utf8')).guests as Record<string, { pid: number }>;
    const rollup = (n: string) => {
      const t = readFileSync(`/proc/${pids[n]!.pid}/smaps_rollup`, 'utf8');
      return { pss: Number(/^Pss:\s+(\d+)/m.exec(t)![1]), privateDirty: Number(/^Private_Dirty:\s+(\d+)/m.exec(t)![1]) };
    };
    // Each restored QEMU maps the sealed template; the booted saver has its RAM to itself.
    for (const n of ['b', 'c']) assert.match(readFileSync(`/proc/${pids[n]!.pid}/maps`, 'utf8'), /memfd:qnet-template/);
    assert.ok(rollup('b').privateDirty * 2 < rollup('a').privateDirty, `restored b holds ${rollup('b').privateDirty} kB of its own, booted a ${rollup('a').privateDirty} kB`);
    // A file that was in RAM at the snapshot point (the guest's root is in RAM): b overwrites it and fills much of its
    // memory (96 MiB of the guest's 208); c (restored from the same template) and the template itself are unchanged.
    const file = '/usr/lib/qnet/iperf3.tar.xz';
    const sum = await exec('c', `md5sum ${file}`);
    const template = readFileSync(state.replace(/\.state$/, '.ram'));
    await exec('b', `dd if=/dev/urandom of=${file} bs=4k count=64 conv=notrunc 2>/dev/null; mkdir -p /mnt/t && mount -t tmpfs -o size=128m t /mnt/t && dd if=/dev/zero of=/mnt/t/fill bs=1048576 count=96 2>/dev/null`);
    assert.notEqual(await exec('b', `md5sum ${file}`), sum);
    assert.equal(await exec('c', `md5sum ${file}`), sum);
    assert.ok(rollup('b').privateDirty > rollup('c').privateDirty + 80 * 1024, 'what b wrote (96 MiB) is its own');
    assert.ok(readFileSync(state.replace(/\.state$/, '.ram')).equals(template), 'the template on disk is unchanged');
    await exec('b', 'umount /mnt/t');
  });

  test('the next up restores every guest', async () => {
    assert.equal((await qnet(['down', lab])).code, 0);
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /snapshot point/);
    assert.deepEqual(startOf(), { a: 'restored', b: 'restored', c: 'restored' });
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as { nodes: Array<{ start?: string }> };
    assert.deepEqual(st.nodes.map((n) => n.start), ['restored', 'restored', 'restored']);
    assert.match((await qnet(['status', lab])).stdout, /running \(restored\)/);
    await exec('a', 'ping -c 1 -W 5 10.91.0.13');
  });

  test('a guest restored into a running lab announces nothing: no RARP from QEMU, no gratuitous ARP from the guest', async () => {
    // Counted where frames enter the lab's bridge, from before d starts: after a load QEMU would broadcast RARPs
    // and have the guest send gratuitous ARPs (a migrated guest's announcement), waking every guest on the network.
    const ns = `qnet-${lab}`;
    const nft = (args: string[]) => sh(['ip', 'netns', 'exec', ns, 'nft', ...args]).stdout;
    nft(['add table bridge t; add chain bridge t c { type filter hook prerouting priority 0; }; add rule bridge t c ether type 0x8035 counter; add rule bridge t c ether saddr 52:54:00:91:00:14 ether type arp counter']);
    const more = writeTopology({
      name: lab,
      networks: { lan: { subnet: '10.91.0.0/24' } },
      nodes: { a: node('10.91.0.11', '52:54:00:91:00:11'), b: node('10.91.0.12', '52:54:00:91:00:12'), c: node('10.91.0.13', '52:54:00:91:00:13'), d: node('10.91.0.14', '52:54:00:91:00:14') },
    });
    const r = await qnet(['up', more, '--replace']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /d is up \(restored from the saved state/);
    await new Promise((res) => setTimeout(res, 1500)); // QEMU's announcements would span 50 + 150 + 250 + 350 + 450 ms
    const counts = [...nft(['list chain bridge t c']).matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(counts, [0, 0], `RARP frames, ARP frames from d: ${counts.join(', ')}`);
    await exec('d', 'ping -c 1 -W 5 10.91.0.11');
  });

  test('a state that cannot be loaded is dropped and the guests boot instead', async () => {
    assert.equal((await qnet(['down', lab])).code, 0);
    const good = readFileSync(state);
    writeFileSync(state, good.subarray(0, good.length >> 1)); // cut short: QEMU fails part-way through loading
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /a: the saved state could not be loaded.*booting it instead/);
    assert.deepEqual(startOf(), { a: 'booted', b: 'booted', c: 'booted' });
    assert.ok(!existsSync(state), 'the unusable state is removed');
    assert.ok(!existsSync(state.replace(/\.state$/, '.ram')), 'and its RAM template with it');
    await exec('c', 'ping -c 1 -W 5 10.91.0.11');
  });

  test('--cold boots every guest and saves nothing', async () => {
    assert.equal((await qnet(['down', lab])).code, 0);
    const r = await qnet(['up', file, '--cold']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /snapshot point|restored/);
    assert.deepEqual(startOf(), { a: 'booted', b: 'booted', c: 'booted' });
    assert.ok(!existsSync(state));
    assert.equal((await qnet(['down', lab])).code, 0);
    assert.deepEqual(await snapshot(), before0);
  });
});
