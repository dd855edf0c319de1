// qnet capture and link, pure parts: NODE[:NIC] references, what a target captures (tap, bridge, or a NIC's netdev
// by QEMU's filter-dump), tcpdump's arguments (a filter never read as options), and counting a pcap stream.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { captureSource, isReaderGone, isTcpdumpChatter, tcpdumpArgs, tcpdumpStderr } from '../../src/lab/capture.js';
import { resolveNicRef } from '../../src/lab/nicref.js';
import { PcapCounter } from '../../src/lab/pcap.js';
import { parseTopology } from '../../src/topology/load.js';
import { ROOT } from './golden.js';

const seed = parseTopology(readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8'), 'seed-lab.yaml');
const wired = parseTopology(
  `name: wired
networks:
  wire: { mode: socket }
nodes:
  a: { nics: [{ network: wire }] }
  b: { nics: [{ network: wire }] }
`,
  'wired.yaml',
);
const bad = (re: RegExp) => (e: Error & { exitCode?: number }) => e.exitCode === 2 && re.test(e.message);

test('NODE[:NIC]: by position, by the guest\'s name, alone for a node with one NIC; anything else names what exists', () => {
  assert.equal(resolveNicRef(seed, 'deb1:1').nic.tap, 'ktap1');
  assert.equal(resolveNicRef(seed, 'deb1:eth1').nic.tap, 'ktap1');
  assert.equal(resolveNicRef(seed, 'deb1:eth0').nic.kind, 'user');
  assert.equal(resolveNicRef(seed, 'deb2').nic.tap, 'ktap2');
  assert.throws(() => resolveNicRef(seed, 'deb1'), bad(/deb1 has 2 NICs; say which: deb1:eth0, deb1:eth1/));
  assert.throws(() => resolveNicRef(seed, 'deb9:0'), bad(/no node "deb9" \(nodes: deb1, deb2, deb3\)/));
  assert.throws(() => resolveNicRef(seed, 'deb2:eth3'), bad(/deb2 has no NIC "eth3" \(its NICs: eth0, or 0\.\.0\)/));
  assert.throws(() => resolveNicRef(seed, 'deb2:5'), bad(/no NIC "5"/));
});

test('a capture target: a bridge NIC is its tap, a network its bridge, a user-mode or socket NIC its netdev', () => {
  assert.deepEqual(captureSource(seed, 'deb2'), { kind: 'iface', iface: 'ktap2', netns: 'qnet-seed', what: 'deb2 eth0' });
  assert.deepEqual(captureSource(seed, 'lan'), { kind: 'iface', iface: 'kbr0', netns: 'qnet-seed', what: 'network lan' });
  assert.deepEqual(captureSource(seed, 'deb1:0'), { kind: 'netdev', node: 'deb1', netdev: 'net0', what: 'deb1 eth0' });
  assert.deepEqual(captureSource(wired, 'wire'), { kind: 'netdev', node: 'a', netdev: 'net0', what: 'network wire (at a eth0)' });
  assert.deepEqual(captureSource(seed, 'lan', true), { kind: 'iface', iface: 'kbr0', netns: 'qnet-seed', what: 'network lan' });
  assert.throws(() => captureSource(seed, 'wan'), bad(/no node or network of that name \(nodes: deb1, deb2, deb3; networks: lan\)/));
  assert.throws(() => captureSource(seed, 'deb2', true), bad(/no network of that name/));
});

test('tcpdump arguments: pcap unbuffered to stdout or text line by line, the count, the filter after "--"', () => {
  assert.deepEqual(tcpdumpArgs({ iface: 'ktap2' }, { pcap: true, count: 5, filter: ['icmp'] }), ['-i', 'ktap2', '-n', '-U', '-w', '-', '-c', '5', '--', 'icmp']);
  assert.deepEqual(tcpdumpArgs('stdin', { pcap: false }), ['-r', '-', '-n', '-l']);
  // A filter that looks like an option stays a filter (tcpdump's -z would run a program).
  assert.deepEqual(tcpdumpArgs({ iface: 't' }, { pcap: false, filter: ['-z', 'sh'] }).slice(-3), ['--', '-z', 'sh']);
});

test('counting a pcap stream in chunks of any size, in either byte order', () => {
  const header = (le: boolean) => {
    const b = Buffer.alloc(24);
    if (le) b.writeUInt32LE(0xa1b2c3d4, 0);
    else b.writeUInt32BE(0xa1b2c3d4, 0);
    return b;
  };
  const record = (len: number, le: boolean) => {
    const h = Buffer.alloc(16);
    if (le) h.writeUInt32LE(len, 8);
    else h.writeUInt32BE(len, 8);
    return Buffer.concat([h, Buffer.alloc(len, 0xab)]);
  };
  for (const le of [true, false]) {
    const stream = Buffer.concat([header(le), record(60, le), record(0, le), record(1514, le), record(42, le)]);
    for (const size of [1, 3, 16, 17, 1000, stream.length]) {
      const c = new PcapCounter();
      for (let i = 0; i < stream.length; i += size) c.push(stream.subarray(i, i + size));
      assert.equal(c.packets, 4, `${le ? 'little' : 'big'}-endian in chunks of ${size}`);
    }
  }
});

test("tcpdump's chatter is left out (listening, reading, packet counts), its errors are not", () => {
  for (const l of [
    'tcpdump: listening on t-p-0, link-type EN10MB (Ethernet), snapshot length 262144 bytes',
    'reading from file -, link-type EN10MB (Ethernet), snapshot length 65536',
    'tcpdump: verbose output suppressed, use -v[v]... for full protocol decode',
    '5 packets captured',
    '1 packet captured',
    '7 packets received by filter',
    '0 packets dropped by kernel',
  ])
    assert.ok(isTcpdumpChatter(l), l);
  for (const l of [
    'tcpdump: t-p-9: No such device exists',
    'tcpdump: pcap_loop: The interface disappeared',
    "tcpdump: syntax error in filter expression: syntax error",
    'tcpdump: unknown file format',
    ', link-type EN10MB (Ethernet)',
  ])
    assert.ok(!isTcpdumpChatter(l), l);
});

test("tcpdump's stderr is passed on by whole lines: a line written in pieces is still known as chatter", () => {
  const out: string[] = [];
  const f = tcpdumpStderr((l) => out.push(l));
  // As tcpdump -r - writes it (three writes for one line), then an error cut across chunks, then one left unended.
  for (const chunk of ['reading from file -', ', link-type EN10MB (Ethernet)', ', snapshot length 65536\n', 'tcpdump: pcap_loop: trunc', 'ated dump file\n2 packets captured\n', 'tcpdump: last words'])
    f.push(chunk);
  assert.deepEqual(out, ['tcpdump: pcap_loop: truncated dump file\n']);
  f.end();
  assert.deepEqual(out, ['tcpdump: pcap_loop: truncated dump file\n', 'tcpdump: last words\n']);
});

test('a write failing because its reader is gone is a normal end; any other failure is not', () => {
  for (const code of ['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED']) assert.ok(isReaderGone(Object.assign(new Error(code), { code })), code);
  for (const code of ['ENOSPC', 'EIO', undefined]) assert.ok(!isReaderGone(Object.assign(new Error(String(code)), { code })), String(code));
});
