// The OVN fabric on one host: the lab's networks as logical switches (one ovn-nbctl batch), each NIC's tap plugged
// into br-int with the iface-id of its logical port, each network's host side a veth on br-int whose other end, in
// the lab namespace, has the network's address. Pure: what it plans, as steps.
//
// Where the taps live: QEMU runs in the lab namespace (its user-mode and socket NICs, the checks' stand-in for
// "upstream", are there) and opens its taps by name there; ovs-vswitchd reads them in the host namespace. So each tap
// is made in the lab namespace, opened by QEMU, then moved to the host namespace (the open file goes with the
// device) and added to br-int; the guest is waited for only once OVN has bound its ports.
import { UserError } from '../../errors.js';
import { ownerMarker } from '../../render/markers.js';
import { neighLines } from '../../render/ipbatch.js';
import { formatCidr } from '../../topology/ipv4.js';
import { usesUplink, type ResolvedLab, type ResolvedNetwork, type ResolvedNic, type ResolvedNode } from '../../topology/model.js';
import type { OvnHostContext, PlanContext, Step } from '../../plan/steps.js';
import type { Fabric } from '../fabric.js';
import { uplinkSteps } from '../bridge.js';
import { gatewayMac, nbArgv, q, renderNbUp } from './nb.js';
import { hostPort, hostSideVeth, INTEGRATION_BRIDGE, nicPort, OVS_LAB_KEY, ovnTap } from './names.js';
import { GUEST_MTU } from './mtu.js';
import { labImpairments } from '../../render/impair.js';
import { describeImpairment, type Impairment } from '../../topology/impair.js';
import { impairStep } from '../bridge.js';

/** How long ovn-nbctl waits for the NB (and for a port to be bound) before it gives up, in seconds. */
const NB_TIMEOUT = 30;
const OVS_TIMEOUT = 10;

/** OVN on the host qnet runs on: networks are made in the northbound DB, NICs plugged once their QEMU runs. */
export const ovnFabric: Fabric = {
  name: 'ovn',
  networkSteps,
  plugSteps,
  // A started guest's taps are moved to the host namespace, where ovs-vswitchd reads them.
  tapNamespace: () => undefined,
  impairmentRefusal,
  // A logical switch has no interface: a mirror on br-int copies its ports' frames. Across hosts each host has only
  // its own ports: refused there until a capture gathers every host's (capture a NIC, on its host).
  networkCapture: (lab, net) =>
    (lab.hosts?.length ?? 1) > 1
      ? {
          kind: 'refused',
          why: `network ${net.name} of lab ${lab.name} spans hosts ${lab.hosts!.map((h) => h.name).join(', ')}: a capture of the whole network across hosts is not made yet; capture a NIC on it (\`qnet capture ${lab.name} NODE:NIC\`; its NICs: ${
            lab.nodes.flatMap((n) => n.nics.filter((c) => c.network === net.name).map((c) => `${n.name}:${c.index}`)).join(', ') || 'none'
          })`,
        }
      : { kind: 'mirror', hostSide: hostSides(lab).includes(net) },
};

function ovnOf(ctx: PlanContext): OvnHostContext {
  if (!ctx.ovn) throw new Error('planUp: a lab on OVN needs ctx.ovn (observed on the host)');
  return ctx.ovn;
}

/**
 * The networks with a host side in the lab namespace: bridge networks with an address, and nat and routed networks,
 * whose router is the lab namespace as on Linux bridges (it holds their address, forwards to the uplink, and the host
 * masquerades and forwards ports), so that `qnet check`'s model of the lab namespace holds on either fabric.
 */
function hostSides(lab: ResolvedLab): ResolvedNetwork[] {
  return lab.networks.filter((n) => (n.mode === 'bridge' || usesUplink(n)) && n.address !== undefined);
}

/** The NICs of a node that are ports of logical switches (each with its tap). */
function switchNics(node: ResolvedNode) {
  return node.nics.filter((c) => c.kind === 'bridge');
}

/**
 * `--may-exist add-port` commands of one ovs-vsctl transaction. With `noop`, the ports get a QoS of type linux-noop:
 * OVS otherwise resets the qdiscs of a port it adds (and again on later reconfigurations) to its default, which would
 * take off the impairments qnet puts on a guest's tap.
 */
function addPorts(ports: Array<{ ifname: string; lsp: string }>, lab: string, noop = false): string[] {
  return [
    'ovs-vsctl',
    `--timeout=${OVS_TIMEOUT}`,
    ...ports.flatMap((p) => [
      '--', '--may-exist', 'add-port', INTEGRATION_BRIDGE, p.ifname,
      '--', 'set', 'Interface', p.ifname, `external_ids:iface-id=${q(p.lsp)}`, `external_ids:${OVS_LAB_KEY}=${q(lab)}`,
      ...(noop ? ['--', 'set', 'Port', p.ifname, 'qos=@noop'] : []),
    ]),
    ...(noop ? ['--', '--id=@noop', 'create', 'QoS', 'type=linux-noop'] : []),
  ];
}

function delPorts(ifnames: string[]): string[] {
  return ['ovs-vsctl', `--timeout=${OVS_TIMEOUT}`, ...ifnames.flatMap((i) => ['--', '--if-exists', 'del-port', INTEGRATION_BRIDGE, i])];
}

/** The ovn-nbctl run that waits until OVN has bound each of these logical ports to a chassis (NB up=true). */
function waitBound(ovn: OvnHostContext, lsps: string[], ifnames: string[]): string[] {
  // A host of a lab over several hosts may have no northbound DB to ask: its ovn-controller says on the OVS interface
  // once the port's flows are installed here.
  if (ovn.part) return ['ovs-vsctl', `--timeout=${NB_TIMEOUT}`, ...ifnames.flatMap((i) => ['--', 'wait-until', 'Interface', i, 'external_ids:ovn-installed="true"'])];
  return ['ovn-nbctl', `--timeout=${NB_TIMEOUT}`, ...ovn.nb, ...lsps.flatMap((p) => ['--', 'wait-until', 'Logical_Switch_Port', p, 'up=true'])];
}

/** The lab's northbound batch as this host's OVN names its chassis. */
export function nbUpArgv(lab: ResolvedLab, ovn: OvnHostContext): string[] {
  const chassis = (host: string) => ovn.chassis[host] ?? host;
  const placement = Object.fromEntries(Object.entries(ovn.placement).map(([node, host]) => [node, chassis(host)]));
  const onChassis: ResolvedLab = { ...lab, ...(lab.ovn ? { ovn: { ...lab.ovn, gateway: chassis(lab.ovn.gateway) } } : {}) };
  return nbArgv(renderNbUp(onChassis, { placement, mtu: GUEST_MTU }), [`--timeout=${NB_TIMEOUT}`, ...ovn.nb]);
}

/** The steps that make the lab's logical networks, its taps (in the lab namespace, for QEMU) and its host sides. */
function networkSteps(lab: ResolvedLab, ctx: PlanContext): Step[] {
  const ovn = ovnOf(ctx);
  const mark = ownerMarker(lab.name);
  const ns = lab.netns;
  const taps = lab.nodes.flatMap((node) => switchNics(node).map((nic) => nic.tap));
  const steps: Step[] = [
    {
      title: `create ${taps.length} tap${taps.length === 1 ? '' : 's'} in the lab namespace, where QEMU opens them (one ip -batch)`,
      // No undo of its own: what is still in the namespace goes with it (a tap is moved out once its QEMU has it).
      do: { kind: 'exec', argv: ['ip', '-n', ns, '-batch', '-'], input: [`link set dev lo alias ${mark} up`, ...taps.flatMap((t) => [`tuntap add dev ${t} mode tap user ${ctx.guestIds.uid}`, `link set dev ${t} alias ${mark}`])].join('\n') + '\n' },
    },
  ];
  // Over several hosts the driver makes the northbound rows once, for every host; here only this host's part.
  if (!ovn.part)
    steps.push({
      title: `create the lab's logical switches and ports in the northbound DB (one ovn-nbctl transaction, rows marked ${OVS_LAB_KEY}=${lab.name})`,
      do: { kind: 'exec', argv: nbUpArgv(lab, ovn) },
      undo: { kind: 'ovn-clear', lab: lab.name, nb: ovn.nb },
    });
  // The host sides, the uplink, masquerade and forwards are the gateway host's alone.
  if (ovn.part && !ovn.part.gateway) return steps;
  const sides = hostSides(lab);
  if (sides.length) {
    const veths = sides.map((net) => ({ net, ifname: hostSideVeth(lab.name, net.name) }));
    steps.push(
      {
        title: `create the host side${sides.length === 1 ? '' : 's'} of ${sides.map((n) => n.name).join(', ')}: veth ${veths.map((v) => `${v.ifname} (host) <-> ${v.net.bridge} (lab)`).join(', ')}`,
        do: {
          kind: 'exec',
          argv: ['ip', '-batch', '-'],
          input: veths.flatMap((v) => [`link add name ${v.ifname} type veth peer name ${v.net.bridge} netns ${ns}`, `link set dev ${v.ifname} alias ${mark} up`]).join('\n') + '\n',
        },
        undo: { kind: 'exec', argv: ['ip', '-force', '-batch', '-'], input: veths.map((v) => `link delete dev ${v.ifname}`).join('\n') + '\n' },
      },
      {
        title: 'address the host sides in the lab namespace, with permanent neighbour entries for the static guests',
        do: {
          kind: 'exec',
          argv: ['ip', '-n', ns, '-batch', '-'],
          input:
            [
              ...sides.flatMap((net) => [`link set dev ${net.bridge} address ${gatewayMac(lab.name, net)} alias ${mark}`, `addr add ${formatCidr(net.address!)} dev ${net.bridge}`, `link set dev ${net.bridge} up`]),
              ...neighLines(lab, lab.nodes, 'replace'),
            ].join('\n') + '\n',
        },
      },
      {
        // OVS's userspace datapath reads the host end through AF_PACKET, which passes a checksum left for offload on
        // unfilled: the lab end fills its own. No IPv6 on the host end: it would send solicitations into the switch.
        title: 'host sides: checksums filled by the lab namespace, no IPv6 on the host ends',
        do: {
          kind: 'exec',
          argv: ['sh', '-c', 'ns=$1; n=$2; shift 2; i=0; for d; do if [ $i -lt $n ]; then ip netns exec "$ns" ethtool -K "$d" tx off >/dev/null || exit 1; else sysctl -qew "net.ipv6.conf.$d.disable_ipv6=1"; fi; i=$((i+1)); done', 'qnet-host-sides', ns, String(sides.length), ...sides.map((n) => n.bridge), ...veths.map((v) => v.ifname)],
        },
      },
      {
        title: `plug the host side${sides.length === 1 ? '' : 's'} into ${INTEGRATION_BRIDGE} (one ovs-vsctl transaction)`,
        do: { kind: 'exec', argv: addPorts(veths.map((v) => ({ ifname: v.ifname, lsp: hostPort(lab.name, v.net.name) })), lab.name) },
        undo: { kind: 'exec', argv: delPorts(veths.map((v) => v.ifname)) },
      },
      {
        title: `wait until OVN binds the host side${sides.length === 1 ? '' : 's'}`,
        do: { kind: 'exec', argv: waitBound(ovn, sides.map((n) => hostPort(lab.name, n.name)), veths.map((v) => v.ifname)) },
      },
    );
  }
  steps.push(...uplinkSteps(lab, ctx));
  return steps;
}

/** The steps that move a started node's taps to the host namespace, plug them into br-int and wait for OVN to bind them. */
function plugSteps(lab: ResolvedLab, node: ResolvedNode, ctx: PlanContext): Step[] {
  const ovn = ovnOf(ctx);
  const nics = switchNics(node);
  if (!nics.length) return [];
  const taps = nics.map((n) => n.tap);
  return [
    {
      title: `move ${node.name}'s tap${taps.length === 1 ? '' : 's'} ${taps.join(', ')} (opened by its QEMU) to the host namespace`,
      // $$ is this shell's pid, in the host namespace (ip -n enters the lab namespace for itself alone).
      do: {
        kind: 'exec',
        argv: ['sh', '-c', 'ns=$1; shift; for t; do ip -n "$ns" link set dev "$t" netns $$ && sysctl -qew "net.ipv6.conf.$t.disable_ipv6=1" && ip link set dev "$t" up || exit 1; done', 'qnet-plug', lab.netns, ...taps],
      },
      undo: { kind: 'exec', argv: ['ip', '-force', '-batch', '-'], input: taps.map((t) => `link delete dev ${t}`).join('\n') + '\n' },
    },
    {
      title: `plug ${node.name}'s tap${taps.length === 1 ? '' : 's'} into ${INTEGRATION_BRIDGE} as ${nics.map((n) => nicPort(lab.name, node.name, n.index)).join(', ')} (QoS linux-noop: its qdiscs are qnet's)`,
      do: { kind: 'exec', argv: addPorts(nics.map((n) => ({ ifname: n.tap, lsp: nicPort(lab.name, node.name, n.index) })), lab.name, true) },
      undo: { kind: 'exec', argv: delPorts(taps) },
    },
    // After the plug: OVS's own settings of a port it adds come first (the QoS above keeps it off them after).
    ...impairSteps(lab, node),
    {
      title: `wait until OVN binds ${node.name}'s port${taps.length === 1 ? '' : 's'}`,
      do: { kind: 'exec', argv: waitBound(ovn, nics.map((n) => nicPort(lab.name, node.name, n.index)), taps) },
    },
  ];
}

/**
 * Why an impairment cannot be made on a NIC's tap on OVN. On the userspace datapath (the tap opened without the
 * virtio-net header, see onOvn) ovs-vswitchd reads what the guest sends through an AF_PACKET socket, which gets each
 * frame before the tap's ingress qdisc: redirected to an ifb and impaired there, the frame has already been switched.
 */
function impairmentRefusal(_lab: ResolvedLab, nic: ResolvedNic, i: Impairment): string | undefined {
  if (nic.vnetHdr === false && i.direction !== 'ingress')
    return `${i.direction}: on OVN's userspace datapath ovs-vswitchd takes what the guest sends off its tap before traffic control sees it, so only what the guest receives can be impaired here: use direction ingress (\`--direction ingress\`), or impair the receiving NIC`;
  return undefined;
}

/** The steps that impair a node's NICs on their taps in the host namespace, once plugged (before OVN binds them: nothing passes yet). */
function impairSteps(lab: ResolvedLab, node: ResolvedNode): Step[] {
  const impaired = labImpairments({ ...lab, nodes: [{ ...node, nics: switchNics(node) }] });
  if (!impaired.tc.length) return [];
  const ifbs = impaired.ip.filter((l) => l.startsWith('link add name ')).map((l) => l.split(' ')[3]!);
  return [
    ...(impaired.ip.length
      ? [
          {
            title: `create ${node.name}'s ifb device${ifbs.length === 1 ? '' : 's'} ${ifbs.join(', ')} in the host namespace (what its guest sends, impaired)`,
            do: { kind: 'exec' as const, argv: ['ip', '-batch', '-'], input: impaired.ip.join('\n') + '\n' },
            undo: { kind: 'exec' as const, argv: ['ip', '-force', '-batch', '-'], input: ifbs.map((i) => `link delete dev ${i}`).join('\n') + '\n' },
          },
        ]
      : []),
    // No undo of its own: the qdiscs go with the taps.
    { ...impairStep(undefined, impaired), title: `impair ${node.name}'s tap${impaired.nics.length === 1 ? '' : 's'} in the host namespace: ${impaired.nics.map(({ nic }) => `NIC ${nic.index} (${describeImpairment(nic.impair!)})`).join('; ')} (one tc -batch)` },
  ];
}

/**
 * The lab as it runs on OVN: each NIC's tap named uniquely on the host (the host namespace holds every lab's taps),
 * and, on the userspace datapath, opened without the virtio-net header (see ResolvedNic.vnetHdr).
 */
export function onOvn(lab: ResolvedLab, datapath: 'system' | 'netdev'): ResolvedLab {
  return {
    ...lab,
    nodes: lab.nodes.map((node) => ({
      ...node,
      nics: node.nics.map((nic) => (nic.kind === 'bridge' ? { ...nic, tap: ovnTap(lab.name, node.name, nic.index), ...(datapath === 'netdev' ? { vnetHdr: false as const } : {}) } : nic)),
    })),
  };
}

/**
 * What the one-host OVN path does not make, each as `path: reason` (exit 2 before anything is made): labs over
 * several hosts, which the driver makes host by host (lab/multihost.ts) and whose parts come with their HostPart.
 */
export function notYetOnOvn(lab: ResolvedLab): UserError | undefined {
  const issues: string[] = [];
  if ((lab.hosts?.length ?? 0) > 1 || lab.hosts?.some((h) => h.ssh.kind !== 'local'))
    issues.push('hosts: labs over several hosts (or on a host over SSH) are made by `qnet up` of their file through each host\'s agent, not as a lab of this host alone');
  return issues.length ? new UserError(`lab ${lab.name} on OVN:\n  ${issues.join('\n  ')}\nnothing was made`) : undefined;
}
