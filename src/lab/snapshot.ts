// Saved guest states ("snapshots"): one per node shape, taken at the built-in guest's snapshot point (kernel
// booted, drivers loaded, nothing of the node applied), so that later guests of the same shape are restored in
// a fraction of a second instead of booting for several under TCG.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chown, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { CommandRunner } from '../host/run.js';
import { QmpClient } from '../qemu/qmp.js';
import { snapshotShape, type Accel, type GuestImage } from '../render/qemu.js';
import type { ResolvedLab } from '../topology/model.js';
import { cacheRoot } from '../dirs.js';

/** How many saved states the cache keeps (the least recently used go first); each is the size of a booted guest's memory. */
export const SNAPSHOTS_KEPT = 8;
// Bumped when the guest's side of the snapshot point changes in a way the image key would not show.
const FORMAT = 1;

/** Where saved states live. */
export function snapshotDir(): string {
  return path.join(cacheRoot(), 'snapshots');
}

const versions = new Map<string, string>();
async function qemuVersion(runner: CommandRunner, binary: string): Promise<string> {
  let v = versions.get(binary);
  if (!v) {
    v = (await runner.run([binary, '--version'])).stdout.split('\n')[0]!.trim();
    versions.set(binary, v);
  }
  return v;
}

/**
 * The saved-state file for each node of the lab that can use one (observed: whether it exists). A node's file
 * is named by a hash of its shape, the image and QEMU's version, so a state is only restored into the same
 * devices, memory, kernel and QEMU it was saved from.
 */
export async function labSnapshots(
  lab: ResolvedLab,
  image: GuestImage & { key?: string },
  accel: Accel,
  runner: CommandRunner,
  binary = 'qemu-system-x86_64',
): Promise<Record<string, { path: string; exists: boolean }>> {
  const out: Record<string, { path: string; exists: boolean }> = {};
  const version = await qemuVersion(runner, binary);
  for (const node of lab.nodes) {
    const shape = snapshotShape(node, image, accel);
    if (shape === undefined) continue;
    const key = createHash('sha256').update(JSON.stringify({ FORMAT, shape, version, binary, image: image.key ?? '' })).digest('hex').slice(0, 20);
    // Named after the image first: states of an image that is no longer current are recognised and removed.
    const file = path.join(snapshotDir(), `${image.key ?? 'image'}-${key}.state`);
    out[node.name] = { path: file, exists: await stat(file).then((s) => s.isFile() && s.size > 0, () => false) };
  }
  await tidySnapshots(image.key);
  return out;
}

/**
 * Removes the partial files of saves whose qnet process is gone (killed mid-save: they are named by its pid) and,
 * given the current image's key, the saved states of other images (a rebuilt image makes them useless).
 */
export async function tidySnapshots(currentImage?: string): Promise<void> {
  const dir = snapshotDir();
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    const partial = /\.state\.(\d+)\.\d+\.tmp$/.exec(n);
    const stale = partial ? !pidAlive(Number(partial[1])) : currentImage !== undefined && n.endsWith('.state') && !n.startsWith(`${currentImage}-`);
    if (stale) await rm(path.join(dir, n), { force: true });
  }
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Saves a running guest's state into `dest` through QEMU's migration to a Unix socket this process listens on
 * (QEMU runs sandboxed and unprivileged: it cannot open the cache, and may not spawn a writer). The guest is
 * paused when the stream ends and resumed here. Resolves with the file's size.
 */
export async function saveGuestState(qmpPath: string, sockPath: string, dest: string, owner: { uid: number; gid: number }): Promise<number> {
  await mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
  const tmp = `${dest}.${process.pid}.${Date.now()}.tmp`;
  const out = createWriteStream(tmp, { mode: 0o600 });
  const server = net.createServer({ allowHalfOpen: false });
  const streamed = new Promise<void>((resolve, reject) => {
    server.once('connection', (c) => {
      server.close();
      c.pipe(out);
      out.once('finish', resolve);
      out.once('error', reject);
      c.once('error', reject);
    });
    server.once('error', reject);
  });
  await rm(sockPath, { force: true });
  await new Promise<void>((resolve, reject) => server.listen(sockPath, resolve).once('error', reject));
  const qmp = await QmpClient.connect(qmpPath, 5000);
  try {
    await chown(sockPath, owner.uid, owner.gid);
    // The default bandwidth limit (128 MiB/s) would stretch the pause; the stream only goes to a local file.
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 8 * 2 ** 30 });
    // The end of the migration comes as a MIGRATION event (completed, failed or cancelled), not from polling.
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    const ended = qmp.waitEvent('MIGRATION', 60_000, (d) => ['completed', 'failed', 'cancelled'].includes((d as { status?: string }).status ?? ''));
    ended.catch(() => {});
    await qmp.execute('migrate', { uri: `unix:${sockPath}` });
    const { status } = (await ended) as { status: string };
    if (status !== 'completed') {
      const m = await qmp.execute<{ 'error-desc'?: string }>('query-migrate').catch(() => ({ 'error-desc': undefined }));
      throw new RuntimeError(`saving the guest's state failed: ${m['error-desc'] ?? status}`);
    }
    await Promise.race([streamed, new Promise((_, reject) => setTimeout(() => reject(new RuntimeError('the saved state did not arrive')), 10000))]);
    await rename(tmp, dest);
    await pruneSnapshots(dest);
    return out.bytesWritten;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  } finally {
    server.close();
    await rm(sockPath, { force: true });
    // A migration leaves the source paused whether it completed or failed: carry on either way.
    await qmp.execute('cont').catch(() => {});
    qmp.close();
  }
}

/** Marks a saved state as just used (the cache keeps the most recently used ones). */
export async function touchSnapshot(file: string): Promise<void> {
  const now = new Date();
  await utimes(file, now, now).catch(() => {});
}

/** Removes a saved state that could not be restored (a QEMU or kernel update the key did not catch). */
export async function dropSnapshot(file: string): Promise<void> {
  await rm(file, { force: true });
}

// Keeps the SNAPSHOTS_KEPT most recently used states.
async function pruneSnapshots(keep: string): Promise<void> {
  const dir = path.dirname(keep);
  const names = await readdir(dir).catch(() => [] as string[]);
  const files = await Promise.all(
    names.map(async (n) => ({ file: path.join(dir, n), st: await stat(path.join(dir, n)).catch(() => null) })),
  );
  const states = files.filter((f) => f.file.endsWith('.state') && f.st).sort((a, b) => b.st!.mtimeMs - a.st!.mtimeMs);
  for (const f of states.slice(SNAPSHOTS_KEPT)) if (f.file !== keep) await rm(f.file, { force: true });
}
