// How the lab namespace (where qnet's own probes and `qnet ssh` run) reaches a node: pure, from the topology.
import { formatIPv4 } from './ipv4.js';
import { usesUplink, type ResolvedLab, type ResolvedNetwork, type ResolvedNode } from './model.js';

/** Where a node answers from the lab namespace: a static address, the lease of a NIC, or a user-mode forward. */
export type LabRoute =
  | { kind: 'address'; ip: string; port: number }
  | { kind: 'lease'; network: string; mac: string; port: number }
  | { kind: 'hostfwd'; ip: '127.0.0.1'; port: number };

// Networks on which the lab namespace itself has an address (the bridge's host side).
function hostSide(net: ResolvedNetwork | undefined): boolean {
  return !!net && (net.address !== undefined || usesUplink(net)) && net.mode !== 'isolated';
}

/**
 * The first way to reach `port` of a node from the lab namespace: its first static address on a network with a
 * host side, else the lease of its first NIC on a network where qnet serves DHCP, else a user-mode NIC's forward of
 * that port (on the namespace's loopback). Null when there is none.
 */
export function labRoute(lab: ResolvedLab, node: ResolvedNode, port: number): LabRoute | null {
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  for (const nic of node.nics) {
    const net = nets.get(nic.network);
    if (nic.kind !== 'bridge' || !hostSide(net)) continue;
    if (nic.addresses[0] && !nic.dhcp) return { kind: 'address', ip: formatIPv4(nic.addresses[0].ip), port };
  }
  for (const nic of node.nics) {
    const net = nets.get(nic.network);
    if (nic.kind !== 'bridge' || !net?.dhcp || !hostSide(net)) continue;
    if (nic.addresses[0]) return { kind: 'address', ip: formatIPv4(nic.addresses[0].ip), port };
    return { kind: 'lease', network: net.name, mac: nic.mac, port };
  }
  for (const nic of node.nics) {
    const f = nic.kind === 'user' ? nic.hostfwd.find((h) => h.proto === 'tcp' && h.guest === port) : undefined;
    if (f) return { kind: 'hostfwd', ip: '127.0.0.1', port: f.host };
  }
  return null;
}

/** True when the lab namespace can reach `port` of the node (see labRoute). */
export function reachableFromLab(lab: ResolvedLab, node: ResolvedNode, port: number): boolean {
  return labRoute(lab, node, port) !== null;
}
