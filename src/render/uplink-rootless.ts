// Pure rendering of a rootless lab's uplink: pasta in place of the veth to the host. pasta makes a tap in the lab
// namespace and carries what leaves by it over the user's own sockets on the host (no route, no nft table, no
// forwarding on the host); its port forwards listen on the host and connect inside the lab. The lab namespace then
// masquerades its nat subnets out of that tap and DNATs the forwarded ports to their guests.
import { formatCidr, formatIPv4 } from '../topology/ipv4.js';
import type { ResolvedLab } from '../topology/model.js';
import { ownerMarker } from './markers.js';
import { UPLINK_LAB_IF, type UplinkAddressing } from './uplink.js';

/** The lab namespace's table for a rootless uplink (it goes with the namespace). */
export const ROOTLESS_UPLINK_TABLE = 'qnet-uplink';

/**
 * pasta's argv: the tap `uplink` in the lab namespace with the lab side of the /30 (IPv4 only: the lab turns IPv6
 * off), the host side as its gateway (not mapped to the host's loopback: the lab reaches only what the host's own
 * sockets reach), the lab's forwarded ports (host port = the port pasta connects to inside), its log.
 */
export function renderPastaArgv(lab: ResolvedLab, up: UplinkAddressing, log: string): string[] {
  const ports = (proto: 'tcp' | 'udp') => lab.forwards.filter((f) => f.proto === proto).map((f) => String(f.host)).join(',') || 'none';
  return [
    'pasta', '--foreground', '--ipv4-only', '--config-net',
    '--ns-ifname', UPLINK_LAB_IF, '--address', formatIPv4(up.net + 2), '--netmask', '30', '--gateway', formatIPv4(up.net + 1), '--no-map-gw',
    '--tcp-ports', ports('tcp'), '--udp-ports', ports('udp'), '--tcp-ns', 'none', '--udp-ns', 'none',
    '--log-file', log,
    '--netns', `/run/netns/${lab.netns}`, '--netns-only',
  ];
}

/**
 * The lab namespace's nft table: masquerade of nat subnets out of the uplink; each forward DNATed to its guest,
 * both as pasta delivers it: by the tap for a connection from elsewhere (prerouting), and from the namespace's own
 * loopback for one from the host itself (pasta splices those: output hook, with route_localnet on, and the loopback
 * source masqueraded on its way to the guest).
 */
export function renderRootlessUplinkRuleset(lab: ResolvedLab): string {
  const nat = lab.networks.filter((n) => n.mode === 'nat').map((n) => formatCidr(n.subnet!));
  const fwd = lab.forwards.map((f) => `${f.proto} dport ${f.host} dnat to ${formatIPv4(f.address)}:${f.port}`);
  return [
    `table ip ${ROOTLESS_UPLINK_TABLE} {`,
    `  comment "${ownerMarker(lab.name)}"`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...(nat.length ? [`    ip saddr { ${nat.join(', ')} } oifname "${UPLINK_LAB_IF}" masquerade`] : []),
    ...(fwd.length ? ['    ip saddr 127.0.0.0/8 oifname != "lo" masquerade'] : []),
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...fwd.map((r) => `    iifname "${UPLINK_LAB_IF}" ${r}`),
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...fwd.map((r) => `    ip daddr 127.0.0.1 ${r}`),
    '  }',
    '}',
    '',
  ].join('\n');
}
