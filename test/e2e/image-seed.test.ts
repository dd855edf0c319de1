// End-to-end: seed 000's lab by the letter on real Debian guests (examples/seed-lab-debian.yaml through
// `qnet demo --image`): three overlays of one base, deb3 fetches through deb1's iptables masquerade applied by
// cloud-init, every check of the demo passes, and the host is left as it was.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { debianImage, qnet, sha256, snapshot } from './helpers.js';

test('qnet demo --image passes every check of the demo on Debian guests and leaves nothing behind', async () => {
  const image = await debianImage();
  try {
    const sum = sha256(image.file);
    const before0 = await snapshot();
    const r = await qnet(['demo', '--image', image.file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const check of [
      // The declared checks of examples/seed-lab-debian.yaml, measured by iputils' ping, netcat-openbsd and python3.
      /deb2 → deb3 \(192\.168\.1\.3\) ping, expect pass\s+pass .*measured reached \(2\/2 replies\)/,
      /deb3 → deb2 \(192\.168\.1\.2\) ping, expect pass\s+pass/,
      /deb2 → deb1 \(192\.168\.1\.254\) ping, expect pass\s+pass/,
      /deb3 → upstream tcp 80, expect pass\s+pass .*measured reached \(connected\)/,
      /deb2 → upstream ping, expect fail\s+pass .*measured not reached/,
      /deb3 fetches http:\/\/10\.0\.2\.2:8080\/ through deb1's NAT\s+pass .*not 192\.168\.1\.3/,
      /deb1 masqueraded it \(iptables counter on its uplink\)\s+pass .*\(iptables, from cloud-init\)/,
    ])
      assert.match(r.stdout, check);
    assert.match(r.stdout, /all 7 checks passed/);
    for (const n of ['deb1', 'deb2', 'deb3']) assert.match(r.stderr, new RegExp(`create ${n}'s overlay on ${image.file.replace(/[.]/g, '\\.')}`));
    assert.match(r.stderr, /guest deb1 \(powered off\)|stop 3 guests/);
    assert.deepEqual(await snapshot(), before0);
    assert.equal(sha256(image.file), sum, 'the base image is unchanged');
  } finally {
    image.remove();
  }
});
