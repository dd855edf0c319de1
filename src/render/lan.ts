// Pure rendering for networks on a host interface's LAN: bridged (the uplink in a bridge with the lab's veth, the
// host's addresses and routes moved to that bridge and back) and macnat (the uplink never enslaved: the lab's
// frames are rewritten to the uplink's MAC in the lab's bridge table and steered by a netdev table on the host).
import { createHash } from 'node:crypto';
import type { HostAddr, HostRoute } from './host-types.js';
import type { ResolvedLab, ResolvedNetwork } from '../topology/model.js';
import { ownerMarker } from './markers.js';

function hash8(lab: string, net: string): string {
  return createHash('sha256').update(`lan/${lab}/${net}`).digest('hex').slice(0, 8);
}

/** The bridge qnet makes on the host for a bridged network (the uplink and the lab's veth are its ports). */
export function lanHostBridge(lab: string, net: string): string {
  return `qb${hash8(lab, net)}`;
}

/** The host end of the veth that joins a bridged or macnat network's lab bridge to the host. */
export function lanHostVeth(lab: string, net: ResolvedNetwork): string {
  return `${net.mode === 'macnat' ? 'qm' : 'qv'}${hash8(lab, net.name)}`;
}

/** The lab end of that veth (inside the lab namespace, a port of the network's bridge). */
export function lanLabVeth(lab: string, net: string): string {
  return `qu${hash8(lab, net)}`;
}

/** The host's netdev table of a lab with macnat networks (steering between the uplink and the lab). */
export function macnatHostTable(lab: string): string {
  return `qnet-${lab}`;
}

/** The lab namespace's bridge table that rewrites MAC addresses for macnat networks. */
export const MACNAT_LAB_TABLE = 'qnet-macnat';

/** What qnet observed of a network's uplink when it planned (from `readIface`). */
export interface LanUplink {
  name: string;
  mac: string;
  /** The uplink is a bridge already (made by the admin): qnet only plugs its veth into it. */
  attach: boolean;
  addrs: HostAddr[];
  routes: HostRoute[];
}

const cs = (s: number) => Math.round(s * 100);

/**
 * `ip -batch` on the host: for a bridged network, the host bridge (with the uplink's MAC, so the LAN's DHCP server
 * and neighbours see the same host) and the veth into the lab; joining an existing bridge, the veth alone.
 */
export function renderLanHostBatch(lab: ResolvedLab, net: ResolvedNetwork, up: LanUplink): string {
  const mark = ownerMarker(lab.name);
  const veth = lanHostVeth(lab.name, net);
  const lines: string[] = [];
  let master = up.name;
  if (net.mode === 'bridged' && !up.attach) {
    master = lanHostBridge(lab.name, net.name);
    const s = net.stp;
    lines.push(
      `link add name ${master} type bridge stp_state ${s.enabled ? 1 : 0} forward_delay ${cs(s.forwardDelay)} hello_time ${cs(s.helloTime)}`,
      `link set dev ${master} address ${up.mac}`,
      `link set dev ${master} alias ${mark}`,
    );
  }
  lines.push(`link add name ${veth} type veth peer name ${lanLabVeth(lab.name, net.name)} netns ${lab.netns}`, `link set dev ${veth} alias ${mark}`);
  // The host end carries only the lab's frames: no IPv6 link-local of its own to chatter with.
  lines.push(`link set dev ${veth} addrgenmode none`);
  if (net.mode === 'bridged') lines.push(`link set dev ${veth} master ${master}`);
  lines.push(`link set dev ${veth} up`);
  if (net.mode === 'bridged' && !up.attach) lines.push(`link set dev ${master} up`);
  return lines.join('\n') + '\n';
}

/** `ip -batch` that removes what `renderLanHostBatch` made (for rollback; `-force`, some may be gone already). */
export function renderLanHostUndo(lab: ResolvedLab, net: ResolvedNetwork, up: LanUplink): string {
  const lines = [`link delete dev ${lanHostVeth(lab.name, net)}`];
  if (net.mode === 'bridged' && !up.attach) lines.push(`link delete dev ${lanHostBridge(lab.name, net.name)}`);
  return lines.join('\n') + '\n';
}

/** `ip -batch` inside the lab namespace: the veth's lab end becomes a port of the network's bridge. */
export function renderLanLabBatch(lab: ResolvedLab, net: ResolvedNetwork): string {
  const veth = lanLabVeth(lab.name, net.name);
  return [`link set dev ${veth} alias ${ownerMarker(lab.name)}`, `link set dev ${veth} master ${net.bridge}`, `link set dev ${veth} up`, ''].join('\n');
}

function addrSpec(a: HostAddr): string {
  const parts = [`${a.local}/${a.prefixlen}`];
  if (a.broadcast) parts.push('brd', a.broadcast);
  if (a.scope !== 'global') parts.push('scope', a.scope);
  return parts.join(' ');
}

function routeSpec(r: HostRoute, dev: string, full: boolean): string {
  const dst = r.dst === 'default' ? (r.family === 'inet6' ? '::/0' : '0.0.0.0/0') : r.dst;
  const parts = [dst];
  if (r.gateway) parts.push('via', r.gateway);
  parts.push('dev', dev);
  if (r.table) parts.push('table', r.table);
  if (r.metric !== undefined) parts.push('metric', String(r.metric));
  if (full) {
    if (r.protocol) parts.push('proto', r.protocol);
    if (r.scope) parts.push('scope', r.scope);
    if (r.prefsrc) parts.push('src', r.prefsrc);
    if (r.onlink) parts.push('onlink');
  }
  return parts.join(' ');
}

/**
 * `ip -batch` lines that move addresses and routes from one interface to another: addresses first (so gateways
 * stay reachable), the routes deleted from `from` and made again on `to`, then the old addresses removed.
 * Used both ways: uplink -> host bridge at `up`, host bridge -> uplink at `down` and on rollback.
 */
export function renderMove(from: string, to: string, addrs: HostAddr[], routes: HostRoute[]): string[] {
  const lines: string[] = [];
  for (const a of addrs) {
    const lft = a.validLft === 'forever' ? [] : ['valid_lft', String(a.validLft), 'preferred_lft', String(a.preferredLft === 'forever' ? a.validLft : a.preferredLft)];
    const flags = [...(a.noprefixroute ? ['noprefixroute'] : []), ...(a.family === 'inet6' ? ['nodad'] : [])];
    lines.push(['addr', 'add', addrSpec(a), 'dev', to, ...lft, ...flags].join(' '));
  }
  for (const r of routes) lines.push(`route del ${routeSpec(r, from, false)}`);
  for (const a of addrs) lines.push(`addr del ${a.local}/${a.prefixlen} dev ${from}`);
  for (const r of routes) lines.push(`route add ${routeSpec(r, to, true)}`);
  return lines;
}

/** True when the lab has macnat networks (a netdev table on the host, a bridge table in the lab). */
export function needsMacnat(lab: ResolvedLab): boolean {
  return lab.networks.some((n) => n.mode === 'macnat');
}

/**
 * The host's netdev table for the lab's macnat networks. From the lab veth: only IPv4 and ARP, only with the
 * uplink's MAC (rewritten in the lab), straight out of the uplink; guests' addresses are learned on the way. From
 * the uplink: unicast for a learned guest address goes to the lab; broadcast and multicast are copied to it.
 */
export function renderMacnatHostRuleset(lab: ResolvedLab, uplinks: Record<string, LanUplink>): string {
  const lines = [`table netdev ${macnatHostTable(lab.name)} {`, `  comment "${ownerMarker(lab.name)}"`];
  for (const net of lab.networks.filter((n) => n.mode === 'macnat')) {
    const up = uplinks[net.name]!;
    const veth = lanHostVeth(lab.name, net);
    const set = `guests_${net.name.replace(/-/g, '_')}`;
    lines.push(
      `  set ${set} {`,
      '    type ipv4_addr; flags dynamic, timeout; timeout 1h;',
      '  }',
      `  chain from_lab_${net.name.replace(/-/g, '_')} {`,
      `    type filter hook ingress device "${veth}" priority filter; policy drop;`,
      `    ether saddr != ${up.mac} drop`,
      `    ether type ip ip saddr != 0.0.0.0 update @${set} { ip saddr }`,
      `    ether type arp arp saddr ip != 0.0.0.0 update @${set} { arp saddr ip }`,
      `    ether type { ip, arp } fwd to "${up.name}"`,
      '  }',
      `  chain from_uplink_${net.name.replace(/-/g, '_')} {`,
      `    type filter hook ingress device "${up.name}" priority filter; policy accept;`,
      `    ether type ip ip daddr @${set} fwd to "${veth}"`,
      `    ether type arp arp daddr ip @${set} fwd to "${veth}"`,
      `    ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 ether type { ip, arp } dup to "${veth}"`,
      '  }',
    );
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/**
 * The lab namespace's bridge table for macnat networks, the seed's ebtables rules in nft: frames leaving by the
 * veth carry the uplink's MAC (Ethernet source and ARP sender); frames arriving for a guest's IPv4 (and ARP for
 * it) get that guest's MAC back, from a map learned from what guests send out. DHCP requests are marked "reply by
 * broadcast", as an access point delivers unicast only to the MACs it knows (the uplink's).
 */
export function renderMacnatLabRuleset(lab: ResolvedLab, uplinks: Record<string, LanUplink>): string {
  const lines = [`table bridge ${MACNAT_LAB_TABLE} {`];
  const pre: string[] = [];
  const post: string[] = [];
  for (const net of lab.networks.filter((n) => n.mode === 'macnat')) {
    const up = uplinks[net.name]!;
    const veth = `"${lanLabVeth(lab.name, net.name)}"`;
    const map = `guests_${net.name.replace(/-/g, '_')}`;
    lines.push(`  map ${map} {`, '    type ipv4_addr : ether_addr; flags dynamic, timeout; timeout 1h;', '  }');
    pre.push(
      `    iifname ${veth} ether type arp arp daddr ether ${up.mac} arp daddr ether set arp daddr ip map @${map}`,
      `    iifname ${veth} ether type arp ether daddr ${up.mac} ether daddr set arp daddr ip map @${map}`,
      `    iifname ${veth} ether type ip ether daddr ${up.mac} ether daddr set ip daddr map @${map}`,
    );
    post.push(
      // Learned from what leaves for the LAN, before the source is rewritten: exactly this network's guests
      // (spoofers were dropped by the guard table on the way in).
      `    oifname ${veth} ether type ip ip saddr != 0.0.0.0 update @${map} { ip saddr : ether saddr }`,
      `    oifname ${veth} ether type arp arp saddr ip != 0.0.0.0 update @${map} { arp saddr ip : ether saddr }`,
      `    oifname ${veth} ether type arp arp saddr ether set ${up.mac}`,
      // The flag changes the UDP payload: clear the (optional, IPv4) checksum rather than leave a wrong one.
      `    oifname ${veth} ether type ip udp sport 68 udp dport 67 @th,144,16 set 0x8000 udp checksum set 0`,
      `    oifname ${veth} ether saddr set ${up.mac}`,
    );
  }
  lines.push(
    '  chain restore_in {',
    '    type filter hook prerouting priority dstnat; policy accept;',
    ...pre,
    '  }',
    '  chain rewrite_out {',
    '    type filter hook postrouting priority srcnat; policy accept;',
    ...post,
    '  }',
    '}',
  );
  return lines.join('\n') + '\n';
}
