// Rollback runs each done step's undo in reverse, with the undo's own input (an `ip -batch` script).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordingRunner } from '../../src/host/run.js';
import { rollback, silentReporter, type ExecContext } from '../../src/lab/up.js';
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
  assert.equal(await rollback(steps, ctx), 2);
  assert.deepEqual(runner.calls, [
    { argv: ['nft', 'delete', 'table', 'netdev', 'qnet-rb'] },
    { argv: ['ip', '-force', '-batch', '-'], input: 'link delete dev qv1\n' },
  ]);
});
