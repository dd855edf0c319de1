// VLANs, pure: which VLAN a guest interface's frames are switched in, and which subnet its addresses must lie in.
// On a VLAN-aware network (the bridge's VLAN filtering) a NIC is an access port or a trunk; on a plain bridge or a
// link, frames keep whatever tag the guest gave them, so a tag is a segment of its own there too.
import type { Cidr } from './ipv4.js';
import type { ResolvedNetwork, ResolvedNic } from './model.js';

/** The segment of untagged frames on a plain bridge or link. */
export const UNTAGGED = 0;

/**
 * The VLAN in which the frames a guest sends from a NIC (`tag` undefined) or from its sub-interface `tag` are
 * switched: `UNTAGGED` on a plain network for untagged frames, or null when the switch drops them (a tag the
 * port does not carry, untagged frames on a trunk without a native VLAN). Two interfaces meet when it is equal.
 */
export function segmentOf(net: Pick<ResolvedNetwork, 'vlans'>, nic: Pick<ResolvedNic, 'port'>, tag?: number): number | null {
  if (!net.vlans) return tag ?? UNTAGGED;
  const p = nic.port ?? { access: 1 };
  if ('access' in p) return tag === undefined || tag === p.access ? p.access : null;
  if (tag === undefined) return p.native ?? null;
  return p.trunk.includes(tag) || tag === p.native ? tag : null;
}

/** The segment of a network's host side (its address on the bridge). */
export function hostSegment(net: Pick<ResolvedNetwork, 'vlans'>): number {
  return net.vlans ? net.vlans.host : UNTAGGED;
}

/**
 * The subnet addresses on a segment of a network must lie in: the VLAN's own subnet, else the network's (on a
 * VLAN-aware network it serves every VLAN without a subnet of its own). On a plain network a tag has none.
 */
export function segmentSubnet(net: Pick<ResolvedNetwork, 'vlans' | 'subnet'>, segment: number | null): Cidr | undefined {
  if (segment === null) return undefined;
  if (net.vlans) return net.vlans.subnets[String(segment)] ?? net.subnet;
  return segment === UNTAGGED ? net.subnet : undefined;
}

/** "VLAN 10", or "untagged" for a plain network's untagged frames: for messages. */
export function segmentLabel(segment: number): string {
  return segment === UNTAGGED ? 'untagged' : `VLAN ${segment}`;
}

/** How a switch port reads ("access 10", "trunk 10,20 native 1"), for status, graph and messages. */
export function describePort(port: NonNullable<ResolvedNic['port']>): string {
  return 'access' in port ? `access ${port.access}` : `trunk ${port.trunk.join(',')}${port.native !== undefined ? ` native ${port.native}` : ''}`;
}
