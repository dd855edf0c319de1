// The reachability model (pure): the predicted matrix of every example (golden), each way a probe is lost
// (router without forward, masquerade missing, gateway that does not route, isolated network, user-mode NAT and ICMP,
// anti-spoofing, link down, 100% loss), declared checks and their references, and properties over generated labs.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { predict, predictOne, endpoints, type LiveFacts, type Prediction } from '../../src/check/model.js';
import { disagreements, renderDisagreements, renderMatrix, renderReasons } from '../../src/check/matrix.js';
import { predictCheck, resolveChecks } from '../../src/check/declared.js';
import { listenScript, parseProbeOutput, probeScript } from '../../src/check/scripts.js';
import { parseTopology, validateTopology } from '../../src/topology/load.js';
import { UserError } from '../../src/errors.js';
import type { ResolvedLab } from '../../src/topology/model.js';
import { golden, ROOT } from './golden.js';

const example = (name: string) => parseTopology(readFileSync(path.join(ROOT, 'examples', name), 'utf8'), name, { baseDir: '/labs/examples' });
const lab = (yaml: string) => parseTopology(yaml, 'lab.yaml');
const cell = (p: Prediction, from: string, to: string, probe: 'ping' | 'tcp') => {
  const c = p.cells.find((x) => x.from === from && x.to === to && x.probe === probe);
  assert.ok(c, `a cell ${from} → ${to} ${probe}`);
  return c.predicted;
};
const one = (l: ResolvedLab, from: string, to: string, probe: 'ping' | 'tcp', live: LiveFacts = {}) => {
  const { sources, destinations } = endpoints(l, live);
  const v = predictOne(l, sources.find((s) => s.id === from)!, destinations.find((d) => d.id === to)!, probe, live);
  assert.ok(v, `${from} → ${to} applies`);
  return v;
};

describe('the predicted matrix of every example (golden)', () => {
  for (const file of readdirSync(path.join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml')).sort())
    test(file, () => {
      const l = example(file);
      const p = predict(l);
      golden(`check-${file.replace(/\.yaml$/, '')}.txt`, renderMatrix(p, ['ping', 'tcp']) + '\n' + renderReasons(p, ['ping', 'tcp']));
      for (const c of p.cells) if (c.predicted) assert.equal(c.predicted.ok, c.predicted.reason === undefined, `${c.from} → ${c.to}: a reason exactly when it fails`);
    });
});

test('the seed lab: the LAN reaches itself, the upstream by TCP through deb1 (masquerade, then user-mode NAT) but not by ICMP', () => {
  const p = predict(example('seed-lab.yaml'));
  assert.deepEqual(p.sources.map((s) => s.id), ['deb1', 'deb2', 'deb3', 'host']);
  assert.deepEqual(p.destinations.map((d) => d.id), ['deb1', 'deb2', 'deb3', 'host:lan', 'upstream']);
  assert.equal(cell(p, 'deb2', 'deb3', 'ping')!.via, 'same segment lan');
  const tcp = cell(p, 'deb3', 'upstream', 'tcp')!;
  assert.equal(tcp.ok, true);
  assert.equal(tcp.via, "via deb1 (router), deb1's user-mode NAT");
  assert.ok(tcp.hops.includes('deb1 eth0 masquerades 192.168.1.3 as 10.0.2.15') && tcp.hops.includes('deb1 un-masquerades to 192.168.1.3'), tcp.hops.join(' → '));
  const ping = cell(p, 'deb2', 'upstream', 'ping')!;
  assert.equal(ping.ok, false);
  assert.match(ping.reason!, /ICMP through deb1's user-mode NAT/);
  assert.equal(cell(p, 'host', 'upstream', 'ping'), null, 'the upstream of a lab without an uplink is in the lab namespace itself');
});

test('a router without forwarding, and a masquerade left out', () => {
  const seed = readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8');
  const noFwd = lab(seed.replace('    router:\n', '    router:\n      forward: false\n'));
  assert.match(one(noFwd, 'deb2', 'upstream', 'tcp').reason!, /deb1 does not forward \(router forward: false\)/);
  assert.equal(one(noFwd, 'deb1', 'upstream', 'tcp').ok, true, 'deb1 itself still reaches out');
  const noMasq = lab(seed.replace(/      masquerade:\n(.*\n){2}/, '      masquerade: []\n'));
  const v = one(noMasq, 'deb3', 'upstream', 'tcp');
  assert.equal(v.ok, false);
  assert.match(v.reason!, /deb1's user-mode NAT cannot answer 192\.168\.1\.3: it reaches only 10\.0\.2\.15 \(masquerade out of eth0 on deb1 is missing\)/);
});

test('a gateway that is not a router; a node with no gateway; an isolated network', () => {
  const l = lab(`name: gw
networks:
  a: { subnet: 10.1.0.0/24, address: 10.1.0.1 }
  b: { subnet: 10.2.0.0/24 }
  iso: { mode: isolated, subnet: 10.3.0.0/24 }
nodes:
  r: { router: {}, nics: [{ network: a, ip: 10.1.0.254 }, { network: b, ip: 10.2.0.254 }] }
  x: { gateway: 10.1.0.9, nics: [{ network: a, ip: 10.1.0.5 }] }
  wrong: { gateway: 10.1.0.5, nics: [{ network: a, ip: 10.1.0.6 }] }
  y: { gateway: 10.2.0.254, nics: [{ network: b, ip: 10.2.0.5 }, { network: iso, ip: 10.3.0.5 }] }
  z: { nics: [{ network: a, ip: 10.1.0.7 }] }
  i: { nics: [{ network: iso, ip: 10.3.0.6 }] }
`);
  assert.match(one(l, 'x', 'y:eth0', 'ping').reason!, /nobody on a has the next hop 10\.1\.0\.9/);
  assert.match(one(l, 'wrong', 'y:eth0', 'ping').reason!, /^x does not forward \(not a router\)/);
  assert.match(one(l, 'z', 'y:eth0', 'ping').reason!, /z has no route to 10\.2\.0\.5 \(no gateway\)/);
  // y reaches a through r, but a's nodes have no way back to b without a gateway through r.
  assert.match(one(l, 'y', 'z', 'ping').reason!, /z has no route to 10\.2\.0\.5/);
  assert.equal(one(l, 'y', 'i', 'ping').via, 'same segment iso');
  assert.match(one(l, 'i', 'host:a', 'ping').reason!, /i has no route to 10\.1\.0\.1/);
  assert.ok(!endpoints(l).destinations.some((d) => d.id === 'host:iso'), 'an isolated network has no host side');
});

test('nat and routed networks: the host beyond the uplink, and port forwards from it', () => {
  const p = predict(example('nat-dhcp.yaml'));
  const ids = p.destinations.map((d) => d.id);
  assert.ok(ids.includes('upstream'));
  for (const s of p.sources.filter((x) => x.kind === 'node')) {
    const v = cell(p, s.id, 'upstream', 'ping')!;
    assert.equal(v.ok, true, `${s.id} → upstream: ${v.reason}`);
    assert.match(v.via, /via the host's NAT/);
  }
  const nets = lab(readFileSync(path.join(ROOT, 'test', 'fixtures', 'nets.yaml'), 'utf8'));
  const np = predict(nets);
  assert.equal(cell(np, 'upstream', 'forward:8080', 'tcp')!.ok, true);
  assert.equal(cell(np, 'win', 'forward:8080', 'tcp'), null, 'a forward is for the host side');
  assert.match(cell(np, 'upstream', 'r1', 'ping')!.via, /routed by the host \(rt\)/);
  // deb's isolated NIC: not reachable from the host (no host side, no route).
  assert.match(cell(np, 'upstream', 'deb:eth1', 'ping')!.reason!, /the host has no route to 10\.78\.0\.3/);
});

test('safety: every probe whose packets or answers would leave the machine by the host\'s default route is marked', () => {
  const l = validateTopology({
    name: 'leak',
    networks: { north: { mode: 'nat', subnet: '10.71.0.0/24', address: '10.71.0.1' }, south: { subnet: '10.72.0.0/24', address: '10.72.0.1' }, iso: { mode: 'isolated', subnet: '10.73.0.0/24' } },
    nodes: {
      n: { nics: [{ network: 'north', ip: '10.71.0.11' }] },
      s: { gateway: '10.72.0.1', nics: [{ network: 'south', ip: '10.72.0.11' }, { network: 'iso', ip: '10.73.0.11' }] },
      u: { nics: [{ user: {} }, { network: 'north', ip: '10.71.0.12' }], gateway: '10.0.2.2' },
    },
  });
  const p = predict(l);
  const leaves = p.cells.filter((c) => c.predicted?.leaves).map((c) => `${c.from} → ${c.to} ${c.probe}`);
  // The host routes only north back into the lab: from it to south, and its answers to south, would leave; so
  // would n's packets to iso (the lab namespace sends what it has no route for to the host).
  for (const x of ['upstream → s:eth0 ping', 's → upstream tcp', 'n → s:eth1 ping', 'host → s:eth1 tcp']) assert.ok(leaves.includes(x), `${x} in ${leaves.join(', ')}`);
  for (const x of ['n → upstream ping', 'upstream → n tcp', 'n → s:eth0 ping']) assert.ok(!leaves.includes(x), x);
  for (const c of p.cells) if (c.predicted?.leaves) assert.equal(c.predicted.ok, false);
});

test('anti-spoofing: an answer that leaves by another NIC than the address it answers for is dropped on a filtered network', () => {
  const yaml = (mode: string) => `name: spoof
networks:
  n: { mode: nat, subnet: 10.8.0.0/24, address: 10.8.0.1 }
  m: { mode: ${mode}, subnet: 10.9.0.0/24, address: 10.9.0.1 }
nodes:
  two: { gateway: 10.8.0.1, nics: [{ network: n, ip: 10.8.0.5 }, { network: m, ip: 10.9.0.5 }] }
  other: { nics: [{ network: m, ip: 10.9.0.6 }] }
`;
  // other reaches two's n address through the lab namespace; two answers from 10.8.0.5 straight out of its m NIC.
  const v = one(lab(yaml('nat')), 'other', 'two:eth0', 'ping');
  assert.equal(v.ok, false);
  assert.match(v.reason!, /anti-spoofing on m drops two's packet from 10\.8\.0\.5 \(not eth1's address\)/);
  const off = lab(yaml('routed') + '').networks.find((n) => n.name === 'm')!;
  assert.equal(off.antispoof, true, 'routed networks filter too');
  const plain = lab(yaml('nat').replace('m: { mode: nat,', 'm: { mode: nat, antispoof: false,'));
  assert.equal(one(plain, 'other', 'two:eth0', 'ping').ok, true, 'without the filter the asymmetric answer arrives');
});

test('links pulled down and 100% loss, by direction; --as-declared ignores them', () => {
  const l = example('seed-lab.yaml');
  const down: LiveFacts = { linksDown: { deb3: [0] } };
  assert.match(one(l, 'deb2', 'deb3', 'ping', down).reason!, /deb3 eth0 link is down/);
  assert.equal(one(l, 'deb2', 'deb1', 'ping', down).ok, true);
  const loss = (direction: 'egress' | 'ingress' | 'both'): LiveFacts => ({ impairment: (n, nic) => (n.name === 'deb3' && nic.index === 0 ? { direction, lossPct: 100 } : undefined) });
  assert.match(one(l, 'deb3', 'deb2', 'ping', loss('egress')).reason!, /100% loss on deb3 eth0 \(egress\)/);
  assert.match(one(l, 'deb2', 'deb3', 'ping', loss('egress')).reason!, /100% loss on deb3 eth0 \(egress\)/, 'the answer is lost');
  assert.match(one(l, 'deb2', 'deb3', 'ping', loss('ingress')).reason!, /100% loss on deb3 eth0 \(ingress\)/);
  const some: LiveFacts = { impairment: () => ({ direction: 'both', lossPct: 50 }) };
  assert.equal(one(l, 'deb2', 'deb3', 'ping', some).ok, true, 'partial loss still reaches (ping sends two)');
});

test('DHCP NICs: distinct stand-ins from their range until a lease is known, then the lease', () => {
  const l = example('nat-dhcp.yaml');
  const dhcp = endpoints(l).destinations.filter((d) => d.dhcp);
  assert.equal(new Set(dhcp.map((d) => d.ip)).size, dhcp.length, 'no two stand-ins alike');
  const node = l.nodes.find((n) => n.nics.some((c) => c.dhcp && !c.addresses.length))!;
  const nic = node.nics.find((c) => c.dhcp && !c.addresses.length)!;
  const leased = endpoints(l, { leases: { [node.name]: { [nic.index]: (10 << 24) | 12345 } } }).destinations.find((d) => d.node === node.name && d.nic === nic.index)!;
  assert.equal(leased.dhcp, undefined);
  assert.equal(leased.ip, (10 << 24) | 12345);
});

describe('declared checks', () => {
  const seed = readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8');
  test('the seed lab declares what the tutorial proves, and the model predicts every one of them met', () => {
    const l = example('seed-lab.yaml');
    const { checks, issues } = resolveChecks(l);
    assert.deepEqual(issues, []);
    assert.deepEqual(checks.map((c) => c.label), [
      'deb2 → deb3 (192.168.1.3) ping, expect pass',
      'deb3 → deb2 (192.168.1.2) ping, expect pass',
      'deb2 → deb1 (192.168.1.254) ping, expect pass',
      'deb3 → upstream tcp 80, expect pass',
      'deb2 → upstream ping, expect fail',
    ]);
    for (const c of checks) assert.equal(predictCheck(l, c).meets, true, c.label);
  });
  const refused = (checks: string, re: RegExp) => {
    assert.throws(() => lab(seed.replace(/^checks:[\s\S]*$/m, `checks:\n${checks}\n`)), (e: unknown) => e instanceof UserError && re.test(e.message));
  };
  test('references that name nothing are refused with their path (exit 2)', () => {
    refused('  - { from: deb9, to: deb3, ping: true }', /checks\[0\]\.from: unknown node "deb9" \(nodes: deb1, deb2, deb3; or "host", "upstream"\)/);
    refused('  - { from: deb2, to: deb3:eth4, ping: true }', /checks\[0\]\.to: deb3 has no NIC "eth4" \(its NICs: eth0\)/);
    refused('  - { from: deb2, to: host:wan, ping: true }', /checks\[0\]\.to: "wan" is not a network with a host side \(these are: host:lan\)/);
    refused('  - { from: deb2, to: deb2, ping: true }', /checks\[0\]\.to: "deb2" is deb2 itself/);
    refused('  - { from: upstream, to: deb2, ping: true }', /checks\[0\]\.from: this lab has no upstream to start from/);
    refused('  - { from: deb2, to: deb3 }', /checks\[0\]: a check is either "ping: true" or "tcp: PORT"/);
    refused('  - { from: deb2, to: deb3, ping: true, tcp: 22 }', /checks\[0\]: a check is either/);
    refused('  - { from: deb2, to: deb3, tcp: 70000 }', /checks\[0\]\.tcp: tcp is a port from 1 to 65535/);
    refused('  - { from: deb2, to: deb3, ping: true, expect: maybe }', /checks\[0\]\.expect/);
    refused('  - { from: "$(reboot)", to: deb3, ping: true }', /checks\[0\]\.from: unknown node "\$\(reboot\)"/);
  });
  test('a declared check the model predicts to fail does not meet its expectation', () => {
    const l = lab(seed.replace(/^checks:[\s\S]*$/m, 'checks:\n  - { from: deb2, to: upstream, ping: true }\n'));
    const [c] = resolveChecks(l).checks;
    const r = predictCheck(l, c!);
    assert.equal(r.meets, false);
    assert.match(r.verdict.reason!, /ICMP through deb1's user-mode NAT/);
  });
  test('a topology built in code takes checks too', () => {
    const l = validateTopology({ name: 'code', networks: { n: { subnet: '10.0.9.0/24' } }, nodes: { a: { nics: [{ network: 'n', ip: '10.0.9.1' }] }, b: { nics: [{ network: 'n', ip: '10.0.9.2' }] } }, checks: [{ from: 'a', to: 'b', tcp: 22 }] });
    assert.deepEqual(l.checks, [{ from: 'a', to: 'b', probe: 'tcp', port: 22, expect: 'pass' }]);
  });
});

test('disagreements list the predicted path and the measured result; marks in the matrix', () => {
  const p = predict(example('seed-lab.yaml'));
  const measured = new Map<string, { ok: boolean; detail?: string; skipped?: string }>();
  for (const c of p.cells) if (c.predicted) measured.set(`${c.from}|${c.to}|${c.probe}`, { ok: c.predicted.ok });
  assert.equal(disagreements(p, measured, ['ping', 'tcp']).length, 0);
  measured.set('deb2|upstream|tcp', { ok: false, detail: 'no connection' });
  measured.set('deb2|upstream|ping', { ok: true, detail: '2/2 replies' });
  measured.set('deb3|deb2|ping', { ok: false, skipped: 'not measured: no agent' });
  const dis = disagreements(p, measured, ['ping', 'tcp']);
  assert.deepEqual(dis.map((d) => `${d.cell.from} ${d.cell.to} ${d.cell.probe}`), ['deb2 upstream ping', 'deb2 upstream tcp']);
  const text = renderDisagreements(dis);
  assert.match(text, /^2 disagreements:\n  deb2 → upstream ping: predicted ✗ \(ICMP through deb1's user-mode NAT/);
  assert.match(text, /deb2 → upstream tcp: predicted ✓ via deb1 \(router\), deb1's user-mode NAT; measured ✗ \(no connection\)\n      predicted path: deb2 eth0 → \[lan\] → deb1 eth1 → /);
  const m = renderMatrix(p, ['ping', 'tcp'], measured);
  assert.match(m, /^deb2 +✓✓ +-- +✓✓ +✓✓ +\?!$/m);
  assert.match(m, /^deb3 +✓✓ +~✓ /m);
  assert.match(renderMatrix(p, ['ping']), /^deb2 +✓ +- +✓ +✓ +✗$/m);
});

test('the probe scripts: every probe at once, results parsed back; listeners by python3 or busybox nc', () => {
  const s = probeScript([{ probe: 'ping', ip: '10.0.0.1' }, { probe: 'tcp', ip: '10.0.0.2', port: 47007 }], { busybox: true });
  assert.match(s, /^p 10\.0\.0\.1 &$/m);
  assert.match(s, /^t 10\.0\.0\.2 47007 &$/m);
  assert.match(s, /busybox ping -c 2 -w 3 -W 2/);
  assert.match(s, /\nwait\n$/);
  // The second try (only of probes that should have reached): every wait longer, ping's per-reply one too.
  const slow = probeScript([{ probe: 'ping', ip: '10.0.0.1' }, { probe: 'tcp', ip: '10.0.0.2', port: 47007 }], { waitS: 10 });
  assert.match(slow, /[^x]ping -c 2 -w 10 -W 9 /);
  assert.match(slow, /[^x]nc -w 10 "\$1" "\$2"/);
  const r = parseProbeOutput('ping 10.0.0.1 0\ntcp 10.0.0.2 47007 ok\nping 10.0.0.3 2\njunk\n');
  assert.deepEqual([...r.entries()], [
    ['ping 10.0.0.1', { ok: false, detail: '0/2 replies' }],
    ['tcp 10.0.0.2 47007', { ok: true, detail: 'connected' }],
    ['ping 10.0.0.3', { ok: true, detail: '2/2 replies' }],
  ]);
  assert.match(listenScript([47007, 80]), /for p in 47007 80; do nc -ll -p "\$p" -e true/);
});

describe('properties over generated labs', () => {
  // One segment of n nodes with random links pulled: two nodes reach each other exactly when both links are up.
  test('on one segment, A reaches B iff neither link is down', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), (n, downs) => {
        const nodes = Object.fromEntries(Array.from({ length: n }, (_, i) => [`n${i}`, { nics: [{ network: 'lan', ip: `10.4.0.${i + 2}` }] }]));
        const l = validateTopology({ name: 'prop', networks: { lan: { subnet: '10.4.0.0/24', address: '10.4.0.1' } }, nodes });
        const linksDown = Object.fromEntries(l.nodes.filter((_, i) => downs[i]).map((x) => [x.name, [0]]));
        const p = predict(l, { linksDown });
        for (const c of p.cells) {
          if (!c.predicted || !c.from.startsWith('n') || !c.to.startsWith('n')) continue;
          assert.equal(c.predicted.ok, !linksDown[c.from] && !linksDown[c.to], `${c.from} → ${c.to}`);
        }
      }),
      { numRuns: 60 },
    );
  });
  // A chain of routers h0 - r1 - r2 ... - hk: hosts reach each other only with every router forwarding and routes both ways.
  test('a chain of routers: every host reaches every other, and none once one router stops forwarding', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 5 }), (k, off) => {
        const networks: Record<string, unknown> = {};
        const nodes: Record<string, unknown> = {};
        for (let i = 0; i <= k; i++) networks[`s${i}`] = { subnet: `10.${20 + i}.0.0/24` };
        for (let i = 1; i <= k; i++) {
          // r_i joins s_{i-1} (.254) and s_i (.1), routes to every subnet further left through r_{i-1}.
          const routes = Array.from({ length: Math.max(0, i - 1) }, (_, j) => ({ to: `10.${20 + j}.0.0/24`, via: `10.${20 + i - 1}.0.1` }));
          nodes[`r${i}`] = {
            router: { forward: i !== off },
            ...(i < k ? { gateway: `10.${20 + i}.0.254` } : {}),
            ...(routes.length ? { routes } : {}),
            nics: [{ network: `s${i - 1}`, ip: `10.${20 + i - 1}.0.254` }, { network: `s${i}`, ip: `10.${20 + i}.0.1` }],
          };
        }
        nodes['h0'] = { gateway: '10.20.0.254', nics: [{ network: 's0', ip: '10.20.0.10' }] };
        nodes['hk'] = { gateway: `10.${20 + k}.0.1`, nics: [{ network: `s${k}`, ip: `10.${20 + k}.0.10` }] };
        const l = validateTopology({ name: 'chain', networks, nodes });
        const v = one(l, 'h0', 'hk', 'ping');
        const back = one(l, 'hk', 'h0', 'tcp');
        const broken = off >= 1 && off <= k;
        assert.equal(v.ok, !broken, `${k} routers, r${off} off: ${v.reason ?? v.via}`);
        assert.equal(back.ok, !broken);
        if (!broken) assert.equal(v.via, Array.from({ length: k }, (_, i) => `via r${i + 1} (router)`).join(', '));
        else assert.match(v.reason!, new RegExp(`r${off} does not forward`));
      }),
      { numRuns: 60 },
    );
  });
  test('the model never throws on any example with any link down', () => {
    for (const file of readdirSync(path.join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml'))) {
      const l = example(file);
      for (const node of l.nodes) for (const nic of node.nics) predict(l, { linksDown: { [node.name]: [nic.index] } });
    }
  });
});

test('rootless (pasta uplink): guests and the lab namespace reach the host itself by TCP, ICMP only where ping sockets are allowed; the host reaches the lab only by its forwards', () => {
  const l = lab(`name: rl
networks:
  lan: { mode: nat, subnet: 172.16.9.0/24, address: 172.16.9.1, dhcp: { range: 172.16.9.2-172.16.9.50 } }
  back: { subnet: 192.168.77.0/24, address: 192.168.77.1 }
forwards: [{ proto: tcp, host: 18080, node: a, port: 80 }]
nodes:
  a: { nics: [{ network: lan, ip: 172.16.9.60 }, { network: back, ip: 192.168.77.2 }] }
  b: { nics: [{ network: back, ip: 192.168.77.3 }] }
`);
  const host = (192 << 24) | (2 << 8) | 2; // the host's own address (192.0.2.2), as `qnet check` finds it
  const labEnd = ((100 << 24) | (64 << 16) | 6) >>> 0; // pasta's tap in the lab: 100.64.0.6
  const noPing: LiveFacts = { upstream: host >>> 0, pasta: { labEnd, ping: false } };
  const p = predict(l, noPing);
  const up = p.destinations.find((d) => d.id === 'upstream')!;
  assert.equal(up.ip, host >>> 0, 'upstream is the host itself, not the end of a veth');
  for (const from of ['a', 'host']) {
    const tcp = cell(p, from, 'upstream', 'tcp')!;
    assert.equal(tcp.ok, true, `${from} → upstream tcp: ${tcp.reason}`);
    assert.ok(tcp.hops.includes('the uplink (pasta)'), tcp.hops.join(' | '));
    const ping = cell(p, from, 'upstream', 'ping')!;
    assert.equal(ping.ok, false);
    assert.match(ping.reason!, /pasta carries no ICMP echo .*ping_group_range/);
    assert.ok(!ping.leaves, 'a ping to the host itself is measured (it does not leave)');
  }
  // b is on an isolated-from-the-uplink network without a gateway: no route.
  assert.equal(cell(p, 'b', 'upstream', 'tcp')!.ok, false);
  // The forward: pasta carries it in, the lab namespace DNATs it to a.
  const fwd = cell(p, 'upstream', 'forward:18080', 'tcp')!;
  assert.equal(fwd.ok, true, fwd.reason);
  assert.match(fwd.hops.join(' | '), /pasta → the lab namespace → a 172\.16\.9\.60:80/);
  // Everything else from the host would leave by its default route: never probed.
  for (const to of ['a:eth0', 'host:lan', 'host:back']) {
    const v = cell(p, 'upstream', to, 'tcp')!;
    assert.equal(v.ok, false);
    assert.equal(v.leaves, true, `upstream → ${to} is not sent`);
    assert.match(v.reason!, /no route into a rootless lab/);
  }
  // Where ping sockets are allowed, pasta carries the ping too.
  const withPing = predict(l, { upstream: host >>> 0, pasta: { labEnd, ping: true } });
  assert.equal(cell(withPing, 'a', 'upstream', 'ping')!.ok, true);
  assert.equal(cell(withPing, 'host', 'upstream', 'ping')!.ok, true);
  // The same lab as root: the upstream through the veth, routed into the lab.
  const root = predict(l, { upstream: host >>> 0 });
  assert.equal(cell(root, 'upstream', 'a:eth0', 'ping')!.ok, true);
});
