// Cross-field rules over the resolved lab: references, uniqueness, address plans. Pure; collects issues.
// The lab may be the valid part of a topology with problems: each judgement names the values it reads, and one
// read from a value that is unknown (refused earlier) is left out, as a consequence of a problem already reported.
import { hasBridge, onLan } from '../topology/model.js';
import { lanLabVeth } from '../render/lan.js';
import type { Findings, PathLike } from './findings.js';
import { contains, formatCidr, formatIPv4, isHostAddress, isUsableMac, networkOf, overlaps, parseCidr, type Cidr } from './ipv4.js';
import { USER_NET, type ResolvedLab, type ResolvedNode } from './model.js';
import { reachableFromLab } from './reach.js';
import { formatPath } from './paths.js';
import { hostSegment, segmentOf, segmentSubnet } from './vlan.js';

const USER_SUBNET: Cidr = parseCidr(USER_NET.subnet)!;
const RESERVED_IFNAMES = new Set(['lo', 'all', 'default']);

/** Checks the rules that span several fields of the topology; problems are added to `findings`. */
export function checkRules(lab: ResolvedLab, findings: Findings): void {
  const add = (path: PropertyKey[], message: string, ...deps: PathLike[]) => findings.add(path, message, ...deps);
  const netByName = new Map(lab.networks.map((n) => [n.name, n]));

  // Whether an address is on the subnet of one of a node's NICs: read from each NIC's network, its subnet (or
  // the NIC's own addresses where there is none) and its VLAN sub-interfaces; and from the list of NICs itself.
  const onLinkDeps = (node: ResolvedNode): PathLike[] => {
    if (findings.unknown(['nodes', node.name, 'nics'])) return [['nodes', node.name, 'nics']];
    return node.nics.flatMap((nic) => {
      const at = ['nodes', node.name, 'nics', nic.index];
      const net = netByName.get(nic.network);
      const deps: PathLike[] = [[...at, 'network'], [...at, 'user'], [...at, 'vlans']];
      if (findings.unknown(['networks', nic.network])) deps.push(['networks', nic.network]);
      if (!net?.subnet) deps.push([...at, 'ip'], ['networks', nic.network, 'subnet']);
      return deps;
    });
  };

  // Interface names: unique within the lab namespace, none reserved.
  const ifNames = new Map<string, string>();
  const claimIf = (name: string, path: PropertyKey[], ...deps: PathLike[]) => {
    // A name derived in place of one that was refused is not the user's: it claims nothing.
    if ([path, ...deps].some((d) => findings.partly(d))) return;
    const where = formatPath(path);
    if (RESERVED_IFNAMES.has(name)) add(path, `"${name}" is reserved by the kernel; choose another interface name`);
    const prior = ifNames.get(name);
    if (prior !== undefined) add(path, `interface name "${name}" is already used by ${prior}`);
    else ifNames.set(name, where);
  };
  for (const net of lab.networks) if (hasBridge(net)) claimIf(net.bridge, ['networks', net.name, 'bridge']);
  // The lab end of a bridged or macnat network's veth lives beside the bridges and taps.
  for (const net of lab.networks) if (onLan(net)) claimIf(lanLabVeth(lab.name, net.name), ['networks', net.name, 'uplink'], ['name']);
  for (const node of lab.nodes)
    for (const nic of node.nics) if (nic.kind === 'bridge') claimIf(nic.tap, ['nodes', node.name, 'nics', nic.index, 'tap'], ['nodes', node.name, 'nics', nic.index, 'network']);

  // One network per uplink: two bridges cannot both hold one interface, and two MAC NATs on one would fight.
  const uplinks = new Map<string, string>();
  for (const net of lab.networks) {
    if (!net.uplink) continue;
    const prior = uplinks.get(net.uplink);
    if (prior) add(['networks', net.name, 'uplink'], `uplink ${net.uplink} is already used by networks.${prior}`);
    else uplinks.set(net.uplink, net.name);
  }

  // Host forwards all listen on the lab namespace's loopback: one owner per port and protocol.
  const fwds = new Map<string, string>();
  for (const node of lab.nodes)
    for (const nic of node.nics)
      nic.hostfwd.forEach((f, i) => {
        const key = `${f.proto}/${f.host}`;
        const path = ['nodes', node.name, 'nics', nic.index, 'user', 'hostfwd', i, 'host'];
        if (findings.partly(['nodes', node.name, 'nics', nic.index, 'user', 'hostfwd', i, 'proto'])) return;
        const prior = fwds.get(key);
        if (prior) add(path, `${f.proto} port ${f.host} is already forwarded by ${prior}`);
        else fwds.set(key, formatPath(path));
      });

  // Subnets must not overlap (a VLAN's subnet counts as one): the lab namespace routes them all.
  const withSubnet: Array<{ subnet: Cidr; path: PropertyKey[] }> = [];
  for (const n of lab.networks) {
    if (n.subnet) withSubnet.push({ subnet: n.subnet, path: ['networks', n.name, 'subnet'] });
    for (const [id, c] of Object.entries(n.vlans?.subnets ?? {})) withSubnet.push({ subnet: c, path: ['networks', n.name, 'vlans', id, 'subnet'] });
  }
  for (let i = 0; i < withSubnet.length; i++)
    for (let j = i + 1; j < withSubnet.length; j++) {
      const a = withSubnet[i]!;
      const b = withSubnet[j]!;
      if (overlaps(a.subnet, b.subnet)) add(b.path, `${formatCidr(b.subnet)} overlaps ${formatPath(a.path)} ${formatCidr(a.subnet)}`);
    }

  // Addresses: inside their subnet, usable, unique lab-wide.
  const ips = new Map<number, string>();
  const claimIp = (c: Cidr, subnet: Cidr | undefined, path: PropertyKey[], ...subnetDeps: PathLike[]) => {
    const text = formatCidr(c);
    if (subnet && (!contains(subnet, c.ip) || c.prefix !== subnet.prefix))
      add(path, `${text} is outside the network's subnet ${formatCidr(subnet)}`, ...subnetDeps);
    else if (!isHostAddress(c)) add(path, `${text} is the network or broadcast address of its subnet`, ...subnetDeps);
    const prior = ips.get(c.ip);
    if (prior !== undefined) add(path, `${formatIPv4(c.ip)} is already used by ${prior}`);
    else ips.set(c.ip, formatPath(path));
  };
  for (const net of lab.networks)
    if (net.address) claimIp(net.address, segmentSubnet(net, hostSegment(net)), ['networks', net.name, 'address'], ['networks', net.name, 'subnet'], ['networks', net.name, 'vlans']);

  // DHCP ranges lie in their network's subnet.
  for (const net of lab.networks) {
    const subnet = net.subnet ?? net.address;
    if (!net.dhcp || !subnet) continue;
    for (const ip of [net.dhcp.start, net.dhcp.end])
      if (!contains(subnet, ip) || !isHostAddress({ ip, prefix: subnet.prefix }))
        add(['networks', net.name, 'dhcp', 'range'], `${formatIPv4(ip)} is not a host address of ${formatCidr({ ip: networkOf(subnet), prefix: subnet.prefix })}`, ['networks', net.name, 'subnet'], ['networks', net.name, 'address']);
    if (net.address && net.address.ip >= net.dhcp.start && net.address.ip <= net.dhcp.end)
      add(['networks', net.name, 'dhcp', 'range'], `the range includes the network's own address ${formatIPv4(net.address.ip)}`);
  }

  // Host port forwards: one owner per port and protocol.
  const hostPorts = new Map<string, string>();
  lab.forwards.forEach((f, i) => {
    const key = `${f.proto}/${f.host}`;
    if (findings.partly(['forwards', i, 'proto'])) return;
    if (hostPorts.has(key)) add(['forwards', i, 'host'], `${f.proto} port ${f.host} is already forwarded by ${hostPorts.get(key)}`);
    else hostPorts.set(key, `forwards[${i}]`);
  });

  const macs = new Map<string, string>();
  const vncPorts = new Map<number, string>();
  for (const node of lab.nodes) {
    for (const nic of node.nics) {
      const path = ['nodes', node.name, 'nics', nic.index];
      const net = netByName.get(nic.network);
      if (!isUsableMac(nic.mac)) add([...path, 'mac'], `${nic.mac} is a multicast or zero MAC; a NIC needs a unicast MAC`);
      const prior = macs.get(nic.mac);
      if (prior !== undefined) add([...path, 'mac'], `MAC ${nic.mac} is already used by ${prior}`);
      else macs.set(nic.mac, formatPath(path));
      if (nic.kind === 'user') {
        // Each user-mode NIC is its own private 10.0.2.0/24: its address is not lab-wide, but it must not
        // share a subnet with the node's other networks.
        for (const other of node.nics)
          if (other !== nic && other.kind !== 'user' && other.addresses.some((a) => overlaps(a, USER_SUBNET)))
            add(['nodes', node.name, 'nics', other.index, 'ip'], `overlaps ${formatCidr(USER_SUBNET)}, the subnet of this node's user-mode NIC`);
        if (node.nics.filter((c) => c.kind === 'user').length > 1 && node.nics.find((c) => c.kind === 'user') !== nic)
          add(path, 'a node has at most one user-mode NIC (they would all be 10.0.2.15/24)');
        continue;
      }
      if (!net && nic.network) {
        const known = lab.networks.map((n) => n.name).join(', ') || 'none';
        add([...path, 'network'], `unknown network "${nic.network}" (networks: ${known})`, ['networks', nic.network]);
      }
      const segment = net ? segmentOf(net, nic) : null;
      // The NIC's port on a VLAN-aware switch is made of these; judgements about its VLAN read them.
      const port: PathLike[] = [[...path, 'vlan'], [...path, 'trunk'], [...path, 'native']];
      const subnetDeps = (segment: number | null): PathLike[] =>
        net ? [['networks', net.name, 'subnet'], ...(net.vlans ? [['networks', net.name, 'vlans', ...(segment === null ? [] : [String(segment)])]] : []), ...port] : [];
      if (net?.vlans && segment === null && nic.addresses.length && !nic.dhcp)
        add([...path, 'ip'], `a trunk without "native" drops untagged frames, so this address is unreachable: put it on a sub-interface ("vlans") or give the trunk a native VLAN`, ...port, [...path, 'dhcp']);
      if (net?.vlans && segment === null && nic.dhcp) add([...path, 'dhcp'], 'a trunk without "native" drops untagged frames, so DHCP cannot reach this NIC: give the trunk a native VLAN', ...port);
      // qnet's DHCP server answers on the host side's VLAN only.
      else if (net?.vlans && net.dhcp && nic.dhcp && segment !== net.vlans.host)
        add([...path, 'dhcp'], `networks.${net.name} serves DHCP in VLAN ${net.vlans.host} (its host side's), and this NIC is in VLAN ${segment}: put it in VLAN ${net.vlans.host} or give it an address`, ...port);
      for (const v of nic.vlans ?? []) {
        const seg = net ? segmentOf(net, nic, v.id) : null;
        v.addresses.forEach((c, i) => claimIp(c, net ? segmentSubnet(net, seg) : undefined, v.addressPaths?.[i] ?? [...path, 'vlans'], ...subnetDeps(seg)));
      }
      if (nic.impair && nic.peerTap) {
        const peer = lab.nodes.flatMap((n) => n.nics.filter((c) => c.tap === nic.peerTap).map((c) => ({ n, c })))[0];
        // What this guest sends and what its peer receives are one queue on the peer's tap: one impairment at most.
        if (peer?.c.impair && nic.impair.direction !== 'ingress' && peer.c.impair.direction !== 'egress')
          add([...path, 'impair'], `on link network "${nic.network}" what this NIC sends is what ${peer.n.name}'s NIC ${peer.c.index} receives: impair it on one end only (this one's egress or the other's ingress)`, [...path, 'impair'], ['nodes', peer.n.name, 'nics', peer.c.index, 'impair']);
      }
      nic.addresses.forEach((c, i) => {
        const where = nic.addressPaths?.[i] ?? [...path, 'ip'];
        claimIp(c, net ? segmentSubnet(net, segment) : undefined, where, ...subnetDeps(segment));
        // A static address inside the DHCP range could be handed to another guest as well.
        if (!nic.dhcp && net?.dhcp && c.ip >= net.dhcp.start && c.ip <= net.dhcp.end)
          add(where, `${formatIPv4(c.ip)} is inside networks.${net.name}.dhcp.range; dnsmasq could hand it out too (use "dhcp: true" for a static lease, or an address outside the range)`, [...path, 'dhcp']);
      });
    }
    if (node.router) {
      node.router.masquerade.forEach((m, i) => {
        const path = ['nodes', node.name, 'router', 'masquerade', i];
        const net = netByName.get(m.from);
        if (!net) add([...path, 'from'], `unknown network "${m.from}"`, ['networks', m.from]);
        else if (!net.subnet) add([...path, 'from'], `network "${m.from}" has no subnet to masquerade; give it one`, ['networks', m.from, 'subnet']);
        if (!node.nics[m.out] && !findings.unknown(['nodes', node.name, 'nics'])) add([...path, 'out'], `this node has no NIC ${m.out} (it has ${node.nics.length})`);
      });
    }
    (node.routes ?? []).forEach((r, i) => {
      const onLink = node.nics.some((nic) => {
        const subnet = netByName.get(nic.network)?.subnet;
        return (subnet && contains(subnet, r.via)) || nic.addresses.some((a) => contains(a, r.via)) || (nic.vlans ?? []).some((v) => v.addresses.some((a) => contains(a, r.via)));
      });
      if (!onLink) add(['nodes', node.name, 'routes', i, 'via'], `${formatIPv4(r.via)} is not on the subnet of any of this node's NICs`, ...onLinkDeps(node));
    });
    if (node.image?.ready.kind === 'tcp' && !reachableFromLab(lab, node, node.image.ready.port))
      add(
        ['nodes', node.name, 'ready', 'tcp'],
        'qnet probes the port from the lab namespace, which reaches none of this node\'s addresses: give the node an address on a network with a host side ("address", nat or routed), a NIC with dhcp where qnet serves DHCP, or a user NIC with a hostfwd to this port',
        // Read from every NIC of the node and everything about the networks they are on.
        ['nodes', node.name, 'nics'],
        ...node.nics.map((nic) => ['networks', nic.network]),
      );
    if (node.image?.vnc?.port !== undefined) {
      const prior = vncPorts.get(node.image.vnc.port);
      if (prior) add(['nodes', node.name, 'display', 'vnc'], `VNC port ${node.image.vnc.port} is already used by nodes.${prior}`);
      else vncPorts.set(node.image.vnc.port, node.name);
    }
    if (node.gateway !== undefined) {
      const onLink = node.nics.some((nic) => {
        const subnet = netByName.get(nic.network)?.subnet;
        return (subnet && contains(subnet, node.gateway!)) || nic.addresses.some((a) => contains(a, node.gateway!)) || (nic.vlans ?? []).some((v) => v.addresses.some((a) => contains(a, node.gateway!)));
      });
      const own = node.nics.some((nic) => nic.addresses.some((a) => a.ip === node.gateway));
      const notHost = node.nics.some((nic) => {
        const subnet = netByName.get(nic.network)?.subnet ?? nic.addresses.find((a) => contains(a, node.gateway!));
        return subnet && contains(subnet, node.gateway!) && !isHostAddress({ ip: node.gateway!, prefix: subnet.prefix });
      });
      if (notHost) add(['nodes', node.name, 'gateway'], `${formatIPv4(node.gateway)} is the network or broadcast address of its subnet`);
      else if (own) add(['nodes', node.name, 'gateway'], `${formatIPv4(node.gateway)} is this node's own address`);
      else if (!onLink)
        add(['nodes', node.name, 'gateway'], `${formatIPv4(node.gateway)} is not on the subnet of any of this node's NICs`, ...onLinkDeps(node));
    }
  }
}
