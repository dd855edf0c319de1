// The lab as a graph (pure): nodes, networks by mode, the host side of each network, and NICs on the edges; drawn
// as Graphviz DOT (which `dot -Tsvg` turns into a picture), as Mermaid (which GitHub and many editors draw), or as
// JSON for other tools.
import { formatCidr, formatIPv4 } from '../topology/ipv4.js';
import { LOCAL_HOST, nicName, subInterfaceName, USER_NET, type NetworkMode, type ResolvedLab, type ResolvedNic, type ResolvedNode } from '../topology/model.js';
import { describePort } from '../topology/vlan.js';
import { sshDestination } from '../topology/ssh-target.js';
import { switchName } from '../fabric/ovn/names.js';

/** Where a node stands when the graph is of a running lab (as `qnet status` says). */
export type NodeState = 'running' | 'stopped' | 'dead' | 'unknown';

export interface GraphNode {
  name: string;
  role: 'router' | 'host';
  kind: 'builtin' | 'image';
  /** Only for a running lab. */
  state?: NodeState;
}

export interface GraphNetwork {
  name: string;
  mode: NetworkMode;
  bridge?: string;
  subnet?: string;
  /** The host side's address on the network (the guests' gateway on nat and routed networks). */
  address?: string;
  dhcp: boolean;
  /** bridged and macnat: the host interface whose LAN the guests join. */
  uplink?: string;
  /** A VLAN-aware network: the host side's VLAN and the subnets per VLAN ("10 10.0.10.0/24"). */
  vlans?: { host: number; subnets: string[] };
}

/** One end of a link: a node's NIC, as the guest names it, with its MAC and addresses. */
export interface GraphNic {
  node: string;
  nic: number;
  ifname: string;
  mac: string;
  model: string;
  addresses: string[];
  dhcp: boolean;
  tap?: string;
  /** Its port on a VLAN-aware network ("access 10", "trunk 10,20 native 1"). */
  port?: string;
  /** Its VLAN sub-interfaces in the guest, with their addresses ("eth0.10 10.0.10.1/24"). */
  vlans?: string[];
  /** Only for a running lab: the cable pulled by `qnet link`, the impairment in force. */
  link?: 'down';
  impair?: string;
}

/** What a graph of a running lab adds: each node's state, and per NIC (by node, then position) link and impairment. */
export interface LiveLab {
  states: Record<string, NodeState>;
  /** A lab on several hosts: where each node was placed (node → host). */
  placement?: Record<string, string>;
  nics?: Record<string, Record<number, { link?: 'down'; impair?: string; lease?: string }>>;
}

export type GraphLink =
  /** A NIC on a network's bridge. */
  | { kind: 'network'; network: string; nic: GraphNic }
  /** A socket network (QEMU's point-to-point link) or a link network (two taps end to end): no bridge. */
  | { kind: 'socket'; mode: 'socket' | 'link'; network: string; a: GraphNic; b: GraphNic }
  /** A NIC on QEMU's user-mode stack (its own NAT to the host). */
  | { kind: 'user'; nic: GraphNic; hostfwd: string[] };

/** The host-side end of a network: the host (nat, routed) or one of its interfaces (bridged, macnat). */
export interface GraphHost {
  network: string;
  label: string;
}

/** A machine of a lab that spans several (on OVN): its name, how qnet reaches it, its roles and the nodes on it. */
export interface GraphMachine {
  name: string;
  /** "this machine", or the ssh destination. */
  reach: string;
  /** central (runs the OVN databases), gateway (holds the host sides and the way out). */
  roles: Array<'central' | 'gateway'>;
  /** The nodes that run there: pinned by the topology, or placed (a running lab's placement). */
  nodes: string[];
}

export interface LabGraph {
  lab: string;
  nodes: GraphNode[];
  networks: GraphNetwork[];
  links: GraphLink[];
  hosts: GraphHost[];
  /** A lab that declares `hosts:`: each host as a cluster of its nodes (absent for a lab on one machine). */
  machines?: GraphMachine[];
  /** Nodes of such a lab that qnet places when the lab comes up (a topology file's graph: not placed yet). */
  unplaced?: string[];
}

/** The graph of a lab; with `live`, what the running lab adds (node states, links pulled, impairments). */
export function labGraph(lab: ResolvedLab, live?: LiveLab): LabGraph {
  const states = live?.states;
  const nic = (node: ResolvedNode, n: ResolvedNic): GraphNic => ({
    node: node.name,
    nic: n.index,
    ifname: nicName(node, n),
    mac: n.mac,
    model: n.model,
    // A DHCP NIC of a running lab shows its lease (as it appears).
    addresses: n.kind === 'user' ? [USER_NET.address] : live?.nics?.[node.name]?.[n.index]?.lease ? [live.nics[node.name]![n.index]!.lease!] : n.addresses.map(formatCidr),
    dhcp: n.dhcp,
    ...(n.kind === 'bridge' ? { tap: n.tap } : {}),
    ...(n.port ? { port: describePort(n.port) } : {}),
    ...(n.vlans?.length ? { vlans: n.vlans.map((v) => `${subInterfaceName(nicName(node, n), v.id)}${v.addresses.length ? ` ${v.addresses.map(formatCidr).join(', ')}` : ''}`) } : {}),
    ...(live?.nics?.[node.name]?.[n.index]?.link ? { link: 'down' as const } : {}),
    ...(live?.nics?.[node.name]?.[n.index]?.impair ? { impair: live.nics[node.name]![n.index]!.impair! } : {}),
  });
  const links: GraphLink[] = [];
  const socketEnds = new Map<string, GraphNic[]>();
  for (const node of lab.nodes)
    for (const n of node.nics) {
      if (n.kind === 'user') links.push({ kind: 'user', nic: nic(node, n), hostfwd: n.hostfwd.map((f) => `${f.proto} ${f.host}→${f.guest}`) });
      else if (n.kind === 'socket' || n.peerTap) socketEnds.set(n.network, [...(socketEnds.get(n.network) ?? []), nic(node, n)]);
      else links.push({ kind: 'network', network: n.network, nic: nic(node, n) });
    }
  const modeOf = new Map(lab.networks.map((n) => [n.name, n.mode]));
  for (const [network, ends] of socketEnds)
    if (ends.length === 2) links.push({ kind: 'socket', mode: modeOf.get(network) === 'link' ? 'link' : 'socket', network, a: ends[0]!, b: ends[1]! });
  const hosts: GraphHost[] = [];
  for (const net of lab.networks) {
    if (net.mode === 'nat') hosts.push({ network: net.name, label: 'host (NAT out of the lab uplink)' });
    else if (net.mode === 'routed') hosts.push({ network: net.name, label: 'host (routed out of the lab uplink)' });
    else if (net.mode === 'bridged') hosts.push({ network: net.name, label: `host ${net.uplink} (its LAN, bridged)` });
    else if (net.mode === 'macnat') hosts.push({ network: net.name, label: `host ${net.uplink} (its LAN, MAC NAT)` });
  }
  return {
    lab: lab.name,
    ...machinesOf(lab, live?.placement),
    nodes: lab.nodes.map((n) => ({
      name: n.name,
      role: n.router ? 'router' : 'host',
      kind: n.image ? 'image' : 'builtin',
      ...(states ? { state: states[n.name] ?? 'unknown' } : {}),
    })),
    networks: lab.networks
      .filter((n) => n.mode !== 'socket' && n.mode !== 'link')
      .map((n) => ({
        name: n.name,
        mode: n.mode,
        // On OVN a network is a logical switch that spans the hosts, not a Linux bridge.
        bridge: lab.fabric === 'ovn' ? `OVN switch ${switchName(lab.name, n.name)}` : n.bridge,
        ...(n.vlans ? { vlans: { host: n.vlans.host, subnets: Object.entries(n.vlans.subnets).map(([id, c]) => `${id} ${formatCidr(c)}`) } } : {}),
        ...(n.subnet ? { subnet: formatCidr(n.subnet) } : {}),
        ...(n.address ? { address: formatIPv4(n.address.ip) } : {}),
        dhcp: !!n.dhcp,
        ...(n.uplink ? { uplink: n.uplink } : {}),
      })),
    links,
    hosts,
  };
}

// The hosts of a lab that declares them (a one-machine lab, OVN or not, has none): each with the nodes pinned or
// placed there; the rest are placed by `up`.
function machinesOf(lab: ResolvedLab, placement: Record<string, string> | undefined): Pick<LabGraph, 'machines' | 'unplaced'> {
  const hosts = lab.hosts ?? [];
  if (!hosts.length || (hosts.length === 1 && hosts[0]!.ssh.kind === 'local' && hosts[0]!.name === LOCAL_HOST)) return {};
  const where = (n: ResolvedNode) => n.host ?? placement?.[n.name];
  const machines = hosts.map((h): GraphMachine => ({
    name: h.name,
    reach: h.ssh.kind === 'local' ? 'this machine' : sshDestination(h.ssh),
    roles: [...(lab.ovn?.central === h.name ? ['central' as const] : []), ...(lab.ovn?.gateway === h.name ? ['gateway' as const] : [])],
    nodes: lab.nodes.filter((n) => where(n) === h.name).map((n) => n.name),
  }));
  const unplaced = lab.nodes.filter((n) => where(n) === undefined).map((n) => n.name);
  return { machines, ...(unplaced.length ? { unplaced } : {}) };
}

function machineLabel(m: GraphMachine): string {
  return `host ${m.name} · ${m.reach}${m.roles.length ? ` · ${m.roles.join(', ')}` : ''}`;
}

// What an edge says of a NIC: its name, addresses (or DHCP) and MAC.
function nicLabel(n: GraphNic): string[] {
  const addr = n.addresses.length ? n.addresses.join(', ') : '';
  return [n.ifname, n.dhcp ? `dhcp${addr ? ` (${addr})` : ''}` : addr, ...(n.vlans ?? []), n.mac, n.port ?? '', n.link ? 'LINK DOWN' : '', n.impair ? `impaired: ${n.impair}` : ''].filter(Boolean);
}

function networkLabel(n: GraphNetwork): string[] {
  return [
    n.name,
    `${n.mode}${n.bridge ? ` · ${n.bridge}` : ''}`,
    n.subnet ? `${n.subnet}${n.address ? ` · host ${n.address}` : ''}` : '',
    n.vlans ? `VLANs${n.address ? ` · host in VLAN ${n.vlans.host}` : ''}` : '',
    ...(n.vlans?.subnets ?? []).map((x) => `VLAN ${x}`),
    n.dhcp ? 'DHCP + DNS' : '',
  ].filter(Boolean);
}

function nodeLabel(n: GraphNode): string[] {
  return [n.name, `${n.role}${n.kind === 'image' ? ' · image' : ''}`, n.state ?? ''].filter(Boolean);
}

// DOT quoted strings: backslash and quote escaped, lines joined by \n (centred).
const dq = (lines: string[]) => `"${lines.map((l) => l.replace(/\\/g, '\\\\').replace(/"/g, '\\"')).join('\\n')}"`;
const dotId = (kind: string, name: string) => dq([`${kind}:${name}`]);

/** Graphviz DOT of a lab graph: nodes as boxes, networks as ellipses, the host side as a note. */
export function renderDot(g: LabGraph): string {
  const title = [`lab ${g.lab}`, ...(g.unplaced?.length ? [`placed by qnet when the lab comes up: ${g.unplaced.join(', ')}`] : [])];
  const out = [`graph ${dq([g.lab])} {`, '  graph [rankdir=LR, fontname="Helvetica", label=' + dq(title) + ', labelloc=t];', '  node [fontname="Helvetica", fontsize=11];', '  edge [fontname="Helvetica", fontsize=9];'];
  const stateColor = { running: '#2e7d32', stopped: '#9e9e9e', dead: '#c62828', unknown: '#f9a825' } as const;
  const nodeLine = (n: GraphNode, indent: string) => {
    const style = n.role === 'router' ? 'shape=box, style="rounded,filled", fillcolor="#fff3e0"' : 'shape=box, style="rounded,filled", fillcolor="#e3f2fd"';
    return `${indent}${dotId('node', n.name)} [label=${dq(nodeLabel(n))}, ${style}${n.state ? `, color="${stateColor[n.state]}", penwidth=2` : ''}];`;
  };
  const userNote = (l: Extract<GraphLink, { kind: 'user' }>, indent: string) =>
    `${indent}${dotId('user', `${l.nic.node}:${l.nic.nic}`)} [label=${dq(['user-mode NAT', USER_NET.subnet, ...l.hostfwd.map((f) => `forward ${f}`)])}, shape=note, style=filled, fillcolor="#fce4ec"];`;
  const hostSide = (h: GraphHost, indent: string) => `${indent}${dotId('host', h.network)} [label=${dq([h.label])}, shape=note, style=filled, fillcolor="#fce4ec"];`;
  // A lab on several hosts: each host a cluster of its nodes (the gateway's also of the host sides); the networks,
  // OVN switches that span the hosts, stay outside.
  const inCluster = new Set<string>();
  for (const [i, m] of (g.machines ?? []).entries()) {
    out.push(`  subgraph ${dq([`cluster_${i}`])} {`, `    label=${dq([machineLabel(m)])}; style="rounded,dashed"; color="#607d8b"; fontsize=11;`);
    for (const n of g.nodes.filter((x) => m.nodes.includes(x.name))) {
      out.push(nodeLine(n, '    '));
      inCluster.add(`node:${n.name}`);
    }
    // A user-mode NIC's NAT is QEMU's, on the node's host.
    for (const l of g.links)
      if (l.kind === 'user' && m.nodes.includes(l.nic.node)) {
        out.push(userNote(l, '    '));
        inCluster.add(`user:${l.nic.node}:${l.nic.nic}`);
      }
    if (m.roles.includes('gateway'))
      for (const h of g.hosts) {
        out.push(hostSide(h, '    '));
        inCluster.add(`host:${h.network}`);
      }
    out.push('  }');
  }
  for (const n of g.nodes) if (!inCluster.has(`node:${n.name}`)) out.push(nodeLine(n, '  '));
  for (const n of g.networks) out.push(`  ${dotId('net', n.name)} [label=${dq(networkLabel(n))}, shape=ellipse, style=filled, fillcolor="${n.mode === 'isolated' ? '#eeeeee' : '#e8f5e9'}"];`);
  for (const h of g.hosts) {
    if (!inCluster.has(`host:${h.network}`)) out.push(hostSide(h, '  '));
    out.push(`  ${dotId('net', h.network)} -- ${dotId('host', h.network)} [style=dashed];`);
  }
  for (const l of g.links) {
    if (l.kind === 'network') out.push(`  ${dotId('node', l.nic.node)} -- ${dotId('net', l.network)} [label=${dq(nicLabel(l.nic))}${l.nic.link ? ', style=dotted, color="#c62828"' : ''}];`);
    else if (l.kind === 'socket')
      out.push(`  ${dotId('node', l.a.node)} -- ${dotId('node', l.b.node)} [label=${dq([`${l.network} (${l.mode})`])}, taillabel=${dq(nicLabel(l.a))}, headlabel=${dq(nicLabel(l.b))}, style=bold];`);
    else {
      const id = dotId('user', `${l.nic.node}:${l.nic.nic}`);
      if (!inCluster.has(`user:${l.nic.node}:${l.nic.nic}`)) out.push(userNote(l, '  '));
      out.push(`  ${dotId('node', l.nic.node)} -- ${id} [label=${dq(nicLabel(l.nic))}, style=dashed];`);
    }
  }
  out.push('}');
  return out.join('\n') + '\n';
}

// Mermaid labels: in quotes, with quotes and angle brackets as entities; lines joined by <br/>.
const mq = (lines: string[]) => `"${lines.map((l) => l.replace(/&/g, '#amp;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;')).join('<br/>')}"`;
// Mermaid ids: letters, digits and underscores only (names may hold dots and dashes).
const mId = (kind: string, name: string) => `${kind}_${name.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16)}_`)}`;

/** Mermaid flowchart of a lab graph: nodes as rounded boxes, networks as stadiums, the host side as a flag. */
export function renderMermaid(g: LabGraph): string {
  const userNode = (l: Extract<GraphLink, { kind: 'user' }>) => `${mId('user', `${l.nic.node}:${l.nic.nic}`)}>${mq(['user-mode NAT', USER_NET.subnet, ...l.hostfwd.map((f) => `forward ${f}`)])}]`;
  const out = ['flowchart LR', `  %% lab ${g.lab}`, ...(g.unplaced?.length ? [`  %% placed by qnet when the lab comes up: ${g.unplaced.join(', ')}`] : [])];
  const inCluster = new Set<string>();
  for (const m of g.machines ?? []) {
    out.push(`  subgraph ${mId('machine', m.name)} [${mq([machineLabel(m)])}]`);
    for (const n of g.nodes.filter((x) => m.nodes.includes(x.name))) {
      out.push(`    ${mId('node', n.name)}(${mq(nodeLabel(n))})`);
      inCluster.add(`node:${n.name}`);
    }
    for (const l of g.links)
      if (l.kind === 'user' && m.nodes.includes(l.nic.node)) {
        out.push(`    ${userNode(l)}`);
        inCluster.add(`user:${l.nic.node}:${l.nic.nic}`);
      }
    if (m.roles.includes('gateway'))
      for (const h of g.hosts) {
        out.push(`    ${mId('host', h.network)}>${mq([h.label])}]`);
        inCluster.add(`host:${h.network}`);
      }
    out.push('  end');
  }
  for (const n of g.nodes) if (!inCluster.has(`node:${n.name}`)) out.push(`  ${mId('node', n.name)}(${mq(nodeLabel(n))})`);
  for (const n of g.networks) out.push(`  ${mId('net', n.name)}([${mq(networkLabel(n))}])`);
  for (const h of g.hosts) out.push(...(inCluster.has(`host:${h.network}`) ? [] : [`  ${mId('host', h.network)}>${mq([h.label])}]`]), `  ${mId('net', h.network)} -.- ${mId('host', h.network)}`);
  for (const l of g.links) {
    if (l.kind === 'network') out.push(`  ${mId('node', l.nic.node)} ---|${mq(nicLabel(l.nic))}| ${mId('net', l.network)}`);
    else if (l.kind === 'socket') out.push(`  ${mId('node', l.a.node)} ===|${mq([`${l.network} (${l.mode})`, `${l.a.node} ${nicLabel(l.a).join(' ')}`, `${l.b.node} ${nicLabel(l.b).join(' ')}`])}| ${mId('node', l.b.node)}`);
    else {
      const id = mId('user', `${l.nic.node}:${l.nic.nic}`);
      out.push(...(inCluster.has(`user:${l.nic.node}:${l.nic.nic}`) ? [] : [`  ${userNode(l)}`]), `  ${mId('node', l.nic.node)} -.-|${mq(nicLabel(l.nic))}| ${id}`);
    }
  }
  for (const n of g.nodes) if (n.role === 'router') out.push(`  style ${mId('node', n.name)} fill:#fff3e0`);
  return out.join('\n') + '\n';
}
