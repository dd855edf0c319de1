// Booting in waves: each wave's guests start, then the plan waits for exactly them before the next wave.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { planUp, type PlanContext } from '../../src/plan/plan.js';
import { parseTopology } from '../../src/topology/load.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const lab = parseTopology(readFileSync(path.join(ROOT, 'test', 'fixtures', 'seed.yaml'), 'utf8'), 'seed.yaml');
const ctx: PlanContext = { image: { kernel: '/k', initrd: '/i', cmdline: 'c' }, accel: 'tcg', user: 'qnet', userIds: { uid: 1, gid: 1 }, guestIds: { uid: 2, gid: 2 } };
const order = (p: number) =>
  planUp(lab, { ...ctx, parallel: p })
    .filter((s) => s.do.kind === 'start-guest' || s.do.kind === 'wait-ready')
    .map((s) => (s.do.kind === 'start-guest' ? s.do.node : `wait(${(s.do as { nodes: string[] }).nodes.join(',')})`));

test('all at once by default, in waves with parallel', () => {
  assert.deepEqual(order(0), ['deb1', 'deb2', 'deb3', 'wait(deb1,deb2,deb3)']);
  assert.deepEqual(order(2), ['deb1', 'deb2', 'wait(deb1,deb2)', 'deb3', 'wait(deb3)']);
  assert.deepEqual(order(1), ['deb1', 'wait(deb1)', 'deb2', 'wait(deb2)', 'deb3', 'wait(deb3)']);
  assert.deepEqual(order(5), order(0));
});
