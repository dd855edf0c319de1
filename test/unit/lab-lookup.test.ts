// Looking labs up by name: malformed and unknown names are bad input (exit 2), labs taken down are remembered for
// a while, and a running lab is not silently rewritten by another file that gives the same name.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exitCodeOf, UserError } from '../../src/errors.js';
import { isLabName, LAB_NAME_MAX } from '../../src/topology/names.js';
import { LIMITS } from '../../src/topology/schema.js';
import { addTombstone, tombstoneOf, TOMBSTONE_MS } from '../../src/lab/tombstones.js';
import type { LabState } from '../../src/lab/state.js';

let dir = '';
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'qnet-lookup-'));
  // The run root of these tests: no lab of the host's is read.
  process.env.QNET_RUN_DIR = path.join(dir, 'run');
  mkdirSync(process.env.QNET_RUN_DIR);
  process.env.QNET_CACHE_DIR = path.join(dir, 'cache');
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lab names', () => {
  test('the pattern and at most 24 characters, the limit the schema applies', () => {
    assert.equal(LAB_NAME_MAX, LIMITS.labName);
    for (const ok of ['seed', 'a', 'lab-2', 'x'.repeat(24)]) assert.ok(isLabName(ok), ok);
    for (const bad of ['Bad Name', 'x'.repeat(25), '-a', 'a-', 'a_b', '../etc', 'a/b', '', 'seed.yaml', 'Seed']) assert.ok(!isLabName(bad), bad);
  });
});

describe('the one lookup of a lab by name', () => {
  test('a malformed name is refused before anything is read, naming the rule', async () => {
    const { labState, upState } = await import('../../src/lab/state.js');
    for (const f of [labState, upState])
      await assert.rejects(f('Bad Name'), (e: Error) => e instanceof UserError && /"Bad Name" is not a lab name \(lower-case letters, digits, inner hyphens, at most 24\)/.test(e.message));
    await assert.rejects(labState('../../etc'), (e: Error) => exitCodeOf(e) === 2);
  });

  test('an unknown lab is exit 2, saying where the labs are listed', async () => {
    const { labState, upState } = await import('../../src/lab/state.js');
    for (const f of [labState, upState])
      await assert.rejects(f('nosuchlab'), (e: Error) => exitCodeOf(e) === 2 && e.message === 'no lab named "nosuchlab" is up (`qnet status` lists the labs)');
  });

  test('the commands that read a lab go through it: exec, console, ssh, leases', async () => {
    const { runningNode } = await import('../../src/lab/exec.js');
    const { sshArgv } = await import('../../src/lab/ssh.js');
    const { labLeases } = await import('../../src/lab/leases.js');
    for (const p of [runningNode('Bad Name', 'a'), sshArgv('Bad Name', 'a', []), labLeases('Bad Name')])
      await assert.rejects(p, (e: Error) => exitCodeOf(e) === 2 && /is not a lab name/.test(e.message));
  });

  test('a lab whose up has not finished is not up (exit 2 too)', async () => {
    const { upState, writeState } = await import('../../src/lab/state.js');
    mkdirSync(path.join(process.env.QNET_RUN_DIR!, 'half'));
    await writeState({ version: 1, lab: { name: 'half' }, status: 'starting', createdAt: '', accel: 'tcg', image: '', guests: {} } as unknown as LabState);
    await assert.rejects(upState('half'), (e: Error) => exitCodeOf(e) === 2 && /lab "half" is not up \(its up has not finished/.test(e.message));
  });
});

describe('labs taken down (tombstones)', () => {
  const t0 = new Date('2026-12-01T10:00:00Z');
  const later = (ms: number) => new Date(t0.getTime() + ms);

  test('a lab taken down is remembered with its time; the latest down wins', () => {
    let r = addTombstone({}, 'a', t0);
    assert.deepEqual(r, { a: '2026-12-01T10:00:00.000Z' });
    r = addTombstone(r, 'a', later(60_000));
    assert.equal(tombstoneOf(r, 'a', later(60_000)), '2026-12-01T10:01:00.000Z');
    assert.equal(tombstoneOf(r, 'b', later(60_000)), null);
  });

  test('entries older than a week are forgotten, and dropped when the record is next written', () => {
    const r = addTombstone(addTombstone({}, 'old', t0), 'new', later(TOMBSTONE_MS - 1));
    assert.equal(tombstoneOf(r, 'old', later(TOMBSTONE_MS)), t0.toISOString());
    assert.equal(tombstoneOf(r, 'old', later(TOMBSTONE_MS + 1)), null);
    assert.deepEqual(Object.keys(addTombstone(r, 'x', later(TOMBSTONE_MS + 1))), ['new', 'x']);
  });

  test("an object's own names only (a lab called constructor is not found in Object.prototype)", () => {
    assert.equal(tombstoneOf({}, 'constructor', t0), null);
    assert.equal(tombstoneOf({}, '__proto__', t0), null);
  });

  test('recordDown and takenDownAt keep it in the cache directory, never under the run root', async () => {
    const { recordDown, takenDownAt, TOMBSTONES } = await import('../../src/lab/tombstones.js');
    const { readdirSync, existsSync } = await import('node:fs');
    const runBefore = existsSync(process.env.QNET_RUN_DIR!) ? readdirSync(process.env.QNET_RUN_DIR!) : [];
    assert.equal(await takenDownAt('gone'), null);
    await recordDown('gone', t0);
    assert.equal(await takenDownAt('gone', later(1000)), t0.toISOString());
    assert.ok(readdirSync(process.env.QNET_CACHE_DIR!).includes(TOMBSTONES));
    assert.deepEqual(existsSync(process.env.QNET_RUN_DIR!) ? readdirSync(process.env.QNET_RUN_DIR!) : [], runBefore);
  });
});

describe('up of a running lab from another file with the same name', () => {
  const running = (source?: string) => ({ lab: { name: 'seed' }, status: 'up', ...(source ? { source } : {}) }) as unknown as LabState;

  test('refused (exit 2), naming both files by absolute path', async () => {
    const { checkSource } = await import('../../src/lab/up.js');
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'b.yaml');
    writeFileSync(a, 'name: seed\n');
    writeFileSync(b, 'name: seed\n');
    const rel = path.relative(process.cwd(), b);
    await assert.rejects(checkSource(running(a), rel), (e: Error) => {
      assert.equal(exitCodeOf(e), 2);
      assert.match(e.message, new RegExp(`lab "seed" is up from ${a}, and ${b} also names a lab "seed": nothing was changed`));
      assert.match(e.message, new RegExp(`qnet up ${b} --replace`));
      return true;
    });
  });

  test('the same file by another name (relative, through a symlink) is the same file', async () => {
    const { checkSource } = await import('../../src/lab/up.js');
    const a = path.join(dir, 'a.yaml');
    const link = path.join(dir, 'link.yaml');
    symlinkSync(a, link);
    await checkSource(running(a), path.relative(process.cwd(), a));
    await checkSource(running(a), link);
    await checkSource(running(link), a);
  });

  test('--replace, a lab with no recorded file and a library call without one are not refused', async () => {
    const { checkSource } = await import('../../src/lab/up.js');
    await checkSource(running(path.join(dir, 'a.yaml')), path.join(dir, 'b.yaml'), true);
    await checkSource(running(), path.join(dir, 'b.yaml'));
    await checkSource(running(path.join(dir, 'a.yaml')), undefined);
  });

  test('a running file that is gone is said to be gone', async () => {
    const { checkSource } = await import('../../src/lab/up.js');
    await assert.rejects(checkSource(running(path.join(dir, 'moved.yaml')), path.join(dir, 'b.yaml')), /is up from .*moved\.yaml \(no longer there\)/);
  });
});
