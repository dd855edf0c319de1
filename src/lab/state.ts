// The per-lab state file: what `up` made (written as it goes, so `down` can undo a half-finished `up`).
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedLab } from '../topology/model.js';
import type { Impairment } from '../topology/impair.js';
import type { LanUplink } from '../render/lan.js';
import { labDir } from '../dirs.js';
import { UserError } from '../errors.js';
import { isLabName, LAB_NAME_RULE } from '../topology/names.js';

export interface LabState {
  version: 1;
  lab: ResolvedLab;
  status: 'starting' | 'up' | 'failed';
  createdAt: string;
  source?: string;
  accel: string;
  image: string;
  guests: Record<string, GuestRecord>;
  /** The `qnet up` making the lab (while status is 'starting'): its pid and start time, so a dead one is told apart. */
  upBy?: { pid: number; startTime: number };
  /** Helper processes of the lab (dnsmasq per DHCP network). */
  services?: Record<string, { pid: number }>;
  /** Impairments set by `qnet impair` over the topology's (by node, then NIC position; null: cleared). */
  impair?: Record<string, Record<string, Impairment | null>>;
  /** NICs whose link was set down by `qnet link` (positions, by node); absent: every link is up. */
  links?: Record<string, number[]>;
  /** The uplinks of bridged and macnat networks as they were before `up` (what `down` gives back). */
  lan?: Record<string, LanUplink>;
}

/** What the state file keeps of a node's guest. */
export interface GuestRecord {
  pid: number;
  startedAt: string;
  readyAt?: string;
  bootSeconds?: number;
  /** How the guest came up: booted, or restored from the saved state of its shape. */
  start?: 'booted' | 'restored';
  /** Set by `qnet stop`: the guest was powered off on purpose (status `stopped`, not `dead`). */
  stoppedAt?: string;
}

/**
 * A node's state: `running` while its QEMU lives; else `stopped` when `qnet stop` powered it off, `dead` when it
 * went without being asked (killed, crashed), `unknown` when it was never started (an up under way, or a change
 * that failed before it).
 */
export type NodeState = 'running' | 'stopped' | 'dead' | 'unknown';

/** A node's state from its record in the state file and whether its QEMU process lives. */
export function nodeStateOf(record: GuestRecord | undefined, alive: boolean): NodeState {
  if (alive) return 'running';
  if (!record) return 'unknown';
  return record.stoppedAt ? 'stopped' : 'dead';
}

/** The states `status` gives a lab. */
export type LabStatusName = 'up' | 'starting' | 'interrupted' | 'failed' | 'degraded' | 'leftover';

/**
 * A lab's status from its recorded one and what is observed: `interrupted` when the `up` that was making it is gone
 * (killed before it finished); `degraded` when an up lab is not as its file says for a reason nobody asked for (a
 * node dead or never started, a network missing, a helper daemon dead). Nodes stopped with `qnet stop` are asked
 * for: they leave the lab `up`.
 */
export function labStatusOf(o: { recorded: LabState['status']; upAlive: boolean; nodes: NodeState[]; networksMissing: boolean; servicesDead: boolean }): LabStatusName {
  if (o.recorded === 'starting') return o.upAlive ? 'starting' : 'interrupted';
  if (o.recorded !== 'up') return o.recorded;
  return o.nodes.some((n) => n !== 'running' && n !== 'stopped') || o.networksMissing || o.servicesDead ? 'degraded' : 'up';
}

/** The state with a node marked as stopped on purpose (its record kept: its pid is gone once it is stopped). */
export function withStopped(state: LabState, node: string, at: string): LabState {
  const g = state.guests[node];
  return g ? { ...state, guests: { ...state.guests, [node]: { ...g, stoppedAt: at } } } : state;
}

/** Path of a lab's state file. */
export function statePath(lab: string): string {
  return path.join(labDir(lab), 'state.json');
}

/** Reads a lab's state, or null when there is none (or it is unreadable). */
export async function readState(lab: string): Promise<LabState | null> {
  try {
    return JSON.parse(await readFile(statePath(lab), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

/** A lab name as typed on the command line; a UserError (exit 2) when it cannot be one (never a path to read). */
export function checkLabName(lab: string): string {
  if (!isLabName(lab)) throw new UserError(`"${lab}" is not a lab name (${LAB_NAME_RULE})`);
  return lab;
}

/** The error of a lookup of a lab that does not exist (exit 2: the name is the user's input). */
export function noSuchLab(lab: string, where = 'is up'): UserError {
  return new UserError(`no lab named "${lab}" ${where} (\`qnet status\` lists the labs)`);
}

/**
 * The state of a lab, whatever its status: the one lookup of every command that names a lab, so that an unknown
 * lab or a malformed name is bad input (exit 2) everywhere.
 */
export async function labState(lab: string): Promise<LabState> {
  const state = await readState(checkLabName(lab));
  if (!state) throw noSuchLab(lab);
  return state;
}

/** The state of a lab that is up; a UserError (exit 2) when it is not. */
export async function upState(lab: string): Promise<LabState> {
  const state = await labState(lab);
  if (state.status !== 'up') throw new UserError(`lab "${lab}" is not up (its up ${state.status === 'starting' ? 'has not finished' : 'failed'}: \`qnet status ${lab}\`)`);
  return state;
}

/** Changes a lab's state file as read now (another qnet may have written it since the caller read it). */
export async function updateState(state: LabState, change: (now: LabState) => LabState): Promise<void> {
  await writeState(change((await readState(state.lab.name)) ?? state));
}

/** Writes a lab's state atomically (write then rename). */
export async function writeState(state: LabState): Promise<void> {
  const p = statePath(state.lab.name);
  await writeFile(`${p}.tmp`, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await rename(`${p}.tmp`, p);
}
