// Whether a lab's guests and the `up` making it live, read once from /proc (never by waiting): a guest is its
// recorded pid, still carrying the lab's and the node's marker and not a zombie (process 1 reaps orphans a second or
// two late here, so a killed QEMU lingers as one); an `up` is its recorded pid with the start time it had.
import { RuntimeError } from '../errors.js';
import { isAlive, markerOf, processStartTime } from '../qemu/process.js';
import { nodeStateOf, type GuestRecord, type LabState, type NodeState } from './state.js';

/** True when the guest of this record runs: its process lives and is this lab's node (a pid may be reused). */
export async function guestAlive(lab: string, node: string, record: GuestRecord | undefined): Promise<boolean> {
  if (!record) return false;
  // A QEMU that exited has no memory map left: its environment reads empty (no marker) even before it is a zombie.
  const m = await markerOf(record.pid);
  return !!m && m.lab === lab && m.node === node && (await isAlive(record.pid));
}

/** A node's state as `status` shows it: running, stopped (by `qnet stop`), dead, or unknown (never started). */
export async function nodeState(state: LabState, node: string): Promise<NodeState> {
  const g = state.guests[node];
  return nodeStateOf(g, await guestAlive(state.lab.name, node, g));
}

/** True unless the lab's state names an `up` that is gone (killed before it could finish or roll back). */
export async function upAlive(state: LabState): Promise<boolean> {
  if (!state.upBy) return true;
  return (await processStartTime(state.upBy.pid)) === state.upBy.startTime;
}

/** The error of a command that needs a running guest, for a node that is not running: what it is and how to start it. */
export function notRunningError(lab: string, node: string, st: NodeState): RuntimeError {
  const why = st === 'unknown' ? 'never started' : st;
  return new RuntimeError(`node ${node} of lab ${lab} is not running (${why}); \`qnet start ${lab} ${node}\` starts it`);
}

/** Resolves when the node's guest runs; rejects with notRunningError otherwise. */
export async function requireRunning(state: LabState, node: string): Promise<void> {
  const st = await nodeState(state, node);
  if (st !== 'running') throw notRunningError(state.lab.name, node, st);
}
