// End-to-end: `up` of a running lab with a changed topology applies what changed and touches nothing else.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

const name = labName('chg');
const v1 = {
  name,
  networks: { lan: { subnet: '10.44.0.0/24' } },
  nodes: { a: { nics: [{ network: 'lan', ip: '10.44.0.2' }] }, b: { nics: [{ network: 'lan', ip: '10.44.0.3' }] } },
};
const v2 = {
  name,
  networks: { lan: { subnet: '10.44.0.0/24' }, side: { mode: 'isolated' } },
  nodes: {
    a: { nics: [{ network: 'lan', ip: '10.44.0.2' }] },
    c: { nics: [{ network: 'lan', ip: '10.44.0.4' }, { network: 'side', ip: '10.45.0.4/24' }] },
  },
};
let before0: HostSnapshot;
let file = '';
// Each change is an edit of the lab's own file (another file that gives the same name is refused: cli-codes).
const edit = (topo: unknown) => (writeFileSync(file, stringify(topo)), file);
const status = async () => JSON.parse((await qnet(['status', name, '--json'])).stdout);

before(async () => {
  before0 = await snapshot();
  file = writeTopology(v1);
  const r = await qnet(['up', file]);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await qnet(['down', name]);
  assert.deepEqual(await snapshot(), before0);
});

test('--dry-run shows the change and changes nothing', async () => {
  const pids = (await status()).nodes.map((n: { pid: number }) => n.pid);
  const r = await qnet(['up', edit(v2), '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /add networks: side/);
  assert.match(r.stdout, /add nodes: c/);
  assert.match(r.stdout, /remove nodes: b/);
  assert.match(r.stdout, /nothing was changed/);
  assert.deepEqual((await status()).nodes.map((n: { pid: number }) => n.pid), pids);
});

test('adding a node and a network and removing a node leaves the unchanged node alone', async () => {
  const s1 = await status();
  const aPid = s1.nodes.find((n: { name: string }) => n.name === 'a').pid;
  const r = await qnet(['up', edit(v2)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /c is up/);
  const s2 = await status();
  assert.deepEqual(s2.nodes.map((n: { name: string; state: string }) => [n.name, n.state]), [['a', 'running'], ['c', 'running']]);
  assert.equal(s2.nodes[0].pid, aPid, 'node a was not touched');
  assert.deepEqual(s2.networks.map((n: { name: string }) => n.name), ['lan', 'side']);
  assert.deepEqual(s2.networks[0].taps.sort(), ['t-a-0', 't-c-0']);
  const ping = await qnet(['exec', name, 'c', '--', 'ping', '-c', '1', '-W', '3', '10.44.0.2']);
  assert.equal(ping.code, 0, ping.stdout);
});

test('a changed node is restarted; a change that cannot be made in place is refused with the reason', async () => {
  const changed = { ...v2, nodes: { ...v2.nodes, a: { memory: 144, nics: [{ network: 'lan', ip: '10.44.0.2' }] } } };
  const before1 = (await status()).nodes;
  const r = await qnet(['up', edit(changed)]);
  assert.equal(r.code, 0, r.stderr);
  const after1 = (await status()).nodes;
  assert.notEqual(after1[0].pid, before1[0].pid, 'a restarted');
  assert.equal(after1[0].memory, 144);
  assert.equal(after1[1].pid, before1[1].pid, 'c untouched');
  const refused = await qnet(['up', edit({ ...changed, networks: { ...changed.networks, lan: { subnet: '10.44.0.0/24', address: '10.44.0.1' } } })]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /cannot be applied in place[\s\S]*networks\.lan changed/);
  assert.equal((await status()).nodes[1].pid, before1[1].pid, 'a refused change touches nothing');
});
