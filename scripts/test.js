#!/usr/bin/env node
// Runs the compiled test files with Node's test runner: unit tests first, then end-to-end tests.
// Usage: node scripts/test.js [unit|e2e]
import { readdirSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const which = process.argv[2];
const suites = which ? [which] : ['unit', 'e2e'];
const files = [];
for (const s of suites) {
  const dir = path.join(root, 'dist', 'test', s);
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.test.js')) files.push(path.join(dir, f));
}
if (!files.length) {
  console.error('no test files found; build first (npx tsc -p .)');
  process.exit(1);
}
// What the tests write to the temp directory (topologies, image copies) must be gone when they end.
const tmp = process.env.TMPDIR || '/tmp';
const ours = () => readdirSync(tmp).filter((n) => /^qnet-(e2e|img|gpt|lan)-/.test(n));
const before = new Set(ours());
// End-to-end files boot real guests: one file at a time keeps the 2-core machine from thrashing.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
const left = ours().filter((n) => !before.has(n));
if (left.length) {
  console.error(`the tests left ${left.length} entries in ${tmp}: ${left.slice(0, 5).join(', ')}${left.length > 5 ? ', ...' : ''}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
