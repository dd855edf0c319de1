// Capture of a whole network on OVN: a logical switch has no interface of its own, so an Open vSwitch mirror on br-int
// copies what every port of the network on this host sends and receives (each frame once: OVS mirrors a packet at
// most once per mirror) to an internal port made for the capture, where tcpdump reads it. Pure: the commands.
import { createHash } from 'node:crypto';
import { hostSideVeth, INTEGRATION_BRIDGE, OVS_LAB_KEY, ovnTap } from './names.js';
import { q } from './nb.js';
import type { ResolvedLab, ResolvedNetwork } from '../../topology/model.js';

/** What a capture of a network on OVN needs: the OVS ports of the network on this host and the mirror's names. */
export interface MirrorCapture {
  bridge: string;
  /** The mirror's output: an internal port (a tap ovs-vswitchd makes) that tcpdump reads. */
  port: string;
  /** The Mirror row's name. */
  mirror: string;
  /** The ports mirrored: the NICs' taps and the host side's veth. */
  ports: string[];
}

/** The mirror a capture of `net` makes; `tag` tells two captures of one network apart (the capturing process). */
export function mirrorCapture(lab: ResolvedLab, net: ResolvedNetwork, hostSide: boolean, tag: string): MirrorCapture {
  const ports = lab.nodes.flatMap((n) => n.nics.filter((c) => c.kind === 'bridge' && c.network === net.name).map((c) => ovnTap(lab.name, n.name, c.index)));
  if (hostSide) ports.push(hostSideVeth(lab.name, net.name));
  const id = createHash('sha256').update(`capture/${lab.name}/${net.name}/${tag}`).digest('hex').slice(0, 10);
  return { bridge: INTEGRATION_BRIDGE, port: `qc${id}`, mirror: `qnet.${lab.name}.capture.${net.name}.${id}`, ports };
}

/**
 * One ovs-vsctl transaction that makes the capture's internal port and a mirror of every port of the network onto
 * it; both marked with the lab, so `down` finds them if the capture is killed. Ports not on this bridge are skipped.
 */
export function mirrorAddArgv(m: MirrorCapture, lab: string, present: string[]): string[] {
  const ports = m.ports.filter((p) => present.includes(p));
  const refs = ports.map((_, i) => `@p${i}`).join(',');
  return [
    'ovs-vsctl', '--timeout=10',
    '--', 'add-port', m.bridge, m.port,
    '--', 'set', 'Interface', m.port, 'type=internal', `external_ids:${OVS_LAB_KEY}=${q(lab)}`,
    ...ports.flatMap((p, i) => ['--', `--id=@p${i}`, 'get', 'Port', p]),
    '--', '--id=@out', 'get', 'Port', m.port,
    '--', '--id=@m', 'create', 'Mirror', `name=${q(m.mirror)}`, `select_src_port=${refs}`, `select_dst_port=${refs}`, 'output_port=@out', `external_ids:${OVS_LAB_KEY}=${q(lab)}`,
    '--', 'add', 'Bridge', m.bridge, 'mirrors', '@m',
  ];
}

/** Finds mirrors by a column (`name=...` of one capture, or `external_ids:qnet-lab=...` of a lab's): their UUIDs, one a line. */
export function findMirrorsArgv(match: { name: string } | { lab: string }): string[] {
  return ['ovs-vsctl', '--timeout=5', '--bare', '--columns=_uuid', 'find', 'Mirror', 'name' in match ? `name=${q(match.name)}` : `external_ids:${OVS_LAB_KEY}=${q(match.lab)}`];
}

/** Removes mirrors (by UUID) from br-int, which deletes them, and a capture's port if given (each if still there). */
export function mirrorDelArgv(uuids: string[], port?: string): string[] {
  return [
    'ovs-vsctl', '--timeout=10',
    ...(port ? ['--', '--if-exists', 'del-port', INTEGRATION_BRIDGE, port] : []),
    ...(uuids.length ? ['--', 'remove', 'Bridge', INTEGRATION_BRIDGE, 'mirrors', ...uuids] : []),
  ];
}
