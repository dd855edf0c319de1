// The labs `down` took away, remembered for a while: a second `qnet down` of one says "already down" (exit 0),
// while a name that never was a lab is a typo (exit 2). Kept in the cache, not the run root: it is qnet's own
// memory, not part of any lab, and losing it only turns that second `down`'s exit 0 into 2, so nothing of a lab
// is left under /run/qnet once its `down` ends. One small file, entries older than a week dropped.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cacheRoot } from '../dirs.js';

/** The file's name in the cache directory. */
export const TOMBSTONES = 'labs-down.json';

/** How long a lab taken down is remembered. */
export const TOMBSTONE_MS = 7 * 24 * 3600 * 1000;

/** When each lab was taken down (ISO times), by name. */
export type Tombstones = Record<string, string>;

/** The record with `lab` taken down at `now`, and without the entries older than `maxAgeMs` (pure). */
export function addTombstone(record: Tombstones, lab: string, now: Date, maxAgeMs = TOMBSTONE_MS): Tombstones {
  const out: Tombstones = {};
  for (const [name, at] of Object.entries(record)) if (name !== lab && now.getTime() - Date.parse(at) <= maxAgeMs) out[name] = at;
  out[lab] = now.toISOString();
  return out;
}

/** When `lab` was taken down, if that is remembered and recent (pure). */
export function tombstoneOf(record: Tombstones, lab: string, now: Date, maxAgeMs = TOMBSTONE_MS): string | null {
  const at = Object.hasOwn(record, lab) ? record[lab] : undefined;
  return at && now.getTime() - Date.parse(at) <= maxAgeMs ? at : null;
}

function file(): string {
  return path.join(cacheRoot(), TOMBSTONES);
}

async function read(): Promise<Tombstones> {
  try {
    const v = JSON.parse(await readFile(file(), 'utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Tombstones) : {};
  } catch {
    return {};
  }
}

/**
 * Remembers that `lab` was taken down now. Written whole and renamed into place: two downs at once may lose one
 * entry (that lab's next down then says "no lab named"), never leave a torn file.
 */
export async function recordDown(lab: string, now = new Date()): Promise<void> {
  await mkdir(cacheRoot(), { recursive: true, mode: 0o755 });
  const tmp = `${file()}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(addTombstone(await read(), lab, now)) + '\n', { mode: 0o600 });
  await rename(tmp, file());
}

/** When `lab` was taken down (an ISO time), or null when no recent `down` of it is remembered. */
export async function takenDownAt(lab: string, now = new Date()): Promise<string | null> {
  return tombstoneOf(await read(), lab, now);
}
