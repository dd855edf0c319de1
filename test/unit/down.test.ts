// How `down` reports the guests it stopped: grouped by how each went, a long list cut to its ends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stoppedGuests } from '../../src/lab/down.js';
import { CLI_REMOVED_SPLIT, stoppedHow } from '../../bench/stopped.js';

test('one guest, a few, and many: grouped by how they stopped', () => {
  assert.deepEqual(stoppedGuests([['a', 'quit']]), ['guest a (quit)']);
  assert.deepEqual(stoppedGuests([['deb1', 'powered off'], ['r', 'quit'], ['deb2', 'powered off']]), ['guests deb1, deb2 (powered off)', 'guest r (quit)']);
  const many = Array.from({ length: 250 }, (_, i) => [`g${i}`, 'quit'] as const);
  assert.deepEqual(stoppedGuests(many), ['250 guests g0, g1, g2, …, g248, g249 (quit)']);
  assert.deepEqual(stoppedGuests([]), []);
});

test("the bench reads down's report back: one, a few and many guests, each way they stopped, as the CLI prints them", () => {
  const names = (n: number, p = 'd') => Array.from({ length: n }, (_, i) => `${p}${i}`);
  const stopped: Array<[string, string]> = [
    ...names(1, 'a').map((n): [string, string] => [n, 'killed after the grace']),
    ...names(3).map((n): [string, string] => [n, 'powered off']),
    ...names(12, 'g').map((n): [string, string] => [n, 'quit']),
  ];
  const report = stoppedGuests(stopped);
  assert.equal(stoppedHow(report), '1 killed after the grace, 3 powered off, 12 quit');
  // The CLI's one line ("removed guests d0, d1, d2 (powered off), namespace qnet-x, ..."), split as the bench splits it.
  const line = [...report, 'namespace qnet-x', 'run directory /run/qnet/x'].join(', ');
  assert.equal(stoppedHow(line.split(CLI_REMOVED_SPLIT)), '1 killed after the grace, 3 powered off, 12 quit');
  assert.equal(stoppedHow(['namespace qnet-x']), 'no guest stopped');
});
