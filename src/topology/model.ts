// The resolved lab model: what normalization produces and everything downstream consumes.
import type { Cidr } from './ipv4.js';
import type { DiskBus, NicModel } from './schema.js';
import type { Impairment } from './impair.js';
import type { SshTarget } from './ssh-target.js';

export type { SshTarget };

/** bridge: a switch (optional host address); isolated: a switch, no host side; nat/routed: the host side is the
 * gateway and the lab's uplink carries the traffic out (masqueraded, or routed as is); socket: a QEMU point-to-point link. */
export type NetworkMode = 'bridge' | 'isolated' | 'nat' | 'routed' | 'socket' | 'link' | 'bridged' | 'macnat';

/** True for networks that are a Linux bridge with taps (every mode but socket and link). */
export function hasBridge(net: { mode: NetworkMode }): boolean {
  return net.mode !== 'socket' && net.mode !== 'link';
}

/** True for networks whose NICs have a tap in the lab namespace (bridges, and transparent links). */
export function hasTaps(net: { mode: NetworkMode }): boolean {
  return net.mode !== 'socket';
}

/** The name a NIC has in the guest: eth<position> in the built-in guest; an image's OS names its own (nic<position>). */
export function nicName(node: { image?: unknown }, nic: { index: number }): string {
  return node.image ? `nic${nic.index}` : `eth${nic.index}`;
}

/** True for networks whose guests are on a host interface's LAN (bridged or MAC-NATed). */
export function onLan(net: { mode: NetworkMode }): boolean {
  return net.mode === 'bridged' || net.mode === 'macnat';
}

/** True for networks whose traffic leaves the lab through its uplink. */
export function usesUplink(net: { mode: NetworkMode }): boolean {
  return net.mode === 'nat' || net.mode === 'routed';
}

export interface DhcpConfig {
  start: number;
  end: number;
  lease: string;
}

export interface PortForward {
  proto: 'tcp' | 'udp';
  host: number;
  node: string;
  port: number;
  /** The node's address the forward goes to (resolved from its NICs). */
  address: number;
}

export interface ResolvedNetwork {
  name: string;
  mode: NetworkMode;
  bridge: string;
  subnet?: Cidr;
  /** Address of the host side (the bridge) inside the lab namespace. */
  address?: Cidr;
  /** DHCP and DNS by dnsmasq on this network. */
  dhcp?: DhcpConfig;
  /** Guests may send only from their own MAC and IPv4 (as libvirt's clean-traffic filter). */
  antispoof: boolean;
  /** Guests may not answer as DHCP servers. */
  dhcpGuard: boolean;
  /** bridged and macnat: the host interface whose LAN the guests join. */
  uplink?: string;
  /** Spanning tree and timers of the bridge (bridged: of the host bridge the uplink is in). */
  stp: BridgeStp;
  /** A VLAN-aware switch (the bridge's VLAN filtering): absent on a plain bridge. */
  vlans?: NetworkVlans;
}

/** The VLANs of a VLAN-aware network: the host side's VLAN and the subnets declared per VLAN. */
export interface NetworkVlans {
  /** The VLAN the host side (the bridge's own port) is in. */
  host: number;
  /** Subnets declared per VLAN id ("10": 10.0.10.0/24). */
  subnets: Record<string, Cidr>;
}

/** A NIC's port on a VLAN-aware switch: an access port of one VLAN, or a trunk (tagged VLANs, an untagged native one). */
export type SwitchPort = { access: number } | { trunk: number[]; native?: number };

/** A VLAN sub-interface the guest makes on a NIC (eth0.10): frames tagged with `id`. */
export interface SubInterface {
  id: number;
  addresses: Cidr[];
  addressPaths?: Array<Array<string | number>>;
}

/** A bridge's spanning-tree settings; times in seconds. */
export interface BridgeStp {
  enabled: boolean;
  forwardDelay: number;
  helloTime: number;
}

export interface HostFwd {
  proto: 'tcp' | 'udp';
  host: number;
  guest: number;
}

export interface ResolvedNic {
  index: number;
  /** 'bridge' NICs have a tap on a bridge; 'user' NICs use QEMU's user-mode stack; 'socket' NICs a point-to-point link. */
  kind: 'bridge' | 'user' | 'socket';
  /** Network name (empty for user-mode NICs). */
  network: string;
  hostfwd: HostFwd[];
  /** For socket NICs: local and peer UDP ports on the lab namespace's loopback. */
  socket?: { local: number; peer: number };
  mac: string;
  macDerived: boolean;
  model: NicModel;
  tap: string;
  addresses: Cidr[];
  /** The guest asks DHCP for its address (`addresses` then holds its static lease, if any). */
  dhcp: boolean;
  /** Where each address was written in the topology (for messages). */
  addressPaths?: Array<Array<string | number>>;
  /** Link impairments on the NIC's tap (bridge NICs only). */
  impair?: Impairment;
  /** Its port on a VLAN-aware network (absent on plain bridges). */
  port?: SwitchPort;
  /** VLAN sub-interfaces in the guest (absent when none). */
  vlans?: SubInterface[];
  /** On a link network: the tap of the other end, which what this NIC's guest sends is redirected to. */
  peerTap?: string;
  /**
   * False: QEMU opens the tap without the virtio-net header (`vnet_hdr=off`), so the guest fills its own checksums.
   * Set by the OVN fabric on Open vSwitch's userspace datapath, which reads taps through AF_PACKET and passes a
   * packet with a checksum left for offload on unfilled (TCP then fails). Absent everywhere else.
   */
  vnetHdr?: false;
}

/** The guest's name of a NIC's VLAN sub-interface ("eth0.10"). */
export function subInterfaceName(base: string, id: number): string {
  return `${base}.${id}`;
}

export interface RouterConfig {
  forward: boolean;
  masquerade: Array<{ from: string; out: number }>;
}

/** When an image node counts as up (the built-in guest always says READY on its control port). */
export type ReadySpec =
  | { kind: 'agent' }
  | { kind: 'lease' }
  | { kind: 'console'; pattern: string }
  | { kind: 'tcp'; port: number }
  | { kind: 'none' };

/** An image node: the user's own disk image, booted on a copy-on-write overlay. */
export interface ImageSpec {
  /** The base image, absolute. Never written. */
  path: string;
  /** Found by `qemu-img info` before anything changes (absent until the image is inspected). */
  format?: ImageFormat;
  virtualSize?: number;
  /** Grow the overlay to this many bytes. */
  diskSize?: number;
  bus: DiskBus;
  /** Keep the overlay across down/up (under the state directory). */
  persist: boolean;
  config: 'cloud-init' | 'none';
  /** cloud-config merged into qnet's (config: cloud-init). */
  userData?: Record<string, unknown>;
  ready: ReadySpec;
  /** The readiness was chosen by qnet, not written in the topology. */
  readyDefault: boolean;
  machine: 'q35' | 'pc';
  firmware: 'bios' | 'uefi';
  /** An ISO attached read-only, absolute. */
  cdrom?: string;
  /** A screen over VNC: always on a Unix socket in the run directory, and on 127.0.0.1:port when given. */
  vnc?: { port?: number };
  /** The version of qnet's resume hook the image carries (images `qnet image create` makes; found by the check). */
  resume?: number;
  /** The base as inspected (size, mtime, inode): what a saved state of the node's shape was made on. */
  identity?: { size: number; mtimeMs: number; ino: number; dev: number };
}

/** Disk image formats an image node may use. */
export const IMAGE_FORMATS = ['qcow2', 'raw', 'vmdk', 'vdi', 'vhdx'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** A static route of a node (besides the default one). */
export interface NodeRoute {
  to: Cidr;
  via: number;
}

export interface ResolvedNode {
  name: string;
  router?: RouterConfig;
  memory: number;
  cpus: number;
  gateway?: number;
  /** Static routes besides the default (absent when there are none). */
  routes?: NodeRoute[];
  nics: ResolvedNic[];
  /** Present on image nodes; the built-in guest otherwise. */
  image?: ImageSpec;
  /** On OVN: the host the topology pins the node to (absent: qnet places it). */
  host?: string;
}

/** A declared expectation (`checks:`), its references as written (resolved by check/declared.ts). */
export interface DeclaredCheck {
  from: string;
  to: string;
  probe: 'ping' | 'tcp';
  port?: number;
  expect: 'pass' | 'fail';
}

export interface ResolvedLab {
  name: string;
  /** The network namespace the lab lives in. */
  netns: string;
  networks: ResolvedNetwork[];
  nodes: ResolvedNode[];
  forwards: PortForward[];
  /** Declared expectations (absent when there are none). */
  checks?: DeclaredCheck[];
  /** How networks are made: absent for Linux bridges in the lab namespace (as before fabrics existed). */
  fabric?: 'ovn';
  /** On OVN: the hosts the lab spans, in the order written (one implicit local host when none is declared). */
  hosts?: ResolvedHost[];
  /** On OVN: where its databases are, and which host is its gateway. */
  ovn?: OvnSpec;
}

/** A host of a lab on OVN; its name is its OVN chassis name (system-id). */
export interface ResolvedHost {
  name: string;
  ssh: SshTarget;
  /** The address other hosts' tunnels reach it at (absent: observed on the host, for `ssh: local`). */
  underlay?: number;
  datapath?: 'system' | 'netdev';
  /** What the topology lets qnet place there: MiB of guests (with QEMU's own) and virtual CPUs. */
  memory?: number;
  cpus?: number;
}

/** A lab's OVN: a central host of its own (which runs NB, SB and northd), or given databases; its gateway host. */
export interface OvnSpec {
  central?: string;
  nb?: string;
  sb?: string;
  /** The host whose lab namespace holds the host sides and the way out (the distributed gateway port's chassis). */
  gateway: string;
}

/** The name of the one host of a lab on OVN that declares no hosts: this machine. */
export const LOCAL_HOST = 'local';

export const NETNS_PREFIX = 'qnet-';
export const DEFAULT_MEMORY_MIB = 128;
/** Image nodes run a whole OS (systemd, cloud-init in Python): 512 MiB by default. */
export const DEFAULT_IMAGE_MEMORY_MIB = 512;
export const DEFAULT_CPUS = 1;
/** QEMU user-mode networking's fixed plan. */
export const USER_NET = { address: '10.0.2.15/24', gateway: '10.0.2.2', dns: '10.0.2.3', subnet: '10.0.2.0/24' } as const;
