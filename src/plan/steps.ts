// The plan's vocabulary: actions (what the executor does), steps (an action with its inverse) and what the
// planner knows of the host (observed state, passed in so that planning stays pure).
import type { Accel, GuestImage } from '../render/qemu.js';
import type { UplinkAddressing } from '../render/uplink.js';
import type { UserNatChoice } from '../render/uplink-rootless.js';
import type { LanUplink } from '../render/lan.js';
import type { BaseIdentity } from '../render/host-types.js';

/** A file qnet opens and hands to QEMU as a descriptor (QEMU, unprivileged, is never given the right to open it). */
export interface PassedFile {
  path: string;
  /** Opened for writing too (an overlay, UEFI variables); else read-only (a base image, an ISO, firmware). */
  write: boolean;
}

/** How a guest is stopped: at once (QMP quit), or by the ACPI power button first (a real OS flushes its disk). */
export interface StopHow {
  acpi: boolean;
}

export type Action =
  | { kind: 'mkdir'; path: string; mode: number; owner?: { uid: number; gid: number }; exclusive?: boolean }
  | { kind: 'write'; path: string; content: string; mode: number }
  | { kind: 'exec'; argv: string[]; input?: string }
  | { kind: 'rmtree'; path: string }
  | { kind: 'start-guest'; node: string; argv: string[]; env: Record<string, string>; snapshot?: GuestSnapshot; fds?: PassedFile[] }
  | { kind: 'wait-snapshot'; nodes: string[] }
  | { kind: 'stop-guest'; node: string; stop?: StopHow }
  | { kind: 'copy'; from: string; to: string; mode: number }
  /** Removes a directory if it is empty (the undo of making a parent that other steps may have filled too). */
  | { kind: 'rmdir-empty'; path: string }
  /** An image node's cloud-init seed: rendered with the SSH keys made earlier in the run, then packed as an ISO. */
  | { kind: 'seed'; node: string; dir: string; iso: string; labKey: string; hostKey: string; knownHosts: string }
  /** The configuration of a node using qnet's resume hook (keys read here, fresh machine-id and seed), for its QEMU. */
  | { kind: 'resume-config'; node: string; file: string; labKey: string; hostKey: string; knownHosts: string; snapshot: boolean; owner: { uid: number; gid: number } }
  | { kind: 'wait-ready'; nodes: string[] }
  | { kind: 'host-forwarding'; enable: boolean }
  | { kind: 'start-service'; service: string; argv: string[]; env: Record<string, string>; log: string; readyText: string }
  | { kind: 'stop-service'; service: string }
  | { kind: 'release-uplink'; bridge: string; saved?: LanUplink }
  /** Destroys every northbound row marked with the lab (found by its marker at run time): the undo of its NB batch. */
  | { kind: 'ovn-clear'; lab: string; nb: string[] };

/**
 * A guest's part in snapshots: `save` boots it and saves its state at the snapshot point into `path`; `restore`
 * starts it from that state instead of booting (and boots it after all if the file is missing or unusable).
 */
export interface GuestSnapshot {
  mode: 'save' | 'restore';
  /** The saved device state (`.state`); the template of the guest's RAM is beside it (`.ram`). */
  path: string;
  /** restore: QEMU's argv when it restores (RAM mapped from the template); `argv` of the action boots it instead. */
  argv?: string[];
  /** restore: the files that argv is handed (after the template's descriptor); the action's `fds` go with its argv. */
  fds?: PassedFile[];
  /** save (image nodes): the overlay to copy beside the state at the snapshot point (the restored nodes' disk). */
  disk?: { overlay: string; base: string; identity: unknown };
}

export interface Step {
  title: string;
  do: Action;
  undo?: Action;
  /** What to tell the user if this step fails (what usually causes it, what to do instead). */
  hint?: string;
}

export interface PlanContext {
  image: GuestImage;
  accel: Accel;
  /** The user helper daemons (dnsmasq) run as, with its ids. */
  user: string;
  userIds: { uid: number; gid: number };
  /** The lab's own ids, which its guests (and their taps and files) get. */
  guestIds: { uid: number; gid: number };
  qemuBinary?: string;
  /**
   * The lab is a user's (rootless): its namespace is made by its holder, its uplink is pasta's, QEMU keeps no
   * capabilities. Absent as root.
   */
  rootless?: boolean;
  /** The uplink /30 chosen for this host (labs with nat or routed networks). */
  uplink?: UplinkAddressing;
  /** Rootless: what carries the nat networks (pasta, or slirp4netns where pasta is missing), and why (observed). */
  userNat?: UserNatChoice;
  /** Whether IPv4 forwarding is already on in the host namespace (observed). */
  hostForwarding?: boolean;
  /** The uplinks of bridged and macnat networks, by network name (observed). */
  lan?: Record<string, LanUplink>;
  /**
   * At most this many guests boot at once; the next starts as soon as one is ready (0: no limit). Built-in guests
   * restored from a saved state do not count. Carried out by the executor; here only for the plan's text.
   */
  parallel?: number;
  /** At most this many image nodes are restored at once (0: no limit). Carried out by the executor; here for the text. */
  restoreParallel?: number;
  /**
   * Saved states by node name (nodes that can use one): the file for the node's shape, and whether it exists.
   * Absent: every guest boots (`up --cold`).
   */
  snapshots?: Record<string, { path: string; exists: boolean }>;
  /** Kept disks of image nodes with `persist` (observed), by node name. */
  kept?: Record<string, KeptState>;
  /** Whether the lab's SSH key exists already (observed: kept with a persisted lab, or made by an earlier up). */
  labKey?: boolean;
  /** UEFI firmware files (Debian's ovmf), for nodes with firmware: uefi. */
  ovmf?: { code: string; vars: string };
  /** Labs on OVN: what was observed of this host's OVN (absent for labs on Linux bridges). */
  ovn?: OvnHostContext;
}

/** What the OVN fabric plans with, observed on the host before any change. */
export interface OvnHostContext {
  /** The OVN chassis name (OVS system-id) of each host of the lab, by the host's name in the lab. */
  chassis: Record<string, string>;
  /** Where each node runs: its host's name in the lab (see plan/placement.ts). */
  placement: Record<string, string>;
  /** The datapath of br-int: on netdev (userspace) QEMU's taps go without the virtio-net header. */
  datapath: 'system' | 'netdev';
  /** ovn-nbctl's global options that reach the northbound DB (none: the local central's socket). */
  nb: string[];
  /**
   * On a host of a lab over several hosts: which host this is, and whether it is the lab's gateway (it alone makes
   * the host sides and the uplink); the northbound rows are the driver's. Absent on one host: this host does all.
   */
  part?: { host: string; gateway: boolean };
}

/** What is kept of a persisted image node from an earlier up (observed). */
export interface KeptState {
  disk: boolean;
  vars: boolean;
  hostKey: boolean;
  /** The kept overlay's virtual size, when it exists. */
  size?: number;
  /** The base as it is now: recorded with a new kept disk. */
  base: BaseIdentity;
}
