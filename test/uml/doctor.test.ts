// `qnet doctor` on a kernel with every feature qnet uses (the User-Mode Linux test host, or such a host itself):
// each kernel feature is found usable, none is a warning, and the run changes nothing.
import assert from 'node:assert/strict';
import { release } from 'node:os';
import { test } from 'node:test';
import { qnet, snapshot } from '../e2e/helpers.js';

test(`doctor on kernel ${release()} finds every kernel feature usable: tun, bridges, veth, netem, tbf, ifb, VLAN filtering, links, nftables' bridge family`, async (t) => {
  const before0 = await snapshot();
  const r = await qnet(['doctor', '--json']);
  const findings = JSON.parse(r.stdout) as Array<{ check: string; ok: boolean; warn?: boolean; detail: string }>;
  const kernel = ['/dev/net/tun', 'network namespaces', 'bridges', 'veth', 'impairments (tc)', 'VLANs (bridge VLAN filtering)', 'links (tc ingress, u32, mirred)', 'nftables bridge family'];
  for (const f of findings.filter((f) => kernel.includes(f.check))) t.diagnostic(`${f.check}: ${f.ok ? 'ok' : f.warn ? 'WARN' : 'NOT ok'}, ${f.detail}`);
  for (const name of kernel) {
    const f = findings.find((x) => x.check === name);
    assert.ok(f, `doctor has no finding "${name}": ${r.stdout}`);
    assert.equal(f.ok, true, `${name}: ${f.detail}`);
    assert.equal(f.warn, undefined, `${name}: ${f.detail}`);
    assert.doesNotMatch(f.detail, /lack|cannot|not available|missing|no bridge/i, `${name}: ${f.detail}`);
  }
  assert.match(findings.find((f) => f.check === 'impairments (tc)')!.detail, /netem, tbf and ifb usable/);
  assert.deepEqual(await snapshot(), before0);
});
