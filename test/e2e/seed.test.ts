// End-to-end: the seed lab (router guest, user-mode uplink, NAT) through `qnet demo`; exec, console, user-mode
// and socket NICs (the shell export run by hand: export.test.ts). Real guests under TCG, in namespaces the tests
// make and remove.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { QNET, labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

test('qnet demo passes every check and leaves nothing behind', async () => {
  const before0 = await snapshot();
  const r = await qnet(['demo']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const check of [
    // The seed lab's declared checks (examples/seed-lab.yaml), measured in the guests as `qnet check` does.
    /deb2 → deb3 \(192\.168\.1\.3\) ping, expect pass\s+pass .*measured reached \(2\/2 replies\)/,
    /deb3 → deb2 \(192\.168\.1\.2\) ping, expect pass\s+pass/,
    /deb2 → deb1 \(192\.168\.1\.254\) ping, expect pass\s+pass/,
    /deb3 → upstream tcp 80, expect pass\s+pass .*measured reached \(connected\); predicted via deb1 \(router\), deb1's user-mode NAT/,
    /deb2 → upstream ping, expect fail\s+pass .*measured not reached \(0\/2 replies\); predicted not: ICMP through deb1's user-mode NAT/,
    /deb3 fetches http:\/\/10\.0\.2\.2:8080\/ through deb1's NAT\s+pass .*not 192\.168\.1\.3/,
    /deb1 masqueraded it \(nft counter on its uplink\)\s+pass/,
  ])
    assert.match(r.stdout, check);
  assert.doesNotMatch(r.stdout, /FAIL/);
  assert.match(r.stdout, /all 7 checks passed/);
  assert.deepEqual(await snapshot(), before0);
});

describe('exec, console, user-mode and socket NICs', () => {
  const lab = labName('kinds');
  let before0: HostSnapshot;
  before(async () => {
    before0 = await snapshot();
    const file = writeTopology({
      name: lab,
      networks: { wire: { mode: 'socket', subnet: '10.5.0.0/30' } },
      nodes: {
        a: { nics: [{ user: { hostfwd: [{ host: 8080, guest: 80 }] } }, { network: 'wire', ip: '10.5.0.1' }] },
        b: { nics: [{ network: 'wire', ip: '10.5.0.2', model: 'e1000' }] },
        lone: { memory: 104 }, // no NIC at all: exec must still reach it
      },
    });
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await qnet(['down', lab]);
    assert.deepEqual(await snapshot(), before0);
  });

  test('exec passes stdout, stderr and exit codes 0, 1 and 127 through', async () => {
    const ok = await qnet(['exec', lab, 'lone', '--', 'sh', '-c', 'echo to-out; echo to-err >&2']);
    assert.equal(ok.code, 0);
    assert.equal(ok.stdout, 'to-out\n');
    assert.equal(ok.stderr, 'to-err\n');
    const one = await qnet(['exec', lab, 'lone', '--', 'false']);
    assert.equal(one.code, 1);
    const seven = await qnet(['exec', lab, 'a', '--', 'sh', '-c', 'exit 7']);
    assert.equal(seven.code, 7);
    const missing = await qnet(['exec', lab, 'b', '--', 'no-such-command']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /no-such-command: command not found/);
  });

  test('exec times out cleanly: the command is killed, exit 124, the guest still answers', async () => {
    const t = Date.now();
    const r = await qnet(['exec', lab, 'lone', '--timeout', '2', '--', 'sh', '-c', 'echo started; sleep 30']);
    assert.equal(r.code, 124);
    assert.match(r.stderr, /timed out after 2 s/);
    assert.ok(Date.now() - t < 15000, 'exec returned long before the command would have ended');
    const ps = await qnet(['exec', lab, 'lone', '--', 'sh', '-c', 'ps | grep -c "[s]leep 30" || true']);
    assert.equal(ps.stdout.trim(), '0', 'the timed-out command is no longer running');
  });

  test('exec of an unknown node or lab is bad input (exit 2)', async () => {
    assert.equal((await qnet(['exec', lab, 'nope', '--', 'true'])).code, 2);
    assert.equal((await qnet(['exec', 'no-such-lab', 'a', '--', 'true'])).code, 2);
  });

  test('a user-mode NIC gets 10.0.2.15 via 10.0.2.2, and its host forward reaches the guest', async () => {
    const addr = await qnet(['exec', lab, 'a', '--', 'sh', '-c', 'ip -4 addr show eth0; ip route; cat /etc/resolv.conf']);
    assert.match(addr.stdout, /inet 10\.0\.2\.15\/24/);
    assert.match(addr.stdout, /default via 10\.0\.2\.2/);
    assert.match(addr.stdout, /nameserver 10\.0\.2\.3/);
    const srv = await qnet(['exec', lab, 'a', '--', 'httpd', '-p', '80', '-h', '/etc']);
    assert.equal(srv.code, 0, srv.stderr);
    // The forward listens on the lab namespace's loopback.
    const r = spawnSync('ip', ['netns', 'exec', `qnet-${lab}`, 'busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/hostname'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.stdout.trim(), 'a', r.stderr);
    const other = spawnSync('ip', ['netns', 'exec', `qnet-${lab}`, 'busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8081/hostname'], { encoding: 'utf8', timeout: 20000 });
    assert.notEqual(other.status, 0, 'an undeclared port is not forwarded');
  });

  test('a socket link carries traffic between its two guests (no bridge, no tap)', async () => {
    const r = await qnet(['exec', lab, 'a', '--', 'ping', '-c', '2', '-W', '3', '10.5.0.2']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = JSON.parse((await qnet(['status', lab, '--json'])).stdout);
    assert.equal(s.status, 'up');
    assert.deepEqual(s.networks, [{ name: 'wire', mode: 'socket', subnet: '10.5.0.0/30', present: true, taps: [] }]);
    const mon = await qnet(['status', lab, '--monitor']);
    assert.match(mon.stdout, /type=socket/);
    assert.match(mon.stdout, /type=user/);
  });

  test('console attaches to the guest shell and detaches with Ctrl-]', async () => {
    const child = spawn(process.execPath, [QNET, 'console', lab, 'b'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdin.write('echo "con""sole-$(hostname)"\n');
    const deadline = Date.now() + 20000;
    while (!out.includes('console-b') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    child.stdin.write(Buffer.from([0x1d]));
    const code = await new Promise((r) => child.on('close', r));
    assert.match(out, /console-b/);
    assert.match(err, /detach with Ctrl-\]/);
    assert.equal(code, 0);
  });
});
