// Where each node of a lab on OVN runs: pinned nodes where the topology says, the others packed onto the hosts by
// memory and CPUs (first fit, largest first). Pure: what each host can hold comes in as data, observed or declared.
import { UserError } from '../errors.js';
import type { ResolvedHost, ResolvedLab, ResolvedNode } from '../topology/model.js';

/** What is observed about a host (read on it before anything changes). */
export interface HostFacts {
  /** MemAvailable, in MiB. */
  memoryMiB: number;
  /** Online CPUs. */
  cpus: number;
}

/** What qnet may place on a host: MiB of guests (each with QEMU's own) and virtual CPUs. */
export interface HostCapacity {
  memory: number;
  cpus: number;
  /**
   * The CPU bound is qnet's guess from the host's cores (CPU_OVERCOMMIT each), not the topology's `cpus:`: guests go
   * beyond it (CPUs over-committed, said in the plan) rather than the lab be refused while memory remains.
   */
  cpusSoft?: boolean;
}

/** MiB a host keeps for itself (its daemons, OVS and OVN, page cache) before any guest is placed there. */
export const HOST_RESERVE_MIB = 512;
/** MiB QEMU itself takes beside a guest's memory (measured under TCG: about 40-60 MiB of RSS; rounded up). */
export const QEMU_OVERHEAD_MIB = 64;
/**
 * Virtual CPUs placed per host CPU before a host counts as full: guests mostly wait (one host runs 250 built-in
 * guests on 2 cores). Only a preference where the topology gives no `cpus:` for the host: past it, nodes still go
 * where memory remains (the plan says the CPUs are over-committed), as the same lab on one host would run.
 */
export const CPU_OVERCOMMIT = 4;

/** The node → host map, the hosts whose capacity was not known (their nodes were placed as if it were unbounded), and those given more virtual CPUs than qnet's guess of what they hold. */
export interface Placement {
  hosts: Record<string, string>;
  unbounded: string[];
  overcommitted?: string[];
}

/** What a host may hold: what the topology grants, within what is observed (either alone when it is all there is). */
export function capacityOf(host: ResolvedHost, facts?: HostFacts): HostCapacity | undefined {
  const observed = facts && { memory: Math.max(0, facts.memoryMiB - HOST_RESERVE_MIB), cpus: facts.cpus * CPU_OVERCOMMIT, cpusSoft: true as const };
  if (host.memory === undefined && host.cpus === undefined) return observed;
  return {
    memory: Math.min(host.memory ?? Infinity, observed?.memory ?? Infinity),
    // A declared `cpus:` is a bound; without one, the observed cores are a preference (see CPU_OVERCOMMIT).
    ...(host.cpus !== undefined ? { cpus: host.cpus } : { cpus: observed?.cpus ?? Infinity, ...(observed ? { cpusSoft: true as const } : {}) }),
  };
}

/** What a node takes on its host: its memory and QEMU's own, and its virtual CPUs. */
export function demandOf(node: ResolvedNode): HostCapacity {
  return { memory: node.memory + QEMU_OVERHEAD_MIB, cpus: node.cpus };
}

const fmt = (c: HostCapacity) => `${c.memory === Infinity ? 'unbounded' : `${c.memory} MiB`} and ${c.cpus === Infinity ? 'unbounded' : c.cpus} CPUs`;

/**
 * Places every node of a lab on OVN: a pinned node on its host, the others largest first (memory, then CPUs, then
 * name) on the first host, in the order written, that still holds them. Capacities missing from `capacity` are
 * unbounded. Throws a UserError naming what does not fit and what each host has left.
 */
export function placeNodes(lab: ResolvedLab, capacity: Record<string, HostCapacity | undefined>): Placement {
  const hosts = lab.hosts ?? [];
  if (!hosts.length) throw new UserError(`lab ${lab.name} runs on no hosts (it is not on OVN): nothing to place`);
  const free = new Map(hosts.map((h) => [h.name, { ...(capacity[h.name] ?? { memory: Infinity, cpus: Infinity }) }]));
  const unbounded = hosts.filter((h) => capacity[h.name] === undefined).map((h) => h.name);
  const placed: Record<string, string> = {};
  const take = (node: ResolvedNode, host: string) => {
    const f = free.get(host)!;
    const d = demandOf(node);
    f.memory -= d.memory;
    f.cpus -= d.cpus;
    placed[node.name] = host;
  };
  const problems: string[] = [];
  // Pinned nodes first: they have no choice, and what they leave is what the others share.
  for (const node of lab.nodes.filter((n) => n.host !== undefined)) take(node, node.host!);
  for (const [host, f] of free)
    if (f.memory < 0 || (f.cpus < 0 && !capacity[host]?.cpusSoft)) {
      const pinned = lab.nodes.filter((n) => n.host === host);
      const need = pinned.reduce((s, n) => ({ memory: s.memory + demandOf(n).memory, cpus: s.cpus + demandOf(n).cpus }), { memory: 0, cpus: 0 });
      const has = capacity[host]!;
      problems.push(`the nodes pinned to host ${host} (${pinned.map((n) => n.name).join(', ')}) need ${fmt(need)}; it holds ${fmt(has)}`);
    }
  const rest = lab.nodes
    .filter((n) => n.host === undefined)
    .sort((a, b) => b.memory - a.memory || b.cpus - a.cpus || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const overcommitted = new Set<string>();
  for (const node of rest) {
    const d = demandOf(node);
    const host =
      hosts.find((h) => {
        const f = free.get(h.name)!;
        return f.memory >= d.memory && f.cpus >= d.cpus;
      }) ??
      // No host has the CPUs left: where they are only qnet's guess, the one with the most CPUs left that has the
      // memory takes the node (its CPUs over-committed).
      hosts
        .filter((h) => capacity[h.name]?.cpusSoft && free.get(h.name)!.memory >= d.memory)
        .sort((x, y) => free.get(y.name)!.cpus - free.get(x.name)!.cpus || free.get(y.name)!.memory - free.get(x.name)!.memory)[0];
    if (host) {
      take(node, host.name);
      if (free.get(host.name)!.cpus < 0) overcommitted.add(host.name);
    } else
      problems.push(
        `node ${node.name} needs ${fmt(d)} (its memory and ${QEMU_OVERHEAD_MIB} MiB for QEMU); no host has that left (${hosts
          .map((h) => `${h.name}: ${fmt(clamp(free.get(h.name)!))}`)
          .join('; ')})`,
      );
  }
  if (problems.length)
    throw new UserError(
      `lab ${lab.name} does not fit on its hosts:\n${problems.map((p) => `  ${p}`).join('\n')}\n` +
        'give nodes less memory or fewer CPUs, pin them elsewhere ("host"), or add a host',
    );
  for (const [host, f] of free) if (f.cpus < 0) overcommitted.add(host);
  return { hosts: placed, unbounded, ...(overcommitted.size ? { overcommitted: hosts.map((h) => h.name).filter((h) => overcommitted.has(h)) } : {}) };
}

const clamp = (c: HostCapacity): HostCapacity => ({ memory: Math.max(0, c.memory), cpus: Math.max(0, c.cpus) });

/** The placement as the plan shows it: one line per host with its nodes and what they take. */
export function formatPlacement(lab: ResolvedLab, placement: Placement, capacity: Record<string, HostCapacity | undefined>): string {
  return (lab.hosts ?? [])
    .map((h) => {
      const nodes = lab.nodes.filter((n) => placement.hosts[n.name] === h.name);
      const mem = nodes.reduce((s, n) => s + demandOf(n).memory, 0);
      const cpus = nodes.reduce((s, n) => s + n.cpus, 0);
      const cap = capacity[h.name];
      const of = cap ? ` of ${fmt(cap)}${placement.overcommitted?.includes(h.name) ? ' (CPUs over-committed: its guests share its cores)' : ''}` : ' (capacity not observed)';
      const list = nodes.map((n) => `${n.name}${n.host ? ' (pinned)' : ''}`).join(', ') || 'no nodes';
      return `host ${h.name}: ${list}; ${mem} MiB and ${cpus} CPUs${of}`;
    })
    .join('\n');
}
