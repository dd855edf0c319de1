// The resolved lab model: what normalization produces and everything downstream consumes.
import type { Cidr } from './ipv4.js';
import type { NicModel } from './schema.js';

export interface ResolvedNetwork {
  name: string;
  mode: 'bridge' | 'socket';
  bridge: string;
  subnet?: Cidr;
  /** Address of the host side (the bridge) inside the lab namespace. */
  address?: Cidr;
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
  /** Where each address was written in the topology (for messages). */
  addressPaths?: Array<Array<string | number>>;
}

export interface RouterConfig {
  forward: boolean;
  masquerade: Array<{ from: string; out: number }>;
}

export interface ResolvedNode {
  name: string;
  router?: RouterConfig;
  memory: number;
  cpus: number;
  gateway?: number;
  nics: ResolvedNic[];
}

export interface ResolvedLab {
  name: string;
  /** The network namespace the lab lives in. */
  netns: string;
  networks: ResolvedNetwork[];
  nodes: ResolvedNode[];
}

export const NETNS_PREFIX = 'qnet-';
export const DEFAULT_MEMORY_MIB = 128;
export const DEFAULT_CPUS = 1;
/** QEMU user-mode networking's fixed plan. */
export const USER_NET = { address: '10.0.2.15/24', gateway: '10.0.2.2', dns: '10.0.2.3', subnet: '10.0.2.0/24' } as const;
