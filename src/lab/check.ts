// `qnet check`: the reachability matrix of a running lab, predicted by the model and measured from inside the
// guests (ping and a TCP connection to a port qnet listens on), and the lab's declared checks.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RuntimeError } from '../errors.js';
import { RealRunner } from '../host/run.js';
import { insideHolder } from '../dirs.js';
import { UPLINK_LAB_IF, uplinkHostIf } from '../render/uplink.js';
import { formatIPv4, parseIPv4 } from '../topology/ipv4.js';
import { impairmentInForce } from '../topology/impair.js';
import { usesUplink, type ResolvedLab } from '../topology/model.js';
import { predict, predictOne, PROBE_UPSTREAM, type Destination, type LiveFacts, type Prediction, type Probe } from '../check/model.js';
import { resolveChecks, type ResolvedCheck } from '../check/declared.js';
import { CHECK_PORT, LISTEN_ARG, listenScript, parseProbeOutput, probeKey, probeScript, stopScript, type ProbeSpec } from '../check/scripts.js';
import type { Measured } from '../check/matrix.js';
import { execInGuest, guestAddresses } from './exec.js';
import { labLeases } from './leases.js';
import { upState, type LabState } from './state.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LISTENER = path.join(here, 'check-listener.js');
/** Guests probed at once: each runs all of its row's probes together (measured: 4 keeps a 2-core host responsive). */
const PARALLEL = 4;
/** Seconds a probe waits for its answer (ping's deadline, nc's connect timeout). */
const WAIT_S = 3;
/**
 * Seconds a second probe waits, sent only where the first did not reach what the model (or a declared check) says
 * it reaches: a slow host can take longer than WAIT_S for a first handshake. Measured inside User-Mode Linux with the
 * CPU busy: TCP from a to r1 in examples/vlans.yaml failed the first check after `up` (its restored guests run code
 * TCG had not yet translated) and passed every later one; with this second try it passes the first.
 */
const RETRY_WAIT_S = 10;

export interface CheckOptions {
  only?: Probe;
  /** Predict from the topology as written, not as `qnet link` and `qnet impair` changed it. */
  asDeclared?: boolean;
  /** Measure only the declared checks (what `up --check` does), not the whole matrix. */
  declaredOnly?: boolean;
  progress?: (line: string) => void;
}

export interface DeclaredResult {
  label: string;
  expect: 'pass' | 'fail';
  predicted: { ok: boolean; via: string; reason?: string };
  measured?: Measured;
  /** The measured result (or, without a measurement, the predicted one) meets the expectation. */
  ok: boolean;
}

export interface CheckReport {
  lab: string;
  prediction: Prediction;
  /** Measured results by "from|to|probe". */
  measured: Map<string, Measured>;
  declared: DeclaredResult[];
  ms: number;
}

/**
 * Where `qnet check` reaches a running lab: its state, its guests (a script run by each one's agent), the lab
 * namespace and the host (commands, listeners) and the uplink's address. One host: here; over several hosts: each
 * guest through its host's agent, the lab namespace and the host those of the gateway host (lab/multihost.ts).
 */
export interface CheckAccess {
  state: LabState;
  guestSh(node: string, script: string, timeoutMs: number, args?: string[]): Promise<string>;
  /** Runs argv in the lab namespace or in the host's own; its output. */
  run(where: 'lab' | 'host', argv: string[], timeoutMs: number): Promise<{ code: number; stdout: string }>;
  /** Listens on TCP at each ADDR:PORT in the lab namespace or the host's (check-listener.ts) until the stopper is called. */
  listen(where: 'lab' | 'host', addrs: string[]): Promise<() => void>;
  uplinkAddress(): Promise<number | undefined>;
}

/** A lab on this host, as `qnet check` reaches it. */
export function localAccess(state: LabState): CheckAccess {
  const runner = new RealRunner();
  const ns = state.lab.netns;
  return {
    state,
    guestSh: (node, script, timeoutMs, args) => guestSh(state.lab.name, node, script, timeoutMs, args),
    run: (where, argv, timeoutMs) => runner.run(where === 'lab' ? ['ip', 'netns', 'exec', ns, ...argv] : argv, { allowFail: true, timeoutMs }),
    listen: async (where, addrs) => {
      const children: ChildProcess[] = [];
      await listen(where === 'lab' ? ['ip', 'netns', 'exec', ns, process.execPath, LISTENER, ...addrs] : [process.execPath, LISTENER, ...addrs], children);
      return () => children.forEach((c) => c.kill('SIGTERM'));
    },
    uplinkAddress: () => uplinkAddress(state.lab),
  };
}

/** What qnet knows of a running lab beyond its topology (links, impairments, leases, the uplink's address). */
export async function liveFacts(state: LabState, opts: { asDeclared?: boolean } = {}, access: CheckAccess = localAccess(state)): Promise<LiveFacts> {
  const lab = state.lab;
  const leases: Record<string, Record<number, number>> = {};
  for (const l of await labLeases(lab.name).catch(() => [])) {
    for (const node of lab.nodes)
      for (const nic of node.nics)
        if (nic.mac === l.mac.toLowerCase() && nic.network === l.network) (leases[node.name] ??= {})[nic.index] = parseIPv4(l.ip)!;
  }
  // DHCP from a LAN's own server (bridged, macnat) leaves no lease with qnet: the guest agent knows the address.
  await Promise.all(
    lab.nodes.map(async (node) => {
      const missing = node.nics.filter((nic) => nic.dhcp && nic.kind === 'bridge' && !nic.addresses[0] && leases[node.name]?.[nic.index] === undefined);
      if (!missing.length) return;
      const byMac = await guestAddresses(lab.name, node.name).catch(() => new Map<string, string[]>());
      for (const nic of missing) {
        const a = byMac.get(nic.mac)?.[0];
        if (a) (leases[node.name] ??= {})[nic.index] = parseIPv4(a.split('/')[0]!)!;
      }
    }),
  );
  const facts: LiveFacts = { leases };
  if (insideHolder()) {
    const p = await pastaFacts(lab);
    if (p) {
      facts.upstream = p.host;
      facts.pasta = { labEnd: p.labEnd, ping: p.ping };
    }
  } else {
    const up = await access.uplinkAddress();
    if (up !== undefined) facts.upstream = up;
  }
  if (!opts.asDeclared) {
    facts.linksDown = state.links ?? {};
    facts.impairment = (node, nic) => impairmentInForce(state, node.name, nic);
  }
  return facts;
}

/** The host's address on the lab's uplink veth (100.64.x.y, chosen at `up`). */
export async function uplinkAddress(lab: ResolvedLab): Promise<number | undefined> {
  if (!lab.networks.some(usesUplink)) return undefined;
  const r = await new RealRunner().run(['ip', '-j', '-4', 'addr', 'show', 'dev', uplinkHostIf(lab.name)], { allowFail: true });
  try {
    const a = (JSON.parse(r.stdout || '[]') as Array<{ addr_info?: Array<{ local: string }> }>)[0]?.addr_info?.[0]?.local;
    return a ? (parseIPv4(a) ?? undefined) : undefined;
  } catch {
    return undefined;
  }
}

// A user's (rootless) lab: its uplink is pasta, so beyond it is the user's own host namespace (where this qnet runs,
// inside the holder's user namespace but not its network namespace). There the upstream is an address of the host
// itself: a guest reaches it through pasta's sockets, and check's listener binds it as the user, on CHECK_PORT
// (>= 1024). Not the host's loopback: pasta runs with --no-map-gw, so the lab reaches no loopback-only service of
// the host; and not a listener inside the holder: its network namespace is the lab's own, not a place beyond pasta.
// The host's address is its default route's source (the route is looked up, nothing is sent), or else its first
// global address. Whether pasta carries pings is tried as pasta would: an ICMP datagram socket, which
// net.ipv4.ping_group_range allows or not.
async function pastaFacts(lab: ResolvedLab): Promise<{ host: number; labEnd: number; ping: boolean } | undefined> {
  if (!lab.networks.some(usesUplink)) return undefined;
  const runner = new RealRunner();
  const json = <T>(text: string): T | undefined => {
    try {
      return JSON.parse(text || 'null') as T;
    } catch {
      return undefined;
    }
  };
  const route = json<Array<{ prefsrc?: string }>>((await runner.run(['ip', '-j', '-4', 'route', 'get', '192.0.2.1'], { allowFail: true })).stdout)?.[0]?.prefsrc;
  const firstGlobal = json<Array<{ addr_info?: Array<{ local: string }> }>>((await runner.run(['ip', '-j', '-4', 'addr', 'show', 'scope', 'global'], { allowFail: true })).stdout)
    ?.flatMap((l) => l.addr_info ?? [])[0]?.local;
  const lab4 = json<Array<{ addr_info?: Array<{ local: string }> }>>((await runner.run(['ip', '-n', lab.netns, '-j', '-4', 'addr', 'show', 'dev', UPLINK_LAB_IF], { allowFail: true })).stdout)?.[0]?.addr_info?.[0]?.local;
  const host = parseIPv4(route ?? firstGlobal ?? '');
  const labEnd = parseIPv4(lab4 ?? '');
  if (host === null || host === undefined || labEnd === null || labEnd === undefined) return undefined;
  const ping = await runner.run(['python3', '-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)'], { allowFail: true }).catch(() => ({ code: 1 }));
  return { host, labEnd, ping: ping.code === 0 };
}

const NOT_SENT = "not probed: it would leave this machine by the host's default route";
const cellKey = (from: string, to: string, probe: Probe) => `${from}|${to}|${probe}`;

/** Predicts and measures a running lab's matrix (and its declared checks). */
export async function checkLab(labName: string, opts: CheckOptions = {}): Promise<CheckReport> {
  return checkWith(localAccess(await upState(labName)), opts);
}

/** Predicts and measures a running lab's matrix (and its declared checks), reaching it through `access`. */
export async function checkWith(access: CheckAccess, opts: CheckOptions = {}): Promise<CheckReport> {
  const t0 = Date.now();
  const state = access.state;
  const lab = state.lab;
  const live = await liveFacts(state, opts, access);
  const prediction = predict(lab, live);
  const { checks } = resolveChecks(lab, live);
  const probes = opts.only ? [opts.only] : (['ping', 'tcp'] as Probe[]);

  // What each source probes: every applicable cell of the matrix (or only the declared checks), de-duplicated.
  // `reaches`: what the model (or a declared check's expectation) says of it; a probe that should reach and did not is
  // probed again before it is reported.
  type Job = { key: string; spec: ProbeSpec; dest: Destination; reaches: boolean };
  const jobs = new Map<string, Job[]>();
  const measured = new Map<string, Measured>();
  const want = (from: string, key: string, spec: ProbeSpec, dest: Destination, reaches: boolean) => {
    const list = jobs.get(from) ?? [];
    list.push({ key, spec, dest, reaches });
    jobs.set(from, list);
  };
  const byId = new Map(prediction.destinations.map((d) => [d.id, d]));
  const target = (d: Destination, probe: Probe, port = CHECK_PORT): ProbeSpec =>
    probe === 'ping' ? { probe, ip: formatIPv4(d.ip) } : { probe, ip: formatIPv4(d.ip), port: d.port ?? port };
  if (!opts.declaredOnly)
    for (const c of prediction.cells)
      if (c.predicted && probes.includes(c.probe) && !byId.get(c.to)!.dhcp) {
        // Safety: a probe whose packets (or answers) would leave this machine is never sent.
        if (c.predicted.leaves) measured.set(cellKey(c.from, c.to, c.probe), { ok: false, skipped: NOT_SENT });
        else want(c.from, cellKey(c.from, c.to, c.probe), target(byId.get(c.to)!, c.probe), byId.get(c.to)!, c.predicted.ok);
      }
  checks.forEach((c, i) => {
    const v = predictOne(lab, c.source, c.destination, c.check.probe, live);
    if (v?.leaves) measured.set(`declared|${i}`, { ok: false, skipped: NOT_SENT });
    else want(c.source.id, `declared|${i}`, target(c.destination, c.check.probe, c.check.port), c.destination, c.check.expect === 'pass' || !!v?.ok);
  });

  // Listeners: in every guest that is probed by TCP, in the lab namespace, on the host's end of the uplink.
  const ports = new Map<string, Set<number>>(); // destination place -> ports
  const addPort = (place: string, port: number) => ports.set(place, (ports.get(place) ?? new Set()).add(port));
  const placeOf = (d: Destination) => (d.kind === 'node' ? `node:${d.node}` : d.kind === 'host' || (d.kind === 'upstream' && !live.upstream) ? 'labns' : d.kind === 'upstream' ? 'root' : '');
  for (const list of jobs.values())
    for (const j of list) {
      if (j.spec.probe !== 'tcp') continue;
      const d = j.dest;
      if (d.kind === 'forward') addPort(`node:${d.node}`, lab.forwards.find((f) => f.host === d.port)!.port);
      else if (d.kind === 'hostfwd') {
        const node = lab.nodes.find((n) => n.name === d.node)!;
        addPort(`node:${d.node}`, node.nics.flatMap((n) => n.hostfwd).find((h) => h.host === d.port)!.guest);
      } else addPort(placeOf(d), j.spec.port!);
    }
  const say = opts.progress ?? (() => {});
  const stoppers: Array<() => void> = [];
  const started: string[] = [];
  const unreachableAgent = new Map<string, string>();
  let probeAddr = false;
  try {
    const total = [...jobs.values()].reduce((n, l) => n + l.length, 0);
    say(`${total} probes from ${jobs.size} sources; listening on TCP ${[...new Set([...ports.values()].flatMap((s) => [...s]))].join(', ') || '(none)'}`);
    if (!live.upstream && prediction.destinations.some((d) => d.kind === 'upstream')) {
      const r = await access.run('lab', ['ip', 'addr', 'add', `${PROBE_UPSTREAM}/32`, 'dev', 'lo'], 10_000);
      if (r.code !== 0) throw new RuntimeError(`the probes' upstream address ${PROBE_UPSTREAM} could not be added in the lab namespace`);
      probeAddr = true;
    }
    await bounded([...ports.entries()].filter(([p]) => p.startsWith('node:')), PARALLEL, async ([p, set]) => {
      const node = p.slice(5);
      try {
        await access.guestSh(node, listenScript([...set]), 20_000, [LISTEN_ARG]);
        started.push(node);
      } catch (e) {
        unreachableAgent.set(node, (e as Error).message.split('\n')[0]!);
      }
    });
    const nsListen = async (where: 'lab' | 'host', addrs: string[]) => {
      if (addrs.length) stoppers.push(await access.listen(where, addrs));
    };
    const labnsAddrs: string[] = [];
    for (const d of prediction.destinations)
      if (d.kind === 'host' || (d.kind === 'upstream' && !live.upstream)) for (const port of ports.get('labns') ?? []) labnsAddrs.push(`${formatIPv4(d.ip)}:${port}`);
    await nsListen('lab', labnsAddrs);
    if (live.upstream !== undefined) await nsListen('host', [...(ports.get('root') ?? [])].map((port) => `${formatIPv4(live.upstream!)}:${port}`));

    // Every source runs its probes at once; `again` marks the second try of those that should have reached.
    const probeAll = (rows: Map<string, Job[]>, waitS: number, again: boolean) =>
      bounded([...rows.entries()], PARALLEL, async ([from, list]) => {
        const specs = [...new Map(list.map((j) => [probeKey(j.spec), j.spec])).values()];
        let out: string;
        try {
          if (from === 'host' || from === 'upstream') {
            const script = probeScript(specs, { busybox: true, waitS });
            out = (await access.run(from === 'host' ? 'lab' : 'host', ['busybox', 'sh', '-c', script], 60_000)).stdout;
          } else {
            const why = unreachableAgent.get(from);
            if (why) throw new RuntimeError(why);
            out = await access.guestSh(from, probeScript(specs, { waitS }), 60_000);
          }
        } catch (e) {
          for (const j of list) measured.set(j.key, { ok: false, skipped: `not measured: ${(e as Error).message.split('\n')[0]}` });
          return;
        }
        const results = parseProbeOutput(out);
        for (const j of list) {
          const r = results.get(probeKey(j.spec));
          const d = j.dest;
          const deaf = j.spec.probe === 'tcp' && d.kind === 'node' && unreachableAgent.has(d.node!);
          const m = r && again ? { ...r, detail: `${r.detail}${r.ok ? '' : ', also'} on a second try of ${waitS} s` } : r;
          measured.set(j.key, !m ? { ok: false, skipped: 'not measured: no result' } : deaf ? { ok: m.ok, skipped: `not measured: no listener in ${d.node} (${unreachableAgent.get(d.node!)})` } : m);
        }
        say(`${from}: ${list.length} probes done${again ? ' (second try)' : ''}`);
      });
    await probeAll(jobs, WAIT_S, false);
    const retry = new Map<string, Job[]>();
    for (const [from, list] of jobs) {
      const missed = list.filter((j) => j.reaches && measured.get(j.key)?.ok === false && !measured.get(j.key)?.skipped);
      if (missed.length) retry.set(from, missed);
    }
    const doubted = [...retry.values()].reduce((n, l) => n + l.length, 0);
    if (doubted) {
      say(`${doubted} probe${doubted > 1 ? 's' : ''} did not reach what should be reached: trying again, waiting ${RETRY_WAIT_S} s`);
      await probeAll(retry, RETRY_WAIT_S, true);
    }
  } finally {
    for (const stop of stoppers) stop();
    await Promise.all(started.map((node) => access.guestSh(node, stopScript(), 10_000).catch(() => '')));
    if (probeAddr) await access.run('lab', ['ip', 'addr', 'del', `${PROBE_UPSTREAM}/32`, 'dev', 'lo'], 10_000).catch(() => undefined);
  }
  const declared = checks.map((c, i): DeclaredResult => declaredResult(lab, c, live, measured.get(`declared|${i}`)));
  for (const k of [...measured.keys()]) if (k.startsWith('declared|')) measured.delete(k);
  return { lab: lab.name, prediction, measured, declared, ms: Date.now() - t0 };
}

function declaredResult(lab: ResolvedLab, c: ResolvedCheck, live: LiveFacts, m?: Measured): DeclaredResult {
  const v = predictOne(lab, c.source, c.destination, c.check.probe, live) ?? { ok: false, via: '', hops: [], reason: 'the probe does not apply' };
  const want = c.check.expect === 'pass';
  // Not measured: a probe never sent for safety is judged by the prediction; one that could not be measured fails.
  const ok = m && !m.skipped ? m.ok === want : v.ok === want && (!m || m.skipped === NOT_SENT);
  return { label: c.label, expect: c.check.expect, predicted: { ok: v.ok, via: v.via, ...(v.reason ? { reason: v.reason } : {}) }, ...(m ? { measured: m } : {}), ok };
}

/** The declared checks of a topology as the model predicts them (no lab needed). */
export function predictDeclared(lab: ResolvedLab): DeclaredResult[] {
  return resolveChecks(lab).checks.map((c) => declaredResult(lab, c, {}));
}

// Runs a shell script in a guest through its agent (as `qnet exec` does); its stdout.
async function guestSh(lab: string, node: string, script: string, timeoutMs: number, args: string[] = []): Promise<string> {
  return (await execInGuest(lab, node, ['sh', '-c', script, 'sh', ...args], { timeoutMs })).stdout.toString();
}

// Starts a listener process and waits for it to bind.
function listen(argv: string[], children: ChildProcess[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new RuntimeError(`check listener exited (${code}): ${err.trim()}`)));
  });
}

async function bounded<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}
