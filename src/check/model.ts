// The reachability model (pure): for every ordered pair of a lab's endpoints, whether a ping and a TCP connection
// should succeed, and why: the path a packet takes and the way back, or the first place it is lost. It walks the
// packet hop by hop over what qnet builds: each guest's routes (connected, static, default), routers' forwarding
// and masquerade, the lab namespace (host side of each network; it forwards only when the lab has an uplink), the
// host beyond the uplink, QEMU's user-mode NAT (TCP and UDP only, answers only its guest's 10.0.2.15),
// anti-spoofing on the bridges, links pulled down and 100% loss.
import { contains, formatCidr, formatIPv4, networkOf, parseCidr, parseIPv4, type Cidr } from '../topology/ipv4.js';
import { nicName, onLan, subInterfaceName, USER_NET, usesUplink, type ResolvedLab, type ResolvedNetwork, type ResolvedNic, type ResolvedNode } from '../topology/model.js';
import { describePort, hostSegment, segmentLabel, segmentOf, UNTAGGED } from '../topology/vlan.js';
import type { Impairment } from '../topology/impair.js';

export type Probe = 'ping' | 'tcp';
export const PROBES: readonly Probe[] = ['ping', 'tcp'];

/** Where a probe starts: a guest, the lab namespace (the host side of every network), or the host beyond the uplink. */
export interface Source {
  id: string;
  kind: 'node' | 'host' | 'upstream';
  node?: string;
}

/** What a probe goes to. */
export interface Destination {
  id: string;
  kind: 'node' | 'host' | 'upstream' | 'forward' | 'hostfwd';
  node?: string;
  nic?: number;
  network?: string;
  /** The address probed; for a DHCP NIC without a known lease, a stand-in from its range (`dhcp` is then true). */
  ip: number;
  dhcp?: boolean;
  /** forward and hostfwd: the port connected to (on the host, or on the lab namespace's loopback). */
  port?: number;
}

/** One prediction: reached or not, the hops (there and back), and the reason when not. */
export interface Verdict {
  ok: boolean;
  /** Summary of the way: "same segment lan", "via deb1 (router), deb1's user-mode NAT", ... */
  via: string;
  hops: string[];
  reason?: string;
  /** The probe (or its answer) would leave this machine by the host's default route: qnet never sends it. */
  leaves?: true;
}

export interface Cell {
  from: string;
  to: string;
  probe: Probe;
  /** Null: the probe does not apply (a forward is pinged by no one; a forward is for the host beyond it). */
  predicted: Verdict | null;
}

export interface Prediction {
  sources: Source[];
  destinations: Destination[];
  cells: Cell[];
}

/** What the model knows of a running lab beyond its topology: links pulled down, impairments, leases, the uplink. */
export interface LiveFacts {
  /** NIC positions whose link is down, by node. */
  linksDown?: Record<string, number[]>;
  /** The impairment in force on a NIC (when absent, the topology's). */
  impairment?: (node: ResolvedNode, nic: ResolvedNic) => Impairment | undefined;
  /** Leased addresses of DHCP NICs, by node then NIC position. */
  leases?: Record<string, Record<number, number>>;
  /** The host's address on the lab's uplink (known once it is up); otherwise a stand-in. */
  upstream?: number;
  /**
   * A user's (rootless) lab: its uplink is pasta, not a veth to the host. Beyond pasta is the user's own host
   * namespace, reached through the user's sockets: `upstream` is then an address of the host itself (its default
   * route's source), not the end of a veth. `labEnd`: the lab's address on pasta's tap. `ping`: pasta carries ICMP
   * echo only over ping sockets, which net.ipv4.ping_group_range must allow to the user (Debian's default, "1 0",
   * allows nobody). The host has no route into the lab: only answers to what pasta carried, and its forwards, get in.
   */
  pasta?: { labEnd: number; ping: boolean };
}

/** The address that stands for "beyond the lab" in a lab without an uplink: put on the lab namespace's loopback by
 * `qnet check` (TEST-NET-2, a documentation range nothing routes). */
export const PROBE_UPSTREAM = '198.51.100.1';
// Stand-in for the uplink's host address before a lab is up (100.64.0.0/10, the range uplinks come from).
const UPLINK_STANDIN = '100.64.0.1';
const USER_IP = parseIPv4(USER_NET.address.split('/')[0]!)!;
const USER_GW = parseIPv4(USER_NET.gateway)!;
const USER_DNS = parseIPv4(USER_NET.dns)!;
const USER_CIDR = parseCidr(USER_NET.address)!;
const LOOPBACK = parseCidr('127.0.0.0/8')!;
const MAX_HOPS = 32;

type Place =
  | { t: 'node'; node: ResolvedNode }
  | { t: 'labns' }
  | { t: 'root' }
  | { t: 'slirp'; node: ResolvedNode; nic: ResolvedNic };

interface Packet {
  src: number;
  dst: number;
  probe: Probe;
}

// A translation the way back must undo: a router's masquerade, or a user-mode NAT's proxied connection.
type Nat =
  | { kind: 'masq'; node: string; src: number }
  | { kind: 'slirp'; node: ResolvedNode; nic: ResolvedNic; src: number; dst: number };

interface Walk {
  hops: string[];
  routers: string[];
  nats: Nat[];
  notes: string[];
}

class Lost extends Error {
  /** The packet would leave this machine (by the host's own default route): such a probe is never sent. */
  constructor(
    message: string,
    readonly leaves = false,
  ) {
    super(message);
  }
}

/** The lab as the model sees it: lookups over the topology and the live facts. */
class World {
  readonly nets: Map<string, ResolvedNetwork>;
  readonly uplink: boolean;
  readonly upstream: number;
  readonly labnsLocal: Set<number>;
  /** The lab namespace's own address on the uplink. */
  readonly labEnd: number;
  readonly pasta: { labEnd: number; ping: boolean } | undefined;
  private readonly standIn = new Map<string, number>();
  private readonly sides: ResolvedNetwork[];

  constructor(
    readonly lab: ResolvedLab,
    readonly live: LiveFacts,
  ) {
    this.nets = new Map(lab.networks.map((n) => [n.name, n]));
    this.uplink = lab.networks.some(usesUplink);
    this.upstream = live.upstream ?? parseIPv4(this.uplink ? UPLINK_STANDIN : PROBE_UPSTREAM)!;
    this.sides = lab.networks.filter((n) => n.address !== undefined && n.mode !== 'isolated' && n.mode !== 'socket' && n.mode !== 'bridged' && n.mode !== 'macnat');
    this.labnsLocal = new Set(this.sides.map((n) => n.address!.ip));
    // The lab's end of the uplink is the host's address + 1 (see render/uplink.ts); without one, the stand-in
    // for "beyond the lab" sits on the lab namespace's loopback.
    // (rootless: pasta's tap has an address of its own, unrelated to the host's).
    this.pasta = this.uplink ? live.pasta : undefined;
    this.labEnd = this.pasta ? this.pasta.labEnd : this.upstream + 1;
    this.labnsLocal.add(this.uplink ? this.labEnd : this.upstream);
    // DHCP NICs without a lease or a static one: distinct stand-ins from the start of their range (on a LAN's own
    // DHCP, where qnet knows no range, from 198.18.N.10/24, the benchmarking range; measuring learns the real ones).
    lab.networks.forEach((net, n) => {
      if (!net.dhcp && !onLan(net)) return;
      const taken = new Set(lab.nodes.flatMap((x) => x.nics.filter((c) => c.network === net.name).flatMap((c) => c.addresses.map((a) => a.ip))));
      let next = net.dhcp ? net.dhcp.start : ((198 << 24) | (18 << 16) | (n << 8) | 10) >>> 0;
      for (const node of lab.nodes)
        for (const nic of node.nics) {
          if (nic.network !== net.name || !nic.dhcp || nic.addresses[0] || live.leases?.[node.name]?.[nic.index] !== undefined) continue;
          while (taken.has(next)) next++;
          this.standIn.set(`${node.name}/${nic.index}`, next++);
        }
    });
  }

  /** Networks on which the lab namespace has an address of its own. */
  hostSides(): ResolvedNetwork[] {
    return this.sides;
  }

  /** The addresses of a NIC: static, its lease, or a stand-in from its DHCP range. */
  addrs(node: ResolvedNode, nic: ResolvedNic): Cidr[] {
    if (nic.kind === 'user') return [USER_CIDR];
    const leased = this.live.leases?.[node.name]?.[nic.index];
    const net = this.nets.get(nic.network);
    const prefix = net?.subnet?.prefix ?? net?.address?.prefix ?? 24;
    if (nic.dhcp) {
      if (leased !== undefined) return [{ ip: leased, prefix }];
      if (nic.addresses[0]) return [nic.addresses[0]];
      const stand = this.standIn.get(`${node.name}/${nic.index}`);
      if (stand !== undefined) return [{ ip: stand, prefix }];
      return [];
    }
    return nic.addresses;
  }

  down(node: ResolvedNode, nic: ResolvedNic): boolean {
    return (this.live.linksDown?.[node.name] ?? []).includes(nic.index);
  }

  /** True when the NIC drops everything in that direction (from the guest's side). */
  lossAll(node: ResolvedNode, nic: ResolvedNic, dir: 'egress' | 'ingress'): boolean {
    const i = this.live.impairment ? this.live.impairment(node, nic) : nic.impair;
    return !!i && (i.lossPct ?? 0) >= 100 && (i.direction === dir || i.direction === 'both');
  }

  ifName(node: ResolvedNode, nic: ResolvedNic): string {
    return `${node.name} ${nicName(node, nic)}`;
  }

  /** The node's default gateway (declared; the host side of a nat/routed network; a lease's router; user-mode's). */
  gateway(node: ResolvedNode): number | undefined {
    if (node.gateway !== undefined) return node.gateway;
    const dhcpNics = node.nics.filter((n) => n.dhcp);
    if (dhcpNics.length) {
      // dnsmasq hands out a router only on nat and routed networks; the first lease with one wins.
      for (const n of dhcpNics) {
        const net = this.nets.get(n.network);
        if (net?.dhcp && usesUplink(net) && net.address) return net.address.ip;
      }
      return undefined;
    }
    const staticUplink = node.nics.find((n) => !n.dhcp && n.addresses.length && this.nets.get(n.network) && usesUplink(this.nets.get(n.network)!));
    if (staticUplink) return this.nets.get(staticUplink.network)!.address!.ip;
    if (node.nics.some((n) => n.kind === 'user')) return USER_GW;
    return undefined;
  }

  /** The route a node takes to `dst`: the NIC and the next hop (longest prefix; connected before static). */
  route(node: ResolvedNode, dst: number): { nic: ResolvedNic; via: number; tag?: number } | undefined {
    let best: { nic: ResolvedNic; via: number; prefix: number; tag?: number } | undefined;
    const consider = (prefix: number, nic: ResolvedNic, via: number, tag?: number) => {
      if (!best || prefix > best.prefix) best = { nic, via, prefix, ...(tag !== undefined ? { tag } : {}) };
    };
    for (const nic of node.nics) for (const a of this.addrs(node, nic)) if (contains(a, dst)) consider(a.prefix, nic, dst);
    // VLAN sub-interfaces: the same NIC, frames tagged with the sub-interface's VLAN.
    for (const nic of node.nics) for (const v of nic.vlans ?? []) for (const a of v.addresses) if (contains(a, dst)) consider(a.prefix, nic, dst, v.id);
    const onLink = (via: number): { nic: ResolvedNic; tag?: number } | undefined => {
      const nic = node.nics.find((n) => this.addrs(node, n).some((a) => contains(a, via)));
      if (nic) return { nic };
      for (const n of node.nics) for (const v of n.vlans ?? []) if (v.addresses.some((a) => contains(a, via))) return { nic: n, tag: v.id };
      return undefined;
    };
    for (const r of node.routes ?? []) {
      const on = onLink(r.via);
      if (on && contains(r.to, dst)) consider(r.to.prefix, on.nic, r.via, on.tag);
    }
    if (!best) {
      const gw = this.gateway(node);
      const on = gw !== undefined ? onLink(gw) : undefined;
      if (gw !== undefined && on) best = { nic: on.nic, via: gw, prefix: 0, ...(on.tag !== undefined ? { tag: on.tag } : {}) };
    }
    return best;
  }

  /** The addresses of a NIC's VLAN sub-interface. */
  subAddrs(nic: ResolvedNic, tag: number): Cidr[] {
    return nic.vlans?.find((v) => v.id === tag)?.addresses ?? [];
  }

  local(place: Place, ip: number): boolean {
    switch (place.t) {
      case 'node':
        return (
          contains(LOOPBACK, ip) ||
          place.node.nics.some((nic) => nic.kind !== 'user' && (this.addrs(place.node, nic).some((a) => a.ip === ip) || (nic.vlans ?? []).some((v) => v.addresses.some((a) => a.ip === ip)))) ||
          (ip === USER_IP && place.node.nics.some((n) => n.kind === 'user'))
        );
      case 'labns':
        return contains(LOOPBACK, ip) || this.labnsLocal.has(ip);
      case 'root':
        return this.uplink && ip === this.upstream;
      case 'slirp':
        return false;
    }
  }

  name(place: Place): string {
    switch (place.t) {
      case 'node':
        return place.node.name;
      case 'labns':
        return 'the lab namespace';
      case 'root':
        return 'the host';
      case 'slirp':
        return `${place.node.name}'s user-mode NAT`;
    }
  }
}

/** The endpoints a lab has: the probe sources and destinations, in a stable order. */
export function endpoints(lab: ResolvedLab, live: LiveFacts = {}): { sources: Source[]; destinations: Destination[] } {
  return endpointsIn(new World(lab, live));
}

function endpointsIn(w: World): { sources: Source[]; destinations: Destination[] } {
  const { lab, live } = w;
  const sources: Source[] = lab.nodes.map((n) => ({ id: n.name, kind: 'node', node: n.name }));
  if (w.hostSides().length || lab.nodes.some((n) => n.nics.some((c) => c.kind === 'user'))) sources.push({ id: 'host', kind: 'host' });
  if (w.uplink) sources.push({ id: 'upstream', kind: 'upstream' });
  const destinations: Destination[] = [];
  for (const node of lab.nodes) {
    const own = node.nics.filter((n) => n.kind !== 'user');
    for (const nic of own)
      w.addrs(node, nic).forEach((a, i, all) => {
        const base = own.length === 1 ? node.name : `${node.name}:${nicName(node, nic)}`;
        destinations.push({
          id: all.length > 1 ? `${base}#${i + 1}` : base,
          kind: 'node',
          node: node.name,
          nic: nic.index,
          network: nic.network,
          ip: a.ip,
          ...(nic.dhcp && live.leases?.[node.name]?.[nic.index] === undefined && !nic.addresses[0] ? { dhcp: true } : {}),
        });
      });
  }
  for (const node of lab.nodes)
    for (const nic of node.nics)
      for (const v of nic.vlans ?? [])
        v.addresses.forEach((a, i, all) => {
          const base = `${node.name}:${subInterfaceName(nicName(node, nic), v.id)}`;
          destinations.push({ id: all.length > 1 ? `${base}#${i + 1}` : base, kind: 'node', node: node.name, nic: nic.index, network: nic.network, ip: a.ip });
        });
  for (const net of w.hostSides()) destinations.push({ id: `host:${net.name}`, kind: 'host', network: net.name, ip: net.address!.ip });
  if (sources.some((s) => s.kind === 'host')) destinations.push({ id: 'upstream', kind: 'upstream', ip: w.upstream });
  for (const f of lab.forwards)
    if (f.proto === 'tcp') destinations.push({ id: `forward:${f.host}`, kind: 'forward', node: f.node, ip: w.upstream, port: f.host });
  for (const node of lab.nodes)
    for (const nic of node.nics)
      for (const h of nic.hostfwd)
        if (h.proto === 'tcp') destinations.push({ id: `hostfwd:${h.host}`, kind: 'hostfwd', node: node.name, ip: parseIPv4('127.0.0.1')!, port: h.host });
  return { sources, destinations };
}

function startPlace(w: World, src: Source): Place {
  if (src.kind === 'host') return { t: 'labns' };
  if (src.kind === 'upstream') return { t: 'root' };
  return { t: 'node', node: w.lab.nodes.find((n) => n.name === src.node)! };
}

/** Predicts one probe from a source to a destination. */
export function predictOne(lab: ResolvedLab, src: Source, dst: Destination, probe: Probe, live: LiveFacts = {}): Verdict | null {
  return probeIn(new World(lab, live), src, dst, probe);
}

// One probe in a lab as the model sees it (one World serves every probe of a matrix).
function probeIn(w: World, src: Source, dst: Destination, probe: Probe): Verdict | null {
  const lab = w.lab;
  if (dst.kind === 'forward' || dst.kind === 'hostfwd') {
    // A forward is a host port: it is for the side it listens on (the host for `forwards`, the lab namespace's
    // loopback for a user-mode NIC's hostfwd), and carries no ping.
    if (probe === 'ping' || src.kind !== (dst.kind === 'forward' ? 'upstream' : 'host')) return null;
  }
  if (src.kind === 'node' && dst.kind === 'node' && src.node === dst.node) return null;
  if (src.kind === 'host' && dst.kind === 'host') return null;
  if (src.kind === 'upstream' && dst.kind === 'upstream') return null;
  if (src.kind === 'host' && dst.kind === 'upstream' && !w.uplink) return null; // the same place
  const walk: Walk = { hops: [], routers: [], nats: [], notes: [] };
  try {
    const start = startPlace(w, src);
    let target = dst.ip;
    if (dst.kind === 'forward') {
      const f = lab.forwards.find((x) => x.proto === 'tcp' && x.host === dst.port)!;
      walk.notes.push(`port forward to ${f.node}`);
      if (w.pasta) {
        // Rootless: pasta listens on the host's port and opens the connection inside, on its tap; the lab
        // namespace DNATs it to the guest. The host has no route of its own into the lab.
        walk.hops.push(`the host's port ${f.host} → pasta → the lab namespace → ${f.node} ${formatIPv4(f.address)}:${f.port} (DNAT)`);
        const reached = send(w, { t: 'labns' }, { src: w.upstream, dst: f.address, probe }, walk, false);
        walk.hops.push('↩');
        reply(w, reached.place, { src: reached.pkt.dst, dst: reached.pkt.src, probe }, walk);
        return verdict(walk, true);
      }
      walk.hops.push(`the host's port ${f.host} → ${f.node} ${formatIPv4(f.address)}:${f.port} (DNAT)`);
      target = f.address;
    }
    if (dst.kind === 'hostfwd') {
      const node = lab.nodes.find((n) => n.name === dst.node)!;
      const nic = node.nics.find((n) => n.hostfwd.some((h) => h.proto === 'tcp' && h.host === dst.port))!;
      walk.hops.push(`the lab namespace's 127.0.0.1:${dst.port} → ${node.name}'s user-mode NAT (hostfwd)`);
      walk.notes.push(`${node.name}'s hostfwd`);
      arrive(w, { t: 'node', node }, nic, { src: USER_GW, dst: USER_IP, probe }, walk);
      if (w.lossAll(node, nic, 'egress')) throw new Lost(`100% loss on ${w.ifName(node, nic)} (egress)`);
      return verdict(walk, true);
    }
    const pkt: Packet = { src: sourceAddress(w, start, target), dst: target, probe };
    const reached = send(w, start, pkt, walk, true);
    walk.hops.push('↩');
    reply(w, reached.place, { src: reached.pkt.dst, dst: reached.pkt.src, probe }, walk);
    return verdict(walk, true);
  } catch (e) {
    if (!(e instanceof Lost)) throw e;
    return { ...verdict(walk, false, e.message), ...(e.leaves ? { leaves: true } : {}) };
  }
}

// True when a packet the lab namespace sends to `dst` would go out of the machine (uplink, then the host's default).
function leavesFromLabns(w: World, dst: number): boolean {
  if (!w.uplink || w.local({ t: 'labns' }, dst) || w.hostSides().some((n) => contains(n.address!, dst))) return false;
  return !(dst === w.upstream || w.lab.networks.some((n) => usesUplink(n) && n.subnet && contains(n.subnet, dst)));
}

function verdict(walk: Walk, ok: boolean, reason?: string): Verdict {
  const ways = [...new Set([...walk.routers.map((r) => `via ${r}`), ...walk.notes])];
  const segs = new Set(walk.hops.filter((h) => h.startsWith('[')).map((h) => h.slice(1, -1)));
  const via = ways.length ? ways.join(', ') : segs.size === 1 ? `same segment ${[...segs][0]}` : 'direct';
  return { ok, via, hops: walk.hops, ...(reason ? { reason } : {}) };
}

// The source address a place picks for a destination (the outgoing interface's address).
function sourceAddress(w: World, place: Place, dst: number): number {
  if (place.t === 'node') {
    const r = w.route(place.node, dst);
    if (!r) throw new Lost(noRoute(w, place.node, dst));
    return (r.tag !== undefined ? w.subAddrs(r.nic, r.tag) : w.addrs(place.node, r.nic))[0]?.ip ?? 0;
  }
  if (place.t === 'labns') {
    const net = w.hostSides().find((n) => contains(n.address!, dst) || (n.subnet && contains(n.subnet, dst)));
    if (net) return net.address!.ip;
    if (w.local(place, dst)) return dst;
    return w.uplink ? w.labEnd : 0;
  }
  return w.upstream;
}

function noRoute(w: World, node: ResolvedNode, dst: number): string {
  const gw = w.gateway(node);
  if (gw !== undefined) return `${node.name}'s gateway ${formatIPv4(gw)} is on none of its networks`;
  return `${node.name} has no route to ${formatIPv4(dst)} (no gateway)`;
}

/** Carries a packet from `place` until it is delivered; returns where, and the packet as it arrived. */
function send(w: World, place: Place, pkt: Packet, walk: Walk, origin: boolean): { place: Place; pkt: Packet } {
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    if (w.local(place, pkt.dst)) {
      // The way back of a translated connection: the translator answers for whom it translated.
      const nat = walk.nats.at(-1);
      if (nat && nat.kind === 'masq' && place.t === 'node' && place.node.name === nat.node && isReplyLeg(walk)) {
        walk.nats.pop();
        walk.hops.push(`${place.node.name} un-masquerades to ${formatIPv4(nat.src)}`);
        pkt = { ...pkt, dst: nat.src };
      } else if (nat && nat.kind === 'slirp' && place.t === 'labns' && isReplyLeg(walk)) {
        walk.nats.pop();
        walk.hops.push(`${nat.node.name}'s user-mode NAT answers ${formatIPv4(nat.src)}`);
        return arrive(w, { t: 'node', node: nat.node }, nat.nic, { src: nat.dst, dst: nat.src, probe: pkt.probe }, walk, true);
      } else {
        walk.hops.push(`${w.name(place)} (${formatIPv4(pkt.dst)})`);
        return { place, pkt };
      }
    }
    const next = forward(w, place, pkt, walk, origin);
    place = next.place;
    pkt = next.pkt;
    origin = false;
    if (next.done) return { place, pkt };
  }
  throw new Lost(`routing loop (more than ${MAX_HOPS} hops)`);
}

function isReplyLeg(walk: Walk): boolean {
  return walk.hops.includes('↩');
}

// One hop out of a place: routing, forwarding rules, NAT, the link out, the segment, the owner of the next hop.
function forward(w: World, place: Place, pkt: Packet, walk: Walk, origin: boolean): { place: Place; pkt: Packet; done?: boolean } {
  switch (place.t) {
    case 'node': {
      const node = place.node;
      if (!origin) {
        if (!node.router) throw new Lost(`${node.name} does not forward (not a router) ${formatIPv4(pkt.src)} → ${formatIPv4(pkt.dst)}`);
        if (!node.router.forward) throw new Lost(`${node.name} does not forward (router forward: false)`);
        walk.routers.push(`${node.name} (router)`);
      }
      const r = w.route(node, pkt.dst);
      if (!r) throw new Lost(noRoute(w, node, pkt.dst));
      const nic = r.nic;
      if (w.down(node, nic)) throw new Lost(`${w.ifName(node, nic)} link is down`);
      if (w.lossAll(node, nic, 'egress')) throw new Lost(`100% loss on ${w.ifName(node, nic)} (egress)`);
      const masq = node.router?.masquerade.find((m) => m.out === nic.index && w.nets.get(m.from)?.subnet && contains(w.nets.get(m.from)!.subnet!, pkt.src));
      if (masq) {
        const out = w.addrs(node, nic)[0]!.ip;
        walk.nats.push({ kind: 'masq', node: node.name, src: pkt.src });
        walk.hops.push(`${w.ifName(node, nic)} masquerades ${formatIPv4(pkt.src)} as ${formatIPv4(out)}`);
        pkt = { ...pkt, src: out };
      }
      walk.hops.push(`${w.ifName(node, nic)}`);
      if (nic.kind === 'user') return { place: { t: 'slirp', node, nic }, pkt };
      const net = w.nets.get(nic.network)!;
      if (net.antispoof && !node.router && !w.addrs(node, nic).some((a) => a.ip === pkt.src) && !(nic.dhcp && net.subnet && contains(net.subnet, pkt.src)))
        throw new Lost(`anti-spoofing on ${net.name} drops ${node.name}'s packet from ${formatIPv4(pkt.src)} (not ${nicName(node, nic)}'s address)`);
      return segment(w, net, r.via, pkt, walk, { node, nic, ...(r.tag !== undefined ? { tag: r.tag } : {}) });
    }
    case 'labns': {
      if (!origin && !w.uplink) throw new Lost(`the lab namespace does not forward (the lab has no nat or routed network) ${formatIPv4(pkt.src)} → ${formatIPv4(pkt.dst)}`);
      if (!origin) {
        const from = w.lab.networks.find((n) => n.subnet && contains(n.subnet, pkt.src));
        walk.notes.push(from?.mode === 'nat' ? `via the host's NAT (${from.name})` : from?.mode === 'routed' ? `routed by the host (${from.name})` : 'through the lab namespace');
      }
      const net = w.hostSides().find((n) => contains(n.address!, pkt.dst));
      if (net) {
        walk.hops.push(`the lab namespace's ${net.bridge}`);
        return segment(w, net, pkt.dst, pkt, walk);
      }
      if (!w.uplink) throw new Lost(`the lab namespace has no route to ${formatIPv4(pkt.dst)} (no uplink)`);
      if (w.pasta && pkt.probe === 'ping' && !w.pasta.ping)
        throw new Lost(
          'pasta carries no ICMP echo for this user (it needs ping sockets: net.ipv4.ping_group_range does not include your group; an administrator can widen it)',
          !w.local({ t: 'root' }, pkt.dst),
        );
      walk.hops.push(w.pasta ? 'the uplink (pasta)' : 'the uplink');
      return { place: { t: 'root' }, pkt };
    }
    case 'root': {
      if (w.pasta) {
        // Rootless: what comes back through pasta is the answer to a connection it carried out; anything else
        // the host sends by its own default route, out of the machine (never probed).
        // (The lab namespace masquerades its nat subnets out of pasta's tap, and un-masquerades the answers.)
        if (isReplyLeg(walk) && (pkt.dst === w.labEnd || w.lab.networks.some((n) => usesUplink(n) && n.subnet && contains(n.subnet, pkt.dst)))) {
          walk.hops.push('the host → pasta → the lab namespace');
          return { place: { t: 'labns' }, pkt };
        }
        throw new Lost(`the host has no route into a rootless lab: pasta carries only the lab's own connections out and its forwards in (the packet would leave this machine)`, true);
      }
      if (pkt.dst === w.upstream + 1) {
        walk.hops.push('the host → the uplink');
        return { place: { t: 'labns' }, pkt };
      }
      const net = w.lab.networks.find((n) => usesUplink(n) && n.subnet && contains(n.subnet, pkt.dst));
      if (!net) {
        const on = w.lab.networks.find((n) => (n.subnet ?? n.address) && contains((n.subnet ?? n.address)!, pkt.dst));
        const what = on ? `${on.name} (${formatCidr({ ip: networkOf((on.subnet ?? on.address)!), prefix: (on.subnet ?? on.address)!.prefix })}, a ${on.mode} network)` : formatIPv4(pkt.dst);
        // The host sends it by its own default route, out of the machine: predicted lost to the lab, and never probed.
        throw new Lost(`the host has no route to ${what}: it routes only the lab's nat and routed subnets (the packet would leave this machine)`, true);
      }
      if (!origin) throw new Lost(`the host does not forward ${formatIPv4(pkt.src)} back into the lab`);
      walk.hops.push('the host → the uplink');
      return { place: { t: 'labns' }, pkt };
    }
    case 'slirp': {
      const { node, nic } = place;
      if (pkt.dst === USER_GW || pkt.dst === USER_DNS) {
        if (pkt.probe === 'ping') {
          walk.hops.push(`${node.name}'s user-mode NAT answers itself`);
          return { place, pkt, done: true };
        }
      } else if (pkt.probe === 'ping')
        // slirp then tries the UDP echo port of the destination from the lab namespace: never probed if that leaves.
        throw new Lost(`ICMP through ${node.name}'s user-mode NAT (QEMU's slirp carries TCP and UDP, not ICMP)`, leavesFromLabns(w, pkt.dst));
      if (pkt.src !== USER_IP)
        throw new Lost(`${node.name}'s user-mode NAT cannot answer ${formatIPv4(pkt.src)}: it reaches only ${USER_NET.address.split('/')[0]} (masquerade out of ${nicName(node, nic)} on ${node.name} is missing)`);
      walk.notes.push(`${node.name}'s user-mode NAT`);
      walk.nats.push({ kind: 'slirp', node, nic, src: pkt.src, dst: pkt.dst });
      const dst = pkt.dst === USER_GW ? parseIPv4('127.0.0.1')! : pkt.dst;
      walk.hops.push(`${node.name}'s user-mode NAT connects from the lab namespace`);
      const labns: Place = { t: 'labns' };
      const p2 = { ...pkt, dst, src: sourceAddress(w, labns, dst) };
      const reached = send(w, labns, p2, walk, true);
      return { place: reached.place, pkt: reached.pkt, done: true };
    }
  }
}

// Across an L2 segment (a bridge network, one of its VLANs, a link or a socket link) to whoever owns the next hop.
function segment(w: World, net: ResolvedNetwork, via: number, pkt: Packet, walk: Walk, from?: { node: ResolvedNode; nic: ResolvedNic; tag?: number }): { place: Place; pkt: Packet } {
  // The VLAN the frame is switched in (on a plain network: untagged, or the guest's own tag carried as it is).
  const seg = from ? segmentOf(net, from.nic, from.tag) : hostSegment(net);
  if (seg === null) {
    const port = from!.nic.port!;
    throw new Lost(`the switch of ${net.name} drops ${from!.node.name}'s ${from!.tag !== undefined ? `frames tagged ${from!.tag}` : 'untagged frames'} (its port: ${describePort(port)})`);
  }
  walk.hops.push(net.vlans || seg !== UNTAGGED ? `[${net.name} ${segmentLabel(seg)}]` : `[${net.name}]`);
  const hostHere = w.hostSides().includes(net) && net.address!.ip === via && hostSegment(net) === seg;
  if (!from && hostHere) return { place: { t: 'labns' }, pkt };
  for (const node of w.lab.nodes)
    for (const nic of node.nics) {
      if (nic.kind === 'user' || nic.network !== net.name || (from && from.node === node && from.nic === nic)) continue;
      const owns = (segmentOf(net, nic) === seg && w.addrs(node, nic).some((a) => a.ip === via)) || (nic.vlans ?? []).some((v) => segmentOf(net, nic, v.id) === seg && v.addresses.some((a) => a.ip === via));
      if (!owns) continue;
      return { place: arrive(w, { t: 'node', node }, nic, pkt, walk, false).place, pkt };
    }
  if (from && hostHere) return { place: { t: 'labns' }, pkt };
  const what = via === pkt.dst ? formatIPv4(via) : `the next hop ${formatIPv4(via)}`;
  throw new Lost(`nobody on ${net.name}${net.vlans || seg !== UNTAGGED ? ` (${segmentLabel(seg)})` : ''} has ${what}${net.mode === 'isolated' ? ' (an isolated network has no host side)' : ''}`);
}

// A packet enters a node through a NIC: its link and its ingress loss decide.
function arrive(w: World, place: { t: 'node'; node: ResolvedNode }, nic: ResolvedNic, pkt: Packet, walk: Walk, deliverOnward = false): { place: Place; pkt: Packet } {
  if (w.down(place.node, nic)) throw new Lost(`${w.ifName(place.node, nic)} link is down`);
  if (w.lossAll(place.node, nic, 'ingress')) throw new Lost(`100% loss on ${w.ifName(place.node, nic)} (ingress)`);
  walk.hops.push(`${w.ifName(place.node, nic)}`);
  if (deliverOnward) return send(w, place, pkt, walk, false);
  return { place, pkt };
}

// The answer's way back, from where the probe was delivered.
function reply(w: World, place: Place, pkt: Packet, walk: Walk): void {
  if (place.t === 'slirp') return; // answered by the user-mode stack on the guest's own link
  send(w, place, pkt, walk, true);
}

/** Predicts every probe between every ordered pair of endpoints. */
export function predict(lab: ResolvedLab, live: LiveFacts = {}): Prediction {
  const w = new World(lab, live);
  const { sources, destinations } = endpointsIn(w);
  const cells: Cell[] = [];
  for (const s of sources) for (const d of destinations) for (const probe of PROBES) cells.push({ from: s.id, to: d.id, probe, predicted: probeIn(w, s, d, probe) });
  return { sources, destinations, cells };
}

/** The address a destination stands for, for labels ("192.168.1.3", "DHCP"). */
export function destinationAddress(d: Destination): string {
  if (d.kind === 'forward') return `host:${d.port}`;
  if (d.kind === 'hostfwd') return `127.0.0.1:${d.port}`;
  return d.dhcp ? 'DHCP' : formatIPv4(d.ip);
}

