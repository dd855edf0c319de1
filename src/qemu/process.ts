// Process facts read from /proc: liveness that treats zombies as dead, and qnet's ownership marker (environment).
import { readFile, readdir } from 'node:fs/promises';

/** The environment variables that mark a QEMU process as a lab's guest. */
export const ENV_LAB = 'QNET_LAB';
export const ENV_NODE = 'QNET_NODE';

/** True when the process exists and is not a zombie (PID 1 here reaps late, so kill(pid, 0) is not enough). */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The qnet marker of a process (lab and node from its environment), or null if it is not a qnet guest. */
export async function markerOf(pid: number): Promise<{ lab: string; node: string } | null> {
  try {
    const env = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
    const lab = env.find((e) => e.startsWith(`${ENV_LAB}=`))?.slice(ENV_LAB.length + 1);
    const node = env.find((e) => e.startsWith(`${ENV_NODE}=`))?.slice(ENV_NODE.length + 1);
    return lab && node ? { lab, node } : null;
  } catch {
    return null;
  }
}

/** Every live process carrying a qnet marker, optionally only those of one lab. */
export async function findGuestProcesses(lab?: string): Promise<Array<{ pid: number; lab: string; node: string }>> {
  const out: Array<{ pid: number; lab: string; node: string }> = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const m = await markerOf(pid);
    if (m && (!lab || m.lab === lab) && (await isAlive(pid))) out.push({ pid, ...m });
  }
  return out;
}

/** Resolves when the process is gone or a zombie, or false after `timeoutMs`. */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  // Not a readiness wait: a short poll of /proc for a process we no longer own, bounded by the deadline.
  while (Date.now() < deadline) {
    if (!(await isAlive(pid))) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !(await isAlive(pid));
}
