// End-to-end: `qnet check` on the seed lab (real guests under TCG, in the lab's namespace): the predicted matrix
// agrees with what the guests measure (ping and TCP); then the lab is broken live — deb1's forwarding turned off
// inside the guest, a link pulled, 100% loss on a NIC — and check reports exactly the resulting disagreements with
// their predicted paths (what qnet changed itself is predicted; --as-declared predicts the lab as written). `up
// --check` runs the declared checks and exits 1 naming the one that fails. Nothing is left behind.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { ROOT, labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

interface Json {
  cells: Array<{ from: string; to: string; probe: string; mark: string; measured: { ok: boolean; skipped?: string } | null; predicted: { via: string } | null }>;
  disagreements: Array<{ from: string; to: string; probe: string; predicted: { ok: boolean; via: string; hops: string[]; reason?: string }; measured: { ok: boolean } }>;
  declared: Array<{ label: string; ok: boolean }>;
  ms: number;
  ok: boolean;
}

describe('qnet check on the seed lab', () => {
  const lab = labName('reach');
  let before0: HostSnapshot;
  const seed = parse(readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8')) as Record<string, unknown>;
  const check = async (...args: string[]) => {
    const r = await qnet(['check', lab, '--json', ...args]);
    assert.ok(r.code === 0 || r.code === 1, `check: ${r.code} ${r.stderr}`);
    return { code: r.code, json: JSON.parse(r.stdout) as Json };
  };
  const pairs = (j: Json) => j.disagreements.map((d) => `${d.from} → ${d.to} ${d.probe}`).sort();
  before(async () => {
    before0 = await snapshot();
    const file = writeTopology({ ...seed, name: lab });
    const r = await qnet(['up', file, '--check']);
    assert.equal(r.code, 0, r.stderr);
    // up --check: the declared checks of the seed, each measured in the guests.
    assert.match(r.stdout, /pass {2}deb3 → upstream tcp 80, expect pass {2}\(predicted ✓ via deb1 \(router\), deb1's user-mode NAT; measured ✓ \(connected\)\)/);
    assert.match(r.stdout, /pass {2}deb2 → upstream ping, expect fail/);
    assert.match(r.stderr, /all 5 declared checks passed/);
  });
  after(async () => {
    await qnet(['down', lab]);
    assert.deepEqual(await snapshot(), before0);
  });

  test('the matrix agrees everywhere: the LAN, the host side, the upstream by TCP through deb1 but not by ICMP', async () => {
    const text = await qnet(['check', lab]);
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.match(text.stdout, /^ +deb1 +deb2 +deb3 +host:lan +upstream$/m);
    assert.match(text.stdout, /^deb2 +✓✓ +-- +✓✓ +✓✓ +✗✓$/m);
    assert.match(text.stdout, /^host +✓✓ +✓✓ +✓✓ +-- +--$/m);
    assert.match(text.stdout, /ICMP through deb1's user-mode NAT \(QEMU's slirp carries TCP and UDP, not ICMP\): deb1 → upstream ping, deb2 → upstream ping, deb3 → upstream ping/);
    assert.match(text.stdout, /prediction and measurement agree everywhere/);
    const { json } = await check();
    assert.equal(json.ok, true);
    const measured = json.cells.filter((c) => c.measured);
    assert.equal(measured.length, 30, 'every applicable cell measured (4 sources × 5 destinations × 2 probes, less the 10 that do not apply)');
    assert.deepEqual(json.cells.find((c) => c.from === 'deb2' && c.to === 'upstream' && c.probe === 'ping')!.mark, '✗');
    assert.deepEqual(json.cells.find((c) => c.from === 'deb2' && c.to === 'upstream' && c.probe === 'tcp')!.mark, '✓');
    const ping = await qnet(['check', lab, '--only', 'ping']);
    assert.match(ping.stdout, /^deb2 +✓ +- +✓ +✓ +✗$/m);
  });

  test('broken live: forwarding off in deb1, then a link pulled, then 100% loss: exactly the resulting disagreements', async () => {
    const off = await qnet(['exec', lab, 'deb1', '--', 'sysctl', '-w', 'net.ipv4.ip_forward=0']);
    assert.equal(off.code, 0, off.stderr);
    let r = await check();
    assert.equal(r.code, 1);
    assert.deepEqual(pairs(r.json), ['deb2 → upstream tcp', 'deb3 → upstream tcp']);
    const d = r.json.disagreements[0]!;
    assert.equal(d.predicted.ok, true);
    assert.equal(d.predicted.via, "via deb1 (router), deb1's user-mode NAT");
    assert.ok(d.predicted.hops.includes('deb1 eth1') && d.predicted.hops.some((h) => /masquerades/.test(h)), d.predicted.hops.join(' → '));
    const text = await qnet(['check', lab]);
    assert.match(text.stdout, /^2 disagreements:$/m);
    assert.match(text.stdout, /deb2 → upstream tcp: predicted ✓ via deb1 \(router\), deb1's user-mode NAT; measured ✗ \(no connection, also on a second try of 10 s\)\n {6}predicted path: deb2 eth0 → \[lan\] → deb1 eth1 → deb1 eth0 masquerades 192\.168\.1\.2 as 10\.0\.2\.15/);
    assert.match(text.stdout, /FAIL {2}deb3 → upstream tcp 80, expect pass/);

    // deb3's cable pulled by qnet: predicted (link down) and measured alike; only deb2's disagreement is left.
    assert.equal((await qnet(['link', lab, 'deb3', 'down'])).code, 0);
    r = await check();
    assert.deepEqual(pairs(r.json), ['deb2 → upstream tcp']);
    const deb3 = r.json.cells.filter((c) => c.from === 'deb2' && c.to === 'deb3');
    assert.deepEqual(deb3.map((c) => c.mark), ['✗', '✗']);
    // As written, the topology says deb3 is reachable: every deb3 pair is now a disagreement with its predicted path.
    const declared = await check('--as-declared');
    assert.ok(pairs(declared.json).includes('deb2 → deb3 ping') && pairs(declared.json).includes('host → deb3 tcp'), pairs(declared.json).join(', '));
    assert.equal(declared.json.disagreements.find((x) => x.from === 'deb2' && x.to === 'deb3')!.predicted.via, 'same segment lan');
    assert.equal((await qnet(['link', lab, 'deb3', 'up'])).code, 0);

    // Everything deb3 receives lost (a FIFO of length 0 on its tap: no netem needed).
    const loss = await qnet(['impair', lab, 'deb3', '--loss', '100%', '--direction', 'ingress']);
    assert.equal(loss.code, 0, loss.stderr);
    r = await check();
    assert.deepEqual(pairs(r.json), ['deb2 → upstream tcp']);
    assert.match(JSON.stringify(r.json.cells.find((c) => c.from === 'host' && c.to === 'deb3' && c.probe === 'ping')), /"mark":"✗"/);
    const text2 = await qnet(['check', lab]);
    assert.match(text2.stdout, /100% loss on deb3 eth0 \(ingress\): deb1 → deb3 ping/);
    assert.equal((await qnet(['impair', lab, 'deb3', '--clear'])).code, 0);
    assert.equal((await qnet(['exec', lab, 'deb1', '--', 'sysctl', '-w', 'net.ipv4.ip_forward=1'])).code, 0);
    r = await check();
    assert.equal(r.code, 0, pairs(r.json).join(', '));
    assert.ok(r.json.ms < 60_000, `a check of the seed lab took ${r.json.ms} ms`);
  });

  test('check leaves nothing in the guests or the namespace: no listener, no probe address', async () => {
    const ps = await qnet(['exec', lab, 'deb2', '--', 'sh', '-c', 'ps | grep -c "[n]c -ll" ; ls /run/qnet-check.pids 2>&1 | grep -c "No such"']);
    assert.equal(ps.stdout, '0\n1\n');
  });
});

test('up --check exits 1 naming the declared check that fails; check of a file predicts (--predict), bad input exit 2', async () => {
  const lab = labName('decl');
  const before0 = await snapshot();
  const file = writeTopology({
    name: lab,
    networks: { n: { subnet: '10.66.0.0/24' } },
    nodes: { a: { nics: [{ network: 'n', ip: '10.66.0.1' }] }, b: { nics: [{ network: 'n', ip: '10.66.0.2' }] } },
    checks: [
      { from: 'a', to: 'b', ping: true },
      { from: 'a', to: 'b', tcp: 22, expect: 'fail' }, // qnet listens on 22 for the check: it passes, against the expectation
    ],
  });
  try {
    const pred = await qnet(['check', file, '--predict']);
    assert.equal(pred.code, 1, 'the model predicts the TCP connection, so the expectation of failure is not met');
    assert.match(pred.stdout, /FAIL {2}a → b \(10\.66\.0\.2\) tcp 22, expect fail/);
    const r = await qnet(['up', file, '--check']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /pass {2}a → b \(10\.66\.0\.2\) ping, expect pass/);
    assert.match(r.stderr, /1 of 2 declared checks failed: a → b \(10\.66\.0\.2\) tcp 22, expect fail \(the lab is up/);
    assert.equal((await qnet(['status', lab])).code, 0, 'the lab stays up for a look');
    assert.equal((await qnet(['check', 'no-such-lab'])).code, 2);
    assert.equal((await qnet(['check', file])).code, 2, 'a file without --predict: measuring needs the lab by name');
  } finally {
    await qnet(['down', lab]);
  }
  assert.deepEqual(await snapshot(), before0);
});

test('a nat lab: the upstream is the host beyond the uplink; a port forward and a user-mode hostfwd are measured through', async () => {
  const lab = labName('fwdchk');
  const before0 = await snapshot();
  const file = writeTopology({
    name: lab,
    networks: { n: { mode: 'nat', subnet: '10.67.0.0/24', address: '10.67.0.1' } },
    forwards: [{ host: 18080, node: 'a', port: 8080 }],
    nodes: {
      a: { nics: [{ network: 'n', ip: '10.67.0.10' }] },
      u: { gateway: '10.67.0.1', nics: [{ user: { hostfwd: [{ host: 2222, guest: 22 }] } }, { network: 'n', ip: '10.67.0.11' }] },
    },
  });
  try {
    assert.equal((await qnet(['up', file])).code, 0);
    const r = await qnet(['check', lab, '--json']);
    const j = JSON.parse(r.stdout) as Json;
    assert.equal(r.code, 0, JSON.stringify(j.disagreements));
    const cell = (from: string, to: string, probe: string) => j.cells.find((c) => c.from === from && c.to === to && c.probe === probe)!;
    assert.equal(cell('upstream', 'forward:18080', 'tcp').measured?.ok, true, 'the host reaches a:8080 through its forward');
    assert.equal(cell('host', 'hostfwd:2222', 'tcp').measured?.ok, true, "the lab namespace reaches u:22 through u's hostfwd");
    assert.equal(cell('a', 'upstream', 'ping').measured?.ok, true);
    assert.match(cell('a', 'upstream', 'ping').predicted!.via, /via the host's NAT \(n\)/);
    assert.equal(j.cells.filter((c) => c.measured?.skipped).length, 0, 'nothing here would leave the machine');
  } finally {
    await qnet(['down', lab]);
  }
  assert.deepEqual(await snapshot(), before0);
});
