// The resolved lab model: what normalization produces and everything downstream consumes.
import type { Cidr } from './ipv4.js';
import type { NicModel } from './schema.js';

export interface ResolvedNetwork {
  name: string;
  bridge: string;
  subnet?: Cidr;
  /** Address of the host side (the bridge) inside the lab namespace. */
  address?: Cidr;
}

export interface ResolvedNic {
  index: number;
  network: string;
  mac: string;
  macDerived: boolean;
  model: NicModel;
  tap: string;
  addresses: Cidr[];
}

export interface ResolvedNode {
  name: string;
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
