// Pure rendering of a node's boot configuration, as read by the built-in guest's boot script.
import { formatCidr, formatIPv4 } from '../topology/ipv4.js';
import type { ResolvedLab, ResolvedNode } from '../topology/model.js';
import { NIC_MODELS } from '../topology/schema.js';

/** The guest interface name of NIC `index` (stable, in declaration order). */
export function guestIfName(index: number): string {
  return `eth${index}`;
}

/**
 * Renders the directives for one node: `hostname`, `module`, `nic MAC NAME`, `addr NAME CIDR`,
 * `route DEST VIA`, `host NAME IP`. Every value has been validated, so none carries spaces or shell syntax.
 */
export function renderGuestConfig(lab: ResolvedLab, node: ResolvedNode): string {
  const lines: string[] = [`hostname ${node.name}`];
  const modules = [...new Set(node.nics.map((n) => NIC_MODELS[n.model].module))];
  for (const m of modules) lines.push(`module ${m}`);
  for (const nic of node.nics) lines.push(`nic ${nic.mac} ${guestIfName(nic.index)}`);
  for (const nic of node.nics) for (const a of nic.addresses) lines.push(`addr ${guestIfName(nic.index)} ${formatCidr(a)}`);
  if (node.gateway !== undefined) lines.push(`route default ${formatIPv4(node.gateway)}`);
  // Every node's name resolves from every guest through /etc/hosts (first address of each node).
  for (const other of lab.nodes) {
    const first = other.nics.flatMap((n) => n.addresses)[0];
    if (first && other.name !== node.name) lines.push(`host ${other.name} ${formatIPv4(first.ip)}`);
  }
  return lines.join('\n') + '\n';
}
