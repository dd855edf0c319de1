// End-to-end: exit codes as the README states them (0 success, 1 runtime failure, 2 bad input) for labs that do
// not exist, malformed names and labs already taken down; and a running lab is not rewritten by another file that
// gives the same name unless `up --replace` says so.
import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

const runRoot = process.env.QNET_RUN_DIR ?? '/run/qnet';
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('labs that do not exist, and names that cannot be labs', () => {
  let before0: HostSnapshot;
  before(async () => {
    before0 = await snapshot();
  });
  after(async () => {
    assert.deepEqual(await snapshot(), before0, 'nothing was made on the host');
  });

  test('an unknown lab is bad input (exit 2) for every command that names one', async () => {
    const lab = labName('nosuch');
    for (const args of [
      ['status', lab],
      ['status', lab, '--json'],
      ['exec', lab, 'a', '--', 'true'],
      ['console', lab, 'a'],
      ['ssh', lab, 'a'],
      ['leases', lab],
      ['link', lab, 'a', 'down'],
      ['capture', lab, 'a'],
      ['impair', lab, 'a', '--delay', '5ms'],
      ['check', lab],
      ['check', lab, '--predict'],
      ['graph', lab],
      ['export', lab, '--format', 'sh'],
      ['down', lab],
    ]) {
      const r = await qnet(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`no lab named "${lab}"`), args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
    const down = await qnet(['down', lab]);
    assert.match(down.stderr, new RegExp(`error: no lab named "${lab}" on this host \\(\`qnet status\` lists the labs\\)`));
  });

  test('down of a name that is neither a file nor a lab name says so (exit 2); other commands name the rule', async () => {
    for (const bad of ['Bad Name', 'x'.repeat(25), 'lab.yaml']) {
      const r = await qnet(['down', bad]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`'${esc(bad)}' is neither a topology file nor a lab name \\(lower-case letters, digits, inner hyphens, at most 24\\)`));
    }
    for (const args of [['status', 'Bad Name'], ['exec', 'Bad Name', 'a', '--', 'true'], ['leases', '../etc']]) {
      const r = await qnet(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /is not a lab name \(lower-case letters, digits, inner hyphens, at most 24\)/, args.join(' '));
    }
  });

  test('a second down of a lab says it is already down (exit 0); what remembers it is no leftover', async () => {
    const lab = labName('tomb');
    // What a killed `up` leaves first: the lab's run directory, and nothing else.
    mkdirSync(path.join(runRoot, lab), { mode: 0o711 });
    const first = await qnet(['down', lab]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, new RegExp(`lab ${lab} is down in .*: removed run directory`));
    const again = await qnet(['down', lab]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`lab ${lab} is already down \\(taken down at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\): nothing to remove`));
    // It is not a lab for the other commands.
    assert.equal((await qnet(['status', lab])).code, 2);
  });
});

describe('another file with the same lab name', () => {
  const name = labName('same');
  const net = { lan: { subnet: '10.46.0.0/24' } };
  const node = (ip: string) => ({ memory: 104, nics: [{ network: 'lan', ip }] });
  const fileA = realpathSync(writeTopology({ name, networks: net, nodes: { a: node('10.46.0.2'), b: node('10.46.0.3') } }));
  const fileB = realpathSync(writeTopology({ name, networks: net, nodes: { a: node('10.46.0.2'), c: node('10.46.0.4') } }));
  let before0: HostSnapshot;
  const status = async () => JSON.parse((await qnet(['status', name, '--json'])).stdout) as { source: string; nodes: Array<{ name: string; pid: number; state: string }> };

  before(async () => {
    before0 = await snapshot();
    const r = await qnet(['up', fileA]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await qnet(['down', name]);
  });

  test('is refused (exit 2) naming both files, and the lab is left as it was; --dry-run too', async () => {
    const was = await status();
    assert.equal(was.source, fileA);
    for (const args of [['up', fileB], ['up', fileB, '--dry-run']]) {
      const r = await qnet(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`lab "${name}" is up from ${esc(fileA)}, and ${esc(fileB)} also names a lab "${name}": nothing was changed`));
      assert.match(r.stderr, new RegExp(`qnet up ${esc(fileB)} --replace`));
    }
    const now = await status();
    assert.deepEqual(now.nodes.map((n) => [n.name, n.state, n.pid]), was.nodes.map((n) => [n.name, 'running', n.pid]));
    assert.equal(now.source, fileA);
    assert.match((await qnet(['status', name])).stdout, new RegExp(`from ${esc(fileA)}`));
  });

  test('the same file by another path (a symlink) is that file: not refused', async () => {
    const link = path.join(path.dirname(fileA), 'link.yaml');
    symlinkSync(fileA, link);
    const r = await qnet(['up', link]);
    assert.notEqual(r.code, 2, r.stderr);
    assert.doesNotMatch(r.stderr, /--replace/);
  });

  test('--replace makes the running lab the other file\'s: only what differs changes, and status names that file', async () => {
    const was = await status();
    const dry = await qnet(['up', fileB, '--dry-run', '--replace']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`lab ${name} is up from ${esc(fileA)}`));
    assert.match(dry.stdout, /add nodes: c/);
    assert.match(dry.stdout, /remove nodes: b/);
    assert.match(dry.stdout, /nothing was changed/);
    assert.equal((await status()).source, fileA);
    const r = await qnet(['up', fileB, '--replace']);
    assert.equal(r.code, 0, r.stderr);
    const now = await status();
    assert.deepEqual(now.nodes.map((n) => [n.name, n.state]), [['a', 'running'], ['c', 'running']]);
    assert.equal(now.nodes[0]!.pid, was.nodes[0]!.pid, 'a was not touched');
    assert.equal(now.source, fileB);
    assert.match((await qnet(['status', name])).stdout, new RegExp(`from ${esc(fileB)}`));
    // From now on the first file is the other one.
    const back = await qnet(['up', fileA]);
    assert.equal(back.code, 2, back.stderr);
    assert.match(back.stderr, new RegExp(`is up from ${esc(fileB)}, and ${esc(fileA)} also names`));
  });

  test('down leaves nothing', async () => {
    const d = await qnet(['down', name]);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await snapshot(), before0);
  });
});
