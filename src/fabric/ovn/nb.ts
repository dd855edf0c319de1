// Pure rendering of a lab on OVN as northbound changes: one ovn-nbctl batch (one transaction) per change. `up` makes
// every row; `down` destroys every row marked with the lab, found by its marker, so it needs no state file.
// Networks become logical switches; static addresses, the ports' addresses and OVN's DHCP; DHCP ranges, `dynamic`
// addresses; node names, DNS records; antispoof, port security; dhcpGuard, an ACL. A network's host side (bridge, nat
// and routed networks with an address) is a port bound on the gateway host, where the lab namespace holds the address.
// nat and routed networks have no logical router: as on Linux bridges, the lab namespace routes them to its uplink and
// the host masquerades and forwards ports (render/uplink.ts), so every lab namespace answers for its networks'
// addresses as `qnet check` models it; a router with SNAT and load balancers in OVN would leave the lab namespace off
// those networks.
import { broadcastOf, formatCidr, formatIPv4, networkOf, type Cidr } from '../../topology/ipv4.js';
import { usesUplink, type ResolvedLab, type ResolvedNetwork, type ResolvedNic, type ResolvedNode } from '../../topology/model.js';
import { shellQuote } from '../../render/shell.js';
import { bridgeMac } from '../../render/ipbatch.js';
import * as n from './names.js';

/** One ovn-nbctl command: its arguments, without the `--` that separates it from the next. */
export type NbCommand = string[];

/** What the renderer needs besides the lab: where each node runs (host names are chassis names), the guests' MTU. */
export interface NbContext {
  placement: Record<string, string>;
  mtu: number;
}

/** OVN's DHCP lease time for "infinite" (the option is 32 bits of seconds). */
const INFINITE_LEASE = 4294967295;
const DEFAULT_LEASE = 3600;
/** ACL priority of the DHCP guard (above OVN's default 1000 band, where users' ACLs go). */
const DHCP_GUARD_PRIORITY = 1001;

/** An ovsdb string atom: double-quoted with JSON's escapes, so no value can end the argument or start another. */
export const q = (s: string) => JSON.stringify(s);

/** The `external_ids` that mark a row as the lab's, and say which part of it the row is. */
function mark(lab: string, row: string): string[] {
  return [`external_ids:${n.LAB_KEY}=${q(lab)}`, `external_ids:${n.ROW_KEY}=${q(row)}`];
}

/** Seconds of a lease written as 12h, 30m, 3600 or infinite. */
export function leaseSeconds(lease: string | undefined): number {
  if (lease === undefined) return DEFAULT_LEASE;
  if (lease === 'infinite') return INFINITE_LEASE;
  const m = /^(\d+)([smhd]?)$/.exec(lease);
  if (!m) return DEFAULT_LEASE;
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Math.min(Number(m[1]) * unit, INFINITE_LEASE);
}

/** Networks that become logical switches: all but socket links (QEMU UDP between the two guests, no switch). */
function switched(lab: ResolvedLab): ResolvedNetwork[] {
  return lab.networks.filter((net) => net.mode !== 'socket');
}

/** The subnet a network's addresses lie in: declared, or the host side's. */
function subnetOf(net: ResolvedNetwork): Cidr | undefined {
  const c = net.subnet ?? net.address;
  return c && { ip: networkOf(c), prefix: c.prefix };
}

/**
 * The MAC the switch knows its router or host side by: the lab bridge's MAC on the bridge fabric (render/ipbatch.ts
 * bridgeMac), so that the built-in guests' permanent neighbour entries for their host side hold on either fabric.
 */
export function gatewayMac(lab: string, net: ResolvedNetwork): string {
  return bridgeMac(lab, net.name);
}

/** A NIC's port addresses: "MAC IP…" for known addresses, "MAC dynamic" for a lease from the range, "MAC" otherwise. */
function portAddresses(net: ResolvedNetwork, nic: ResolvedNic): string {
  if (nic.addresses.length) return [nic.mac, ...nic.addresses.map((a) => formatIPv4(a.ip))].join(' ');
  if (nic.dhcp && net.dhcp) return `${nic.mac} dynamic`;
  return nic.mac;
}

/** A NIC's port security: its MAC and addresses; the MAC alone for a router guest (it forwards others' packets) or an address not yet known. */
function portSecurity(node: ResolvedNode, nic: ResolvedNic): string {
  if (node.router || !nic.addresses.length) return nic.mac;
  return [nic.mac, ...nic.addresses.map((a) => formatIPv4(a.ip))].join(' ');
}

/** The default gateway DHCP gives a NIC: the router on nat/routed networks, else the node's own gateway if on this network. */
function routerFor(net: ResolvedNetwork, node: ResolvedNode): number | undefined {
  if (usesUplink(net)) return net.address?.ip;
  const s = subnetOf(net);
  if (node.gateway === undefined || !s) return undefined;
  return networkOf({ ip: node.gateway, prefix: s.prefix }) === s.ip ? node.gateway : undefined;
}

/** The addresses OVN's IPAM must not hand out on a network with a range: the rest of the subnet. */
function excludeIps(subnet: Cidr, start: number, end: number): string {
  const out: string[] = [];
  const span = (a: number, b: number) => {
    if (a > b) return;
    out.push(a === b ? formatIPv4(a) : `${formatIPv4(a)}..${formatIPv4(b)}`);
  };
  span(subnet.ip + 1, start - 1);
  span(end + 1, broadcastOf(subnet) - 1);
  return out.join(' ');
}

/** The DNS records of the lab: each node's first address as `name` and `name.<lab>` (as dnsmasq serves them). */
function dnsRecords(lab: ResolvedLab): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const node of lab.nodes) {
    const first = node.nics.filter((c) => c.kind === 'bridge').flatMap((c) => c.addresses)[0];
    if (first) out.push([node.name, formatIPv4(first.ip)], [`${node.name}.${lab.name}`, formatIPv4(first.ip)]);
  }
  return out;
}

/** The batch that makes the whole lab in the northbound database (one transaction). */
export function renderNbUp(lab: ResolvedLab, ctx: NbContext): NbCommand[] {
  const L = lab.name;
  const gateway = lab.ovn?.gateway;
  if (!gateway) throw new Error(`lab ${L} is not on OVN`);
  const cmds: NbCommand[] = [];
  const records = dnsRecords(lab);
  if (records.length) cmds.push(['--id=@dns', 'create', 'DNS', ...records.map(([k, v]) => `records:${q(k)}=${q(v)}`), ...mark(L, 'dns')]);
  let dhcpRows = 0;
  let acls = 0;

  for (const net of switched(lab)) {
    const ls = n.switchName(L, net.name);
    const subnet = subnetOf(net);
    const ipam = net.dhcp && subnet ? [`other_config:subnet=${q(formatCidr(subnet))}`, `other_config:exclude_ips=${q(excludeIps(subnet, net.dhcp.start, net.dhcp.end))}`] : [];
    cmds.push(['ls-add', ls], ['set', 'Logical_Switch', ls, ...mark(L, `network ${net.name}`), ...ipam]);
    if (records.length) cmds.push(['add', 'Logical_Switch', ls, 'dns_records', '@dns']);
    if (net.dhcpGuard) {
      const id = `@acl${acls++}`;
      // What a guest sends as a DHCP server is dropped as it enters the switch; OVN's own answers never pass an ACL.
      cmds.push(
        ['--id=' + id, 'create', 'ACL', 'direction=from-lport', `priority=${DHCP_GUARD_PRIORITY}`, `match=${q('ip4 && udp.src == 67 && udp.dst == 68')}`, 'action=drop', ...mark(L, `dhcp-guard ${net.name}`)],
        ['add', 'Logical_Switch', ls, 'acls', id],
      );
    }
    // OVN's DHCP answers from the network's own address (its router or host side): one row per default gateway given.
    const dhcpRow = new Map<string, string>();
    const dhcpFor = (node: ResolvedNode): string | undefined => {
      if (!net.address || !subnet) return undefined;
      const router = routerFor(net, node);
      const key = router === undefined ? '' : formatIPv4(router);
      let id = dhcpRow.get(key);
      if (!id) {
        id = `@dhcp${dhcpRows++}`;
        dhcpRow.set(key, id);
        const server = formatIPv4(net.address.ip);
        const options: Array<[string, string]> = [
          ['server_id', server],
          ['server_mac', gatewayMac(L, net)],
          ['lease_time', String(leaseSeconds(net.dhcp?.lease))],
          ...(router !== undefined ? ([['router', formatIPv4(router)]] as Array<[string, string]>) : []),
          ['dns_server', server],
          ['mtu', String(ctx.mtu)],
        ];
        cmds.push(['--id=' + id, 'create', 'DHCP_Options', `cidr=${q(formatCidr(subnet))}`, ...options.map(([k, v]) => `options:${k}=${q(v)}`), ...mark(L, `dhcp ${net.name}${key ? ` via ${key}` : ''}`)]);
      }
      return id;
    };
    if ((net.mode === 'bridge' || usesUplink(net)) && net.address) {
      const p = n.hostPort(L, net.name);
      cmds.push(
        ['lsp-add', ls, p],
        ['lsp-set-addresses', p, `${gatewayMac(L, net)} ${formatIPv4(net.address.ip)}`],
        ['lsp-set-options', p, `requested-chassis=${gateway}`],
        ['set', 'Logical_Switch_Port', p, ...mark(L, `host ${net.name}`)],
      );
    }
    for (const node of lab.nodes)
      for (const nic of node.nics) {
        if (nic.kind !== 'bridge' || nic.network !== net.name) continue;
        const host = ctx.placement[node.name];
        if (!host) throw new Error(`node ${node.name} of lab ${L} is not placed`);
        const p = n.nicPort(L, node.name, nic.index);
        const dhcp = nic.addresses.length || (nic.dhcp && net.dhcp) ? dhcpFor(node) : undefined;
        cmds.push(['lsp-add', ls, p], ['lsp-set-addresses', p, portAddresses(net, nic)]);
        if (net.antispoof) cmds.push(['lsp-set-port-security', p, portSecurity(node, nic)]);
        cmds.push(
          ['lsp-set-options', p, `requested-chassis=${host}`],
          ['set', 'Logical_Switch_Port', p, ...mark(L, `nic ${node.name} ${nic.index}`), ...(dhcp ? [`dhcpv4_options=${dhcp}`] : [])],
        );
      }
  }

  return cmds;
}

/** The northbound tables whose rows a lab marks and that own the rest (ports, ACLs, NAT, routes go with them). */
export const NB_LAB_TABLES = ['Load_Balancer', 'Logical_Router', 'Logical_Switch', 'DHCP_Options', 'DNS'] as const;
export type NbLabTable = (typeof NB_LAB_TABLES)[number];

/** The ovn-nbctl run that lists a lab's rows of one table by their marker, one UUID a line: what `down` reads first. */
export function nbFindArgv(lab: string, table: NbLabTable, global: string[] = []): string[] {
  return ['ovn-nbctl', ...global, '--bare', '--columns=_uuid', 'find', table, `external_ids:${n.LAB_KEY}=${q(lab)}`];
}

/** The batch that removes the rows found by their marker (one transaction); empty when nothing is left. */
export function renderNbDown(found: Partial<Record<NbLabTable, string[]>>): NbCommand[] {
  const cmds: NbCommand[] = [];
  for (const table of NB_LAB_TABLES) {
    const uuids = [...new Set(found[table] ?? [])].filter((u) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(u)).sort();
    for (const u of uuids) cmds.push(['--if-exists', 'destroy', table, u]);
  }
  return cmds;
}

/** The arguments of one ovn-nbctl run of a batch (each command after a `--`), after the given global options. */
export function nbArgv(cmds: NbCommand[], global: string[] = []): string[] {
  return ['ovn-nbctl', ...global, ...cmds.flatMap((c) => ['--', ...c])];
}

/** A batch as text, one command a line, quoted as a shell would need it: for plans and golden files. */
export function formatNbBatch(cmds: NbCommand[]): string {
  return cmds.map((c) => c.map(shellQuote).join(' ')).join('\n') + (cmds.length ? '\n' : '');
}
