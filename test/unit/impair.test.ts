// Impairments, pure parts: values as written (times, shares, rates), what the schema refuses and where, the tc and
// ip lines on a tap and its ifb for each direction (golden), and how status says it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labImpairments, nicImpairment, qdiscLines } from '../../src/render/impair.js';
import { renderLinkBatch } from '../../src/render/ipbatch.js';
import { describeImpairment, needsNetem, parseRate, parseShare, parseTime } from '../../src/topology/impair.js';
import { parseTopology } from '../../src/topology/load.js';
import { golden } from './golden.js';
import { formatPlan, planUp, type PlanContext } from '../../src/plan/plan.js';
import { renderShellExport } from '../../src/render/export-sh.js';

const lab = (impair: string, extra = '') =>
  parseTopology(
    `name: imp
networks:
  lan: { subnet: 10.60.0.0/24 }
${extra.includes('wire') ? '  wire: { mode: socket }\n' : ''}nodes:
  a: { nics: [{ network: lan, ip: 10.60.0.2, impair: ${impair} }${extra.includes('wire') ? ', { network: wire }' : ''}] }
  b: { nics: [{ network: lan, ip: 10.60.0.3 }${extra}] }
`,
    'imp.yaml',
  );
const refused = (impair: string, re: RegExp, extra = '') =>
  assert.throws(() => lab(impair, extra), (e: Error & { exitCode?: number }) => e.exitCode === 2 && re.test(e.message), `${impair} ${extra}`);

test('values: times in us/ms/s, shares in %, rates in tc units', () => {
  assert.equal(parseTime('20ms'), 20_000);
  assert.equal(parseTime('1.5s'), 1_500_000);
  assert.equal(parseTime('250us'), 250);
  assert.equal(parseTime('fast'), undefined);
  assert.equal(parseTime('20'), undefined);
  assert.equal(parseShare('0.5%'), 0.5);
  assert.equal(parseShare('5'), undefined);
  assert.equal(parseRate('10mbit'), 10_000_000);
  assert.equal(parseRate('512Kbit'), 512_000);
  assert.equal(parseRate('10mb'), undefined);
});

test("rates in every unit of tc's: bit and bps (bytes: 1mbps is 8mbit), SI and IEC prefixes, any letter case", () => {
  for (const [text, bits] of [
    ['8000bit', 8000],
    ['64kbit', 64_000],
    ['10mbit', 10_000_000],
    ['1gbit', 1e9],
    ['1tbit', 1e12],
    ['1000bps', 8000],
    ['1kbps', 8000],
    ['2mbps', 16_000_000],
    ['2MBps', 16_000_000],
    ['1gbps', 8e9],
    ['1kibit', 1024],
    ['1mibit', 1_048_576],
    ['1MiBps', 8_388_608],
    ['1.5mbit', 1_500_000],
    [' 10Mbit ', 10_000_000],
  ] as const)
    assert.equal(parseRate(text), bits, text);
  for (const text of ['10', '10mb', '10mbits', '10 mbit', 'mbit', '-1mbit', '10kibps2', '1e6bit']) assert.equal(parseRate(text), undefined, text);
});

test('a rate in bytes per second is taken (as tc takes it) and said in bits; a bad unit is named once, with the units', () => {
  const a = lab('{ rate: 2mbps }').nodes[0]!.nics[0]!;
  assert.equal(a.impair!.rateBps, 16_000_000);
  assert.equal(describeImpairment(a.impair!), 'rate 16mbit, egress');
  assert.throws(
    () => lab('{ rate: 2mb }'),
    (e: Error) => /impair\.rate: rate is a rate like 10mbit.*bps, kbps, mbps, gbps \(bytes per second, as in tc: 1mbps is 8mbit\)/.test(e.message) && !/at least/.test(e.message),
  );
});

test('the topology: each bad value refused with its path (exit 2)', () => {
  refused('{ delay: fast }', /nodes\.a\.nics\[0\]\.impair\.delay: delay is a time like 20ms/);
  refused('{ loss: 150% }', /nodes\.a\.nics\[0\]\.impair\.loss: loss is at most 100%/);
  refused('{ loss: "5" }', /impair\.loss: loss is a share like 1%/);
  refused('{ rate: 10mb }', /impair\.rate: rate is a rate like 10mbit/);
  refused('{ rate: 1kbit }', /impair\.rate: rate is at least 8kbit/);
  refused('{ delay: 61s }', /impair\.delay: delay is at most 60s/);
  refused('{ jitter: 5ms }', /impair\.jitter: jitter needs a delay/);
  refused('{ direction: up }', /impair\.direction/);
  refused('{ delay: 1ms, speed: 3 }', /impair: .*speed/);
  refused('{ delay: 1ms }', /nodes\.b\.nics\[1\]\.impair: impairments go on a tap: a NIC on a socket network has none/, ', { network: wire, impair: { delay: 1ms } }');
  refused('{ delay: 1ms }', /nodes\.b\.nics\[1\]\.impair: impairments go on a tap: a user-mode NIC has none/, ', { user: {}, impair: { delay: 1ms } }');
});

test('resolved: numbers and the direction (egress by default); an empty block impairs nothing', () => {
  const a = lab('{ delay: 100ms, jitter: 5ms, loss: 1%, rate: 10mbit, duplicate: 0.5%, corrupt: 0.1% }').nodes[0]!.nics[0]!;
  assert.deepEqual(a.impair, { direction: 'egress', delayUs: 100_000, jitterUs: 5000, lossPct: 1, rateBps: 10_000_000, duplicatePct: 0.5, corruptPct: 0.1 });
  assert.equal(describeImpairment(a.impair!), 'delay 100ms ±5ms, loss 1%, duplicate 0.5%, corrupt 0.1%, rate 10mbit, egress');
  assert.equal(lab('{}').nodes[0]!.nics[0]!.impair, undefined);
});

test('tc lines: netem alone, tbf alone, netem with tbf under it', () => {
  assert.deepEqual(qdiscLines('t', { direction: 'ingress', delayUs: 20000 }), ['qdisc replace dev t root handle 1: netem delay 20000us']);
  assert.deepEqual(qdiscLines('t', { direction: 'ingress', rateBps: 10_000_000 }), ['qdisc replace dev t root handle 1: tbf rate 10000000bit burst 12500b limit 62500b']);
  assert.deepEqual(qdiscLines('t', { direction: 'ingress', lossPct: 50, rateBps: 8000 }), [
    'qdisc replace dev t root handle 1: netem loss 50%',
    'qdisc replace dev t parent 1:1 handle 10: tbf rate 8000bit burst 3200b limit 6400b',
  ]);
});

test('100% loss is a FIFO of length 0 (drops every packet; no netem needed), whatever else is asked', () => {
  assert.deepEqual(qdiscLines('t', { direction: 'ingress', lossPct: 100, rateBps: 8000, delayUs: 1000 }), ['qdisc replace dev t root handle 1: pfifo limit 0']);
  assert.equal(needsNetem({ direction: 'both', lossPct: 100, delayUs: 1000 }), false);
  assert.equal(needsNetem({ direction: 'both', lossPct: 99.9 }), true);
});

test('each direction: ingress on the tap, egress through the NIC\'s ifb, both on both (golden)', () => {
  const out: string[] = [];
  for (const direction of ['ingress', 'egress', 'both'] as const) {
    const r = nicImpairment('imp', 'a', { index: 0, tap: 't-a-0' }, { direction, delayUs: 50_000, jitterUs: 5000, rateBps: 1_000_000 });
    out.push(`# ${direction}`, '## ip -batch', ...r.ip, '## tc -batch', ...r.tc);
  }
  golden('impair-directions.txt', out.join('\n') + '\n');
  // The lab's link batch makes the ifbs; the tc batch is the plan's next step.
  const l = lab('{ delay: 100ms }');
  assert.match(renderLinkBatch(l, '999'), /link add name qi[0-9a-f]{8} type ifb\nlink set dev qi[0-9a-f]{8} alias qnet:lab=imp up\n$/);
  assert.equal(labImpairments(l).nics.length, 1);
});

test('the plan: the ifbs in the link batch, then one tc -batch step, before any guest starts (golden)', () => {
  const ctx: PlanContext = { image: { kernel: '/img/vmlinuz', initrd: '/img/initrd.img', cmdline: 'console=ttyS0' }, accel: 'tcg', user: 'qnet', userIds: { uid: 995, gid: 995 }, guestIds: { uid: 1900001000, gid: 1900001000 } };
  const steps = planUp(lab('{ delay: 100ms, rate: 1mbit, direction: both }'), ctx);
  const titles = steps.map((s) => s.title);
  const tc = titles.findIndex((t) => t.startsWith('impair 1 NIC: a NIC 0 (delay 100ms, rate 1mbit, both) (one tc -batch)'));
  assert.ok(tc > titles.findIndex((t) => /one ip -batch/.test(t)) && tc < titles.findIndex((t) => /^(start|restore|boot) /.test(t)), titles.join('\n'));
  assert.match(steps[tc]!.hint!, /netem \(CONFIG_NET_SCH_NETEM/);
  golden('plan-impair.txt', formatPlan(steps) + '\n');
});

test('the shell export carries the same ifb and traffic control in ifup.sh', () => {
  const files = renderShellExport(lab('{ rate: 1mbit, direction: both }'), { image: { kernel: '/k', initrd: '/i', cmdline: 'c' }, accel: 'tcg', ids: { uid: 1900001000, gid: 1900001000 }, dnsUser: 'qnet', dir: '/x', ledger: '/run/qnet/host-forwarding.json' }).files;
  const ifup = files['ifup.sh']!;
  assert.match(ifup, /\nip -n qnet-imp link add name qi[0-9a-f]{8} type ifb\n/);
  assert.match(ifup, /\n# a eth0: rate 1mbit, both\nip netns exec qnet-imp tc /);
  assert.match(ifup, /\nip netns exec qnet-imp tc qdisc replace dev t-a-0 root handle 1: tbf rate 1000000bit burst 3200b limit 6400b\n/);
  assert.match(ifup, /\nip netns exec qnet-imp tc filter add dev t-a-0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev qi[0-9a-f]{8}\n/);
});
