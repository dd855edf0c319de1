// Pure rendering of a node's boot configuration, as read by the built-in guest's boot script.
import { formatCidr, formatIPv4 } from '../topology/ipv4.js';
import { subInterfaceName, type ResolvedLab, type ResolvedNode } from '../topology/model.js';
import { defaultGateway, hostsEntries, nicDns } from './guest-net.js';
import { NIC_MODELS } from '../topology/nic-models.js';
import { bridgeMac, hostSideAddresses } from './ipbatch.js';

/** Kernel modules a router guest loads (the rest of netfilter comes in as their dependencies). */
export const ROUTER_MODULES = ['nft_chain_nat', 'nft_masq', 'nft_ct'];

/**
 * The nftables ruleset of a router node, as the seed's iptables lines: masquerade each chosen network's
 * subnet out of the chosen NIC, and accept forwarding from those networks (and replies back to them).
 */
export function renderRouterRuleset(lab: ResolvedLab, node: ResolvedNode): string {
  const r = node.router;
  if (!r) return '';
  const subnetOf = new Map(lab.networks.map((n) => [n.name, n.subnet]));
  const nicOnNetwork = (net: string) => node.nics.find((n) => n.network === net);
  const post: string[] = [];
  const fwd: string[] = [];
  for (const m of r.masquerade) {
    const subnet = subnetOf.get(m.from);
    if (!subnet) continue;
    post.push(`    oifname "${guestIfName(m.out)}" ip saddr ${formatCidr(subnet)} counter masquerade`);
    const inNic = nicOnNetwork(m.from);
    if (inNic) fwd.push(`    iifname "${guestIfName(inNic.index)}" accept`);
  }
  return [
    'table ip qnet {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...post,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    '    ct state established,related accept',
    ...[...new Set(fwd)],
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * The kernel modules a built-in guest loads before its snapshot point: its NICs' drivers, netfilter on routers,
 * 8021q where it has VLAN sub-interfaces. Part of a node's shape: a guest restored from another's state has what
 * that one loaded.
 */
export function guestModules(node: ResolvedNode): string[] {
  const modules: string[] = [...new Set(node.nics.map((n) => NIC_MODELS[n.model].module))];
  if (node.router) modules.push(...ROUTER_MODULES);
  if (node.nics.some((n) => n.vlans?.length)) modules.push('8021q');
  return modules;
}

/** The guest interface name of NIC `index` (stable, in declaration order). */
export function guestIfName(index: number): string {
  return `eth${index}`;
}

/**
 * Renders the directives for one node: `hostname`, `module`, `nic MAC NAME`, `addr NAME CIDR`, `vlan NAME ID`, `arp IP MAC`,
 * `route DEST VIA`, `host NAME IP`, `snapshot`. Every value has been validated, so none carries spaces or shell syntax.
 */
export function renderGuestConfig(lab: ResolvedLab, node: ResolvedNode, opts: { snapshot?: boolean } = {}): string {
  const lines: string[] = [`hostname ${node.name}`];
  for (const m of guestModules(node)) lines.push(`module ${m}`);
  // Stop at the snapshot point (drivers loaded, nothing of the node applied) until the host has saved the state.
  if (opts.snapshot) lines.push('snapshot');
  for (const nic of node.nics) lines.push(`nic ${nic.mac} ${guestIfName(nic.index)}`);
  for (const nic of node.nics) {
    if (nic.dhcp) lines.push(`dhcp ${guestIfName(nic.index)}`);
    else for (const a of nic.addresses) lines.push(`addr ${guestIfName(nic.index)} ${formatCidr(a)}`);
    // Its VLAN sub-interfaces (eth0.10), each made before its addresses.
    for (const v of nic.vlans ?? []) {
      lines.push(`vlan ${guestIfName(nic.index)} ${v.id}`);
      for (const a of v.addresses) lines.push(`addr ${subInterfaceName(guestIfName(nic.index), v.id)} ${formatCidr(a)}`);
    }
  }
  // The host side's MAC is fixed (see ipbatch.ts): the guest knows it without an ARP broadcast to every guest.
  for (const nic of node.nics) {
    const net = lab.networks.find((n) => n.name === nic.network);
    if (net && hostSideAddresses(net, nic).length) lines.push(`arp ${formatIPv4(net.address!.ip)} ${bridgeMac(lab.name, net.name)}`);
  }
  const gw = defaultGateway(lab, node);
  if (gw !== undefined) lines.push(`route default ${gw}`);
  for (const r of node.routes ?? []) lines.push(`route ${formatCidr(r.to)} ${formatIPv4(r.via)}`);
  // Static NICs on a network with dnsmasq use it for names; DHCP NICs learn it from their lease.
  for (const dns of new Set(nicDns(lab, node).values())) lines.push(`dns ${dns}`);
  if (node.router) {
    if (node.router.forward) lines.push('sysctl net.ipv4.ip_forward 1');
    lines.push('nft');
  }
  // Every node's name resolves from every guest through /etc/hosts.
  for (const h of hostsEntries(lab, node)) lines.push(`host ${h.name} ${h.ip}`);
  return lines.join('\n') + '\n';
}
