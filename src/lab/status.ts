// Reading a lab's live status: guests (alive or not), addresses, networks and taps.
import { RealRunner } from '../host/run.js';
import { isAlive, processMarker } from '../qemu/process.js';
import { formatCidr, formatIPv4 } from '../topology/ipv4.js';
import { NETNS_PREFIX, hasBridge, nicName, onLan, subInterfaceName, type NetworkMode } from '../topology/model.js';
import { describePort } from '../topology/vlan.js';
import { guestInterfaces } from './exec.js';
import { readdir, stat } from 'node:fs/promises';
import { imageNodeFiles } from '../guest/image-node.js';
import type { ResolvedNode } from '../topology/model.js';
import { findLab, listLabs } from './discover.js';
import { labStatusOf, nodeStateOf, readState, type LabStatusName, type NodeState } from './state.js';
import { guestAlive, upAlive } from './alive.js';
import { labLeases } from './leases.js';
import { nicPort } from '../fabric/ovn/names.js';
import { describeImpairment, impairmentInForce } from '../topology/impair.js';

export interface NodeStatus {
  name: string;
  /** running; stopped by `qnet stop`; dead (gone without being asked); unknown (never started). */
  state: NodeState;
  pid?: number;
  bootSeconds?: number;
  /** How the guest came up: booted, or restored from the saved state of its shape. */
  start?: 'booted' | 'restored';
  memory?: number;
  cpus?: number;
  /** Addresses: static ones, or for DHCP NICs the address of their current lease. */
  /** link: the NIC's cable as `qnet link` left it (up unless pulled). */
  nics: Array<{
    guestIf: string;
    mac: string;
    model: string;
    tap: string;
    network: string;
    dhcp: boolean;
    addresses: string[];
    link: 'up' | 'down';
    /** On OVN: whether OVN has bound the NIC's logical port to a chassis (its tap plugged into br-int and claimed). */
    bound?: boolean;
    impair?: string;
    /** Its port on a VLAN-aware network ("access 10", "trunk 10,20 native 1"). */
    port?: string;
    /** VLAN sub-interfaces in the guest, with their addresses. */
    vlans?: Array<{ name: string; id: number; addresses: string[] }>;
  }>;
  gateway?: string;
  /** The QEMU monitor's `info network` (with `status --monitor`). */
  monitorNetwork?: string;
  /** builtin, or image (the user's disk image). */
  kind: 'builtin' | 'image';
  /** Image nodes: the base, its overlay (where the guest writes), whether it is kept, readiness, VNC. */
  image?: { base: string; format?: string; overlay: string; overlayBytes?: number; persist: boolean; config: string; ready: string; vnc?: string };
}

export interface LabStatus {
  lab: string;
  status: LabStatusName;
  /** What the status means and what to do (an interrupted up, dead nodes). */
  note?: string;
  netns: string;
  accel?: string;
  createdAt?: string;
  source?: string;
  services: Array<{ name: string; pid: number; state: 'running' | 'dead' }>;
  networks: Array<{
    name: string;
    mode: NetworkMode;
    bridge?: string;
    subnet?: string;
    address?: string;
    uplink?: string;
    present: boolean;
    taps: string[];
    /** A VLAN-aware network: the host side's VLAN and the subnets per VLAN. */
    vlans?: { host: number; subnets: Record<string, string> };
  }>;
  nodes: NodeStatus[];
  leftovers: string[];
}

/** The status of one lab, or null when nothing of it exists. */
export async function labStatus(lab: string): Promise<LabStatus | null> {
  const state = await readState(lab);
  const found = await findLab(lab);
  if (!state && !found.present) return null;
  const netns = `${NETNS_PREFIX}${lab}`;
  const links = new Map<string, { master?: string; operstate?: string }>();
  if (found.netns === 'ours') {
    const r = await new RealRunner().run(['ip', '-n', netns, '-j', 'link', 'show'], { allowFail: true });
    try {
      for (const l of JSON.parse(r.stdout || '[]') as Array<{ ifname: string; master?: string; operstate?: string }>) links.set(l.ifname, l);
    } catch {
      // unreadable: leave empty
    }
  }
  if (!state) {
    return { lab, status: 'leftover', netns, services: [], networks: [], nodes: [], leftovers: found.what };
  }
  // DHCP NICs show the address their lease gives them (from dnsmasq's lease files).
  const leases = state.lab.networks.some((n) => n.dhcp) ? await labLeases(lab).catch(() => []) : [];
  const prefixOf = new Map(state.lab.networks.map((n) => [n.name, (n.subnet ?? n.address)?.prefix]));
  // Networks whose DHCP leases only the guests know: a LAN's own server, and OVN's DHCP (it keeps no lease files).
  const lanNets = new Set(state.lab.networks.filter((n) => onLan(n) || (state.lab.fabric === 'ovn' && n.dhcp)).map((n) => n.name));
  // On OVN: whether OVN has bound each NIC's logical port to this host (one ovn-nbctl run).
  const bound = state.lab.fabric === 'ovn' ? await (await import('./ovn.js')).portsBound(new RealRunner(), lab, state.lab.ovn?.nb !== undefined ? [`--db=${state.lab.ovn.nb}`] : []) : undefined;
  // Each node at once: asking a guest agent can take a moment, and one that does not answer must not hold up the rest.
  const nodes: NodeStatus[] = await Promise.all(state.lab.nodes.map(async (node): Promise<NodeStatus> => {
    const g = state.guests[node.name];
    const alive = await guestAlive(lab, node.name, g);
    // A lease from a LAN's own DHCP server is known to the guest only: ask its agent (briefly). An image guest
    // names its NICs itself: the agent says how.
    const ifs =
      alive && (node.image || node.nics.some((n) => n.dhcp && lanNets.has(n.network)))
        ? await guestInterfaces(lab, node.name, node.image ? 1500 : 2000).catch(() => new Map<string, { name: string; addresses: string[] }>())
        : new Map<string, { name: string; addresses: string[] }>();
    const fromGuest = new Map([...ifs].map(([mac, i]) => [mac, i.addresses]));
    const files = node.image ? imageNodeFiles(lab, node) : undefined;
    // A restored node runs on its overlay of the disk saved with its shape's state; the other is its boot's, unused.
    const overlay = files && (g?.start === 'restored' ? files.restored : files.overlay);
    return {
      name: node.name,
      state: nodeStateOf(g, alive),
      ...(g ? { pid: g.pid } : {}),
      ...(g?.bootSeconds !== undefined ? { bootSeconds: g.bootSeconds } : {}),
      ...(g?.start ? { start: g.start } : {}),
      memory: node.memory,
      cpus: node.cpus,
      kind: node.image ? 'image' : 'builtin',
      ...(node.image && overlay
        ? {
            image: {
              base: node.image.path,
              ...(node.image.format ? { format: node.image.format } : {}),
              overlay,
              ...(await stat(overlay).then((st) => ({ overlayBytes: st.blocks * 512 }), () => ({}))),
              persist: node.image.persist,
              config: node.image.config,
              ready: node.image.ready.kind,
              ...(node.image.vnc ? { vnc: vncWhere(lab, node) } : {}),
            },
          }
        : {}),
      nics: node.nics.map((n) => ({
        guestIf: node.image ? (ifs.get(n.mac)?.name ?? '?') : `eth${n.index}`,
        mac: n.mac,
        model: n.model,
        tap: n.tap,
        network: n.network,
        dhcp: n.dhcp,
        link: state.links?.[node.name]?.includes(n.index) ? ('down' as const) : ('up' as const),
        ...(bound && n.kind === 'bridge' ? { bound: bound.get(nicPort(lab, node.name, n.index)) ?? false } : {}),
        ...((i) => (i ? { impair: describeImpairment(i) } : {}))(impairmentInForce(state, node.name, n)),
        ...(n.port ? { port: describePort(n.port) } : {}),
        ...(n.vlans?.length
          ? { vlans: n.vlans.map((v) => ({ name: subInterfaceName(node.image ? nicName(node, n) : `eth${n.index}`, v.id), id: v.id, addresses: v.addresses.map(formatCidr) })) }
          : {}),
        addresses: n.dhcp && lanNets.has(n.network)
          ? (fromGuest.get(n.mac) ?? [])
          : n.dhcp
          ? leases.filter((l) => l.mac === n.mac && l.network === n.network).map((l) => `${l.ip}/${prefixOf.get(n.network) ?? 32}`)
          : n.addresses.map(formatCidr),
      })),
      ...(node.gateway !== undefined ? { gateway: formatIPv4(node.gateway) } : {}),
    };
  }));
  // On OVN the taps are ports of br-int in the host's namespace (sysfs shows its links), not of a bridge in the lab's.
  const hostLinks = state.lab.fabric === 'ovn' ? new Set(await readdir('/sys/class/net').catch(() => [] as string[])) : undefined;
  const ovnTaps = (net: string) => state.lab.nodes.flatMap((x) => x.nics.filter((c) => c.network === net && c.kind === 'bridge').map((c) => c.tap));
  const linkTaps = (net: string) => state.lab.nodes.flatMap((x) => x.nics.filter((c) => c.network === net && c.peerTap).map((c) => c.tap));
  const networks = state.lab.networks.map((n) => ({
    name: n.name,
    mode: n.mode,
    ...(hasBridge(n) ? { bridge: n.bridge } : {}),
    ...(n.subnet ? { subnet: formatCidr(n.subnet) } : {}),
    ...(n.address ? { address: formatCidr(n.address) } : {}),
    ...(n.uplink ? { uplink: n.uplink } : {}),
    ...(n.vlans ? { vlans: { host: n.vlans.host, subnets: Object.fromEntries(Object.entries(n.vlans.subnets).map(([k, c]) => [k, formatCidr(c)])) } } : {}),
    // A socket link has no device on the host: it is there while both of its guests run. A link is its two taps.
    present: hostLinks
      ? n.mode === 'bridge' && n.address
        ? links.has(n.bridge)
        : ovnTaps(n.name).every((t) => hostLinks.has(t))
      : hasBridge(n)
      ? links.has(n.bridge)
      : n.mode === 'link'
        ? linkTaps(n.name).every((t) => links.has(t))
        : nodes.filter((x) => x.nics.some((c) => c.network === n.name)).every((x) => x.state === 'running'),
    taps: hostLinks ? ovnTaps(n.name).filter((t) => hostLinks.has(t)) : hasBridge(n) ? [...links].filter(([, l]) => l.master === n.bridge).map(([name]) => name) : n.mode === 'link' ? linkTaps(n.name).filter((t) => links.has(t)) : [],
  }));
  // Helper daemons (dnsmasq): their death is shown, never silently repaired.
  const services: LabStatus['services'] = [];
  for (const [name, s] of Object.entries(state.services ?? {})) {
    const m = await processMarker(s.pid);
    const alive = m?.lab === lab && m.service === name && (await isAlive(s.pid));
    services.push({ name, pid: s.pid, state: alive ? 'running' : 'dead' });
  }
  // A socket network is there while both its guests run: one stopped on purpose leaves it down on purpose too.
  const stateOf = new Map(nodes.map((n) => [n.name, n.state]));
  const explained = (net: (typeof networks)[number]) =>
    !hasBridge(state.lab.networks.find((x) => x.name === net.name)!) &&
    state.lab.nodes.filter((x) => x.nics.some((c) => c.network === net.name)).every((x) => stateOf.get(x.name) === 'running' || stateOf.get(x.name) === 'stopped');
  const status = labStatusOf({
    recorded: state.status,
    upAlive: state.status === 'starting' ? await upAlive(state) : true,
    nodes: nodes.map((n) => n.state),
    networksMissing: networks.some((n) => !n.present && !explained(n)),
    servicesDead: services.some((s) => s.state !== 'running'),
  });
  const note = statusNote(lab, status, state.upBy?.pid, nodes);
  return {
    lab,
    status,
    ...(note ? { note } : {}),
    netns,
    accel: state.accel,
    createdAt: state.createdAt,
    ...(state.source ? { source: state.source } : {}),
    services,
    networks,
    nodes,
    leftovers: [],
  };
}

/** What a lab's status means for the user and what to do, when it is not plainly up. */
export function statusNote(lab: string, status: LabStatusName, upPid: number | undefined, nodes: Array<{ name: string; state: NodeState }>): string | undefined {
  if (status === 'interrupted')
    return `the \`qnet up\`${upPid ? ` (pid ${upPid})` : ''} that was making this lab is gone (killed before it finished or rolled back): \`qnet down ${lab}\` removes what it made`;
  const down = nodes.filter((n) => n.state === 'dead' || (status !== 'starting' && n.state === 'unknown')).map((n) => n.name);
  const stopped = nodes.filter((n) => n.state === 'stopped').map((n) => n.name);
  const parts: string[] = [];
  if (down.length) parts.push(`not running without being stopped: ${down.join(', ')} (\`qnet start ${lab} NODE\`, or \`qnet up\` of its file, starts ${down.length === 1 ? 'it' : 'them'} again)`);
  if (stopped.length) parts.push(`stopped with \`qnet stop\`: ${stopped.join(', ')} (\`qnet start ${lab} NODE\`)`);
  return parts.length ? parts.join('; ') : undefined;
}

/** The status of every lab on the host (of these labs, when the caller has listed them already). */
export async function allStatus(names?: string[]): Promise<LabStatus[]> {
  const out: LabStatus[] = [];
  for (const lab of names ?? (await listLabs())) {
    const s = await labStatus(lab);
    if (s) out.push(s);
  }
  return out;
}

/** Where an image node's screen is (display: vnc): the host port when one was asked for, and its Unix socket. */
export function vncWhere(lab: string, node: ResolvedNode): string {
  const sock = imageNodeFiles(lab, node).vnc;
  const port = node.image?.vnc?.port;
  return port !== undefined ? `127.0.0.1:${port} (also ${sock})` : `unix socket ${sock}`;
}
