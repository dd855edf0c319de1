// The layouts section of `npm run bench` (issue 33): the same guests on Linux bridges, on OVN on one host and on OVN
// over two hosts, side by side in one run, inside simulated hosts (test/e2e/ovn-hosts.ts) so that nothing reaches
// this machine's own OVS, OVN or interfaces. A layout is a small object; the two-host one is `twoHostsLayout`.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { makeSimHosts, type Run, type SimHost, type SimHosts } from '../test/e2e/ovn-hosts.js';
import { validateTopology } from '../src/topology/load.js';
import { findMarkedProcesses } from '../src/qemu/process.js';
import type { Held } from './held.js';
import { buildRev } from './cli.js';
import { iperfBps } from './iperf.js';
import { daemonRow, pingRtts, type LayoutResult, type LayoutsSection } from './ovn-report.js';

/** One way of laying a lab out, as the section measures it. */
export interface Layout {
  /** Short, for lab names. */
  key: string;
  /** The column's heading. */
  label: string;
  /** The topology keys that put a lab on this layout (fabric, hosts, ovn) and node i's own keys (its host). */
  extra: Record<string, unknown>;
  place(i: number): Record<string, unknown>;
  /** Runs the qnet CLI as a user of this layout does (on the driving side). */
  qnet(args: string[], timeoutMs?: number): Promise<Run>;
  /** The lab's state file as the driving side keeps it (undefined: none). */
  state(lab: string): string | undefined;
  /** The host where the lab namespace is (the gateway host): every guest is pinged from there. */
  gateway: SimHost;
  /** The hosts whose OVS and OVN daemons are measured (none on bridges). */
  daemonHosts: SimHost[];
  /** Where a port is bound for the bind rows, and the central holding the northbound DB (none on bridges). */
  bind?: { on: SimHost; central: SimHost; where?: string };
  /** Why a failed `up` means the layout cannot be measured here (not a failure of the bench), if it does. */
  unsupported?(up: Run): string | undefined;
  /** Only the 20-guest rows (the two-guest ones are another column's). */
  only20?: boolean;
}

/** qnet run inside host `h` with its own directories: this checkout's CLI, or `qnetJs` (an older one). */
function inHost(h: SimHost, qnetJs?: string): Pick<Layout, 'qnet' | 'state'> {
  const state = (lab: string) => {
    const r = h.exec(['cat', `/run/qnet/${lab}/state.json`]);
    return r.code === 0 ? r.stdout : undefined;
  };
  if (!qnetJs) return { qnet: (args, timeoutMs = 120000) => h.qnet(args, timeoutMs), state };
  const qnet = (args: string[], timeoutMs = 120000) =>
    new Promise<Run>((resolve) => {
      // As the fixture runs this checkout's CLI: the host's own directories (its tmpfs mounts), bounded.
      const env = { ...process.env };
      delete env.QNET_RUN_DIR;
      delete env.QNET_STATE_DIR;
      const child = spawn('nsenter', ['-t', String(h.pid), '-m', '-n', '--', process.execPath, qnetJs, ...args], { env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(t);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  return { qnet, state };
}

/** Bridges, the default fabric, in host `h`. */
export function bridgesLayout(h: SimHost): Layout {
  return { key: 'br', label: 'bridges (default)', extra: {}, place: () => ({}), ...inHost(h), gateway: h, daemonHosts: [] };
}

/**
 * Bridges as qnet made them before issue 33 (the CLI of `rev`, built from git): the check that a lab with no
 * `hosts:` is exactly as fast as before.
 */
export function bridgesBeforeLayout(h: SimHost, rev: string, qnetJs: string): Layout {
  return { ...bridgesLayout(h), ...inHost(h, qnetJs), key: 'brb', label: `bridges, qnet ${rev} (before issue 33)` };
}

/**
 * Bridges in host `h` where OVS and OVN run (set up for the other layouts): what a lab with no `hosts:` costs on a
 * machine that is also an OVN host (`down` asks OVS and the northbound DB for the lab's remains there).
 */
export function bridgesBesideOvnLayout(h: SimHost): Layout {
  return { ...bridgesLayout(h), key: 'bro', label: 'bridges, beside OVS and OVN', only20: true };
}

/** OVN on the one host `h` (set up as the central): `fabric: ovn` without `hosts:`. */
export function oneHostLayout(h: SimHost): Layout {
  return { key: 'ovn1', label: 'OVN, one host', extra: { fabric: 'ovn' }, place: () => ({}), ...inHost(h), gateway: h, daemonHosts: [h], bind: { on: h, central: h } };
}

/** The driving side of simulated hosts, where the fixture has one (multi-host up: qnet reaching each host over SSH). */
type Driver = { driveQnet?: (args: string[], runDir: string, timeoutMs?: number) => Promise<Run> };

/**
 * OVN over two hosts: a (the central and gateway: the lab namespace is there) and b, both reached over SSH from the
 * driving side (the fixture's `driveQnet`, qnet with its own run directory `runDir`); guests alternate between them
 * (g0 on a, g1 on b), so every measured packet crosses the Geneve tunnel. Ports for the bind rows are bound on b, the
 * host without the databases. While `qnet up` does not make labs over several hosts it refuses them (exit 2, before
 * any change), and the column says so; a fixture without a driving side runs qnet in a, which refuses the same way.
 */
export function twoHostsLayout(sim: SimHosts, runDir: string): Layout {
  const [a, b] = sim.hosts as [SimHost, SimHost];
  const drive = (sim as SimHosts & Driver).driveQnet;
  const driverState = (lab: string) => {
    try {
      return readFileSync(path.join(runDir, lab, 'state.json'), 'utf8');
    } catch {
      return undefined;
    }
  };
  const driver: Pick<Layout, 'qnet' | 'state'> = drive ? { qnet: (args, timeoutMs = 120000) => drive(args, runDir, timeoutMs), state: driverState } : inHost(a);
  return {
    key: 'ovn2',
    label: 'OVN, two hosts',
    extra: { hosts: { a: { ssh: `root@${a.ip}` }, b: { ssh: `root@${b.ip}` } }, ovn: { central: 'a' } },
    place: (i) => ({ host: i % 2 ? 'b' : 'a' }),
    ...driver,
    gateway: a,
    daemonHosts: [a, b],
    bind: { on: b, central: a, where: 'on b' },
    unsupported: (up) => {
      if (up.code !== 2) return undefined;
      if (/not yet made by `qnet up`/.test(up.stderr)) return 'multi-host up not landed (`qnet up` refuses labs over several hosts)';
      // Placement's own bound (CPUs or memory a host may hold): said as qnet says it.
      const fit = /does not fit on its hosts:\n\s*(.*)/.exec(up.stderr);
      return fit ? `\`qnet up\` refuses it: does not fit on its hosts: ${fit[1]!.trim()}` : undefined;
    },
  };
}

/** The last revision before labs on OVN (issue 33's first stage was merged in 4458306): the "before" column. */
export const BEFORE_OVN_REV = 'f3e9efb';

interface Opts {
  /** The checkout (git history for the "before" column). */
  root: string;
  prefix: string;
  quick: boolean;
  log: (s: string) => void;
  held: Held;
}

/** n guests on one network, g<i> at 10.99.0.(10 + i), in the layout's keys. */
function labFile(dir: string, name: string, n: number, layout: Layout): { file: string; netns: string; ips: string[] } {
  const nodes: Record<string, unknown> = {};
  const ips = Array.from({ length: n }, (_, i) => `10.99.0.${10 + i}`);
  for (let i = 0; i < n; i++) nodes[`g${i}`] = { ...layout.place(i), nics: [{ network: 'lan', ip: ips[i], model: 'virtio' }] };
  const topology = { name, ...layout.extra, networks: { lan: { subnet: '10.99.0.0/24', address: '10.99.0.1' } }, nodes };
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(topology));
  return { file, netns: validateTopology(topology).netns, ips };
}

function must(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

/** The OVS and OVN daemons of a host and their RSS in MiB, by row name. */
function daemonRss(h: SimHost): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of h.daemons()) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${d.pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    const row = daemonRow(d.comm, cmd);
    if (row) out[row] = (out[row] ?? 0) + d.rssKiB / 1024;
  }
  return out;
}

/**
 * Binds `count` ports: a logical switch and its ports made in the central's northbound DB first, then, timed by one
 * shell on the binding host, each tap added to br-int with its iface-id until OVS shows ovn-installed and until the
 * NB has it up. Everything made is removed after.
 */
function bindTimes(bind: NonNullable<Layout['bind']>, count: number): { installed: number[]; up: number[] } {
  const ports = Array.from({ length: count }, (_, i) => `qbb${i}`);
  const nbDb = bind.on === bind.central ? '' : `--db=tcp:${bind.central.ip}:6641`;
  const clean = () => {
    bind.on.exec(['sh', '-c', `for p in ${ports.join(' ')}; do ovs-vsctl --timeout=10 --if-exists del-port br-int $p; ip link delete $p 2>/dev/null; done; true`]);
    bind.central.exec(['ovn-nbctl', '--timeout=10', '--if-exists', 'ls-del', 'qnet-bench-bind']);
  };
  try {
    must(bind.central.exec(['ovn-nbctl', '--timeout=10', 'ls-add', 'qnet-bench-bind', ...ports.flatMap((p) => ['--', 'lsp-add', 'qnet-bench-bind', p])]), 'making the bind ports');
    const script = `set -e
for p in ${ports.join(' ')}; do
  ip tuntap add dev $p mode tap; ip link set $p up
  t0=$(date +%s%N)
  ovs-vsctl --timeout=20 add-port br-int $p -- set interface $p external_ids:iface-id=$p
  ovs-vsctl --timeout=20 wait-until interface $p external_ids:ovn-installed=true
  t1=$(date +%s%N)
  ovn-nbctl --timeout=20 ${nbDb} wait-until Logical_Switch_Port $p up=true
  t2=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000 )) $(( (t2 - t0) / 1000 ))"
done`;
    const r = must(bind.on.exec(['sh', '-c', script], 120000), 'binding ports');
    const rows = r.stdout.trim().split('\n').map((l) => l.split(' ').map((x) => Number(x) / 1000));
    return { installed: rows.map((x) => x[0]!), up: rows.map((x) => x[1]!) };
  } finally {
    clean();
  }
}

/** Runs `qnet up` for a lab file and times it until every guest answers ping from the lab namespace. */
async function upUntilPing(layout: Layout, lab: { file: string; netns: string; ips: string[] }): Promise<{ ms: number; up: Run }> {
  const t0 = process.hrtime.bigint();
  const up = await layout.qnet(['up', lab.file], 600000);
  if (up.code !== 0) return { ms: NaN, up };
  // Each address until it answers (bounded): the guests are ready when `up` returns, so this is one round of pings.
  const loop = `for a in ${lab.ips.join(' ')}; do n=0; until busybox ping -c 1 -W 2 $a >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 100 ] || { echo "no answer from $a" >&2; exit 1; }; sleep 0.1; done; done`;
  must(layout.gateway.exec(['ip', 'netns', 'exec', lab.netns, 'sh', '-c', loop], 120000), `pinging the guests of ${lab.file}`);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, up };
}

/** How many of the lab's guests were restored from a saved state, by the lab's state file (NaN: it does not say). */
function restoredCount(layout: Layout, lab: string): number {
  const text = layout.state(lab);
  const guests = text ? (JSON.parse(text) as { guests?: Record<string, { start?: string }> }).guests : undefined;
  return guests ? Object.values(guests).filter((g) => g.start === 'restored').length : NaN;
}

async function down(layout: Layout, lab: string): Promise<number> {
  const t = Date.now();
  must(await layout.qnet(['down', lab], 300000), `qnet down ${lab}`);
  return Date.now() - t;
}

/** One iperf3 run in the guests: server in `to`, client in `from`; Mbit/s received. */
async function iperf(layout: Layout, lab: string, from: string, to: string, toIp: string, secs: number): Promise<number> {
  must(await layout.qnet(['exec', lab, to, '--', 'iperf3', '-s', '-D', '-1']), `iperf3 server in ${to}`);
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = (await layout.qnet(['exec', lab, from, '--', 'iperf3', '-c', toIp, '-t', String(secs), '-i', '0', '-J'], (secs + 60) * 1000)).stdout;
    if (!/connection refused/i.test(out)) break;
    await new Promise((r) => setTimeout(r, 200)); // the server was not listening yet
  }
  return iperfBps(out, `${layout.label}: ${from} → ${to}`) / 1e6;
}

type Params = { secs: number; reps: number; pings: number; guests: number; dir: string };

/** The two-guest part of a layout: ping RTT and TCP both ways (or why the layout cannot be measured here). */
async function measureTwo(layout: Layout, o: Opts, p: Params): Promise<LayoutResult> {
  const res: LayoutResult = { label: layout.label };
  if (layout.only20) return res;
  const two = `${o.prefix}-l2-${layout.key}`;
  const twoLab = labFile(p.dir, two, 2, layout);
  o.log(`bench: layouts: ${layout.label}: two guests`);
  o.held.add(`lab ${two}`, async () => void (await layout.qnet(['down', two])));
  const first = await layout.qnet(['up', twoLab.file], 600000);
  if (first.code !== 0) {
    o.held.drop(`lab ${two}`);
    const why = layout.unsupported?.(first);
    if (why) return { ...res, notMeasured: why };
    throw new Error(`${layout.label}: qnet up ${twoLab.file} failed (${first.code}): ${first.stderr}`);
  }
  try {
    const ping = must(await layout.qnet(['exec', two, 'g0', '--', 'ping', '-c', String(p.pings + 1), '-i', '0.2', '-W', '2', '10.99.0.11'], 60000), 'ping g0 → g1');
    res.rttMs = pingRtts(ping.stdout).slice(1);
    if (res.rttMs.length < p.pings / 2) throw new Error(`${layout.label}: ping g0 → g1 answered ${res.rttMs.length + 1} of ${p.pings + 1}: ${ping.stdout}`);
    res.mbitOut = [];
    res.mbitBack = [];
    for (let r = 0; r < p.reps; r++) {
      res.mbitOut.push(await iperf(layout, two, 'g0', 'g1', '10.99.0.11', p.secs));
      res.mbitBack.push(await iperf(layout, two, 'g1', 'g0', '10.99.0.10', p.secs));
    }
    o.log(`bench: layouts: ${layout.label}: rtt ${res.rttMs.join(', ')} ms; TCP ${res.mbitOut.map((x) => x.toFixed(0))} / ${res.mbitBack.map((x) => x.toFixed(0))} Mbit/s`);
    // Ports bound beside the lab's own; the daemons' memory now too, kept if the 20-guest lab cannot be made.
    if (layout.bind) {
      const b = bindTimes(layout.bind, 5);
      res.bindInstalledMs = b.installed;
      res.bindUpMs = b.up;
      if (layout.bind.where) res.bindWhere = layout.bind.where;
      o.log(`bench: layouts: ${layout.label}: bind ${b.installed.map((x) => x.toFixed(0))} / ${b.up.map((x) => x.toFixed(0))} ms`);
    }
    if (layout.daemonHosts.length) {
      res.rss = Object.fromEntries(layout.daemonHosts.map((h) => [h.name, daemonRss(h)]));
      res.rssGuests = 2;
    }
  } finally {
    await down(layout, two);
    o.held.drop(`lab ${two}`);
  }
  return res;
}

/**
 * One up of the layout's 20-guest lab, added to `res`: time until every guest answers, how many were restored, and
 * `down`; with `last`, while the lab is up, the daemons' memory. A lab the layout refuses is noted, not a failure.
 */
async function measureBig(layout: Layout, res: LayoutResult, o: Opts, p: Params, last: boolean): Promise<void> {
  const big = `${o.prefix}-l20-${layout.key}`;
  const bigLab = labFile(p.dir, big, p.guests, layout);
  o.held.add(`lab ${big}`, async () => void (await layout.qnet(['down', big])));
  const u = await upUntilPing(layout, bigLab);
  if (u.up.code !== 0) {
    o.held.drop(`lab ${big}`); // a failed up rolled itself back
    const why = layout.unsupported?.(u.up);
    if (why) return void (res.up20NotMeasured = why);
    throw new Error(`${layout.label}: qnet up ${bigLab.file} failed (${u.up.code}): ${u.up.stderr}`);
  }
  (res.up20Ms ??= []).push(u.ms);
  (res.restored20 ??= []).push(restoredCount(layout, big));
  o.log(`bench: layouts: ${layout.label}: ${p.guests} guests up in ${(u.ms / 1000).toFixed(2)} s (${res.restored20.at(-1)} restored)`);
  // With the lab up, in the last round: the daemons' memory.
  if (last && layout.daemonHosts.length) {
    res.rss = Object.fromEntries(layout.daemonHosts.map((h) => [h.name, daemonRss(h)]));
    res.rssGuests = p.guests;
  }
  (res.down20Ms ??= []).push(await down(layout, big));
  o.held.drop(`lab ${big}`);
}

/**
 * Measures the layouts: each one's two guests, then the 20-guest ups taken in turn (one of each layout, then the
 * next round), so that the machine's drift over the minutes the section takes falls on every column alike.
 */
async function measureAll(cols: Array<Layout | LayoutResult>, o: Opts, p: Params): Promise<LayoutResult[]> {
  const results: LayoutResult[] = [];
  for (const c of cols) results.push('qnet' in c ? await measureTwo(c, o, p) : c);
  for (let r = 0; r < p.reps; r++)
    for (const [i, c] of cols.entries()) if ('qnet' in c && !results[i]!.notMeasured && !results[i]!.up20NotMeasured) await measureBig(c, results[i]!, o, p, r === p.reps - 1);
  return results;
}

/**
 * Runs the section: simulated hosts a (the central) and b, each set up by `qnet host setup`, the three layouts
 * measured in turn, then every host stopped and removed (also on failure and on Ctrl-C).
 */
export async function layoutsSection(o: Opts): Promise<LayoutsSection> {
  const t0 = Date.now();
  const p: Params = { secs: o.quick ? 3 : 5, reps: o.quick ? 1 : 3, pings: 20, guests: 20, dir: mkdtempSync(path.join(os.tmpdir(), 'qnet-bench-layouts-')) };
  let sim: SimHosts | undefined;
  const labs = ['brb', 'br', 'bro', 'ovn1', 'ovn2'].flatMap((k) => [`${o.prefix}-l2-${k}`, `${o.prefix}-l20-${k}`]);
  // Guests run in mount namespaces of their own (QEMU's private /dev), out of the simulated hosts' sweep: found by
  // their marker. Then each host stops its daemons (`qnet host stop`) and the fixture removes the rest.
  const removeAll = async () => {
    for (const g of await findMarkedProcesses()) if (labs.includes(g.lab)) process.kill(g.pid, 'SIGKILL');
    const killed = sim ? await sim.remove() : [];
    rmSync(p.dir, { recursive: true, force: true });
    if (killed.length) o.log(`bench: layouts: had to kill ${killed.join(', ')}`);
  };
  o.held.add('layouts', removeAll);
  try {
    sim = await makeSimHosts(`bl${process.pid.toString(36)}`, ['a', 'b', 'c'], { sshd: true });
    // a and b: OVN hosts (a the central); c: neither, the bridge layouts' host, as a machine without OVN.
    const [a, b, c] = sim.hosts as [SimHost, SimHost, SimHost];
    const setupMs: Array<{ host: string; ms: number }> = [];
    for (const [h, role] of [[a, ['--central']], [b, ['--remote', a.ip]]] as const) {
      const t = Date.now();
      must(await h.qnet(['host', 'setup', '--name', h.name, '--underlay', h.ip, '--underlay-dev', 'ul0', ...role]), `qnet host setup in ${h.name}`);
      setupMs.push({ host: h === a ? 'central a' : 'host b', ms: Date.now() - t });
    }
    const results: LayoutResult[] = [];
    // The two-host layout's driving side keeps its run directory (the lab's state) here.
    const driverDir = path.join(p.dir, 'driver');
    mkdirSync(driverDir);
    const before = buildRev(o.root, BEFORE_OVN_REV, o.log, o.held);
    try {
      const beforeCol: Layout | LayoutResult =
        'why' in before ? { label: `bridges, qnet ${BEFORE_OVN_REV} (before issue 33)`, notMeasured: before.why } : bridgesBeforeLayout(c, BEFORE_OVN_REV, path.join(before.dir, 'bin', 'qnet.js'));
      results.push(...(await measureAll([beforeCol, bridgesLayout(c), bridgesBesideOvnLayout(a), oneHostLayout(a), twoHostsLayout(sim, driverDir)], o, p)));
    } finally {
      if ('remove' in before) before.remove();
    }
    return { results, setupMs, secs: p.secs, reps: p.reps, pings: p.pings, guests: p.guests, sectionMs: Date.now() - t0 };
  } finally {
    if (!o.held.stopping) {
      await removeAll();
      o.held.drop('layouts');
    }
  }
}
