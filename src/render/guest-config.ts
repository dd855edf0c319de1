// Pure rendering of a node's boot configuration, as read by the built-in guest's boot script.
import { formatCidr, formatIPv4 } from '../topology/ipv4.js';
import { USER_NET, usesUplink, type ResolvedLab, type ResolvedNode } from '../topology/model.js';
import { NIC_MODELS } from '../topology/schema.js';

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

/** The guest interface name of NIC `index` (stable, in declaration order). */
export function guestIfName(index: number): string {
  return `eth${index}`;
}

/**
 * Renders the directives for one node: `hostname`, `module`, `nic MAC NAME`, `addr NAME CIDR`,
 * `route DEST VIA`, `host NAME IP`, `snapshot`. Every value has been validated, so none carries spaces or shell syntax.
 */
export function renderGuestConfig(lab: ResolvedLab, node: ResolvedNode, opts: { snapshot?: boolean } = {}): string {
  const lines: string[] = [`hostname ${node.name}`];
  const modules: string[] = [...new Set(node.nics.map((n) => NIC_MODELS[n.model].module))];
  if (node.router) modules.push(...ROUTER_MODULES);
  for (const m of modules) lines.push(`module ${m}`);
  // Stop at the snapshot point (drivers loaded, nothing of the node applied) until the host has saved the state.
  if (opts.snapshot) lines.push('snapshot');
  for (const nic of node.nics) lines.push(`nic ${nic.mac} ${guestIfName(nic.index)}`);
  for (const nic of node.nics) {
    if (nic.dhcp) lines.push(`dhcp ${guestIfName(nic.index)}`);
    else for (const a of nic.addresses) lines.push(`addr ${guestIfName(nic.index)} ${formatCidr(a)}`);
  }
  const user = node.nics.find((n) => n.kind === 'user');
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  // Static NICs on a network whose host side is a gateway (nat, routed) route through it unless told otherwise.
  const staticUplink = node.nics.find((n) => !n.dhcp && n.addresses.length && nets.get(n.network) && usesUplink(nets.get(n.network)!));
  const dhcpNic = node.nics.some((n) => n.dhcp);
  if (node.gateway !== undefined) lines.push(`route default ${formatIPv4(node.gateway)}`);
  else if (staticUplink && !dhcpNic) lines.push(`route default ${formatIPv4(nets.get(staticUplink.network)!.address!.ip)}`);
  else if (user && !dhcpNic) lines.push(`route default ${USER_NET.gateway}`);
  if (user) lines.push(`dns ${USER_NET.dns}`);
  // Static NICs on a network with dnsmasq use it for names; DHCP NICs learn it from their lease.
  for (const nic of node.nics) {
    const net = nets.get(nic.network);
    if (!nic.dhcp && net?.dhcp && net.address) lines.push(`dns ${formatIPv4(net.address.ip)}`);
  }
  if (node.router) {
    if (node.router.forward) lines.push('sysctl net.ipv4.ip_forward 1');
    lines.push('nft');
  }
  // Every node's name resolves from every guest through /etc/hosts (first address of each node).
  for (const other of lab.nodes) {
    const first = other.nics.flatMap((n) => n.addresses)[0];
    if (first && other.name !== node.name) lines.push(`host ${other.name} ${formatIPv4(first.ip)}`);
  }
  return lines.join('\n') + '\n';
}
