// Pure rendering of a lab's uplink: the veth between the host and the lab namespace, its addresses and routes,
// and the host's nft table for forwarding, masquerade and port forwards (one transaction).
import { createHash } from 'node:crypto';
import { formatCidr, formatIPv4, networkOf } from '../topology/ipv4.js';
import { usesUplink, type ResolvedLab } from '../topology/model.js';
import { ownerMarker, uplinkTable } from './markers.js';

/** The /30 that links host and lab: host side .1, lab side .2 (from 100.64.0.0/16, shared address space). */
export interface UplinkAddressing {
  /** Network address of the /30. */
  net: number;
}

export const UPLINK_LAB_IF = 'uplink';
const UPLINK_BASE = (100 << 24) | (64 << 16);

/** The host-side veth name of a lab: `qn` and 8 hex digits of its name's hash (fits 15 bytes for any lab). */
export function uplinkHostIf(lab: string): string {
  return `qn${createHash('sha256').update(lab).digest('hex').slice(0, 8)}`;
}

/** Candidate /30s for a lab, its preferred one first (deterministic from the name). */
export function uplinkCandidates(lab: string, count = 64): number[] {
  const start = parseInt(createHash('sha256').update(`uplink/${lab}`).digest('hex').slice(0, 4), 16) % 16384;
  return Array.from({ length: count }, (_, i) => (UPLINK_BASE + ((start + i) % 16384) * 4) >>> 0);
}

/** True when the lab needs an uplink (it has a nat or routed network). */
export function needsUplink(lab: ResolvedLab): boolean {
  return lab.networks.some(usesUplink);
}

/** `ip -batch` for the host side: the veth pair (its peer created inside the lab namespace), marker, address. */
export function renderUplinkHostBatch(lab: ResolvedLab, up: UplinkAddressing): string {
  const hostIf = uplinkHostIf(lab.name);
  return [
    `link add name ${hostIf} type veth peer name ${UPLINK_LAB_IF} netns ${lab.netns}`,
    `link set dev ${hostIf} alias ${ownerMarker(lab.name)}`,
    `addr add ${formatIPv4(up.net + 1)}/30 dev ${hostIf}`,
    `link set dev ${hostIf} up`,
    '',
  ].join('\n');
}

/** `ip -batch` inside the lab namespace: the uplink's address, marker, and the default route to the host. */
export function renderUplinkLabBatch(lab: ResolvedLab, up: UplinkAddressing): string {
  return [
    `addr add ${formatIPv4(up.net + 2)}/30 dev ${UPLINK_LAB_IF}`,
    `link set dev ${UPLINK_LAB_IF} alias ${ownerMarker(lab.name)}`,
    `link set dev ${UPLINK_LAB_IF} up`,
    `route add default via ${formatIPv4(up.net + 1)} dev ${UPLINK_LAB_IF}`,
    '',
  ].join('\n');
}

/** `ip -batch` for the host's routes to the lab's nat and routed subnets (they go with the veth). */
export function renderUplinkRoutes(lab: ResolvedLab, up: UplinkAddressing): string {
  return (
    lab.networks
      .filter(usesUplink)
      .map((net) => `route add ${formatCidr({ ip: networkOf(net.subnet!), prefix: net.subnet!.prefix })} via ${formatIPv4(up.net + 2)} dev ${uplinkHostIf(lab.name)}`)
      .join('\n') + '\n'
  );
}

/**
 * The host's nft table for the lab: accept forwarding to and from the uplink, masquerade nat subnets leaving by
 * any other interface, DNAT for the declared port forwards only.
 */
export function renderHostRuleset(lab: ResolvedLab): string {
  const hostIf = uplinkHostIf(lab.name);
  const nat = lab.networks.filter((n) => n.mode === 'nat').map((n) => formatCidr(n.subnet!));
  const routed = lab.networks.filter((n) => n.mode === 'routed').map((n) => formatCidr(n.subnet!));
  const fwd = lab.forwards.map((f) => `${f.proto} dport ${f.host} dnat to ${formatIPv4(f.address)}:${f.port}`);
  const lines = [
    `table ip ${uplinkTable(lab.name)} {`,
    `  comment "${ownerMarker(lab.name)}"`,
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    // Labs never reach each other: nothing from another lab's uplink goes into this one.
    `    iifname "qn*" oifname "${hostIf}" drop`,
    `    iifname "${hostIf}" oifname "qn*" drop`,
    `    iifname "${hostIf}" accept`,
    `    oifname "${hostIf}" ct state established,related accept`,
    ...(routed.length ? [`    oifname "${hostIf}" ip daddr { ${routed.join(', ')} } accept`] : []),
    ...(fwd.length ? [`    oifname "${hostIf}" ct status dnat accept`] : []),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...(nat.length ? [`    ip saddr { ${nat.join(', ')} } oifname != "${hostIf}" masquerade`] : []),
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...fwd.map((r) => `    iifname != "${hostIf}" fib daddr type local ${r}`),
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...fwd.map((r) => `    ip daddr != 127.0.0.0/8 fib daddr type local ${r}`),
    '  }',
    '}',
  ];
  return lines.join('\n') + '\n';
}
