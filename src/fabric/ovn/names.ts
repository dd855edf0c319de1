// The names of a lab's rows in OVN's northbound database. Every name starts with `qnet.<lab>.` and a word saying what
// the row is; lab, node and network names hold no dot, so no two rows of two labs (or of one) can share a name.
import { createHash } from 'node:crypto';

const base = (lab: string) => `qnet.${lab}`;

/** The logical switch of a network. */
export const switchName = (lab: string, net: string) => `${base(lab)}.net.${net}`;
/** The logical switch port of a guest's NIC (also the OVS interface's iface-id on the node's host). */
export const nicPort = (lab: string, node: string, index: number) => `${base(lab)}.nic.${node}.${index}`;
/** The port of a network's host side: a veth on br-int whose other end, in the lab namespace of the gateway host, has the network's address. */
export const hostPort = (lab: string, net: string) => `${base(lab)}.host.${net}`;
/** The external_ids key every row of a lab carries, with the lab's name: how `down` finds them without state. */
export const LAB_KEY = 'qnet-lab';
/** The external_ids key that says which part of the lab a row is (`nic deb2 0`, `network lan`, ...). */
export const ROW_KEY = 'qnet-row';

/** The tap of a guest's NIC on OVN: in the host namespace (where ovs-vswitchd reads it), so unique per lab and NIC. */
export function ovnTap(lab: string, node: string, index: number): string {
  return `qo${createHash('sha256').update(`tap/${lab}/${node}/${index}`).digest('hex').slice(0, 10)}`;
}

/** The host namespace's end of a network's host side (a veth whose other end, in the lab namespace, has the address). */
export function hostSideVeth(lab: string, net: string): string {
  return `qh${createHash('sha256').update(`host/${lab}/${net}`).digest('hex').slice(0, 10)}`;
}

/** The external_ids key that marks the lab's OVS interfaces on br-int (how `down` finds them without state). */
export const OVS_LAB_KEY = 'qnet-lab';
/** The integration bridge ovn-controller manages on every chassis. */
export const INTEGRATION_BRIDGE = 'br-int';
