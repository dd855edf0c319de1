// Rollback runs each done step's undo in reverse, with the undo's own input (an `ip -batch` script).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordingRunner } from '../../src/host/run.js';
import { onlyAlreadyGone, rollback, silentReporter, type ExecContext } from '../../src/lab/up.js';
import type { Step } from '../../src/plan/plan.js';
import { parseTopology } from '../../src/topology/load.js';

test('rollback undoes in reverse and feeds each undo its input', async () => {
  const runner = new RecordingRunner();
  const lab = parseTopology('name: rb\nnodes:\n  n: {}\n');
  const steps: Step[] = [
    { title: 'a', do: { kind: 'exec', argv: ['true'] }, undo: { kind: 'exec', argv: ['ip', '-force', '-batch', '-'], input: 'link delete dev qv1\n' } },
    { title: 'b', do: { kind: 'exec', argv: ['true'] } },
    { title: 'c', do: { kind: 'exec', argv: ['true'] }, undo: { kind: 'exec', argv: ['nft', 'delete', 'table', 'netdev', 'qnet-rb'] } },
  ];
  const ctx: ExecContext = { runner, lab, state: { version: 1, lab, status: 'starting', createdAt: '', accel: 'tcg', image: '', guests: {} }, live: { pids: new Map(), control: new Map(), services: new Map(), snapshots: new Map(), ready: new Map(), templates: new Map() }, reporter: silentReporter, readyTimeoutMs: 0 };
  assert.deepEqual(await rollback(steps, ctx), { undone: 2, failed: [] });
  assert.deepEqual(runner.calls, [
    { argv: ['nft', 'delete', 'table', 'netdev', 'qnet-rb'] },
    { argv: ['ip', '-force', '-batch', '-'], input: 'link delete dev qv1\n' },
  ]);
});

test('an undo that fails is reported and named, and the undos before it still run', async () => {
  const runner = new RecordingRunner([{ prefix: ['nft', 'delete'], result: { code: 1, stderr: 'Error: Could not process rule: Device or resource busy\n' } }]);
  const lab = parseTopology('name: rb\nnodes:\n  n: {}\n');
  const steps: Step[] = [
    { title: 'create namespace', do: { kind: 'exec', argv: ['true'] }, undo: { kind: 'exec', argv: ['ip', 'netns', 'delete', 'qnet-rb'] } },
    { title: 'load the host table', do: { kind: 'exec', argv: ['true'] }, undo: { kind: 'exec', argv: ['nft', 'delete', 'table', 'ip', 'qnet-rb'] } },
  ];
  const said: string[] = [];
  const reporter = { step() {}, info: (m: string) => void said.push(m) };
  const ctx: ExecContext = { runner, lab, state: { version: 1, lab, status: 'starting', createdAt: '', accel: 'tcg', image: '', guests: {} }, live: { pids: new Map(), control: new Map(), services: new Map(), snapshots: new Map(), ready: new Map(), templates: new Map() }, reporter, readyTimeoutMs: 0 };
  assert.deepEqual(await rollback(steps, ctx), { undone: 1, failed: ['load the host table'] });
  assert.deepEqual(runner.calls.map((c) => c.argv[0]), ['nft', 'ip']);
  assert.deepEqual(said, ['rollback of "load the host table" failed: nft delete table ip qnet-rb exited 1: Error: Could not process rule: Device or resource busy']);
});

test('an undo whose only complaint is that its object is already gone counts as undone', () => {
  // ip -force -batch after another undo deleted the bridge; nft and ip netns on what is not there.
  assert.equal(onlyAlreadyGone('Cannot find device "qb1265f50f"\nCommand failed -:2\n'), true);
  assert.equal(onlyAlreadyGone('Error: No such file or directory\ndelete table ip qnet-rb\n                ^^^^^^^\n'), true);
  assert.equal(onlyAlreadyGone('Cannot remove namespace file "/run/netns/qnet-rb": No such file or directory\n'), true);
  assert.equal(onlyAlreadyGone('RTNETLINK answers: No such process\n'), true);
  // Anything else is a failure, also beside a "gone" line.
  assert.equal(onlyAlreadyGone('Error: Could not process rule: Device or resource busy\n'), false);
  assert.equal(onlyAlreadyGone('Cannot find device "a"\nRTNETLINK answers: Operation not permitted\n'), false);
  assert.equal(onlyAlreadyGone(''), false);
});
