// `qnet stop`, `start`, `restart`: one node of a running lab powered off and on, the rest of the lab untouched. A
// stopped node keeps its taps (and what is on them) and its place in the state file, marked stopped, so that status
// tells it from a node that died; start brings it back with the steps `up` used for it.
import { UserError } from '../errors.js';
import { vncService } from '../guest/image-node.js';
import { kindOf } from '../guest/kinds.js';
import { stopService } from '../host/service.js';
import { processMarker } from '../qemu/process.js';
import { stopGuest } from '../qemu/guest.js';
import { nodeFiles } from '../render/qemu.js';
import type { ResolvedNode } from '../topology/model.js';
import { nodeDir } from '../dirs.js';
import { nodeState } from './alive.js';
import { DEFAULT_GRACE_MS } from './grace.js';
import { readState, updateState, upState, withStopped, type LabState, type NodeState } from './state.js';
import { silentReporter, startNodes, type Reporter, type UpOptions, type UpResult } from './up.js';

/** The state of a running lab and one of its nodes; a UserError (exit 2) naming what is unknown. */
export async function labNode(labName: string, node: string): Promise<{ state: LabState; node: ResolvedNode }> {
  const state = await upState(labName);
  const n = state.lab.nodes.find((x) => x.name === node);
  if (!n) throw new UserError(`lab ${labName} has no node "${node}" (nodes: ${state.lab.nodes.map((x) => x.name).join(', ')})`);
  return { state, node: n };
}

export interface StopResult {
  node: string;
  /** What it was: running (now stopped), or already not running. */
  was: NodeState;
  /** How its guest went (as `down` says: powered off, quit, killed), when it was running. */
  how?: string;
  ms: number;
}

/**
 * Stops one node's guest as `down` does (an image node: the ACPI power button, up to `graceMs` to power off, then
 * quit; a built-in guest: quit at once) and marks it stopped in the state file; its VNC forward stops with it. A
 * dead node is only marked stopped; one stopped already, or never started, is left as it is.
 */
export async function stopNode(labName: string, node: string, opts: { reporter?: Reporter; graceMs?: number } = {}): Promise<StopResult> {
  const t0 = Date.now();
  const { state, node: n } = await labNode(labName, node);
  const was = await nodeState(state, node);
  if (was === 'stopped' || was === 'unknown') return { node, was, ms: Date.now() - t0 };
  // Marked first: once the guest is gone, status says stopped, never dead, whatever happens to this process.
  await updateState(state, (now) => withStopped(now, node, new Date().toISOString()));
  let how: string | undefined;
  if (was === 'running') {
    const t = Date.now();
    const acpi = kindOf(n).stop.acpi;
    how = await stopGuest(state.guests[node]!.pid, nodeFiles(nodeDir(labName, node)), acpi ? { acpi: true, graceMs: opts.graceMs ?? DEFAULT_GRACE_MS } : { acpi: false, graceMs: 0 });
    (opts.reporter ?? silentReporter).step(`stop ${node} (${how})`, Date.now() - t, true);
  }
  await stopNodeServices(labName, node);
  return { node, was, ...(how ? { how } : {}), ms: Date.now() - t0 };
}

// Stops the helper processes that belong to one node (its VNC forward) and drops them from the state file.
async function stopNodeServices(labName: string, node: string): Promise<void> {
  const name = vncService(node);
  const s = (await readState(labName))?.services?.[name];
  if (!s) return;
  const m = await processMarker(s.pid);
  if (m?.lab === labName && m.service === name) await stopService(s.pid);
  const state = await readState(labName);
  if (state) await updateState(state, (now) => ({ ...now, services: Object.fromEntries(Object.entries(now.services ?? {}).filter(([k]) => k !== name)) }));
}

/**
 * Starts one node of a running lab again, with the steps `up` used for it (from the saved state of its shape where
 * up would restore it), its MACs tied to its bridge ports and its cables as `qnet link` left them; rolls back on
 * failure. A running node is left as it is (`already`).
 */
export async function startNode(labName: string, node: string, opts: UpOptions): Promise<UpResult & { already?: boolean }> {
  const t0 = Date.now();
  const { state } = await labNode(labName, node);
  const was = await nodeState(state, node);
  if (was === 'running') return { state, ms: Date.now() - t0, already: true };
  return startNodes(state, [{ node, was }], opts);
}
