// Normalization: defaults, derived names and MACs, parsed addresses. Pure; collects issues instead of throwing.
// It also runs on the valid part of a topology the schema refused: a judgement made from a value that is unknown
// (refused earlier, or here) names its dependencies, and Findings drops it (see findings.ts).
import { createHash } from 'node:crypto';
import { resolveImpairment } from './impair.js';
import path from 'node:path';
import type { Findings, PathLike } from './findings.js';
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
import { normalizeFabric } from './hosts.js';
import { LIMITS, type Topology } from './schema.js';

type TopoNode = Topology['nodes'][string];

/** Options of normalization: where relative paths (images, ISOs) in the topology are resolved from. */
export interface NormalizeOptions {
  baseDir?: string;
}

// Keys that only an image node has: on a built-in node each is a mistake, reported with its path.
const IMAGE_ONLY = ['disk', 'persist', 'config', 'cloudInit', 'ready', 'machine', 'firmware', 'cdrom', 'display'] as const;

/** An image node's settings with their defaults; problems are appended to `issues`. */
function normalizeImage(name: string, node: TopoNode, nics: ResolvedNic[], networks: Map<string, ResolvedNetwork>, baseDir: string, issues: Findings): ImageSpec | undefined {
  const at = (...p: Array<string | number>) => formatPath(['nodes', name, ...p]);
  if (node.image === undefined) {
    for (const key of IMAGE_ONLY)
      if (node[key] !== undefined)
        issues.add(
          at(key),
          key === 'persist' ? 'only an image node has a disk to keep; give the node an "image" (or remove "persist")' : `"${key}" is for image nodes; give the node an "image" (the built-in guest has no ${key})`,
          at('image'), // an image the schema refused is not no image
        );
    return undefined;
  }
  const config = node.config ?? 'cloud-init';
  if (config === 'none' && node.cloudInit !== undefined)
    issues.add(at('cloudInit'), 'config: none sends nothing to the guest; remove "cloudInit" (or use config: cloud-init)');
  let diskSize: number | undefined;
  if (node.disk?.size !== undefined) {
    const n = parseSize(node.disk.size);
    if (n === null || n < 2 ** 20) issues.refuse(at('disk', 'size'), `"${node.disk.size}" is not a disk size like 8G or 20480M`);
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
      issues.refuse(at('ready', 'console'), `not a valid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`);
    }
  } else ready = { kind: 'tcp', port: r.tcp };
  if (ready.kind === 'lease' && !servedDhcp.length)
    issues.add(at('ready'), 'ready: lease waits for a lease from qnet\'s DHCP server: the node needs a NIC on a network with "dhcp"', ...nicsDeps(name, node));
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
  issues: Findings,
  paths?: Array<Array<string | number>>,
  unknownNetwork = false,
  subnetDeps: PathLike[] = [],
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
      if (!unknownNetwork) issues.refuse(formatPath(p), `"${text}" needs a prefix length (like ${text}/24) because the network has no subnet`, ...subnetDeps);
      else issues.forget(p);
    } else issues.refuse(formatPath(p), `"${text}" is not an IPv4 address like 192.168.1.2/24`);
  });
  return out;
}

// What a NIC's port on a VLAN-aware switch is made of: judgements about its VLANs read these.
const portDeps = (nic: Array<string | number>): PathLike[] => (['vlan', 'trunk', 'native'] as const).map((k) => [...nic, k]);

// Where the subnet of a segment of a network is written: the network's, and on a VLAN-aware one the VLAN's.
function subnetDeps(net: ResolvedNetwork, segment: number | null): PathLike[] {
  const out: PathLike[] = [['networks', net.name, 'subnet']];
  if (net.vlans) out.push(segment === null ? ['networks', net.name, 'vlans'] : ['networks', net.name, 'vlans', String(segment)]);
  return out;
}

// What decides which networks a node has NICs on: its NICs, and the networks they name.
const nicsDeps = (name: string, node: TopoNode): PathLike[] => [['nodes', name, 'nics'], ...node.nics.map((c) => ['networks', c.network ?? ''])];

type TopoNet = Topology['networks'][string];
type TopoNic = TopoNode['nics'][number];

/** The VLANs of a network with "vlans" (its host side's VLAN, its subnets per VLAN); problems appended to `issues`. */
function normalizeVlans(name: string, net: TopoNet, issues: Findings): NetworkVlans | undefined {
  const at = (...p: Array<string | number>) => formatPath(['networks', name, ...p]);
  if (net.vlans === undefined || net.vlans === false) {
    if (net.hostVlan !== undefined) issues.add(at('hostVlan'), 'hostVlan is for a network with "vlans: true"');
    return undefined;
  }
  if (net.mode !== 'bridge' && net.mode !== 'isolated') {
    issues.add(at('vlans'), `VLANs are switched on bridge and isolated networks (this one is ${net.mode}); route between VLANs with a router node on a bridge network`);
    return undefined;
  }
  if (net.hostVlan !== undefined && net.address === undefined)
    issues.add(at('hostVlan'), 'hostVlan places the host side in a VLAN: give the network an "address" (or remove hostVlan)');
  const subnets: Record<string, Cidr> = {};
  if (typeof net.vlans === 'object')
    for (const [key, v] of Object.entries(net.vlans)) {
      const id = /^\d{1,4}$/.test(key) ? Number(key) : NaN;
      if (!(id >= 1 && id <= 4094)) {
        issues.refuse(at('vlans', key), `"${key}" is not a VLAN id from 1 to 4094`);
        continue;
      }
      if (v.subnet === undefined) continue;
      const c = parseCidr(v.subnet);
      if (!c || !v.subnet.includes('/')) issues.refuse(at('vlans', key, 'subnet'), `"${v.subnet}" is not a subnet like 10.0.10.0/24`);
      else if (networkOf(c) !== c.ip) issues.refuse(at('vlans', key, 'subnet'), `${v.subnet} has host bits set; did you mean ${formatIPv4(networkOf(c))}/${c.prefix}?`);
      else subnets[String(id)] = c;
    }
  return { host: net.hostVlan ?? 1, subnets };
}

/** A NIC's port on a VLAN-aware network (access 1 unless it says otherwise); problems appended to `issues`. */
function switchPort(net: ResolvedNetwork, nic: TopoNic, path: Array<string | number>, issues: Findings): SwitchPort | undefined {
  const at = (k: string) => formatPath([...path, k]);
  if (!net.vlans) {
    for (const key of ['vlan', 'trunk', 'native'] as const)
      if (nic[key] !== undefined)
        issues.add(at(key), `network "${net.name}" is not VLAN-aware: give it "vlans: true" (or remove "${key}")`);
    return undefined;
  }
  if (nic.vlan !== undefined && nic.trunk !== undefined) {
    issues.add(at('trunk'), 'a NIC is an access port ("vlan") or a trunk ("trunk"), not both');
    return undefined;
  }
  if (nic.native !== undefined && nic.trunk === undefined) issues.add(at('native'), '"native" is the untagged VLAN of a trunk: give the NIC "trunk" too', at('trunk'));
  if (nic.trunk === undefined) return { access: nic.vlan ?? 1 };
  const seen = new Set<number>();
  nic.trunk.forEach((id, i) => {
    if (seen.has(id)) issues.add(formatPath([...path, 'trunk', i]), `VLAN ${id} is listed twice`);
    seen.add(id);
  });
  if (nic.native !== undefined && seen.has(nic.native))
    issues.add(at('native'), `VLAN ${nic.native} is both tagged ("trunk") and the untagged native VLAN; a VLAN is one or the other on a port`);
  return { trunk: [...seen].sort((a, b) => a - b), ...(nic.native !== undefined ? { native: nic.native } : {}) };
}

/** A NIC's VLAN sub-interfaces in the guest, their addresses parsed; problems appended to `issues`. */
function subInterfaces(net: ResolvedNetwork, nic: TopoNic, port: SwitchPort | undefined, path: Array<string | number>, issues: Findings): SubInterface[] | undefined {
  if (!nic.vlans) return undefined;
  const out: SubInterface[] = [];
  const seen = new Set<number>();
  nic.vlans.forEach((v, i) => {
    const at = [...path, 'vlans', i];
    if (seen.has(v.id)) {
      issues.add(formatPath([...at, 'id']), `this NIC already has a sub-interface for VLAN ${v.id}`);
      return;
    }
    seen.add(v.id);
    const segment = segmentOf(net, { ...(port ? { port } : {}) }, v.id);
    if (segment === null && port)
      issues.add(
        formatPath([...at, 'id']),
        `the switch drops frames tagged ${v.id} on this port (${describePort(port)}): ${'access' in port ? `make it a trunk ("trunk: [${v.id}]")` : `add ${v.id} to "trunk"`}`,
        ...portDeps(path),
      );
    const addressPaths: Array<Array<string | number>> = [];
    const addresses = parseAddressList(v.ip, segmentSubnet(net, segment), [...at, 'ip'], issues, addressPaths, false, [...subnetDeps(net, segment), ...portDeps(path)]);
    out.push({ id: v.id, addresses, addressPaths });
  });
  return out;
}

/**
 * Turns a schema-valid topology (or the valid part of one the schema refused) into the resolved lab model;
 * problems are added to `issues`, judgements from unknown values left out.
 */
export function normalize(topo: Topology, issues: Findings, opts: NormalizeOptions = {}): ResolvedLab {
  const baseDir = opts.baseDir ?? process.cwd();
  const networks: ResolvedNetwork[] = [];
  for (const [name, net] of Object.entries(topo.networks)) {
    // What kind of network it is decides every judgement about it and its NICs: unknown, the network is too.
    if ((['mode', 'vlans', 'hostVlan'] as const).some((k) => issues.unknown(['networks', name, k]))) {
      issues.forget(['networks', name]);
      continue;
    }
    let subnet: Cidr | undefined;
    if (net.subnet !== undefined) {
      const c = parseCidr(net.subnet);
      if (!c) issues.refuse(formatPath(['networks', name, 'subnet']), `"${net.subnet}" is not a subnet like 192.168.1.0/24`);
      else if (networkOf(c) !== c.ip)
        issues.refuse(formatPath(['networks', name, 'subnet']), `${net.subnet} has host bits set; did you mean ${formatIPv4(networkOf(c))}/${c.prefix}?`);
      else subnet = c;
    }
    // On a VLAN-aware network the host side's address lies in its VLAN's subnet (when that VLAN declares one).
    const hostVlanSubnet = typeof net.vlans === 'object' ? parseCidr(net.vlans[String(net.hostVlan ?? 1)]?.subnet ?? '') ?? undefined : undefined;
    const address =
      net.address === undefined
        ? []
        : parseAddressList(net.address, hostVlanSubnet ?? subnet, ['networks', name, 'address'], issues, undefined, false, [['networks', name, 'subnet'], ['networks', name, 'vlans']]);
    const at = (key: string) => formatPath(['networks', name, key]);
    const pointToPoint = net.mode === 'socket' || net.mode === 'link';
    if (pointToPoint) {
      for (const key of ['bridge', 'address', 'dhcp'] as const)
        if (net[key] !== undefined) issues.add(at(key), `a ${net.mode} network has no bridge, so no ${key}`);
    }
    const vlans = normalizeVlans(name, net, issues);
    if (net.mode === 'isolated' && net.address !== undefined)
      issues.add(at('address'), 'an isolated network has no host side; remove "address" (or use mode bridge)');
    if ((net.mode === 'nat' || net.mode === 'routed') && (net.subnet === undefined || net.address === undefined))
      issues.add(at(net.subnet === undefined ? 'subnet' : 'address'), `a ${net.mode} network needs "subnet" and "address" (the host side, the guests' gateway)`);
    if (onLan(net)) {
      if (net.uplink === undefined)
        issues.add(at('uplink'), `a ${net.mode} network needs "uplink": the host interface whose LAN the guests join (like eth0${net.mode === 'macnat' ? ' or wlan0' : ''})`);
      if (net.address !== undefined)
        issues.add(at('address'), `a ${net.mode} network's host side is the uplink's own address; remove "address"`);
      if (net.dhcp !== undefined)
        issues.add(at('dhcp'), `guests on a ${net.mode} network get addresses from the LAN's own DHCP server; remove "dhcp" and give the NICs "dhcp: true"`);
    } else if (net.uplink !== undefined)
      issues.add(at('uplink'), `only bridged and macnat networks have an uplink (this one is ${net.mode})`);
    if (pointToPoint)
      for (const key of ['stp', 'forwardDelay', 'helloTime'] as const)
        if (net[key] !== undefined) issues.add(at(key), `a ${net.mode} network has no bridge, so no ${key}`);
    if (net.dhcp && net.address === undefined && !pointToPoint && !onLan(net))
      issues.add(at('dhcp'), 'DHCP is served from the host side of the bridge: give the network an "address"', at('address'));
    let dhcp: ResolvedNetwork['dhcp'];
    if (net.dhcp) {
      const m = /^\s*([\d.]+)\s*-\s*([\d.]+)\s*$/.exec(net.dhcp.range);
      const start = m ? parseIPv4(m[1]!) : null;
      const end = m ? parseIPv4(m[2]!) : null;
      if (start === null || end === null)
        issues.refuse(formatPath(['networks', name, 'dhcp', 'range']), `"${net.dhcp.range}" is not a range like 172.16.1.2-172.16.1.100`);
      else if (end < start)
        issues.refuse(formatPath(['networks', name, 'dhcp', 'range']), `the range ends (${m![2]}) before it starts (${m![1]})`);
      else dhcp = { start, end, lease: net.dhcp.lease };
    }
    if (pointToPoint && (net.antispoof || net.dhcpGuard))
      issues.add(at(net.antispoof ? 'antispoof' : 'dhcpGuard'), `a ${net.mode} network has no bridge to filter on`);
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
        if (!m) issues.refuse(formatPath([...path, 'mac']), `"${nic.mac}" is not a MAC address like de:ad:be:ef:00:02`);
        else {
          mac = m;
          macDerived = false;
        }
      }
      if (nic.user && nic.network !== undefined)
        issues.add(formatPath(path), 'a NIC either joins a network or uses user-mode networking (user), not both');
      if (!nic.user && nic.network === undefined)
        issues.add(formatPath(path), 'a NIC needs "network: NAME" (a network of this lab) or "user: {}" (QEMU user-mode networking)', [...path, 'network'], [...path, 'user']);
      if (nic.user) {
        for (const key of ['vlan', 'trunk', 'native', 'vlans'] as const)
          if (nic[key] !== undefined)
            issues.add(formatPath([...path, key]), `a user-mode NIC is no port of a switch and carries no VLANs; remove "${key}"`);
        for (const key of ['ip', 'tap'] as const)
          if (nic[key] !== undefined)
            issues.add(formatPath([...path, key]), `user-mode NICs always get ${USER_NET.address} and have no tap; remove "${key}"`);
        if (nic.dhcp) issues.add(formatPath([...path, 'dhcp']), 'a user-mode NIC gets 10.0.2.15 from QEMU itself; remove "dhcp"');
        if (nic.impair) issues.add(formatPath([...path, 'impair']), 'impairments go on a tap: a user-mode NIC has none (put the NIC on a network)');
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
      if (nic.vlans && kind === 'socket') issues.add(formatPath([...path, 'vlans']), 'VLAN sub-interfaces need a tap: use a link network instead of socket');
      if (kind === 'socket' && nic.tap !== undefined)
        issues.add(formatPath([...path, 'tap']), 'NICs on a socket network have no tap; remove "tap"');
      if (kind === 'socket' && nic.impair)
        issues.add(formatPath([...path, 'impair']), 'impairments go on a tap: a NIC on a socket network has none (use a bridge network)');
      const impair = kind === 'bridge' ? resolveImpairment(nic.impair) : undefined;
      if (nic.dhcp && net && onLan(net) && nic.ip !== undefined)
        issues.add(formatPath([...path, 'ip']), `the LAN's DHCP server chooses the address on ${net.mode} network "${net.name}"; remove "ip" (or "dhcp" for a static address)`);
      if (nic.dhcp && net && !net.dhcp && !onLan(net))
        issues.add(formatPath([...path, 'dhcp']), `network "${net.name}" serves no DHCP; give it a "dhcp" range`, ['networks', net.name, 'dhcp']);
      if (nic.dhcp && Array.isArray(nic.ip) && nic.ip.length > 1)
        issues.add(formatPath([...path, 'ip']), 'with "dhcp", "ip" is the single address of this MAC\'s static lease');
      // In its VLAN's subnet (on a trunk without a native VLAN, where it is refused later, the network's).
      const segment = net ? segmentOf(net, { ...(port ? { port } : {}) }) : null;
      const subnet = net ? (segmentSubnet(net, segment) ?? (net.vlans ? net.subnet : undefined)) : undefined;
      const deps = net ? [...subnetDeps(net, segment), ...portDeps(path)] : [];
      const addresses = parseAddressList(nic.ip, subnet, [...path, 'ip'], issues, addressPaths, !net, deps);
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
        addresses,
        addressPaths,
        ...(impair ? { impair } : {}),
        ...(port ? { port } : {}),
        ...(vlans?.length ? { vlans } : {}),
      };
    });
    let gateway: number | undefined;
    if (node.gateway !== undefined) {
      const g = parseIPv4(node.gateway);
      if (g === null) issues.refuse(formatPath(['nodes', name, 'gateway']), `"${node.gateway}" is not an IPv4 address like 192.168.1.254`);
      else gateway = g;
    }
    const routes: NodeRoute[] = [];
    (node.routes ?? []).forEach((r, i) => {
      const to = parseCidr(r.to);
      const via = parseIPv4(r.via);
      const at = (k: string) => formatPath(['nodes', name, 'routes', i, k]);
      if (!to || !r.to.includes('/')) issues.refuse(at('to'), `"${r.to}" is not a destination like 10.50.0.0/16`);
      else if (networkOf(to) !== to.ip) issues.refuse(at('to'), `${r.to} has host bits set; did you mean ${formatIPv4(networkOf(to))}/${to.prefix}?`);
      if (via === null) issues.refuse(at('via'), `"${r.via}" is not an IPv4 address like 192.168.1.254`);
      // At its own index: the rules name a route by it (a route refused here leaves a hole, in a lab never used).
      if (to && r.to.includes('/') && networkOf(to) === to.ip && via !== null) routes[i] = { to, via };
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
      ...(node.host !== undefined ? { host: node.host } : {}),
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

  // Which NICs join a network is unknown when a node, its NICs, or a NIC's network or user was refused.
  const membersUnknown = issues.someUnknown((p) => p[0] === 'nodes' && (p.length <= 2 || (p[2] === 'nics' && (p.length <= 4 || p[4] === 'network' || p[4] === 'user'))));

  // Transparent links: exactly two NICs, each with a tap; what one guest sends is redirected to the other's tap.
  for (const net of networks) {
    if (net.mode !== 'link') continue;
    const members = nodes.flatMap((n) => n.nics.filter((c) => c.kind === 'bridge' && c.network === net.name));
    if (members.length !== 2) {
      if (!membersUnknown) issues.add(formatPath(['networks', net.name]), `a link network joins exactly two NICs; ${members.length} join it`);
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
      if (!membersUnknown) issues.add(formatPath(['networks', net.name]), `a socket network links exactly two NICs; ${members.length} join it`);
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
      issues.add(formatPath(path), `unknown node "${f.node}"`, ['nodes', f.node]);
      return;
    }
    const nic = node.nics.find((c) => c.kind === 'bridge' && c.addresses.length && byName.get(c.network) && usesUplink(byName.get(c.network)!));
    if (!nic)
      issues.add(formatPath(path), `node "${f.node}" has no known address on a nat or routed network (give it "ip", a static lease with dhcp)`, ...nicsDeps(f.node, topo.nodes[f.node]!));
    else forwards.push({ proto: f.proto, host: f.host, node: f.node, port: f.port, address: nic.addresses[0]!.ip });
  });

  const checks: DeclaredCheck[] = topo.checks.map((c) => ({
    from: c.from,
    to: c.to,
    ...(c.tcp !== undefined ? { probe: 'tcp' as const, port: c.tcp } : { probe: 'ping' as const }),
    expect: c.expect,
  }));
  // Linux bridges add nothing here; OVN adds the hosts and databases (and refuses what it cannot carry).
  const fabric = normalizeFabric(topo, issues);
  return { name: topo.name, netns: `${NETNS_PREFIX}${topo.name}`, networks, nodes, forwards, ...(checks.length ? { checks } : {}), ...fabric };
}
