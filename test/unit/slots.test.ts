// Guests booting at once: the plan starts every guest and waits once; the executor's slots keep at most N
// booting, starting the next as soon as one is ready.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultBootWindow, defaultRestoreWindow, Slots, windowOf } from '../../src/lab/slots.js';
import { planUp, type PlanContext } from '../../src/plan/plan.js';
import { parseTopology } from '../../src/topology/load.js';
import os from 'node:os';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const lab = parseTopology(readFileSync(path.join(ROOT, 'test', 'fixtures', 'seed.yaml'), 'utf8'), 'seed.yaml');
const ctx: PlanContext = { image: { kernel: '/k', initrd: '/i', cmdline: 'c' }, accel: 'tcg', user: 'qnet', userIds: { uid: 1, gid: 1 }, guestIds: { uid: 2, gid: 2 } };
const order = (p?: number) =>
  planUp(lab, { ...ctx, ...(p !== undefined ? { parallel: p } : {}) })
    .filter((s) => s.do.kind === 'start-guest' || s.do.kind === 'wait-ready')
    .map((s) => (s.do.kind === 'start-guest' ? s.do.node : `${s.title} [${(s.do as { nodes: string[] }).nodes.join(',')}]`));

test('the plan starts every guest, then waits for all; the window is said when it limits', () => {
  assert.deepEqual(order(), ['deb1', 'deb2', 'deb3', 'wait until every guest is configured [deb1,deb2,deb3]']);
  assert.deepEqual(order(2), ['deb1', 'deb2', 'deb3', 'wait until every guest is configured (at most 2 booting at once) [deb1,deb2,deb3]']);
  assert.deepEqual(order(3), order());
  assert.deepEqual(order(0), order());
});

test('slots: at most N held; a release hands the slot to the longest waiter; 0 means no limit', async () => {
  const s = new Slots(2);
  const got: string[] = [];
  await s.acquire();
  await s.acquire();
  const c = s.acquire().then(() => got.push('c'));
  const d = s.acquire().then(() => got.push('d'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [], 'both wait while two are held');
  assert.equal(s.inUse, 2);
  s.release();
  await c;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['c'], 'one release lets exactly one in, the first to ask');
  s.release();
  await d;
  assert.deepEqual(got, ['c', 'd']);
  s.release();
  s.release();
  assert.equal(s.inUse, 0);
  const free = new Slots(0);
  for (let i = 0; i < 50; i++) await free.acquire();
  assert.equal(free.inUse, 50);
  assert.equal(defaultBootWindow(), os.cpus().length + 1);
});

test('a boot takes a slot of the boot window, a restored image node one of the restore window; a restored built-in guest none', () => {
  assert.equal(windowOf({ restoring: false, image: false }), 'boot');
  assert.equal(windowOf({ restoring: false, image: true }), 'boot');
  assert.equal(windowOf({ restoring: true, image: true }), 'restore');
  assert.equal(windowOf({ restoring: true, image: false }), undefined);
  // One core is left for the tail of the node restored before (about as much CPU as its resume).
  assert.equal(defaultRestoreWindow(2), 1);
  assert.equal(defaultRestoreWindow(1), 1);
  assert.equal(defaultRestoreWindow(8), 7);
  assert.equal(defaultRestoreWindow(), Math.max(1, os.cpus().length - 1));
});
