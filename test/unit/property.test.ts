// Property-based: thousands of mutated topologies. Every one either resolves to a lab or is rejected with a
// UserError whose every issue names a path; nothing else is ever thrown (no crash, no internal error).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { UserError } from '../../src/errors.js';
import { parseTopology, validateTopology } from '../../src/topology/load.js';
import type { ResolvedLab } from '../../src/topology/model.js';
import { IFNAME_PATTERN, NAME_PATTERN } from '../../src/topology/schema.js';

const seed = {
  name: 'seed',
  networks: {
    lan: { bridge: 'kbr0', subnet: '192.168.1.0/24', address: '192.168.1.100' },
    wan: { mode: 'nat', subnet: '172.16.1.0/24', address: '172.16.1.1', dhcp: { range: '172.16.1.2-172.16.1.100' } },
  },
  forwards: [{ proto: 'tcp', host: 8080, node: 'deb2', port: 80 }],
  nodes: {
    deb1: { nics: [{ user: {} }, { network: 'lan', tap: 'ktap1', mac: 'de:ad:be:ef:00:01', ip: '192.168.1.254' }], router: { masquerade: [{ from: 'lan', out: 0 }] } },
    deb2: { memory: 128, cpus: 1, gateway: '192.168.1.254', nics: [{ network: 'lan', ip: '192.168.1.2', model: 'e1000' }, { network: 'wan', dhcp: true, ip: '172.16.1.2' }] },
  },
};

// Values that hostile or careless input puts anywhere.
const hostile = fc.oneof(
  fc.constantFrom('', ' ', '..', '/', '$(reboot)', '`id`', "a'b", 'a"b', 'a\nb', 'ä', 'x'.repeat(300), '-1', '0', '1e9', 'null', '__proto__', 'constructor',
    '256.1.1.1', '10.0.0.0/33', 'de:ad:be:ef:00', 'ff:ff:ff:ff:ff:ff', 'lo', 'kbr0', 'ktap1', 'deb1', 'lan', '192.168.1.2', '172.16.1.5-172.16.1.1'),
  fc.string({ maxLength: 40 }),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
);

type Path = Array<string | number>;
function paths(v: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [prefix];
  if (v && typeof v === 'object')
    for (const [k, child] of Object.entries(v)) out.push(...paths(child, [...prefix, Array.isArray(v) ? Number(k) : k]));
  return out;
}
const allPaths = paths(seed).filter((p) => p.length > 0);

function mutate(base: unknown, path: Path, value: unknown, op: 'set' | 'delete' | 'rename'): unknown {
  const copy = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  let cur: Record<string, unknown> = copy;
  for (const k of path.slice(0, -1)) cur = cur[k as string] as Record<string, unknown>;
  const last = path[path.length - 1]!;
  if (op === 'delete') {
    if (Array.isArray(cur)) cur.splice(Number(last), 1);
    else delete cur[last as string];
  } else if (op === 'rename' && !Array.isArray(cur)) {
    const v = cur[last as string];
    delete cur[last as string];
    Object.defineProperty(cur, String(value), { value: v, enumerable: true, writable: true, configurable: true });
  } else cur[last as string] = value;
  return copy;
}

// What a resolved lab guarantees to everything downstream (renderers, the host).
function invariants(lab: ResolvedLab): void {
  const ifs = [...lab.networks.filter((n) => n.mode !== 'socket').map((n) => n.bridge), ...lab.nodes.flatMap((n) => n.nics.filter((c) => c.kind === 'bridge').map((c) => c.tap))];
  for (const name of ifs) assert.ok(Buffer.byteLength(name) <= 15 && IFNAME_PATTERN.test(name), `bad interface name ${JSON.stringify(name)}`);
  assert.equal(new Set(ifs).size, ifs.length, 'interface names are unique');
  const macs = lab.nodes.flatMap((n) => n.nics.map((c) => c.mac));
  assert.equal(new Set(macs).size, macs.length, 'MACs are unique');
  for (const n of lab.nodes) assert.match(n.name, NAME_PATTERN);
  assert.match(lab.name, NAME_PATTERN);
}

function check(run: () => unknown): void {
  try {
    const lab = run() as ResolvedLab;
    invariants(lab);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.ok(e instanceof UserError, `not a UserError: ${(e as Error).stack}`);
    assert.ok(e.issues.length > 0 || /topology/.test(e.message), e.message);
    for (const i of e.issues) assert.ok(i.path.length > 0 && i.message.length > 0, JSON.stringify(i));
  }
}

test('the unmutated seed topology is valid', () => {
  assert.equal(validateTopology(seed).nodes.length, 2);
});

test('thousands of mutated topologies: valid, or a UserError naming paths; never anything else', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...allPaths), hostile, fc.constantFrom('set', 'delete', 'rename') as fc.Arbitrary<'set' | 'delete' | 'rename'>), { minLength: 1, maxLength: 4 }),
      (muts) => {
        let t: unknown = seed;
        for (const [p, v, op] of muts) {
          try {
            t = mutate(t, p, v, op);
          } catch {
            // the path no longer exists after an earlier mutation: skip it
          }
        }
        check(() => validateTopology(t));
        check(() => parseTopology(stringify(t)));
      },
    ),
    { numRuns: 3000 },
  );
});

test('random bytes and truncations of a valid file are rejected cleanly', () => {
  const text = stringify(seed);
  fc.assert(
    fc.property(fc.nat(text.length), fc.string({ maxLength: 20 }), (cut, junk) => {
      check(() => parseTopology(text.slice(0, cut) + junk + text.slice(cut)));
    }),
    { numRuns: 2000 },
  );
});
