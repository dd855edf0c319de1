// How `down` reports the guests it stopped: grouped by how each went, a long list cut to its ends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stoppedGuests } from '../../src/lab/down.js';

test('one guest, a few, and many: grouped by how they stopped', () => {
  assert.deepEqual(stoppedGuests([['a', 'quit']]), ['guest a (quit)']);
  assert.deepEqual(stoppedGuests([['deb1', 'powered off'], ['r', 'quit'], ['deb2', 'powered off']]), ['guests deb1, deb2 (powered off)', 'guest r (quit)']);
  const many = Array.from({ length: 250 }, (_, i) => [`g${i}`, 'quit'] as const);
  assert.deepEqual(stoppedGuests(many), ['250 guests g0, g1, g2, …, g248, g249 (quit)']);
  assert.deepEqual(stoppedGuests([]), []);
});
