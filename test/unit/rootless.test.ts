// Rootless, first stage: where an ordinary user's files go (XDG) and what a rootless lab cannot have. Pure: every
// input (uid, environment, home, the runtime directory's owner) is given, so any user is played here as root.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveDir, type DirsInput } from '../../src/dirs.js';
import { RuntimeError, UserError } from '../../src/errors.js';
import { parseTopology } from '../../src/topology/load.js';
import { refuseRootless, rootlessRefusals } from '../../src/topology/rootless.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const example = (f: string) => readFileSync(path.join(ROOT, 'examples', f), 'utf8');

const input = (uid: number, env: Record<string, string> = {}, owner: number | null = uid): DirsInput => ({ uid, env, home: `/home/u${uid}`, ownerOf: () => owner });
const dirs = (i: DirsInput) => ({ run: resolveDir('run', i), state: resolveDir('state', i), cache: resolveDir('cache', i) });

describe('directories', () => {
  test('root: the system directories, whatever XDG says', () => {
    assert.deepEqual(dirs(input(0, { XDG_RUNTIME_DIR: '/run/user/0', XDG_STATE_HOME: '/x', XDG_CACHE_HOME: '/y' })), { run: '/run/qnet', state: '/var/lib/qnet', cache: '/var/cache/qnet' });
    assert.deepEqual(dirs(input(0)), { run: '/run/qnet', state: '/var/lib/qnet', cache: '/var/cache/qnet' });
  });

  test('QNET_*_DIR wins, for root and for a user (even without XDG_RUNTIME_DIR)', () => {
    const env = { QNET_RUN_DIR: '/tmp/r', QNET_STATE_DIR: '/tmp/s', QNET_CACHE_DIR: '/tmp/c' };
    assert.deepEqual(dirs(input(0, env)), { run: '/tmp/r', state: '/tmp/s', cache: '/tmp/c' });
    assert.deepEqual(dirs(input(1000, env, null)), { run: '/tmp/r', state: '/tmp/s', cache: '/tmp/c' });
  });

  test('a user: $XDG_RUNTIME_DIR/qnet, ~/.local/state/qnet, ~/.cache/qnet', () => {
    assert.deepEqual(dirs(input(1000, { XDG_RUNTIME_DIR: '/run/user/1000' })), { run: '/run/user/1000/qnet', state: '/home/u1000/.local/state/qnet', cache: '/home/u1000/.cache/qnet' });
  });

  test('a user: XDG_STATE_HOME and XDG_CACHE_HOME when absolute; a relative one is ignored (the XDG spec)', () => {
    assert.deepEqual(dirs(input(1000, { XDG_RUNTIME_DIR: '/run/user/1000', XDG_STATE_HOME: '/data/state', XDG_CACHE_HOME: '/data/cache' })), { run: '/run/user/1000/qnet', state: '/data/state/qnet', cache: '/data/cache/qnet' });
    assert.deepEqual(dirs(input(1000, { XDG_RUNTIME_DIR: '/run/user/1000', XDG_STATE_HOME: 'state', XDG_CACHE_HOME: '' })), { run: '/run/user/1000/qnet', state: '/home/u1000/.local/state/qnet', cache: '/home/u1000/.cache/qnet' });
  });

  const refused = (i: DirsInput, what: RegExp) => {
    assert.throws(
      () => resolveDir('run', i),
      (e: unknown) => {
        assert.ok(e instanceof RuntimeError, String(e));
        assert.equal(e.exitCode, 1);
        assert.match(e.message, what);
        // What to do: a session that makes it, the command root runs, or sudo.
        assert.match(e.message, new RegExp(`install -d -m 0700 -o ${i.uid} /run/user/${i.uid}`));
        assert.match(e.message, /export XDG_RUNTIME_DIR=/);
        assert.match(e.message, /sudo/);
        return true;
      },
    );
    // The state and cache directories do not need it.
    assert.equal(resolveDir('cache', i), `/home/u${i.uid}/.cache/qnet`);
  };

  test('a user without XDG_RUNTIME_DIR, or with a relative one, is refused (exit 1) saying what to do', () => {
    refused(input(1000), /^XDG_RUNTIME_DIR is not set: /);
    refused(input(1000, { XDG_RUNTIME_DIR: 'run/me' }), /^XDG_RUNTIME_DIR is "run\/me", not an absolute path/);
  });

  test('a user whose XDG_RUNTIME_DIR is missing or someone else\'s is refused', () => {
    refused(input(1000, { XDG_RUNTIME_DIR: '/run/user/1000' }, null), /XDG_RUNTIME_DIR \/run\/user\/1000 does not exist/);
    refused(input(1000, { XDG_RUNTIME_DIR: '/run/user/0' }, 0), /XDG_RUNTIME_DIR \/run\/user\/0 is owned by uid 0, not by you \(uid 1000\)/);
  });
});

describe('refused rootless', () => {
  const user = { rootless: true, uid: 1000 };
  const modes = (yaml: string) => parseTopology(yaml, 't');

  test('bridged, macnat and routed networks: exit 2 naming the network, why, and nat plus forwards instead', () => {
    for (const [file, mode] of [['bridged-lan.yaml', 'bridged'], ['wifi-macnat.yaml', 'macnat']] as const) {
      const lab = parseTopology(example(file), file);
      const issues = rootlessRefusals(lab, user);
      const net = lab.networks.find((n) => n.mode === mode)!;
      assert.deepEqual(issues.map((i) => i.path), [`networks.${net.name}.mode`], file);
      assert.match(issues[0]!.message, new RegExp(`^${mode} .*${net.uplink}.*host's own network namespace.*use a nat network and forwards.*sudo`));
    }
    const routed = modes(example('nat-dhcp.yaml').replace('mode: nat', 'mode: routed'));
    const [r] = rootlessRefusals(routed, user);
    assert.equal(r!.path, 'networks.lan.mode');
    assert.match(r!.message, /^routed needs a route on the host toward 172\.16\.1\.0\/24 .*nat network and forwards/);
  });

  test('OVN (fabric and hosts) is refused; forwards below ip_unprivileged_port_start are refused, above it kept', () => {
    const ovn = modes(example('nat-dhcp.yaml') + 'fabric: ovn\n');
    assert.deepEqual(rootlessRefusals(ovn, user).map((i) => i.path), ['fabric']);
    const low = modes(example('nat-dhcp.yaml').replace('host: 8080', 'host: 80'));
    const [f] = rootlessRefusals(low, user);
    assert.equal(f!.path, 'forwards[0].host');
    assert.match(f!.message, /port 80 is below 1024 .*sysctl net\.ipv4\.ip_unprivileged_port_start=80/);
    assert.deepEqual(rootlessRefusals(low, { ...user, unprivilegedPortStart: 80 }), []);
  });

  test('what works rootless is accepted: nat with forwards, bridges, isolated, socket, link, user-mode NICs', () => {
    for (const file of ['nat-dhcp.yaml', 'seed-lab.yaml', 'links.yaml', 'vlans.yaml'])
      assert.deepEqual(rootlessRefusals(parseTopology(example(file), file), user), [], file);
  });

  test('as root nothing is refused', () => {
    for (const file of ['bridged-lan.yaml', 'wifi-macnat.yaml', 'nat-dhcp.yaml']) {
      const lab = parseTopology(example(file), file);
      assert.deepEqual(rootlessRefusals(lab, { rootless: false }), []);
      assert.doesNotThrow(() => refuseRootless(lab, { rootless: false }, file));
    }
  });

  test('refuseRootless throws a UserError (exit 2) listing every part with its path', () => {
    const lab = modes(example('bridged-lan.yaml'));
    assert.throws(
      () => refuseRootless(lab, user, 'bridged-lan.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.exitCode, 2);
        assert.match(e.message, /^bridged-lan\.yaml: lab bridged cannot be rootless \(qnet runs as uid 1000, not root\): 1 part needs the host's own network namespace\n  networks\.\w+\.mode: bridged /);
        assert.equal(e.issues.length, 1);
        return true;
      },
    );
  });
});
