// Impairments measured through qnet's CLI on a kernel with netem: run inside the User-Mode Linux test host by
// test/e2e/uml-kernel.test.ts when this machine's kernel lacks netem, directly where it has it. One lab of four
// restored guests: m measures, p, q and r carry declared impairments (p: delay and duplicate, q: delay, jitter
// and loss, r: corrupt); each is measured in force, then cleared and measured again, and the live ones (`qnet
// impair`) are measured before and after on p. Directions are told apart under 100 % duplication by the frames each
// tap hands its guest. No guest is restarted (their QEMU processes are the same at the end).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findGuestProcesses } from '../../src/qemu/process.js';
import { QNET, labName, qnet, snapshot, writeTopology, type HostSnapshot } from '../e2e/helpers.js';

const lab = labName('imp');
const IP = { m: '10.97.0.2', p: '10.97.0.3', q: '10.97.0.4', r: '10.97.0.5' };

// Tolerances, from runs inside UML (see the README's Tests section): a 100 ms delay on what p sends raises the median
// RTT by 100 ms within ±20 ms (measured +100.7 and +101.2); the 30 % loss of 200 pings is taken as 18-42 % (±3.7
// standard deviations of the binomial: a false failure about once in 5000 runs).
const DELAY_TOL_MS = 20;
const LOSS_RANGE: [number, number] = [18, 42];

interface Pings {
  sent: number;
  received: number;
  dups: number;
  /** Round-trip times of the first reply to each request, in ms. */
  rtts: number[];
  text: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};
// Interquartile range: the spread of the middle half, unmoved by a few late replies of a busy host.
const iqr = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length < 4 ? NaN : s[Math.floor(s.length * 0.75)]! - s[Math.floor(s.length * 0.25)]!;
};

describe(`impairments measured on kernel ${release()}`, () => {
  let before0: HostSnapshot;
  let pids = '';
  let upSummary = '';
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-imp-'));
  const impair = async (node: string, ...args: string[]) => {
    const r = await qnet(['impair', lab, node, ...args]);
    assert.equal(r.code, 0, `impair ${node} ${args.join(' ')}: ${r.stderr}`);
  };
  // busybox ping from m: every reply line, the duplicates marked (DUP!), and its summary.
  const ping = async (to: keyof typeof IP, count: number, interval = 0.2): Promise<Pings> => {
    const r = await qnet(['exec', lab, 'm', '--', 'ping', '-c', String(count), '-i', String(interval), '-W', '2', IP[to]]);
    const text = r.stdout;
    const sum = /(\d+) packets transmitted, (\d+) packets received(?:, (\d+) duplicates)?/.exec(text);
    assert.ok(sum, `ping ${to}: ${text}${r.stderr}`);
    const rtts = [...text.matchAll(/^\d+ bytes from .*time=([\d.]+) ms$/gm)].map((x) => Number(x[1]));
    return { sent: Number(sum[1]), received: Number(sum[2]), dups: Number(sum[3] ?? 0), rtts, text };
  };
  const guestPids = async () => (await findGuestProcesses(lab)).map((g) => `${g.node}:${g.pid}`).sort().join(' ');
  // A capture of the network while m pings `to`: tcpdump -vv's reading of it (checksums verified).
  const captured = async (to: keyof typeof IP, count: number) => {
    const file = path.join(dir, `${to}-${Date.now()}.pcap`);
    const cap = spawn(process.execPath, [QNET, 'capture', lab, 'lan', '-w', file, '--count', String(2 * count), '--filter', `icmp and host ${IP[to]}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    cap.stderr.on('data', (d) => (err += d));
    const done = new Promise<void>((r) => cap.once('close', () => r()));
    for (let i = 0; i < 300 && !/capturing network lan/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    try {
      await qnet(['exec', lab, 'm', '--', 'ping', '-c', String(count), '-i', '0.2', '-W', '2', IP[to]]);
    } finally {
      // Packets the filter no longer matches never reach the count: Ctrl-C 3 s after ping is done (tcpdump hands
      // on what it has read in its buffer's time; sooner, the last packets were missing).
      const t = setTimeout(() => cap.kill('SIGINT'), 3000);
      await done;
      clearTimeout(t);
    }
    return spawnSync('tcpdump', ['-vv', '-n', '-r', file], { encoding: 'utf8' }).stdout;
  };
  const badSums = (text: string) => (text.match(/bad cksum|wrong icmp cksum/g) ?? []).length;

  before(async () => {
    before0 = await snapshot();
    const nic = (ip: string, impair?: object) => ({ network: 'lan', ip, ...(impair ? { impair } : {}) });
    const file = writeTopology({
      name: lab,
      networks: { lan: { subnet: '10.97.0.0/24', address: '10.97.0.1' } },
      nodes: {
        m: { nics: [nic(IP.m)] },
        p: { nics: [nic(IP.p, { delay: '100ms', duplicate: '100%' })] },
        q: { nics: [nic(IP.q, { delay: '50ms', jitter: '40ms', loss: '30%' })] },
        r: { nics: [nic(IP.r, { corrupt: '100%' })] },
      },
    });
    const t0 = Date.now();
    const r = await qnet(['up', file]);
    assert.equal(r.code, 0, r.stderr);
    upSummary = `lab of 4 guests up in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
    pids = await guestPids();
    // m and the impaired guests know each other's MACs for good: with 100 % corrupt a guest's own ARP is mangled
    // too, and an echo reply that waits for an ARP answer is never sent (seen: no reply at all to capture).
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as { nodes: Array<{ name: string; nics: Array<{ mac: string }> }> };
    const mac = (n: string) => st.nodes.find((x) => x.name === n)!.nics[0]!.mac;
    const pin = (n: string, peers: Array<keyof typeof IP>) => peers.map((x) => `arp -s ${IP[x]} ${mac(x)}`).join(' && ');
    for (const [n, peers] of [['m', ['p', 'q', 'r']], ['p', ['m']], ['q', ['m']], ['r', ['m']]] as const) {
      const r = await qnet(['exec', lab, n, '--', 'sh', '-c', pin(n, [...peers])]);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    await qnet(['down', lab]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('declared on p: delay 100ms raises the RTT by 100 ms and duplicate 100% doubles every reply (DUP!); --clear takes both off', async (t) => {
    const on = await ping('p', 20);
    await impair('p', '--clear');
    const off = await ping('p', 20);
    const rise = median(on.rtts) - median(off.rtts);
    t.diagnostic(`p: median RTT ${median(off.rtts)} ms clear, ${median(on.rtts)} ms with delay 100ms: +${rise.toFixed(1)} ms; ${on.dups} DUP! of ${on.received} replies`);
    assert.ok(Math.abs(rise - 100) <= DELAY_TOL_MS, `RTT rose by ${rise} ms:\n${on.text}\n${off.text}`);
    // busybox ping stops at the last reply, before that reply's copy comes: every reply but the last has its DUP!.
    assert.ok(on.dups >= on.received - 1 && on.received >= 18, on.text);
    assert.deepEqual([off.dups, off.received], [0, 20], off.text);
  });

  test('declared on q: loss 30% loses 18-42% of 200 pings (none of 50 cleared) and jitter ±40ms widens the spread; --clear gives all back', async (t) => {
    const on = await ping('q', 200, 0.05);
    await impair('q', '--clear');
    const off = await ping('q', 50, 0.05);
    const lost = (100 * (on.sent - on.received)) / on.sent;
    t.diagnostic(`q: ${lost.toFixed(1)}% of 200 lost with loss 30%, ${off.sent - off.received} of 50 without; RTT IQR ${iqr(on.rtts).toFixed(1)} ms with jitter 40ms, ${iqr(off.rtts).toFixed(1)} ms without`);
    assert.ok(lost >= LOSS_RANGE[0] && lost <= LOSS_RANGE[1], `${lost}% lost:\n${on.text.slice(-300)}`);
    assert.equal(off.received, off.sent, off.text.slice(-300));
    assert.ok(iqr(on.rtts) >= 20 && iqr(on.rtts) > 2 * iqr(off.rtts), `IQR ${iqr(on.rtts)} vs ${iqr(off.rtts)}`);
  });

  test('declared on r: corrupt 100% shows bad checksums in a capture of the network (tcpdump -vv); --clear: none, and ping works', async (t) => {
    const on = await captured('r', 10);
    await impair('r', '--clear');
    const off = await captured('r', 10);
    t.diagnostic(`r: ${badSums(on)} bad checksums in the capture with corrupt 100%, ${badSums(off)} without`);
    assert.ok(badSums(on) >= 5, on);
    assert.equal(badSums(off), 0, off);
    assert.equal((off.match(/ICMP echo reply/g) ?? []).length, 10, off);
  });

  test('live on p (qnet impair): delay, then jitter on top of it, each measured before and after, and cleared', async (t) => {
    const base = await ping('p', 20, 0.1);
    await impair('p', '--delay', '100ms');
    const delayed = await ping('p', 20, 0.1);
    await impair('p', '--delay', '100ms', '--jitter', '40ms');
    // 60 pings, not 20: the sample IQR of netem's uniform ±40 ms is 38 ± 8.5 ms (sd) from 20 pings, below 20 ms about
    // once in 60 runs (seen once: 17.3 ms); from 60 it is 39 ± 5 ms, below 20 ms about once in 14,000.
    const jittered = await ping('p', 60, 0.05);
    await impair('p', '--clear');
    const cleared = await ping('p', 10, 0.1);
    const rise = median(delayed.rtts) - median(base.rtts);
    t.diagnostic(`p live: median RTT ${median(base.rtts)} -> ${median(delayed.rtts)} ms (+${rise.toFixed(1)}); IQR ${iqr(delayed.rtts).toFixed(1)} -> ${iqr(jittered.rtts).toFixed(1)} ms with jitter 40ms; ${median(cleared.rtts)} ms cleared`);
    assert.ok(Math.abs(rise - 100) <= DELAY_TOL_MS, `RTT rose by ${rise} ms:\n${delayed.text}`);
    assert.ok(iqr(jittered.rtts) >= 20 && iqr(jittered.rtts) > 2 * iqr(delayed.rtts), `IQR ${iqr(delayed.rtts)} -> ${iqr(jittered.rtts)}`);
    assert.ok(median(cleared.rtts) < median(base.rtts) + DELAY_TOL_MS, cleared.text);
  });

  test('live on p: loss 30% of 200 pings, then 100% loses them all; cleared, all come back', async (t) => {
    const base = await ping('p', 20, 0.1);
    await impair('p', '--loss', '30%');
    const some = await ping('p', 200, 0.05);
    await impair('p', '--loss', '100%');
    const all = await ping('p', 20, 0.1);
    await impair('p', '--clear');
    const back = await ping('p', 20, 0.1);
    const lost = (100 * (some.sent - some.received)) / some.sent;
    t.diagnostic(`p live: ${base.sent - base.received}/20 lost before, ${lost.toFixed(1)}% of 200 with loss 30%, ${all.received}/20 received with 100%, ${back.received}/20 cleared`);
    assert.equal(base.received, base.sent);
    assert.ok(lost >= LOSS_RANGE[0] && lost <= LOSS_RANGE[1], `${lost}% lost`);
    assert.equal(all.received, 0, all.text);
    assert.equal(back.received, 20, back.text);
  });

  test('live on p: duplicate 100% shows DUP! and corrupt 100% bad checksums, none before, none after --clear', async (t) => {
    const base = await ping('p', 10);
    await impair('p', '--duplicate', '100%');
    const dup = await ping('p', 10);
    await impair('p', '--clear');
    const clean = await captured('p', 10);
    await impair('p', '--corrupt', '100%');
    const bad = await captured('p', 10);
    await impair('p', '--clear');
    const after1 = await ping('p', 10);
    t.diagnostic(`p live: ${dup.dups} DUP! of ${dup.received} replies with duplicate 100%; ${badSums(clean)} bad checksums before corrupt 100%, ${badSums(bad)} with it`);
    assert.deepEqual([base.dups, base.received], [0, 10], base.text);
    assert.ok(dup.dups >= dup.received - 1 && dup.received >= 9, dup.text);
    assert.equal(badSums(clean), 0, clean);
    assert.ok(badSums(bad) >= 5, bad);
    assert.deepEqual([after1.dups, after1.received], [0, 10], after1.text);
  });

  test('direction: duplicate 100% on p egress doubles what m receives, ingress what p receives, both each (what each tap hands its guest)', async (t) => {
    const N = 10;
    // Frames each tap handed its guest (its transmit counter: after the tap's own queue, as the guest receives them).
    const handed = (n: string) => {
      const j = JSON.parse(spawnSync('ip', ['-n', `qnet-${lab}`, '-s', '-j', 'link', 'show', 'dev', `t-${n}-0`], { encoding: 'utf8' }).stdout) as Array<{ stats64: { tx: { packets: number } } }>;
      return j[0]!.stats64.tx.packets;
    };
    const seen: Record<string, { p: number; m: number }> = {};
    for (const d of ['none', 'egress', 'ingress', 'both']) {
      if (d === 'none') await impair('p', '--clear');
      else await impair('p', '--duplicate', '100%', '--direction', d);
      const [p0, m0] = [handed('p'), handed('m')];
      await ping('p', N, 0.1);
      seen[d] = { p: handed('p') - p0, m: handed('m') - m0 };
    }
    await impair('p', '--clear');
    t.diagnostic(`frames handed to p and m for ${N} pings from m: ${JSON.stringify(seen)}`);
    // A few ARP frames (duplicated too) may come on top of the echo requests and replies.
    const about = (got: number, want: number) => got >= want && got <= want + 6;
    const is = (d: string, p: number, m: number) => assert.ok(about(seen[d]!.p, p) && about(seen[d]!.m, m), `${d}: ${JSON.stringify(seen[d])}, expected p ${p}, m ${m}`);
    is('none', N, N);
    is('egress', N, 2 * N);
    is('ingress', 2 * N, 2 * N);
    is('both', 2 * N, 4 * N);
  });

  test('qnet check through a 4 s delay on p: what the first probes (3 s) miss is tried again with a longer wait, and check agrees with the model', async (t) => {
    const t0 = Date.now();
    // p and its peers (the lab namespace too) know each other's MACs for good: ARP through a 4 s delay would give
    // up after its 3 s (the entry FAILED), which is not what this measures.
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as { nodes: Array<{ name: string; nics: Array<{ mac: string }> }> };
    const mac = (n: string) => st.nodes.find((x) => x.name === n)!.nics[0]!.mac;
    const addrs = JSON.parse(spawnSync('ip', ['-n', `qnet-${lab}`, '-j', 'addr', 'show'], { encoding: 'utf8' }).stdout) as Array<{ ifname: string; address: string; addr_info: Array<{ local: string }> }>;
    const hostSide = addrs.find((l) => l.addr_info.some((a) => a.local === '10.97.0.1'))!;
    for (const [n, pins] of [['p', [['m', IP.m, mac('m')], ['q', IP.q, mac('q')], ['r', IP.r, mac('r')], ['host', '10.97.0.1', hostSide.address]]], ['q', [['p', IP.p, mac('p')]]], ['r', [['p', IP.p, mac('p')]]]] as const) {
      const r = await qnet(['exec', lab, n, '--', 'sh', '-c', pins.map(([, ip, m]) => `arp -s ${ip} ${m}`).join(' && ')]);
      assert.equal(r.code, 0, r.stderr);
    }
    const pinned = spawnSync('ip', ['-n', `qnet-${lab}`, 'neigh', 'replace', IP.p, 'lladdr', mac('p'), 'dev', hostSide.ifname, 'nud', 'permanent'], { encoding: 'utf8' });
    assert.equal(pinned.status, 0, pinned.stderr);
    await impair('p', '--delay', '4s');
    const r = await qnet(['check', lab, '--json']);
    await impair('p', '--clear');
    const rep = JSON.parse(r.stdout) as { cells: Array<{ from: string; to: string; probe: string; measured?: { ok: boolean; detail?: string } }>; disagreements: unknown[]; ms: number };
    const second = rep.cells.filter((c) => /second try/.test(c.measured?.detail ?? ''));
    t.diagnostic(`check in ${(rep.ms / 1000).toFixed(1)} s (${((Date.now() - t0) / 1000).toFixed(1)} s with the pins); ${second.length} probes reached on the second try: ${second.map((c) => `${c.from}→${c.to} ${c.probe}`).join(', ')}`);
    assert.deepEqual(rep.disagreements, [], r.stdout);
    assert.equal(r.code, 0, r.stderr);
    // Every probe to or from p needs the second try (its RTT is 4 s); none of the others does.
    assert.ok(second.length >= 4 && second.every((c) => c.measured!.ok && (c.from === 'p' || /^p\b/.test(c.to))), JSON.stringify(second));
  });

  test('no guest was restarted, and down leaves nothing', async (t) => {
    t.diagnostic(upSummary);
    assert.equal(await guestPids(), pids);
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as { nodes: Array<{ nics: Array<{ impair?: string }> }> };
    assert.deepEqual(st.nodes.flatMap((n) => n.nics.map((x) => x.impair ?? null)), [null, null, null, null]);
    const d = await qnet(['down', lab]);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await snapshot(), before0);
  });
});
