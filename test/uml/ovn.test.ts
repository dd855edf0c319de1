// OVN on a distribution kernel (run inside the User-Mode Linux test host by test/e2e/uml-kernel.test.ts when this
// machine's kernel lacks netem, directly where it has it): `qnet host setup` probes the kernel datapath and says why
// it is not used (Debian's user-mode-linux 6.1 has the openvswitch module but no conntrack zones, which OVN needs:
// its flows are refused and no port is ever bound), the userspace datapath carries a one-host lab, and netem
// impairments on an OVN NIC are measured (delay and loss on what a NIC receives, the direction the userspace
// datapath can impair). Nothing is left: lab down, OVS and OVN stopped, the underlay interface removed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { ovsKernelDatapathProblem } from '../../src/host/kernel.js';
import { RealRunner } from '../../src/host/run.js';
import { labName, qnet, snapshot, writeTopology, type HostSnapshot } from '../e2e/helpers.js';

const lab = labName('ovk');
const UNDERLAY = '192.0.2.50';
const DELAY_TOL_MS = 20;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

describe(`OVN on kernel ${release()}`, () => {
  let before0: HostSnapshot;
  let why: string | undefined;
  let setUp = false;
  const sh = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  const rtts = async (count: number) => {
    const r = await qnet(['exec', lab, 'p', '--', 'ping', '-c', String(count), '-i', '0.2', '-W', '2', '10.98.0.3']);
    return { received: Number(/(\d+) packets received/.exec(r.stdout)?.[1] ?? 0), rtts: [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])), text: r.stdout };
  };

  before(async () => {
    before0 = await snapshot();
    for (const a of [['link', 'add', 'ul0', 'type', 'dummy'], ['addr', 'add', `${UNDERLAY}/24`, 'dev', 'ul0'], ['link', 'set', 'ul0', 'up']]) assert.equal(sh(['ip', ...a]).status, 0);
    why = await ovsKernelDatapathProblem(new RealRunner());
  });
  after(async () => {
    await qnet(['down', lab]);
    if (setUp) await qnet(['host', 'stop']);
    sh(['ip', 'link', 'delete', 'ul0']);
  });

  test('host setup: the kernel datapath is taken only where it can carry OVN, and setup says why not', async (t) => {
    t.diagnostic(`kernel datapath: ${why ?? 'usable'}`);
    if (why) {
      // auto without --underlay-dev: refused, naming why the userspace datapath, before anything is started.
      const refused = await qnet(['host', 'setup', '--name', 'k1', '--underlay', UNDERLAY, '--central']);
      assert.equal(refused.code, 2, refused.stderr);
      assert.ok(refused.stderr.includes(`the userspace datapath (${why})`), refused.stderr);
      assert.equal(sh(['pgrep', '-x', 'ovs-vswitchd']).status, 1, 'nothing was started');
      const system = await qnet(['host', 'setup', '--name', 'k1', '--underlay', UNDERLAY, '--central', '--datapath', 'system']);
      assert.equal(system.code, 2, system.stderr);
      assert.ok(system.stderr.includes(`--datapath system: ${why}`), system.stderr);
    }
    const r = await qnet(['host', 'setup', '--name', 'k1', '--underlay', UNDERLAY, '--central', ...(why ? ['--underlay-dev', 'ul0'] : [])]);
    setUp = r.code === 0;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`datapath ${why ? 'netdev' : 'system'}`));
  });

  test('netem on an OVN NIC: delay 100ms and 100% loss on what q receives, measured, then cleared', async (t) => {
    const file = writeTopology({
      name: lab,
      fabric: 'ovn',
      networks: { lan: { subnet: '10.98.0.0/24', address: '10.98.0.1' } },
      nodes: { p: { nics: [{ network: 'lan', ip: '10.98.0.2' }] }, q: { nics: [{ network: 'lan', ip: '10.98.0.3' }] } },
    });
    const t0 = Date.now();
    const up = await qnet(['up', file]);
    assert.equal(up.code, 0, up.stderr);
    const clear = await rtts(20);
    assert.equal(clear.received, 20, clear.text);
    const impair = async (...args: string[]) => {
      const r = await qnet(['impair', lab, 'q', ...args]);
      assert.equal(r.code, 0, r.stderr);
    };
    await impair('--delay', '100ms', '--direction', 'ingress');
    const delayed = await rtts(20);
    await impair('--loss', '100%', '--direction', 'ingress');
    const lost = await rtts(10);
    await impair('--clear');
    const after = await rtts(10);
    const d = median(delayed.rtts) - median(clear.rtts);
    t.diagnostic(`lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s; p -> q median RTT ${median(clear.rtts)} ms clear, ${median(delayed.rtts)} ms with q's ingress delay 100ms (+${d.toFixed(1)}); ${lost.received}/10 with loss 100%; ${after.received}/10 cleared`);
    assert.ok(Math.abs(d - 100) <= DELAY_TOL_MS, `+${d} ms`);
    assert.equal(lost.received, 0, lost.text);
    assert.equal(after.received, 10, after.text);
  });

  test('down and host stop leave nothing', async () => {
    assert.equal((await qnet(['down', lab])).code, 0);
    const stop = await qnet(['host', 'stop']);
    assert.equal(stop.code, 0, stop.stderr);
    setUp = false;
    for (const d of ['ovsdb-server', 'ovs-vswitchd', 'ovn-controller', 'ovn-northd']) assert.equal(sh(['pgrep', '-x', d]).status, 1, `${d} still runs`);
    sh(['ip', 'link', 'delete', 'ul0']);
    assert.deepEqual(await snapshot(), before0);
  });
});
