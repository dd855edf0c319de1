// Pure rendering of the lab's links as one `ip -batch` script, run inside the lab namespace.
import { formatCidr } from '../topology/ipv4.js';
import type { ResolvedLab } from '../topology/model.js';
import { hasBridge } from '../topology/model.js';

/** The alias every link of a lab carries: its ownership marker. */
export function ownerMarker(lab: string): string {
  return `qnet:lab=${lab}`;
}

/** The commands that create every bridge and tap of the lab (taps owned by `user`), in one batch. */
export function renderLinkBatch(lab: ResolvedLab, user: string): string {
  const mark = ownerMarker(lab.name);
  const out: string[] = ['link set dev lo up', `link set dev lo alias ${mark}`];
  const bridgeOf = new Map(lab.networks.map((n) => [n.name, n.bridge]));
  const bridged = lab.networks.filter((n) => hasBridge(n));
  for (const net of bridged) {
    out.push(`link add name ${net.bridge} type bridge stp_state 0 forward_delay 0`);
    out.push(`link set dev ${net.bridge} alias ${mark}`);
    if (net.address) out.push(`addr add ${formatCidr(net.address)} dev ${net.bridge}`);
  }
  for (const node of lab.nodes)
    for (const nic of node.nics.filter((n) => n.kind === 'bridge')) {
      out.push(`tuntap add dev ${nic.tap} mode tap user ${user}`);
      out.push(`link set dev ${nic.tap} alias ${mark}`);
      out.push(`link set dev ${nic.tap} master ${bridgeOf.get(nic.network)!}`);
      out.push(`link set dev ${nic.tap} up`);
    }
  for (const net of bridged) out.push(`link set dev ${net.bridge} up`);
  return out.join('\n') + '\n';
}
