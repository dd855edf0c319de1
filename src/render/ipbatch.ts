// Pure rendering of the lab's links as one `ip -batch` script, run inside the lab namespace.
import { createHash } from 'node:crypto';
import { contains, formatCidr, formatIPv4, type Cidr } from '../topology/ipv4.js';
import type { ResolvedLab, ResolvedNetwork } from '../topology/model.js';
import { hostSegment, segmentOf } from '../topology/vlan.js';
import { hasBridge, onLan, type ResolvedNic, type ResolvedNode } from '../topology/model.js';
import { labImpairments } from './impair.js';
import { vlanBridgeOptions } from './l2.js';
import { ownerMarker } from './markers.js';

/**
 * The sysctl (run inside the lab namespace, before its bridges and taps are made) that turns IPv6 off there: a lab
 * is IPv4, and with IPv6 on every bridge and tap sends router solicitations and MLD reports of its own into the
 * lab's networks and their captures. -e: a kernel without IPv6 has no such keys, and that is fine too.
 */
export const IPV6_OFF = ['sysctl', '-qew', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];

/** True for networks whose host side (an address on the lab's bridge) qnet gives a fixed MAC, so that the built-in
 * guests and the host side know each other without ARP: bridge (with an address), nat and routed networks. */
export function fixedHostSide(net: ResolvedNetwork): boolean {
  return hasBridge(net) && !onLan(net) && net.mode !== 'isolated' && net.address !== undefined;
}

/** The MAC of a network's bridge, derived from lab and network (locally administered, unicast). */
export function bridgeMac(lab: string, network: string): string {
  const h = createHash('sha256').update(`bridge/${lab}/${network}`).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * Permanent neighbour entries on the host side for the static addresses of built-in guests (`op` replace), or
 * their removal (del). Measured: the first ping of each of 100 guests took 14.1–14.7 s while every ARP broadcast
 * was flooded to every guest, 0.97 s with permanent entries on both sides (the guests get theirs by `arp`).
 */
export function neighLines(lab: ResolvedLab, nodes: ResolvedNode[], op: 'replace' | 'del'): string[] {
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  const out: string[] = [];
  for (const node of nodes) {
    if (node.image) continue; // image nodes: their OS may change its MAC or not answer at first (see the notes)
    for (const nic of node.nics) {
      const net = nets.get(nic.network);
      if (!net) continue;
      for (const a of hostSideAddresses(net, nic))
        out.push(op === 'replace' ? `neigh replace ${formatIPv4(a.ip)} lladdr ${nic.mac} dev ${net.bridge} nud permanent` : `neigh del ${formatIPv4(a.ip)} dev ${net.bridge}`);
    }
  }
  return out;
}

/**
 * The static addresses by which a NIC meets its network's fixed host side (see `fixedHostSide`): on its subnet and,
 * on a VLAN-aware network, in its VLAN. Those get neighbour entries on both sides instead of ARP.
 */
export function hostSideAddresses(net: ResolvedNetwork, nic: ResolvedNic): Cidr[] {
  if (nic.kind !== 'bridge' || nic.dhcp || !fixedHostSide(net) || segmentOf(net, nic) !== hostSegment(net)) return [];
  return nic.addresses.filter((a) => contains(net.address!, a.ip));
}

/** Batch lines that create a bridge (down; brought up by `bridgeUpLine` after its ports). */
export function bridgeLines(net: ResolvedNetwork, mark: string, lab: string): string[] {
  // A bridged network's spanning tree runs on the host bridge, where the LAN is; the lab side is a plain switch.
  const stp = net.mode !== 'bridged' && net.stp.enabled;
  const opts = stp ? `stp_state 1 forward_delay ${Math.round(net.stp.forwardDelay * 100)} hello_time ${Math.round(net.stp.helloTime * 100)}` : `stp_state 0 forward_delay ${net.mode === 'bridged' ? 0 : Math.round(net.stp.forwardDelay * 100)}`;
  return [
    `link add name ${net.bridge} type bridge ${opts}${vlanBridgeOptions(net)}`,
    `link set dev ${net.bridge} alias ${mark}${fixedHostSide(net) ? ` address ${bridgeMac(lab, net.name)}` : ''}`,
    ...(net.address ? [`addr add ${formatCidr(net.address)} dev ${net.bridge}`] : []),
  ];
}

/** Batch line that brings a bridge up. */
export function bridgeUpLine(net: ResolvedNetwork): string {
  return `link set dev ${net.bridge} up`;
}

/** Batch lines that create a tap owned by `user`, mark it and make it a port of `bridge` (none: a link's end). */
export function tapLines(tap: string, bridge: string | undefined, user: string, mark: string): string[] {
  // Marker, port and up in one `link set` (one netlink request instead of three: at 500 taps that is 1000 fewer).
  return [`tuntap add dev ${tap} mode tap user ${user}`, `link set dev ${tap} alias ${mark}${bridge ? ` master ${bridge}` : ''} up`];
}

/** The bridge a NIC's tap is a port of (none for the ends of a link network). */
export function tapMaster(lab: ResolvedLab, network: string): string | undefined {
  const net = lab.networks.find((n) => n.name === network);
  return net && hasBridge(net) ? net.bridge : undefined;
}

/** The commands that create every bridge and tap of the lab (taps owned by `user`), in one batch. */
export function renderLinkBatch(lab: ResolvedLab, user: string): string {
  const mark = ownerMarker(lab.name);
  const out: string[] = [`link set dev lo alias ${mark} up`];
  const bridged = lab.networks.filter((n) => hasBridge(n));
  for (const net of bridged) out.push(...bridgeLines(net, mark, lab.name));
  for (const node of lab.nodes)
    for (const nic of node.nics.filter((n) => n.kind === 'bridge')) out.push(...tapLines(nic.tap, tapMaster(lab, nic.network), user, mark));
  for (const net of bridged) out.push(bridgeUpLine(net));
  out.push(...neighLines(lab, lab.nodes, 'replace'));
  // The ifb devices of NICs whose guest's sending is impaired (their tc lines run right after this batch).
  out.push(...labImpairments(lab).ip);
  return out.join('\n') + '\n';
}
