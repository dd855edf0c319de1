// Golden files for unit tests: compare a rendering with test/golden/NAME, or rewrite it with UPDATE_GOLDEN=1.
// Not a test file itself.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const GOLDEN = path.join(ROOT, 'test', 'golden');

/** Asserts that `actual` equals the golden file `name` (or writes it, with UPDATE_GOLDEN=1). */
export function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(file, 'utf8');
  } catch {
    assert.fail(`golden file ${path.relative(ROOT, file)} is missing; run the tests with UPDATE_GOLDEN=1 to create it`);
  }
  assert.equal(actual, expected, `${path.relative(ROOT, file)} differs; if the change is intended, rerun with UPDATE_GOLDEN=1`);
}
