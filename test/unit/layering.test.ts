// The layering of shared/DESIGN.md, checked on the source: pure layers (topology, plan, render, check) import
// nothing that touches the host; host/ and qemu/ do not orchestrate (no lab/); nothing imports the faces (cli/, web/).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './golden.js';

const SRC = path.join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The top-level folder of src/ a file belongs to ('' for files directly in src/). */
function layerOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 ? rel[0]! : '';
}

/** Every relative module a file imports (static imports, re-exports and dynamic imports), resolved to a path. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.[^']+)'/g))
    out.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  return out;
}

// Which layers each layer may not import (the pure ones may not reach side effects; host and qemu may not orchestrate).
const FORBIDDEN: Record<string, string[]> = {
  topology: ['host', 'qemu', 'lab', 'cli', 'web', 'guest'],
  plan: ['host', 'qemu', 'lab', 'cli', 'web'],
  render: ['host', 'qemu', 'lab', 'cli', 'web', 'plan'],
  check: ['host', 'qemu', 'lab', 'cli', 'web'],
  // Fabrics plan (pure, golden-tested): the northbound renderer and its names touch nothing. Of plan/ they may use
  // only the plan's vocabulary (steps.ts): the planner dispatches to them, not they to it.
  fabric: ['host', 'qemu', 'lab', 'cli', 'web'],
  host: ['lab', 'cli', 'web'],
  // Where a node runs (this machine or one over SSH) and the agent protocol: transport only, no orchestration.
  hosts: ['lab', 'cli', 'web', 'qemu', 'plan', 'guest'],
  qemu: ['lab', 'cli', 'web'],
  guest: ['lab', 'cli', 'web'],
  lab: ['cli', 'web'],
  web: ['cli'],
  '': ['cli', 'web', 'host', 'qemu', 'lab'],
};
// Guest kinds are planned by the pure planner: the modules it imports from guest/ must be pure too.
const PURE_GUEST = new Set(['resume.ts', 'resume-mark.ts', 'kinds.ts', 'builtin.ts', 'image-node.ts', 'init-script.ts', 'cloud-init.ts', 'modules.ts', 'libs.ts', 'debian-recipe.ts', 'kept.ts', 'boot-failure.ts']);

test('each layer imports only what it may (shared/DESIGN.md)', () => {
  const problems: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    if (from === '' && path.basename(file) === 'index.ts') continue; // the library API re-exports everything
    for (const target of importsOf(file)) {
      if (!target.startsWith(SRC)) continue;
      const to = layerOf(target);
      const rel = `${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`;
      if ((FORBIDDEN[from] ?? []).includes(to)) problems.push(rel);
      if (from === 'fabric' && to === 'plan' && path.basename(target) !== 'steps.ts') problems.push(`${rel} (a fabric may import only plan/steps.ts)`);
      if ((from === 'fabric') && to === 'guest' && !PURE_GUEST.has(path.basename(target))) problems.push(`${rel} (a pure layer may import only the pure guest modules)`);
      if ((from === 'plan' || from === 'render' || from === 'topology' || from === 'check') && to === 'guest' && !PURE_GUEST.has(path.basename(target)))
        problems.push(`${rel} (a pure layer may import only the pure guest modules)`);
    }
  }
  assert.deepEqual(problems, [], `imports that break the layering:\n  ${problems.join('\n  ')}`);
});

test('the pure guest modules import nothing that touches the host', () => {
  const problems: string[] = [];
  for (const file of sources(path.join(SRC, 'guest'))) {
    if (!PURE_GUEST.has(path.basename(file))) continue;
    for (const target of importsOf(file)) {
      const to = layerOf(target);
      if (['host', 'qemu', 'lab'].includes(to) || (to === 'guest' && !PURE_GUEST.has(path.basename(target))))
        problems.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
    }
    if (/from 'node:(fs|child_process|net)/.test(readFileSync(file, 'utf8'))) problems.push(`${path.relative(SRC, file)} imports node:fs, node:child_process or node:net`);
  }
  assert.deepEqual(problems, []);
});

/** The packages and files a module loads statically (its import closure, dynamic imports left out). */
function staticClosure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    const text = readFileSync(f, 'utf8');
    // Static imports and re-exports only ("import type" loads nothing at run time).
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^'";]*?from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) todo.push(path.resolve(path.dirname(f), spec.replace(/\.js$/, '.ts')));
      else if (!spec.startsWith('node:')) packages.add(spec);
    }
  }
  return { files, packages };
}

// What `qnet --help` and `qnet status` with no labs load at run time is checked in cli-startup.test.ts.
test('the CLI starts without zod and yaml: `qnet --help` and `qnet status` load them only when a command needs them', () => {
  const cli = staticClosure(path.join(SRC, 'cli', 'main.ts'));
  assert.deepEqual([...cli.packages].sort(), []);
  const status = staticClosure(path.join(SRC, 'lab', 'status.ts'));
  for (const heavy of ['zod', 'yaml']) assert.ok(!status.packages.has(heavy), `lab/status.ts loads ${heavy}: ${[...status.files].map((f) => path.relative(SRC, f)).join(', ')}`);
});
