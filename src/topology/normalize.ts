// Normalization: defaults, derived names and MACs, parsed addresses. Pure; collects issues instead of throwing.
import { createHash } from 'node:crypto';
import { resolveImpairment } from './impair.js';
import path from 'node:path';
import type { InputIssue } from '../errors.js';
import { formatIPv4, networkOf, parseCidr, parseIPv4, parseMac, type Cidr } from './ipv4.js';
import {
  DEFAULT_CPUS,
  DEFAULT_IMAGE_MEMORY_MIB,
  DEFAULT_MEMORY_MIB,
  NETNS_PREFIX,
  USER_NET,
  onLan,
  usesUplink,
  type PortForward,
  type DeclaredCheck,
  type ResolvedLab,
  type ResolvedNetwork,
  type ResolvedNic,
  type ResolvedNode,
  type ImageSpec,
  type NodeRoute,
  type ReadySpec,
  type NetworkVlans,
  type SubInterface,
  type SwitchPort,
} from './model.js';
import { describePort, segmentOf, segmentSubnet } from './vlan.js';
import { parseSize } from './size.js';
import { LIMITS, type Topology } from './schema.js';

type TopoNode = Topology['nodes'][string];

/** Options of normalization: where relative paths (images, ISOs) in the topology are resolved from. */
export interface NormalizeOptions {
  baseDir?: string;
}

// Keys that only an image node has: on a built-in node each is a mistake, reported with its path.
const IMAGE_ONLY = ['disk', 'persist', 'config', 'cloudInit', 'ready', 'machine', 'firmware', 'cdrom', 'display'] as const;

/** An image node's settings with their defaults; problems are appended to `issues`. */
function normalizeImage(name: string, node: TopoNode, nics: ResolvedNic[], networks: Map<string, ResolvedNetwork>, baseDir: string, issues: InputIssue[]): ImageSpec | undefined {
  const at = (...p: Array<string | number>) => formatPath(['nodes', name, ...p]);
  if (node.image === undefined) {
    for (const key of IMAGE_ONLY)
      if (node[key] !== undefined)
        issues.push({
          path: at(key),
          message: key === 'persist' ? 'only an image node has a disk to keep; give the node an "image" (or remove "persist")' : `"${key}" is for image nodes; give the node an "image" (the built-in guest has no ${key})`,
        });
    return undefined;
  }
  const config = node.config ?? 'cloud-init';
  if (config === 'none' && node.cloudInit !== undefined)
    issues.push({ path: at('cloudInit'), message: 'config: none sends nothing to the guest; remove "cloudInit" (or use config: cloud-init)' });
  let diskSize: number | undefined;
  if (node.disk?.size !== undefined) {
    const n = parseSize(node.disk.size);
    if (n === null || n < 2 ** 20) issues.push({ path: at('disk', 'size'), message: `"${node.disk.size}" is not a disk size like 8G or 20480M` });
    else diskSize = n;
  }
  const servedDhcp = nics.filter((c) => c.kind === 'bridge' && networks.get(c.network)?.dhcp !== undefined);
  let ready: ReadySpec;
  const r = node.ready;
  if (r === undefined) ready = config === 'cloud-init' ? { kind: 'agent' } : servedDhcp.length ? { kind: 'lease' } : { kind: 'none' };
  else if (typeof r === 'string') ready = { kind: r };
  else if ('console' in r) {
    ready = { kind: 'console', pattern: r.console };
    try {
      new RegExp(r.console);
    } catch (e) {
      issues.push({ path: at('ready', 'console'), message: `not a valid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}` });
    }
  } else ready = { kind: 'tcp', port: r.tcp };
  if (ready.kind === 'lease' && !servedDhcp.length)
    issues.push({ path: at('ready'), message: 'ready: lease waits for a lease from qnet\'s DHCP server: the node needs a NIC on a network with "dhcp"' });
  return {
    path: path.resolve(baseDir, node.image),
    ...(diskSize !== undefined ? { diskSize } : {}),
    bus: node.disk?.bus ?? 'virtio',
    persist: node.persist ?? false,
    config,
    ...(node.cloudInit ? { userData: node.cloudInit.userData } : {}),
    ready,
    readyDefault: r === undefined,
    machine: node.machine ?? 'q35',
    firmware: node.firmware ?? 'bios',
    ...(node.cdrom !== undefined ? { cdrom: path.resolve(baseDir, node.cdrom) } : {}),
    ...(node.display !== undefined ? { vnc: typeof node.display === 'object' ? { port: node.display.vnc } : {} } : {}),
  };
}
import { formatPath } from './paths.js';

/** First UDP port of socket links (inside the lab namespace, so it never meets the host's ports). */
const SOCKET_PORT_BASE = 40000;

function shortHash(text: string, hexChars: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, hexChars);
}

/** A readable interface name when it fits in 15 bytes, else a stable hashed one. */
export function deriveIfName(prefix: string, base: string, suffix = ''): string {
  const plain = `${prefix}${base}${suffix}`;
  if (plain.length <= LIMITS.ifName) return plain;
  const room = LIMITS.ifName - prefix.length - suffix.length - 5; // keep 4 hex chars + '~'-free separator
  return `${prefix}${base.slice(0, Math.max(room, 1))}${shortHash(base, 4)}${suffix}`.slice(0, LIMITS.ifName);
}

/** A locally administered unicast MAC derived from lab, node and NIC index (52:54:00 is QEMU's prefix). */
export function deriveMac(lab: string, node: string, index: number, attempt = 0): string {
  const h = shortHash(`${lab}/${node}/${index}/${attempt}`, 6);
  return `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

function parseAddressList(
  value: string | string[] | undefined,
  subnet: Cidr | undefined,
  path: Array<string | number>,
  issues: InputIssue[],
  paths?: Array<Array<string | number>>,
  unknownNetwork = false,
): Cidr[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  const out: Cidr[] = [];
  list.forEach((text, i) => {
    const p = Array.isArray(value) ? [...path, i] : path;
    const c = parseCidr(text, subnet?.prefix);
    if (c) {
      out.push(c);
      paths?.push(p);
    }
    else if (parseCidr(text, 24) && !text.includes('/')) {
      // Without a known network there is no subnet to take the prefix from; the unknown network is the problem.
      if (!unknownNetwork) issues.push({ path: formatPath(p), message: `"${text}" needs a prefix length (like ${text}/24) because the network has no subnet` });
    } else issues.push({ path: formatPath(p), message: `"${text}" is not an IPv4 address like 192.168.1.2/24` });
  });
  return out;
}

type TopoNet = Topology['networks'][string];
type TopoNic = TopoNode['nics'][number];

/** The VLANs of a network with "vlans" (its host side's VLAN, its subnets per VLAN); problems appended to `issues`. */
function normalizeVlans(name: string, net: TopoNet, issues: InputIssue[]): NetworkVlans | undefined {
  const at = (...p: Array<string | number>) => formatPath(['networks', name, ...p]);
  if (net.vlans === undefined || net.vlans === false) {
    if (net.hostVlan !== undefined) issues.push({ path: at('hostVlan'), message: 'hostVlan is for a network with "vlans: true"' });
    return undefined;
  }
  if (net.mode !== 'bridge' && net.mode !== 'isolated') {
    issues.push({ path: at('vlans'), message: `VLANs are switched on bridge and isolated networks (this one is ${net.mode}); route between VLANs with a router node on a bridge network` });
    return undefined;
  }
  if (net.hostVlan !== undefined && net.address === undefined)
    issues.push({ path: at('hostVlan'), message: 'hostVlan places the host side in a VLAN: give the network an "address" (or remove hostVlan)' });
  const subnets: Record<string, Cidr> = {};
  if (typeof net.vlans === 'object')
    for (const [key, v] of Object.entries(net.vlans)) {
      const id = /^\d{1,4}$/.test(key) ? Number(key) : NaN;
      if (!(id >= 1 && id <= 4094)) {
        issues.push({ path: at('vlans', key), message: `"${key}" is not a VLAN id from 1 to 4094` });
        continue;
      }
      if (v.subnet === undefined) continue;
      const c = parseCidr(v.subnet);
      if (!c || !v.subnet.includes('/')) issues.push({ path: at('vlans', key, 'subnet'), message: `"${v.subnet}" is not a subnet like 10.0.10.0/24` });
      else if (networkOf(c) !== c.ip) issues.push({ path: at('vlans', key, 'subnet'), message: `${v.subnet} has host bits set; did you mean ${formatIPv4(networkOf(c))}/${c.prefix}?` });
      else subnets[String(id)] = c;
    }
  return { host: net.hostVlan ?? 1, subnets };
}

/** A NIC's port on a VLAN-aware network (access 1 unless it says otherwise); problems appended to `issues`. */
function switchPort(net: ResolvedNetwork, nic: TopoNic, path: Array<string | number>, issues: InputIssue[]): SwitchPort | undefined {
  const at = (k: string) => formatPath([...path, k]);
  if (!net.vlans) {
    for (const key of ['vlan', 'trunk', 'native'] as const)
      if (nic[key] !== undefined)
        issues.push({ path: at(key), message: `network "${net.name}" is not VLAN-aware: give it "vlans: true" (or remove "${key}")` });
    return undefined;
  }
  if (nic.vlan !== undefined && nic.trunk !== undefined) {
    issues.push({ path: at('trunk'), message: 'a NIC is an access port ("vlan") or a trunk ("trunk"), not both' });
    return undefined;
  }
  if (nic.native !== undefined && nic.trunk === undefined) issues.push({ path: at('native'), message: '"native" is the untagged VLAN of a trunk: give the NIC "trunk" too' });
  if (nic.trunk === undefined) return { access: nic.vlan ?? 1 };
  const seen = new Set<number>();
  nic.trunk.forEach((id, i) => {
    if (seen.has(id)) issues.push({ path: formatPath([...path, 'trunk', i]), message: `VLAN ${id} is listed twice` });
    seen.add(id);
  });
  if (nic.native !== undefined && seen.has(nic.native))
    issues.push({ path: at('native'), message: `VLAN ${nic.native} is both tagged ("trunk") and the untagged native VLAN; a VLAN is one or the other on a port` });
  return { trunk: [...seen].sort((a, b) => a - b), ...(nic.native !== undefined ? { native: nic.native } : {}) };
}

/** A NIC's VLAN sub-interfaces in the guest, their addresses parsed; problems appended to `issues`. */
function subInterfaces(net: ResolvedNetwork, nic: TopoNic, port: SwitchPort | undefined, path: Array<string | number>, issues: InputIssue[]): SubInterface[] | undefined {
  if (!nic.vlans) return undefined;
  const out: SubInterface[] = [];
  const seen = new Set<number>();
  nic.vlans.forEach((v, i) => {
    const at = [...path, 'vlans', i];
    if (seen.has(v.id)) {
      issues.push({ path: formatPath([...at, 'id']), message: `this NIC already has a sub-interface for VLAN ${v.id}` });
      return;
    }
    seen.add(v.id);
    const segment = segmentOf(net, { ...(port ? { port } : {}) }, v.id);
    if (segment === null && port)
      issues.push({
        path: formatPath([...at, 'id']),
        message: `the switch drops frames tagged ${v.id} on this port (${describePort(port)}): ${'access' in port ? `make it a trunk ("trunk: [${v.id}]")` : `add ${v.id} to "trunk"`}`,
      });
    const addressPaths: Array<Array<string | number>> = [];
    const addresses = parseAddressList(v.ip, segmentSubnet(net, segment), [...at, 'ip'], issues, addressPaths);
    out.push({ id: v.id, addresses, addressPaths });
  });
  return out;
}

/** Turns a schema-valid topology into the resolved lab model; problems are appended to `issues`. */
export function normalize(topo: Topology, issues: InputIssue[], opts: NormalizeOptions = {}): ResolvedLab {
  const baseDir = opts.baseDir ?? process.cwd();
  const networks: ResolvedNetwork[] = [];
  for (const [name, net] of Object.entries(topo.networks)) {
    let subnet: Cidr | undefined;
    if (net.subnet !== undefined) {
      const c = parseCidr(net.subnet);
      if (!c) issues.push({ path: formatPath(['networks', name, 'subnet']), message: `"${net.subnet}" is not a subnet like 192.168.1.0/24` });
      else if (networkOf(c) !== c.ip)
        issues.push({
          path: formatPath(['networks', name, 'subnet']),
          message: `${net.subnet} has host bits set; did you mean ${formatIPv4(networkOf(c))}/${c.prefix}?`,
        });
      else subnet = c;
    }
    // On a VLAN-aware network the host side's address lies in its VLAN's subnet (when that VLAN declares one).
    const hostVlanSubnet = typeof net.vlans === 'object' ? parseCidr(net.vlans[String(net.hostVlan ?? 1)]?.subnet ?? '') ?? undefined : undefined;
    const address = net.address === undefined ? [] : parseAddressList(net.address, hostVlanSubnet ?? subnet, ['networks', name, 'address'], issues);
    const at = (key: string) => formatPath(['networks', name, key]);
    const pointToPoint = net.mode === 'socket' || net.mode === 'link';
    if (pointToPoint) {
      for (const key of ['bridge', 'address', 'dhcp'] as const)
        if (net[key] !== undefined) issues.push({ path: at(key), message: `a ${net.mode} network has no bridge, so no ${key}` });
    }
    const vlans = normalizeVlans(name, net, issues);
    if (net.mode === 'isolated' && net.address !== undefined)
      issues.push({ path: at('address'), message: 'an isolated network has no host side; remove "address" (or use mode bridge)' });
    if ((net.mode === 'nat' || net.mode === 'routed') && (net.subnet === undefined || net.address === undefined))
      issues.push({
        path: at(net.subnet === undefined ? 'subnet' : 'address'),
        message: `a ${net.mode} network needs "subnet" and "address" (the host side, the guests' gateway)`,
      });
    if (onLan(net)) {
      if (net.uplink === undefined)
        issues.push({ path: at('uplink'), message: `a ${net.mode} network needs "uplink": the host interface whose LAN the guests join (like eth0${net.mode === 'macnat' ? ' or wlan0' : ''})` });
      if (net.address !== undefined)
        issues.push({ path: at('address'), message: `a ${net.mode} network's host side is the uplink's own address; remove "address"` });
      if (net.dhcp !== undefined)
        issues.push({ path: at('dhcp'), message: `guests on a ${net.mode} network get addresses from the LAN's own DHCP server; remove "dhcp" and give the NICs "dhcp: true"` });
    } else if (net.uplink !== undefined)
      issues.push({ path: at('uplink'), message: `only bridged and macnat networks have an uplink (this one is ${net.mode})` });
    if (pointToPoint)
      for (const key of ['stp', 'forwardDelay', 'helloTime'] as const)
        if (net[key] !== undefined) issues.push({ path: at(key), message: `a ${net.mode} network has no bridge, so no ${key}` });
    if (net.dhcp && net.address === undefined && !pointToPoint && !onLan(net))
      issues.push({ path: at('dhcp'), message: 'DHCP is served from the host side of the bridge: give the network an "address"' });
    let dhcp: ResolvedNetwork['dhcp'];
    if (net.dhcp) {
      const m = /^\s*([\d.]+)\s*-\s*([\d.]+)\s*$/.exec(net.dhcp.range);
      const start = m ? parseIPv4(m[1]!) : null;
      const end = m ? parseIPv4(m[2]!) : null;
      if (start === null || end === null)
        issues.push({ path: formatPath(['networks', name, 'dhcp', 'range']), message: `"${net.dhcp.range}" is not a range like 172.16.1.2-172.16.1.100` });
      else if (end < start)
        issues.push({ path: formatPath(['networks', name, 'dhcp', 'range']), message: `the range ends (${m![2]}) before it starts (${m![1]})` });
      else dhcp = { start, end, lease: net.dhcp.lease };
    }
    if (pointToPoint && (net.antispoof || net.dhcpGuard))
      issues.push({ path: at(net.antispoof ? 'antispoof' : 'dhcpGuard'), message: `a ${net.mode} network has no bridge to filter on` });
    networks.push({
      name,
      mode: net.mode,
      // Filters default on wherever guests meet more than each other: a lab guest must not disturb a real LAN
      // (spoofed addresses, a rogue DHCP server) nor the host's own networks.
      antispoof: !pointToPoint && (net.antispoof ?? (usesUplink(net) || onLan(net))),
      dhcpGuard: !pointToPoint && (net.dhcpGuard ?? (net.dhcp !== undefined || onLan(net))),
      ...(net.uplink !== undefined ? { uplink: net.uplink } : {}),
      stp: { enabled: net.stp ?? false, forwardDelay: net.forwardDelay ?? 0, helloTime: net.helloTime ?? 2 },
      ...(dhcp ? { dhcp } : {}),
      bridge: pointToPoint ? '' : (net.bridge ?? deriveIfName('br-', name)),
      ...(subnet ? { subnet } : {}),
      ...(address[0] ? { address: address[0] } : {}),
      ...(vlans ? { vlans } : {}),
    });
  }
  const byName = new Map(networks.map((n) => [n.name, n]));

  const nodes: ResolvedNode[] = [];
  for (const [name, node] of Object.entries(topo.nodes)) {
    const nics: ResolvedNic[] = node.nics.map((nic, index) => {
      const path: Array<string | number> = ['nodes', name, 'nics', index];
      let mac = deriveMac(topo.name, name, index);
      let macDerived = true;
      if (nic.mac !== undefined) {
        const m = parseMac(nic.mac);
        if (!m) issues.push({ path: formatPath([...path, 'mac']), message: `"${nic.mac}" is not a MAC address like de:ad:be:ef:00:02` });
        else {
          mac = m;
          macDerived = false;
        }
      }
      if (nic.user && nic.network !== undefined)
        issues.push({ path: formatPath(path), message: 'a NIC either joins a network or uses user-mode networking (user), not both' });
      if (!nic.user && nic.network === undefined)
        issues.push({ path: formatPath(path), message: 'a NIC needs "network: NAME" (a network of this lab) or "user: {}" (QEMU user-mode networking)' });
      if (nic.user) {
        for (const key of ['vlan', 'trunk', 'native', 'vlans'] as const)
          if (nic[key] !== undefined)
            issues.push({ path: formatPath([...path, key]), message: `a user-mode NIC is no port of a switch and carries no VLANs; remove "${key}"` });
        for (const key of ['ip', 'tap'] as const)
          if (nic[key] !== undefined)
            issues.push({ path: formatPath([...path, key]), message: `user-mode NICs always get ${USER_NET.address} and have no tap; remove "${key}"` });
        if (nic.dhcp) issues.push({ path: formatPath([...path, 'dhcp']), message: 'a user-mode NIC gets 10.0.2.15 from QEMU itself; remove "dhcp"' });
        if (nic.impair) issues.push({ path: formatPath([...path, 'impair']), message: 'impairments go on a tap: a user-mode NIC has none (put the NIC on a network)' });
        return {
          index,
          dhcp: false,
          kind: 'user' as const,
          network: '',
          hostfwd: nic.user.hostfwd,
          mac,
          macDerived,
          model: nic.model,
          tap: '',
          addresses: [parseCidr(USER_NET.address)!],
        };
      }
      const net = byName.get(nic.network ?? '');
      const kind = net?.mode === 'socket' ? ('socket' as const) : ('bridge' as const);
      const addressPaths: Array<Array<string | number>> = [];
      const port = net ? switchPort(net, nic, path, issues) : undefined;
      const vlans = net ? subInterfaces(net, nic, port, path, issues) : undefined;
      if (nic.vlans && kind === 'socket') issues.push({ path: formatPath([...path, 'vlans']), message: 'VLAN sub-interfaces need a tap: use a link network instead of socket' });
      if (kind === 'socket' && nic.tap !== undefined)
        issues.push({ path: formatPath([...path, 'tap']), message: 'NICs on a socket network have no tap; remove "tap"' });
      if (kind === 'socket' && nic.impair)
        issues.push({ path: formatPath([...path, 'impair']), message: 'impairments go on a tap: a NIC on a socket network has none (use a bridge network)' });
      const impair = kind === 'bridge' ? resolveImpairment(nic.impair) : undefined;
      if (nic.dhcp && net && onLan(net) && nic.ip !== undefined)
        issues.push({ path: formatPath([...path, 'ip']), message: `the LAN's DHCP server chooses the address on ${net.mode} network "${net.name}"; remove "ip" (or "dhcp" for a static address)` });
      if (nic.dhcp && net && !net.dhcp && !onLan(net))
        issues.push({ path: formatPath([...path, 'dhcp']), message: `network "${net.name}" serves no DHCP; give it a "dhcp" range` });
      if (nic.dhcp && Array.isArray(nic.ip) && nic.ip.length > 1)
        issues.push({ path: formatPath([...path, 'ip']), message: 'with "dhcp", "ip" is the single address of this MAC\'s static lease' });
      return {
        index,
        dhcp: nic.dhcp,
        kind,
        network: nic.network ?? '',
        hostfwd: [],
        mac,
        macDerived,
        model: nic.model,
        tap: kind === 'bridge' ? (nic.tap ?? deriveIfName('t-', name, `-${index}`)) : '',
        // In its VLAN's subnet (on a trunk without a native VLAN, where it is refused later, the network's).
        addresses: parseAddressList(nic.ip, net ? (segmentSubnet(net, segmentOf(net, { ...(port ? { port } : {}) })) ?? (net.vlans ? net.subnet : undefined)) : undefined, [...path, 'ip'], issues, addressPaths, !net),
        addressPaths,
        ...(impair ? { impair } : {}),
        ...(port ? { port } : {}),
        ...(vlans?.length ? { vlans } : {}),
      };
    });
    let gateway: number | undefined;
    if (node.gateway !== undefined) {
      const g = parseIPv4(node.gateway);
      if (g === null) issues.push({ path: formatPath(['nodes', name, 'gateway']), message: `"${node.gateway}" is not an IPv4 address like 192.168.1.254` });
      else gateway = g;
    }
    const routes: NodeRoute[] = [];
    (node.routes ?? []).forEach((r, i) => {
      const to = parseCidr(r.to);
      const via = parseIPv4(r.via);
      const at = (k: string) => formatPath(['nodes', name, 'routes', i, k]);
      if (!to || !r.to.includes('/')) issues.push({ path: at('to'), message: `"${r.to}" is not a destination like 10.50.0.0/16` });
      else if (networkOf(to) !== to.ip) issues.push({ path: at('to'), message: `${r.to} has host bits set; did you mean ${formatIPv4(networkOf(to))}/${to.prefix}?` });
      if (via === null) issues.push({ path: at('via'), message: `"${r.via}" is not an IPv4 address like 192.168.1.254` });
      if (to && r.to.includes('/') && networkOf(to) === to.ip && via !== null) routes.push({ to, via });
    });
    const image = normalizeImage(name, node, nics, byName, baseDir, issues);
    // A guest that qnet does not configure asks DHCP by itself: its declared address is a static lease, where
    // qnet serves DHCP (seed 004's dhcp-host), so it still gets the address the topology gives it.
    if (image?.config === 'none')
      for (const nic of nics) if (nic.kind === 'bridge' && nic.addresses.length === 1 && byName.get(nic.network)?.dhcp) nic.dhcp = true;
    nodes.push({
      name,
      ...(node.router ? { router: { forward: node.router.forward, masquerade: node.router.masquerade } } : {}),
      memory: node.memory ?? (image ? DEFAULT_IMAGE_MEMORY_MIB : DEFAULT_MEMORY_MIB),
      cpus: node.cpus ?? DEFAULT_CPUS,
      ...(gateway !== undefined ? { gateway } : {}),
      ...(routes.length ? { routes } : {}),
      nics,
      ...(image ? { image } : {}),
    });
  }

  // Derived MACs must not collide with each other or with declared ones: re-derive deterministically.
  const taken = new Set(nodes.flatMap((n) => n.nics.filter((c) => !c.macDerived).map((c) => c.mac)));
  for (const node of nodes)
    for (const nic of node.nics) {
      if (!nic.macDerived) continue;
      let attempt = 0;
      while (taken.has(nic.mac)) nic.mac = deriveMac(topo.name, node.name, nic.index, ++attempt);
      taken.add(nic.mac);
    }

  // Transparent links: exactly two NICs, each with a tap; what one guest sends is redirected to the other's tap.
  for (const net of networks) {
    if (net.mode !== 'link') continue;
    const members = nodes.flatMap((n) => n.nics.filter((c) => c.kind === 'bridge' && c.network === net.name));
    if (members.length !== 2) {
      issues.push({ path: formatPath(['networks', net.name]), message: `a link network joins exactly two NICs; ${members.length} join it` });
      continue;
    }
    members[0]!.peerTap = members[1]!.tap;
    members[1]!.peerTap = members[0]!.tap;
  }

  // Socket links: exactly two NICs; each gets a UDP port on the lab namespace's loopback and its peer's.
  networks.forEach((net, i) => {
    if (net.mode !== 'socket') return;
    const members = nodes.flatMap((n) => n.nics.filter((c) => c.kind === 'socket' && c.network === net.name));
    if (members.length !== 2) {
      issues.push({ path: formatPath(['networks', net.name]), message: `a socket network links exactly two NICs; ${members.length} join it` });
      return;
    }
    const base = SOCKET_PORT_BASE + i * 2;
    members[0]!.socket = { local: base, peer: base + 1 };
    members[1]!.socket = { local: base + 1, peer: base };
  });

  // Port forwards go to the node's first address on a network that the uplink serves.
  const forwards: PortForward[] = [];
  topo.forwards.forEach((f, i) => {
    const node = nodes.find((n) => n.name === f.node);
    const path = ['forwards', i, 'node'];
    if (!node) {
      issues.push({ path: formatPath(path), message: `unknown node "${f.node}"` });
      return;
    }
    const nic = node.nics.find((c) => c.kind === 'bridge' && c.addresses.length && byName.get(c.network) && usesUplink(byName.get(c.network)!));
    if (!nic)
      issues.push({ path: formatPath(path), message: `node "${f.node}" has no known address on a nat or routed network (give it "ip", a static lease with dhcp)` });
    else forwards.push({ proto: f.proto, host: f.host, node: f.node, port: f.port, address: nic.addresses[0]!.ip });
  });

  const checks: DeclaredCheck[] = topo.checks.map((c) => ({
    from: c.from,
    to: c.to,
    ...(c.tcp !== undefined ? { probe: 'tcp' as const, port: c.tcp } : { probe: 'ping' as const }),
    expect: c.expect,
  }));
  return { name: topo.name, netns: `${NETNS_PREFIX}${topo.name}`, networks, nodes, forwards, ...(checks.length ? { checks } : {}) };
}
