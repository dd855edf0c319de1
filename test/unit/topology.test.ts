// Topology loading: defaults and derived values of valid topologies, and a table of invalid ones.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import { formatIPv4, formatCidr } from '../../src/topology/ipv4.js';
import { MAX_TOPOLOGY_BYTES, parseTopology, validateTopology } from '../../src/topology/load.js';
import type { ResolvedLab, ResolvedNode } from '../../src/topology/model.js';
import { deriveIfName, deriveMac } from '../../src/topology/normalize.js';
import { BAD_TOPOLOGIES } from './bad-topologies.js';

// This file runs as dist/test/unit/topology.test.js: the repository root is three levels up.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const DERIVED_MAC = /^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/;

function node(lab: ResolvedLab, name: string): ResolvedNode {
  const n = lab.nodes.find((x) => x.name === name);
  assert.ok(n, `node ${name} should exist`);
  return n;
}

/** Catches the UserError that `fn` must throw. */
function userErrorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    return e;
  }
  assert.fail('expected parseTopology to throw');
}

const MINIMAL = `
name: lab
networks:
  lan:
    subnet: 192.168.1.0/24
nodes:
  deb1:
    nics:
      - network: lan
        ip: 192.168.1.1
      - network: lan
  deb2:
    nics:
      - network: lan
        ip: 192.168.1.2/24
`;

describe('valid topologies: defaults', () => {
  const lab = parseTopology(MINIMAL);

  test('lab name and namespace', () => {
    assert.equal(lab.name, 'lab');
    assert.equal(lab.netns, 'qnet-lab');
  });

  test('nodes keep declaration order and get memory 128, cpus 1', () => {
    assert.deepEqual(
      lab.nodes.map((n) => n.name),
      ['deb1', 'deb2'],
    );
    for (const n of lab.nodes) {
      assert.equal(n.memory, 128);
      assert.equal(n.cpus, 1);
      assert.equal(n.gateway, undefined);
    }
  });

  test('NICs default to the virtio model with derived taps t-<node>-<i>', () => {
    const deb1 = node(lab, 'deb1');
    assert.deepEqual(
      deb1.nics.map((n) => [n.index, n.model, n.tap, n.network]),
      [
        [0, 'virtio', 't-deb1-0', 'lan'],
        [1, 'virtio', 't-deb1-1', 'lan'],
      ],
    );
    assert.equal(node(lab, 'deb2').nics[0]!.tap, 't-deb2-0');
  });

  test('the bridge is derived as br-<network>', () => {
    assert.equal(lab.networks.length, 1);
    const lan = lab.networks[0]!;
    assert.equal(lan.name, 'lan');
    assert.equal(lan.bridge, 'br-lan');
    assert.deepEqual(lan.subnet, { ip: 0xc0a80100, prefix: 24 });
    assert.equal(lan.address, undefined);
  });

  test('MACs are derived: 52:54:00:xx:xx:xx, flagged as derived, unique', () => {
    const nics = lab.nodes.flatMap((n) => n.nics);
    for (const nic of nics) {
      assert.match(nic.mac, DERIVED_MAC);
      assert.equal(nic.macDerived, true);
    }
    assert.equal(new Set(nics.map((n) => n.mac)).size, nics.length);
  });

  test('derived MACs are deterministic across calls', () => {
    const again = parseTopology(MINIMAL);
    assert.deepEqual(again, lab);
    assert.equal(node(lab, 'deb1').nics[0]!.mac, deriveMac('lab', 'deb1', 0));
  });

  test('derived MACs depend on the lab name', () => {
    const other = parseTopology(MINIMAL.replace('name: lab', 'name: other'));
    const a = lab.nodes.flatMap((n) => n.nics.map((c) => c.mac));
    const b = other.nodes.flatMap((n) => n.nics.map((c) => c.mac));
    for (const mac of b) assert.ok(!a.includes(mac), `${mac} should differ between labs`);
  });

  test('the prefix is taken from the network subnet when the address has none', () => {
    assert.deepEqual(node(lab, 'deb1').nics[0]!.addresses.map(formatCidr), ['192.168.1.1/24']);
    assert.deepEqual(node(lab, 'deb2').nics[0]!.addresses.map(formatCidr), ['192.168.1.2/24']);
    assert.deepEqual(node(lab, 'deb1').nics[1]!.addresses, []);
  });

  test('derived MACs are unique in a large lab', () => {
    const nodes = Array.from({ length: 120 }, (_, i) => `  n${i}:\n    nics: [{network: a}, {network: b}, {network: a}, {network: b}]\n`).join('');
    const big = parseTopology(`name: big\nnetworks:\n  a: {}\n  b: {}\nnodes:\n${nodes}`);
    const macs = big.nodes.flatMap((n) => n.nics.map((c) => c.mac));
    assert.equal(macs.length, 480);
    assert.equal(new Set(macs).size, macs.length);
    for (const m of macs) assert.match(m, DERIVED_MAC);
    const taps = big.nodes.flatMap((n) => n.nics.map((c) => c.tap));
    assert.equal(new Set(taps).size, taps.length);
  });

  test('a declared MAC that equals a derived one makes the derived one move, deterministically', () => {
    const wouldBe = deriveMac('lab', 'deb2', 0);
    const text = `
name: lab
networks: {lan: {}}
nodes:
  deb1: {nics: [{network: lan, mac: "${wouldBe.toUpperCase()}"}]}
  deb2: {nics: [{network: lan}]}
`;
    const a = parseTopology(text);
    const b = parseTopology(text);
    assert.equal(node(a, 'deb1').nics[0]!.mac, wouldBe);
    assert.equal(node(a, 'deb1').nics[0]!.macDerived, false);
    const moved = node(a, 'deb2').nics[0]!.mac;
    assert.notEqual(moved, wouldBe);
    assert.match(moved, DERIVED_MAC);
    assert.equal(moved, deriveMac('lab', 'deb2', 0, 1));
    assert.equal(node(b, 'deb2').nics[0]!.mac, moved);
  });

  test('a topology with a node and no networks is valid', () => {
    const l = parseTopology('name: solo\nnodes:\n  only: {}\n');
    assert.deepEqual(l.networks, []);
    const only = node(l, 'only');
    assert.equal(only.memory, 128);
    assert.equal(only.cpus, 1);
    assert.deepEqual(only.nics, []);
    assert.equal(only.gateway, undefined);
  });
});

describe('valid topologies: explicit values', () => {
  const text = `
name: seed-lab
networks:
  lan:
    bridge: kbr0
    subnet: 10.9.0.0/16
    address: 10.9.0.1
  p2p:
    subnet: 172.16.0.0/31
  raw: {}
nodes:
  router:
    memory: 256
    cpus: 2
    nics:
      - {network: lan, tap: ktap1, mac: "DE:AD:BE:EF:00:01", model: e1000, ip: [10.9.0.254, 10.9.1.254/16]}
      - {network: p2p, ip: 172.16.0.0}
      - {network: raw, ip: 203.0.113.5/24, model: rtl8139}
  host:
    gateway: 10.9.0.254
    nics:
      - {network: lan, ip: 10.9.0.5}
  peer:
    gateway: 172.16.0.0
    nics:
      - {network: p2p, ip: 172.16.0.1}
`;
  const lab = parseTopology(text);

  test('declared values are kept and MACs normalized to lower case', () => {
    const r = node(lab, 'router');
    assert.equal(r.memory, 256);
    assert.equal(r.cpus, 2);
    const n0 = r.nics[0]!;
    assert.equal(n0.tap, 'ktap1');
    assert.equal(n0.mac, 'de:ad:be:ef:00:01');
    assert.equal(n0.macDerived, false);
    assert.equal(n0.model, 'e1000');
    assert.deepEqual(n0.addresses.map(formatCidr), ['10.9.0.254/16', '10.9.1.254/16']);
    assert.equal(r.nics[2]!.model, 'rtl8139');
  });

  test('networks: explicit bridge, bridge address with the subnet prefix, network without subnet', () => {
    const [lan, p2p, raw] = lab.networks;
    assert.equal(lan!.bridge, 'kbr0');
    assert.equal(formatCidr(lan!.address!), '10.9.0.1/16');
    assert.equal(p2p!.bridge, 'br-p2p');
    assert.equal(raw!.bridge, 'br-raw');
    assert.equal(raw!.subnet, undefined);
    assert.equal(raw!.address, undefined);
  });

  test('/31 point-to-point addresses are host addresses', () => {
    assert.deepEqual(node(lab, 'router').nics[1]!.addresses.map(formatCidr), ['172.16.0.0/31']);
    assert.equal(formatIPv4(node(lab, 'peer').gateway!), '172.16.0.0');
  });

  test('gateways are parsed to addresses', () => {
    assert.equal(formatIPv4(node(lab, 'host').gateway!), '10.9.0.254');
    assert.equal(node(lab, 'router').gateway, undefined);
  });

  test('an address without subnet keeps its own prefix', () => {
    assert.deepEqual(node(lab, 'router').nics[2]!.addresses.map(formatCidr), ['203.0.113.5/24']);
  });

  test('validateTopology accepts the same data as an object', () => {
    const fromObject = validateTopology({
      name: 'obj',
      networks: { lan: { subnet: '10.0.0.0/24' } },
      nodes: { a: { nics: [{ network: 'lan', ip: '10.0.0.2' }] } },
    });
    assert.equal(formatCidr(fromObject.nodes[0]!.nics[0]!.addresses[0]!), '10.0.0.2/24');
  });
});

describe('valid topologies: long names', () => {
  const long1 = 'a-very-long-node-name-number-one'; // 32 characters
  const long2 = 'a-very-long-node-name-number-two';
  const longNet = 'the-network-with-a-very-long-nam'; // 32 characters
  const text = `
name: ${'l'.repeat(24)}
networks:
  ${longNet}: {}
  short: {}
nodes:
  ${long1}:
    nics: [${Array.from({ length: 16 }, () => `{network: ${longNet}}`).join(', ')}]
  ${long2}:
    nics: [{network: ${longNet}}, {network: short}]
  abcdefghijk:
    nics: [{network: short}]
  abcdefghijkl:
    nics: [{network: short}]
`;
  const lab = parseTopology(text);
  const allIfNames = [...lab.networks.map((n) => n.bridge), ...lab.nodes.flatMap((n) => n.nics.map((c) => c.tap))];

  test('every derived interface name fits in 15 bytes', () => {
    for (const name of allIfNames) {
      assert.ok(Buffer.byteLength(name) <= 15, `${name} is ${Buffer.byteLength(name)} bytes`);
      assert.match(name, /^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
    }
  });

  test('derived interface names are unique', () => {
    assert.equal(new Set(allIfNames).size, allIfNames.length);
  });

  test('long names are hashed but keep their prefix and suffix', () => {
    const bridge = lab.networks[0]!.bridge;
    assert.ok(bridge.startsWith('br-'), bridge);
    assert.notEqual(bridge, `br-${longNet}`);
    const taps = node(lab, long1).nics.map((c) => c.tap);
    taps.forEach((t, i) => {
      assert.ok(t.startsWith('t-'), t);
      assert.ok(t.endsWith(`-${i}`), `${t} should end with -${i}`);
    });
    // Two long names with a common beginning must not collide.
    assert.notEqual(node(lab, long1).nics[0]!.tap, node(lab, long2).nics[0]!.tap);
  });

  test('names that fit are left readable; one byte more gets hashed', () => {
    assert.equal(node(lab, 'abcdefghijk').nics[0]!.tap, 't-abcdefghijk-0'); // exactly 15 bytes
    const hashed = node(lab, 'abcdefghijkl').nics[0]!.tap;
    assert.notEqual(hashed, 't-abcdefghijkl-0');
    assert.ok(hashed.length <= 15);
  });

  test('hashed names are deterministic', () => {
    assert.deepEqual(parseTopology(text), lab);
    assert.equal(deriveIfName('br-', longNet), lab.networks[0]!.bridge);
    assert.equal(deriveIfName('t-', long1, '-15'), node(lab, long1).nics[15]!.tap);
  });

  test('deriveIfName keeps within 15 bytes for every prefix/suffix combination (sampled)', () => {
    for (let len = 1; len <= 32; len++)
      for (const suffix of ['', '-0', '-9', '-15']) {
        const name = deriveIfName('t-', 'x'.repeat(len), suffix);
        assert.ok(name.length <= 15, `${name} (len ${len}, suffix ${suffix})`);
        assert.ok(name.endsWith(suffix));
      }
  });
});

describe('invalid topologies', () => {
  test(`the table has at least 30 distinct cases (has ${BAD_TOPOLOGIES.length})`, () => {
    assert.ok(BAD_TOPOLOGIES.length >= 30);
    assert.equal(new Set(BAD_TOPOLOGIES.map((b) => b.yaml)).size, BAD_TOPOLOGIES.length, 'every YAML text is distinct');
    assert.equal(new Set(BAD_TOPOLOGIES.map((b) => b.why)).size, BAD_TOPOLOGIES.length, 'every name is distinct');
  });

  for (const bad of BAD_TOPOLOGIES)
    test(`${bad.why} → ${String(bad.path)}`, () => {
      const err = userErrorOf(() => parseTopology(bad.yaml, 'bad.yaml'));
      assert.ok(err.message.startsWith('bad.yaml: '), `message names the source: ${err.message}`);
      assert.ok(err.issues.length >= 1, 'the error lists its issues');
      const issue = err.issues.find((i) => (typeof bad.path === 'string' ? i.path === bad.path : bad.path.test(i.path)));
      assert.ok(issue, `expected an issue at ${String(bad.path)}; got:\n${err.message}`);
      // The path shows in the message, on its own line, as the CLI prints it.
      assert.ok(err.message.includes(`\n  ${issue.path}: `), err.message);
      if (bad.message !== undefined) {
        if (typeof bad.message === 'string') assert.ok(issue.message.includes(bad.message), `${issue.message} should include ${bad.message}`);
        else assert.match(issue.message, bad.message);
      }
      // Every issue has a non-empty path and message.
      for (const i of err.issues) {
        assert.ok(i.path.length > 0);
        assert.ok(i.message.length > 0);
      }
    });

  test('a file over 1 MiB is refused before parsing', () => {
    const text = `name: lab\nnodes:\n  deb1: {}\n#${'x'.repeat(MAX_TOPOLOGY_BYTES)}\n`;
    const err = userErrorOf(() => parseTopology(text, 'huge.yaml'));
    assert.match(err.message, /^huge\.yaml: .*larger than/);
  });

  test('every problem is reported at once', () => {
    const text = `
name: lab
networks:
  lan: {subnet: 192.168.1.0/24}
nodes:
  deb1:
    gateway: 10.0.0.1
    nics:
      - {network: lan, ip: 192.168.1.0, mac: "01:00:00:00:00:01", tap: lo}
      - {network: wan}
`;
    const err = userErrorOf(() => parseTopology(text));
    const paths = err.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, [
      'nodes.deb1.gateway',
      'nodes.deb1.nics[0].ip',
      'nodes.deb1.nics[0].mac',
      'nodes.deb1.nics[0].tap',
      'nodes.deb1.nics[1].network',
    ]);
    assert.match(err.message, /\(5 problems\)/);
  });

  test('schema errors are reported together', () => {
    const err = userErrorOf(() => parseTopology('name: Lab\nnodes:\n  deb1: {memory: 1, cpus: 0, extra: 1}\n'));
    assert.deepEqual(err.issues.map((i) => i.path).sort(), ['name', 'nodes.deb1', 'nodes.deb1.cpus', 'nodes.deb1.memory']);
  });

  test('validateTopology rejects non-objects with a UserError', () => {
    for (const v of [null, 42, 'lab', [], { name: 'lab' }]) userErrorOf(() => validateTopology(v));
  });

  // Addresses in an `ip:` list are reported by their index in the list the user wrote. A rule violation (outside
  // the subnet, duplicate, network address) is reported at the index among the addresses that *parsed*, and at
  // plain `ip` when only one parsed, so with an earlier unparseable entry the path points at the wrong entry.
  test('rule errors in an ip list name the entry the user wrote', () => {
    const text = `
name: lab
networks:
  lan: {subnet: 192.168.1.0/24}
nodes:
  deb1: {nics: [{network: lan, ip: [bad, 192.168.1.5, 10.0.0.1]}]}
  deb2: {nics: [{network: lan, ip: [192.168.1.300, 192.168.1.0]}]}
  deb3: {nics: [{network: lan, ip: [192.168.1.7, 192.168.1.255]}]}
`;
    const err = userErrorOf(() => parseTopology(text));
    const paths = err.issues.map((i) => i.path);
    assert.ok(paths.includes('nodes.deb1.nics[0].ip[2]'), paths.join(', ')); // 10.0.0.1 is entry 2
    assert.ok(paths.includes('nodes.deb2.nics[0].ip[1]'), paths.join(', ')); // 192.168.1.0 is entry 1
    assert.ok(paths.includes('nodes.deb3.nics[0].ip[1]'), paths.join(', ')); // this one is right today
  });

  // zod reports a bad record key as `invalid_key` with the real reason in `issue.issues`; load.ts's zodIssues
  // passes on only the generic "Invalid key in record", so the helpful "node names use lower-case letters ..."
  // written in schema.ts never reaches the user.
  test('a bad node or network name says what names may contain', () => {
    const err = userErrorOf(() => parseTopology('name: lab\nnetworks:\n  Lan: {}\nnodes:\n  Deb1: {}\n'));
    const byPath = new Map(err.issues.map((i) => [i.path, i.message]));
    assert.match(byPath.get('nodes.Deb1') ?? '', /node names use lower-case letters/);
    assert.match(byPath.get('networks.Lan') ?? '', /network names use lower-case letters/);
  });

  // yaml keeps a `__proto__` key as an own property, but zod's record skips `__proto__` keys without an issue,
  // so a node (or network) named __proto__ is silently dropped instead of being rejected by the name pattern.
  test('a node named __proto__ is rejected, not silently dropped', () => {
    const err = userErrorOf(() => parseTopology('name: lab\nnodes:\n  deb1: {}\n  __proto__: {memory: 1}\n'));
    assert.ok(err.issues.some((i) => i.path.includes('__proto__')), err.message);
  });

  // rules.ts checks that a gateway is on-link and not the node's own address, but not that it is a usable host
  // address: the subnet's network or broadcast address is accepted as a default gateway.
  test('a gateway that is the network or broadcast address is rejected', () => {
    for (const gw of ['192.168.1.0', '192.168.1.255']) {
      const text = `name: lab\nnetworks: {lan: {subnet: 192.168.1.0/24}}\nnodes:\n  deb1: {gateway: ${gw}, nics: [{network: lan, ip: 192.168.1.2}]}\n`;
      const err = userErrorOf(() => parseTopology(text));
      assert.ok(err.issues.some((i) => i.path === 'nodes.deb1.gateway'), err.message);
    }
  });
});


/** The problems of an invalid topology, as `path: message` strings. */
function problemsOf(text: string): string[] {
  return userErrorOf(() => parseTopology(text, 't.yaml')).issues.map((i) => `${i.path}: ${i.message}`);
}

describe('every problem in one run', () => {
  // Two problems for the schema, one for normalization, three for the rules: before, one run showed the schema's
  // two, and the other four only once those were fixed.
  test('the six problems of test/fixtures/bad.yaml, of every stage, in one run and in the order of the file', () => {
    const err = userErrorOf(() => parseTopology(readFileSync(path.join(ROOT, 'test', 'fixtures', 'bad.yaml'), 'utf8'), 'bad.yaml'));
    assert.deepEqual(
      err.issues.map((i) => [i.path, i.line]),
      [
        ['nodes.deb2.memory', 11],
        ['nodes.deb2.gateway', 12],
        ['nodes.deb2.nics[0].ip', 14],
        ['nodes.deb2.nics[0].mac', 14],
        ['nodes.deb2.nics[1].network', 15],
        ['nodes.a-node-name-that-is-far-too-long-for-dns', 16],
      ],
    );
    assert.match(err.message, /\(6 problems\)/);
    const byPath = new Map(err.issues.map((i) => [i.path, i.message]));
    assert.match(byPath.get('nodes.deb2.memory')!, /at least 104/);
    assert.match(byPath.get('nodes.deb2.gateway')!, /not on the subnet/);
    assert.match(byPath.get('nodes.deb2.nics[0].ip')!, /not an IPv4 address/);
    assert.match(byPath.get('nodes.deb2.nics[0].mac')!, /already used by nodes\.deb1\.nics\[0\]/);
    assert.match(byPath.get('nodes.deb2.nics[1].network')!, /unknown network "wan"/);
    assert.match(byPath.get('nodes.a-node-name-that-is-far-too-long-for-dns')!, /at most 32 characters/);
  });

  test('the rules run on the valid nodes beside a node whose name the schema refused, and on that node too', () => {
    const got = problemsOf(`name: lab
networks: {lan: {subnet: 10.0.0.0/24}}
nodes:
  Deb1: {memory: 1, nics: [{network: lan, ip: 10.0.0.2}]}
  deb2: {nics: [{network: lan, ip: 10.0.0.2}]}
`);
    assert.deepEqual(got.map((p) => p.replace(/:.*/, '')).sort(), ['nodes.Deb1', 'nodes.Deb1.memory', 'nodes.deb2.nics[0].ip']);
    assert.ok(got.some((p) => /^nodes\.deb2\.nics\[0\]\.ip: 10\.0\.0\.2 is already used by nodes\.Deb1/.test(p)), got.join('\n'));
  });

  test('an invalid forward or route leaves the others judged, each at its own index', () => {
    const got = problemsOf(`name: lab
networks: {lan: {subnet: 192.168.1.0/24}}
forwards:
  - {host: 8080, node: deb9, port: 80}
  - {host: 99999, node: deb1, port: 80}
nodes:
  deb1:
    routes: [{to: 10.50.0.1/16, via: 192.168.1.1}, {to: 10.60.0.0/16}, {to: 10.70.0.0/16, via: 10.9.9.9}]
    nics: [{network: lan, ip: 192.168.1.2}]
`);
    assert.deepEqual(got.map((p) => p.replace(/: .*/, '')), ['forwards[0].node', 'forwards[1].host', 'nodes.deb1.routes[0].to', 'nodes.deb1.routes[1].via', 'nodes.deb1.routes[2].via'], got.join('\n'));
    assert.match(got[4]!, /10\.9\.9\.9 is not on the subnet/);
  });

  // A problem that follows from one already reported is not a second problem.
  const cascades: Array<[string, string, string[]]> = [
    [
      'a network the schema refused is no unknown network, and its NICs are not judged by it',
      `name: lab
networks: {wan: {mode: natt, subnet: 10.0.0.0/24}}
nodes:
  deb1: {gateway: 10.0.0.1, nics: [{network: wan, ip: 10.0.0.2}]}
`,
      ['networks.wan.mode'],
    ],
    [
      'a subnet normalization refused: no "needs a prefix length" for addresses on it, no gateway off-link',
      `name: lab
networks: {lan: {subnet: 10.0.0.0}}
nodes:
  deb1: {gateway: 10.0.0.1, nics: [{network: lan, ip: 10.0.0.2}]}
`,
      ['networks.lan.subnet'],
    ],
    [
      'a NIC whose network the schema refused does not "need a network"',
      `name: lab
networks: {lan: {}}
nodes:
  deb1: {nics: [{network: "${'x'.repeat(70)}"}]}
`,
      ['nodes.deb1.nics[0].network'],
    ],
    [
      'a node whose image the schema refused is no built-in node with image settings',
      `name: lab
nodes:
  deb1: {image: "", firmware: uefi}
`,
      ['nodes.deb1.image'],
    ],
    [
      'a list of NICs the schema refused leaves the gateway unjudged',
      `name: lab
networks: {lan: {subnet: 10.0.0.0/24}}
nodes:
  deb1: {gateway: 10.0.0.1, nics: [lan]}
`,
      ['nodes.deb1.nics[0]'],
    ],
    [
      'a misspelt key is not also missing',
      `name: lab
networks: {wan: {mode: nat, subnet: 10.0.0.0/24, adress: 10.0.0.1}}
nodes:
  deb1: {}
`,
      ['networks.wan'],
    ],
    [
      'a misspelt required key is not also required',
      `nme: lab
nodes:
  deb1: {}
`,
      ['(top level)'],
    ],
    [
      'an address refused on a network without subnet leaves the gateway unjudged',
      `name: lab
networks: {lan: {}}
nodes:
  deb1: {gateway: 10.0.0.1, nics: [{network: lan, ip: 10.0.0.300/24}]}
`,
      ['nodes.deb1.nics[0].ip'],
    ],
    [
      'a link network is not judged short of members while a NIC\'s network is unknown',
      `name: lab
networks: {l: {mode: link}}
nodes:
  a: {nics: [{network: l}]}
  b: {nics: [{network: l, model: ne2k}]}
  c: {nics: [{network: "${'y'.repeat(70)}"}]}
`,
      ['nodes.b.nics[0].model', 'nodes.c.nics[0].network'],
    ],
  ];
  for (const [why, text, paths] of cascades)
    test(`no cascade: ${why}`, () => {
      const got = problemsOf(text);
      assert.deepEqual(got.map((p) => p.replace(/: .*/, '')).sort(), paths, got.join('\n'));
    });
});

describe('where a problem is', () => {
  // The `ip:` of the NIC item is written at column 6, neither under the item (column 9) nor beside "nics" (5).
  const misindented = `name: lab
networks:
  lan: {subnet: 192.168.1.0/24}
nodes:
  deb2:
    nics:
      - network: lan
        mac: "52:54:00:00:00:01"
     ip: 192.168.1.2
`;

  test('a key out of line is pointed at, not the start of its line, with the columns it fails to meet', () => {
    const err = userErrorOf(() => parseTopology(misindented, 't.yaml'));
    assert.equal(err.issues.length, 1, err.message);
    assert.equal(err.issues[0]!.path, 'line 9, column 6');
    assert.match(err.issues[0]!.message, /"ip" at column 6 .*"mac" at column 9.*"nics" at column 5/);
  });

  test('problems with a path carry the line and column of their value (or of the key that names it)', () => {
    const err = userErrorOf(() =>
      parseTopology('name: lab\nnetworks:\n  lan: {subnet: 10.0.0.0/24}\nnodes:\n  deb1:\n    memory: 1\n    ram: 4\n    nics:\n      - {network: lan, ip: 10.0.0.300}\n', 't.yaml'),
    );
    const at = new Map(err.issues.map((i) => [i.path, [i.line, i.column]]));
    assert.deepEqual(at.get('nodes.deb1.memory'), [6, 13]);
    assert.deepEqual(at.get('nodes.deb1'), [7, 5]); // the unknown key "ram" itself
    assert.deepEqual(at.get('nodes.deb1.nics[0].ip'), [9, 28]);
    assert.match(err.message, /\n {2}nodes\.deb1\.memory: .* \(line 6, column 13\)\n/);
  });

  test('a topology built in code has paths and no positions', () => {
    const err = userErrorOf(() => validateTopology({ name: 'lab', nodes: { deb1: { memory: 1 } } }));
    assert.equal(err.issues[0]!.line, undefined);
    assert.doesNotMatch(err.message, /line \d/);
  });
});

describe('what was meant', () => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['a node setting where a node name belongs', 'name: lab\nnodes:\n  nics:\n    - network: lan\n', 'nodes.nics', /"nics" is a node setting, not a node name: the node's name is missing above it/],
    ['a node setting (a number) where a node name belongs', 'name: lab\nnodes:\n  memory: 256\n  deb1: {}\n', 'nodes.memory', /"memory" is a node setting, not a node name/],
    ['a network setting where a network name belongs', 'name: lab\nnetworks:\n  subnet: 10.0.0.0/24\nnodes:\n  deb1: {}\n', 'networks.subnet', /"subnet" is a network setting, not a network name/],
    ['a misspelt node key', 'name: lab\nnodes:\n  deb1: {memroy: 256}\n', 'nodes.deb1', /unknown key "memroy"; did you mean "memory"\?/],
    ['a misspelt NIC key', 'name: lab\nnetworks: {lan: {}}\nnodes:\n  deb1: {nics: [{netwrok: lan}]}\n', 'nodes.deb1.nics[0]', /unknown key "netwrok"; did you mean "network"\?/],
    ['a misspelt network key', 'name: lab\nnetworks: {lan: {subent: 10.0.0.0/24}}\nnodes:\n  deb1: {}\n', 'networks.lan', /unknown key "subent"; did you mean "subnet"\?/],
    ['a misspelt top-level key', 'name: lab\nnode:\n  deb1: {}\nnodes:\n  deb2: {}\n', '(top level)', /unknown key "node"; did you mean "nodes"\?/],
    ['a misspelt key in one shape of a union', 'name: lab\nnodes:\n  deb1: {image: d.qcow2, ready: {consol: "login:"}}\n', 'nodes.deb1.ready', /unknown key "consol"; did you mean "console"\?/],
    ['a misspelt key in a list item', 'name: lab\nnodes:\n  deb1: {routes: [{to: 10.1.0.0/16, vai: 10.0.0.1}]}\n', 'nodes.deb1.routes[0]', /unknown key "vai"; did you mean "via"\?/],
    ['a value of a kind that no shape of a union takes', 'name: lab\nnetworks: {sw: {vlans: yes-please}}\nnodes:\n  deb1: {}\n', 'networks.sw.vlans', /expected boolean or mapping, received string/],
    ['a NIC setting written on the node', 'name: lab\nnetworks: {lan: {}}\nnodes:\n  deb1: {ip: 10.0.0.2/24, nics: [{network: lan}]}\n', 'nodes.deb1', /unknown key "ip": "ip" is a NIC setting; it goes in an item of a node's "nics"/],
  ];
  for (const [why, text, at, message] of cases)
    test(why, () => {
      const err = userErrorOf(() => parseTopology(text, 't.yaml'));
      const issue = err.issues.find((i) => i.path === at);
      assert.ok(issue, err.message);
      assert.match(issue.message, message);
    });

  test('a key far from every known key gets no guess', () => {
    const err = userErrorOf(() => parseTopology('name: lab\nnodes:\n  deb1: {colour: blue}\n', 't.yaml'));
    assert.equal(err.issues[0]!.message, 'unknown key "colour"');
  });
});
