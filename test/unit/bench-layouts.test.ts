// The bench's layouts section (issue 33), its pure half: ping output read, daemons named, the targets judged (met,
// not met, not judged while a column is not measured) and the Markdown written to BENCHMARKS.md (golden).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { daemonRow, layoutsMarkdown, median, pingRtts, targets, type LayoutResult, type LayoutsSection } from '../../bench/ovn-report.js';
import { golden } from './golden.js';

test('pingRtts reads busybox and iputils ping lines, in order', () => {
  const busybox = 'PING 10.99.0.11 (10.99.0.11): 56 data bytes\n64 bytes from 10.99.0.11: seq=0 ttl=64 time=5.564 ms\n64 bytes from 10.99.0.11: seq=1 ttl=64 time=1.2 ms\n\n--- 10.99.0.11 ping statistics ---\nround-trip min/avg/max = 1.2/3.3/5.5 ms\n';
  assert.deepEqual(pingRtts(busybox), [5.564, 1.2]);
  assert.deepEqual(pingRtts('64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms\n'), [0.045]);
  assert.deepEqual(pingRtts('no answer'), []);
});

test('daemonRow tells the central\'s three ovsdb-servers apart by their database', () => {
  assert.equal(daemonRow('ovsdb-server', 'ovsdb-server /etc/openvswitch/conf.db -vconsole:emer --remote=punix:/var/run/openvswitch/db.sock'), 'ovsdb-server (Open_vSwitch)');
  assert.equal(daemonRow('ovsdb-server', 'ovsdb-server -vconsole:off --remote=punix:/var/run/ovn/ovnnb_db.sock /var/lib/ovn/ovnnb_db.db'), 'ovsdb-server (OVN_Northbound)');
  assert.equal(daemonRow('ovsdb-server', 'ovsdb-server --remote=punix:/var/run/ovn/ovnsb_db.sock /var/lib/ovn/ovnsb_db.db'), 'ovsdb-server (OVN_Southbound)');
  assert.equal(daemonRow('ovn-controller', 'ovn-controller unix:/var/run/openvswitch/db.sock'), 'ovn-controller');
  assert.equal(daemonRow('sshd', '/usr/sbin/sshd -f x'), undefined);
});

const measured = (label: string, mbit: number, upMs: number): LayoutResult => ({
  label,
  rttMs: [1.2, 1.0, 1.4],
  mbitOut: [mbit, mbit + 20],
  mbitBack: [mbit - 10, mbit],
  up20Ms: [upMs, upMs + 200],
  restored20: [20, 20],
  down20Ms: [400, 420],
});

test('targets: met, not met, and not judged while a column is not measured', () => {
  const before = measured('bridges, qnet f3e9efb (before issue 33)', 1800, 4000);
  const now = measured('bridges (default)', 1750, 4100);
  const one = { ...measured('OVN, one host', 400, 4000), bindInstalledMs: [16, 17], bindUpMs: [21, 22] };
  const twoFast = measured('OVN, two hosts', 300, 5000);
  const twoSlow = measured('OVN, two hosts', 150, 7000);
  const t = targets([before, now, one, twoFast]);
  // min(median out, median back): one host 395, two hosts 295 → 0.75; up 5100 / 4100.
  assert.match(t.throughput, /^met: 0\.75 of one host/);
  assert.match(t.up, /^met: 1\.24× one host/);
  assert.match(t.noHosts, /^met: up 1\.02×, down 1\.00× before/);
  const t2 = targets([before, { ...now, up20Ms: [5000, 5200] }, one, twoSlow]);
  assert.match(t2.throughput, /^not met: 0\.37/);
  assert.match(t2.up, /^not met: 1\.73×/);
  assert.match(t2.noHosts, /^not met: up 1\.24×, down 1\.00× before/);
  assert.match(targets([before, { ...now, down20Ms: [500, 520] }, one, twoFast]).noHosts, /^not met: up 1\.02×, down 1\.24× before/);
  const t3 = targets([before, now, one, { label: 'OVN, two hosts', notMeasured: 'multi-host up not landed' }]);
  assert.equal(t3.throughput, 'not judged: OVN, two hosts not measured');
  assert.equal(t3.up, t3.throughput);
  assert.match(t3.noHosts, /^met/);
  assert.equal(median([3, 1, 2, 10]), 2.5);
});

test('the section\'s Markdown (golden)', () => {
  const s: LayoutsSection = {
    results: [
      measured('bridges, qnet f3e9efb (before issue 33)', 1800, 4000),
      measured('bridges (default)', 1750, 4100),
      {
        ...measured('OVN, one host', 400, 4000),
        bindInstalledMs: [16, 17, 19],
        bindUpMs: [21, 22, 25],
        rss: { a: { 'ovsdb-server (Open_vSwitch)': 7.2, 'ovs-vswitchd': 19.1, 'ovn-controller': 10.7, 'ovsdb-server (OVN_Northbound)': 7, 'ovsdb-server (OVN_Southbound)': 8.8, 'ovn-northd': 9.4 } },
      },
      { label: 'OVN, two hosts', notMeasured: 'multi-host up not landed (`qnet up` refuses labs over several hosts)' },
    ],
    setupMs: [
      { host: 'central a', ms: 452 },
      { host: 'host b', ms: 346 },
    ],
    secs: 5,
    reps: 2,
    pings: 20,
    guests: 20,
    sectionMs: 150000,
  };
  golden('bench/layouts.md', layoutsMarkdown(s, { when: '2026-12-08 01:00', machine: '2 × AMD EPYC, 24 GiB, Linux 6.1' }));
  // Two hosts measured: its memory column shows each host.
  const two = { ...measured('OVN, two hosts', 300, 5000), rss: { a: { 'ovn-controller': 11 }, b: { 'ovn-controller': 10.5 } } };
  const md = layoutsMarkdown({ ...s, results: [...s.results.slice(0, 3), two] }, { machine: 'm' });
  assert.match(md, /\| ovn-controller \| 10\.7 MiB \| a 11\.0 MiB, b 10\.5 MiB \|/);
  assert.match(md, /met: 0\.75 of one host/);
  // Two hosts measured, but its 20-guest lab refused: those rows say so, the memory is the two-guest lab's.
  const refused = { ...two, up20Ms: undefined, down20Ms: undefined, restored20: undefined, up20NotMeasured: '`qnet up` refuses it: does not fit on its hosts', rssGuests: 2 };
  const md2 = layoutsMarkdown({ ...s, results: [...s.results.slice(0, 3), refused] }, { machine: 'm' });
  assert.match(md2, /\| 20 guests: `qnet up` → every guest answers ping, median of 2 \|.*\| not measured \(below\) \| two hosts within 1\.5× of one host: not judged: OVN, two hosts with no 20-guest lab;/);
  assert.match(md2, /\nNot measured: OVN, two hosts, 20 guests: `qnet up` refuses it: does not fit on its hosts\.\n/);
  assert.match(md2, /\| ovn-controller \| 10\.7 MiB \| a 11\.0 MiB, b 10\.5 MiB \(2 guests up\) \|/);
  assert.match(md2, /met: 0\.75 of one host/);
});
