// The driving machine's record of a lab over several hosts (which hosts, where each node runs): read by `down`,
// `status`, `exec` and `check`, and by `status` and `down --all` to list such labs. Small on purpose: `qnet status`
// with no labs loads it.
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runRoot } from '../dirs.js';
import type { ResolvedLab } from '../topology/model.js';

/** What the driver keeps of a lab over several hosts: enough for `down`, `status` and `exec` to find each part. */
export interface HostsState {
  lab: ResolvedLab;
  status: 'starting' | 'up';
  placement: Record<string, string>;
  /** The hosts whose part was begun (each may hold something of the lab). */
  parts: string[];
  createdAt: string;
  upBy: number;
}

/** Where the driver's state of a lab over several hosts is kept. */
export function hostsStatePath(lab: string): string {
  return path.join(runRoot(), '.hosts', `${lab}.json`);
}

/** The labs over several hosts this machine drives (those with a driver's state). */
export async function drivenLabs(): Promise<string[]> {
  const files = await readdir(path.dirname(hostsStatePath('x'))).catch(() => [] as string[]);
  return files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

/** The driver's state of a lab over several hosts, or null. */
export async function readHostsState(lab: string): Promise<HostsState | null> {
  return JSON.parse(await readFile(hostsStatePath(lab), 'utf8').catch(() => 'null')) as HostsState | null;
}

/** Writes the driver's state (atomically: a rename). */
export async function writeHostsState(s: HostsState): Promise<void> {
  await mkdir(path.dirname(hostsStatePath(s.lab.name)), { recursive: true, mode: 0o700 });
  const tmp = `${hostsStatePath(s.lab.name)}.tmp`;
  await writeFile(tmp, JSON.stringify(s, null, 2));
  await rename(tmp, hostsStatePath(s.lab.name));
}

