// Unit tests of a node's life in a running lab: its state from the state file and /proc, the lab's status from its
// nodes, what `qnet stop` records, what start plans, and how up and start name the nodes they start again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planStart } from '../../src/plan/plan.js';
import { labStatusOf, nodeStateOf, withStopped, type LabState } from '../../src/lab/state.js';
import { statusNote } from '../../src/lab/status.js';
import { describeRevived } from '../../src/lab/up.js';
import { notRunningError } from '../../src/lab/alive.js';
import { validateTopology } from '../../src/topology/load.js';

process.env.QNET_RUN_DIR = '/run/qnet';
const ctx = { image: { kernel: '/k', initrd: '/i', cmdline: '' }, accel: 'tcg' as const, user: 'qnet', userIds: { uid: 1, gid: 1 }, guestIds: { uid: 2, gid: 2 } };
const lab = validateTopology({
  name: 'lc',
  networks: { lan: { subnet: '10.0.0.0/24' }, p2p: { mode: 'socket' } },
  nodes: { a: { nics: [{ network: 'lan', ip: '10.0.0.2' }, { network: 'p2p' }] }, b: { nics: [{ network: 'lan', ip: '10.0.0.3' }, { network: 'p2p' }] } },
});

test('a node is running while its QEMU lives; stopped when qnet stop said so; dead when it went unasked; unknown when never started', () => {
  const g = { pid: 42, startedAt: '2026-12-07T00:00:00Z' };
  assert.equal(nodeStateOf(g, true), 'running');
  assert.equal(nodeStateOf(g, false), 'dead');
  assert.equal(nodeStateOf({ ...g, stoppedAt: '2026-12-07T00:01:00Z' }, false), 'stopped');
  // Marked stopped but alive (stop under way, or start not yet recorded): the process says what is.
  assert.equal(nodeStateOf({ ...g, stoppedAt: '2026-12-07T00:01:00Z' }, true), 'running');
  assert.equal(nodeStateOf(undefined, false), 'unknown');
});

test('a lab is degraded by a dead node, not by one stopped on purpose; an up that died leaves it interrupted', () => {
  const ok = { recorded: 'up' as const, upAlive: true, networksMissing: false, servicesDead: false };
  assert.equal(labStatusOf({ ...ok, nodes: ['running', 'running'] }), 'up');
  assert.equal(labStatusOf({ ...ok, nodes: ['running', 'stopped'] }), 'up');
  assert.equal(labStatusOf({ ...ok, nodes: ['running', 'dead'] }), 'degraded');
  assert.equal(labStatusOf({ ...ok, nodes: ['unknown', 'running'] }), 'degraded');
  assert.equal(labStatusOf({ ...ok, nodes: ['running'], servicesDead: true }), 'degraded');
  assert.equal(labStatusOf({ ...ok, nodes: ['running'], networksMissing: true }), 'degraded');
  assert.equal(labStatusOf({ ...ok, recorded: 'starting', nodes: ['unknown'] }), 'starting');
  assert.equal(labStatusOf({ ...ok, recorded: 'starting', upAlive: false, nodes: ['running', 'unknown'] }), 'interrupted');
  assert.equal(labStatusOf({ ...ok, recorded: 'failed', nodes: [] }), 'failed');
});

test('status says what an interrupted up left and how to start nodes that do not run', () => {
  assert.match(statusNote('lc', 'interrupted', 1234, [])!, /`qnet up` \(pid 1234\) that was making this lab is gone .*`qnet down lc` removes what it made/);
  const n = statusNote('lc', 'degraded', undefined, [{ name: 'a', state: 'dead' }, { name: 'b', state: 'stopped' }, { name: 'c', state: 'running' }])!;
  assert.match(n, /not running without being stopped: a \(`qnet start lc NODE`, or `qnet up` of its file, starts it again\)/);
  assert.match(n, /stopped with `qnet stop`: b/);
  assert.equal(statusNote('lc', 'up', undefined, [{ name: 'c', state: 'running' }]), undefined);
  // While an up runs, nodes it has not started yet are no news.
  assert.equal(statusNote('lc', 'starting', 1, [{ name: 'c', state: 'unknown' }]), undefined);
});

test('qnet stop marks the node and nothing else; a node without a record is left alone', () => {
  const state = { version: 1, lab, status: 'up', createdAt: '', accel: 'tcg', image: 'x', guests: { a: { pid: 1, startedAt: 's' }, b: { pid: 2, startedAt: 's' } } } as LabState;
  const after = withStopped(state, 'a', 'now');
  assert.deepEqual(after.guests, { a: { pid: 1, startedAt: 's', stoppedAt: 'now' }, b: { pid: 2, startedAt: 's' } });
  assert.equal(state.guests.a!.stoppedAt, undefined, 'the state read is not changed in place');
  assert.equal(withStopped(state, 'zz', 'now'), state);
});

test('start plans the node as up does, on the taps it kept: MACs tied again, a new run directory, boot, wait', () => {
  const steps = planStart(lab, [lab.nodes[1]!], { ...ctx, snapshots: { b: { path: '/var/cache/qnet/s/shape.state', exists: true } } });
  const titles = steps.map((s) => s.title);
  assert.deepEqual(titles.slice(0, 2), ['remove b\'s run directory (made anew)', 'tie 1 guest MAC to its bridge port again (one bridge -batch)']);
  assert.match(titles.find((t) => t.startsWith('restore b'))!, /from the saved state of its shape/);
  assert.equal(titles.at(-1), 'wait until b is configured');
  // Nothing of the rest of the lab, and no tap made (it is still there): only b's files, b's MAC, b's QEMU.
  assert.ok(!titles.some((t) => /\ba\b|tap|bridge and|namespace/.test(t.replace('bridge port', ''))), titles.join('\n'));
  const fdb = steps[1]!.do;
  assert.ok(fdb.kind === 'exec' && fdb.input === `fdb replace ${lab.nodes[1]!.nics[0]!.mac} dev ${lab.nodes[1]!.nics[0]!.tap} master static\n`);
  assert.equal(steps.find((s) => s.do.kind === 'start-guest')!.undo?.kind, 'stop-guest');
});

test('up and start name the nodes they start again by what they were; commands that need a guest say how to start it', () => {
  assert.equal(describeRevived([{ node: 'deb2', was: 'dead' }]), 'deb2 was dead');
  assert.equal(describeRevived([{ node: 'a', was: 'stopped' }, { node: 'b', was: 'dead' }, { node: 'c', was: 'stopped' }]), 'a, c were stopped; b was dead');
  assert.equal(describeRevived([{ node: 'n', was: 'unknown' }]), 'n was never started');
  const e = notRunningError('lc', 'deb2', 'dead');
  assert.equal(e.message, 'node deb2 of lab lc is not running (dead); `qnet start lc deb2` starts it');
  assert.equal((e as unknown as { exitCode: number }).exitCode, 1);
});
