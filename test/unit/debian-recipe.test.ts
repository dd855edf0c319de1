// The Debian image recipe against the manual: README.md lists exactly the units the recipe masks, and the screen's
// getty (tty1) is kept, ordered after what makes a node ready.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GETTY_TTY1_DROPIN, MASKED_UNITS, recipeFiles } from '../../src/guest/debian-recipe.js';
import { ROOT } from './golden.js';

test("README.md names exactly the units the recipe masks, and tty1's getty is not one of them", () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ');
  const m = /these units, masked: ((?:`[^`]+`(?:, )?)+)/.exec(readme);
  assert.ok(m, 'README.md has the sentence "these units, masked: `…`, `…`"');
  const listed = [...m[1]!.matchAll(/`([^`]+)`/g)].map((x) => x[1]);
  assert.deepEqual(listed, [...MASKED_UNITS]);
  assert.ok(!(MASKED_UNITS as readonly string[]).includes('getty@tty1.service'), 'the screen shows a login prompt');
});

test("tty1's getty starts after cloud-init's final stage, qnet's readiness unit and the resume hook", () => {
  const dropin = recipeFiles('uuid').find((f) => f.path === 'etc/systemd/system/getty@tty1.service.d/90-qnet.conf');
  assert.equal(dropin?.content, GETTY_TTY1_DROPIN);
  assert.match(GETTY_TTY1_DROPIN, /^\[Unit\]\nAfter=cloud-init\.service qnet-resume\.service$/m);
});
