// A lab over several hosts, driven from this machine: resolve, observe every host (before any change), plan the whole
// lab (placement, MTU, the northbound batch: pure), make the northbound rows once through the central, then each
// host's part by qnet on that host (`qnet agent`, hosts/host.ts). A failure anywhere undoes every host and every
// northbound row. `down` asks every host to remove what it holds of the lab (found by its markers), with or without
// the driver's state file; a host it cannot reach is named and the rest still removed.
import { rm } from 'node:fs/promises';
import { RuntimeError, UserError } from '../errors.js';
import { hostsStatePath, readHostsState, writeHostsState, type HostsState } from './hosts-state.js';
import { hostOf, HostUnreachable, type Host } from '../hosts/host.js';
import { splitParts, type AgentEvent, type HostObserved } from '../hosts/protocol.js';
import { labGuestMtu } from '../fabric/ovn/mtu.js';
import { renderNbUp } from '../fabric/ovn/nb.js';
import { capacityOf, placeNodes } from '../plan/placement.js';
import { formatIPv4, parseIPv4 } from '../topology/ipv4.js';
import type { ResolvedLab } from '../topology/model.js';
import { qnetVersion } from './agent.js';
import { ovnOnThisHost } from './ovn.js';
import { silentReporter, type Reporter } from './up.js';
import type { ExecResult } from '../qemu/agent.js';
import type { CheckAccess } from './check.js';
import type { LabState } from './state.js';
import { uplinkHostIf } from '../render/uplink.js';
import { usesUplink } from '../topology/model.js';

/** True for a lab whose nodes run on hosts other than this machine alone (made through each host's agent). */
export function spansHosts(lab: ResolvedLab): boolean {
  return lab.fabric === 'ovn' && !ovnOnThisHost(lab);
}

// Each host's events, prefixed with its name, to the driver's reporter.
function relay(reporter: Reporter, host: string): (e: AgentEvent) => void {
  return (e) => {
    if (e.event === 'step') reporter.step(`${host}: ${e.title}`, e.ms, e.ok);
    else if (e.event === 'info') reporter.info(`${host}: ${e.message}`);
  };
}

/**
 * Observes every host at once and refuses (exit 1, before any change) a host that cannot be reached, runs another
 * qnet, or whose OVN is not ready or not the chassis the lab names; every problem of every host is said.
 */
export async function observeHosts(lab: ResolvedLab, hosts: Host[]): Promise<Map<string, HostObserved>> {
  const version = await qnetVersion();
  const results = await Promise.all(hosts.map(async (h) => ({ h, r: await h.call({ op: 'observe' }, undefined, 30000).then((v) => ({ ok: v as HostObserved }), (e: Error) => ({ err: e })) })));
  const problems: string[] = [];
  const out = new Map<string, HostObserved>();
  for (const { h, r } of results) {
    if ('err' in r) {
      problems.push(r.err instanceof HostUnreachable ? r.err.message : `hosts.${h.name} (${h.where}): ${r.err.message}`);
      continue;
    }
    const o = r.ok;
    const at = `hosts.${h.name} (${h.where})`;
    if (o.version !== version) problems.push(`${at} runs qnet ${o.version}, this machine ${version}: install the same qnet on every host`);
    else if (!o.ovn.ready) problems.push(...o.ovn.problems.map((p) => `${at}: ${p.replace('--name NAME', `--name ${h.name}`)}`));
    else if (o.ovn.chassis !== h.name) problems.push(`${at} is OVN chassis "${o.ovn.chassis}", not "${h.name}": run \`qnet host setup --name ${h.name} …\` there, or name the host ${o.ovn.chassis}`);
    out.set(h.name, o);
  }
  if (problems.length) throw new RuntimeError(`lab ${lab.name} spans ${hosts.length} hosts, and not all are ready:\n  ${problems.join('\n  ')}\nnothing was made or changed on any host`);
  return out;
}

/** Options of `up` over several hosts. */
export interface HostsUpOptions {
  reporter?: Reporter;
  readyTimeoutMs?: number;
  cold?: boolean;
}

/** Brings a lab up over its hosts; on any failure removes every host's part and every northbound row (see downHosts). */
export async function upHosts(input: ResolvedLab, opts: HostsUpOptions = {}): Promise<{ ms: number; placement: Record<string, string>; mtu: number }> {
  const t0 = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  const prior = await readHostsState(input.name);
  if (prior) throw new RuntimeError(`lab ${input.name} is already up over hosts ${prior.parts.join(', ') || (prior.lab.hosts ?? []).map((h) => h.name).join(', ')} (or left over): run \`qnet down ${input.name}\` first`);
  // An OVN that runs already (Incus, OpenStack): its databases are not yet handed to the hosts' agents; refused before
  // anything is asked of any host rather than made half-way.
  if (input.ovn?.nb !== undefined)
    throw new UserError(`ovn.nb: a lab over several hosts on an OVN that runs already is not made yet; give "ovn: { central: HOST }" (one of the lab's hosts, set up with \`qnet host setup --central\`), or put the lab on one host ("fabric: ovn" without "hosts")`);
  const hosts = (input.hosts ?? []).map(hostOf);
  const observed = await observeHosts(input, hosts);
  reporter.step(`observe ${hosts.length} hosts: ${[...observed].map(([n, o]) => `${n} (chassis ${o.ovn.chassis}, ${o.ovn.datapath ?? 'system'}, ${o.facts.cpus} CPUs, ${o.facts.memoryMiB} MiB free)`).join(', ')}`, Date.now() - t0, true);
  // Plan the whole lab (pure from here to the first change).
  const placement = placeNodes(input, Object.fromEntries((input.hosts ?? []).map((h) => [h.name, capacityOf(h, observed.get(h.name)!.facts)]))).hosts;
  const mtu = labGuestMtu([...observed.values()].map((o) => o.underlay?.mtu ?? 1500));
  const chassis = Object.fromEntries([...observed].map(([n, o]) => [n, o.ovn.chassis!]));
  const tunnels = Object.fromEntries(
    (input.hosts ?? []).map((h) => {
      const o = observed.get(h.name)!;
      const ip = h.underlay !== undefined ? formatIPv4(h.underlay) : o.ovn.encapIp;
      return [h.name, ip && o.underlay ? { ip, mac: o.underlay.mac } : undefined];
    }),
  );
  const lab = input;
  const nb = renderNbUp(lab, { placement, mtu });
  const parts = splitParts(lab, placement, chassis, tunnels);
  const central = hosts.find((h) => h.name === (lab.ovn?.central ?? lab.ovn?.gateway)) ?? hosts[0]!;
  const state: HostsState = { lab, status: 'starting', placement, parts: [], createdAt: new Date().toISOString(), upBy: process.pid };
  await writeHostsState(state);
  let onSignal: (() => void) | undefined;
  try {
    const interrupted = new Promise<never>((_, reject) => {
      onSignal = () => reject(new RuntimeError('interrupted'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    });
    interrupted.catch(() => {});
    const t1 = Date.now();
    await central.call({ op: 'nb', lab: lab.name, commands: nb }, undefined, 60000);
    reporter.step(`${central.name}: create the lab's logical switches and ports in the northbound DB (one transaction of ${nb.length} commands; guests' MTU ${mtu})`, Date.now() - t1, true);
    state.parts = hosts.map((h) => h.name);
    await writeHostsState(state);
    // Every host's part at once. The first failure (or an interrupt) stops the others: each host's agent undoes its
    // part and answers, and only then is everything removed (nothing races a host's own rollback).
    const stop = new AbortController();
    // Test hook: QNET_TEST_FAIL_HOST_STEP=HOST:N fails that host's part before its step N (and so rolls back all).
    const [failHost, failStep] = (process.env.QNET_TEST_FAIL_HOST_STEP ?? '').split(':');
    const running = parts.map(({ lab: partLab, part }) => {
      const h = hosts.find((x) => x.name === part.host)!;
      return h.call({ op: 'up-part', lab: partLab, part, ...(opts.readyTimeoutMs ? { readyTimeoutMs: opts.readyTimeoutMs } : {}), ...(opts.cold ? { cold: true } : {}), ...(failHost === h.name ? { failBeforeStep: Number(failStep) } : {}) }, relay(reporter, h.name), 0, stop.signal).catch((e: Error) => {
        stop.abort();
        throw new RuntimeError(`hosts.${h.name}: ${e.message}`, { cause: e });
      });
    });
    try {
      await Promise.race([Promise.all(running), interrupted]);
    } catch (e) {
      stop.abort();
      await Promise.allSettled(running);
      throw e;
    }
    state.status = 'up';
    await writeHostsState(state);
    return { ms: Date.now() - t0, placement, mtu };
  } catch (err) {
    reporter.info(`${(err as Error).message.split('\n')[0]}: undoing every host's part and the northbound rows`);
    const r = await downHosts(lab.name, hosts, { reporter });
    const left = r.unreachable.length ? `; ${r.unreachable.join('; ')}: \`qnet down ${lab.name}\` removes what is left there` : '; nothing of the lab is left on any host';
    throw new RuntimeError(`qnet up ${lab.name} failed: ${(err as Error).message}\nrolled back on ${hosts.length - r.unreachable.length} of ${hosts.length} hosts${left}`, { cause: err });
  } finally {
    if (onSignal) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

/** What `down` over several hosts did: per host, what it removed; the hosts it could not reach, each with why. */
export interface HostsDownResult {
  removed: Record<string, string[]>;
  unreachable: string[];
  ms: number;
}

/**
 * Removes a lab from every host (each host's agent finds its part by the markers; the central's takes the northbound
 * rows): also without any state. The driver's state goes once every host answered.
 */
export async function downHosts(lab: string, hosts: Host[], opts: { reporter?: Reporter } = {}): Promise<HostsDownResult> {
  const t0 = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  const removed: Record<string, string[]> = {};
  const unreachable: string[] = [];
  await Promise.all(
    hosts.map(async (h) => {
      try {
        const r = (await h.call({ op: 'down-part', lab }, relay(reporter, h.name), 180000)) as { removed: string[]; warnings: string[] };
        removed[h.name] = r.removed;
        for (const w of r.warnings) reporter.info(`${h.name}: ${w}`);
      } catch (e) {
        unreachable.push((e as Error).message.split('\n')[0]!);
      }
    }),
  );
  if (!unreachable.length) await rm(hostsStatePath(lab), { force: true });
  return { removed, unreachable, ms: Date.now() - t0 };
}

/** The hosts of a lab for `down`, `status` and `exec`: from the driver's state, else from the topology given. */
export async function hostsOf(lab: string, topology?: ResolvedLab): Promise<{ hosts: Host[]; state: HostsState | null } | null> {
  const state = await readHostsState(lab);
  const resolved = state?.lab ?? topology;
  if (!resolved || !spansHosts(resolved)) return null;
  return { hosts: (resolved.hosts ?? []).map(hostOf), state };
}

/** The host a node of a lab over several hosts runs on (from the driver's state). */
export function hostOfNode(state: HostsState, node: string): Host {
  const name = state.placement[node];
  if (!name) throw new RuntimeError(`lab ${state.lab.name} has no node "${node}" (nodes: ${Object.keys(state.placement).join(', ')})`);
  return hostOf(state.lab.hosts!.find((h) => h.name === name)!);
}

/** Runs argv in a guest of a lab over several hosts, through the agent of the node's host. */
export async function execOnHost(state: HostsState, node: string, argv: string[], timeoutMs?: number): Promise<ExecResult> {
  const r = (await hostOfNode(state, node).call({ op: 'exec', lab: state.lab.name, node, argv, ...(timeoutMs ? { timeoutMs } : {}) })) as Omit<ExecResult, 'stdout' | 'stderr'> & { stdout: string; stderr: string };
  return { ...r, stdout: Buffer.from(r.stdout, 'base64'), stderr: Buffer.from(r.stderr, 'base64') };
}

/**
 * A lab over several hosts as `qnet check` reaches it: each guest through its host's agent; the lab namespace, the
 * listeners and the uplink those of the gateway host (where the networks' host sides and the uplink are).
 */
export function hostsAccess(state: HostsState): CheckAccess {
  const lab = state.lab.name;
  const gateway = state.lab.hosts!.find((h) => h.name === state.lab.ovn?.gateway) ?? state.lab.hosts![0]!;
  const gw = hostOf(gateway);
  const run = async (where: 'lab' | 'host', argv: string[], timeoutMs: number) => (await gw.call({ op: 'run', lab, where, argv, timeoutMs }, undefined, timeoutMs + 15000)) as { code: number; stdout: string };
  return {
    // What the model needs of the lab's state: its definition (no link or impairment changed: not made over hosts yet).
    state: { version: 1, lab: state.lab, status: 'up', createdAt: state.createdAt, guests: {} } as unknown as LabState,
    guestSh: async (node, script, timeoutMs, args = []) => (await execOnHost(state, node, ['sh', '-c', script, 'sh', ...args], timeoutMs)).stdout.toString(),
    run,
    listen: async (where, addrs) => {
      const stop = new AbortController();
      let ready!: () => void;
      const listening = new Promise<void>((resolve) => (ready = resolve));
      const call = gw.call({ op: 'listen', lab, where, addrs }, (e) => e.event === 'info' && e.message === 'listening' && ready(), 0, stop.signal);
      call.catch(() => {});
      await Promise.race([listening, call.then(() => Promise.reject(new RuntimeError(`hosts.${gw.name}: the check listener ended at once`)))]);
      return () => stop.abort();
    },
    uplinkAddress: async () => {
      if (!state.lab.networks.some(usesUplink)) return undefined;
      const r = await run('host', ['ip', '-j', '-4', 'addr', 'show', 'dev', uplinkHostIf(lab)], 10000);
      const a = r.code === 0 ? (JSON.parse(r.stdout || '[]') as Array<{ addr_info?: Array<{ local: string }> }>)[0]?.addr_info?.[0]?.local : undefined;
      return a ? (parseIPv4(a) ?? undefined) : undefined;
    },
  };
}
