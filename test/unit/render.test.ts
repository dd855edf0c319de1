// Golden tests of everything rendered from a fixed lab: the ip batch, each guest's boot configuration,
// each guest's argv, and the dry-run plan. Regenerate with UPDATE_GOLDEN=1 (then review the diff).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nodeDir } from '../../src/dirs.js';
import { formatPlan, planUp, shellQuote, type PlanContext } from '../../src/plan/plan.js';
import { renderGuestConfig } from '../../src/render/guest-config.js';
import { bridgeMac, renderLinkBatch } from '../../src/render/ipbatch.js';
import { ownerMarker } from '../../src/render/markers.js';
import { nodeFiles, renderGuestCommand, type GuestImage } from '../../src/render/qemu.js';
import { golden } from './golden.js';
import { parseTopology } from '../../src/topology/load.js';

// Fixed before anything computes a path: planUp and nodeDir read it at call time.
process.env.QNET_RUN_DIR = '/run/qnet';

// This file runs as dist/test/unit/render.test.js: the repository root is three levels up.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const IMAGE: GuestImage = { kernel: '/img/vmlinuz', initrd: '/img/initrd.img', cmdline: 'console=ttyS0' };
const CTX: PlanContext = { image: IMAGE, accel: 'tcg', user: 'qnet', userIds: { uid: 995, gid: 995 }, guestIds: { uid: 1900001000, gid: 1900001000 } };

const lab = parseTopology(readFileSync(path.join(ROOT, 'test', 'fixtures', 'seed.yaml'), 'utf8'), 'seed.yaml');

/** Compares `actual` with the golden file `name`, or rewrites the file when UPDATE_GOLDEN=1. */

function guestArgv(nodeName: string): string[] {
  const node = lab.nodes.find((n) => n.name === nodeName)!;
  return renderGuestCommand({
    node,
    files: nodeFiles(nodeDir(lab.name, node.name)),
    image: IMAGE,
    accel: 'tcg',
    netns: lab.netns,
    user: 'qnet',
  });
}

/** One JSON string per line: exact argv elements, readable diffs. */
const argvText = (argv: string[]) => argv.map((a) => JSON.stringify(a)).join('\n') + '\n';

describe('the fixed lab', () => {
  test('resolves as written', () => {
    assert.equal(lab.name, 'seed');
    assert.deepEqual(
      lab.nodes.map((n) => [n.name, n.nics.map((c) => [c.tap, c.mac, c.model])]),
      [
        ['deb1', [['ktap1', 'de:ad:be:ef:00:01', 'e1000']]],
        ['deb2', [['ktap2', 'de:ad:be:ef:00:02', 'e1000']]],
        ['deb3', [['ktap3', 'de:ad:be:ef:00:03', 'e1000']]],
      ],
    );
    assert.equal(lab.networks[0]!.bridge, 'kbr0');
  });
});

describe('renderLinkBatch', () => {
  const batch = renderLinkBatch(lab, 'qnet');

  test('matches golden', () => golden('seed-links.batch', batch));

  test('every bridge and tap is created, owned, marked and brought up', () => {
    const lines = batch.trimEnd().split('\n');
    const mark = ownerMarker('seed');
    assert.ok(lines.includes('link add name kbr0 type bridge stp_state 0 forward_delay 0'));
    assert.ok(lines.includes(`link set dev kbr0 alias ${mark} address ${bridgeMac('seed', 'lan')}`));
    assert.ok(lines.includes('addr add 192.168.1.100/24 dev kbr0'));
    for (const tap of ['ktap1', 'ktap2', 'ktap3']) {
      const add = lines.indexOf(`tuntap add dev ${tap} mode tap user qnet`);
      // Marked, enslaved and up in one request, after it is created.
      const set = lines.indexOf(`link set dev ${tap} alias ${mark} master kbr0 up`);
      assert.ok(add >= 0 && add < set, `${tap}: created, then marked, enslaved and up`);
    }
    // The bridge comes up after its ports; then the built-in guests' permanent neighbour entries (no ARP broadcast).
    const upAt = lines.indexOf('link set dev kbr0 up');
    assert.ok(upAt > lines.indexOf('link set dev ktap3 alias ' + mark + ' master kbr0 up'));
    assert.deepEqual(lines.slice(upAt + 1), [
      'neigh replace 192.168.1.254 lladdr de:ad:be:ef:00:01 dev kbr0 nud permanent',
      'neigh replace 192.168.1.2 lladdr de:ad:be:ef:00:02 dev kbr0 nud permanent',
      'neigh replace 192.168.1.3 lladdr de:ad:be:ef:00:03 dev kbr0 nud permanent',
    ]);
    assert.ok(batch.endsWith('\n'));
  });

  test('the user is taken from the argument', () => {
    assert.match(renderLinkBatch(lab, 'someone'), /tuntap add dev ktap1 mode tap user someone\n/);
  });
});

describe('renderGuestConfig', () => {
  for (const node of lab.nodes)
    test(`${node.name} matches golden`, () => golden(`seed-${node.name}.conf`, renderGuestConfig(lab, node)));

  test('only deb3 has a default route; every node knows the others by name', () => {
    const conf = Object.fromEntries(lab.nodes.map((n) => [n.name, renderGuestConfig(lab, n)]));
    assert.match(conf.deb3!, /^route default 192\.168\.1\.254$/m);
    assert.doesNotMatch(conf.deb1!, /^route /m);
    assert.doesNotMatch(conf.deb2!, /^route /m);
    assert.match(conf.deb1!, /^host deb2 192\.168\.1\.2$/m);
    assert.match(conf.deb1!, /^host deb3 192\.168\.1\.3$/m);
    assert.doesNotMatch(conf.deb1!, /^host deb1 /m);
    assert.match(conf.deb2!, /^module e1000$/m);
    assert.match(conf.deb2!, /^nic de:ad:be:ef:00:02 eth0$/m);
    assert.match(conf.deb2!, /^addr eth0 192\.168\.1\.2\/24$/m);
  });
});

describe('renderGuestCommand', () => {
  for (const node of lab.nodes)
    test(`${node.name} argv matches golden`, () => golden(`seed-${node.name}.argv`, argvText(guestArgv(node.name))));

  test('argv structure: namespace, private /dev, dropped privileges, then QEMU with the NIC', () => {
    const argv = guestArgv('deb2');
    assert.deepEqual(argv.slice(0, 3), ['nsenter', '--net=/run/netns/qnet-seed', '--']);
    const setpriv = argv.indexOf('setpriv');
    const qemu = argv.indexOf('qemu-system-x86_64');
    assert.ok(setpriv > 0 && qemu > setpriv);
    assert.ok(argv.includes('--reuid=qnet') && argv.includes('--no-new-privs'));
    assert.ok(argv.includes('tap,id=net0,ifname=ktap2,script=no,downscript=no'));
    assert.ok(argv.includes('e1000,netdev=net0,mac=de:ad:be:ef:00:02,romfile='));
    assert.ok(argv.includes('tcg,tb-size=32') && argv.includes('q35'));
    assert.ok(argv.includes('/run/qnet/seed/deb2/guest.conf') || argv.some((a) => a.includes('file=/run/qnet/seed/deb2/guest.conf')));
    for (const a of argv) assert.doesNotMatch(a, /\n/, 'no argument carries a newline');
  });
});

describe('planUp / formatPlan', () => {
  test('matches golden', () => golden('seed-plan.txt', formatPlan(planUp(lab, CTX)) + '\n'));

  test('is pure: the same inputs give the same plan', () => {
    assert.deepEqual(planUp(lab, CTX), planUp(lab, CTX));
  });

  test('steps that change the host can be undone, the namespace before the directory', () => {
    const steps = planUp(lab, CTX);
    assert.equal(steps[0]!.undo?.kind, 'rmtree');
    assert.deepEqual(steps[1]!.undo, { kind: 'exec', argv: ['ip', 'netns', 'delete', 'qnet-seed'] });
    for (const s of steps.filter((x) => x.do.kind === 'start-guest')) assert.equal(s.undo?.kind, 'stop-guest');
    assert.equal(steps.at(-1)!.do.kind, 'wait-ready');
  });

  test('the run directory follows QNET_RUN_DIR', () => {
    const saved = process.env.QNET_RUN_DIR;
    process.env.QNET_RUN_DIR = '/tmp/elsewhere';
    try {
      assert.match(formatPlan(planUp(lab, CTX)), /create run directory \/tmp\/elsewhere\/seed/);
    } finally {
      process.env.QNET_RUN_DIR = saved;
    }
  });

  test('shellQuote quotes only what needs it', () => {
    assert.equal(shellQuote('plain-arg_1.2/x:y=z,@%+'), 'plain-arg_1.2/x:y=z,@%+');
    assert.equal(shellQuote('two words'), `'two words'`);
    assert.equal(shellQuote(`it's`), `'it'\\''s'`);
    assert.equal(shellQuote(''), `''`);
    assert.equal(shellQuote('$(x)'), `'$(x)'`);
  });
});

// iproute2 parses `link set NAME ...` / `link add NAME ...` by checking NAME against its keywords first (some by
// prefix: "a" means "address", "m" "master"), and only an explicit `dev` / `name` keyword forces the next word to be
// the device. Interface names like "up", "down", "help", "master" or "a" pass the schema, so the batch must
// name every device after a keyword.
test('the link batch names devices after an explicit dev/name keyword', () => {
  const odd = parseTopology(`
name: odd
networks:
  lan: {bridge: help}
nodes:
  a: {nics: [{network: lan, tap: up}, {network: lan, tap: master}]}
`);
  for (const line of renderLinkBatch(odd, 'qnet').trimEnd().split('\n')) {
    const words = line.split(' ');
    if (words[2] === 'lo') continue;
    if (words[0] === 'link' && (words[1] === 'set' || words[1] === 'add'))
      assert.ok(words[2] === 'dev' || words[2] === 'name', `device not after dev/name: ${line}`);
  }
});

