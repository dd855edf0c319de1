// qnet graph, pure parts: the graph model, DOT and Mermaid of every example (golden files), hostile names escaped,
// a running lab's node states, and the format chosen from --format or the output file.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { drawLab, graphFormat, liveOf } from '../../src/lab/graph.js';
import { labGraph, renderDot, renderMermaid } from '../../src/render/graph.js';
import { parseTopology } from '../../src/topology/load.js';
import { golden, ROOT } from './golden.js';

const example = (name: string) => parseTopology(readFileSync(path.join(ROOT, 'examples', name), 'utf8'), name, { baseDir: '/labs/examples' });
// Every network mode the examples leave out: routed, isolated, bridged and a socket link.
const modes = parseTopology(
  `name: modes
networks:
  core: { mode: routed, subnet: 10.50.0.0/24, address: 10.50.0.1 }
  back: { mode: isolated }
  office: { mode: bridged, uplink: eth9 }
  wire: { mode: socket }
nodes:
  r1:
    router: {}
    nics: [{ network: core, ip: 10.50.0.2 }, { network: wire }, { user: { hostfwd: [{ host: 2222, guest: 22 }] } }]
  r2: { router: {}, nics: [{ network: wire }, { network: back }] }
  h: { nics: [{ network: office, dhcp: true }, { network: back }] }
`,
  'modes.yaml',
);

describe('graph of every example (golden DOT and Mermaid)', () => {
  for (const file of readdirSync(path.join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml')).sort()) {
    test(file, async () => {
      const lab = example(file);
      const g = labGraph(lab);
      golden(`graph-${file.replace(/\.yaml$/, '')}.dot`, renderDot(g));
      golden(`graph-${file.replace(/\.yaml$/, '')}.mmd`, renderMermaid(g));
      // Graphviz draws the DOT (it fails on DOT it cannot read): the picture names every node and network.
      const svg = await drawLab(lab, 'svg');
      assert.match(svg, /^<\?xml[\s\S]*<svg [\s\S]*<\/svg>\s*$/);
      for (const n of [...lab.nodes.map((x) => `node:${x.name}`), ...lab.networks.filter((x) => x.mode !== 'socket' && x.mode !== 'link').map((x) => `net:${x.name}`)])
        assert.ok(svg.includes(`<title>${n}</title>`), `the SVG of ${file} draws ${n}`);
    });
  }
  test('every mode: routed, isolated, bridged, a socket link, a user-mode NIC with a forward', () => {
    const g = labGraph(modes);
    golden('graph-modes.dot', renderDot(g));
    golden('graph-modes.mmd', renderMermaid(g));
    assert.deepEqual(
      g.links.filter((l) => l.kind === 'socket').map((l) => l.kind === 'socket' && [l.a.node, l.b.node]),
      [['r1', 'r2']],
      'a socket network is one direct edge between its two NICs',
    );
    assert.deepEqual(g.networks.map((n) => n.name), ['core', 'back', 'office'], 'a socket network is no bridge');
    assert.deepEqual(g.hosts.map((h) => h.network), ['core', 'office']);
  });
});

test('the seed lab: roles, NIC names, addresses and MACs on the edges', () => {
  const g = labGraph(example('seed-lab.yaml'));
  assert.deepEqual(g.nodes.map((n) => [n.name, n.role]), [['deb1', 'router'], ['deb2', 'host'], ['deb3', 'host']]);
  const lan = g.links.find((l) => l.kind === 'network' && l.nic.node === 'deb1');
  assert.ok(lan && lan.kind === 'network');
  assert.deepEqual([lan.nic.ifname, lan.nic.addresses, lan.nic.mac, lan.nic.tap], ['eth1', ['192.168.1.254/24'], 'de:ad:be:ef:00:01', 'ktap1']);
  assert.ok(g.links.some((l) => l.kind === 'user' && l.nic.node === 'deb1' && l.nic.ifname === 'eth0'));
});

test('a running lab: each node carries its state (DOT colours it), each NIC its pulled cable and impairment', () => {
  const g = labGraph(example('seed-lab.yaml'), { states: { deb1: 'running', deb2: 'stopped' }, nics: { deb2: { 0: { link: 'down', impair: 'delay 20ms, egress' } } } });
  assert.deepEqual(g.nodes.map((n) => n.state), ['running', 'stopped', 'unknown']);
  const dot = renderDot(g);
  assert.match(dot, /"node:deb1" \[label="deb1\\nrouter\\nrunning".*color="#2e7d32"/);
  assert.match(renderMermaid(g), /node_deb2\("deb2<br\/>host<br\/>stopped"\)/);
  // A pulled cable and an impairment show on the NIC's edge.
  assert.match(dot, /"node:deb2" -- "net:lan" \[label="eth0\\n192\.168\.1\.2\/24\\nde:ad:be:ef:00:02\\nLINK DOWN\\nimpaired: delay 20ms, egress", style=dotted/);
});

test('a running lab: a DHCP NIC shows its lease on its edge once it has one (liveOf, from the status)', () => {
  const lab = example('nat-dhcp.yaml');
  const node = lab.nodes.find((n) => n.nics.some((c) => c.dhcp && !c.addresses.length))!;
  const nic = node.nics.find((c) => c.dhcp && !c.addresses.length)!;
  const before = renderDot(labGraph(lab, { states: {} }));
  assert.match(before, /\\ndhcp\\n/);
  const live = liveOf({
    nodes: [{ name: node.name, state: 'running', nics: node.nics.map((c) => ({ guestIf: `eth${c.index}`, mac: c.mac, model: c.model, tap: c.tap, network: c.network, dhcp: c.dhcp, addresses: c === nic ? ['10.0.0.77/24'] : [], link: 'up' as const })), kind: 'builtin' as const }],
  } as never);
  assert.match(renderDot(labGraph(lab, live)), /dhcp \(10\.0\.0\.77\/24\)/);
});

test('names that DOT or Mermaid would read as syntax are escaped', () => {
  const lab = example('seed-lab.yaml');
  const hostile = { ...lab, name: 'a"b\\c', nodes: lab.nodes.map((n, i) => (i === 0 ? { ...n, name: 'x"];evil' } : n)) };
  const dot = renderDot(labGraph(hostile));
  assert.match(dot, /^graph "a\\"b\\\\c" \{/);
  assert.match(dot, /"node:x\\"\];evil"/);
  assert.doesNotMatch(dot, /[^\\]"\];evil/);
  const mmd = renderMermaid(labGraph(hostile));
  assert.match(mmd, /node_x_22__5d__3b_evil\("x#quot;\];evil/);
});

test('the format: --format, else the extension of --out, else dot; anything else is bad input', () => {
  assert.equal(graphFormat(undefined, undefined), 'dot');
  assert.equal(graphFormat(undefined, '-'), 'dot');
  assert.equal(graphFormat(undefined, 'lab.svg'), 'svg');
  assert.equal(graphFormat(undefined, 'lab.MMD'), 'mermaid');
  assert.equal(graphFormat(undefined, 'lab.gv'), 'dot');
  assert.equal(graphFormat('json', 'lab.svg'), 'json');
  assert.throws(() => graphFormat('png', undefined), (e: Error & { exitCode?: number }) => e.exitCode === 2 && /--format: expected one of svg, dot, mermaid, json, got "png"/.test(e.message));
  assert.throws(() => graphFormat(undefined, 'lab.txt'), (e: Error & { exitCode?: number }) => e.exitCode === 2 && /--out lab\.txt: say the format/.test(e.message));
});

describe('a lab on several hosts: each host a cluster of its nodes', () => {
  // The seed lab over two hosts, as issue 33 has it: deb1 pinned on a, deb3 on b, deb2 placed by qnet.
  const text = readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8')
    .replace('nodes:\n  deb1:\n', 'hosts:\n  a: { ssh: root@192.0.2.11 }\n  b: { ssh: root@192.0.2.12 }\novn: { central: a }\nnodes:\n  deb1:\n    host: a\n')
    .replace('  deb3:\n', '  deb3:\n    host: b\n');
  const lab = parseTopology(text, 'seed-two-hosts.yaml');
  test('from the file: pinned nodes in their host, the others said to be placed at up (golden DOT and Mermaid)', () => {
    const g = labGraph(lab);
    assert.deepEqual(g.machines, [
      { name: 'a', reach: 'root@192.0.2.11', roles: ['central', 'gateway'], nodes: ['deb1'] },
      { name: 'b', reach: 'root@192.0.2.12', roles: [], nodes: ['deb3'] },
    ]);
    assert.deepEqual(g.unplaced, ['deb2']);
    const dot = renderDot(g);
    golden('graph-seed-two-hosts.dot', dot);
    golden('graph-seed-two-hosts.mmd', renderMermaid(g));
    assert.match(dot, /subgraph "cluster_0" \{\n {4}label="host a · root@192\.0\.2\.11 · central, gateway";/);
    assert.match(dot, /placed by qnet when the lab comes up: deb2/);
    assert.match(dot, /bridge · OVN switch qnet\.seed\.net\.lan/);
    // Each node is drawn once: inside its cluster, or outside when not placed yet.
    for (const n of ['deb1', 'deb2', 'deb3']) assert.equal(dot.split(`"node:${n}" [label=`).length, 2, n);
  });
  test('of a running lab: its placement puts every node in its host', () => {
    const g = labGraph(lab, { states: { deb1: 'running', deb2: 'running', deb3: 'running' }, placement: { deb1: 'a', deb2: 'b', deb3: 'b' } });
    assert.deepEqual(g.machines?.map((m) => m.nodes), [['deb1'], ['deb2', 'deb3']]);
    assert.equal(g.unplaced, undefined);
    const mmd = renderMermaid(g);
    assert.match(mmd, /subgraph machine_b \["host b · root@192\.0\.2\.12"\]\n {4}node_deb2\(/);
  });
  test('a lab on OVN on this machine alone, and a lab on bridges, have no host clusters', () => {
    assert.equal(labGraph(parseTopology(`${readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8')}fabric: ovn\n`, 's.yaml')).machines, undefined);
    assert.equal(labGraph(example('seed-lab.yaml')).machines, undefined);
  });
});
