// `qnet capture`: the packets of one NIC or one network of a running lab. A NIC on a bridge, or a network's bridge,
// is captured by tcpdump on its tap (or bridge) inside the lab namespace (on OVN: on its tap in the host namespace,
// where it is a port of br-int; a logical switch has no interface, so an OVN network is captured from a mirror of its
// ports onto a port made for the capture); a user-mode or socket NIC has no host
// interface, so QEMU's filter-dump writes its packets into a FIFO qnet reads and hands to tcpdump. Either way
// tcpdump applies the filter and the count and writes pcap (or text); qnet passes it on, counting the packets.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, createWriteStream, existsSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { insideHolder, nodeDir } from '../dirs.js';
import { RuntimeError, UserError } from '../errors.js';
import { QmpClient } from '../qemu/qmp.js';
import { nodeFiles } from '../render/qemu.js';
import { hasBridge, type ResolvedLab, type ResolvedNetwork } from '../topology/model.js';
import { findMirrorsArgv, mirrorAddArgv, mirrorCapture, mirrorDelArgv } from '../fabric/ovn/mirror.js';
import { INTEGRATION_BRIDGE } from '../fabric/ovn/names.js';
import { RealRunner } from '../host/run.js';
import { fabricOf } from '../fabric/fabric.js';
import { nicName, resolveNicRef } from './nicref.js';
import { PcapCounter } from './pcap.js';
import { readState, upState, type LabState } from './state.js';

export interface CaptureOptions {
  /** Write pcap to this file, or to stdout with "-"; absent: one line of text per packet on stdout. */
  write?: string;
  /** Stop after this many packets. */
  count?: number;
  /** A tcpdump (BPF) filter expression, as words. */
  filter?: string[];
  /** Capture the network of this name even if a node has it too. */
  network?: boolean;
  stdout: Writable;
  /** Progress and tcpdump's own messages. */
  stderr: Writable;
  /** Stops the capture (as Ctrl-C does on the command line; the web view's "N seconds", or its client gone). */
  signal?: AbortSignal;
}

/** What a capture was of, how it ended and what it got. */
export interface CaptureSummary {
  lab: string;
  /** "deb2 eth0" or "network lan". */
  what: string;
  /** The host interface captured (tap or bridge), or the netdev for QEMU's filter-dump. */
  interface: string;
  via: 'tcpdump' | 'filter-dump';
  packets: number;
  /** 'reader closed': what read the output went away (`| head -c 100`), a normal end, as it is for tcpdump. */
  stopped: 'count' | 'interrupted' | 'lab down' | 'reader closed' | 'ended';
  file?: string;
}

/** Where a capture target is: a host interface (in the lab namespace, or the host's: `netns` absent), or a NIC's netdev in its QEMU. */
export type CaptureSource =
  | { kind: 'iface'; iface: string; netns?: string; what: string }
  /** A network on OVN: its ports mirrored on br-int to a port made for the capture (src/fabric/ovn/mirror.ts). */
  | { kind: 'mirror'; network: ResolvedNetwork; hostSide: boolean; what: string }
  | { kind: 'netdev'; node: string; netdev: string; what: string };

/** Resolves NODE[:NIC] or NETWORK of a lab to what is captured (a node's name wins unless `network`). */
export function captureSource(lab: ResolvedLab, target: string, network = false): CaptureSource {
  const fabric = fabricOf(lab);
  const ns = fabric.tapNamespace(lab);
  const at = (iface: string, what: string): CaptureSource => ({ kind: 'iface', iface, ...(ns ? { netns: ns } : {}), what });
  const net = lab.networks.find((n) => n.name === target);
  const isNode = !network && (target.includes(':') || lab.nodes.some((n) => n.name === target));
  if (!isNode) {
    if (!net)
      throw new UserError(
        `"${target}": lab ${lab.name} has no ${network ? 'network' : 'node or network'} of that name (nodes: ${lab.nodes.map((n) => n.name).join(', ')}; networks: ${lab.networks.map((n) => n.name).join(', ')})`,
      );
    if (hasBridge(net)) {
      const how = fabric.networkCapture(lab, net);
      if (how.kind === 'refused') throw new UserError(how.why);
      if (how.kind === 'mirror') return { kind: 'mirror', network: net, hostSide: how.hostSide, what: `network ${net.name}` };
      return { kind: 'iface', iface: how.iface, ...(how.netns ? { netns: how.netns } : {}), what: `network ${net.name}` };
    }
    // A link's first tap sees all of it: what its guest sends as it enters, what the other sends as it leaves.
    if (net.mode === 'link') {
      const end = lab.nodes.flatMap((n) => n.nics.filter((x) => x.network === net.name && x.peerTap).map((x) => ({ n, x })))[0];
      if (!end) throw new UserError(`network ${net.name} has no NIC to capture`);
      return at(end.x.tap, `network ${net.name} (at ${end.n.name} ${nicName(end.n, end.x)})`);
    }
    // A socket network is a link between two NICs: the first one's traffic is all of it.
    const end = lab.nodes.flatMap((n) => n.nics.filter((x) => x.kind === 'socket' && x.network === net.name).map((x) => ({ n, x })))[0];
    if (!end) throw new UserError(`network ${net.name} has no NIC to capture`);
    return { kind: 'netdev', node: end.n.name, netdev: `net${end.x.index}`, what: `network ${net.name} (at ${end.n.name} ${nicName(end.n, end.x)})` };
  }
  const { node, nic } = resolveNicRef(lab, target);
  const what = `${node.name} ${nicName(node, nic)}`;
  return nic.kind === 'bridge' ? at(nic.tap, what) : { kind: 'netdev', node: node.name, netdev: `net${nic.index}`, what };
}

/** tcpdump's arguments: from a live interface or pcap on stdin, pcap or text out, the count, then the filter. */
export function tcpdumpArgs(from: { iface: string } | 'stdin', o: { pcap: boolean; count?: number; filter?: string[] }): string[] {
  return [
    ...(from === 'stdin' ? ['-r', '-'] : ['-i', from.iface]),
    '-n',
    ...(o.pcap ? ['-U', '-w', '-'] : ['-l']),
    ...(o.count !== undefined ? ['-c', String(o.count)] : []),
    // "--": a filter is never read as tcpdump's options (-z runs a program).
    ...(o.filter?.length ? ['--', ...o.filter] : []),
  ];
}

// tcpdump's chatter on stderr: what it is reading or listening on, that its text output is short, and its
// packet statistics at the end. qnet says the first itself and sums up the rest; anything else (an error) passes.
const TCPDUMP_NOISE = /^(tcpdump: )?(listening on |reading from file |verbose output suppressed|\d+ packets? (captured|received by filter|dropped by kernel))/;

/** True for a line tcpdump writes on stderr that is progress, not an error (qnet leaves it out). */
export function isTcpdumpChatter(line: string): boolean {
  return TCPDUMP_NOISE.test(line);
}

/**
 * Passes tcpdump's stderr on to `write` by whole lines, leaving its chatter out: a chunk may end inside a line (tcpdump
 * writes "reading from file -", ", link-type …" and ", snapshot length …" apart). `end` passes what is left.
 */
export function tcpdumpStderr(write: (line: string) => void): { push: (chunk: string) => void; end: () => void } {
  let partial = '';
  const pass = (l: string) => {
    if (l && !isTcpdumpChatter(l)) write(`${l}\n`);
  };
  return {
    push: (chunk) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      lines.forEach(pass);
    },
    end: () => {
      pass(partial);
      partial = '';
    },
  };
}

/** True when a write failed because its reader went away (a closed pipe or socket): a normal end of a capture. */
export function isReaderGone(e: NodeJS.ErrnoException): boolean {
  return e.code === 'EPIPE' || e.code === 'ECONNRESET' || e.code === 'ERR_STREAM_DESTROYED';
}

/** Checks a filter with tcpdump before anything starts: a bad one is bad input (exit 2), with tcpdump's words. */
async function checkFilter(filter: string[]): Promise<void> {
  if (!filter.length) return;
  const r = await new Promise<{ code: number | null; err: string }>((resolve, reject) => {
    // -d: compile and print the filter, capture nothing (on lo, whose link type is Ethernet's, as a tap's).
    const p = spawn('tcpdump', ['-d', '-i', 'lo', '--', ...filter], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, err }));
  }).catch((e: NodeJS.ErrnoException) => {
    throw new RuntimeError(e.code === 'ENOENT' ? 'tcpdump is not installed: run `apt-get install tcpdump` (or `npm run setup`)' : e.message);
  });
  const msg = r.err.split('\n').find((l) => /syntax error|illegal|unknown|expression/i.test(l));
  if (msg) throw new UserError(`--filter "${filter.join(' ')}": ${msg.replace(/^tcpdump: /, '')}`);
}

/** Captures until the count, Ctrl-C (SIGINT/SIGTERM) or the lab going down; resolves with the summary. */
export async function capture(labName: string, target: string, opts: CaptureOptions): Promise<CaptureSummary> {
  const state = await upState(labName);
  const wanted = captureSource(state.lab, target, opts.network);
  if (opts.count !== undefined && (!Number.isInteger(opts.count) || opts.count < 1)) throw new UserError(`--count: expected a whole number of packets (1 or more), got ${opts.count}`);
  await checkFilter(opts.filter ?? []);
  let fileFd: number | undefined;
  if (opts.write !== undefined && opts.write !== '-') {
    try {
      fileFd = openSync(opts.write, 'w', 0o600);
    } catch (e) {
      throw new UserError(`-w ${opts.write}: cannot write it (${(e as Error).message})`);
    }
  }
  // A network on OVN: its mirror is made now (after every check of the input) and taken away whatever happens.
  let unmirror: () => Promise<void> = async () => {};
  let src: Exclude<CaptureSource, { kind: 'mirror' }>;
  if (wanted.kind === 'mirror') {
    const m = await startMirror(state.lab, wanted.network, wanted.hostSide);
    unmirror = m.stop;
    src = { kind: 'iface', iface: m.port, what: `${wanted.what} (a mirror of its ${m.ports} port${m.ports === 1 ? '' : 's'} on br-int)` };
  } else src = wanted;
  try {
    return await captureFrom(labName, state, src, opts, fileFd);
  } finally {
    await unmirror();
  }
}

// The capture itself, from a host interface or a NIC's netdev.
async function captureFrom(labName: string, state: LabState, src: Exclude<CaptureSource, { kind: 'mirror' }>, opts: CaptureOptions, fileFd: number | undefined): Promise<CaptureSummary> {
  const pcap = opts.write !== undefined;
  const toFile = pcap && opts.write !== '-';
  const out: Writable = toFile ? createWriteStream('', { fd: fileFd! }) : opts.stdout;
  const counter = new PcapCounter();
  let lines = 0;
  let stopped = 'ended' as CaptureSummary['stopped'];
  let cleanup: () => Promise<void> = async () => {};
  let feedStream: net.Socket | undefined;
  let child: ChildProcess;
  const args = tcpdumpArgs(src.kind === 'iface' ? { iface: src.iface } : 'stdin', { pcap, ...(opts.count !== undefined ? { count: opts.count } : {}), ...(opts.filter ? { filter: opts.filter } : {}) });
  // In a user's lab holder tcpdump stays uid 0 there (the user): it changes its groups, which the holder allows only
  // with the user's subordinate ids mapped (lab/rootless/holder.ts).
  if (insideHolder()) {
    if (readFileSync('/proc/self/setgroups', 'utf8').trim() !== 'allow')
      throw new RuntimeError(
        'capture in a rootless lab needs subordinate ids for you (tcpdump changes its groups, which a user namespace mapping only your own ids forbids): have root run `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER` (and install uidmap), then `qnet down` and `qnet up` the lab again',
      );
    args.unshift('-Z', 'root');
  }
  if (src.kind === 'iface') {
    child = src.netns ? spawn('ip', ['netns', 'exec', src.netns, 'tcpdump', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn('tcpdump', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    opts.stderr.write(`capturing ${src.what} (${src.iface} in ${src.netns ?? 'the host namespace'}); Ctrl-C stops\n`);
  } else {
    const feed = await filterDump(labName, src);
    cleanup = feed.stop;
    feedStream = feed.stream;
    child = spawn('tcpdump', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin!.on('error', () => {});
    feed.stream.pipe(child.stdin!);
    opts.stderr.write(`capturing ${src.what} (QEMU filter-dump on ${src.netdev}); Ctrl-C stops\n`);
  }
  // The output's reader gone (`| head -c 100`, `| tshark -r - -c 2`): the capture stops as on Ctrl-C, quietly;
  // any other failure to write (a full disk) stops it too, and is the error it ends with.
  let writeError: Error | undefined;
  let stop = () => {};
  const onWriteError = (e: NodeJS.ErrnoException) => {
    if (stopped === 'reader closed' || writeError) return;
    if (isReaderGone(e)) stopped = 'reader closed';
    else writeError = e;
    stop();
  };
  // Left on the stream after the capture: a write still under way may fail after it ends, and it is no crash.
  out.on('error', onWriteError);
  child.stdout!.on('data', (d: Buffer) => {
    if (stopped === 'reader closed' || writeError) return; // what tcpdump still has goes nowhere
    if (pcap) counter.push(d);
    else lines += d.toString().split('\n').length - 1;
    out.write(d);
  });
  let err = '';
  const errLines = tcpdumpStderr((l) => opts.stderr.write(l));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    errLines.push(d.toString());
  });
  child.stderr!.once('end', () => errLines.end());
  stop = () => {
    if (src.kind === 'netdev') void cleanup();
    else child.kill('SIGINT');
  };
  const onSignal = () => {
    stopped = 'interrupted';
    stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (opts.signal?.aborted) onSignal();
  opts.signal?.addEventListener('abort', onSignal, { once: true });
  // tcpdump in the lab namespace keeps it (and its taps) alive after `down` deletes its name: watch for that (and,
  // for a tap in the host namespace, for the tap itself).
  const gone = setInterval(() => {
    if (src.kind === 'iface' && (!existsSync(`/run/netns/${state.lab.netns}`) || (!src.netns && !existsSync(`/sys/class/net/${src.iface}`)))) {
      stopped = 'lab down';
      child.kill('SIGINT');
    }
  }, 300);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearInterval(gone);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  opts.signal?.removeEventListener('abort', onSignal);
  await cleanup();
  // QEMU's end is closed by now (filter removed, or QEMU gone); ours goes too, whatever is left unread.
  feedStream?.destroy();
  await new Promise<void>((resolve) => (toFile ? out.end(resolve) : resolve()));
  const packets = pcap ? counter.packets : lines;
  if (writeError) throw new RuntimeError(`capture of ${src.what}: writing ${toFile ? opts.write : 'its output'} failed: ${writeError.message}`);
  if (stopped === 'ended') {
    if (opts.count !== undefined && packets >= opts.count) stopped = 'count';
    else if (!(await readState(labName)) || (src.kind === 'iface' && /went down|No such device|disappeared/i.test(err))) stopped = 'lab down';
    else if (code !== 0 && src.kind === 'iface') throw new RuntimeError(`tcpdump on ${src.iface} failed (exit ${code}): ${err.trim().split('\n').pop()}`);
  }
  return {
    lab: labName,
    what: src.what,
    interface: src.kind === 'iface' ? src.iface : src.netdev,
    via: src.kind === 'iface' ? 'tcpdump' : 'filter-dump',
    packets,
    stopped,
    ...(toFile ? { file: path.resolve(opts.write!) } : {}),
  };
}

// A network on OVN: a mirror of its ports on br-int (those on this host) onto an internal port made for this capture,
// brought up for tcpdump. Its stop removes both; if qnet is killed first, `down` finds them by the lab's marker.
async function startMirror(lab: ResolvedLab, network: ResolvedNetwork, hostSide: boolean): Promise<{ port: string; ports: number; stop: () => Promise<void> }> {
  const runner = new RealRunner();
  const m = mirrorCapture(lab, network, hostSide, String(process.pid));
  const present = (await runner.run(['ovs-vsctl', '--timeout=5', 'list-ports', INTEGRATION_BRIDGE], { allowFail: true })).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const ports = m.ports.filter((p) => present.includes(p));
  if (!ports.length) throw new RuntimeError(`network ${network.name} has no port on ${INTEGRATION_BRIDGE} of this host to capture (its NICs' guests stopped?)`);
  const stop = async () => {
    const uuids = (await runner.run(findMirrorsArgv({ name: m.mirror }), { allowFail: true })).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    await runner.run(mirrorDelArgv(uuids, m.port), { allowFail: true });
  };
  try {
    await runner.run(mirrorAddArgv(m, lab.name, present));
    await runner.run(['ip', 'link', 'set', m.port, 'up']);
  } catch (e) {
    await stop();
    throw e;
  }
  return { port: m.port, ports: ports.length, stop };
}

// A NIC's packets from QEMU's filter-dump, through a FIFO in the node's run directory: opened here first (read end,
// and a write end held until QEMU has its own, so the stream does not end before it starts), then the filter added
// on the NIC's netdev. The FIFO's name is gone from the directory as soon as both ends are open; if qnet dies, QEMU's
// next write fails and the filter stops writing.
async function filterDump(labName: string, src: Extract<CaptureSource, { kind: 'netdev' }>): Promise<{ stream: net.Socket; stop: () => Promise<void> }> {
  const files = nodeFiles(nodeDir(labName, src.node));
  const fifo = path.join(files.dir, `capture-${process.pid}-${src.netdev}.pcap`);
  const id = `qnet-capture-${process.pid}-${src.netdev}`;
  const qmp = await QmpClient.connect(files.qmp, 3000).catch((e: Error) => {
    throw new RuntimeError(`${src.node}: its QEMU monitor does not answer (${e.message}); is it running?`);
  });
  const mk = await new Promise<number | null>((resolve) => spawn('mkfifo', ['-m', '0622', fifo], { stdio: 'ignore' }).once('close', resolve));
  if (mk !== 0) {
    qmp.close();
    throw new RuntimeError(`cannot make ${fifo}`);
  }
  let rfd: number | undefined;
  let wfd: number | undefined;
  try {
    rfd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    wfd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    await qmp.execute('object-add', { 'qom-type': 'filter-dump', id, netdev: src.netdev, file: fifo });
  } catch (e) {
    for (const fd of [rfd, wfd]) if (fd !== undefined) closeSync(fd);
    qmp.close();
    throw new RuntimeError(`${src.what}: QEMU's filter-dump could not start: ${(e as Error).message}`);
  } finally {
    try {
      unlinkSync(fifo);
    } catch {
      // already gone
    }
  }
  closeSync(wfd);
  const stream = new net.Socket({ fd: rfd, readable: true, writable: false });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Removing the filter closes QEMU's end: the stream ends, tcpdump reads to the end and exits.
    await qmp.execute('object-del', { id }).catch(() => {});
    qmp.close();
  };
  // The guest stopping (the lab going down) closes the monitor and QEMU's end with it.
  void qmp.closed.then(() => void stop());
  return { stream, stop };
}
