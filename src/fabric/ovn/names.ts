// The names of a lab's rows in OVN's northbound database. Every name starts with `qnet.<lab>.` and a word saying what
// the row is; lab, node and network names hold no dot, so no two rows of two labs (or of one) can share a name.
import { createHash } from 'node:crypto';

const base = (lab: string) => `qnet.${lab}`;

/** The logical switch of a network. */
export const switchName = (lab: string, net: string) => `${base(lab)}.net.${net}`;
/** The logical switch port of a guest's NIC (also the OVS interface's iface-id on the node's host). */
export const nicPort = (lab: string, node: string, index: number) => `${base(lab)}.nic.${node}.${index}`;
/** The port of a network's host side: an OVS internal port in the lab namespace of the gateway host. */
export const hostPort = (lab: string, net: string) => `${base(lab)}.host.${net}`;
/** The lab's logical router (nat and routed networks). */
export const routerName = (lab: string) => `${base(lab)}.router`;
/** The router's port on a network, and the switch's port facing it. */
export const routerPort = (lab: string, net: string) => `${base(lab)}.lrp.${net}`;
export const switchRouterPort = (lab: string, net: string) => `${base(lab)}.rtr.${net}`;
/** The external switch: the router's distributed gateway port and a localnet port to the gateway host. */
export const extSwitch = (lab: string) => `${base(lab)}.ext`;
export const extRouterPort = (lab: string) => `${base(lab)}.ext.lrp`;
export const extSwitchRouterPort = (lab: string) => `${base(lab)}.ext.rtr`;
export const extLocalnetPort = (lab: string) => `${base(lab)}.ext.localnet`;
/** The physical network the localnet port maps to: the gateway host maps it (ovn-bridge-mappings) to a bridge of the lab. */
export const physnetName = (lab: string) => `qnet-${lab}`;
/** The load balancer of a port forward. */
export const forwardLb = (lab: string, proto: string, port: number) => `${base(lab)}.fwd.${proto}.${port}`;

/** The external_ids key every row of a lab carries, with the lab's name: how `down` finds them without state. */
export const LAB_KEY = 'qnet-lab';
/** The external_ids key that says which part of the lab a row is (`nic deb2 0`, `network lan`, ...). */
export const ROW_KEY = 'qnet-row';

/** A locally administered unicast MAC of a lab's own port (router ports, host sides), stable from its name. */
export function ovnMac(lab: string, what: string): string {
  const h = createHash('sha256').update(`ovn/${lab}/${what}`).digest('hex');
  return `0a:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}`;
}

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
