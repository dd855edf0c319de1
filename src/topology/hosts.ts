// The fabric of a lab and the hosts it spans: `fabric`, `hosts`, `ovn` and each node's `host`, resolved and checked.
// Pure; collects issues. A lab with none of these keys resolves to nothing here, so it stays exactly as before.
import type { Findings } from './findings.js';
import { formatIPv4, parseIPv4 } from './ipv4.js';
import { LOCAL_HOST, type OvnSpec, type ResolvedHost, type ResolvedLab } from './model.js';
import { refuseOnOvn } from './ovn-rules.js';
import { formatPath } from './paths.js';
import type { Topology } from './schema.js';
import { parseSshTarget, sshAddress, sshDestination } from './ssh-target.js';

/** What a lab's fabric adds to the resolved model: nothing for Linux bridges, hosts and OVN for OVN. */
export type FabricPart = Pick<ResolvedLab, 'fabric' | 'hosts' | 'ovn'>;

/** True when the topology asks for OVN: `fabric: ovn`, or `hosts:` or `ovn:` (which imply it). */
export function wantsOvn(topo: Pick<Topology, 'fabric' | 'hosts' | 'ovn'>): boolean {
  return topo.fabric === 'ovn' || (topo.fabric === undefined && (topo.hosts !== undefined || topo.ovn !== undefined));
}

/**
 * The fabric, hosts and OVN databases of a lab; problems (a node on a host not declared, two hosts with one underlay,
 * a feature OVN cannot carry, ...) are added to `issues`.
 */
export function normalizeFabric(topo: Topology, issues: Findings): FabricPart {
  if (topo.fabric === 'bridge') {
    if (topo.hosts !== undefined)
      issues.add('fabric', 'a lab on several hosts runs on OVN: remove "fabric: bridge" ("hosts" implies fabric ovn), or remove "hosts"');
    if (topo.ovn !== undefined) issues.add('ovn', '"ovn" says where the OVN databases of a lab on OVN are: remove it, or use "fabric: ovn"');
  }
  if (!wantsOvn(topo)) {
    for (const [name, node] of Object.entries(topo.nodes))
      if (node.host !== undefined)
        issues.add(
          ['nodes', name, 'host'],
          `"host" places a node on one of the lab's hosts: declare them under "hosts" (like hosts: { a: { ssh: root@192.0.2.10 } }), or remove "host"`,
          'hosts',
          'fabric',
        );
    return {};
  }
  const hosts = resolveHosts(topo, issues);
  const names = hosts.map((h) => h.name);
  const known = (name: string) => names.includes(name) || (topo.hosts !== undefined && Object.hasOwn(topo.hosts, name));
  const list = topo.hosts === undefined ? 'this lab declares no "hosts": it runs on this machine only' : `hosts: ${Object.keys(topo.hosts).join(', ') || 'none'}`;
  const unknownHost = (path: Array<string | number>, name: string) =>
    issues.add(path, `unknown host "${name}" (${list})`, ['hosts', name]);

  for (const [name, node] of Object.entries(topo.nodes)) {
    if (node.host === undefined) continue;
    if (topo.hosts === undefined)
      issues.add(['nodes', name, 'host'], '"host" places a node on one of the lab\'s hosts: declare them under "hosts", or remove "host" (qnet places the node)');
    else if (!known(node.host)) unknownHost(['nodes', name, 'host'], node.host);
  }
  const ovn = resolveOvn(topo, names, issues, unknownHost);
  refuseOnOvn(topo, issues);
  return { fabric: 'ovn', hosts, ovn };
}

// The declared hosts (or this machine alone), each ssh target and underlay parsed; one machine, one host.
function resolveHosts(topo: Topology, issues: Findings): ResolvedHost[] {
  if (topo.hosts === undefined) return [{ name: LOCAL_HOST, ssh: { kind: 'local' } }];
  const out: ResolvedHost[] = [];
  const underlays = new Map<number, string>();
  const machines = new Map<string, string>();
  for (const [name, h] of Object.entries(topo.hosts)) {
    const at = (...p: string[]) => formatPath(['hosts', name, ...p]);
    const ssh = parseSshTarget(h.ssh);
    if (typeof ssh === 'string') {
      issues.refuse(at('ssh'), ssh);
      continue;
    }
    const machine = ssh.kind === 'local' ? 'local' : `${ssh.host}:${ssh.port ?? 22}`;
    const prior = machines.get(machine);
    if (prior) {
      issues.add(at('ssh'), `${ssh.kind === 'local' ? 'this machine' : sshDestination(ssh)} is already ${prior}: one machine is one host`);
      continue;
    }
    machines.set(machine, `hosts.${name}`);
    let underlay: number | undefined;
    let underlayAt = at('underlay');
    if (h.underlay !== undefined) {
      const ip = parseIPv4(h.underlay);
      if (ip === null) issues.refuse(underlayAt, `"${h.underlay}" is not an IPv4 address like 192.0.2.10`);
      else underlay = ip;
    } else {
      underlay = sshAddress(ssh);
      underlayAt = at('ssh');
      if (underlay === undefined && ssh.kind === 'ssh')
        issues.add(at('ssh'), `${ssh.host} is a host name: give the host "underlay", the IPv4 address the other hosts' tunnels reach it at`);
    }
    if (underlay !== undefined) {
      const other = underlays.get(underlay);
      if (other) issues.add(underlayAt, `${formatIPv4(underlay)} is already the underlay address of ${other}: each host needs its own tunnel end`);
      else underlays.set(underlay, `hosts.${name}`);
    }
    out.push({
      name,
      ssh,
      ...(underlay !== undefined ? { underlay } : {}),
      ...(h.datapath !== undefined ? { datapath: h.datapath } : {}),
      ...(h.memory !== undefined ? { memory: h.memory } : {}),
      ...(h.cpus !== undefined ? { cpus: h.cpus } : {}),
    });
  }
  return out;
}

// An OVN database address as ovn-nbctl takes it: tcp:IPv4:PORT, several comma-separated for a clustered database.
const DB_REMOTE = /^tcp:(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/;

/** The reason a database address is refused, or undefined when it is one qnet can use. */
export function dbRemoteProblem(text: string): string | undefined {
  const parts = text.split(',');
  for (const p of parts) {
    const m = DB_REMOTE.exec(p);
    if (!m || parseIPv4(m[1]!) === null || !(Number(m[2]) >= 1 && Number(m[2]) <= 65535))
      return `"${p}" is not a database address like tcp:192.0.2.5:6641${p.startsWith('ssl:') ? ' (ssl needs keys and certificates qnet does not manage yet: use tcp)' : ''}`;
  }
  return undefined;
}

// Where the OVN databases are (a central host, or given addresses), and the gateway host.
function resolveOvn(topo: Topology, hosts: string[], issues: Findings, unknownHost: (p: Array<string | number>, name: string) => void): OvnSpec {
  const o = topo.ovn ?? {};
  const declared = (name: string) => hosts.includes(name) || (topo.hosts !== undefined && Object.hasOwn(topo.hosts, name));
  const external = o.nb !== undefined || o.sb !== undefined;
  if (o.central !== undefined && external)
    issues.add(['ovn', o.nb !== undefined ? 'nb' : 'sb'], 'either "central" (qnet runs OVN on that host) or "nb" and "sb" (an OVN that already runs), not both');
  else if (external && (o.nb === undefined || o.sb === undefined))
    issues.add(['ovn'], `"${o.nb === undefined ? 'sb' : 'nb'}" needs "${o.nb === undefined ? 'nb' : 'sb'}" too: the northbound and the southbound database of one OVN`);
  for (const key of ['nb', 'sb'] as const) {
    const v = o[key];
    const problem = v === undefined ? undefined : dbRemoteProblem(v);
    if (problem) issues.refuse(['ovn', key], problem);
  }
  if (o.central !== undefined && !declared(o.central)) unknownHost(['ovn', 'central'], o.central);
  if (o.gateway !== undefined && !declared(o.gateway)) unknownHost(['ovn', 'gateway'], o.gateway);
  const first = hosts[0] ?? LOCAL_HOST;
  const central = o.central ?? (external ? undefined : first);
  return {
    ...(central !== undefined ? { central } : {}),
    ...(o.nb !== undefined ? { nb: o.nb } : {}),
    ...(o.sb !== undefined ? { sb: o.sb } : {}),
    gateway: o.gateway ?? central ?? first,
  };
}
