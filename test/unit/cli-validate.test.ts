// The real CLI on files: `qnet validate FILE` exits 2 and names the problem's path, 0 for a valid file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BAD_TOPOLOGIES } from './bad-topologies.js';

// This file runs as dist/test/unit/cli-validate.test.js: the repository root is three levels up.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const QNET = path.join(ROOT, 'bin', 'qnet.js');

function qnet(...args: string[]) {
  const r = spawnSync(process.execPath, [QNET, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    // No TTY, so no colour codes; keep the environment from influencing the run.
    env: { ...process.env, NO_COLOR: '1', QNET_DEBUG: '' },
  });
  assert.equal(r.error, undefined, `spawning qnet failed: ${r.error?.message}`);
  return r;
}

const CLI_CASES = BAD_TOPOLOGIES.filter((b) => b.cli);

describe('qnet validate', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'qnet-validate-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test(`at least 20 bad topologies go through the CLI (${CLI_CASES.length})`, () => {
    assert.ok(CLI_CASES.length >= 20);
  });

  CLI_CASES.forEach((bad, i) => {
    test(`exit 2: ${bad.why}`, () => {
      const file = path.join(dir, `bad-${i}.yaml`);
      writeFileSync(file, bad.yaml);
      const r = qnet('validate', file);
      assert.equal(r.status, 2, `exit status; stderr:\n${r.stderr}`);
      assert.equal(r.stdout, '', 'nothing on stdout');
      // stderr: `error: FILE: invalid topology (...)` then one `  PATH: message` line per problem.
      assert.ok(r.stderr.includes(file), `stderr names the file:\n${r.stderr}`);
      const lines = r.stderr.split('\n');
      const named = lines.some((l) => {
        const m = /^ {2}(.+?): /.exec(l);
        if (!m) return false;
        return typeof bad.path === 'string' ? m[1] === bad.path : bad.path.test(m[1]!);
      });
      assert.ok(named, `stderr names ${String(bad.path)}:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\x1b\[/, 'no colour codes when stderr is not a terminal');
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    });
  });

  test('exit 0 for a valid file', () => {
    const file = path.join(ROOT, 'test', 'fixtures', 'seed.yaml');
    const r = qnet('validate', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /lab seed, 3 node\(s\), 1 network\(s\), 3 NIC\(s\)/);
  });

  test('--json prints the resolved lab', () => {
    const r = qnet('validate', '--json', path.join(ROOT, 'test', 'fixtures', 'seed.yaml'));
    assert.equal(r.status, 0, r.stderr);
    const lab = JSON.parse(r.stdout) as { name: string; netns: string; nodes: Array<{ name: string; nics: Array<{ mac: string; tap: string }> }> };
    assert.equal(lab.name, 'seed');
    assert.equal(lab.netns, 'qnet-seed');
    assert.deepEqual(
      lab.nodes.map((n) => [n.name, n.nics[0]!.tap, n.nics[0]!.mac]),
      [
        ['deb1', 'ktap1', 'de:ad:be:ef:00:01'],
        ['deb2', 'ktap2', 'de:ad:be:ef:00:02'],
        ['deb3', 'ktap3', 'de:ad:be:ef:00:03'],
      ],
    );
  });

  test('exit 2 and every problem of a file with six, of every stage, each with its path, line and column', () => {
    const file = path.join(ROOT, 'test', 'fixtures', 'bad.yaml');
    const r = qnet('validate', file);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /invalid topology \(6 problems\)/);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('  '));
    assert.deepEqual(
      lines.map((l) => /^ {2}(\S+): .* \(line (\d+), column (\d+)\)$/.exec(l)?.slice(1).join(' ')),
      [
        'nodes.deb2.memory 11 13',
        'nodes.deb2.gateway 12 14',
        'nodes.deb2.nics[0].ip 14 28',
        'nodes.deb2.nics[0].mac 14 48',
        'nodes.deb2.nics[1].network 15 19',
        'nodes.a-node-name-that-is-far-too-long-for-dns 16 3',
      ],
      r.stderr,
    );
  });

  test('exit 2 for a file that does not exist', () => {
    const r = qnet('validate', '/nonexistent.yaml');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /\/nonexistent\.yaml: cannot read the topology file \(ENOENT\)/);
  });

  test('exit 2 for a directory', () => {
    const r = qnet('validate', dir);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /cannot read the topology file/);
  });

  test('exit 2 without a file argument', () => {
    const r = qnet('validate');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /missing required argument/);
  });
});
