// Pure planning of a change to a running lab: what differs between the lab as it runs and the topology as it
// is now, which of it can be applied in place (nodes, bridge-only networks), and what must be refused and why.
import type { ResolvedLab, ResolvedNetwork, ResolvedNode } from '../topology/model.js';

export interface ChangeSet {
  addNetworks: string[];
  removeNetworks: string[];
  addNodes: string[];
  removeNodes: string[];
  /** Nodes whose definition changed: stopped and started again with the new one. */
  restartNodes: string[];
  /** Reasons the change cannot be applied in place (empty when it can). */
  refused: string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

// A network that only a bridge makes (no uplink, no dnsmasq) can come and go while the lab runs.
function simpleNetwork(n: ResolvedNetwork): boolean {
  return (n.mode === 'bridge' || n.mode === 'isolated') && !n.dhcp;
}

/** Compares the running lab with the new topology of the same name. */
export function diffLabs(running: ResolvedLab, next: ResolvedLab): ChangeSet {
  const c: ChangeSet = { addNetworks: [], removeNetworks: [], addNodes: [], removeNodes: [], restartNodes: [], refused: [] };
  if (!same(running.forwards, next.forwards)) c.refused.push('forwards changed: the host firewall table is made with the lab (run `qnet down` then `qnet up`)');
  const oldNets = new Map(running.networks.map((n) => [n.name, n]));
  const newNets = new Map(next.networks.map((n) => [n.name, n]));
  for (const [name, n] of newNets) {
    const o = oldNets.get(name);
    if (!o) {
      if (simpleNetwork(n)) c.addNetworks.push(name);
      else c.refused.push(`networks.${name}: a new ${n.mode} network${n.dhcp ? ' with DHCP' : ''} needs the lab to be made again (down, then up)`);
    } else if (!same(o, n)) c.refused.push(`networks.${name} changed (mode, bridge, subnet, address, DHCP or filters): down, then up`);
  }
  for (const [name, o] of oldNets)
    if (!newNets.has(name)) {
      if (simpleNetwork(o)) c.removeNetworks.push(name);
      else c.refused.push(`networks.${name}: removing a ${o.mode} network${o.dhcp ? ' with DHCP' : ''} needs the lab to be made again (down, then up)`);
    }
  // A node on a DHCP network has a static lease or a name in dnsmasq's configuration, made with the lab.
  const onDhcp = (n: ResolvedNode, nets: Map<string, ResolvedNetwork>) => n.nics.some((c2) => nets.get(c2.network)?.dhcp);
  const oldNodes = new Map(running.nodes.map((n) => [n.name, n]));
  const newNodes = new Map(next.nodes.map((n) => [n.name, n]));
  for (const [name, n] of newNodes) {
    const o = oldNodes.get(name);
    if (o && same(o, n)) continue;
    if (onDhcp(n, newNets) || (o && onDhcp(o, oldNets))) {
      c.refused.push(`nodes.${name}: ${o ? 'changing' : 'adding'} a node on a DHCP network is not applied live yet (down, then up)`);
      continue;
    }
    (o ? c.restartNodes : c.addNodes).push(name);
  }
  for (const [name, o] of oldNodes)
    if (!newNodes.has(name)) {
      if (onDhcp(o, oldNets)) c.refused.push(`nodes.${name}: removing a node on a DHCP network is not applied live yet (down, then up)`);
      else c.removeNodes.push(name);
    }
  return c;
}

/** True when nothing differs. */
export function isEmpty(c: ChangeSet): boolean {
  return !c.addNetworks.length && !c.removeNetworks.length && !c.addNodes.length && !c.removeNodes.length && !c.restartNodes.length && !c.refused.length;
}

/** A readable summary of a change set. */
export function formatChange(c: ChangeSet): string {
  const lines: string[] = [];
  const add = (label: string, xs: string[]) => xs.length && lines.push(`  ${label}: ${xs.join(', ')}`);
  add('add networks', c.addNetworks);
  add('remove networks', c.removeNetworks);
  add('add nodes', c.addNodes);
  add('remove nodes', c.removeNodes);
  add('restart changed nodes', c.restartNodes);
  for (const r of c.refused) lines.push(`  refused: ${r}`);
  return lines.join('\n');
}
