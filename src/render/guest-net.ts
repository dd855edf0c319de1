// What a guest's network looks like from inside, decided once for every guest kind: its default route, its
// other routes, its DNS servers and the names of the other nodes. The built-in guest's boot configuration and an
// image node's cloud-init network-config are both rendered from these.
import { formatIPv4 } from '../topology/ipv4.js';
import { USER_NET, usesUplink, type ResolvedLab, type ResolvedNode } from '../topology/model.js';

/** The node's default gateway: declared, else the host side of a nat/routed network, else user-mode's 10.0.2.2. */
export function defaultGateway(lab: ResolvedLab, node: ResolvedNode): string | undefined {
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  const user = node.nics.find((n) => n.kind === 'user');
  // Static NICs on a network whose host side is a gateway (nat, routed) route through it unless told otherwise;
  // a DHCP NIC learns its gateway from its lease.
  const staticUplink = node.nics.find((n) => !n.dhcp && n.addresses.length && nets.get(n.network) && usesUplink(nets.get(n.network)!));
  const dhcpNic = node.nics.some((n) => n.dhcp);
  if (node.gateway !== undefined) return formatIPv4(node.gateway);
  if (staticUplink && !dhcpNic) return formatIPv4(nets.get(staticUplink.network)!.address!.ip);
  if (user && !dhcpNic) return USER_NET.gateway;
  return undefined;
}

/** DNS servers of the node's static NICs, by NIC index: user-mode's, and qnet's dnsmasq where a network has one. */
export function nicDns(lab: ResolvedLab, node: ResolvedNode): Map<number, string> {
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  const out = new Map<number, string>();
  for (const nic of node.nics) {
    const net = nets.get(nic.network);
    if (nic.kind === 'user') out.set(nic.index, USER_NET.dns);
    else if (!nic.dhcp && net?.dhcp && net.address) out.set(nic.index, formatIPv4(net.address.ip));
  }
  return out;
}

/** The other nodes by name, at their first address on a lab network (user-mode addresses are every node's own). */
export function hostsEntries(lab: ResolvedLab, node: ResolvedNode): Array<{ name: string; ip: string }> {
  const out: Array<{ name: string; ip: string }> = [];
  for (const other of lab.nodes) {
    const first = other.nics.filter((n) => n.kind !== 'user').flatMap((n) => [...n.addresses, ...(n.vlans ?? []).flatMap((v) => v.addresses)])[0];
    if (first && other.name !== node.name) out.push({ name: other.name, ip: formatIPv4(first.ip) });
  }
  return out;
}
