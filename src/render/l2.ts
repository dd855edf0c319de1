// Pure rendering of what a lab's layer 2 needs beyond bridges and taps: the VLANs of VLAN-aware networks and the
// guests' MACs on their bridge ports (one `bridge -batch`: `ip` has no command for either) and transparent links
// (one `tc -batch`).
import type { ResolvedLab, ResolvedNetwork, ResolvedNode } from '../topology/model.js';
import { hasBridge } from '../topology/model.js';

/** The `ip link add` options that make a bridge VLAN-aware: filtering on, and no VLAN given to a port by default. */
export function vlanBridgeOptions(net: ResolvedNetwork): string {
  return net.vlans ? ' vlan_filtering 1 vlan_default_pvid 0' : '';
}

/**
 * `bridge -batch` lines for the VLANs of the given networks' host sides and of the given nodes' taps on VLAN-aware
 * networks: an access port is its VLAN's member, untagged, and that VLAN's port VLAN id (pvid); a trunk carries
 * its VLANs tagged and its native VLAN untagged (the pvid); the host side is the bridge's own port ("self").
 */
export function vlanLines(lab: ResolvedLab, networks: ResolvedNetwork[], nodes: ResolvedNode[]): string[] {
  const out: string[] = [];
  for (const net of networks)
    if (net.vlans && net.address) out.push(`vlan add dev ${net.bridge} vid ${net.vlans.host} pvid untagged self`);
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  for (const node of nodes)
    for (const nic of node.nics) {
      const net = nets.get(nic.network);
      if (nic.kind !== 'bridge' || !net?.vlans || !nic.port) continue;
      const p = nic.port;
      if ('access' in p) out.push(`vlan add dev ${nic.tap} vid ${p.access} pvid untagged`);
      else {
        for (const id of p.trunk) out.push(`vlan add dev ${nic.tap} vid ${id}`);
        if (p.native !== undefined) out.push(`vlan add dev ${nic.tap} vid ${p.native} pvid untagged`);
      }
    }
  return out;
}

/**
 * `bridge -batch` lines that tie each given node's MAC to its tap on its network's bridge (static entries: they
 * never age out, and still move, as a switch's do, when another port sends from that MAC). A guest is silent until
 * spoken to, so its bridge has not learned where its MAC is and floods the first frames to it (the host's first
 * ping, a DNS answer) out of every port, waking every guest's QEMU: measured, 100 restored guests pinged once each
 * from the lab namespace, every tap carried about 100 frames for the others. VLAN-aware networks are left out (an
 * entry without a VLAN would not match their VLAN's frames).
 */
export function fdbLines(lab: ResolvedLab, nodes: ResolvedNode[]): string[] {
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  const out: string[] = [];
  for (const node of nodes)
    for (const nic of node.nics) {
      const net = nets.get(nic.network);
      if (nic.kind !== 'bridge' || !net || !hasBridge(net) || net.vlans) continue;
      out.push(`fdb replace ${nic.mac} dev ${nic.tap} master static`);
    }
  return out;
}

/**
 * `tc -batch` lines that join the two taps of each link network the given nodes have a NIC on: everything one
 * guest sends (entering its tap) is redirected out of the other's tap, untouched. A bridge would not do: it never
 * forwards pause frames (01:80:c2:00:00:01) nor LACP's slow protocols (…:02), whatever its group_fwd_mask says (the
 * kernel refuses those bits), passes LLDP (…:0e) only with that mask, and learns and floods; a mirred pair carries
 * every frame and is all a point-to-point wire is. `reset`: the ingress qdiscs to delete first on the ends that
 * stay, when the other end's tap is made again for a restarted node (their redirect points at the old tap).
 */
export function linkLines(lab: ResolvedLab, nodes: ResolvedNode[]): { reset: string[]; tc: string[] } {
  const reset: string[] = [];
  const tc: string[] = [];
  const wanted = new Set(nodes.flatMap((n) => n.nics.filter((c) => c.peerTap).map((c) => c.network)));
  const starting = new Set(nodes.map((n) => n.name));
  for (const net of lab.networks) {
    if (net.mode !== 'link' || !wanted.has(net.name)) continue;
    for (const node of lab.nodes)
      for (const nic of node.nics) {
        if (nic.network !== net.name || !nic.peerTap) continue;
        // Only an end that stays has an old redirect to take off (a restarted node's tap is new).
        if (!starting.has(node.name)) reset.push(`qdisc del dev ${nic.tap} ingress`);
        tc.push(
          `qdisc add dev ${nic.tap} handle ffff: ingress`,
          `filter add dev ${nic.tap} parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ${nic.peerTap}`,
        );
      }
  }
  return { reset, tc };
}

/** True when the lab has a VLAN-aware network (its up needs the kernel's bridge VLAN filtering). */
export function usesVlans(lab: ResolvedLab): boolean {
  return lab.networks.some((n) => n.vlans);
}

/** What to do when the kernel cannot make a bridge VLAN-aware. */
export const VLAN_HINT =
  'VLAN-aware networks need the kernel\'s bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING, which needs CONFIG_VLAN_8021Q; every stock Debian and Ubuntu kernel has it). `qnet doctor` says whether this host has it';
