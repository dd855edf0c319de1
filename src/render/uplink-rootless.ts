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

/** The user-mode stack that carries a rootless lab's nat networks and forwards, and why that one. */
export interface UserNatChoice {
  tool: 'pasta' | 'slirp4netns';
  why: string;
}

/**
 * Picks pasta, or slirp4netns where pasta is missing (`found`: the paths found on PATH). pasta first: its forwards
 * from the host are spliced sockets (host to lab 10.6 against 5.8 Gbit/s, measured here) and it is Podman's default.
 * Neither: an error naming both and what installs them.
 */
export function chooseUserNat(found: { pasta?: string; slirp4netns?: string }): UserNatChoice {
  if (found.pasta) return { tool: 'pasta', why: 'pasta before slirp4netns: host to lab 10.6 against 5.8 Gbit/s measured here' };
  if (found.slirp4netns) return { tool: 'slirp4netns', why: 'pasta is not installed (`apt-get install passt` for pasta, preferred: host to lab 10.6 against 5.8 Gbit/s measured here)' };
  throw new Error('a nat network of a rootless lab needs pasta or slirp4netns, and neither is on PATH: an administrator runs `apt-get install passt` (or slirp4netns)');
}

/** slirp4netns's network: the /24 around the uplink's /30 (slirp puts its gateway at .2 and the lab's end at .100). */
export function slirpCidr(up: UplinkAddressing): string {
  return `${formatIPv4((up.net & ~0xff) >>> 0)}/24`;
}

/**
 * slirp4netns's argv, through sh and stdbuf so that its start-up lines go to its log at once (qnet knows it ready from there): the tap
 * `uplink` in the lab namespace, configured, the host's loopback not reachable from the lab (as pasta's --no-map-gw),
 * an API socket through which the forwards are added.
 */
export function renderSlirpArgv(lab: ResolvedLab, up: UplinkAddressing, log: string, api: string): string[] {
  const argv = ['slirp4netns', '--configure', '--mtu=65520', '--disable-host-loopback', `--cidr=${slirpCidr(up)}`, `--api-socket=${api}`, '--netns-type=path', `/run/netns/${lab.netns}`, UPLINK_LAB_IF];
  // stdbuf -oL: slirp4netns prints with stdio, which a file would otherwise buffer past its "Starting slirp".
  return ['sh', '-c', 'exec stdbuf -oL "$@" >>"$0" 2>&1', log, ...argv];
}

/** The lab's end of slirp4netns's tap (slirp's fixed guest address .100 of its network). */
export function slirpLabEnd(up: UplinkAddressing): number {
  return ((up.net & ~0xff) + 100) >>> 0;
}

/** The API requests that add the lab's forwards to slirp4netns (host port = the port reached inside, as pasta). */
export function renderSlirpForwards(lab: ResolvedLab, up: UplinkAddressing): string[] {
  return lab.forwards.map((f) =>
    JSON.stringify({ execute: 'add_hostfwd', arguments: { proto: f.proto, host_addr: '0.0.0.0', host_port: f.host, guest_addr: formatIPv4(slirpLabEnd(up)), guest_port: f.host } }),
  );
}
