// Finding what exists of a lab on the host, from ownership markers alone (no state file needed).
import { readdir } from 'node:fs/promises';
import { exists } from '../host/fs.js';
import { RealRunner } from '../host/run.js';
import { findGuestProcesses } from '../qemu/process.js';
import { ownerMarker } from '../render/ipbatch.js';
import { NETNS_PREFIX } from '../topology/model.js';
import { labDir, runRoot } from './paths.js';


/** Whether the namespace exists and carries the lab's marker (the alias of its loopback). */
export async function netnsOwnership(lab: string): Promise<'ours' | 'foreign' | 'absent'> {
  const ns = `${NETNS_PREFIX}${lab}`;
  if (!(await exists(`/run/netns/${ns}`))) return 'absent';
  const r = await new RealRunner().run(['ip', '-n', ns, '-j', 'link', 'show', 'lo'], { allowFail: true });
  if (r.code !== 0) return 'foreign';
  try {
    const [lo] = JSON.parse(r.stdout) as Array<{ ifalias?: string }>;
    // A namespace whose marker was never written (up killed right after `ip netns add`) is empty: still ours.
    if (!lo?.ifalias) {
      const all = await new RealRunner().run(['ip', '-n', ns, '-j', 'link', 'show'], { allowFail: true });
      return (JSON.parse(all.stdout || '[]') as unknown[]).length <= 1 ? 'ours' : 'foreign';
    }
    return lo.ifalias === ownerMarker(lab) ? 'ours' : 'foreign';
  } catch {
    return 'foreign';
  }
}

/** What of a lab is present on the host: its namespace, run directory, guest processes. */
export async function findLab(lab: string): Promise<{ present: boolean; what: string[]; pids: number[]; netns: 'ours' | 'foreign' | 'absent' }> {
  const what: string[] = [];
  const netns = await netnsOwnership(lab);
  if (netns !== 'absent') what.push(`namespace ${NETNS_PREFIX}${lab}${netns === 'foreign' ? ' (not made by qnet)' : ''}`);
  if (await exists(labDir(lab))) what.push(`run directory ${labDir(lab)}`);
  const procs = await findGuestProcesses(lab);
  if (procs.length) what.push(`${procs.length} guest process${procs.length > 1 ? 'es' : ''}`);
  return { present: what.length > 0, what, pids: procs.map((p) => p.pid), netns };
}

/** Names of every lab that has anything on the host (run directory, marked namespace or guest process). */
export async function listLabs(): Promise<string[]> {
  const names = new Set<string>();
  try {
    for (const e of await readdir(runRoot(), { withFileTypes: true })) if (e.isDirectory() && !e.name.startsWith('.')) names.add(e.name);
  } catch {
    // no run root yet
  }
  try {
    for (const f of await readdir('/run/netns')) if (f.startsWith(NETNS_PREFIX)) names.add(f.slice(NETNS_PREFIX.length));
  } catch {
    // no namespaces
  }
  for (const p of await findGuestProcesses()) names.add(p.lab);
  return [...names].sort();
}
