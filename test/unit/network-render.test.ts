// Golden files for every network mode: the host's nft table, the uplink batches, dnsmasq configuration and hosts,
// guest configurations (DHCP, static on nat/routed) and the plan. Regenerate with UPDATE_GOLDEN=1 and review.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatPlan, planUp } from '../../src/plan/plan.js';
import { dnsmasqFiles, renderDnsmasqConf, renderDnsmasqHosts } from '../../src/render/dnsmasq.js';
import { renderGuestConfig } from '../../src/render/guest-config.js';
import { renderLinkBatch } from '../../src/render/ipbatch.js';
import {
  renderHostRuleset,
  renderUplinkHostBatch,
  renderUplinkLabBatch,
  renderUplinkRoutes,
  uplinkCandidates,
  uplinkHostIf,
} from '../../src/render/uplink.js';
import { golden } from './golden.js';
import { parseTopology } from '../../src/topology/load.js';
import { renderGuardRuleset } from '../../src/render/guard.js';
import { UserError } from '../../src/errors.js';

process.env.QNET_RUN_DIR = '/run/qnet';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const lab = parseTopology(readFileSync(path.join(ROOT, 'test', 'fixtures', 'nets.yaml'), 'utf8'), 'nets.yaml');
const UP = { net: (100 << 24) | (64 << 16) | (1 << 8) | 4 };


describe('network modes render as their golden files', () => {
  test('host nft table', () => golden('nets-host.nft', renderHostRuleset(lab)));
  test('uplink batches', () =>
    golden('nets-uplink.batch', `# host\n${renderUplinkHostBatch(lab, UP)}# lab\n${renderUplinkLabBatch(lab, UP)}# routes\n${renderUplinkRoutes(lab, UP)}`));
  test('links: isolated, nat and routed networks are all bridges; no address on the isolated one', () => {
    const batch = renderLinkBatch(lab, 'qnet');
    golden('nets-links.batch', batch);
    assert.doesNotMatch(batch, /dev br-iso\n?.*addr/);
    assert.match(batch, /addr add 172\.16\.1\.1\/24 dev br0/);
  });
  for (const net of ['lan', 'rt'])
    test(`dnsmasq for ${net}`, () => {
      const n = lab.networks.find((x) => x.name === net)!;
      golden(`nets-dnsmasq-${net}.conf`, renderDnsmasqConf(lab, n, { ...dnsmasqFiles('/run/qnet/nets/dnsmasq', net), hosts: '/run/qnet/nets/dnsmasq/hosts' }, 'qnet'));
    });
  test('anti-spoofing and DHCP guard', () => golden('nets-guard.nft', renderGuardRuleset(lab)));
  test('dnsmasq hosts', () => golden('nets-dnsmasq.hosts', renderDnsmasqHosts(lab)));
  for (const node of ['win', 'deb', 'r1']) test(`guest config ${node}`, () => golden(`nets-${node}.conf`, renderGuestConfig(lab, lab.nodes.find((n) => n.name === node)!)));
  test('plan', () =>
    golden('nets-plan.txt', formatPlan(planUp(lab, { image: { kernel: '/img/vmlinux', initrd: '/img/initrd.img', cmdline: 'console=ttyS0' }, accel: 'tcg', user: 'qnet', userIds: { uid: 995, gid: 995 }, guestIds: { uid: 1900001000, gid: 1900001000 }, uplink: UP, hostForwarding: false }))));
});

describe('network rules', () => {
  test('dnsmasq binds its bridge only and gives routers only on nat/routed networks', () => {
    const conf = renderDnsmasqConf(lab, lab.networks[0]!, { ...dnsmasqFiles('/d', 'lan'), hosts: '/d/hosts' }, 'qnet');
    assert.match(conf, /^interface=br0$/m);
    assert.match(conf, /^bind-interfaces$/m);
    assert.match(conf, /^dhcp-host=00:26:c6:21:cf:02,172\.16\.1\.2,win$/m);
    assert.match(conf, /^dhcp-option=option:router,172\.16\.1\.1$/m);
  });
  test('the host table masquerades only nat subnets and forwards only declared ports', () => {
    const t = renderHostRuleset(lab);
    assert.match(t, /ip saddr \{ 172\.16\.1\.0\/24 \} oifname != "qn[0-9a-f]{8}" masquerade/);
    assert.doesNotMatch(t, /10\.77\.0\.0\/24 \} oifname != .* masquerade/);
    assert.equal((t.match(/dnat to/g) ?? []).length, 4); // 2 forwards x (prerouting, output)
  });
  test('uplink names fit the kernel and candidates stay in 100.64.0.0/16', () => {
    assert.ok(uplinkHostIf('a-very-long-lab-name-xyz').length <= 15);
    for (const c of uplinkCandidates('x', 100)) assert.equal(c >>> 16, (100 << 8) | 64);
  });
  const bad: Array<[string, string, RegExp]> = [
    ['nat without subnet', 'networks: { n: { mode: nat, address: 10.0.0.1 } }', /networks\.n\.subnet/],
    ['isolated with an address', 'networks: { n: { mode: isolated, subnet: 10.0.0.0/24, address: 10.0.0.1 } }', /networks\.n\.address/],
    ['dhcp without address', 'networks: { n: { subnet: 10.0.0.0/24, dhcp: { range: 10.0.0.2-10.0.0.9 } } }', /networks\.n\.dhcp/],
    ['dhcp range backwards', 'networks: { n: { subnet: 10.0.0.0/24, address: 10.0.0.1, dhcp: { range: 10.0.0.9-10.0.0.2 } } }', /networks\.n\.dhcp\.range/],
    ['dhcp range outside subnet', 'networks: { n: { subnet: 10.0.0.0/24, address: 10.0.0.1, dhcp: { range: 10.0.1.2-10.0.1.9 } } }', /networks\.n\.dhcp\.range/],
    ['dhcp range over the gateway', 'networks: { n: { subnet: 10.0.0.0/24, address: 10.0.0.5, dhcp: { range: 10.0.0.2-10.0.0.9 } } }', /includes the network's own address/],
    ['bad lease time', 'networks: { n: { subnet: 10.0.0.0/24, address: 10.0.0.1, dhcp: { range: 10.0.0.2-10.0.0.9, lease: soon } } }', /networks\.n\.dhcp\.lease/],
    ['subnet with host bits', 'networks: { n: { subnet: 10.0.0.5/24 } }', /host bits set; did you mean 10\.0\.0\.0\/24/],
  ];
  for (const [why, nets, re] of bad)
    test(`rejects ${why}`, () => {
      assert.throws(() => parseTopology(`name: x\n${nets}\nnodes: { a: {} }\n`), (e: Error) => e instanceof UserError && re.test(e.message));
    });
  test('rejects a static address inside the DHCP range, a forward to an unknown node, and a duplicate host port', () => {
    const base = 'name: x\nnetworks: { n: { mode: nat, subnet: 10.0.0.0/24, address: 10.0.0.1, dhcp: { range: 10.0.0.2-10.0.0.9 } } }\n';
    assert.throws(() => parseTopology(`${base}nodes: { a: { nics: [{ network: n, ip: 10.0.0.5 }] } }\n`), /inside networks\.n\.dhcp\.range/);
    assert.throws(() => parseTopology(`${base}forwards: [{ host: 80, node: b, port: 80 }]\nnodes: { a: {} }\n`), /forwards\[0\]\.node: unknown node "b"/);
    assert.throws(
      () => parseTopology(`${base}forwards: [{ host: 80, node: a, port: 80 }, { host: 80, node: a, port: 81 }]\nnodes: { a: { nics: [{ network: n, ip: 10.0.0.20 }] } }\n`),
      /forwards\[1\]\.host: tcp port 80 is already forwarded/,
    );
    assert.throws(() => parseTopology(`${base}nodes: { a: { nics: [{ network: n, dhcp: true }] } }\nforwards: [{ host: 80, node: a, port: 80 }]\n`), /no known address on a nat or routed network/);
  });
});
