// Unit tests of the change planner: what a running lab and a new topology differ in, and what is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffLabs, isEmpty } from '../../src/plan/change.js';
import { planChange } from '../../src/plan/plan.js';
import { validateTopology } from '../../src/topology/load.js';

process.env.QNET_RUN_DIR = '/run/qnet';
const base = {
  name: 'lab',
  networks: { lan: { subnet: '10.0.0.0/24' }, wan: { mode: 'nat', subnet: '10.1.0.0/24', address: '10.1.0.1', dhcp: { range: '10.1.0.50-10.1.0.60' } } },
  nodes: { a: { nics: [{ network: 'lan', ip: '10.0.0.2' }] }, b: { nics: [{ network: 'lan', ip: '10.0.0.3' }] }, w: { nics: [{ network: 'wan', dhcp: true, ip: '10.1.0.5' }] } },
};
const lab = (t: unknown) => validateTopology(t);
const ctx = { image: { kernel: '/k', initrd: '/i', cmdline: '' }, accel: 'tcg' as const, user: 'qnet', userIds: { uid: 1, gid: 1 }, guestIds: { uid: 2, gid: 2 } };

test('the same topology is no change', () => {
  assert.ok(isEmpty(diffLabs(lab(base), lab(base))));
});

test('nodes and bridge-only networks are added, removed and restarted in place', () => {
  const next = {
    ...base,
    networks: { ...base.networks, side: { mode: 'isolated' } },
    nodes: { a: { memory: 200, nics: [{ network: 'lan', ip: '10.0.0.2' }] }, c: { nics: [{ network: 'side' }] }, w: base.nodes.w },
  };
  const c = diffLabs(lab(base), lab(next));
  assert.deepEqual(c, { addNetworks: ['side'], removeNetworks: [], addNodes: ['c'], removeNodes: ['b'], restartNodes: ['a'], refused: [] });
  const steps = planChange(lab(base), lab(next), c, ctx).map((s) => s.title);
  assert.ok(steps.indexOf('stop b') < steps.findIndex((t) => t.startsWith('add 1 network')));
  assert.ok(steps.includes('stop a'));
  assert.ok(!steps.some((t) => t.includes(' w')), 'the unchanged node w is not touched');
  assert.equal(steps.at(-1), 'wait until the new guests are configured');
});

test('changes to networks, forwards, and nodes on DHCP networks are refused with reasons', () => {
  const refusals = (next: unknown) => diffLabs(lab(base), lab(next)).refused.join('\n');
  assert.match(refusals({ ...base, networks: { ...base.networks, lan: { subnet: '10.0.0.0/24', address: '10.0.0.1' } } }), /networks\.lan changed/);
  assert.match(refusals({ ...base, networks: { ...base.networks, nat2: { mode: 'nat', subnet: '10.2.0.0/24', address: '10.2.0.1' } } }), /networks\.nat2: a new nat network/);
  assert.match(refusals({ ...base, forwards: [{ host: 80, node: 'w', port: 80 }], networks: base.networks }), /forwards changed/);
  assert.match(refusals({ ...base, nodes: { ...base.nodes, w: { memory: 200, nics: [{ network: 'wan', dhcp: true, ip: '10.1.0.5' }] } } }), /nodes\.w: changing a node on a DHCP network/);
});
