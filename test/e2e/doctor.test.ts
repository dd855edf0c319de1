// `qnet doctor` on this machine: every check passes, nothing changes; a missing piece is named with its fix.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { qnet, snapshot } from './helpers.js';

test('doctor passes here, says KVM is probed (not assumed), and changes nothing', async () => {
  const before0 = await snapshot();
  const r = await qnet(['doctor']);
  assert.equal(r.code, 0, r.stdout);
  for (const check of ['qemu', 'iproute2', 'nftables', 'dnsmasq', 'tcpdump \\(qnet capture\\)', 'graphviz \\(qnet graph --format svg\\)', 'qemu-img \\(image nodes\\)', 'xorriso \\(cloud-init seeds\\)', 'network namespaces', 'bridges', 'veth', 'nftables bridge family', 'forwarding policy'])
    assert.match(r.stdout, new RegExp(`^${check}\\s+ok`, 'm'));
  assert.match(r.stdout, /^acceleration\s+ok\s+.*(probe|TCG)/m);
  const j = await qnet(['doctor', '--json']);
  assert.equal(j.code, 0, j.stdout);
  const findings = JSON.parse(j.stdout) as Array<{ check: string; ok: boolean; detail: string }>;
  assert.ok(findings.some((f) => f.check === 'tcpdump (qnet capture)' && f.ok && /tcpdump version/.test(f.detail)));
  assert.ok(findings.every((f) => typeof f.check === 'string' && typeof f.ok === 'boolean'));
  assert.deepEqual(await snapshot(), before0);
});

test('doctor names what is missing and how to fix it, exit 1', async () => {
  const r = await qnet(['doctor'], { QNET_USER: 'no-such-qnet-user' });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /guest user no-such-qnet-user\s+FIX\s+missing/);
  assert.match(r.stdout, /useradd --system --no-create-home --shell \/usr\/sbin\/nologin no-such-qnet-user/);
});

test('a feature only some labs use, missing from this kernel, is a warning naming what will not work; doctor still passes', async () => {
  const j = await qnet(['doctor', '--json']);
  assert.equal(j.code, 0, j.stdout);
  const findings = JSON.parse(j.stdout) as Array<{ check: string; ok: boolean; warn?: boolean; detail: string; fix?: string }>;
  // An ok is never a missing piece; whatever is missing here is a warning that says what cannot be done, and how to fix it.
  for (const f of findings.filter((x) => x.ok)) assert.doesNotMatch(f.detail, /lacks|cannot|not installed|missing/, `${f.check}: ${f.detail}`);
  const warnings = findings.filter((x) => !x.ok);
  for (const f of warnings) {
    assert.equal(f.warn, true, `${f.check}: ${f.detail}`);
    assert.match(f.detail, /cannot/, f.check);
    assert.ok(f.fix, f.check);
  }
  const r = await qnet(['doctor']);
  assert.equal(r.code, 0, r.stdout);
  for (const f of warnings) {
    assert.match(r.stdout, new RegExp(`^${f.check.replace(/[()]/g, '\\$&')}\\s+warn\\s`, 'm'));
    assert.ok(r.stdout.includes(`→ ${f.check}: ${f.fix}`), f.check);
  }
  const netem = findings.find((x) => x.check === 'impairments (tc)')!;
  if (!netem.ok) assert.match(netem.detail, /netem \(sch_netem\): delay, jitter, loss, duplicate and corrupt cannot be set/);
});
